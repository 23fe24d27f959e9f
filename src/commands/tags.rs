//! `crowsnest tags`.

use crate::cli::Exit;

pub async fn run(_args: crate::cli::TagsArgs) -> Exit {
    eprintln!("error: crowsnest tags is not supported yet");
    Exit::Usage
}
