//! `crowsnest once`: one full pass, then exit.

use crate::audit;
use crate::cli::{Exit, OnceArgs};
use crate::commands::report;
use crate::config::Config;
use crate::reconcile::{PassOptions, Reconciler};

pub async fn run(args: OnceArgs) -> Exit {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            report(&e);
            return Exit::Usage;
        }
    };
    let reconciler = match Reconciler::new(config).await {
        Ok(r) => r,
        Err(e) => {
            report(&e);
            return Exit::Failed;
        }
    };
    let options = PassOptions {
        dry_run: args.dry_run,
        shard: None,
        // Printed below, once each.
        log_findings: false,
    };
    let pass = match reconciler.pass(options).await {
        Ok(pass) => pass,
        Err(e) => {
            report(&e);
            return Exit::Failed;
        }
    };
    for finding in &pass.findings {
        eprintln!("{finding}");
    }
    if pass.findings.iter().any(|f| f.holds_everything()) {
        eprintln!(
            "error: {} problem(s) in the repository's policies or manifests; nothing was changed while the automation is broken",
            pass.findings.len()
        );
    } else if !pass.findings.is_empty() {
        eprintln!(
            "error: {} problem(s) in the repository's policies or manifests held back what they touch; everything else was updated",
            pass.findings.len()
        );
    }
    for failure in &pass.failures {
        eprintln!("error: {}: {}", failure.policy, failure.message);
    }
    for held in &pass.held {
        eprintln!(
            "held: {} {}: {} -> {} would be a downgrade (allowDowngrade is false)",
            held.policy, held.at, held.old, held.new
        );
    }
    if args.dry_run {
        print!("{}", pass.diff);
        if !pass.updates.is_empty() {
            println!();
            for line in audit::trailer_lines(&pass.updates) {
                println!("{line}");
            }
        }
    } else if let Some(commit) = &pass.commit {
        println!(
            "committed {commit} to {}: {} change(s)",
            reconciler.config().git.push_branch,
            pass.changes.len()
        );
    } else if pass.is_clean() {
        println!("up to date: nothing to change");
    }
    if pass.is_clean() {
        Exit::Ok
    } else {
        Exit::Failed
    }
}
