//! `crowsnest once`: one full pass over every repository of the config,
//! then exit. Each image is listed once however many repositories use it;
//! one repository's failure does not stop the others.

use crate::audit;
use crate::cli::{Exit, OnceArgs};
use crate::commands::{chain, report};
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
        // With several entries, each line on stderr names its entry, since
        // the `==` headers go to stdout and `file:line:col` alone could be
        // in any of them.
        let tag = several.then(|| reconciler.name());
        if !once(reconciler, tag, &listings, args.dry_run).await {
            exit = Exit::Failed;
        }
    }
    exit
}

/// Writes `line` to stderr, after `[NAME] ` when `tag` names the entry.
fn say(tag: Option<&str>, line: &str) {
    match tag {
        Some(name) => eprintln!("[{name}] {line}"),
        None => eprintln!("{line}"),
    }
}

/// One entry's pass, printed. Returns whether it was clean.
async fn once(
    reconciler: &Reconciler,
    tag: Option<&str>,
    listings: &Listings,
    dry_run: bool,
) -> bool {
    let options = PassOptions {
        dry_run,
        shard: None,
        // Printed below, once each.
        log_findings: false,
    };
    let pass = match reconciler.pass_memo(options, listings).await {
        Ok(pass) => pass,
        Err(e) => {
            say(tag, &format!("error: {}", chain(&e)));
            return false;
        }
    };
    print_findings(tag, &pass);
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

fn print_findings(tag: Option<&str>, pass: &PassReport) {
    for finding in &pass.findings {
        say(tag, &finding.to_string());
    }
    if pass.findings.iter().any(|f| f.holds_everything()) {
        say(
            tag,
            &format!(
                "error: {} problem(s) in the repository's policies or manifests; nothing was changed while the automation is broken",
                pass.findings.len()
            ),
        );
    } else if !pass.findings.is_empty() {
        say(
            tag,
            &format!(
                "error: {} problem(s) in the repository's policies or manifests held back what they touch; everything else was updated",
                pass.findings.len()
            ),
        );
    }
    for failure in &pass.failures {
        say(
            tag,
            &format!("error: {}: {}", failure.policy, failure.message),
        );
    }
    for (policy, opens) in &pass.waiting {
        say(
            tag,
            &format!(
                "waiting: {policy}: its window is closed; the change is committed when it opens ({opens})"
            ),
        );
    }
    for held in &pass.held {
        say(
            tag,
            &format!(
                "held: {} {}: {} -> {} would be a downgrade (allowDowngrade is false)",
                held.policy, held.at, held.old, held.new
            ),
        );
    }
}
