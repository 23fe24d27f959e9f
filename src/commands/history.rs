//! `crowsnest history`.

use crate::cli::Exit;

pub async fn run(_args: crate::cli::HistoryArgs) -> Exit {
    eprintln!("error: crowsnest history is not supported yet");
    Exit::Usage
}
