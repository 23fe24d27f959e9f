//! `crowsnest history`: the audit trail from the commit log — automated
//! updates (`Image-Update` trailers) and manual changes of managed fields
//! — as a table or JSON lines, optionally with each commit's signature
//! verdict. Exit 0 listed; 1 the repository cannot be read, or with
//! `--verify` a listed commit is not Good; 2 bad usage or config.

use std::io::Write;
use std::path::PathBuf;

use crate::audit::history::{self, Options};
use crate::audit::record::{self, Filter, SignatureStatus};
use crate::audit::time::parse_time;
use crate::cli::{Exit, HistoryArgs};
use crate::commands::report;
use crate::config::Config;
use crate::git::verify::Verifier;

/// Where to read and how: everything decided before any Git work.
struct Plan {
    repo: PathBuf,
    rev: String,
    options: Options,
    verifier: Option<Verifier>,
}

fn plan(args: &HistoryArgs) -> Result<Plan, String> {
    let policy = args
        .policy
        .as_deref()
        .map(record::parse_policy_id)
        .transpose()?;
    let since = args
        .since
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(|e| format!("--since: {e}"))?
        .map(|b| b.since());
    let until = args
        .until
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(|e| format!("--until: {e}"))?
        .map(|b| b.until());
    let filter = Filter {
        policy,
        image: args.image.clone(),
        since,
        until,
    };
    let verifier = if args.verify.is_empty() {
        None
    } else {
        Some(Verifier::load(&args.verify).map_err(|e| format!("--verify: {e}"))?)
    };
    let (repo, rev, options) = match &args.config {
        Some(path) => {
            let config = Config::load(path).map_err(|e| e.to_string())?;
            let entry = config.repository(args.repository.as_deref())?;
            let clone = crate::git::clone_path(&entry.clone_dir);
            if !clone.exists() {
                return Err(format!(
                    "{}: the daemon has not cloned {} yet (no {}); run `crowsnest once --config {}` first, or pass --repo",
                    path.display(),
                    crate::git::redact_url(&entry.git.url),
                    clone.display(),
                    path.display()
                ));
            }
            let rev = crate::git::tracking_ref(&entry.git.branch);
            let options = Options {
                policies_dir: entry.git.policies.clone(),
                scan_dir: entry.git.path.clone(),
                filter,
                workers: None,
            };
            (clone, rev, options)
        }
        None => {
            let options = Options {
                policies_dir: "policies".into(),
                scan_dir: String::new(),
                filter,
                workers: None,
            };
            let repo = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
            (repo, "HEAD".to_owned(), options)
        }
    };
    Ok(Plan {
        repo,
        rev: args.rev.clone().unwrap_or(rev),
        options,
        verifier,
    })
}

pub async fn run(args: HistoryArgs) -> Exit {
    let plan = match plan(&args) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Usage;
        }
    };
    let json = args.json;
    let task = tokio::task::spawn_blocking(move || {
        let repo = history::open(&plan.repo)?;
        let tip = history::resolve(&repo, &plan.rev)?;
        history::read(&repo, tip, &plan.options, plan.verifier.as_ref())
            .map(|trail| (trail, plan.verifier.is_some()))
    });
    let (trail, verified) = match task.await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            report(&e);
            return Exit::Failed;
        }
        Err(e) => {
            eprintln!("error: reading the history stopped: {e}");
            return Exit::Failed;
        }
    };
    let text = if json {
        record::render_json_lines(&trail.entries)
    } else if trail.entries.is_empty() {
        String::new()
    } else {
        record::render_table(&trail.entries, verified)
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`| head`) is not a failure of the command.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the history: {e}");
            return Exit::Failed;
        }
    }
    let updates = trail
        .entries
        .iter()
        .filter(|e| e.kind == record::Kind::Update)
        .count();
    let untrusted = trail
        .entries
        .iter()
        .filter(|e| {
            e.signature
                .as_ref()
                .is_some_and(|s| s.status != SignatureStatus::Good)
        })
        .map(|e| e.commit.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let promotions = trail
        .entries
        .iter()
        .filter(|e| e.kind == record::Kind::Promotion)
        .count();
    let promoted = if promotions > 0 {
        format!(", {promotions} promotion(s)")
    } else {
        String::new()
    };
    let mut summary = format!(
        "{} update(s){promoted}, {} manual change(s) in {} commit(s) read",
        updates,
        trail.entries.len() - updates - promotions,
        trail.commits
    );
    if trail.shallow > 0 {
        summary.push_str(&format!(
            "; a shallow clone: the history stops at {} commit(s) whose parents were not fetched (`git fetch --unshallow` fetches the rest)",
            trail.shallow
        ));
    }
    if verified {
        summary.push_str(&format!(
            "; {untrusted} listed commit(s) without a Good signature"
        ));
    }
    eprintln!("{summary}");
    if untrusted > 0 {
        Exit::Failed
    } else {
        Exit::Ok
    }
}
