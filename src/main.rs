//! The `crowsnest` binary: parse the command line, set up logging, run the
//! command, exit with its code.

use std::process::ExitCode;

use clap::Parser;
use crowsnest::cli::{self, Cli, Command, Exit};
use tracing_subscriber::EnvFilter;

fn init_logging() {
    let filter = EnvFilter::try_from_env(cli::env::LOG).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var(cli::env::LOG_FORMAT).is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    init_logging();
    // `tags` reads one list or asks one registry, then exits: one thread
    // does that, and the worker threads the other commands want are most of
    // its startup beyond loading the binary.
    let mut builder = match cli.command {
        Command::Tags(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let exit = runtime.block_on(crowsnest::commands::dispatch(cli.command));
    // A pass abandoned at the shutdown deadline may still be inside a
    // blocking git call; do not wait for it. The remote applies a push as
    // one atomic ref update, so it never holds half a pass.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    exit.into()
}
