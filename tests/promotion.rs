//! Promotion between environments (PRODUCT.md §8) end to end: remotes
//! whose histories have known shapes (commits with set dates, some signed
//! by git with GnuPG, some by someone else), `crowsnest once`, `explain`,
//! `history`, and a daemon that waits out a soak of seconds.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::daemon::Daemon;
use support::git::{Remote, git, write};
use support::registry::{Auth, RegistryServer};
use support::signing::GpgKey;

const AUTHOR: &str = "Crowsnest Bot";
const HOUR: i64 = 3600;
const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const TOKEN: &str = "promotion-hook-token";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn deployment(host: &str, policy: &str, value: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {host}/demo/app:{value} # {{\"$imagepolicy\": \"{policy}\"}}\n"
    )
}

fn registry_policy(host: &str, namespace: &str) -> String {
    format!(
        "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: {namespace}\nspec:\n  image: {host}/demo/app\n  policy:\n    semver:\n      range: \">=1.0.0\"\n"
    )
}

fn promotion_policy(host: &str, namespace: &str, promote: &str) -> String {
    format!(
        "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: {namespace}\nspec:\n  image: {host}/demo/app\n  promote:\n{promote}"
    )
}

/// One commit of a scripted history: when (seconds since the epoch), by
/// whom, signed or not, and the files it writes.
struct Step<'a> {
    at: i64,
    author: &'a str,
    signed: bool,
    files: Vec<(String, String)>,
}

/// Appends `steps` to `branch` of `remote` (creating it from `base` when
/// it does not exist), each commit with its author, dates and signature.
fn script(remote: &Remote, branch: &str, key: Option<&GpgKey>, steps: &[Step<'_>]) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("w");
    let cloned = git()
        .args(["clone", "-q"])
        .arg(&remote.path)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(cloned.status.success(), "{}", text(&cloned.stderr));
    let has_branch = git()
        .arg("-C")
        .arg(&dir)
        .args(["rev-parse", "--verify", "-q", &format!("origin/{branch}")])
        .output()
        .unwrap()
        .status
        .success();
    let origin = format!("origin/{branch}");
    let checkout: Vec<&str> = if has_branch {
        vec!["checkout", "-q", "-B", branch, &origin]
    } else {
        vec!["checkout", "-q", "--orphan", branch]
    };
    assert!(
        git()
            .arg("-C")
            .arg(&dir)
            .args(&checkout)
            .status()
            .unwrap()
            .success()
    );
    if !has_branch {
        // An orphan starts empty, whatever the clone checked out.
        let _ = git().arg("-C").arg(&dir).args(["rm", "-rfq", "."]).output();
    }
    for step in steps {
        for (path, text) in &step.files {
            write(&dir, path, text.as_bytes());
        }
        assert!(
            git()
                .arg("-C")
                .arg(&dir)
                .args(["add", "-A"])
                .status()
                .unwrap()
                .success()
        );
        let date = format!("@{} +0000", step.at);
        let mut commit = git();
        commit
            .env("GIT_AUTHOR_NAME", step.author)
            .env("GIT_COMMITTER_NAME", step.author)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .arg("-C")
            .arg(&dir)
            .args([
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("{} at {}", step.author, step.at),
            ]);
        if step.signed {
            let key = key.expect("a key for signed steps");
            commit
                .env("GNUPGHOME", key.signer_home())
                .arg(format!("-S{}", key.fingerprint));
        }
        let out = commit.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = git()
        .arg("-C")
        .arg(&dir)
        .args(["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn step<'a>(at: i64, author: &'a str, files: &[(&str, String)]) -> Step<'a> {
    Step {
        at,
        author,
        signed: false,
        files: files
            .iter()
            .map(|(p, t)| ((*p).to_owned(), t.clone()))
            .collect(),
    }
}

fn crowsnest(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crowsnest"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run crowsnest")
}

/// The committer time of `rev`'s tip, in seconds since the epoch.
fn commit_time(remote: &Remote, rev: &str) -> i64 {
    let out = remote
        .git()
        .args(["log", "-1", "--format=%ct", rev])
        .output()
        .unwrap();
    text(&out.stdout).trim().parse().unwrap()
}

/// `2026-01-02T03:04:05Z`, as the status and the log print times.
fn format_utc(t: i64) -> String {
    jiff::Timestamp::from_second(t).unwrap().to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Setup {
    registry: RegistryServer,
    remote: Remote,
    key: GpgKey,
    dir: tempfile::TempDir,
}

/// A one-repository daemon config in `dir`: `remote`'s `main`, commits
/// signed with `key`, `host` over plain HTTP, state in `dir/state`, then
/// `extra` (more top-level keys).
fn write_config(dir: &Path, remote: &Remote, key: &GpgKey, host: &str, extra: &str) -> PathBuf {
    let path = dir.join("crowsnest.yaml");
    std::fs::write(
        &path,
        format!(
            "git:\n  url: {url}\n  author: {{ name: {AUTHOR}, email: bot@example.com }}\n  signing:\n    format: openpgp\n    keyFile: {key}\nregistries:\n  hosts:\n    - host: {host}\n      insecure: true\nstateDir: state\n{extra}",
            url = remote.url(),
            key = key.key_file.display(),
        ),
    )
    .unwrap();
    path
}

impl Setup {
    fn new(tags: &[&str]) -> Setup {
        let registry = RegistryServer::start(Auth::Anonymous);
        registry.push_tags("demo/app", tags);
        Setup {
            registry,
            remote: Remote::empty(),
            key: GpgKey::ed25519(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn host(&self) -> String {
        self.registry.host()
    }

    fn config(&self, extra: &str) -> PathBuf {
        write_config(
            self.dir.path(),
            &self.remote,
            &self.key,
            &self.host(),
            extra,
        )
    }

    fn file(&self, path: &str) -> String {
        text(&self.remote.file("main", path).expect("the file"))
    }
}

#[test]
fn once_promotes_the_value_that_soaked_exactly_and_never_a_rolled_back_one() {
    let setup = Setup::new(&["1.0.0", "1.1.0", "1.2.0"]);
    let host = setup.host();
    let t = now();
    let staging = |value: &str| ("staging/app.yaml", deployment(&host, "staging:app", value));
    let with_digest = format!("1.1.0@{D1}");
    script(
        &setup.remote,
        "main",
        None,
        &[
            step(
                t - 100 * HOUR,
                "bot",
                &[
                    ("policies/staging.yaml", registry_policy(&host, "staging")),
                    (
                        "policies/production.yaml",
                        promotion_policy(
                            &host,
                            "production",
                            "    from: staging:app\n    soak: 24h\n",
                        ),
                    ),
                    staging("1.0.0"),
                    (
                        "production/app.yaml",
                        deployment(&host, "production:app", "1.0.0"),
                    ),
                ],
            ),
            // Held 10 hours: not long enough on its own.
            step(t - 80 * HOUR, "bot", &[staging(&with_digest)]),
            // Held 30 hours, longer than the soak, then rolled back: only
            // the rollback keeps it from production.
            step(t - 70 * HOUR, "bot", &[staging("1.3.0")]),
            // A manual rollback: the value alice put back counts as held
            // again, with her as its author, and this period soaks.
            step(t - 40 * HOUR, "alice", &[staging(&with_digest)]),
            step(t - 2 * HOUR, "bot", &[staging("1.2.0")]),
        ],
    );
    let soaked_commit = setup.remote.log("main")[1].id.clone();
    let config = setup.config("");
    let repo = setup.remote.path.to_str().unwrap().to_owned();

    let explain = crowsnest(
        setup.dir.path(),
        &["explain", "production:app", "--repo", &repo],
    );
    assert_eq!(explain.status.code(), Some(0), "{}", text(&explain.stderr));
    let table = text(&explain.stdout);
    assert!(table.contains("soaking 2h of 24h"), "{table}");
    assert!(
        table.contains(&format!("picked {host}/demo/app:1.1.0@{D1}")),
        "{table}"
    );
    let explain = crowsnest(
        setup.dir.path(),
        &["explain", "production:app", "--repo", &repo, "--json"],
    );
    let json: serde_json::Value = serde_json::from_slice(&explain.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&explain.stdout)));
    let candidate = |value: &str| {
        json["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"] == format!("{host}/demo/app:{value}"))
            .unwrap_or_else(|| panic!("{value} in {json:#}"))
            .clone()
    };
    let rolled_back = candidate("1.3.0");
    assert_eq!(
        rolled_back["verdict"],
        format!("rolled back in {}", &soaked_commit[..12]),
        "held past the soak, so only the rollback blocks it"
    );
    let picked = candidate(&with_digest);
    assert_eq!(picked["verdict"], "picked");
    assert_eq!(picked["author"], "alice", "{picked:#}");
    assert_eq!(picked["commit"], soaked_commit.as_str());

    let once = crowsnest(
        setup.dir.path(),
        &["once", "--config", config.to_str().unwrap()],
    );
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}\n{}",
        text(&once.stdout),
        text(&once.stderr)
    );
    assert_eq!(
        setup.file("production/app.yaml"),
        deployment(&host, "production:app", &with_digest),
        "the value is written exactly as staging held it, digest included"
    );
    assert_eq!(
        setup.file("staging/app.yaml"),
        deployment(&host, "staging:app", "1.2.0")
    );
    let message = setup.remote.message("main");
    assert!(
        message.contains(&format!(
            "Image-Update: production:app {host}/demo/app:1.0.0 -> {host}/demo/app:1.1.0@{D1}"
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!("Promoted-From: staging:app {soaked_commit}")),
        "{message}"
    );
    setup
        .key
        .verify_commit(&setup.remote.path, "main")
        .expect("a signed commit");

    // Nothing more to do; the history lists the promotion with its source.
    let again = crowsnest(
        setup.dir.path(),
        &["once", "--config", config.to_str().unwrap()],
    );
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again.stdout).contains("up to date"),
        "{}",
        text(&again.stdout)
    );
    let history = crowsnest(setup.dir.path(), &["history", "--repo", &repo, "--json"]);
    let lines = text(&history.stdout);
    let promotion = lines
        .lines()
        .find(|l| l.contains("\"kind\":\"promotion\""))
        .unwrap_or_else(|| panic!("a promotion in\n{lines}"));
    assert!(
        promotion.contains(&format!("\"promotedFrom\":\"staging:app {soaked_commit}\"")),
        "{promotion}"
    );
    let manual = lines
        .lines()
        .filter(|l| l.contains("\"kind\":\"manual\"") && l.contains("alice"))
        .count();
    assert_eq!(manual, 1, "{lines}");
}

#[test]
fn require_signed_counts_only_periods_that_began_with_a_good_signature() {
    let setup = Setup::new(&["1.0.0"]);
    let host = setup.host();
    let t = now();
    let staging = |value: &str| ("staging/app.yaml", deployment(&host, "staging:app", value));
    let signed = |at, files: &[(&str, String)]| Step {
        signed: true,
        ..step(at, "bot", files)
    };
    script(
        &setup.remote,
        "main",
        Some(&setup.key),
        &[
            signed(
                t - 100 * HOUR,
                &[
                    ("policies/staging.yaml", registry_policy(&host, "staging")),
                    (
                        "policies/production.yaml",
                        promotion_policy(
                            &host,
                            "production",
                            "    from: staging:app\n    soak: 24h\n    requireSigned: true\n",
                        ),
                    ),
                    staging("1.0.0"),
                    (
                        "production/app.yaml",
                        deployment(&host, "production:app", "1.0.0"),
                    ),
                ],
            ),
            signed(t - 90 * HOUR, &[staging("1.1.0")]),
            // Someone without the key sets 1.2.0: it soaks, but unsigned.
            step(t - 60 * HOUR, "mallory", &[staging("1.2.0")]),
        ],
    );
    let keys = setup.key.public_key_file();
    let config = setup.config(&format!("verifyKeys: [{}]\n", keys.display()));
    let repo = setup.remote.path.to_str().unwrap().to_owned();
    let explain = crowsnest(
        setup.dir.path(),
        &[
            "explain",
            "production:app",
            "--repo",
            &repo,
            "--verify",
            keys.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(explain.status.code(), Some(0), "{}", text(&explain.stderr));
    let json: serde_json::Value = serde_json::from_slice(&explain.stdout).unwrap();
    let verdict = |value: &str| {
        json["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"] == format!("{host}/demo/app:{value}"))
            .map(|c| c["verdict"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert!(verdict("1.2.0").starts_with("unsigned"), "{json:#}");
    assert_eq!(verdict("1.1.0"), "picked");
    let once = crowsnest(
        setup.dir.path(),
        &["once", "--config", config.to_str().unwrap()],
    );
    assert_eq!(once.status.code(), Some(0), "{}", text(&once.stderr));
    assert_eq!(
        setup.file("production/app.yaml"),
        deployment(&host, "production:app", "1.1.0")
    );
}

#[test]
fn a_chain_carries_the_first_digest_through_every_stage() {
    let setup = Setup::new(&["1.0.0", "1.5.0"]);
    let host = setup.host();
    let t = now();
    let value = format!("1.5.0@{D1}");
    script(
        &setup.remote,
        "main",
        None,
        &[step(
            t - 10 * HOUR,
            "bot",
            &[
                ("policies/dev.yaml", registry_policy(&host, "dev")),
                (
                    "policies/staging.yaml",
                    promotion_policy(&host, "staging", "    from: dev:app\n    soak: 1h\n"),
                ),
                (
                    "policies/production.yaml",
                    promotion_policy(&host, "production", "    from: staging:app\n"),
                ),
                ("dev/app.yaml", deployment(&host, "dev:app", &value)),
                (
                    "staging/app.yaml",
                    deployment(&host, "staging:app", "1.0.0"),
                ),
                (
                    "production/app.yaml",
                    deployment(&host, "production:app", "1.0.0"),
                ),
                // A promotion of itself: a finding that holds back only qa.
                (
                    "policies/qa.yaml",
                    promotion_policy(&host, "qa", "    from: qa:app\n"),
                ),
                ("qa/app.yaml", deployment(&host, "qa:app", "1.0.0")),
            ],
        )],
    );
    let finding = "policies/qa.yaml:9:11: promote.from names qa:app itself";
    let checkout = setup.dir.path().join("checkout");
    assert!(
        git()
            .args(["clone", "-q"])
            .arg(&setup.remote.path)
            .arg(&checkout)
            .status()
            .unwrap()
            .success()
    );
    let check = crowsnest(setup.dir.path(), &["check", checkout.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains(finding),
        "{}",
        text(&check.stdout)
    );
    let config = setup.config("");
    let config = config.to_str().unwrap();
    let first = crowsnest(setup.dir.path(), &["once", "--config", config]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    assert!(
        text(&first.stderr).contains(finding),
        "{}",
        text(&first.stderr)
    );
    assert_eq!(
        setup.file("staging/app.yaml"),
        deployment(&host, "staging:app", &value)
    );
    // Production reads staging's history as it was before this pass.
    assert_eq!(
        setup.file("production/app.yaml"),
        deployment(&host, "production:app", "1.0.0")
    );
    let second = crowsnest(setup.dir.path(), &["once", "--config", config]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second.stderr));
    assert_eq!(
        setup.file("production/app.yaml"),
        deployment(&host, "production:app", &value),
        "a promotion of a promotion keeps the original digest"
    );
    assert_eq!(
        setup.file("qa/app.yaml"),
        deployment(&host, "qa:app", "1.0.0")
    );
}

#[test]
fn a_daemon_promotes_between_branches_when_the_soak_ends() {
    let port = Daemon::free_port();
    let registry = RegistryServer::start_notifying(
        Auth::Anonymous,
        &format!("http://127.0.0.1:{port}/hooks/distribution"),
        TOKEN,
    );
    registry.push_tags("demo/app", &["1.0.0"]);
    let host = registry.host();
    let remote = Remote::empty();
    let key = GpgKey::ed25519();
    let t = now();
    fn base(host: &str, policy: String, value: &str, ns: &str) -> Vec<(&'static str, String)> {
        vec![
            ("policies/app.yaml", policy),
            ("app.yaml", deployment(host, &format!("{ns}:app"), value)),
        ]
    }
    script(
        &remote,
        "staging",
        None,
        &[step(
            t - HOUR,
            "bot",
            &base(&host, registry_policy(&host, "staging"), "1.0.0", "staging"),
        )],
    );
    script(
        &remote,
        "production",
        None,
        &[step(
            t - HOUR,
            "bot",
            &base(
                &host,
                promotion_policy(
                    &host,
                    "production",
                    "    from: staging:app\n    repository: staging\n    soak: 3s\n",
                ),
                "1.0.0",
                "production",
            ),
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let common = format!(
        "    author: {{ name: {AUTHOR}, email: bot@example.com }}\n    signing:\n      format: openpgp\n      keyFile: {}\n",
        key.key_file.display()
    );
    let config = dir.path().join("crowsnest.yaml");
    std::fs::write(
        &config,
        format!(
            "repositories:\n  - name: staging\n    url: {url}\n    branch: staging\n{common}  - name: production\n    url: {url}\n    branch: production\n{common}registries:\n  hosts:\n    - host: {host}\n      insecure: true\nscan:\n  interval: 1h\nstateDir: state\nhttp:\n  listen: 127.0.0.1:{port}\n  webhookTokenFile: token\n",
            url = remote.url(),
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_crowsnest")),
        &config,
        &[],
        &[("CROWSNEST_LOG_FORMAT", "json")],
        &dir.path().join("daemon.log"),
        port,
    );
    daemon.wait_ready();
    let pins = |branch: &str, ns: &str, value: &str| {
        remote.file(branch, "app.yaml")
            == Some(deployment(&host, &format!("{ns}:app"), value).into_bytes())
    };
    let promotion = |d: &Daemon| {
        d.status()["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["repository"] == "production")
            .map(|p| p["promotion"].clone())
            .unwrap_or_default()
    };
    let value = format!("{host}/demo/app:1.1.0");
    registry.push_tags("demo/app", &["1.1.0"]);
    daemon.wait_until("staging at 1.1.0", Duration::from_secs(30), |_| {
        pins("staging", "staging", "1.1.0")
    });
    let staging_commit = remote.tip("staging");
    let staged_at = commit_time(&remote, "staging");
    // Production's pass after staging's commit: the value soaks, and the
    // status says until when (the commit's time plus the soak).
    daemon.wait_until("1.1.0 soaking", Duration::from_secs(20), |d| {
        promotion(d)["soaking"] == value.as_str()
    });
    let soaking = promotion(&daemon);
    assert!(
        pins("production", "production", "1.0.0"),
        "production waits for the soak"
    );
    let eligible_at = format_utc(staged_at + 3);
    assert_eq!(soaking["eligibleAt"], eligible_at.as_str(), "{soaking:#}");
    assert_eq!(soaking["from"], "staging:app");
    assert_eq!(soaking["repository"], "staging");
    daemon.wait_until("the promotion", Duration::from_secs(20), |_| {
        pins("production", "production", "1.1.0")
    });
    // The scheduler set the next pass for the moment the soak ends (not
    // a polling tick), and the commit came then.
    let scheduled = daemon.log_text().lines().any(|line| {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            return false;
        };
        let fields = &event["fields"];
        fields["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("next pass when a promotion candidate has soaked"))
            && fields["repository"] == "production"
            && fields["at"] == eligible_at.as_str()
    });
    assert!(
        scheduled,
        "a pass scheduled at {eligible_at}:\n{}",
        daemon.log_text()
    );
    let promoted_at = commit_time(&remote, "production");
    assert!(
        (staged_at + 3..=staged_at + 4).contains(&promoted_at),
        "promoted when the soak ended ({eligible_at}), not at {}",
        format_utc(promoted_at)
    );
    let message = remote.message("production");
    assert!(
        message.contains(&format!("Promoted-From: staging:app {staging_commit}")),
        "{message}\n{}",
        daemon.log_text()
    );
    daemon.wait_until("the pick in the status", Duration::from_secs(20), |d| {
        promotion(d)["picked"] == value.as_str()
    });
    let done = promotion(&daemon);
    assert_eq!(done["pickedCommit"], staging_commit.as_str(), "{done:#}");
    assert!(done["soaking"].is_null(), "{done:#}");
    assert!(done["eligibleAt"].is_null(), "{done:#}");
    // The promotion just made is the last one, with its commit and source.
    let last = &done["lastPromotion"];
    assert_eq!(
        last["commit"],
        remote.tip("production").as_str(),
        "{done:#}"
    );
    assert_eq!(last["sourceCommit"], staging_commit.as_str(), "{done:#}");
    assert_eq!(last["value"], value.as_str(), "{done:#}");
    let (code, page) = daemon.get("/");
    assert_eq!(code, 200);
    let production_tip = remote.tip("production");
    assert!(
        page.contains(&format!(
            "last promoted <code>{value}</code> in <code>{}</code>",
            &production_tip[..12]
        )),
        "{page}"
    );
    key.verify_commit(&remote.path, "production")
        .expect("signed");

    // Someone else moves staging (a manual edit to 1.2.0). The next pass of
    // staging (here for a new registry tag, lower, which changes nothing
    // there) sees its branch moved and asks production for a pass, which
    // times the new candidate's soak: production follows without waiting
    // for its own interval (an hour).
    script(
        &remote,
        "staging",
        None,
        &[step(
            now(),
            "alice",
            &base(&host, registry_policy(&host, "staging"), "1.2.0", "staging"),
        )],
    );
    registry.push_tags("demo/app", &["0.9.0"]);
    daemon.wait_until("the manual edit promoted", Duration::from_secs(20), |_| {
        pins("production", "production", "1.2.0")
    });
    daemon.terminate(Duration::from_secs(20));
}

#[test]
fn a_change_waits_for_its_window_and_lands_when_it_opens() {
    let port = Daemon::free_port();
    let registry = RegistryServer::start(Auth::Anonymous);
    registry.push_tags("demo/app", &["1.0.0", "1.1.0"]);
    let host = registry.host();
    let clock = |t: i64| {
        let of_day = t.rem_euclid(86_400);
        format!(
            "{:02}:{:02}:{:02}",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60
        )
    };
    // A window (UTC) an hour long that opens at `opens`.
    let policy = |opens: i64| {
        format!(
            "{}  window:\n    - from: \"{}\"\n      to: \"{}\"\n",
            registry_policy(&host, "default"),
            clock(opens),
            clock(opens + HOUR)
        )
    };
    // First the window opens two hours from now: closed for this whole test.
    let later = now() + 2 * HOUR;
    let remote = Remote::new(&[
        ("policies/app.yaml", &policy(later)),
        ("apps/app.yaml", &deployment(&host, "default:app", "1.0.0")),
    ]);
    let key = GpgKey::ed25519();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &remote,
        &key,
        &host,
        &format!("scan:\n  interval: 1h\nhttp:\n  listen: 127.0.0.1:{port}\n"),
    );
    let pinned = |value: &str| {
        remote.file("main", "apps/app.yaml")
            == Some(deployment(&host, "default:app", value).into_bytes())
    };
    // `once` before the window opens: nothing is written, and it says why.
    let early = crowsnest(dir.path(), &["once", "--config", config.to_str().unwrap()]);
    assert_eq!(early.status.code(), Some(0), "{}", text(&early.stderr));
    assert!(
        text(&early.stderr).contains("waiting: default:app: its window is closed"),
        "{}",
        text(&early.stderr)
    );
    assert!(pinned("1.0.0"));
    let mut daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_crowsnest")),
        &config,
        &[],
        &[("CROWSNEST_LOG_FORMAT", "json")],
        &dir.path().join("daemon.log"),
        port,
    );
    daemon.wait_ready();
    let status = daemon.status();
    assert_eq!(
        status["policies"][0]["waitingForWindow"],
        format_utc(later).as_str(),
        "{status:#}"
    );
    // Now, with the daemon running, the window is moved to open four
    // seconds from now, and a webhook about a new (lower) tag brings a pass.
    let opens = now() + 4;
    remote.commit_files(
        "main",
        "window opens soon",
        &[("policies/app.yaml", &policy(opens))],
    );
    registry.push_tags("demo/app", &["1.0.1"]);
    let (code, body) = daemon.post(
        "/hooks/generic",
        &[],
        &format!("{{\"image\": \"{host}/demo/app\"}}"),
    );
    assert_eq!(code, 202, "{body}");
    daemon.wait_until(
        "the commit when the window opens",
        Duration::from_secs(20),
        |_| pinned("1.1.0"),
    );
    let landed = now();
    // The pass after the webhook held the change for the new opening, so
    // it was written by the pass the opening woke, not by that one.
    let held = daemon.log_text().lines().any(|line| {
        serde_json::from_str::<serde_json::Value>(line).is_ok_and(|event| {
            event["fields"]["message"] == "waiting for window"
                && event["fields"]["opens"] == format_utc(opens).as_str()
        })
    });
    assert!(
        held,
        "held until {}:\n{}",
        format_utc(opens),
        daemon.log_text()
    );
    let committed = commit_time(&remote, "main");
    assert!(committed >= opens, "not before the window opened");
    assert!(
        landed <= opens + 3,
        "right after it opened: {landed} vs {opens}"
    );
    key.verify_commit(&remote.path, "main").expect("signed");
    daemon.terminate(Duration::from_secs(20));
}

// --- explain ---

/// A window of one hour opening `from_now` seconds from now (UTC).
fn window_from(from_now: i64) -> String {
    let clock = |t: i64| {
        let of_day = t.rem_euclid(86_400);
        format!(
            "{:02}:{:02}:{:02}",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60
        )
    };
    let opens = now() + from_now;
    format!(
        "  window:\n    - from: \"{}\"\n      to: \"{}\"\n",
        clock(opens),
        clock(opens + HOUR)
    )
}

fn json_of(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&output.stdout), text(&output.stderr)))
}

#[test]
fn explain_a_registry_policy_shows_the_writes_the_window_the_guard_and_its_exit() {
    let registry = RegistryServer::start(Auth::Anonymous);
    registry.push_tags("demo/app", &["1.0.0", "1.1.0", "2.0.0"]);
    let host = registry.host();
    let policy = |name: &str, range: &str, extra: &str| {
        format!(
            "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  image: {host}/demo/app\n  policy:\n    semver:\n      range: \"{range}\"\n{extra}"
        )
    };
    let policies = [
        policy("app", ">=1.0.0", ""),
        policy("pinned", "<2.0.0", ""),
        policy("windowed", ">=1.0.0", &window_from(2 * HOUR)),
        policy("none", ">=9.0.0", ""),
    ]
    .join("---\n");
    let remote = Remote::new(&[
        ("policies/app.yaml", &policies),
        ("apps/app.yaml", &deployment(&host, "default:app", "1.0.0")),
        (
            "apps/pinned.yaml",
            &deployment(&host, "default:pinned", "2.0.0"),
        ),
        (
            "apps/windowed.yaml",
            &deployment(&host, "default:windowed", "1.0.0"),
        ),
    ]);
    let key = GpgKey::ed25519();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &remote, &key, &host, "");
    let config = config.to_str().unwrap().to_owned();
    // A dry run clones (nothing is committed) and shows what a pass writes.
    let dry = crowsnest(dir.path(), &["once", "--config", &config, "--dry-run"]);
    let diff = text(&dry.stdout);
    assert!(
        diff.contains(&format!("+          image: {host}/demo/app:2.0.0 ")),
        "{diff}\n{}",
        text(&dry.stderr)
    );
    let explain = |name: &str, json: bool| {
        let id = format!("default:{name}");
        let mut args = vec!["explain", id.as_str(), "--config", config.as_str()];
        if json {
            args.push("--json");
        }
        crowsnest(dir.path(), &args)
    };

    // Picked: exit 0, and the setter with its current and new value, as
    // the dry run patches it.
    let app = explain("app", true);
    assert_eq!(app.status.code(), Some(0), "{}", text(&app.stderr));
    let json = json_of(&app);
    assert_eq!(json["selected"], "2.0.0", "{json:#}");
    assert_eq!(json["current"], "1.0.0", "{json:#}");
    assert_eq!(
        json["window"],
        serde_json::json!({"open": true, "opensAt": null})
    );
    assert_eq!(
        json["writes"],
        serde_json::json!([{
            "file": "apps/app.yaml",
            "line": 10,
            "column": 18,
            "field": "image",
            "current": format!("{host}/demo/app:1.0.0"),
            "new": format!("{host}/demo/app:2.0.0"),
        }]),
        "{json:#}"
    );
    let table = text(&explain("app", false).stdout);
    assert!(
        table.contains(&format!(
            "apps/app.yaml:10:18  image  {host}/demo/app:1.0.0 -> {host}/demo/app:2.0.0"
        )),
        "{table}"
    );

    // The guard holds a pick below what the files hold: nothing picked.
    let pinned = explain("pinned", true);
    assert_eq!(pinned.status.code(), Some(1), "{}", text(&pinned.stderr));
    let json = json_of(&pinned);
    assert_eq!(json["selected"], serde_json::Value::Null, "{json:#}");
    let held = json["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tag"] == "1.1.0")
        .unwrap();
    assert_eq!(held["verdict"], "lower_than_current", "{json:#}");
    assert_eq!(json["writes"][0]["new"], serde_json::Value::Null);
    assert!(
        json["writes"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("held"),
        "{json:#}"
    );
    let table = text(&explain("pinned", false).stdout);
    let line = table.lines().find(|l| l.starts_with("1.1.0 ")).unwrap();
    assert!(
        line.contains("lower than current") && line.contains("2.0.0 (the files hold it"),
        "{table}"
    );
    assert!(table.contains("nothing is written"), "{table}");

    // A closed window: the pick waits, says until when, and still counts.
    let windowed = explain("windowed", true);
    assert_eq!(
        windowed.status.code(),
        Some(0),
        "{}",
        text(&windowed.stderr)
    );
    let json = json_of(&windowed);
    assert_eq!(json["window"]["open"], false, "{json:#}");
    let opens = json["window"]["opensAt"].as_str().unwrap().to_owned();
    let pick = json["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tag"] == "2.0.0")
        .unwrap();
    assert_eq!(pick["verdict"], "outside_window", "{json:#}");
    assert_eq!(json["writes"][0]["new"], format!("{host}/demo/app:2.0.0"));
    let table = text(&explain("windowed", false).stdout);
    let line = table.lines().find(|l| l.starts_with("2.0.0 ")).unwrap();
    assert!(
        line.contains(&format!("outside window until {opens}")),
        "{table}"
    );

    // Nothing matched: 1. An unknown policy: 2.
    let none = explain("none", false);
    assert_eq!(none.status.code(), Some(1), "{}", text(&none.stderr));
    assert!(text(&none.stdout).contains("no tag matched"));
    assert!(text(&none.stdout).contains("no setter names this policy"));
    let unknown = explain("nope", false);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown.stderr));
    assert!(
        text(&unknown.stderr).contains("no policy default:nope"),
        "{}",
        text(&unknown.stderr)
    );
}

#[test]
fn explain_a_promotion_outside_its_window_and_refuse_another_entry_with_repo() {
    let setup = Setup::new(&["1.0.0", "1.1.0"]);
    let host = setup.host();
    let t = now();
    let staging = |value: &str| ("staging/app.yaml", deployment(&host, "staging:app", value));
    let windowed = format!(
        "    from: staging:app\n    soak: 1h\n{}",
        window_from(2 * HOUR)
    );
    script(
        &setup.remote,
        "main",
        None,
        &[
            step(
                t - 100 * HOUR,
                "bot",
                &[
                    ("policies/staging.yaml", registry_policy(&host, "staging")),
                    (
                        "policies/production.yaml",
                        promotion_policy(&host, "production", &windowed),
                    ),
                    (
                        "policies/fresh.yaml",
                        promotion_policy(
                            &host,
                            "fresh",
                            "    from: staging:app\n    soak: 1000h\n",
                        ),
                    ),
                    (
                        "policies/elsewhere.yaml",
                        promotion_policy(
                            &host,
                            "elsewhere",
                            "    from: staging:app\n    repository: staging\n    soak: 1h\n",
                        ),
                    ),
                    staging("1.0.0"),
                    (
                        "production/app.yaml",
                        deployment(&host, "production:app", "1.0.0"),
                    ),
                ],
            ),
            step(t - 50 * HOUR, "bot", &[staging("1.1.0")]),
        ],
    );
    let repo = setup.remote.path.to_str().unwrap().to_owned();
    let explain = |id: &str, json: bool| {
        let mut args = vec!["explain", id, "--repo", repo.as_str()];
        if json {
            args.push("--json");
        }
        crowsnest(setup.dir.path(), &args)
    };
    let picked = format!("{host}/demo/app:1.1.0");

    let out = explain("production:app", true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = json_of(&out);
    assert_eq!(json["picked"], picked.as_str(), "{json:#}");
    assert_eq!(json["window"]["open"], false, "{json:#}");
    let opens = json["window"]["opensAt"].as_str().unwrap().to_owned();
    let verdict = json["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"] == picked.as_str())
        .map(|c| c["verdict"].as_str().unwrap().to_owned())
        .unwrap();
    assert_eq!(verdict, format!("outside window until {opens}"));
    assert_eq!(
        json["writes"],
        serde_json::json!([{
            "file": "production/app.yaml",
            "line": 10,
            "column": 18,
            "field": "image",
            "current": format!("{host}/demo/app:1.0.0"),
            "new": picked,
        }]),
        "{json:#}"
    );
    let table = text(&explain("production:app", false).stdout);
    assert!(
        table.contains(&format!("outside window until {opens}"))
            && table.contains(&format!(
                "production/app.yaml:10:18  image  {host}/demo/app:1.0.0 -> {picked}"
            ))
            && table.contains(&format!("closed; the change waits until {opens}")),
        "{table}"
    );

    // Nothing soaked yet: nothing picked, exit 1.
    let fresh = explain("fresh:app", false);
    assert_eq!(fresh.status.code(), Some(1), "{}", text(&fresh.stderr));
    assert!(text(&fresh.stdout).contains("nothing to promote"));

    // Another repository entry's branch is not this clone's HEAD.
    let elsewhere = explain("elsewhere:app", false);
    assert_eq!(
        elsewhere.status.code(),
        Some(2),
        "{}",
        text(&elsewhere.stdout)
    );
    let message = text(&elsewhere.stderr);
    assert!(
        message.contains("promote.repository \"staging\"") && message.contains("--config FILE"),
        "{message}"
    );
    assert!(elsewhere.stdout.is_empty());
}

// --- folder per environment in the daemon ---

/// Staging and production are folders of one branch (one repository
/// entry): the commit that moves staging starts the candidate's soak, and
/// the daemon passes again right away to time it, so production follows
/// when the soak ends, not at the next `scan.interval` (an hour here).
#[test]
fn a_daemon_promotes_between_folders_of_one_branch_when_the_soak_ends() {
    let port = Daemon::free_port();
    let registry = RegistryServer::start_notifying(
        Auth::Anonymous,
        &format!("http://127.0.0.1:{port}/hooks/distribution"),
        TOKEN,
    );
    registry.push_tags("demo/app", &["1.0.0"]);
    let host = registry.host();
    let remote = Remote::empty();
    let key = GpgKey::ed25519();
    script(
        &remote,
        "main",
        None,
        &[step(
            now() - HOUR,
            "bot",
            &[
                ("policies/staging.yaml", registry_policy(&host, "staging")),
                (
                    "policies/production.yaml",
                    promotion_policy(&host, "production", "    from: staging:app\n    soak: 3s\n"),
                ),
                (
                    "staging/app.yaml",
                    deployment(&host, "staging:app", "1.0.0"),
                ),
                (
                    "production/app.yaml",
                    deployment(&host, "production:app", "1.0.0"),
                ),
            ],
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let config = write_config(
        dir.path(),
        &remote,
        &key,
        &host,
        &format!(
            "scan:\n  interval: 1h\nhttp:\n  listen: 127.0.0.1:{port}\n  webhookTokenFile: token\n"
        ),
    );
    let mut daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_crowsnest")),
        &config,
        &[],
        &[],
        &dir.path().join("daemon.log"),
        port,
    );
    daemon.wait_ready();
    let pins = |folder: &str, value: &str| {
        remote.file("main", &format!("{folder}/app.yaml"))
            == Some(deployment(&host, &format!("{folder}:app"), value).into_bytes())
    };
    registry.push_tags("demo/app", &["1.1.0"]);
    daemon.wait_until("staging at 1.1.0", Duration::from_secs(30), |_| {
        pins("staging", "1.1.0")
    });
    assert!(pins("production", "1.0.0"), "production waits for the soak");
    daemon.wait_until("the promotion", Duration::from_secs(20), |_| {
        pins("production", "1.1.0")
    });
    let message = remote.message("main");
    assert!(
        message.contains("Promoted-From: staging:app "),
        "{message}\n{}",
        daemon.log_text()
    );
    daemon.terminate(Duration::from_secs(20));
}

#[test]
fn a_source_set_only_through_targets_is_promoted_into_targets() {
    let setup = Setup::new(&["1.0.0", "1.1.0"]);
    let host = setup.host();
    let t = now();
    // Helm-style values files, set through each policy's `targets:`
    // (no marker comments anywhere).
    let values = |env: &str, tag: &str| {
        (
            format!("{env}/values.yaml"),
            format!("image:\n  repository: {host}/demo/app\n  tag: {tag}\n"),
        )
    };
    let targets = |env: &str| {
        format!(
            "  targets:\n    - file: {env}/values.yaml\n      path: image.tag\n      field: tag\n"
        )
    };
    let staging_policy = format!(
        "{}{}",
        registry_policy(&host, "staging"),
        targets("staging")
    );
    let production_policy = format!(
        "{}{}",
        promotion_policy(
            &host,
            "production",
            "    from: staging:app\n    soak: 24h\n"
        ),
        targets("production")
    );
    let (staging_file, staging_old) = values("staging", "1.0.0");
    let (_, staging_new) = values("staging", "1.1.0");
    let (production_file, production_old) = values("production", "1.0.0");
    script(
        &setup.remote,
        "main",
        None,
        &[
            step(
                t - 100 * HOUR,
                "bot",
                &[
                    ("policies/staging.yaml", staging_policy),
                    ("policies/production.yaml", production_policy),
                    (&staging_file, staging_old),
                    (&production_file, production_old),
                ],
            ),
            step(t - 50 * HOUR, "alice", &[(&staging_file, staging_new)]),
        ],
    );
    let repo = setup.remote.path.to_str().unwrap().to_owned();
    let out = crowsnest(
        setup.dir.path(),
        &["explain", "production:app", "--repo", &repo, "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = json_of(&out);
    assert_eq!(json["picked"], "1.1.0", "{json:#}");
    let candidates: Vec<(&str, &str, &str)> = json["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or("");
            (field("value"), field("author"), field("verdict"))
        })
        .collect();
    assert_eq!(
        candidates,
        [
            ("1.1.0", "alice", "picked"),
            ("1.0.0", "bot", "eligible, lower than the pick")
        ],
        "{json:#}"
    );
    // The destination's value is read through its targets too.
    assert_eq!(json["current"], "1.0.0", "{json:#}");
    assert_eq!(
        json["writes"][0]["file"],
        production_file.as_str(),
        "{json:#}"
    );
    assert_eq!(json["writes"][0]["new"], "1.1.0", "{json:#}");

    let config = setup.config("");
    let once = crowsnest(
        setup.dir.path(),
        &["once", "--config", config.to_str().unwrap()],
    );
    assert_eq!(once.status.code(), Some(0), "{}", text(&once.stderr));
    assert_eq!(
        setup.file(&production_file),
        values("production", "1.1.0").1
    );
    let message = text(
        &setup
            .remote
            .git()
            .args(["log", "-1", "--format=%B", "main"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(message.contains("Promoted-From: staging:app "), "{message}");
}
