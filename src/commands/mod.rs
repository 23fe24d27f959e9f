//! Glue from parsed command lines to the library: each command reads its
//! inputs, calls into the modules that do the work, prints, and returns the
//! exit code of PRODUCT.md §4.

pub mod check;
pub mod explain;
pub mod history;
pub mod once;
pub mod run;
mod signatures;
pub mod tags;

use crate::cli::{Command, Exit};

/// Runs one command to completion.
pub async fn dispatch(command: Command) -> Exit {
    match command {
        Command::Run(args) => run::run(args).await,
        Command::Once(args) => once::run(args).await,
        Command::Check(args) => check::run(args).await,
        Command::Tags(args) => tags::run(args).await,
        Command::History(args) => history::run(args).await,
        Command::Explain(args) => explain::run(args).await,
    }
}

/// Prints an error the way every command does: one line per cause, to stderr.
pub fn report(error: &(dyn std::error::Error + 'static)) {
    eprintln!("error: {}", chain(error));
}

/// An error and its causes on one line, each said once.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}
