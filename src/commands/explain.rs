//! `crowsnest explain NS:NAME (--config FILE [--repository NAME] | --repo
//! DIR) [--json]`: every candidate of one policy with its verdict, and what
//! would be written where. A registry policy's candidates are its image's
//! tags (as `tags --all`, with signature verdicts for `verify`); a
//! promotion's are the values its source policy held, read from the
//! source's history (`promote`), with why each is or is not promoted. The
//! pick is checked against the downgrade guard and the policy's `window`,
//! and the writes are planned by `reconcile` exactly as `once --dry-run`
//! plans them. Nothing is fetched or written. Exit 0 a candidate is picked
//! (even one the files already hold, or one waiting for its window); 1
//! none is (or the registry or the history cannot be read); 2 an unknown
//! policy, bad usage or config.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use git2::{Oid, Repository};
use serde::Serialize;

use crate::audit::history;
use crate::audit::record::parse_policy_id;
use crate::audit::time::format_time;
use crate::cli::{Exit, ExplainArgs};
use crate::commands::signatures;
use crate::commands::tags::{TagList, TagSource, list_tags, render_table};
use crate::config::{Config, RepositoryConfig};
use crate::git::verify::Verifier;
use crate::inventory::{self, Inventory};
use crate::model::{PolicyId, Selection};
use crate::policy::{Policy, Verdict};
use crate::promote::{self, Timeline};
use crate::reconcile::{self, PlannedWrite};

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
    /// With --config: the config and the entry, whose settings say where
    /// policies and setters are read (Flux objects too).
    daemon: Option<(Config, RepositoryConfig)>,
    verify: Vec<PathBuf>,
}

impl Plan {
    fn inventory_options(&self) -> inventory::Options<'_> {
        match &self.daemon {
            Some((config, entry)) => reconcile::inventory_options(config, entry),
            None => inventory::Options {
                policies_dir: &self.here.policies_dir,
                scan_dir: &self.here.scan_dir,
                ..inventory::Options::default()
            },
        }
    }
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
            daemon: None,
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
        daemon: Some((config.clone(), entry.clone())),
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

/// The policy's `window` at the time of the explanation.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct WindowState {
    /// The window as written; `None`: the policy has none (always open).
    #[serde(skip)]
    spec: Option<String>,
    open: bool,
    /// When it opens next (RFC 3339, or `never`); `None` while open.
    opens_at: Option<String>,
}

impl WindowState {
    fn at(policy: &Policy, now: jiff::Timestamp) -> WindowState {
        let Some(window) = &policy.window else {
            return WindowState {
                spec: None,
                open: true,
                opens_at: None,
            };
        };
        let open = window.is_open(now);
        WindowState {
            spec: Some(window.to_string()),
            open,
            opens_at: (!open).then(|| {
                window
                    .next_opening(now)
                    .map_or_else(|| "never".to_owned(), |t| t.to_string())
            }),
        }
    }

    /// The pick's verdict while the window is closed.
    fn waiting(&self) -> Option<String> {
        self.opens_at
            .as_ref()
            .map(|at| format!("outside window until {at}"))
    }
}

/// One kind's explanation: its table and summary, the same as JSON, and
/// the pick's selection (`None`: nothing picked), whose writes are shown
/// even when the downgrade guard holds it (then it is not `picked`).
struct Explained {
    text: String,
    json: serde_json::Value,
    selection: Option<Selection>,
    picked: bool,
}

/// One setter and what would be written there, as `--json` prints it.
#[derive(Serialize)]
struct WriteJson {
    file: String,
    line: u32,
    column: u32,
    field: String,
    current: String,
    /// `None`: left as it is.
    new: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<&PlannedWrite> for WriteJson {
    fn from(w: &PlannedWrite) -> Self {
        WriteJson {
            file: w.at.file.clone(),
            line: w.at.position.line,
            column: w.at.position.column,
            field: w.field.to_string(),
            current: w.current.clone(),
            new: w.new.clone(),
            reason: w.why.clone(),
        }
    }
}

pub async fn run(args: ExplainArgs) -> Exit {
    let plan = match plan(&args) {
        Ok(plan) => Arc::new(plan),
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Usage;
        }
    };
    let read = {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || {
            let repo = history::open(&plan.here.repo).map_err(|e| e.to_string())?;
            let tip = history::resolve(&repo, &plan.here.rev).map_err(|e| e.to_string())?;
            reconcile::inventory_at(&repo, tip, &plan.inventory_options())
                .map_err(|e| e.to_string())
        })
        .await
    };
    let (mut inventory, findings) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(message)) => {
            eprintln!("error: {message}");
            return Exit::Usage;
        }
        Err(e) => {
            eprintln!("error: reading the repository stopped: {e}");
            return Exit::Failed;
        }
    };
    let id = &plan.policy;
    for finding in findings.iter().filter(|f| f.policies.contains(id)) {
        eprintln!("warning: {finding}");
    }
    let Some(policy) = inventory.policies.get(id).cloned() else {
        match inventory.disabled.get(id) {
            Some(at) => eprintln!(
                "error: {at}: policy {id} is disabled by a problem in its files (see `crowsnest check`)"
            ),
            None => eprintln!(
                "error: {}: no policy {id} in {}/ at {}",
                plan.here.repo.display(),
                plan.here.policies_dir,
                plan.here.rev
            ),
        }
        return Exit::Usage;
    };
    if let (Some(promote), None) = (&policy.promote, &plan.daemon)
        && let Some(name) = &promote.repository
    {
        eprintln!(
            "error: {}: promote.repository {name:?} names an entry of the daemon config, whose branch `--repo` cannot know; use `crowsnest explain {id} --config FILE`",
            policy.declared_at
        );
        return Exit::Usage;
    }
    let window = WindowState::at(&policy, jiff::Timestamp::now());
    let explained = if policy.promote.is_some() {
        let (plan, policy, window) = (plan.clone(), policy.clone(), window.clone());
        let done = tokio::task::spawn_blocking(move || {
            let explained = explain_promotion(&plan, &policy, &inventory, &window);
            (inventory, explained)
        })
        .await;
        match done {
            Ok((read, Ok((explained, order)))) => {
                inventory = read;
                // The daemon guards a promotion by its source's ordering.
                reconcile::take_ordering(&mut inventory, id, order);
                explained
            }
            Ok((_, Err(exit))) => return exit,
            Err(e) => {
                eprintln!("error: reading the history stopped: {e}");
                return Exit::Failed;
            }
        }
    } else {
        match explain_registry(&plan, &policy, &inventory, &window).await {
            Ok(explained) => explained,
            Err(exit) => return exit,
        }
    };
    let writes = reconcile::planned_writes(&inventory, id, explained.selection.as_ref());
    if args.json {
        let mut json = explained.json;
        json["window"] = serde_json::to_value(&window).expect("serializes");
        json["writes"] =
            serde_json::to_value(writes.iter().map(WriteJson::from).collect::<Vec<_>>())
                .expect("serializes");
        let mut text = serde_json::to_string_pretty(&json).expect("serializes");
        text.push('\n');
        print!("{text}");
    } else {
        print!("{}", explained.text);
        if let Some(spec) = &window.spec {
            match &window.opens_at {
                None => println!("window {spec}: open now"),
                Some(at) => println!("window {spec}: closed; the change waits until {at}"),
            }
        }
        print!("{}", render_writes(&writes));
    }
    if explained.picked {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

/// Each setter, where it is, and what would be written there.
fn render_writes(writes: &[PlannedWrite]) -> String {
    if writes.is_empty() {
        return "\nno setter names this policy: nothing would be written\n".to_owned();
    }
    let rows: Vec<[String; 3]> = writes
        .iter()
        .map(|w| {
            let what = match (&w.new, &w.why) {
                (Some(new), _) => format!("{} -> {new}", w.current),
                (None, Some(why)) => format!("{} unchanged ({why})", w.current),
                (None, None) => format!("{} unchanged", w.current),
            };
            [w.at.to_string(), w.field.to_string(), what]
        })
        .collect();
    let widths: Vec<usize> = (0..2)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = "\nwrites:\n".to_owned();
    for [at, field, what] in &rows {
        let _ = writeln!(
            out,
            "  {at:a$}  {field:f$}  {what}",
            a = widths[0],
            f = widths[1]
        );
    }
    out
}

/// A registry policy: its image's tags, with signature verdicts for
/// `verify`, the downgrade guard and the window applied to the pick.
async fn explain_registry(
    plan: &Plan,
    policy: &Policy,
    inventory: &Inventory,
    window: &WindowState,
) -> Result<Explained, Exit> {
    let source = TagSource::Registry {
        image: policy.image.clone(),
        config: plan.config.clone(),
    };
    let tags = list_tags(&source).await.map_err(|e| {
        super::report(&e);
        Exit::Failed
    })?;
    let mut decision = policy.selector().explain(&tags.tags());
    if let Some(verify) = &policy.verify {
        check_signatures(plan, policy, verify, &tags, &mut decision)
            .await
            .map_err(|message| {
                eprintln!("error: {message}");
                Exit::Failed
            })?;
    }
    let label = format!("{} ({})", policy.id, policy.rule);
    let current = reconcile::current_tag(inventory, &policy.id);
    let mut footer = match &decision.selected {
        Some(tag) => format!("\nselected {tag} by {label}\n"),
        None => format!("\nno tag matched {label}\n"),
    };
    // The tag the writes are planned for: the pick, even one the guard holds.
    let pick = decision.selected.clone();
    if let (Some(i), Some(current)) = (decision.selected_index(), &current)
        && !policy.permits(current, &decision.candidates[i].tag)
    {
        let candidate = &mut decision.candidates[i];
        candidate.verdict = Verdict::LowerThanCurrent;
        candidate.detail = format!(
            "{current} (the files hold it; allowDowngrade is false, so the guard keeps it)"
        );
        footer = format!(
            "\n{label} picks {}, lower than current {current}: nothing is written (allowDowngrade is false)\n",
            candidate.tag
        );
        decision.selected = None;
    }
    if let (Some(i), Some(waiting)) = (decision.selected_index(), window.waiting()) {
        let candidate = &mut decision.candidates[i];
        candidate.verdict = Verdict::OutsideWindow;
        candidate.detail = format!("{waiting}; {}", candidate.detail);
    }
    let selection = match (&pick, &tags) {
        (Some(tag), TagList::Registry { client, .. }) => Some(Selection {
            tag: tag.clone(),
            digest: reconcile::reflect_digest(client, policy, inventory, tag, None)
                .await
                .map_err(|e| {
                    super::report(&e);
                    Exit::Failed
                })?,
        }),
        _ => None,
    };
    let mut json = serde_json::to_value(&decision).expect("a decision serializes");
    json["policy"] = policy.id.to_string().into();
    json["current"] = current.into();
    Ok(Explained {
        text: render_table(&decision) + &footer,
        json,
        picked: decision.selected.is_some(),
        selection,
    })
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

/// Reads the source's history and decides as the daemon does. Returns the
/// source policy's ordering too; a source that declares none fails, as in
/// the daemon.
fn explain_promotion(
    plan: &Plan,
    policy: &Policy,
    inventory: &Inventory,
    window: &WindowState,
) -> Result<(Explained, Policy), Exit> {
    let failed = |message: String| {
        eprintln!("error: {message}");
        Exit::Failed
    };
    let usage = |message: String| {
        eprintln!("error: {message}");
        Exit::Usage
    };
    let promote = policy.promote.as_ref().expect("a promotion");
    let here_repo = history::open(&plan.here.repo).map_err(|e| failed(e.to_string()))?;
    let here_tip =
        history::resolve(&here_repo, &plan.here.rev).map_err(|e| failed(e.to_string()))?;
    let (source_name, source) = match &promote.repository {
        Some(name) => plan
            .others
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, p)| (n.clone(), p.clone()))
            .ok_or_else(|| {
                usage(format!(
                    "{}: promote.repository {name:?} is not an entry of the config",
                    policy.declared_at
                ))
            })?,
        None => (plan.here.repo.display().to_string(), plan.here.clone()),
    };
    let opened;
    let (source_repo, source_tip): (&Repository, Oid) = if source.repo == plan.here.repo {
        (&here_repo, here_tip)
    } else {
        opened = history::open(&source.repo).map_err(|e| failed(e.to_string()))?;
        let tip = history::resolve(&opened, &source.rev).map_err(|e| failed(e.to_string()))?;
        (&opened, tip)
    };
    // The source policy's targets are setters too.
    let targets = promote::policy_at(source_repo, source_tip, &source.policies_dir, &promote.from)
        .map(|p| p.targets)
        .unwrap_or_default();
    let mut timeline = Timeline::default()
        .read(
            source_repo,
            source_tip,
            &promote.from,
            &source.scan_dir,
            &targets,
        )
        .map_err(|e| failed(e.to_string()))?;
    if promote.require_signed {
        if plan.verify.is_empty() {
            return Err(usage(format!(
                "{}: promote.requireSigned: pass --verify KEYS (or verifyKeys in the config)",
                policy.declared_at
            )));
        }
        let verifier = Verifier::load(&plan.verify).map_err(|e| usage(format!("--verify: {e}")))?;
        timeline.verify(source_repo, &verifier);
    }
    let Some(order) = promote::ordering(&promote.from, |id| {
        promote::policy_at(source_repo, source_tip, &source.policies_dir, id)
    }) else {
        // As the daemon: no guessed ordering, nothing is promoted.
        return Err(failed(format!(
            "{}: promote.from {}: the source declares no such policy, or its promote.from chain never reaches a policy that chooses from the registry; nothing is promoted until it does",
            promote.from_at, promote.from
        )));
    };
    let current = promote::value_at(
        &here_repo,
        here_tip,
        &policy.id,
        &inventory.scan_dir,
        &policy.targets,
    )
    .map_err(failed)?;
    // The tag the daemon's downgrade guard compares with.
    let current_tag =
        reconcile::current_tag(inventory, &policy.id).filter(|_| !policy.allow_downgrade);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let decision = promote::decide(
        &timeline,
        promote,
        &order.selector(),
        current_tag.as_deref(),
        now,
    );
    let verdict = |i: usize| match (decision.pick == Some(i), window.waiting()) {
        (true, Some(waiting)) => waiting,
        _ => decision.candidates[i].verdict.to_string(),
    };
    let selection = decision
        .picked()
        .and_then(|c| reconcile::promoted_selection(&c.value));
    let json = serde_json::to_value(PromotionJson {
        policy: policy.id.to_string(),
        from: promote.from.to_string(),
        source: source_name.clone(),
        current: current.clone(),
        candidates: decision
            .candidates
            .iter()
            .enumerate()
            .map(|(i, c)| CandidateJson {
                value: c.value.clone(),
                verdict: verdict(i),
                since: format_time(c.since),
                commit: c.commit.to_string(),
                author: c.author.clone(),
            })
            .collect(),
        picked: decision.picked().map(|c| c.value.clone()),
        next_change: decision.next_change.map(format_time),
    })
    .expect("serializes");
    let mut rows = vec![[
        "VALUE".to_owned(),
        "VERDICT".to_owned(),
        "LANDED".to_owned(),
        "COMMIT".to_owned(),
        "AUTHOR".to_owned(),
    ]];
    for (i, c) in decision.candidates.iter().enumerate() {
        rows.push([
            c.value.clone(),
            verdict(i),
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
    Ok((
        Explained {
            text: out,
            json,
            picked: selection.is_some(),
            selection,
        },
        order,
    ))
}
