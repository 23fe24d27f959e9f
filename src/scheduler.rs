//! When to scan and when to reconcile. The scheduler owns the timetable
//! and calls into `reconcile` and the registry client; it never patches or
//! commits itself.
//!
//! - Each image repository is scanned once per round however many policies
//!   watch it, at the shortest interval of its policies, with ±10 % jitter.
//!   A repository listed for the first time is rescanned somewhere in the
//!   second half of its interval, so a fleet listed together at start-up
//!   spreads out instead of hitting its registries in one burst per round.
//! - A scan that fails backs off exponentially with jitter (1 s doubling
//!   to 10 min); the first success resets it.
//! - A scan whose tags changed, a webhook naming no watched repository (a
//!   policy may have just been added), or the periodic `scan.interval`
//!   asks for a pass. Passes run one at a time; everything that arrives
//!   while one runs is batched into the next, so changes arriving together
//!   make one commit.
//! - A pass fetches the repository and reloads its policies (a policy
//!   change in Git takes effect on the next pass) and takes tags from the
//!   [`TagCache`] in `stateDir`, so a restart plans from the cache instead
//!   of rescanning everything at once, and each repository's next scan is
//!   timed from its last one.
//! - A webhook waits [`SchedulerOptions::batch_window`] (50 ms) for others
//!   that arrive together, then its repositories are scanned at once.
//! - On shutdown a running pass gets [`SchedulerOptions::shutdown_deadline`]
//!   (`--shutdown-timeout`) to finish, then is abandoned. A push is one atomic ref update on the
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
use crate::reconcile::{PassOptions, PassReport, ReconcileError, Reconciler};
use crate::registry::Registry;
use crate::status::{CommitStatus, PassStatus, PolicyStatus, SharedStatus, timestamp};
use crate::tagcache::TagCache;
use crate::webhooks::Push;

/// Repositories scanned at once.
const SCAN_CONCURRENCY: usize = 8;
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

struct Repo {
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
}

/// How a pass ended.
enum Ended {
    Done(Box<Result<PassReport, ReconcileError>>),
    /// Shutdown came and the deadline passed.
    Abandoned,
}

pub struct Scheduler {
    config: Config,
    options: SchedulerOptions,
    registry: Registry,
    cache: Arc<TagCache>,
    status: SharedStatus,
    metrics: Arc<Metrics>,
    repos: BTreeMap<String, Repo>,
    policies: BTreeMap<PolicyId, PolicyState>,
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
        Scheduler {
            config,
            options,
            registry,
            cache,
            status,
            metrics,
            repos: BTreeMap::new(),
            policies: BTreeMap::new(),
        }
    }

    /// Runs until `shutdown` turns true (or its sender is dropped).
    pub async fn run(
        mut self,
        mut triggers: mpsc::Receiver<Vec<Push>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Some(reconciler) = self.connect(&mut shutdown).await else {
            return;
        };
        let mut next_pass = Instant::now();
        let mut pass_wanted = true;
        let mut pass_failures = 0u32;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wake = self
                .repos
                .values()
                .map(|r| r.next_scan)
                .chain([next_pass])
                .min()
                .unwrap_or(next_pass);
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                pushes = triggers.recv() => {
                    let Some(pushes) = pushes else { break };
                    pass_wanted |= self.on_pushes(&pushes);
                    // Batch whatever else arrives together.
                    tokio::time::sleep(self.options.batch_window).await;
                    while let Ok(more) = triggers.try_recv() {
                        pass_wanted |= self.on_pushes(&more);
                    }
                }
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
                .repos
                .iter()
                .filter(|(_, r)| r.next_scan <= now)
                .map(|(k, _)| k.clone())
                .collect();
            if !due.is_empty() {
                tokio::select! {
                    changed = self.scan(&due) => pass_wanted |= changed,
                    _ = shutdown.changed() => {
                        info!("shutting down: abandoning the scans in flight (they have no side effects)");
                        break;
                    }
                }
                self.publish();
            }
            if !(pass_wanted || next_pass <= Instant::now()) {
                continue;
            }
            pass_wanted = false;
            let ended = match self.pass(&reconciler, &mut shutdown).await {
                Ended::Done(result) => *result,
                Ended::Abandoned => break,
            };
            match ended {
                Ok(report) => {
                    pass_failures = 0;
                    next_pass = Instant::now() + jittered(self.config.scan.interval);
                    self.passed(report);
                }
                Err(e) => {
                    pass_failures += 1;
                    let delay = jittered(backoff(pass_failures)).min(self.config.scan.interval);
                    warn!(error = %e, kind = e.kind(), retry_in = ?delay, "pass failed");
                    self.failed(&e);
                    next_pass = Instant::now() + delay;
                }
            }
            self.publish();
        }
        info!("scheduler stopped");
    }

    /// Opens (cloning if needed) the repository, retrying with backoff.
    async fn connect(&mut self, shutdown: &mut watch::Receiver<bool>) -> Option<Reconciler> {
        let mut failures = 0;
        loop {
            let attempt = Reconciler::with_registry(self.config.clone(), self.registry.clone());
            let result = tokio::select! {
                r = attempt => r,
                _ = shutdown.changed() => return None,
            };
            match result {
                Ok(reconciler) => return Some(reconciler),
                Err(e) => {
                    failures += 1;
                    let delay = jittered(backoff(failures));
                    warn!(error = %e, retry_in = ?delay, "cannot open the repository");
                    self.metrics.error(e.kind());
                    self.write_status(|s| s.last_error = Some(e.to_string()));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => return None,
                    }
                }
            }
        }
    }

    /// Marks the repositories the pushes name as due now. Returns true
    /// when some push names no watched repository: a pass then reloads the
    /// policies (one may have just been added for it).
    fn on_pushes(&mut self, pushes: &[Push]) -> bool {
        let now = Instant::now();
        let mut unknown = false;
        for push in pushes {
            let mut keys: Vec<&String> = self
                .repos
                .iter()
                .filter(|(_, r)| push.matches(&r.image))
                .map(|(k, _)| k)
                .collect();
            if keys.is_empty() {
                keys = self
                    .repos
                    .iter()
                    .filter(|(_, r)| push.matches_path(&r.image))
                    .map(|(k, _)| k)
                    .collect();
            }
            if keys.is_empty() {
                info!(repository = %push.repository, tag = push.tag.as_deref().unwrap_or(""), "webhook names no watched repository; reloading policies");
                unknown = true;
                continue;
            }
            let keys: Vec<String> = keys.into_iter().cloned().collect();
            for key in keys {
                info!(image = %key, tag = push.tag.as_deref().unwrap_or(""), "webhook: scanning now");
                if let Some(repo) = self.repos.get_mut(&key) {
                    repo.next_scan = now;
                }
            }
        }
        unknown
    }

    /// Lists the tags of `due` repositories. Returns whether any changed.
    async fn scan(&mut self, due: &[String]) -> bool {
        let jobs: Vec<(String, crate::model::ImageName)> = due
            .iter()
            .filter_map(|k| self.repos.get(k).map(|r| (k.clone(), r.image.clone())))
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
        let mut changed = false;
        let now = Instant::now();
        let wall = SystemTime::now();
        for (key, took, result) in results {
            self.metrics.scan_duration.observe(took.as_secs_f64());
            let Some(repo) = self.repos.get_mut(&key) else {
                continue;
            };
            match result {
                Ok(tags) => {
                    Metrics::counted(&self.metrics.scans, "ok");
                    self.metrics.tags_of(&key, tags.len());
                    match self.cache.store(&key, &tags, wall) {
                        Ok(true) => {
                            info!(image = %key, tags = tags.len(), "tags changed");
                            changed = true;
                        }
                        Ok(false) => debug!(image = %key, tags = tags.len(), "tags unchanged"),
                        Err(e) => {
                            warn!(image = %key, error = %e, "cannot persist the tag cache");
                            self.metrics.error("cache");
                            changed = true;
                        }
                    }
                    repo.failures = 0;
                    repo.last_scan = Some(wall);
                    repo.last_error = None;
                    repo.next_scan = now + jittered(repo.interval);
                }
                Err(e) => {
                    Metrics::counted(&self.metrics.scans, "error");
                    self.metrics.error(e.kind());
                    repo.failures += 1;
                    let delay = jittered(backoff(repo.failures));
                    warn!(image = %key, error = %e, retry_in = ?delay, "scan failed");
                    repo.last_error = Some(e.to_string());
                    repo.next_scan = now + delay;
                }
            }
        }
        changed
    }

    /// One pass, finished or abandoned within the deadline on shutdown.
    async fn pass(
        &mut self,
        reconciler: &Reconciler,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ended {
        let options = PassOptions {
            dry_run: false,
            shard: self.options.shard,
            log_findings: true,
        };
        let started = Instant::now();
        let pass = reconciler.pass_cached(options, &self.cache);
        tokio::pin!(pass);
        let result = tokio::select! {
            r = &mut pass => r,
            _ = shutdown.changed() => {
                let deadline = self.options.shutdown_deadline;
                info!(?deadline, "shutting down: letting the running pass finish");
                match tokio::time::timeout(deadline, &mut pass).await {
                    Ok(r) => r,
                    Err(_) => {
                        warn!(?deadline, "shutting down: abandoned the pass at the deadline; nothing half-pushed (a push is one atomic ref update)");
                        Metrics::counted(&self.metrics.passes, "abandoned");
                        return Ended::Abandoned;
                    }
                }
            }
        };
        let took = started.elapsed();
        self.metrics.pass_duration.observe(took.as_secs_f64());
        self.metrics.last_pass.set(unix_seconds(SystemTime::now()));
        let (label, changes) = match &result {
            Ok(r) if r.is_clean() => ("ok", r.changes.len()),
            Ok(r) => ("failed", r.changes.len()),
            Err(_) => ("failed", 0),
        };
        Metrics::counted(&self.metrics.passes, label);
        self.write_status(|s| {
            s.last_pass = Some(PassStatus {
                finished_at: timestamp(SystemTime::now()),
                duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                result: label.to_owned(),
                changes,
            })
        });
        Ended::Done(Box::new(result))
    }

    /// Takes in what a pass found: the policies to watch, their picks,
    /// the commit.
    fn passed(&mut self, report: PassReport) {
        if !self.status_ready() {
            self.metrics.ready.set(1);
            self.write_status(|s| s.ready = true);
            info!(policies = report.watched.len(), "ready");
        }
        for failure in &report.failures {
            self.metrics.error(failure.kind);
        }
        self.metrics.conflicts.inc_by(u64::from(report.conflicts));
        self.metrics.findings_of(&report.findings);
        let findings: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
        if !findings.is_empty() {
            self.metrics.error("repository");
        }
        if report.findings.iter().any(|f| f.holds_everything()) {
            let summary = format!(
                "{} problem(s) in the repository's policies or manifests; nothing is changed while the automation is broken",
                findings.len()
            );
            self.write_status(|s| {
                s.findings = findings;
                s.last_error = Some(summary);
            });
            // The pass stopped before deciding anything: the watch list
            // stays what the last pass said.
            return;
        }
        let wall = SystemTime::now();
        if let Some(commit) = &report.commit {
            self.metrics.commits.inc();
            Metrics::counted(&self.metrics.pushes, "pushed");
            self.metrics.last_commit.set(unix_seconds(wall));
            let updates: Vec<String> = report.updates.iter().map(|u| u.to_string()).collect();
            let id = commit.clone();
            self.write_status(|s| {
                s.last_commit = Some(CommitStatus {
                    id,
                    at: timestamp(wall),
                    updates,
                })
            });
        }
        self.write_status(|s| {
            s.findings = findings;
            s.last_error = None;
        });
        self.watch(&report, wall);
    }

    fn failed(&mut self, error: &ReconcileError) {
        self.metrics.error(error.kind());
        if matches!(error, ReconcileError::Rejected { .. }) {
            Metrics::counted(&self.metrics.pushes, "rejected");
        }
        let text = error.to_string();
        self.write_status(|s| s.last_error = Some(text));
    }

    /// Rebuilds the timetable and the policy table from a pass.
    fn watch(&mut self, report: &PassReport, wall: SystemTime) {
        let now = Instant::now();
        let default = self.config.scan.interval;
        let mut intervals: BTreeMap<String, (crate::model::ImageName, Vec<Option<Duration>>)> =
            BTreeMap::new();
        for w in &report.watched {
            intervals
                .entry(w.image.canonical())
                .or_insert_with(|| (w.image.clone(), Vec::new()))
                .1
                .push(w.interval);
        }
        let listed: BTreeSet<&String> = report.listed.iter().collect();
        let failed: BTreeMap<&PolicyId, &str> = report
            .failures
            .iter()
            .map(|f| (&f.policy, f.message.as_str()))
            .collect();
        // Repositories no longer watched.
        let gone: Vec<String> = self
            .repos
            .keys()
            .filter(|k| !intervals.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            self.repos.remove(&key);
            self.metrics.forget_image(&key);
        }
        for (key, (image, policy_intervals)) in intervals {
            let interval = repository_interval(policy_intervals, default);
            let cached = self.cache.get(&key);
            if let Some(c) = &cached {
                self.metrics.tags_of(&key, c.tags.len());
            }
            match self.repos.get_mut(&key) {
                Some(repo) => {
                    if interval < repo.interval {
                        repo.next_scan = repo.next_scan.min(now + jittered(interval));
                    }
                    repo.interval = interval;
                    if listed.contains(&key) {
                        repo.last_scan = Some(wall);
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
                    self.repos.insert(
                        key,
                        Repo {
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
        let changed: BTreeSet<&PolicyId> = if report.commit.is_some() {
            report.changes.iter().map(|c| &c.policy).collect()
        } else {
            BTreeSet::new()
        };
        let mut held: BTreeMap<&PolicyId, Vec<String>> = BTreeMap::new();
        for finding in &report.findings {
            if let Some(policy) = &finding.policy {
                held.entry(policy).or_default().push(finding.to_string());
            }
        }
        let mut policies = BTreeMap::new();
        for w in &report.watched {
            let mut state = self.policies.remove(&w.id).unwrap_or_default();
            state.findings = held.remove(&w.id).unwrap_or_default();
            let selection = report.selections.get(&w.id).cloned();
            let image = w.image.written.clone();
            match (&selection, &state.latest) {
                (Some(new), old) => self.metrics.select(
                    &w.id,
                    &image,
                    old.as_ref().map(|o| o.tag.as_str()),
                    &new.tag,
                ),
                (None, Some(old)) => self.metrics.unselect(&w.id, &state.image, &old.tag),
                (None, None) => {}
            }
            if let Some(&count) = report.not_numeric.get(&w.id) {
                if state.not_numeric && state.image != image {
                    self.metrics.forget_not_numeric(&w.id, &state.image);
                }
                self.metrics.not_numeric(&w.id, &image, count);
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
            policies.insert(w.id.clone(), state);
        }
        for (id, old) in std::mem::take(&mut self.policies) {
            if let Some(latest) = old.latest {
                self.metrics.unselect(&id, &old.image, &latest.tag);
            }
            if old.not_numeric {
                self.metrics.forget_not_numeric(&id, &old.image);
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
        self.policies = policies;
        self.metrics
            .policies
            .set(i64::try_from(report.watched.len()).unwrap_or(i64::MAX));
        self.metrics
            .repositories
            .set(i64::try_from(self.repos.len()).unwrap_or(i64::MAX));
    }

    fn status_ready(&self) -> bool {
        self.status.read().map(|s| s.ready).unwrap_or(false)
    }

    fn write_status(&self, change: impl FnOnce(&mut crate::status::Status)) {
        let mut status = self.status.write().unwrap_or_else(|e| e.into_inner());
        change(&mut status);
    }

    /// Publishes the policy table into the shared status.
    fn publish(&self) {
        let policies: Vec<PolicyStatus> = self
            .policies
            .iter()
            .map(|(id, p)| {
                let repo = self.repos.get(&p.image_key);
                let latest = p.latest.as_ref().map(|s| s.tag.clone());
                PolicyStatus {
                    id: id.to_string(),
                    image: p.image.clone(),
                    up_to_date: latest
                        .as_ref()
                        .is_some_and(|l| p.current.iter().all(|c| c == l)),
                    current: p.current.clone(),
                    latest,
                    digest: p.latest.as_ref().and_then(|s| s.digest.clone()),
                    last_scan: repo.and_then(|r| r.last_scan).map(timestamp),
                    last_commit: p.last_commit.clone(),
                    last_error: p
                        .last_error
                        .clone()
                        .or_else(|| repo.and_then(|r| r.last_error.clone())),
                    findings: p.findings.clone(),
                }
            })
            .collect();
        self.write_status(|s| s.policies = policies);
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
