//! When to scan and when to reconcile. The scheduler owns the timetable
//! and calls into `reconcile` and the registry client; it never patches or
//! commits itself.
//!
//! - Each image repository is scanned once per round however many
//!   repository entries and policies watch it, at the shortest interval of
//!   its policies, with ±10 % jitter. The registry client (rate limits,
//!   tokens) and the tag cache are one for the whole daemon.
//!   A repository listed for the first time is rescanned somewhere in the
//!   second half of its interval, so a fleet listed together at start-up
//!   spreads out instead of hitting its registries in one burst per round.
//! - A scan that fails backs off exponentially with jitter (1 s doubling
//!   to 10 min); the first success resets it.
//! - Each repository entry (`repositories:`, or `git:`) has its own passes,
//!   backoff and failures: an unreachable remote or a rejected push holds
//!   back only its entry. A scan whose tags changed asks for a pass of
//!   every entry watching the image; a webhook naming no watched image (a
//!   policy may have just been added) and the periodic `scan.interval` ask
//!   for a pass of every entry. An entry runs one pass at a time, and up
//!   to four entries pass at once; what arrives while an entry's pass runs
//!   is batched into its next, so changes arriving together make one
//!   commit. Scans and webhooks are handled while passes run.
//! - A pass fetches the repository and reloads its policies (a policy
//!   change in Git takes effect on the next pass) and takes tags from the
//!   [`TagCache`] in `stateDir`, so a restart plans from the cache instead
//!   of rescanning everything at once, and each repository's next scan is
//!   timed from its last one.
//! - A webhook waits [`SchedulerOptions::batch_window`] (50 ms) for others
//!   that arrive together, then its repositories are scanned at once.
//! - With `--shard i/N` and one entry, policies are split over the shards;
//!   with several entries, entries are (an entry and all its policies on
//!   one shard, so shards never race on a branch).
//! - On shutdown running passes get [`SchedulerOptions::shutdown_deadline`]
//!   (`--shutdown-timeout`) to finish, then are abandoned. A push is one atomic ref update on the
//!   remote, run to completion on a blocking thread either way, so the
//!   remote never sees half a pass.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::Config;
use crate::metrics::{Metrics, unix_seconds};
use crate::model::{PolicyId, Selection, Shard};
use crate::reconcile::{Fleet, PassOptions, PassReport, ReconcileError, Reconciler, Watched};
use crate::registry::Registry;
use crate::status::{
    CommitStatus, PassStatus, PolicyStatus, PromotionStatus, RepositoryStatus, SharedStatus,
    timestamp,
};
use crate::tagcache::TagCache;
use crate::webhooks::Push;

/// Images scanned at once.
const SCAN_CONCURRENCY: usize = 8;
/// Passes of different repository entries run at once (entries sharing a
/// clone take turns on it for their git work).
const PASS_CONCURRENCY: usize = 4;
/// A repository whose first passes fail this many times in a row no longer
/// keeps the daemon unready (its failure is its own).
const READY_AFTER_FAILURES: u32 = 3;
/// First retry delay after an error.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay after repeated errors.
pub const BACKOFF_MAX: Duration = Duration::from_secs(600);
/// Relative jitter on intervals and backoff.
const JITTER: f64 = 0.1;

#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub shard: Option<Shard>,
    /// How long a running pass may take to finish after shutdown is asked.
    pub shutdown_deadline: Duration,
    /// After a webhook, how long to wait for more before scanning, so
    /// pushes that arrive together make one pass and one commit.
    pub batch_window: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            shard: None,
            shutdown_deadline: Duration::from_secs(20),
            batch_window: Duration::from_millis(50),
        }
    }
}

/// The delay before retry number `failures` (1 for the first): doubling
/// from [`BACKOFF_BASE`], at most [`BACKOFF_MAX`], before jitter.
pub fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_MAX)
}

/// `base` moved by a uniformly random ±10 %.
pub fn jittered(base: Duration) -> Duration {
    base.mul_f64(1.0 + rand::random_range(-JITTER..=JITTER))
}

/// The interval a repository is scanned at: the shortest of its policies'.
pub fn repository_interval(
    policy_intervals: impl IntoIterator<Item = Option<Duration>>,
    default: Duration,
) -> Duration {
    policy_intervals
        .into_iter()
        .map(|i| i.unwrap_or(default))
        .min()
        .unwrap_or(default)
}

/// When a repository first known from the cache is due: at its last scan
/// plus its interval; one already overdue is spread at random over the
/// next tenth of its interval (at most a minute), so a restart after a
/// long stop does not scan everything at once.
pub fn first_due(
    now: Instant,
    wall: SystemTime,
    scanned_at: SystemTime,
    interval: Duration,
) -> Instant {
    let age = wall.duration_since(scanned_at).unwrap_or(Duration::ZERO);
    match interval.checked_sub(age) {
        Some(left) if !left.is_zero() => now + left,
        _ => {
            let spread = (interval / 10).min(Duration::from_secs(60));
            now + spread.mul_f64(rand::random_range(0.0..=1.0))
        }
    }
}

/// The first rescan of a repository the daemon just listed for the first
/// time: anywhere in the second half of its interval, so a fleet listed
/// together at start-up is not rescanned in one burst every interval but
/// spreads out from the first round on (jitter keeps it spread).
pub fn first_rescan(interval: Duration) -> Duration {
    interval.mul_f64(rand::random_range(0.5..=1.0))
}

/// An image repository on the timetable, shared by every repository
/// entry and policy that watches it.
struct Image {
    image: crate::model::ImageName,
    interval: Duration,
    next_scan: Instant,
    failures: u32,
    last_scan: Option<SystemTime>,
    last_error: Option<String>,
}

#[derive(Default)]
struct PolicyState {
    image: String,
    image_key: String,
    current: Vec<String>,
    latest: Option<Selection>,
    last_commit: Option<String>,
    last_error: Option<String>,
    /// What holds it back, from the last pass's findings.
    findings: Vec<String>,
    /// Whether it has a `crowsnest_policy_tags_not_numeric` series (a
    /// numerical policy decided at least once), under `image`.
    not_numeric: bool,
    promotion: Option<PromotionStatus>,
    verified: Option<String>,
    unsigned: Vec<String>,
    tag_moved: Option<String>,
    waiting_for_window: Option<String>,
}

/// One repository entry: its passes, its failures, what it watches.
struct Entry {
    reconciler: Arc<Reconciler>,
    next_pass: Instant,
    /// A pass is asked for (tags changed, webhook, start-up).
    wanted: bool,
    running: bool,
    /// Failures in a row.
    failures: u32,
    /// Its first pass finished, or failed [`READY_AFTER_FAILURES`] times.
    settled: bool,
    /// The policies its last finished pass watched.
    watched: Vec<Watched>,
    /// The entries its promotions read from (itself too, for folders):
    /// a commit there, or their branch seen moved by anyone, asks for a
    /// pass here.
    sources: BTreeSet<String>,
    /// The branch tip its last finished pass read.
    tip: Option<String>,
    policies: BTreeMap<PolicyId, PolicyState>,
    status: RepositoryStatus,
}

impl Entry {
    fn name(&self) -> &str {
        self.reconciler.name()
    }

    fn watches(&self, image: &str) -> bool {
        self.watched
            .iter()
            .any(|w| !w.promoted && w.image.canonical() == image)
    }
}

/// A finished pass: the entry's index, how long it took, how it ended.
type Done = (usize, Duration, Result<PassReport, ReconcileError>);

pub struct Scheduler {
    config: Config,
    options: SchedulerOptions,
    registry: Registry,
    cache: Arc<TagCache>,
    status: SharedStatus,
    metrics: Arc<Metrics>,
    images: BTreeMap<String, Image>,
    entries: Vec<Entry>,
    /// The policy shard each pass decides: `--shard` with one repository
    /// entry; with several, shards split the entries instead.
    policy_shard: Option<Shard>,
}

impl Scheduler {
    pub fn new(
        config: Config,
        options: SchedulerOptions,
        registry: Registry,
        cache: Arc<TagCache>,
        status: SharedStatus,
        metrics: Arc<Metrics>,
    ) -> Scheduler {
        let fleet = Fleet::new(&config, &registry);
        let several = fleet.entries().len() > 1;
        let now = Instant::now();
        let entries: Vec<Entry> = fleet
            .entries()
            .iter()
            .filter(|r| !several || options.shard.is_none_or(|s| s.owns_repository(r.name())))
            .map(|reconciler| {
                let git = &reconciler.entry().git;
                Entry {
                    status: RepositoryStatus {
                        name: reconciler.name().to_owned(),
                        remote: crate::git::redact_url(&git.url),
                        branch: git.branch.clone(),
                        push_branch: git.push_branch.clone(),
                        ..RepositoryStatus::default()
                    },
                    reconciler: reconciler.clone(),
                    next_pass: now,
                    wanted: true,
                    running: false,
                    failures: 0,
                    settled: false,
                    watched: Vec::new(),
                    sources: BTreeSet::new(),
                    tip: None,
                    policies: BTreeMap::new(),
                }
            })
            .collect();
        if several {
            info!(
                repositories = entries.len(),
                of = fleet.entries().len(),
                shard = options.shard.map(|s| s.to_string()).unwrap_or_default(),
                "repositories of this shard"
            );
        }
        let policy_shard = if several { None } else { options.shard };
        let scheduler = Scheduler {
            config,
            options,
            registry,
            cache,
            status,
            metrics,
            images: BTreeMap::new(),
            entries,
            policy_shard,
        };
        if scheduler.entries.is_empty() {
            warn!("this shard has no repository entries: nothing to do");
            scheduler.metrics.ready.set(1);
            scheduler.write_status(|s| s.ready = true);
        }
        scheduler.publish();
        scheduler
    }

    /// Runs until `shutdown` turns true (or its sender is dropped).
    pub async fn run(
        mut self,
        mut triggers: mpsc::Receiver<Vec<Push>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.start_passes(&done_tx);
            let wake = self.wake();
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                pushes = triggers.recv() => {
                    let Some(pushes) = pushes else { break };
                    self.on_pushes(&pushes);
                    // Batch whatever else arrives together.
                    tokio::time::sleep(self.options.batch_window).await;
                    while let Ok(more) = triggers.try_recv() {
                        self.on_pushes(&more);
                    }
                }
                Some(done) = done_rx.recv() => self.finished(done),
                changed = shutdown.changed() => {
                    // An error: the sender is gone, which also means stop.
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
            }
            let now = Instant::now();
            let due: Vec<String> = self
                .images
                .iter()
                .filter(|(_, r)| r.next_scan <= now)
                .map(|(k, _)| k.clone())
                .collect();
            if !due.is_empty() {
                tokio::select! {
                    changed = self.scan(&due) => self.want_for(&changed),
                    _ = shutdown.changed() => {
                        info!("shutting down: abandoning the scans in flight (they have no side effects)");
                        break;
                    }
                }
            }
            self.publish();
        }
        self.drain(&mut done_rx).await;
        info!("scheduler stopped");
    }

    /// Starts a pass for every entry that wants one or is due, at most
    /// [`PASS_CONCURRENCY`] at a time.
    fn start_passes(&mut self, done: &mpsc::UnboundedSender<Done>) {
        let now = Instant::now();
        let mut running = self.entries.iter().filter(|e| e.running).count();
        for (index, entry) in self.entries.iter_mut().enumerate() {
            if running >= PASS_CONCURRENCY {
                break;
            }
            if entry.running || !(entry.wanted || entry.next_pass <= now) {
                continue;
            }
            entry.wanted = false;
            entry.running = true;
            running += 1;
            let reconciler = entry.reconciler.clone();
            let cache = self.cache.clone();
            let done = done.clone();
            let options = PassOptions {
                dry_run: false,
                shard: self.policy_shard,
                log_findings: true,
            };
            tokio::spawn(async move {
                let started = Instant::now();
                let result = reconciler.pass_cached(options, &cache).await;
                // The scheduler is gone only when shutting down.
                let _ = done.send((index, started.elapsed(), result));
            });
        }
    }

    /// The next moment something is due: a scan, or a pass of an idle
    /// entry (when another pass may start).
    fn wake(&self) -> Instant {
        let now = Instant::now();
        let can_start = self.entries.iter().filter(|e| e.running).count() < PASS_CONCURRENCY;
        let passes = self
            .entries
            .iter()
            .filter(|e| can_start && !e.running)
            .map(|e| if e.wanted { now } else { e.next_pass });
        self.images
            .values()
            .map(|r| r.next_scan)
            .chain(passes)
            .min()
            .unwrap_or(now + self.config.scan.interval)
    }

    /// After shutdown: lets running passes finish within the deadline.
    async fn drain(&mut self, done: &mut mpsc::UnboundedReceiver<Done>) {
        if !self.entries.iter().any(|e| e.running) {
            return;
        }
        let deadline = self.options.shutdown_deadline;
        let running = self.entries.iter().filter(|e| e.running).count();
        if running == 1 {
            info!(?deadline, "shutting down: letting the running pass finish");
        } else {
            info!(
                ?deadline,
                running, "shutting down: letting the running passes finish"
            );
        }
        let until = Instant::now() + deadline;
        while self.entries.iter().any(|e| e.running) {
            tokio::select! {
                Some(finished) = done.recv() => self.finished(finished),
                _ = tokio::time::sleep_until(until.into()) => {
                    for entry in self.entries.iter().filter(|e| e.running) {
                        warn!(repository = entry.name(), ?deadline, "shutting down: abandoned the pass at the deadline; nothing half-pushed (a push is one atomic ref update)");
                        Metrics::counted_for(&self.metrics.passes, entry.name(), "abandoned");
                    }
                    return;
                }
            }
        }
        self.publish();
    }

    /// Marks the images the pushes name as due now. A push naming no
    /// watched image asks every entry for a pass: it reloads the policies
    /// (one may have just been added for it).
    fn on_pushes(&mut self, pushes: &[Push]) {
        let now = Instant::now();
        for push in pushes {
            let mut keys: Vec<&String> = self
                .images
                .iter()
                .filter(|(_, r)| push.matches(&r.image))
                .map(|(k, _)| k)
                .collect();
            if keys.is_empty() {
                keys = self
                    .images
                    .iter()
                    .filter(|(_, r)| push.matches_path(&r.image))
                    .map(|(k, _)| k)
                    .collect();
            }
            if keys.is_empty() {
                info!(repository = %push.repository, tag = push.tag.as_deref().unwrap_or(""), "webhook names no watched repository; reloading policies");
                for entry in &mut self.entries {
                    entry.wanted = true;
                }
                continue;
            }
            let keys: Vec<String> = keys.into_iter().cloned().collect();
            for key in keys {
                info!(image = %key, tag = push.tag.as_deref().unwrap_or(""), "webhook: scanning now");
                if let Some(image) = self.images.get_mut(&key) {
                    image.next_scan = now;
                }
            }
        }
    }

    /// Asks for a pass of every entry watching one of `images`.
    fn want_for(&mut self, images: &BTreeSet<String>) {
        for entry in &mut self.entries {
            if images.iter().any(|i| entry.watches(i)) {
                entry.wanted = true;
            }
        }
    }

    /// Lists the tags of `due` images, each once for every entry watching
    /// it. Returns those whose tags changed.
    async fn scan(&mut self, due: &[String]) -> BTreeSet<String> {
        let jobs: Vec<(String, crate::model::ImageName)> = due
            .iter()
            .filter_map(|k| self.images.get(k).map(|r| (k.clone(), r.image.clone())))
            .collect();
        let registry = &self.registry;
        let results: Vec<(String, Duration, Result<Vec<String>, _>)> = futures::stream::iter(jobs)
            .map(|(key, image)| {
                let span = info_span!("scan", image = %key);
                async move {
                    let started = Instant::now();
                    let result = registry.list_tags(&image).await;
                    (key, started.elapsed(), result)
                }
                .instrument(span)
            })
            .buffer_unordered(SCAN_CONCURRENCY)
            .collect()
            .await;
        let mut changed = BTreeSet::new();
        let now = Instant::now();
        let wall = SystemTime::now();
        for (key, took, result) in results {
            self.metrics.scan_duration.observe(took.as_secs_f64());
            let Some(image) = self.images.get_mut(&key) else {
                continue;
            };
            match result {
                Ok(tags) => {
                    Metrics::counted(&self.metrics.scans, "ok");
                    self.metrics.tags_of(&key, tags.len());
                    match self.cache.store(&key, &tags, wall) {
                        Ok(true) => {
                            info!(image = %key, tags = tags.len(), "tags changed");
                            changed.insert(key.clone());
                        }
                        Ok(false) => debug!(image = %key, tags = tags.len(), "tags unchanged"),
                        Err(e) => {
                            warn!(image = %key, error = %e, "cannot persist the tag cache");
                            self.metrics.error("cache");
                            changed.insert(key.clone());
                        }
                    }
                    image.failures = 0;
                    image.last_scan = Some(wall);
                    image.last_error = None;
                    image.next_scan = now + jittered(image.interval);
                }
                Err(e) => {
                    Metrics::counted(&self.metrics.scans, "error");
                    self.metrics.error(e.kind());
                    image.failures += 1;
                    let delay = jittered(backoff(image.failures));
                    warn!(image = %key, error = %e, retry_in = ?delay, "scan failed");
                    image.last_error = Some(e.to_string());
                    image.next_scan = now + delay;
                }
            }
        }
        changed
    }

    /// Takes in a finished pass of entry `index`.
    fn finished(&mut self, (index, took, result): Done) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let interval = self.config.scan.interval;
        let metrics = self.metrics.clone();
        let Some(entry) = self.entries.get_mut(index) else {
            return;
        };
        entry.running = false;
        let name = entry.name().to_owned();
        metrics.pass_duration.observe(took.as_secs_f64());
        Metrics::of(&metrics.last_pass, &name).set(unix_seconds(wall));
        let (label, changes) = match &result {
            Ok(r) if r.is_clean() => ("ok", r.changes.len()),
            Ok(r) => ("failed", r.changes.len()),
            Err(_) => ("failed", 0),
        };
        Metrics::counted_for(&metrics.passes, &name, label);
        entry.status.last_pass = Some(PassStatus {
            finished_at: timestamp(wall),
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            result: label.to_owned(),
            changes,
        });
        match result {
            Ok(report) => {
                entry.failures = 0;
                entry.next_pass = now + jittered(interval);
                // A promotion candidate finishing its soak, or a window
                // opening: pass right then.
                if let Some(wake) = report.wake_at {
                    let left = wake.duration_since(wall).unwrap_or(Duration::ZERO);
                    let at = now + left + Duration::from_millis(50);
                    if at < entry.next_pass {
                        info!(repository = %name, at = %timestamp(wake), in_ = ?left, "next pass when a promotion candidate has soaked or a window opens");
                        entry.next_pass = at;
                    }
                }
                // Entries whose branches this entry promotes from, itself
                // included (folder per environment): a commit there starts
                // a candidate's soak, which the next pass times exactly.
                entry.sources = report
                    .promotions
                    .values()
                    .map(|p| p.repository.clone())
                    .collect();
                // The branch moved: by this pass's commit, or by someone
                // else since the last pass (a push seen by this fetch).
                let committed = report.commit.is_some();
                let moved = committed || (entry.tip.is_some() && report.tip != entry.tip);
                entry.tip.clone_from(&report.tip);
                if !entry.settled {
                    info!(repository = %name, policies = report.watched.len(), "first pass done");
                }
                entry.settled = true;
                entry.status.ready = true;
                self.passed(index, report, wall);
                if moved {
                    // Promotions reading this entry's branch see the move
                    // now, this entry's own included after its own commit
                    // (one more pass).
                    for (i, other) in self.entries.iter_mut().enumerate() {
                        if other.sources.contains(&name) && (i != index || committed) {
                            other.wanted = true;
                        }
                    }
                }
            }
            Err(e) => {
                entry.failures += 1;
                let delay = jittered(backoff(entry.failures)).min(interval);
                warn!(repository = %name, error = %e, kind = e.kind(), retry_in = ?delay, "pass failed");
                entry.next_pass = now + delay;
                if entry.failures >= READY_AFTER_FAILURES {
                    entry.settled = true;
                }
                metrics.error(e.kind());
                if matches!(e, ReconcileError::Rejected { .. }) {
                    Metrics::counted_for(&metrics.pushes, &name, "rejected");
                }
                entry.status.last_error = Some(e.to_string());
            }
        }
        if !self.status_ready() && self.entries.iter().all(|e| e.settled) {
            self.metrics.ready.set(1);
            self.write_status(|s| s.ready = true);
            info!(repositories = self.entries.len(), "ready");
        }
        self.publish();
    }

    /// Takes in what a pass found: the policies to watch, their picks,
    /// the commit.
    fn passed(&mut self, index: usize, report: PassReport, wall: SystemTime) {
        let metrics = self.metrics.clone();
        let shard = self.policy_shard;
        let entry = &mut self.entries[index];
        let name = entry.name().to_owned();
        for failure in &report.failures {
            metrics.error(failure.kind);
        }
        Metrics::of(&metrics.conflicts, &name).inc_by(u64::from(report.conflicts));
        metrics.findings_of(&name, &report.findings, shard);
        let findings: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
        if !findings.is_empty() {
            metrics.error("repository");
        }
        if report.findings.iter().any(|f| f.holds_everything()) {
            entry.status.last_error = Some(format!(
                "{} problem(s) in the repository's policies or manifests; nothing is changed while the automation is broken",
                findings.len()
            ));
            entry.status.findings = findings;
            // The pass stopped before deciding anything: the watch list
            // stays what the last pass said.
            return;
        }
        if let Some(commit) = &report.commit {
            Metrics::of(&metrics.commits, &name).inc();
            Metrics::counted_for(&metrics.pushes, &name, "pushed");
            Metrics::of(&metrics.last_commit, &name).set(unix_seconds(wall));
            entry.status.last_commit = Some(CommitStatus {
                id: commit.clone(),
                at: timestamp(wall),
                updates: report.updates.iter().map(|u| u.to_string()).collect(),
            });
        }
        if let Some(branch) = &report.branch {
            entry.status.push_branch = branch.clone();
        }
        entry.status.findings = findings;
        entry.status.last_error = None;
        entry.watched = report.watched.clone();
        self.policy_table(index, &report);
        self.timetable(&report.listed, wall);
    }

    /// Rebuilds the timetable from what every entry watches: each image
    /// once, at the shortest interval of all the policies watching it.
    fn timetable(&mut self, listed: &[String], wall: SystemTime) {
        let now = Instant::now();
        let default = self.config.scan.interval;
        let mut intervals: BTreeMap<String, (crate::model::ImageName, Vec<Option<Duration>>)> =
            BTreeMap::new();
        for w in self
            .entries
            .iter()
            .flat_map(|e| &e.watched)
            .filter(|w| !w.promoted)
        {
            intervals
                .entry(w.image.canonical())
                .or_insert_with(|| (w.image.clone(), Vec::new()))
                .1
                .push(w.interval);
        }
        let listed: BTreeSet<&String> = listed.iter().collect();
        let gone: Vec<String> = self
            .images
            .keys()
            .filter(|k| !intervals.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            self.images.remove(&key);
            self.metrics.forget_image(&key);
        }
        for (key, (image, policy_intervals)) in intervals {
            let interval = repository_interval(policy_intervals, default);
            let cached = self.cache.get(&key);
            if let Some(c) = &cached {
                self.metrics.tags_of(&key, c.tags.len());
            }
            match self.images.get_mut(&key) {
                Some(known) => {
                    if interval < known.interval {
                        known.next_scan = known.next_scan.min(now + jittered(interval));
                    }
                    known.interval = interval;
                    if listed.contains(&key) {
                        known.last_scan = Some(wall);
                    }
                }
                None => {
                    let (next_scan, last_scan, failures) = match &cached {
                        Some(c) if listed.contains(&key) => {
                            (now + first_rescan(interval), Some(c.scanned_at), 0)
                        }
                        Some(c) => (
                            first_due(now, wall, c.scanned_at, interval),
                            Some(c.scanned_at),
                            0,
                        ),
                        // Listing failed in the pass: retry soon.
                        None => (now + jittered(backoff(1)), None, 1),
                    };
                    self.images.insert(
                        key,
                        Image {
                            image,
                            interval,
                            next_scan,
                            failures,
                            last_scan,
                            last_error: None,
                        },
                    );
                }
            }
        }
        let policies: usize = self.entries.iter().map(|e| e.watched.len()).sum();
        self.metrics
            .policies
            .set(i64::try_from(policies).unwrap_or(i64::MAX));
        self.metrics
            .repositories
            .set(i64::try_from(self.images.len()).unwrap_or(i64::MAX));
    }

    /// Rebuilds entry `index`'s policy table from its pass.
    fn policy_table(&mut self, index: usize, report: &PassReport) {
        let metrics = self.metrics.clone();
        let entry = &mut self.entries[index];
        let name = entry.name().to_owned();
        let failed: BTreeMap<&PolicyId, &str> = report
            .failures
            .iter()
            .map(|f| (&f.policy, f.message.as_str()))
            .collect();
        let changed: BTreeSet<&PolicyId> = if report.commit.is_some() {
            report.changes.iter().map(|c| &c.policy).collect()
        } else {
            BTreeSet::new()
        };
        let mut held: BTreeMap<&PolicyId, Vec<String>> = BTreeMap::new();
        for finding in &report.findings {
            for policy in &finding.policies {
                held.entry(policy).or_default().push(finding.to_string());
            }
        }
        let mut policies = BTreeMap::new();
        for w in &report.watched {
            let mut state = entry.policies.remove(&w.id).unwrap_or_default();
            state.findings = held.remove(&w.id).unwrap_or_default();
            let selection = report.selections.get(&w.id).cloned();
            let image = w.image.written.clone();
            match (&selection, &state.latest) {
                (Some(new), old) => metrics.select(
                    &name,
                    &w.id,
                    &image,
                    old.as_ref().map(|o| o.tag.as_str()),
                    &new.tag,
                ),
                (None, Some(old)) => metrics.unselect(&name, &w.id, &state.image, &old.tag),
                (None, None) => {}
            }
            if let Some(&count) = report.not_numeric.get(&w.id) {
                if state.not_numeric && state.image != image {
                    metrics.forget_not_numeric(&name, &w.id, &state.image);
                }
                metrics.not_numeric(&name, &w.id, &image, count);
                state.not_numeric = true;
            }
            state.current = match (&selection, changed.contains(&w.id)) {
                (Some(s), true) => vec![s.tag.clone()],
                _ => w.current.clone(),
            };
            if changed.contains(&w.id) {
                state.last_commit = report.commit.clone();
            }
            state.image = image;
            state.image_key = w.image.canonical();
            state.latest = selection;
            state.last_error = failed.get(&w.id).map(|m| (*m).to_owned());
            state.promotion = report.promotions.get(&w.id).map(promotion_status);
            state.verified = report
                .verified
                .get(&w.id)
                .map(|v| format!("{}@{} key {}", v.tag, v.digest, v.key));
            state.unsigned = report
                .unsigned
                .iter()
                .filter(|(id, _, _)| id == &w.id)
                .map(|(_, tag, verdict)| format!("{tag}: {verdict}"))
                .collect();
            state.tag_moved = report
                .moved
                .iter()
                .find(|m| m.policy == w.id)
                .map(ToString::to_string);
            state.waiting_for_window = report
                .waiting
                .iter()
                .find(|(id, _)| id == &w.id)
                .map(|(_, opens)| opens.clone());
            metrics.tag_moved(&name, &w.id, u8::from(state.tag_moved.is_some()));
            metrics.unsigned(&name, &w.id, state.unsigned.len());
            policies.insert(w.id.clone(), state);
        }
        for (id, old) in std::mem::take(&mut entry.policies) {
            if let Some(latest) = old.latest {
                metrics.unselect(&name, &id, &old.image, &latest.tag);
            }
            if old.not_numeric {
                metrics.forget_not_numeric(&name, &id, &old.image);
            }
        }
        // Policies that are disabled, or only named by markers that no
        // policy declares: listed with what holds them back.
        for (id, findings) in held {
            policies.insert(
                id.clone(),
                PolicyState {
                    findings,
                    ..PolicyState::default()
                },
            );
        }
        entry.policies = policies;
    }

    fn status_ready(&self) -> bool {
        self.status.read().map(|s| s.ready).unwrap_or(false)
    }

    fn write_status(&self, change: impl FnOnce(&mut crate::status::Status)) {
        let mut status = self.status.write().unwrap_or_else(|e| e.into_inner());
        change(&mut status);
    }

    /// Publishes the repositories and their policy tables into the
    /// shared status.
    fn publish(&self) {
        let mut policies = Vec::new();
        for entry in &self.entries {
            for (id, p) in &entry.policies {
                let image = self.images.get(&p.image_key);
                let latest = p.latest.as_ref().map(|s| s.tag.clone());
                policies.push(PolicyStatus {
                    repository: entry.name().to_owned(),
                    id: id.to_string(),
                    image: p.image.clone(),
                    // Not while a finding holds one of its setters back.
                    up_to_date: p.findings.is_empty()
                        && latest
                            .as_ref()
                            .is_some_and(|l| p.current.iter().all(|c| c == l)),
                    current: p.current.clone(),
                    latest,
                    digest: p.latest.as_ref().and_then(|s| s.digest.clone()),
                    last_scan: image.and_then(|r| r.last_scan).map(timestamp),
                    last_commit: p.last_commit.clone(),
                    last_error: p
                        .last_error
                        .clone()
                        .or_else(|| image.and_then(|r| r.last_error.clone())),
                    findings: p.findings.clone(),
                    promotion: p.promotion.clone(),
                    verified: p.verified.clone(),
                    unsigned: p.unsigned.clone(),
                    tag_moved: p.tag_moved.clone(),
                    waiting_for_window: p.waiting_for_window.clone(),
                });
            }
        }
        let repositories = self.entries.iter().map(|e| e.status.clone()).collect();
        self.write_status(|s| {
            s.repositories = repositories;
            s.policies = policies;
        });
    }
}

/// What the status shows of a promotion's decision.
fn promotion_status(promotion: &crate::reconcile::Promotion) -> PromotionStatus {
    let decision = &promotion.decision;
    let soaking = decision
        .candidates
        .iter()
        .find(|c| matches!(c.verdict, crate::promote::Verdict::Soaking { .. }));
    PromotionStatus {
        from: promotion.from.to_string(),
        repository: promotion.repository.clone(),
        picked: decision.picked().map(|c| c.value.clone()),
        picked_commit: decision.picked().map(|c| c.commit.to_string()),
        soaking: soaking.map(|c| c.value.clone()),
        eligible_at: decision.next_change.map(crate::audit::time::format_time),
        candidates: decision
            .candidates
            .iter()
            .map(|c| format!("{}: {}", c.value, c.verdict))
            .collect(),
        last_promotion: promotion
            .last
            .as_ref()
            .map(|last| crate::status::LastPromotionStatus {
                value: last.value.clone(),
                commit: last.commit.clone(),
                at: crate::audit::time::format_time(last.at),
                source_commit: last.source_commit.clone(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_ten_minutes() {
        let delays: Vec<u64> = (1..=12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(backoff(0), BACKOFF_BASE);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(100);
        for _ in 0..1000 {
            let d = jittered(base);
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
    }

    #[test]
    fn first_rescans_spread_over_the_second_half_of_the_interval() {
        let interval = Duration::from_secs(300);
        let delays: Vec<Duration> = (0..500).map(|_| first_rescan(interval)).collect();
        assert!(delays.iter().all(|d| *d >= interval / 2 && *d <= interval));
        let buckets: BTreeSet<u64> = delays.iter().map(|d| d.as_secs() / 15).collect();
        assert!(
            buckets.len() >= 10,
            "every 15 s bucket of 150..300 s is used: {buckets:?}"
        );
    }

    #[test]
    fn a_repository_is_scanned_at_its_shortest_policy_interval() {
        let default = Duration::from_secs(300);
        let minute = Some(Duration::from_secs(60));
        assert_eq!(
            repository_interval([None, minute], default),
            Duration::from_secs(60)
        );
        assert_eq!(repository_interval([None, None], default), default);
        assert_eq!(
            repository_interval([Some(Duration::from_secs(3600))], default),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn a_restart_times_scans_from_the_cache_and_spreads_overdue_ones() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let interval = Duration::from_secs(600);
        // Scanned two minutes ago: due in eight.
        let due = first_due(now, wall, wall - Duration::from_secs(120), interval);
        assert_eq!(due - now, Duration::from_secs(480));
        // Overdue: within the next minute (a tenth of the interval), spread.
        let dues: Vec<Duration> = (0..200)
            .map(|_| first_due(now, wall, wall - Duration::from_secs(7200), interval) - now)
            .collect();
        assert!(dues.iter().all(|d| *d <= Duration::from_secs(60)));
        let distinct: BTreeSet<u128> = dues.iter().map(|d| d.as_millis() / 1000).collect();
        assert!(distinct.len() > 10, "spread over the window: {distinct:?}");
    }
}
