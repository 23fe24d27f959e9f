//! Crash safety of `crowsnest run` (issue 11): the daemon is SIGKILLed 100
//! times at seeded random points of its passes — while it starts, clones or
//! opens the clone, scans, plans, commits and signs, pushes, or idles after
//! a push — against a real docker-registry (its notifications are the
//! daemon's webhooks) and a bare Git remote. After every kill the remote's
//! branch holds only complete commits: each one signed and verifying with
//! `git verify-commit`, with `Image-Update` trailers that git and
//! `crowsnest::audit` read alike, each step starting where the last one for
//! its policy ended (so no update is committed twice), the file holding the
//! new tag, and `git fsck --strict` clean. At the end the daemon converges
//! and the newest allowed tag of each policy is committed exactly once.
//!
//! Two remotes: `file://` (100 kills; crowsnest itself moves the remote's
//! branch) and smart HTTP (40 kills; `git receive-pack` moves it, behind a
//! `pre-receive` hook sleeping a seeded 0–100 ms, so kills land inside
//! pushes, some of which the server still completes).
//!
//! The seed is printed; `CROWSNEST_CRASH_SEED=<n>` replays a run. Kill
//! delays are drawn from zero to one and a half times a measured
//! tag-push-to-commit time; a quarter of the kills count from the daemon's
//! start, the rest from a tag push to a ready daemon.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crowsnest::audit::parse_trailers;
use support::daemon::Daemon;
use support::git::Remote;
use support::git_http::GitHttp;
use support::process::run;
use support::registry::{Auth, RegistryServer};
use support::signing::GpgKey;

const BIN: &str = env!("CARGO_BIN_EXE_crowsnest");
const TOKEN: &str = "crash-hook-t0ken";
const AUTHOR: &str = "Crowsnest Bot";
const APPS: [&str; 2] = ["alpha", "beta"];
/// Kills against a `file://` remote, where crowsnest itself moves the
/// remote's branch.
const FILE_KILLS: usize = 100;
/// Kills against smart HTTP, where `git receive-pack` on the server moves
/// it (and finishes a push its client died in).
const HTTP_KILLS: usize = 40;

fn deployment(host: &str, app: &str, tag: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  template:\n    spec:\n      containers:\n        - name: {app}\n          image: {host}/demo/{app}:{tag} # {{\"$imagepolicy\": \"default:{app}\"}}\n"
    )
}

/// 2.x is never allowed: the registry holds 2.0.0 from the start.
fn policy(host: &str, app: &str) -> String {
    format!(
        "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: {app}\nspec:\n  image: {host}/demo/{app}\n  policy:\n    semver:\n      range: \">=1.0.0 <2.0.0\"\n"
    )
}

fn file_path(app: &str) -> String {
    format!("apps/{app}/deployment.yaml")
}

/// splitmix64: small, seedable, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

fn seed() -> u64 {
    match std::env::var("CROWSNEST_CRASH_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CROWSNEST_CRASH_SEED={text:?} is not a u64")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64,
    }
}

/// The patch number of `1.N.0`, for ordering the tags this test pushes.
fn minor(tag: &str) -> u64 {
    let mut parts = tag.split('.');
    assert_eq!(parts.next(), Some("1"), "an allowed tag: {tag}");
    parts.next().and_then(|m| m.parse().ok()).expect("1.N.0")
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Transport {
    File,
    /// git-http-backend behind nginx, with a `pre-receive` hook sleeping a
    /// seeded few milliseconds per run, so kills land inside pushes.
    Http,
}

struct Setup {
    registry: RegistryServer,
    remote: Remote,
    http: Option<GitHttp>,
    key: GpgKey,
    dir: tempfile::TempDir,
    port: u16,
    config: PathBuf,
    state: PathBuf,
}

impl Setup {
    fn new(transport: Transport) -> Setup {
        let port = Daemon::free_port();
        let registry = RegistryServer::start_notifying(
            Auth::Anonymous,
            &format!("http://127.0.0.1:{port}/hooks/distribution"),
            TOKEN,
        );
        let host = registry.host();
        let mut files = Vec::new();
        let mut policies = String::new();
        for app in APPS {
            registry.push_tags(&format!("demo/{app}"), &["1.0.0", "2.0.0"]);
            files.push((file_path(app), deployment(&host, app, "1.0.0")));
            policies.push_str("---\n");
            policies.push_str(&policy(&host, app));
        }
        files.push(("policies/apps.yaml".to_owned(), policies));
        // A broken policy and a marker naming it (issue 15): they hold back
        // only themselves, every kill point of the others still applies.
        files.push((
            "policies/broken.yaml".to_owned(),
            policy(&host, "broken").replace(">=1.0.0 <2.0.0", ">=1.0.0 <"),
        ));
        files.push((
            "apps/broken.yaml".to_owned(),
            format!("image: {host}/demo/broken:1.0.0 # {{\"$imagepolicy\": \"default:broken\"}}\n"),
        ));
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let remote = Remote::new(&refs);
        let key = GpgKey::ed25519();
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("write token");
        let (http, url, auth) = match transport {
            Transport::File => (None, remote.url(), String::new()),
            Transport::Http => {
                let http = GitHttp::start(remote.dir(), "robot", "git-pass-1");
                let auth = format!(
                    "  auth:\n    username: robot\n    passwordFile: {}\n",
                    http.password_file.display()
                );
                let url = http.url("fleet.git");
                (Some(http), url, auth)
            }
        };
        let config = dir.path().join("crowsnest.yaml");
        std::fs::write(
            &config,
            format!(
                "git:\n  url: {url}\n{auth}  author: {{ name: {AUTHOR}, email: bot@example.com }}\n  signing:\n    format: openpgp\n    keyFile: {key}\nregistries:\n  hosts:\n    - host: {host}\n      insecure: true\nscan:\n  interval: 2s\nstateDir: {state}\nhttp:\n  listen: 127.0.0.1:{port}\n  webhookTokenFile: {token}\n",
                key = key.key_file.display(),
                state = state.display(),
                token = dir.path().join("token").display(),
            ),
        )
        .expect("write config");
        Setup {
            registry,
            remote,
            http,
            key,
            dir,
            port,
            config,
            state,
        }
    }

    fn start(&self, log: &Path) -> Daemon {
        Daemon::start(Path::new(BIN), &self.config, &[], &[], log, self.port)
    }

    fn pins(&self, app: &str, tag: &str) -> bool {
        self.remote.file("main", &file_path(app))
            == Some(deployment(&self.registry.host(), app, tag).into_bytes())
    }
}

/// What the remote's branch has been checked to hold so far.
struct Trail {
    /// The last commit checked.
    tip: String,
    /// Per policy, the tag the last committed step ended at.
    at: BTreeMap<String, String>,
    /// Every `Image-Update` trailer seen, in order.
    trailers: Vec<String>,
}

impl Trail {
    /// Checks every commit on the remote's `main` after `self.tip`, oldest
    /// first, and moves `self.tip` to the branch's tip. Returns how many
    /// commits were new.
    fn check(&mut self, s: &Setup, context: &str) -> usize {
        let tip = s.remote.tip("main");
        assert!(
            s.remote.is_ancestor(&self.tip, &tip),
            "{context}: the branch was rewritten: {} is not an ancestor of {tip}",
            self.tip
        );
        let new = run(s.remote.git().args([
            "rev-list",
            "--reverse",
            "--topo-order",
            &format!("{}..{tip}", self.tip),
        ]));
        let host = s.registry.host();
        let mut count = 0;
        let mut parent = self.tip.clone();
        for id in new.lines() {
            count += 1;
            let raw = run(s
                .remote
                .git()
                .args(["log", "-1", "--format=%P%x00%an%x00%B", id]));
            let mut fields = raw.splitn(3, '\0');
            let (parents, author, message) = (
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
            );
            assert_eq!(parents, parent, "{context}: {id} is not linear on {parent}");
            assert_eq!(
                author, AUTHOR,
                "{context}: {id}: only crowsnest writes here"
            );
            s.key
                .verify_commit(&s.remote.path, id)
                .unwrap_or_else(|e| panic!("{context}: commit {id} does not verify: {e}"));
            // git and crowsnest read the same trailers out of the message.
            let by_git: Vec<String> = run(s.remote.git().args([
                "log",
                "-1",
                "--format=%(trailers:key=Image-Update,valueonly,separator=%x0a)",
                id,
            ]))
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
            let by_crowsnest: Vec<String> = parse_trailers(message)
                .iter()
                .map(|u| u.to_string())
                .collect();
            assert!(
                !by_git.is_empty(),
                "{context}: {id} has no trailer:\n{message}"
            );
            assert_eq!(by_git, by_crowsnest, "{context}: {id}:\n{message}");
            for update in parse_trailers(message) {
                let app = update.policy.to_string();
                let app = app.strip_prefix("default:").expect("default namespace");
                let image = format!("{host}/demo/{app}:");
                let from = update.from.strip_prefix(&image).expect("image:tag");
                let to = update.to.strip_prefix(&image).expect("image:tag");
                let at = self.at.get(app).expect("a policy of the fixture");
                assert_eq!(
                    from, at,
                    "{context}: {id} moves {app} from {from}, but it was at {at} (trail: {:?})",
                    self.trailers
                );
                assert!(
                    minor(to) > minor(from),
                    "{context}: {id} moves {app} from {from} to {to}"
                );
                let file = run(s
                    .remote
                    .git()
                    .args(["show", &format!("{id}:{}", file_path(app))]));
                assert_eq!(
                    file,
                    deployment(&host, app, to),
                    "{context}: {id} says {app} is at {to}"
                );
                self.at.insert(app.to_owned(), to.to_owned());
                self.trailers.push(update.to_string());
            }
            parent = id.to_owned();
        }
        self.tip = tip;
        // No trailer twice (implied by the steps above, checked anyway).
        let mut seen = std::collections::BTreeSet::new();
        for t in &self.trailers {
            assert!(seen.insert(t), "{context}: {t} is committed twice");
        }
        s.remote.fsck();
        count
    }
}

/// A `pre-receive` hook that reads the ref updates, then sleeps `ms`.
fn sleeping_hook(ms: u64) -> String {
    format!(
        "#!/bin/sh\ncat >/dev/null\nsleep {}.{:03}\n",
        ms / 1000,
        ms % 1000
    )
}

/// Lock files under `dir` (outside `objects/`), which block the next writer.
fn locks(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "objects") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "lock") {
                found.push(path);
            }
        }
    }
    found
}

/// Where in its run the daemon was when it died: the last step its log
/// shows.
fn phase(log: &str) -> &'static str {
    let mut at = "starting";
    for line in log.lines() {
        for (marker, phase) in [
            ("crowsnest run: serving", "opening the clone, first pass"),
            ("webhook: scanning now", "scanning"),
            ("tags changed", "scanning"),
            (" selected ", "planning"),
            (" committed ", "signed a commit, pushing"),
            ("the remote branch moved", "re-planning"),
            (" pushed ", "after a push"),
        ] {
            if line.contains(marker) {
                at = phase;
            }
        }
    }
    at
}

#[test]
fn sigkill_at_random_points_of_passes_leaves_only_complete_signed_commits_and_no_duplicate() {
    crash_loop(Transport::File, FILE_KILLS);
}

#[test]
fn sigkill_inside_pushes_to_smart_http_commits_each_update_exactly_once() {
    crash_loop(Transport::Http, HTTP_KILLS);
}

fn crash_loop(transport: Transport, kills: usize) {
    let started = Instant::now();
    let seed = seed();
    eprintln!(
        "crash safety ({transport:?}): seed {seed} (replay with CROWSNEST_CRASH_SEED={seed})"
    );
    let mut rng = Rng(seed);
    let s = Setup::new(transport);
    let mut trail = Trail {
        tip: s.remote.tip("main"),
        at: APPS
            .iter()
            .map(|a| (a.to_string(), "1.0.0".to_owned()))
            .collect(),
        trailers: Vec::new(),
    };
    let mut latest: BTreeMap<&str, u64> = APPS.iter().map(|a| (*a, 0)).collect();
    let push = |app: &'static str, latest: &mut BTreeMap<&str, u64>| {
        let next = latest[app] + 1;
        s.registry
            .push_tags(&format!("demo/{app}"), &[&format!("1.{next}.0")]);
        latest.insert(app, next);
    };

    // One push to its commit, measured on a ready daemon (over HTTP with
    // the longest hook): the longest kill delay.
    if s.http.is_some() {
        s.remote.set_hook("pre-receive", &sleeping_hook(100));
    }
    let log = s.dir.path().join("measure.log");
    let mut daemon = s.start(&log);
    daemon.wait_ready();
    let begun = Instant::now();
    push("alpha", &mut latest);
    daemon.wait_until("the first push", Duration::from_secs(60), |_| {
        s.pins("alpha", "1.1.0")
    });
    let pass = begun.elapsed();
    daemon.kill();
    trail.check(&s, "the measured run");
    let max_delay = (pass.as_millis() as u64 * 3 / 2).max(200);
    eprintln!(
        "crash safety ({transport:?}): tag push to commit took {pass:?}; kill delays 0..={max_delay} ms"
    );

    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    let mut landed = 0;
    let mut finished_by_server = 0;
    let mut replaced = Vec::new();
    let mut stale_remote_locks = Vec::new();
    for i in 0..kills {
        let delay = rng.upto(max_delay);
        if s.http.is_some() {
            let hook_ms = rng.upto(100);
            s.remote.set_hook("pre-receive", &sleeping_hook(hook_ms));
        }
        let clone_existed = s.state.join("repo.git").exists();
        let log = s.dir.path().join(format!("run-{i}.log"));
        let mut daemon = s.start(&log);
        // A quarter of the kills hit the start: opening the clone, the
        // first pass (planned from the tag cache, so it commits what a
        // killed run had scanned but not pushed), overdue scans. The rest
        // hit a pass a registry notification started on a ready daemon.
        // Either way there is new work: alpha moves every time, beta about
        // every other time, sometimes both into one commit.
        let at_start = rng.upto(3) == 0;
        if !at_start {
            daemon.wait_ready();
        }
        let begun = Instant::now();
        push("alpha", &mut latest);
        if rng.upto(1) == 0 {
            push("beta", &mut latest);
        }
        if let Some(rest) = Duration::from_millis(delay).checked_sub(begun.elapsed()) {
            std::thread::sleep(rest);
        }
        let died_on_its_own = daemon.exited();
        daemon.kill();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            died_on_its_own.is_none(),
            "kill {i} (seed {seed}): the daemon exited by itself ({died_on_its_own:?}) before SIGKILL:\n{text}"
        );
        let context = format!(
            "kill {i} {delay} ms after {} (seed {seed})",
            if at_start { "its start" } else { "a tag push" }
        );
        let new = trail.check(&s, &context);
        if new > 0 {
            landed += 1;
            if !text.contains(" pushed ") {
                // Killed inside the push, which still landed (over HTTP,
                // receive-pack on the server finished it).
                finished_by_server += 1;
            }
        }
        *phases.entry(phase(&text)).or_default() += 1;
        if clone_existed && (text.contains("replacing the clone") || text.contains("cloning again"))
        {
            replaced.push(format!(
                "{context}: {}",
                text.lines()
                    .filter(|l| l.contains("clon"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        let remote_locks = locks(&s.remote.path);
        if !remote_locks.is_empty() {
            stale_remote_locks.push(format!("{context}: {remote_locks:?}"));
        }
    }

    // The last restart converges: every policy at its newest allowed tag.
    let log = s.dir.path().join("final.log");
    let mut daemon = s.start(&log);
    // (A lock the last kill left on the remote's branch is only taken as
    // stale after STALE_REF_LOCK, 10 s.)
    daemon.wait_until(
        "every policy at its newest allowed tag",
        Duration::from_secs(60),
        |_| {
            APPS.iter()
                .all(|app| s.pins(app, &format!("1.{}.0", latest[app])))
        },
    );
    daemon.wait_ready();
    daemon.terminate(Duration::from_secs(20));
    trail.check(&s, &format!("the final run (seed {seed})"));
    let final_log = daemon.log_text();
    for app in APPS {
        let newest = format!("1.{}.0", latest[app]);
        assert_eq!(trail.at[app], newest, "seed {seed}: {app}");
        let image = format!("{}/demo/{app}:{newest}", s.registry.host());
        let committed = trail
            .trailers
            .iter()
            .filter(|t| t.ends_with(&format!("-> {image}")))
            .count();
        assert_eq!(
            committed, 1,
            "seed {seed}: {image} committed {committed} times"
        );
        assert!(
            !trail.trailers.iter().any(|t| t.contains(":2.0.0")),
            "seed {seed}: a disallowed tag was committed: {:?}",
            trail.trailers
        );
    }
    eprintln!(
        "crash safety ({transport:?}): {kills} kills in {:?}; {landed} runs pushed before dying ({finished_by_server} of them killed inside a push that still landed); {} commits, {} trailers; phases at the kill: {phases:?}",
        started.elapsed(),
        s.remote.commit_count("main"),
        trail.trailers.len(),
    );
    eprintln!(
        "crash safety ({transport:?}): clones replaced after a kill: {replaced:#?}; lock files in the remote just after a kill (over HTTP, receive-pack may still be finishing): {stale_remote_locks:#?}"
    );
    // The state dir stays usable: no kill forced a new clone. (A lock a
    // kill left on the remote's branch is removed once stale; the final
    // convergence above proves it no longer blocks.)
    assert!(replaced.is_empty(), "seed {seed}: {replaced:#?}");
    assert!(!final_log.contains("replacing the clone"), "{final_log}");
    // The kills really were spread over the passes.
    let before_push = kills - phases.get("after a push").copied().unwrap_or(0);
    assert!(
        landed >= 5 && before_push >= 5,
        "seed {seed}: kills not spread over the passes: {phases:?}"
    );
}

/// r-crash-1: a `crowsnest run` killed while it moved a `file://` remote's
/// branch left `refs/heads/main.lock` in the remote; every later push
/// found the branch locked, took it for "the branch moved", and the daemon
/// re-planned forever ("main kept moving") without ever pushing again.
#[test]
fn r_crash_1_a_ref_lock_a_killed_push_left_in_a_file_remote_does_not_block_later_pushes() {
    let s = Setup::new(Transport::File);
    s.registry.push_tags("demo/alpha", &["1.1.0"]);
    let lock = s.remote.path.join("refs/heads/main.lock");
    std::fs::create_dir_all(lock.parent().expect("refs/heads")).expect("refs/heads");
    std::fs::write(&lock, format!("{}\n", s.remote.tip("main"))).expect("write the lock");
    let a_minute_ago = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .and_then(|f| f.set_modified(a_minute_ago))
        .expect("age the lock");
    let output = std::process::Command::new(BIN)
        .current_dir(s.dir.path())
        .args(["once", "--config"])
        .arg(&s.config)
        .env("CROWSNEST_LOG", "info")
        .output()
        .expect("run crowsnest once");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Exit 1: the setup's broken policy is held back (and reported).
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("policies/broken.yaml:9:"), "{stderr}");
    assert!(stderr.contains("removing a stale lock"), "{stderr}");
    assert!(!lock.exists());
    assert!(s.pins("alpha", "1.1.0"));
    s.key
        .verify_commit(&s.remote.path, "main")
        .expect("a signed commit");
    s.remote.fsck();
}
