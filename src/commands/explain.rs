//! `crowsnest explain NS:NAME (--config FILE [--repository NAME] | --repo
//! DIR) [--json]`: every candidate of one policy with its verdict. A
//! registry policy's candidates are its image's tags (as `tags --all`); a
//! promotion's are the values its source policy held, read from the
//! source's history (`promote`), with why each is or is not promoted.
//! Nothing is fetched or written. Exit 0 explained; 1 the repository or
//! registry cannot be read; 2 bad usage or config.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::SystemTime;

use git2::{Oid, Repository};
use serde::Serialize;

use crate::audit::history;
use crate::audit::record::parse_policy_id;
use crate::audit::time::format_time;
use crate::cli::{Exit, ExplainArgs};
use crate::commands::signatures;
use crate::commands::tags::{TagList, TagSource, list_tags, render_all};
use crate::config::Config;
use crate::git::verify::Verifier;
use crate::model::PolicyId;
use crate::policy::Policy;
use crate::promote::{self, Timeline};

/// A branch of a clone to read, with where its policies and markers are.
#[derive(Clone)]
struct Place {
    repo: PathBuf,
    rev: String,
    policies_dir: String,
    scan_dir: String,
}

struct Plan {
    policy: PolicyId,
    here: Place,
    /// Other entries of the config, for promotions from them.
    others: Vec<(String, Place)>,
    config: Option<PathBuf>,
    verify: Vec<PathBuf>,
}

fn plan(args: &ExplainArgs) -> Result<Plan, String> {
    let policy = parse_policy_id(&args.policy)?;
    let Some(path) = &args.config else {
        let repo = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
        return Ok(Plan {
            policy,
            here: Place {
                repo,
                rev: "HEAD".into(),
                policies_dir: "policies".into(),
                scan_dir: String::new(),
            },
            others: Vec::new(),
            config: None,
            verify: args.verify.clone(),
        });
    };
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let entry = config.repository(args.repository.as_deref())?;
    let place = |e: &crate::config::RepositoryConfig| Place {
        repo: crate::git::clone_path(&e.clone_dir),
        rev: crate::git::tracking_ref(&e.git.branch),
        policies_dir: e.git.policies.clone(),
        scan_dir: e.git.path.clone(),
    };
    let here = place(entry);
    if !here.repo.exists() {
        return Err(format!(
            "{}: the daemon has not cloned {} yet (no {}); run `crowsnest once --config {}` first, or pass --repo",
            path.display(),
            crate::git::redact_url(&entry.git.url),
            here.repo.display(),
            path.display()
        ));
    }
    let verify = if args.verify.is_empty() {
        config.verify_keys.clone()
    } else {
        args.verify.clone()
    };
    Ok(Plan {
        policy,
        others: config
            .repositories
            .iter()
            .map(|e| (e.name.clone(), place(e)))
            .collect(),
        here,
        config: Some(path.clone()),
        verify,
    })
}

/// Rewrites a `verify` policy's verdicts with its signature check (keys
/// read from the explained revision; the trusted root from the config the
/// tags were listed with, through the same client).
async fn check_signatures(
    plan: &Plan,
    policy: &Policy,
    verify: &crate::policy::Verify,
    listed: &TagList,
    decision: &mut crate::policy::Decision,
) -> Result<(), String> {
    let TagList::Registry { client, config, .. } = listed else {
        return Ok(());
    };
    let trust = {
        let repo = history::open(&plan.here.repo).map_err(|e| e.to_string())?;
        signatures::trust(
            verify,
            signatures::Keys::Git {
                repo: &repo,
                rev: &plan.here.rev,
            },
            config.as_ref().and_then(|c| c.trusted_root.as_deref()),
        )?
    };
    signatures::check(decision, &policy.selector(), &policy.image, &trust, client)
        .await
        .map_err(|e| e.to_string())
}

/// A promotion's explanation, as `--json` prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PromotionJson {
    policy: String,
    from: String,
    /// Where the source was read: a `repositories` entry, or the clone.
    source: String,
    /// The value the policy's setters hold now.
    current: Option<String>,
    candidates: Vec<CandidateJson>,
    picked: Option<String>,
    /// When the next soaking candidate becomes eligible.
    next_change: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CandidateJson {
    value: String,
    verdict: String,
    /// When the period that decided it began, and with which commit.
    since: String,
    commit: String,
    author: String,
}

pub async fn run(args: ExplainArgs) -> Exit {
    let plan = match plan(&args) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Usage;
        }
    };
    let here = plan.here.clone();
    let id = plan.policy.clone();
    let found = tokio::task::spawn_blocking(move || {
        let repo = history::open(&here.repo).map_err(|e| e.to_string())?;
        let tip = history::resolve(&repo, &here.rev).map_err(|e| e.to_string())?;
        Ok::<_, String>(promote::policy_at(&repo, tip, &here.policies_dir, &id))
    })
    .await;
    let policy = match found {
        Ok(Ok(Some(policy))) => policy,
        Ok(Ok(None)) => {
            eprintln!(
                "error: {}: no valid policy {} in {}/ at {}",
                plan.here.repo.display(),
                plan.policy,
                plan.here.policies_dir,
                plan.here.rev
            );
            return Exit::Failed;
        }
        Ok(Err(message)) => {
            eprintln!("error: {message}");
            return Exit::Failed;
        }
        Err(e) => {
            eprintln!("error: reading the repository stopped: {e}");
            return Exit::Failed;
        }
    };
    let window = policy.window.clone();
    let output = if policy.promote.is_some() {
        let json = args.json;
        match tokio::task::spawn_blocking(move || explain_promotion(&plan, &policy, json)).await {
            Ok(Ok(text)) => text,
            Ok(Err(message)) => {
                eprintln!("error: {message}");
                return Exit::Failed;
            }
            Err(e) => {
                eprintln!("error: reading the history stopped: {e}");
                return Exit::Failed;
            }
        }
    } else {
        let source = TagSource::Registry {
            image: policy.image.clone(),
            config: plan.config.clone(),
        };
        let tags = match list_tags(&source).await {
            Ok(tags) => tags,
            Err(e) => {
                super::report(&e);
                return Exit::Failed;
            }
        };
        let mut decision = policy.selector().explain(&tags.tags());
        if let Some(verify) = &policy.verify
            && let Err(message) =
                check_signatures(&plan, &policy, verify, &tags, &mut decision).await
        {
            eprintln!("error: {message}");
            return Exit::Failed;
        }
        if args.json {
            let mut json = serde_json::to_string_pretty(&decision).expect("a decision serializes");
            json.push('\n');
            json
        } else {
            render_all(&decision, &format!("{} ({})", policy.id, policy.rule))
        }
    };
    print!("{output}");
    if let (Some(window), false) = (&window, args.json) {
        let now = jiff::Timestamp::now();
        if window.is_open(now) {
            println!("window {window}: open now");
        } else {
            let opens = window
                .next_opening(now)
                .map_or_else(|| "never".to_owned(), |t| t.to_string());
            println!("window {window}: closed; the change waits until {opens}");
        }
    }
    Exit::Ok
}

/// Reads the source's history and renders the decision.
fn explain_promotion(plan: &Plan, policy: &Policy, json: bool) -> Result<String, String> {
    let promote = policy.promote.as_ref().expect("a promotion");
    let here_repo = history::open(&plan.here.repo).map_err(|e| e.to_string())?;
    let here_tip = history::resolve(&here_repo, &plan.here.rev).map_err(|e| e.to_string())?;
    let (source_name, source) = match &promote.repository {
        Some(name) if !plan.others.is_empty() => plan
            .others
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, p)| (n.clone(), p.clone()))
            .ok_or_else(|| {
                format!(
                    "{}: promote.repository {name:?} is not an entry of the config",
                    policy.declared_at
                )
            })?,
        _ => (plan.here.repo.display().to_string(), plan.here.clone()),
    };
    let opened;
    let (source_repo, source_tip): (&Repository, Oid) = if source.repo == plan.here.repo {
        (&here_repo, here_tip)
    } else {
        opened = history::open(&source.repo).map_err(|e| e.to_string())?;
        let tip = history::resolve(&opened, &source.rev).map_err(|e| e.to_string())?;
        (&opened, tip)
    };
    let mut timeline = Timeline::default()
        .read(source_repo, source_tip, &promote.from, &source.scan_dir)
        .map_err(|e| e.to_string())?;
    if promote.require_signed {
        if plan.verify.is_empty() {
            return Err(format!(
                "{}: promote.requireSigned: pass --verify KEYS (or verifyKeys in the config)",
                policy.declared_at
            ));
        }
        let verifier = Verifier::load(&plan.verify).map_err(|e| format!("--verify: {e}"))?;
        timeline.verify(source_repo, &verifier);
    }
    let order = promote::ordering(&promote.from, |id| {
        promote::policy_at(source_repo, source_tip, &source.policies_dir, id)
    });
    let current = promote::value_at(&here_repo, here_tip, &policy.id, &plan.here.scan_dir)?;
    let current_tag = current
        .as_deref()
        .and_then(|v| promote::tag_and_digest(v).0)
        .filter(|_| !policy.allow_downgrade);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let ordering = order.as_ref().unwrap_or(policy);
    let decision = promote::decide(&timeline, promote, &ordering.selector(), current_tag, now);
    if json {
        let out = PromotionJson {
            policy: policy.id.to_string(),
            from: promote.from.to_string(),
            source: source_name,
            current,
            candidates: decision
                .candidates
                .iter()
                .map(|c| CandidateJson {
                    value: c.value.clone(),
                    verdict: c.verdict.to_string(),
                    since: format_time(c.since),
                    commit: c.commit.to_string(),
                    author: c.author.clone(),
                })
                .collect(),
            picked: decision.picked().map(|c| c.value.clone()),
            next_change: decision.next_change.map(format_time),
        };
        let mut text = serde_json::to_string_pretty(&out).expect("serializes");
        text.push('\n');
        return Ok(text);
    }
    let mut rows = vec![[
        "VALUE".to_owned(),
        "VERDICT".to_owned(),
        "LANDED".to_owned(),
        "COMMIT".to_owned(),
        "AUTHOR".to_owned(),
    ]];
    for c in &decision.candidates {
        rows.push([
            c.value.clone(),
            c.verdict.to_string(),
            format_time(c.since),
            c.commit.to_string()[..12].to_owned(),
            c.author.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:width$}  ", width = widths[i]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(
        out,
        "\n{} promotes {} from {} (soak {}, rollback {}{}); it holds {} now",
        policy.id,
        promote.from,
        source_name,
        humantime::format_duration(promote.soak),
        if promote.rollback_blocks {
            "block"
        } else {
            "allow"
        },
        if promote.require_signed {
            ", signed only"
        } else {
            ""
        },
        current.as_deref().unwrap_or("nothing")
    );
    match decision.picked() {
        Some(c) => {
            let _ = writeln!(
                out,
                "picked {} (landed with {})",
                c.value,
                &c.commit.to_string()[..12]
            );
        }
        None => {
            let _ = writeln!(out, "nothing to promote");
        }
    }
    if let Some(at) = decision.next_change {
        let _ = writeln!(out, "next candidate eligible at {}", format_time(at));
    }
    Ok(out)
}
