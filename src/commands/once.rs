//! `crowsnest once`: one full pass over every repository of the config,
//! then exit. Each image is listed once however many repositories use it;
//! one repository's failure does not stop the others.

use crate::audit;
use crate::cli::{Exit, OnceArgs};
use crate::commands::report;
use crate::config::Config;
use crate::reconcile::{Fleet, Listings, PassOptions, PassReport, Reconciler};
use crate::registry::Registry;

pub async fn run(args: OnceArgs) -> Exit {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            report(&e);
            return Exit::Usage;
        }
    };
    let registry = match Registry::new(&config.registries) {
        Ok(registry) => registry,
        Err(e) => {
            report(&e);
            return Exit::Failed;
        }
    };
    let fleet = Fleet::new(&config, &registry);
    let several = fleet.entries().len() > 1;
    let listings = Listings::default();
    let mut exit = Exit::Ok;
    for reconciler in fleet.entries() {
        if several {
            println!("== repository {}", reconciler.name());
        }
        if !once(reconciler, &listings, args.dry_run).await {
            exit = Exit::Failed;
        }
    }
    exit
}

/// One entry's pass, printed. Returns whether it was clean.
async fn once(reconciler: &Reconciler, listings: &Listings, dry_run: bool) -> bool {
    let options = PassOptions {
        dry_run,
        shard: None,
        // Printed below, once each.
        log_findings: false,
    };
    let pass = match reconciler.pass_memo(options, listings).await {
        Ok(pass) => pass,
        Err(e) => {
            report(&e);
            return false;
        }
    };
    print_findings(&pass);
    if dry_run {
        print!("{}", pass.diff);
        if !pass.updates.is_empty() {
            println!();
            for line in audit::trailer_lines(&pass.updates) {
                println!("{line}");
            }
        }
    } else if let Some(commit) = &pass.commit {
        let branch = pass.branch.as_deref().unwrap_or_default();
        println!(
            "committed {commit} to {branch}: {} change(s)",
            pass.changes.len()
        );
    } else if pass.is_clean() {
        println!("up to date: nothing to change");
    }
    pass.is_clean()
}

fn print_findings(pass: &PassReport) {
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
    for (policy, opens) in &pass.waiting {
        eprintln!(
            "waiting: {policy}: its window is closed; the change is committed when it opens ({opens})"
        );
    }
    for held in &pass.held {
        eprintln!(
            "held: {} {}: {} -> {} would be a downgrade (allowDowngrade is false)",
            held.policy, held.at, held.old, held.new
        );
    }
}
