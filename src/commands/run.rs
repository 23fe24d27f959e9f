//! `crowsnest run`.

use crate::cli::Exit;

pub async fn run(_args: crate::cli::RunArgs) -> Exit {
    eprintln!("error: crowsnest run is not supported yet");
    Exit::Usage
}
