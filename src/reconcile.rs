//! One pass: fetch the repository, read its policies and setters, read the
//! tags each used image has, let each policy pick, patch the files, make one
//! commit and push it. This is the one module that joins `policy`,
//! `registry`, `manifests` and `git`.
//!
//! Faults are isolated: a problem in the repository (a policy document that
//! does not validate, a marker naming an unknown or disabled policy, a file
//! that is not YAML, a target that resolves to nothing) holds back only what
//! it touches — the inventory leaves those policies, files and setters out
//! and reports each as a [`Finding`] — and every other policy updates in
//! the same pass and commit. The one exception is a Flux automation that
//! cannot be read or chosen: it may name the branches and author of every
//! commit, so nothing is written while it is broken. A registry failure
//! only holds back the policies on that image.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tracing::{info, instrument, warn};

use crate::audit;
use crate::config::{Author, Config, GitConfig, RepositoryConfig};
use crate::git::{self, Base, PushOutcome, Repo, TreeFile, Writer};
use crate::inventory::{self, FileSource, Finding, Inventory, SourceError};
use crate::manifests::{self, Edit};
use crate::message::MessageInput;
use crate::model::{
    Change, DigestReflection, Field, ImageName, ImageUpdate, Located, PolicyId, Selection, Shard,
};
use crate::policy::{Automation, FluxChange, Policy, Rule};
use crate::promote::{self, Timeline};
use crate::registry::{Registry, RegistryError};
use crate::tagcache::TagCache;
use crate::verify;

/// How many times a pass re-plans after the remote moved under it.
pub const MAX_PUSH_ATTEMPTS: u32 = 5;
/// Image repositories listed (and policies decided) at once.
const SCAN_CONCURRENCY: usize = 8;
/// Tags inspected for a policy's platform before giving up.
const MAX_PLATFORM_PROBES: usize = 20;

/// A pass that could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{branch} kept moving: gave up after {attempts} attempts to push")]
    KeptMoving { branch: String, attempts: u32 },
    #[error("push to {branch} was rejected by the remote: {message}")]
    Rejected { branch: String, message: String },
    /// A Flux `messageTemplate` that could not be rendered for this commit.
    #[error("{at}: {message}")]
    FluxTemplate { at: Located, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ReconcileError {
    /// A short label for the `errors_total{kind}` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Git(_) => "git",
            ReconcileError::Source(_) => "git",
            ReconcileError::Registry(_) => "registry",
            ReconcileError::KeptMoving { .. } => "conflict",
            ReconcileError::Rejected { .. } => "push_rejected",
            ReconcileError::FluxTemplate { .. } => "template",
            ReconcileError::Internal(_) => "internal",
        }
    }
}

/// One image's outcome in a pass: its canonical name when the registry
/// was asked, and each of its policies' decision, with the count of tags
/// it skipped as not numbers (numerical policies only).
type ImageDecisions = (
    Option<String>,
    Vec<(PolicyId, Option<usize>, Checks, Result<Selection, Failure>)>,
);

/// What checking signatures and digests found while one policy decided.
#[derive(Debug, Default)]
struct Checks {
    verified: Option<Verified>,
    /// Tags passed over: tag, verdict.
    unsigned: Vec<(String, String)>,
    /// A tag the files pin (or a verified tag) that the registry now
    /// resolves to another digest.
    moved: Option<Moved>,
}

/// A policy that could not be decided this pass; the others go on.
#[derive(Debug, Clone)]
pub struct Failure {
    pub policy: PolicyId,
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PassOptions {
    /// Compute everything, commit and push nothing.
    pub dry_run: bool,
    /// Only the policies of this shard are decided and written.
    pub shard: Option<Shard>,
    /// Log each finding (once per pass): the daemon's report. `once`
    /// prints them itself instead.
    pub log_findings: bool,
}

/// A policy the pass watched (used by a setter, and in the shard).
#[derive(Debug, Clone)]
pub struct Watched {
    pub id: PolicyId,
    pub image: ImageName,
    /// `None`: the daemon's `scan.interval`.
    pub interval: Option<Duration>,
    /// The tags its setters hold now (before this pass's changes), deduplicated.
    pub current: Vec<String>,
    /// A promotion: its values come from Git, not from scans of `image`.
    pub promoted: bool,
}

/// Where a pass reads tags from.
#[derive(Clone, Copy)]
enum Tags<'a> {
    /// List every image from the registry (`crowsnest once`).
    Registry,
    /// The daemon's cache; images it lacks are listed and stored.
    Cached(&'a TagCache),
    /// Listed once for every pass sharing the memo.
    Memo(&'a Listings),
}

/// One lock per image for listings made by passes, shared by every entry
/// of a [`Fleet`].
#[derive(Default)]
struct ListingTurns(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl ListingTurns {
    fn turn(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.0.lock().unwrap_or_else(|e| e.into_inner());
        turns.entry(key.to_owned()).or_default().clone()
    }
}

/// Tag lists already read from the registry, by canonical image name:
/// `crowsnest once` over several repositories lists each image once.
#[derive(Default)]
pub struct Listings(Mutex<HashMap<String, Vec<String>>>);

/// What a pass found and did.
#[derive(Debug, Default)]
pub struct PassReport {
    /// Problems in the repository's policies or manifests, each holding
    /// back what it touches (see [`Finding`]); the rest was updated.
    pub findings: Vec<Finding>,
    /// Policies that could not be decided (registry errors, unwritable setters).
    pub failures: Vec<Failure>,
    /// What each policy picked this pass.
    pub selections: BTreeMap<PolicyId, Selection>,
    /// Setters held back because the pick is lower than the current value.
    pub held: Vec<Change>,
    pub changes: Vec<Change>,
    pub updates: Vec<ImageUpdate>,
    /// Unified diff of every changed file.
    pub diff: String,
    /// The commit message (with trailers), when there were changes.
    pub message: Option<String>,
    /// The pushed commit, when one was made.
    pub commit: Option<String>,
    /// The branch tip the pass read (before its own commit).
    pub tip: Option<String>,
    /// The branch it was pushed to.
    pub branch: Option<String>,
    /// The policies this pass watched, in id order.
    pub watched: Vec<Watched>,
    /// Images listed from the registry during the pass (canonical names).
    pub listed: Vec<String>,
    /// Pushes that lost a race with another writer and were re-planned.
    pub conflicts: u32,
    /// Numerical policies decided this pass, and how many of their image's
    /// tags each skipped as not numbers.
    pub not_numeric: BTreeMap<PolicyId, usize>,
    /// Promotion policies decided this pass: their source and decision.
    pub promotions: BTreeMap<PolicyId, Promotion>,
    /// When a pass should run again on its own: a promotion candidate
    /// finishes soaking.
    pub wake_at: Option<SystemTime>,
    /// Policies with `verify`: the digest and key of the tag picked.
    pub verified: BTreeMap<PolicyId, Verified>,
    /// Tags passed over for their signature: policy, tag, verdict.
    pub unsigned: Vec<(PolicyId, String, String)>,
    /// Tags whose digest in the registry is no longer the one written
    /// (or verified) for them.
    pub moved: Vec<Moved>,
    /// Changes held until their policy's window opens: policy, and when
    /// it opens (RFC 3339).
    pub waiting: Vec<(PolicyId, String)>,
}

/// A picked tag whose signature verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub tag: String,
    pub digest: String,
    /// The key's fingerprint.
    pub key: String,
}

/// A tag that points to another digest in the registry than the one
/// crowsnest wrote or verified for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub policy: PolicyId,
    pub tag: String,
    /// The digest the files pin (or the `Verified:` trailer records, or
    /// this pass verified just before writing).
    pub written: String,
    /// The digest the registry gives the tag now.
    pub current: String,
    /// Found by the check just before a commit: `written` was verified in
    /// this pass, not yet written.
    pub before_write: bool,
}

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Moved {
            tag,
            written,
            current,
            ..
        } = self;
        if self.before_write {
            write!(
                f,
                "{tag} moved from the verified {written} to {current} before it was written"
            )
        } else {
            write!(f, "{tag} written at {written} now points to {current}")
        }
    }
}

/// A promotion's decision in a pass.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub from: PolicyId,
    /// The `repositories` entry the source was read from.
    pub repository: String,
    pub decision: promote::Decision,
    /// The last commit that promoted a value for this policy, from the
    /// entry's history (`None` before the first).
    pub last: Option<audit::trail::LastPromotion>,
}

impl PassReport {
    /// True when nothing failed.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.failures.is_empty()
    }
}

/// The clone of one remote URL, shared by every repository entry on it
/// and opened (cloned if needed) by the first pass that needs it. Entries
/// take turns on it: git work holds the lock, registry work does not.
pub struct SharedClone {
    git: GitConfig,
    dir: PathBuf,
    repo: Mutex<Option<Repo>>,
}

/// A repository entry as a promotion's source: its clone and settings.
#[derive(Clone)]
struct SourceRepo {
    clone: Arc<SharedClone>,
    entry: RepositoryConfig,
}

/// Every repository entry of a config, with one registry client and one
/// clone per URL.
pub struct Fleet {
    entries: Vec<Arc<Reconciler>>,
}

impl Fleet {
    /// Builds the passes of every entry; nothing is opened or cloned yet
    /// (each entry's first pass does it, so one unreachable remote holds
    /// back only its own entries).
    pub fn new(config: &Config, registry: &Registry) -> Fleet {
        let mut clones: BTreeMap<&str, Arc<SharedClone>> = BTreeMap::new();
        let listing = Arc::new(ListingTurns::default());
        let mut sources = BTreeMap::new();
        for entry in &config.repositories {
            let clone = clones
                .entry(entry.git.url.as_str())
                .or_insert_with(|| {
                    Arc::new(SharedClone {
                        git: entry.git.clone(),
                        dir: entry.clone_dir.clone(),
                        repo: Mutex::new(None),
                    })
                })
                .clone();
            sources.insert(
                entry.name.clone(),
                SourceRepo {
                    clone,
                    entry: entry.clone(),
                },
            );
        }
        let sources = Arc::new(sources);
        // Verdicts are keyed by image, digest and trust: every entry shares
        // them, so a fleet verifies a shared image's digest once.
        let verdicts = Arc::new(verify::Verdicts::default());
        let entries = config
            .repositories
            .iter()
            .map(|entry| {
                let clone = sources[&entry.name].clone.clone();
                Arc::new(Reconciler {
                    config: config.clone(),
                    entry: entry.clone(),
                    registry: registry.clone(),
                    listing: listing.clone(),
                    sources: sources.clone(),
                    timelines: Mutex::new(HashMap::new()),
                    verdicts: verdicts.clone(),
                    clone,
                    writer: Mutex::new(None),
                    warned: Mutex::new(HashSet::new()),
                    trail: Arc::default(),
                    promoted: Arc::default(),
                })
            })
            .collect();
        Fleet { entries }
    }

    pub fn entries(&self) -> &[Arc<Reconciler>] {
        &self.entries
    }
}

/// Joins the registry and the Git clone for passes over one repository
/// entry (a URL and branch).
pub struct Reconciler {
    config: Config,
    entry: RepositoryConfig,
    registry: Registry,
    listing: Arc<ListingTurns>,
    /// Every entry of the config, by name: where promotions read from.
    sources: Arc<BTreeMap<String, SourceRepo>>,
    /// Promotion sources read so far, by source entry and policy: later
    /// passes read only the new commits.
    timelines: Mutex<HashMap<(String, PolicyId), Timeline>>,
    /// Signature verdicts by digest and trust, shared by the fleet.
    verdicts: Arc<verify::Verdicts>,
    clone: Arc<SharedClone>,
    /// The entry's branches, author, signer and template, loaded by the
    /// first pass; a Flux automation may change the branches and author.
    writer: Mutex<Option<Writer>>,
    /// Warnings already logged, so the daemon says each one once.
    warned: Mutex<HashSet<String>>,
    /// The `Verified` trailers read so far from the entry's history.
    trail: Arc<Mutex<audit::trail::VerifiedTrail>>,
    /// The `Promoted-From` trailers read so far from the entry's history.
    promoted: Arc<Mutex<audit::trail::PromotionTrail>>,
}

impl Reconciler {
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The repository entry this reconciler writes to.
    pub fn entry(&self) -> &RepositoryConfig {
        &self.entry
    }

    /// The entry's name (status section and metric label).
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// Runs `work` on the shared clone as this entry's writer, off the
    /// async threads; opens the clone and loads the writer first if needed.
    /// Keeps what the work changed in the writer (a Flux automation's
    /// branches and author).
    async fn locked<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Repo) -> Result<T, ReconcileError> + Send + 'static,
    ) -> Result<T, ReconcileError> {
        let writer = self.writer.lock().map_err(|_| poisoned())?.clone();
        let clone = self.clone.clone();
        let git = self.entry.git.clone();
        let (result, writer) = blocking(move || {
            let writer = match writer {
                Some(w) => w,
                None => match git::Writer::load(&git) {
                    Ok(w) => w,
                    Err(e) => return (Err(e.into()), None),
                },
            };
            let mut guard = match clone.repo.lock() {
                Ok(guard) => guard,
                Err(_) => return (Err(poisoned()), Some(writer)),
            };
            let repo = match &mut *guard {
                Some(repo) => {
                    repo.set_writer(writer);
                    repo
                }
                None => match Repo::open_as(&clone.git, &clone.dir, writer.clone()) {
                    Ok(repo) => guard.insert(repo),
                    Err(e) => return (Err(e.into()), Some(writer)),
                },
            };
            let result = work(repo);
            (result, Some(repo.writer().clone()))
        })
        .await?;
        if let Some(writer) = writer {
            *self.writer.lock().map_err(|_| poisoned())? = Some(writer);
        }
        result
    }

    /// One pass. Re-plans on the new tip when the push loses a race, at most
    /// [`MAX_PUSH_ATTEMPTS`] times.
    pub async fn pass(&self, options: PassOptions) -> Result<PassReport, ReconcileError> {
        self.run_pass(options, Tags::Registry).await
    }

    /// One pass that lists each image at most once across every pass
    /// given the same `memo` (`crowsnest once` over several repositories).
    pub async fn pass_memo(
        &self,
        options: PassOptions,
        memo: &Listings,
    ) -> Result<PassReport, ReconcileError> {
        self.run_pass(options, Tags::Memo(memo)).await
    }

    /// One pass that takes tags from `cache` (listing and storing only the
    /// images it lacks): the daemon's pass, whose scans fill the cache.
    pub async fn pass_cached(
        &self,
        options: PassOptions,
        cache: &TagCache,
    ) -> Result<PassReport, ReconcileError> {
        self.run_pass(options, Tags::Cached(cache)).await
    }

    /// The registry client (shared by every clone).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    #[instrument(skip_all, fields(repository = %self.entry.name, branch = %self.entry.git.branch, dry_run = options.dry_run))]
    async fn run_pass(
        &self,
        options: PassOptions,
        tags: Tags<'_>,
    ) -> Result<PassReport, ReconcileError> {
        let mut backoff = Duration::from_millis(200);
        let mut conflicts = 0;
        // Each finding is logged once per pass, not again on a re-plan.
        let mut logged = HashSet::new();
        for attempt in 1..=MAX_PUSH_ATTEMPTS {
            let (base, mut inventory, mut findings) = self.snapshot().await?;
            // A shard reports what holds back its own policies (and the
            // repository-wide findings on shard 0), not every shard's.
            if let Some(shard) = options.shard {
                findings.retain(|f| f.concerns(shard));
            }
            let mut report = PassReport {
                findings,
                conflicts,
                tip: Some(base.branch_tip.0.to_string()),
                ..PassReport::default()
            };
            for finding in report.findings.iter().filter(|_| options.log_findings) {
                if logged.insert(finding.clone()) {
                    warn!(file = %finding.at.file, kind = finding.kind.label(), policy = policy_list(&finding.policies), "{finding}");
                }
            }
            if report.findings.iter().any(Finding::holds_everything) {
                warn!("nothing is written while the automation above is broken");
                return Ok(report);
            }
            self.warn_once(&inventory.warnings);
            for policy in inventory.used_policies().iter().filter(|p| p.insecure) {
                self.registry.allow_plain_http(&policy.image.registry);
            }
            report.watched = watched(&inventory, options.shard);
            let trust = self.load_trust(&inventory, &base, &mut report).await;
            let written = self.verified_writes(&inventory, &base, options.shard).await;
            let mut selections = self
                .select(
                    &inventory,
                    options.shard,
                    tags,
                    (&trust, &written),
                    &mut report,
                )
                .await;
            selections.extend(
                self.promotions(&mut inventory, &base, options.shard, &mut report)
                    .await,
            );
            let mut edits = plan(&inventory, &selections, &mut report);
            self.recheck_verified(&inventory, &mut edits, &mut report)
                .await;
            hold_for_windows(&inventory, &mut edits, &mut report, SystemTime::now());
            report.selections = selections;
            if report.changes.is_empty() {
                info!("nothing to change");
                return Ok(report);
            }
            let files = apply(&inventory, edits, &mut report);
            if files.is_empty() {
                return Ok(report);
            }
            let flux_text = self.flux_message(&inventory, &report.changes)?;
            let changes = report.changes.clone();
            let updates = report.updates.clone();
            let promoted = promoted_from(&report);
            let verified = verified_lines(&report);
            let dry_run = options.dry_run;
            let push_branch = base.push_branch.clone();
            let (message, outcome) = self
                .locked(move |repo| {
                    let mut trailers = audit::trailer_lines(&updates);
                    trailers.extend(audit::promoted_lines(&promoted));
                    trailers.extend(verified);
                    let message = match flux_text
                        .and_then(|t| crate::message::with_trailers(&t, &trailers))
                    {
                        Some(message) => message,
                        None => repo.message(&MessageInput {
                            changes: &changes,
                            updates: &updates,
                            trailers: &trailers,
                        })?,
                    };
                    if dry_run {
                        return Ok::<_, ReconcileError>((message, None));
                    }
                    let commit = repo.commit(&base, &files, &message)?;
                    let outcome = repo.push(&base, &commit)?;
                    Ok((message, Some((commit, outcome))))
                })
                .await?;
            report.message = Some(message);
            let Some(outcome) = outcome else {
                return Ok(report);
            };
            match outcome {
                (commit, PushOutcome::Pushed) => {
                    info!(commit = %commit, changes = report.changes.len(), "pushed");
                    // This commit is now each changed promotion's last.
                    let at = unix(SystemTime::now());
                    for (id, promotion) in &mut report.promotions {
                        let update = report.updates.iter().find(|u| &u.policy == id);
                        if let (Some(update), Some(picked)) = (update, promotion.decision.picked())
                        {
                            promotion.last = Some(audit::trail::LastPromotion {
                                commit: commit.to_string(),
                                at,
                                value: update.to.clone(),
                                source_commit: picked.commit.to_string(),
                            });
                        }
                    }
                    report.commit = Some(commit.to_string());
                    report.branch = Some(push_branch);
                    return Ok(report);
                }
                (_, PushOutcome::NonFastForward) => {
                    conflicts += 1;
                    warn!(
                        attempt,
                        "the branch moved while the pass ran; fetching and planning again"
                    );
                    let jitter = rand::random_range(0..=backoff.as_millis() as u64 / 2);
                    tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                    backoff *= 2;
                }
                (_, PushOutcome::Rejected(message)) => {
                    return Err(ReconcileError::Rejected {
                        branch: push_branch,
                        message,
                    });
                }
            }
        }
        let branch = self
            .writer
            .lock()
            .map_err(|_| poisoned())?
            .as_ref()
            .map_or_else(
                || self.entry.git.push_branch.clone(),
                |w| w.push_branch.clone(),
            );
        Err(ReconcileError::KeptMoving {
            branch,
            attempts: MAX_PUSH_ATTEMPTS,
        })
    }

    /// Fetches and reads policies and setters from the fetched tip. A Flux
    /// `ImageUpdateAutomation` found there supplies the branches and the
    /// author the config leaves unset; when its branches differ from the
    /// ones fetched, they are fetched and read instead (once per pass).
    async fn snapshot(&self) -> Result<(Base, Inventory, Vec<Finding>), ReconcileError> {
        let config = self.config.clone();
        let entry = self.entry.clone();
        self.locked(move |repo| {
            let mut base = repo.fetch()?;
            let (mut inventory, mut findings) = read_inventory(repo, &base, &config, &entry)?;
            let (branch, push_branch, author) =
                effective_git(&entry, inventory.automation.as_ref());
            repo.set_author(author);
            if repo.set_branches(&branch, &push_branch) {
                base = repo.fetch()?;
                (inventory, findings) = read_inventory(repo, &base, &config, &entry)?;
            }
            Ok((base, inventory, findings))
        })
        .await
    }

    /// Logs each warning the first time a pass meets it.
    fn warn_once(&self, warnings: &[Finding]) {
        let Ok(mut warned) = self.warned.lock() else {
            return;
        };
        for warning in warnings {
            if warned.insert(warning.to_string()) {
                warn!(%warning, "not applied");
            }
        }
    }

    /// The automation's `messageTemplate` rendered over this commit's
    /// changes, when the config has no `git.messageTemplate` of its own.
    fn flux_message(
        &self,
        inventory: &Inventory,
        changes: &[Change],
    ) -> Result<Option<String>, ReconcileError> {
        if self.entry.git.message_template.is_some() {
            return Ok(None);
        }
        let Some(automation) = &inventory.automation else {
            return Ok(None);
        };
        let Some(message) = &automation.message else {
            return Ok(None);
        };
        let mut ids = HashMap::new();
        let mut flux_changes = Vec::with_capacity(changes.len());
        for change in changes {
            let objects = ids.entry(change.at.file.as_str()).or_insert_with(|| {
                inventory
                    .files
                    .get(&change.at.file)
                    .map(|f| crate::policy::object_ids(&f.text))
                    .unwrap_or_default()
            });
            flux_changes.push(FluxChange {
                file: change.at.file.clone(),
                object: crate::policy::object_at(objects, change.at.position),
                old: change.old.clone(),
                new: change.new.clone(),
                setter: FluxChange::setter_name(&change.policy, change.field),
            });
        }
        message
            .render(&automation.id, &flux_changes)
            .map(Some)
            .map_err(|message_error| ReconcileError::FluxTemplate {
                at: message.at.clone(),
                message: message_error,
            })
    }

    /// Just before writing: every verified tag must still point to the
    /// digest that was verified; a policy whose tag moved in between is
    /// left out of this pass.
    async fn recheck_verified(
        &self,
        inventory: &Inventory,
        edits: &mut BTreeMap<String, Vec<(Edit, Change, ImageUpdate)>>,
        report: &mut PassReport,
    ) {
        let changed: Vec<PolicyId> = report
            .verified
            .keys()
            .filter(|id| report.changes.iter().any(|c| &c.policy == *id))
            .cloned()
            .collect();
        for id in changed {
            let (Some(policy), Some(verified)) =
                (inventory.policies.get(&id), report.verified.get(&id))
            else {
                continue;
            };
            let now = self
                .registry
                .inspect(&policy.image, &verified.tag, policy.platform.as_ref())
                .await
                .map(|info| info.digest);
            let failure = match now {
                Ok(digest) if digest == verified.digest => continue,
                Ok(digest) => {
                    report.moved.push(Moved {
                        policy: id.clone(),
                        tag: verified.tag.clone(),
                        written: verified.digest.clone(),
                        current: digest.clone(),
                        before_write: true,
                    });
                    Failure {
                        policy: id.clone(),
                        kind: "tag_moved",
                        message: format!(
                            "{}: {}:{} moved from the verified {} to {digest} before it was written; nothing is written for it in this pass",
                            policy.declared_at, policy.image, verified.tag, verified.digest
                        ),
                    }
                }
                // Not a move: the registry did not answer. The policy
                // fails like any registry failure and is decided again
                // next pass.
                Err(e) => Failure {
                    policy: id.clone(),
                    kind: e.kind(),
                    message: format!(
                        "{}: cannot check that {}:{} still points to the verified digest, so nothing is written for it in this pass: {e}",
                        policy.declared_at, policy.image, verified.tag
                    ),
                },
            };
            warn!(policy = %id, "{}", failure.message);
            leave_out(&id, edits, report);
            report.verified.remove(&id);
            report.failures.push(failure);
        }
    }

    /// The digest each policy with `verify` whose files pin none for the
    /// tag they hold was last written with, by its `Verified` trailer
    /// (when that trailer wrote the tag the files hold now).
    async fn verified_writes(
        &self,
        inventory: &Inventory,
        base: &Base,
        shard: Option<Shard>,
    ) -> BTreeMap<PolicyId, audit::VerifiedWrite> {
        let current: BTreeMap<PolicyId, String> = inventory
            .used_policies()
            .into_iter()
            .filter(|p| p.verify.is_some() && shard.is_none_or(|s| s.owns(&p.id)))
            .filter_map(|p| Some((p.id.clone(), current_tag(inventory, &p.id)?)))
            .filter(|(id, tag)| known_digest(inventory, id, tag).is_none())
            .collect();
        if current.is_empty() {
            return BTreeMap::new();
        }
        let wanted = current.keys().cloned().collect();
        let (trail, tip) = (self.trail.clone(), base.commit.0);
        let read = self
            .locked(move |repo| {
                let mut trail = trail.lock().map_err(|_| poisoned())?;
                trail.read(repo.repository(), tip, &wanted).map_err(|e| {
                    ReconcileError::Internal(format!("reading Verified trailers: {e}"))
                })
            })
            .await;
        match read {
            Ok(writes) => writes
                .into_values()
                .filter(|w| current.get(&w.policy) == Some(&w.tag))
                .map(|w| (w.policy.clone(), w))
                .collect(),
            Err(e) => {
                warn!(error = %e, "cannot read the Verified trailers: a tag written without its digest is not checked for a move in this pass");
                BTreeMap::new()
            }
        }
    }

    /// The trust of every used policy with `verify`: its public keys, read
    /// from the fetched tree, and its keyless identities with the daemon's
    /// trusted root. A policy whose trust cannot be read is not decided.
    async fn load_trust(
        &self,
        inventory: &Inventory,
        base: &Base,
        report: &mut PassReport,
    ) -> BTreeMap<PolicyId, verify::Trust> {
        let wanted: Vec<(PolicyId, Vec<(String, Located)>)> = inventory
            .used_policies()
            .into_iter()
            .filter_map(|p| Some((p.id.clone(), p.verify.as_ref()?.public_keys.clone())))
            .collect();
        if wanted.is_empty() {
            return BTreeMap::new();
        }
        let base = base.clone();
        let read = self
            .locked(move |repo| {
                let mut out = Vec::new();
                for (id, files) in wanted {
                    let mut keys = Vec::new();
                    let mut problem = None;
                    for (path, at) in files {
                        match repo.read_path(&base, &path) {
                            Ok(Some(bytes)) => {
                                match verify::PublicKey::from_pem(&String::from_utf8_lossy(&bytes))
                                {
                                    Ok(key) => keys.push(key),
                                    Err(e) => {
                                        problem =
                                            Some(format!("{at}: verify.publicKeys {path}: {e}"))
                                    }
                                }
                            }
                            Ok(None) => {
                                problem = Some(format!(
                                    "{at}: verify.publicKeys {path}: no such file in the repository"
                                ))
                            }
                            Err(e) => {
                                problem = Some(format!("{at}: verify.publicKeys {path}: {e}"))
                            }
                        }
                    }
                    out.push((id, problem.map_or(Ok(keys), Err)));
                }
                Ok(out)
            })
            .await;
        let list = match read {
            Ok(list) => list,
            Err(e) => {
                warn!(error = %e, "cannot read the verify keys");
                return BTreeMap::new();
            }
        };
        let needs_root = inventory
            .used_policies()
            .iter()
            .any(|p| p.verify.as_ref().is_some_and(|v| !v.keyless.is_empty()));
        let root = match (needs_root, &self.config.trusted_root) {
            (false, _) => Ok(None),
            (true, None) => Err("verify.keyless needs sigstore.trustedRoot in the daemon config (the Fulcio CAs and Rekor keys to check against)".to_owned()),
            (true, Some(path)) => verify::TrustedRoot::load(path).map(|root| Some(Arc::new(root))),
        };
        let mut trust = BTreeMap::new();
        for (id, keys) in list {
            let Some(policy) = inventory.policies.get(&id) else {
                continue;
            };
            let keyless = policy
                .verify
                .as_ref()
                .map(|v| v.keyless.as_slice())
                .unwrap_or_default();
            let built = keys.and_then(|keys| {
                let root = match (&root, keyless.is_empty()) {
                    (_, true) => None,
                    (Ok(root), false) => root.clone(),
                    (Err(e), false) => return Err(format!("{}: {e}", policy.declared_at)),
                };
                Ok(verify::Trust::new(
                    keys,
                    verify::Identity::compile(keyless),
                    root,
                ))
            });
            match built {
                Ok(t) => {
                    trust.insert(id, t);
                }
                Err(message) => {
                    warn!(policy = %id, error = %message, "policy not decided: its verify trust cannot be read");
                    report.failures.push(Failure {
                        policy: id,
                        kind: "verify_keys",
                        message,
                    });
                }
            }
        }
        trust
    }

    /// Decides every promotion policy of the shard from its source's
    /// history: the picks, and each decision in the report. A promotion's
    /// ordering (and downgrade guard) is its source policy's, set on the
    /// inventory's copy of the policy here.
    async fn promotions(
        &self,
        inventory: &mut Inventory,
        base: &Base,
        shard: Option<Shard>,
        report: &mut PassReport,
    ) -> BTreeMap<PolicyId, Selection> {
        let mut selections = BTreeMap::new();
        let promoted: Vec<Policy> = inventory
            .used_policies()
            .into_iter()
            .filter(|p| p.promote.is_some() && shard.is_none_or(|s| s.owns(&p.id)))
            .cloned()
            .collect();
        let now = SystemTime::now();
        // Read once per pass, however many promotions need them: the keys
        // of `requireSigned` and each source entry's fetched tip.
        let verifier = promoted
            .iter()
            .any(|p| p.promote.as_ref().is_some_and(|p| p.require_signed))
            .then(|| self.signature_verifier());
        let mut tips = HashMap::new();
        for policy in promoted {
            let promote = policy.promote.clone().expect("filtered on promote");
            match self
                .promotion(
                    inventory,
                    base,
                    &policy,
                    &promote,
                    now,
                    verifier.as_ref(),
                    &mut tips,
                )
                .await
            {
                Ok((order, promotion)) => {
                    take_ordering(inventory, &policy.id, order);
                    if let Some(at) = promotion.decision.next_change {
                        let at = std::time::UNIX_EPOCH
                            + Duration::from_secs(u64::try_from(at).unwrap_or(0));
                        report.wake_at = Some(report.wake_at.map_or(at, |w| w.min(at)));
                    }
                    if let Some(picked) = promotion.decision.picked() {
                        if let Some(selection) = promoted_selection(&picked.value) {
                            info!(policy = %policy.id, from = %promotion.from, value = %picked.value, commit = %picked.commit, "promotion picked");
                            selections.insert(policy.id.clone(), selection);
                        }
                    }
                    report.promotions.insert(policy.id.clone(), promotion);
                }
                Err(message) => {
                    warn!(policy = %policy.id, error = %message, "promotion not decided");
                    report.failures.push(Failure {
                        policy: policy.id.clone(),
                        kind: "promotion",
                        message,
                    });
                }
            }
        }
        self.last_promotions(base, report).await;
        selections
    }

    /// Gives each decided promotion its last promotion, read from the
    /// `Promoted-From` trailers of the entry's history (incrementally; the
    /// status shows it). A history that cannot be read leaves them unknown.
    async fn last_promotions(&self, base: &Base, report: &mut PassReport) {
        let sources: BTreeMap<PolicyId, PolicyId> = report
            .promotions
            .iter()
            .map(|(id, p)| (id.clone(), p.from.clone()))
            .collect();
        if sources.is_empty() {
            return;
        }
        let (trail, tip) = (self.promoted.clone(), base.commit.0);
        let read = self
            .locked(move |repo| {
                let mut trail = trail.lock().map_err(|_| poisoned())?;
                trail.read(repo.repository(), tip, &sources).map_err(|e| {
                    ReconcileError::Internal(format!("reading Promoted-From trailers: {e}"))
                })
            })
            .await;
        match read {
            Ok(mut last) => {
                for (id, promotion) in &mut report.promotions {
                    promotion.last = last.remove(id);
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot read the Promoted-From trailers: the last promotions are not shown in this pass")
            }
        }
    }

    /// The keys whose commit signatures count as Good for `requireSigned`.
    fn signature_verifier(&self) -> Result<Arc<crate::git::verify::Verifier>, String> {
        if self.config.verify_keys.is_empty() {
            return Err("promote.requireSigned needs verifyKeys in the daemon config (the keys whose signatures count as Good)".to_owned());
        }
        crate::git::verify::Verifier::load(&self.config.verify_keys)
            .map(Arc::new)
            .map_err(|e| format!("verifyKeys: {e}"))
    }

    /// One promotion: reads (incrementally) the history of its source
    /// policy on the source entry's branch and decides. Returns the
    /// policy whose ordering it used (the first registry policy up the
    /// chain); a source that declares no such policy is an error, never a
    /// guessed ordering. `verifier` is this pass's
    /// [`Self::signature_verifier`]; `tips` the source branches fetched so
    /// far in this pass, so each is fetched once.
    #[allow(clippy::too_many_arguments)]
    async fn promotion(
        &self,
        inventory: &Inventory,
        base: &Base,
        policy: &Policy,
        promote: &crate::policy::Promote,
        now: SystemTime,
        verifier: Option<&Result<Arc<crate::git::verify::Verifier>, String>>,
        tips: &mut HashMap<String, git2::Oid>,
    ) -> Result<(Policy, Promotion), String> {
        let name = promote
            .repository
            .clone()
            .unwrap_or_else(|| self.entry.name.clone());
        let source = self.sources.get(&name).cloned().ok_or_else(|| {
            format!(
                "{}: promote.repository {name:?} is not an entry of the daemon config",
                policy.declared_at
            )
        })?;
        let same = name == self.entry.name;
        let key = (name.clone(), promote.from.clone());
        let previous = self
            .timelines
            .lock()
            .map_err(|_| "the timeline cache lock was poisoned".to_owned())?
            .remove(&key)
            .unwrap_or_default();
        let verifier = match (promote.require_signed, verifier) {
            (false, _) => None,
            (true, Some(Ok(verifier))) => Some(verifier.clone()),
            (true, Some(Err(e))) => return Err(format!("{}: {e}", policy.declared_at)),
            (true, None) => {
                return Err(format!(
                    "{}: the keys of promote.requireSigned were not loaded",
                    policy.declared_at
                ));
            }
        };
        // The source policy: read here when it lives in this entry's tree,
        // from the source's tip otherwise.
        let local_order = same
            .then(|| promote::ordering(&promote.from, |id| inventory.policies.get(id).cloned()));
        let local_targets = same.then(|| {
            inventory
                .policies
                .get(&promote.from)
                .map(|p| p.targets.clone())
                .unwrap_or_default()
        });
        let from = promote.from.clone();
        let tip = if same {
            Some(base.branch_tip.0)
        } else {
            tips.get(&name).copied()
        };
        let entry = source.entry.clone();
        let clone = source.clone.clone();
        let scan_dir = if same {
            inventory.scan_dir.clone()
        } else {
            entry.git.path.clone()
        };
        let (timeline, remote_order, fetched) = blocking(move || {
            let mut guard = clone
                .repo
                .lock()
                .map_err(|_| "the clone lock was poisoned".to_owned())?;
            if guard.is_none() {
                let writer = git::Writer::load(&entry.git).map_err(|e| e.to_string())?;
                let repo =
                    Repo::open_as(&clone.git, &clone.dir, writer).map_err(|e| e.to_string())?;
                *guard = Some(repo);
            }
            let repo = guard.as_mut().expect("opened above");
            let tip = match tip {
                Some(tip) => tip,
                None => {
                    repo.fetch_branch(&entry.git.branch)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| {
                            format!("{}: branch {} not found", repo.remote(), entry.git.branch)
                        })?
                        .0
                }
            };
            // The source policy as the source's tip declares it (its
            // targets are setters too), and the ordering up its chain.
            let mut declared = None;
            let order = if same {
                None
            } else {
                promote::ordering(&from, |id| {
                    let found = promote::policy_at(repo.repository(), tip, &entry.git.policies, id);
                    if *id == from {
                        declared.clone_from(&found);
                    }
                    found
                })
            };
            let targets = local_targets
                .or(declared.map(|p| p.targets))
                .unwrap_or_default();
            let mut timeline = previous
                .read(repo.repository(), tip, &from, &scan_dir, &targets)
                .map_err(|e| e.to_string())?;
            if let Some(verifier) = &verifier {
                timeline.verify(repo.repository(), verifier);
            }
            Ok::<_, String>((timeline, order, tip))
        })
        .await
        .map_err(|e| e.to_string())??;
        if !same {
            tips.insert(name.clone(), fetched);
        }
        let Some(order) = local_order.flatten().or(remote_order) else {
            return Err(format!(
                "{}: promote.from {}: repository {name:?} (branch {}) declares no such policy, or its promote.from chain never reaches a policy that chooses from the registry; nothing is promoted until it does",
                promote.from_at, promote.from, source.entry.git.branch
            ));
        };
        let current = if policy.allow_downgrade {
            None
        } else {
            current_tag(inventory, &policy.id)
        };
        let decision = promote::decide(
            &timeline,
            promote,
            &order.selector(),
            current.as_deref(),
            unix(now),
        );
        if let Ok(mut timelines) = self.timelines.lock() {
            timelines.insert(key, timeline);
        }
        Ok((
            order,
            Promotion {
                from: promote.from.clone(),
                repository: name,
                decision,
                last: None,
            },
        ))
    }

    /// Reads each used image's tags once and lets each of its policies
    /// pick. Images are handled a few at a time and their tags dropped once
    /// decided, so a pass over a thousand repositories of a thousand tags
    /// never holds them all as strings at once.
    async fn select(
        &self,
        inventory: &Inventory,
        shard: Option<Shard>,
        tags: Tags<'_>,
        (trust, written): (
            &BTreeMap<PolicyId, verify::Trust>,
            &BTreeMap<PolicyId, audit::VerifiedWrite>,
        ),
        report: &mut PassReport,
    ) -> BTreeMap<PolicyId, Selection> {
        let mut by_image: BTreeMap<String, Vec<&Policy>> = BTreeMap::new();
        for policy in inventory.used_policies() {
            let keys_missing = policy.verify.is_some() && !trust.contains_key(&policy.id);
            if policy.promote.is_none() && !keys_missing && shard.is_none_or(|s| s.owns(&policy.id))
            {
                by_image
                    .entry(policy.image.canonical())
                    .or_default()
                    .push(policy);
            }
        }
        // Futures built first: a closure inside a stream combinator would
        // make the pass future not `Send` for every lifetime (it is spawned).
        let jobs: Vec<_> = by_image
            .into_iter()
            .map(|(key, policies)| async move {
                let image = &policies[0].image;
                let (listed, result) = self.tags_of(image, &key, tags).await;
                let mut decisions = Vec::with_capacity(policies.len());
                for policy in policies {
                    let mut not_numeric = None;
                    let mut checks = Checks::default();
                    let trust = trust.get(&policy.id);
                    let decision = match &result {
                        Ok(list) => {
                            self.decide(
                                policy,
                                list,
                                inventory,
                                trust.map(|t| (t, written.get(&policy.id))),
                                &mut not_numeric,
                                &mut checks,
                            )
                            .await
                        }
                        Err(e) => Err(Failure {
                            policy: policy.id.clone(),
                            kind: e.kind(),
                            message: e.to_string(),
                        }),
                    };
                    decisions.push((policy.id.clone(), not_numeric, checks, decision));
                }
                (listed.then_some(key), decisions)
            })
            .collect();
        let decided: Vec<ImageDecisions> = futures::stream::iter(jobs)
            .buffer_unordered(SCAN_CONCURRENCY)
            .collect()
            .await;
        let mut selections = BTreeMap::new();
        for (listed, decisions) in decided {
            report.listed.extend(listed);
            for (id, not_numeric, checks, decision) in decisions {
                if let Some(count) = not_numeric {
                    report.not_numeric.insert(id.clone(), count);
                }
                for (tag, verdict) in checks.unsigned {
                    report.unsigned.push((id.clone(), tag, verdict));
                }
                if let Some(verified) = checks.verified {
                    report.verified.insert(id.clone(), verified);
                }
                report.moved.extend(checks.moved);
                match decision {
                    Ok(selection) => {
                        selections.insert(id, selection);
                    }
                    Err(failure) => {
                        warn!(policy = %failure.policy, error = %failure.message, "policy not decided");
                        report.failures.push(failure);
                    }
                }
            }
        }
        report.listed.sort();
        report.failures.sort_by(|a, b| a.policy.cmp(&b.policy));
        selections
    }

    /// An image's tags from `tags`, and whether the registry was asked.
    async fn tags_of(
        &self,
        image: &ImageName,
        key: &str,
        tags: Tags<'_>,
    ) -> (bool, Result<Vec<String>, RegistryError>) {
        match tags {
            Tags::Registry => (true, self.registry.list_tags(image).await),
            Tags::Memo(memo) => {
                let known = memo.0.lock().ok().and_then(|m| m.get(key).cloned());
                if let Some(tags) = known {
                    return (false, Ok(tags));
                }
                let listed = self.registry.list_tags(image).await;
                if let (Ok(list), Ok(mut memo)) = (&listed, memo.0.lock()) {
                    memo.insert(key.to_owned(), list.clone());
                }
                (true, listed)
            }
            Tags::Cached(cache) => {
                if let Some(cached) = cache.get(key) {
                    return (false, Ok(cached.tags.to_vec()));
                }
                // Passes of several entries missing the same image list it
                // once: the first lists and stores, the others wait and
                // read the cache.
                let turn = self.listing.turn(key);
                let _listing = turn.lock().await;
                if let Some(cached) = cache.get(key) {
                    return (false, Ok(cached.tags.to_vec()));
                }
                let listed = self.registry.list_tags(image).await;
                if let Ok(list) = &listed {
                    if let Err(e) = cache.store(key, list, std::time::SystemTime::now()) {
                        warn!(image = %image, error = %e, "cannot persist the tag cache");
                    }
                }
                (true, listed)
            }
        }
    }

    /// One policy's pick from its image's tags: the best tag under the
    /// policy that provides its platform (if it names one), with the digest
    /// its `digestReflectionPolicy` asks for.
    async fn decide(
        &self,
        policy: &Policy,
        tags: &[String],
        inventory: &Inventory,
        verify: Option<(&verify::Trust, Option<&audit::VerifiedWrite>)>,
        not_numeric: &mut Option<usize>,
        checks: &mut Checks,
    ) -> Result<Selection, Failure> {
        // With `verify`: its trust, and the tag and digest its last
        // `Verified` trailer wrote, when the files hold that tag without
        // a digest.
        let (trust, trailed) = (verify.map(|v| v.0), verify.and_then(|v| v.1));
        let fail = |kind: &'static str, message: String| Failure {
            policy: policy.id.clone(),
            kind,
            message,
        };
        let registry_failure = |e: RegistryError| fail(e.kind(), e.to_string());
        let no_match = |what: &str| {
            fail(
                "no_match",
                format!(
                    "{}: none of the {} tags of {} {what} (see `crowsnest tags {} --policy {}`)",
                    policy.declared_at,
                    tags.len(),
                    policy.image,
                    policy.image,
                    policy.declared_at.file
                ),
            )
        };
        let pick = policy.pick(tags);
        if matches!(policy.rule, Rule::Numerical(_)) {
            *not_numeric = Some(pick.not_numeric);
        }
        if pick.not_numeric > 0 {
            warn!(policy = %policy.id, image = %policy.image, skipped = pick.not_numeric, "numerical policy skipped tags that are not numbers");
        }
        let Some(first) = pick.index else {
            return Err(no_match("matches the policy"));
        };
        let mut selection = Selection {
            tag: tags[first].clone(),
            digest: None,
        };
        // The digest a platform check already resolved, reused below.
        let mut inspected = None;
        if policy.platform.is_some() || trust.is_some() {
            let platform = policy.platform.as_ref();
            let mut remaining: Vec<String> = tags.to_vec();
            let mut index = first;
            let mut probes = 0;
            // With `verify` alone, a tag's digest is looked up again only
            // when the image's tag list changed (the check just before a
            // commit looks again anyway): a steady pass asks nothing. The
            // exception is the tag the files pin under
            // `digestReflectionPolicy: Always`, looked up every pass as
            // without `verify`, so a tag pushed over is seen.
            let listing = trust.map(|_| verify::Listing::new(tags));
            let list = listing.filter(|_| platform.is_none()).map(|l| l.hash);
            loop {
                let tag = &remaining[index];
                let written = trust.and_then(|_| {
                    known_digest(inventory, &policy.id, tag)
                        .or_else(|| trailed.filter(|w| &w.tag == tag).map(|w| w.digest.clone()))
                });
                let fresh =
                    written.is_some() && policy.digest_reflection == DigestReflection::Always;
                let known = list
                    .filter(|_| !fresh)
                    .and_then(|l| self.verdicts.known_digest(&policy.image, tag, l));
                let info = match known {
                    Some(digest) => crate::registry::TagInfo {
                        digest,
                        media_type: None,
                        platforms: Vec::new(),
                        provides_platform: true,
                    },
                    None => {
                        let info = self
                            .registry
                            .inspect(&policy.image, tag, platform)
                            .await
                            .map_err(registry_failure)?;
                        if let Some(l) = list {
                            self.verdicts
                                .remember_digest(&policy.image, tag, l, &info.digest);
                        }
                        info
                    }
                };
                let mut verdict = None;
                let signed = match (trust.zip(listing), info.provides_platform) {
                    (Some((trust, listing)), true) => {
                        let found = self
                            .verdicts
                            .verdict(&self.registry, &policy.image, &info.digest, trust, listing)
                            .await
                            .map_err(registry_failure)?;
                        verdict = Some(found.clone());
                        match found {
                            verify::Verdict::Signed { by } => Some(by),
                            other => {
                                warn!(policy = %policy.id, tag = %tag, digest = %info.digest, verdict = %other, "skipped: the image is not signed by the policy's keys");
                                checks.unsigned.push((tag.clone(), other.to_string()));
                                None
                            }
                        }
                    }
                    (None, _) => Some(String::new()),
                    (Some(_), false) => None,
                };
                // With `verify`, a tag written with one digest that now
                // points to another is reported and never followed, be the
                // new image signed or not.
                if let Some(written) = written.filter(|w| *w != info.digest) {
                    let current = info.digest.clone();
                    warn!(policy = %policy.id, tag = %tag, written = %written, current = %current, "the tag now points to another digest than the one written; not followed (verify)");
                    let now = match &verdict {
                        Some(verdict) => format!("{current} ({verdict})"),
                        None => current.clone(),
                    };
                    let message = format!(
                        "{}: {}:{tag} now points to {now}, not the {written} written for it; crowsnest does not follow a moved tag of a policy with verify (pin the new digest by hand if it is intended)",
                        policy.declared_at, policy.image
                    );
                    checks.moved = Some(Moved {
                        policy: policy.id.clone(),
                        tag: tag.clone(),
                        written,
                        current,
                        before_write: false,
                    });
                    return Err(fail("tag_moved", message));
                }
                if info.provides_platform {
                    if let Some(key) = signed {
                        selection.tag = tag.clone();
                        if trust.is_some() {
                            checks.verified = Some(Verified {
                                tag: tag.clone(),
                                digest: info.digest.clone(),
                                key,
                            });
                        }
                        inspected = Some(info.digest);
                        break;
                    }
                } else if let Some(platform) = platform {
                    info!(policy = %policy.id, tag = %tag, %platform, "skipped: the tag does not provide the platform");
                }
                probes += 1;
                remaining.remove(index);
                match policy.select(&remaining) {
                    Some(next) if probes < MAX_PLATFORM_PROBES => index = next,
                    Some(_) => {
                        let (kind, what) = match platform {
                            Some(platform) => ("platform", format!("provide {platform}")),
                            None => ("unsigned", "are signed by the policy's keys".to_owned()),
                        };
                        return Err(fail(
                            kind,
                            format!(
                                "{}: none of the {MAX_PLATFORM_PROBES} best tags of {} {what}",
                                policy.declared_at, policy.image
                            ),
                        ));
                    }
                    None => {
                        let what = match platform {
                            Some(platform) => format!("matches the policy and provides {platform}"),
                            None => {
                                "matches the policy and is signed by the policy's keys".to_owned()
                            }
                        };
                        return Err(no_match(&what));
                    }
                }
            }
        }
        let resolved = inspected.clone();
        selection.digest =
            reflect_digest(&self.registry, policy, inventory, &selection.tag, inspected)
                .await
                .map_err(registry_failure)?;
        // Without `verify`: the digest the registry gives the tag now, when
        // this pass asked (with `verify` the loop above checked).
        let asked = match (&resolved, &selection.digest) {
            _ if trust.is_some() => None,
            (Some(digest), _) => Some(digest.clone()),
            (None, Some(digest)) if policy.digest_reflection == DigestReflection::Always => {
                Some(digest.clone())
            }
            _ => None,
        };
        if let (Some(current), Some(written)) =
            (asked, known_digest(inventory, &policy.id, &selection.tag))
        {
            if current != written {
                // digestReflectionPolicy: Always follows a moved tag, as
                // in Flux, but never silently.
                warn!(policy = %policy.id, tag = %selection.tag, written = %written, current = %current, "the tag now points to another digest than the files pin; following it (no verify)");
                checks.moved = Some(Moved {
                    policy: policy.id.clone(),
                    tag: selection.tag.clone(),
                    written,
                    current,
                    before_write: false,
                });
            }
        }
        info!(policy = %policy.id, image = %policy.image, tag = %selection.tag, digest = selection.digest.as_deref().unwrap_or(""), "selected");
        Ok(selection)
    }
}

/// Reads the inventory of `base` the way the config says.
fn read_inventory(
    repo: &Repo,
    base: &Base,
    config: &Config,
    entry: &RepositoryConfig,
) -> Result<(Inventory, Vec<Finding>), ReconcileError> {
    let source = GitSource::new(repo, base)?;
    let names: Vec<&str> = config
        .repositories
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let options = inventory::Options {
        sources: Some(inventory::Sources {
            entry: &entry.name,
            entries: &names,
            verify_keys: !config.verify_keys.is_empty(),
        }),
        ..inventory_options(config, entry)
    };
    Ok(Inventory::build_with(&source, &options)?)
}

/// Where a repository entry's policies and setters are, as a pass reads
/// them (without the lint of `promote` keys, which needs every entry).
pub fn inventory_options<'a>(
    config: &'a Config,
    entry: &'a RepositoryConfig,
) -> inventory::Options<'a> {
    inventory::Options {
        policies_dir: &entry.git.policies,
        scan_dir: &entry.git.path,
        flux_in_scan_dir: config.flux.scan_path,
        automation: config.flux.automation.as_ref(),
        automation_path: entry.unset.path,
        sources: None,
    }
}

/// The inventory of `commit` of a local repository (bare or not), read as
/// a pass reads its fetched tip (`crowsnest explain`).
pub fn inventory_at(
    repo: &git2::Repository,
    commit: git2::Oid,
    options: &inventory::Options<'_>,
) -> Result<(Inventory, Vec<Finding>), SourceError> {
    let source = CommitSource::new(repo, commit)?;
    Inventory::build_with(&source, options)
}

/// The digest a pick of `tag` is written with under the policy's
/// `digestReflectionPolicy`: none, the one a check already resolved
/// (`inspected`), the one the files pin (`IfNotPresent`), or the registry's.
pub async fn reflect_digest(
    registry: &Registry,
    policy: &Policy,
    inventory: &Inventory,
    tag: &str,
    inspected: Option<String>,
) -> Result<Option<String>, RegistryError> {
    match (policy.digest_reflection, inspected) {
        (DigestReflection::Never, _) => Ok(None),
        (_, Some(digest)) => Ok(Some(digest)),
        (reflection, None) => {
            let known = known_digest(inventory, &policy.id, tag);
            registry
                .digest(&policy.image, tag, reflection, known.as_deref())
                .await
        }
    }
}

/// What a promotion's pick writes: the value as the source holds it
/// (`None` when its tag cannot be told).
pub fn promoted_selection(value: &str) -> Option<Selection> {
    let (tag, digest) = promote::tag_and_digest(value);
    Some(Selection {
        tag: tag?.to_owned(),
        digest: digest.map(str::to_owned),
    })
}

/// Gives the inventory's copy of a promotion policy its source's ordering
/// (rule, filter, exclusions), which its downgrade guard uses.
pub fn take_ordering(inventory: &mut Inventory, policy: &PolicyId, order: Policy) {
    if let Some(p) = inventory.policies.get_mut(policy) {
        p.rule = order.rule;
        p.filter = order.filter;
        p.exclusions = order.exclusions;
    }
}

/// One setter of a policy and what a pass that picked a selection would
/// do to it (`crowsnest explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWrite {
    pub at: Located,
    pub field: Field,
    /// The scalar's value now.
    pub current: String,
    /// What would be written; `None`: left as it is (`why` says why when
    /// it is not simply the same value already).
    pub new: Option<String>,
    pub why: Option<String>,
}

/// Every setter of `policy` and what a pass would write there if the
/// policy picked `selection`: planned and patched exactly as a dry run
/// (the downgrade guard, files that cannot be patched), window aside.
pub fn planned_writes(
    inventory: &Inventory,
    policy: &PolicyId,
    selection: Option<&Selection>,
) -> Vec<PlannedWrite> {
    let mut report = PassReport::default();
    let mut selections = BTreeMap::new();
    if let Some(selection) = selection {
        selections.insert(policy.clone(), selection.clone());
    }
    let edits = plan(inventory, &selections, &mut report);
    let planned = report.changes.clone();
    apply(inventory, edits, &mut report);
    let mut writes = Vec::new();
    for (path, file) in &inventory.files {
        for setter in file.setters.iter().filter(|s| &s.policy == policy) {
            let at = Located::new(path, setter.at);
            let mut write = PlannedWrite {
                at: at.clone(),
                field: setter.field,
                current: setter.value.clone(),
                new: None,
                why: None,
            };
            if let Some(change) = report.changes.iter().find(|c| c.at == at) {
                write.new = Some(change.new.clone());
            } else if let Some(held) = report.held.iter().find(|c| c.at == at) {
                write.why = Some(format!(
                    "held: {} is lower than the current value; allowDowngrade is false",
                    held.new
                ));
            } else if planned.iter().any(|c| c.at == at) {
                write.why = report.failures.first().map(|f| f.message.clone());
            } else if selection.is_none() {
                write.why = Some("nothing picked".to_owned());
            }
            writes.push(write);
        }
    }
    writes
}

/// Branch, push branch and author: the config's, except where it leaves
/// them unset and a Flux `ImageUpdateAutomation` names them (a push branch
/// defaults to the checkout branch, as in Flux and in the config).
fn effective_git(
    entry: &RepositoryConfig,
    automation: Option<&Automation>,
) -> (String, String, Author) {
    let git = &entry.git;
    let flux = |value: Option<&String>, unset: bool| value.filter(|_| unset).cloned();
    let branch = flux(
        automation.and_then(|a| a.checkout_branch.as_ref()),
        entry.unset.branch,
    )
    .unwrap_or_else(|| git.branch.clone());
    let push_branch = if entry.unset.push_branch {
        automation
            .and_then(|a| a.push_branch.clone())
            .unwrap_or_else(|| branch.clone())
    } else {
        git.push_branch.clone()
    };
    let author = match automation.and_then(|a| a.author.as_ref()) {
        Some((name, email)) if entry.unset.author => Author {
            name: name.clone(),
            email: email.clone(),
        },
        _ => git.author.clone(),
    };
    (branch, push_branch, author)
}

/// The tag the first of `policy`'s setters holds now.
pub fn current_tag(inventory: &Inventory, policy: &PolicyId) -> Option<String> {
    inventory
        .files
        .values()
        .flat_map(|f| &f.setters)
        .filter(|s| &s.policy == policy)
        .find_map(|s| match s.field {
            Field::Image => tag_of(&s.value).map(str::to_owned),
            Field::Tag => Some(s.value.clone()),
            Field::Name | Field::Digest => None,
        })
}

/// The `Promoted-From` trailers of a pass: one per promotion that changes
/// something in it.
fn promoted_from(report: &PassReport) -> Vec<audit::PromotedFrom> {
    report
        .promotions
        .iter()
        .filter(|(id, _)| report.changes.iter().any(|c| &c.policy == *id))
        .filter_map(|(_, p)| {
            p.decision.picked().map(|c| audit::PromotedFrom {
                policy: p.from.clone(),
                commit: c.commit.to_string(),
            })
        })
        .collect()
}

/// `Verified: <ns>:<name> <digest> key <signer>` for each verified policy
/// changed in this pass: the digest that was verified (also in the files
/// when they pin digests) and who signed it, for the audit trail.
fn verified_lines(report: &PassReport) -> Vec<String> {
    report
        .verified
        .iter()
        .filter(|(id, _)| report.changes.iter().any(|c| &c.policy == *id))
        .map(|(id, v)| audit::verified_line(id, &v.digest, &v.key))
        .collect()
}

/// Takes `policy`'s edits, changes and updates out of this pass.
fn leave_out(
    policy: &PolicyId,
    edits: &mut BTreeMap<String, Vec<(Edit, Change, ImageUpdate)>>,
    report: &mut PassReport,
) {
    for file_edits in edits.values_mut() {
        file_edits.retain(|(_, change, _)| &change.policy != policy);
    }
    edits.retain(|_, e| !e.is_empty());
    report.changes.retain(|c| &c.policy != policy);
    report.updates.retain(|u| &u.policy != policy);
}

/// Leaves out the changes of every policy whose `window` is closed at
/// `now`, and asks for a pass when the first of them opens.
fn hold_for_windows(
    inventory: &Inventory,
    edits: &mut BTreeMap<String, Vec<(Edit, Change, ImageUpdate)>>,
    report: &mut PassReport,
    now: SystemTime,
) {
    let Ok(at) = jiff::Timestamp::try_from(now) else {
        return;
    };
    let mut closed: Vec<(PolicyId, Option<jiff::Timestamp>)> = Vec::new();
    for change in &report.changes {
        let Some(window) = inventory
            .policies
            .get(&change.policy)
            .and_then(|p| p.window.as_ref())
        else {
            continue;
        };
        if !window.is_open(at) && !closed.iter().any(|(id, _)| id == &change.policy) {
            closed.push((change.policy.clone(), window.next_opening(at)));
        }
    }
    for (id, opens) in closed {
        let when = opens.map_or_else(|| "never".to_owned(), |t| t.to_string());
        info!(policy = %id, opens = %when, "waiting for window");
        if let Some(opens) = opens {
            let wake = SystemTime::from(opens);
            report.wake_at = Some(report.wake_at.map_or(wake, |w| w.min(wake)));
        }
        leave_out(&id, edits, report);
        report.waiting.push((id, when));
    }
}

/// A hash of a tag list, to tell whether it changed.
fn unix(at: SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Policies as a log field: `a:b,c:d`, empty for none.
fn policy_list(policies: &[PolicyId]) -> String {
    policies
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The used policies of `shard`, with the tags their setters hold now.
fn watched(inventory: &Inventory, shard: Option<Shard>) -> Vec<Watched> {
    let mut current: BTreeMap<&PolicyId, Vec<String>> = BTreeMap::new();
    for setter in inventory.files.values().flat_map(|f| &f.setters) {
        let tag = match setter.field {
            Field::Image => tag_of(&setter.value),
            Field::Tag => Some(setter.value.as_str()),
            Field::Name | Field::Digest => None,
        };
        let tags = current.entry(&setter.policy).or_default();
        if let Some(tag) = tag {
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
    }
    inventory
        .used_policies()
        .into_iter()
        .filter(|p| shard.is_none_or(|s| s.owns(&p.id)))
        .map(|p| Watched {
            id: p.id.clone(),
            image: p.image.clone(),
            interval: p.interval,
            current: current.remove(&p.id).unwrap_or_default(),
            promoted: p.promote.is_some(),
        })
        .collect()
}

/// A digest the repository already pins for `tag` of this policy, which
/// `IfNotPresent` keeps without asking and a moved tag is told by: an
/// `image:tag@digest` value, or a `:digest` setter in a file whose `:tag`
/// setter of the same policy holds `tag` (kustomize `newTag`/`digest`, Helm
/// `image.tag`/`image.digest`). Tag and digest fields are paired only
/// within a file: in two files they may describe two workloads.
fn known_digest(inventory: &Inventory, policy: &PolicyId, tag: &str) -> Option<String> {
    let mut paired = None;
    for file in inventory.files.values() {
        let setters = || file.setters.iter().filter(|s| &s.policy == policy);
        let pinned = setters().find_map(|s| {
            let (reference, digest) = s.value.split_once('@')?;
            (s.field == Field::Image && tag_of(reference) == Some(tag)).then(|| digest.to_owned())
        });
        if pinned.is_some() {
            return pinned;
        }
        // The tag in a field of its own, or in an image field without a
        // digest, beside a digest field of the same policy in that file.
        let holds_tag = |s: &&crate::manifests::Setter| match s.field {
            Field::Tag => s.value == tag,
            Field::Image => !s.value.contains('@') && tag_of(&s.value) == Some(tag),
            Field::Name | Field::Digest => false,
        };
        if paired.is_none() && setters().any(|s| holds_tag(&s)) {
            paired = setters()
                .find(|s| s.field == Field::Digest && s.value.contains(':'))
                .map(|s| s.value.clone());
        }
    }
    paired
}

/// Decides every setter's new value. Returns the edits per file.
fn plan(
    inventory: &Inventory,
    selections: &BTreeMap<PolicyId, Selection>,
    report: &mut PassReport,
) -> BTreeMap<String, Vec<(Edit, Change, ImageUpdate)>> {
    let mut edits: BTreeMap<String, Vec<(Edit, Change, ImageUpdate)>> = BTreeMap::new();
    for (path, file) in &inventory.files {
        for setter in &file.setters {
            let (Some(policy), Some(selection)) = (
                inventory.policies.get(&setter.policy),
                selections.get(&setter.policy),
            ) else {
                continue;
            };
            let Some(new) = selection.value(&policy.image, setter.field) else {
                continue;
            };
            if new == setter.value {
                continue;
            }
            let change = Change {
                policy: policy.id.clone(),
                at: Located::new(path, setter.at),
                field: setter.field,
                old: setter.value.clone(),
                new: new.clone(),
            };
            if !permitted(policy, setter.field, &setter.value, selection) {
                info!(policy = %policy.id, file = %path, current = %setter.value, pick = %new, "held: the pick is lower than the current value (allowDowngrade is false)");
                report.held.push(change);
                continue;
            }
            let update = ImageUpdate {
                policy: policy.id.clone(),
                from: old_reference(&policy.image, setter.field, &setter.value, selection),
                to: selection.reference(&policy.image),
            };
            edits.entry(path.clone()).or_default().push((
                Edit {
                    span: setter.span.clone(),
                    value: new,
                },
                change,
                update,
            ));
        }
    }
    for (_, change, update) in edits.values().flatten() {
        report.changes.push(change.clone());
        report.updates.push(update.clone());
    }
    edits
}

/// Patches every file; a file that cannot be patched safely becomes a
/// failure for its policies and is left out.
fn apply(
    inventory: &Inventory,
    edits: BTreeMap<String, Vec<(Edit, Change, ImageUpdate)>>,
    report: &mut PassReport,
) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut failed_files = Vec::new();
    for (path, file_edits) in edits {
        let text = &inventory.files[&path].text;
        let plain: Vec<Edit> = file_edits.iter().map(|(e, _, _)| e.clone()).collect();
        match manifests::patch(&path, text, &plain) {
            Ok(patched) => {
                report.diff.push_str(&unified_diff(&path, text, &patched));
                files.push((path, patched.into_bytes()));
            }
            Err(e) => {
                warn!(file = %path, error = %e, "cannot patch");
                for (_, change, _) in &file_edits {
                    report.failures.push(Failure {
                        policy: change.policy.clone(),
                        kind: "patch",
                        message: e.to_string(),
                    });
                }
                failed_files.push(path);
            }
        }
    }
    report
        .changes
        .retain(|c| !failed_files.contains(&c.at.file));
    let kept: Vec<&PolicyId> = report.changes.iter().map(|c| &c.policy).collect();
    report.updates.retain(|u| kept.contains(&&u.policy));
    report.updates.sort();
    report.updates.dedup();
    files
}

/// The tag of an `image[:tag][@digest]` reference.
fn tag_of(reference: &str) -> Option<&str> {
    let without_digest = reference.split_once('@').map_or(reference, |(r, _)| r);
    let (name, tag) = without_digest.rsplit_once(':')?;
    (!tag.contains('/') && !name.is_empty()).then_some(tag)
}

/// `allowDowngrade: false` holds back a pick lower than the current tag.
fn permitted(policy: &Policy, field: Field, current: &str, selection: &Selection) -> bool {
    let current_tag = match field {
        Field::Image => tag_of(current),
        Field::Tag => Some(current),
        Field::Name | Field::Digest => None,
    };
    match current_tag {
        Some(tag) => policy.permits(tag, &selection.tag),
        None => true,
    }
}

/// The `from` side of a trailer: the reference as it was before the change.
fn old_reference(image: &ImageName, field: Field, old: &str, selection: &Selection) -> String {
    match field {
        Field::Image => old.to_owned(),
        Field::Tag => format!("{}:{}", image.written, old),
        Field::Name => format!("{}:{}", old, selection.tag),
        Field::Digest => format!("{}:{}@{}", image.written, selection.tag, old),
    }
}

/// A unified diff of one file, `a/` and `b/` prefixed as git prints them.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// The fetched tip's tree as a [`FileSource`].
struct GitSource<'r> {
    repo: &'r Repo,
    files: BTreeMap<String, TreeFile>,
}

impl<'r> GitSource<'r> {
    fn new(repo: &'r Repo, base: &Base) -> Result<Self, git::GitError> {
        let files = repo
            .files(base, "")?
            .into_iter()
            .filter(|f| !f.is_symlink)
            .map(|f| (f.path.clone(), f))
            .collect();
        Ok(Self { repo, files })
    }

    fn error(e: git::GitError) -> SourceError {
        SourceError {
            what: "git".into(),
            message: e.to_string(),
        }
    }
}

impl FileSource for GitSource<'_> {
    fn list(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        Ok(under(self.files.keys(), dir))
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match self.files.get(path) {
            Some(file) => self.repo.read(file).map(Some).map_err(Self::error),
            None => Ok(None),
        }
    }
}

/// The paths under `dir` (`""`: all) of a sorted list.
fn under<'a>(paths: impl Iterator<Item = &'a String>, dir: &str) -> Vec<String> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    paths.filter(|p| p.starts_with(&prefix)).cloned().collect()
}

/// A commit's tree of a local repository as a [`FileSource`]: regular
/// files only (symbolic links and submodules are left out, never followed).
struct CommitSource<'r> {
    repo: &'r git2::Repository,
    files: BTreeMap<String, git2::Oid>,
}

impl<'r> CommitSource<'r> {
    fn new(repo: &'r git2::Repository, commit: git2::Oid) -> Result<Self, SourceError> {
        let error = |e: git2::Error| SourceError {
            what: format!("commit {commit}"),
            message: e.message().to_owned(),
        };
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(error)?;
        let mut files = BTreeMap::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            let regular = [0o100644, 0o100755].contains(&entry.filemode());
            if let (Some(git2::ObjectType::Blob), true, Ok(name)) =
                (entry.kind(), regular, entry.name())
            {
                files.insert(format!("{root}{name}"), entry.id());
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(error)?;
        Ok(Self { repo, files })
    }
}

impl FileSource for CommitSource<'_> {
    fn list(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        Ok(under(self.files.keys(), dir))
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(id) = self.files.get(path) else {
            return Ok(None);
        };
        self.repo
            .find_blob(*id)
            .map(|b| Some(b.content().to_vec()))
            .map_err(|e| SourceError {
                what: path.to_owned(),
                message: e.message().to_owned(),
            })
    }
}

fn poisoned() -> ReconcileError {
    ReconcileError::Internal("the repository lock was poisoned by an earlier panic".into())
}

/// Runs blocking git work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ReconcileError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ReconcileError::Internal(format!("a git task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn automation() -> Automation {
        Automation {
            id: PolicyId::new("flux-system", "flux-system"),
            declared_at: Located::new("a.yaml", crate::model::Position::new(1, 1)),
            checkout_branch: Some("release".into()),
            push_branch: Some("image-updates".into()),
            author: Some(("fluxcdbot".into(), "bot@flux".into())),
            update_path: None,
            message: None,
            suspended: false,
        }
    }

    fn entry(git_extra: &str) -> RepositoryConfig {
        Config::from_str(
            std::path::Path::new("crowsnest.yaml"),
            &format!("git:\n  url: file:///srv/fleet.git\n{git_extra}"),
        )
        .unwrap()
        .repositories
        .remove(0)
    }

    #[test]
    fn an_automation_fills_only_the_git_keys_the_config_leaves_unset() {
        let flux = automation();
        let (branch, push, author) = effective_git(&entry(""), Some(&flux));
        assert_eq!(
            (branch.as_str(), push.as_str()),
            ("release", "image-updates")
        );
        assert_eq!(author.name, "fluxcdbot");
        let set = entry("  branch: main\n  author: { name: Bot, email: bot@example.com }\n");
        let (branch, push, author) = effective_git(&set, Some(&flux));
        assert_eq!((branch.as_str(), push.as_str()), ("main", "image-updates"));
        assert_eq!(author.name, "Bot");
        let no_push = Automation {
            push_branch: None,
            ..automation()
        };
        let (branch, push, _) = effective_git(&entry(""), Some(&no_push));
        assert_eq!((branch.as_str(), push.as_str()), ("release", "release"));
        let (branch, push, author) = effective_git(&entry(""), None);
        assert_eq!((branch.as_str(), push.as_str()), ("main", "main"));
        assert_eq!(author, Author::default());
    }

    #[test]
    fn the_digest_written_for_a_tag_is_read_pinned_or_from_a_field_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let policy = |name: &str| {
            format!(
                "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: {name}\nspec:\n  image: r.example/app\n  digestReflectionPolicy: Always\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
            )
        };
        write("policies/pinned.yaml", &policy("pinned"));
        write("policies/tag.yaml", &policy("tag"));
        write("policies/image.yaml", &policy("image"));
        write(
            "apps/pinned.yaml",
            "image: r.example/app:1.0.0@sha256:aa # {\"$imagepolicy\": \"default:pinned\"}\n",
        );
        write(
            "apps/tag.yaml",
            "tag: 1.0.0 # {\"$imagepolicy\": \"default:tag:tag\"}\ndigest: sha256:bb # {\"$imagepolicy\": \"default:tag:digest\"}\n",
        );
        write(
            "apps/image.yaml",
            "image: r.example/app:1.0.0 # {\"$imagepolicy\": \"default:image\"}\ndigest: sha256:cc # {\"$imagepolicy\": \"default:image:digest\"}\n",
        );
        let (inventory, findings) =
            Inventory::build(&inventory::DirSource::new(dir.path()), "policies", "").unwrap();
        assert!(findings.is_empty(), "{findings:?}");
        let known =
            |name: &str, tag: &str| known_digest(&inventory, &PolicyId::new("default", name), tag);
        assert_eq!(known("pinned", "1.0.0").as_deref(), Some("sha256:aa"));
        assert_eq!(known("tag", "1.0.0").as_deref(), Some("sha256:bb"));
        assert_eq!(known("image", "1.0.0").as_deref(), Some("sha256:cc"));
        // A digest field says nothing of a tag the files do not hold.
        assert_eq!(known("tag", "1.1.0"), None);
        assert_eq!(known("image", "1.1.0"), None);
    }

    #[test]
    fn tags_of_references() {
        assert_eq!(tag_of("ghcr.io/a/b:1.2.3"), Some("1.2.3"));
        assert_eq!(tag_of("127.0.0.1:5000/a/b:1.2.3"), Some("1.2.3"));
        assert_eq!(tag_of("127.0.0.1:5000/a/b"), None);
        assert_eq!(tag_of("a/b:1@sha256:00"), Some("1"));
        assert_eq!(tag_of("nginx"), None);
    }
}
