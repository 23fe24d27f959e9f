//! `crowsnest check`.

use crate::cli::Exit;

pub async fn run(_args: crate::cli::CheckArgs) -> Exit {
    eprintln!("error: crowsnest check is not supported yet");
    Exit::Usage
}
