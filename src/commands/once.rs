//! `crowsnest once`.

use crate::cli::Exit;

pub async fn run(_args: crate::cli::OnceArgs) -> Exit {
    eprintln!("error: crowsnest once is not supported yet");
    Exit::Usage
}
