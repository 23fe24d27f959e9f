//! One daemon for several repositories and branches (PRODUCT.md §7), end
//! to end with real servers: Debian's docker-registry (its access log
//! counts the listings, its notifications are the webhooks), one bare
//! remote over `file://` with two watched branches, one over smart HTTP.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::daemon::Daemon;
use support::git::Remote;
use support::git_http::GitHttp;
use support::registry::{Auth, RegistryServer};
use support::signing::GpgKey;

const TOKEN: &str = "hook-t0ken-for-fleet-tests";
const AUTHOR: &str = "Crowsnest Bot";

fn deployment(host: &str, app: &str, tag: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  template:\n    spec:\n      containers:\n        - name: {app}\n          image: {host}/demo/{app}:{tag} # {{\"$imagepolicy\": \"default:{app}\"}}\n"
    )
}

fn policies(host: &str, apps: &[&str]) -> String {
    apps.iter()
        .map(|app| {
            format!(
                "---\napiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: {app}\nspec:\n  image: {host}/demo/{app}\n  policy:\n    semver:\n      range: \">=1.0.0\"\n"
            )
        })
        .collect()
}

/// A remote whose `main` pins each of `apps` at 1.0.0 with its policy.
fn remote(host: &str, apps: &[&str]) -> Remote {
    let mut files: Vec<(String, String)> = apps
        .iter()
        .map(|app| {
            (
                format!("apps/{app}/deployment.yaml"),
                deployment(host, app, "1.0.0"),
            )
        })
        .collect();
    files.push(("policies/apps.yaml".into(), policies(host, apps)));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    Remote::new(&refs)
}

/// Which remote an extra entry is on.
#[derive(Clone, Copy)]
enum On {
    Platform,
    Team,
}

/// Three repository entries watching overlapping images:
/// - `platform` and `platform-prod`: one `file://` remote, branches `main`
///   and `production`, both using `shared` and `alpha`;
/// - `team`: a remote over smart HTTP using `shared` and `beta`.
struct Setup {
    registry: RegistryServer,
    platform: Remote,
    team: Remote,
    http: Option<GitHttp>,
    key: GpgKey,
    dir: tempfile::TempDir,
    port: u16,
}

impl Setup {
    fn new() -> Setup {
        let port = Daemon::free_port();
        let registry = RegistryServer::start_notifying(
            Auth::Anonymous,
            &format!("http://127.0.0.1:{port}/hooks/distribution"),
            TOKEN,
        );
        for app in ["shared", "alpha", "beta"] {
            registry.push_tags(&format!("demo/{app}"), &["1.0.0"]);
        }
        let host = registry.host();
        let platform = remote(&host, &["shared", "alpha"]);
        platform.set_branch("production", "main");
        let team = remote(&host, &["shared", "beta"]);
        let http = GitHttp::start(team.dir(), "bot", "team-pa55");
        Setup {
            registry,
            platform,
            team,
            http: Some(http),
            key: GpgKey::ed25519(),
            dir: tempfile::tempdir().expect("temp dir"),
            port,
        }
    }

    fn http(&self) -> &GitHttp {
        self.http.as_ref().expect("the HTTP server runs")
    }

    /// The config of the three entries, plus `extra` entries (name, branch,
    /// remote).
    fn config(&self, extra: &[(&str, &str, On)]) -> PathBuf {
        std::fs::write(self.dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        let common = format!(
            "    author: {{ name: {AUTHOR}, email: bot@example.com }}\n    signing:\n      format: openpgp\n      keyFile: {}\n",
            self.key.key_file.display()
        );
        let mut text = format!(
            "repositories:\n  - name: platform\n    url: {platform}\n{common}  - name: platform-prod\n    url: {platform}\n    branch: production\n{common}  - name: team\n    url: {team}\n    auth: {{ username: bot, passwordFile: {password} }}\n{common}",
            platform = self.platform.url(),
            team = self.http().url("fleet.git"),
            password = self.http().password_file.display(),
        );
        for (name, branch, on) in extra {
            let url = match on {
                On::Platform => self.platform.url(),
                On::Team => format!(
                    "{}\n    auth: {{ username: bot, passwordFile: {} }}",
                    self.http().url("fleet.git"),
                    self.http().password_file.display()
                ),
            };
            text.push_str(&format!(
                "  - name: {name}\n    url: {url}\n    branch: {branch}\n{common}"
            ));
        }
        text.push_str(&format!(
            "registries:\n  hosts:\n    - host: {host}\n      insecure: true\nscan:\n  interval: 1h\nstateDir: state\nhttp:\n  listen: 127.0.0.1:{port}\n  webhookTokenFile: token\n",
            host = self.registry.host(),
            port = self.port,
        ));
        let path = self.dir.path().join("crowsnest.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn pins(&self, remote: &Remote, branch: &str, app: &str, tag: &str) -> bool {
        remote.file(branch, &format!("apps/{app}/deployment.yaml"))
            == Some(deployment(&self.registry.host(), app, tag).into_bytes())
    }

    /// How often each image's tags were listed, from the registry's log.
    fn listings(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for request in self.registry.requests() {
            if let Some(image) = request
                .path()
                .strip_prefix("/v2/")
                .and_then(|p| p.strip_suffix("/tags/list"))
            {
                *counts.entry(image.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    fn crowsnest(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_crowsnest"))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run crowsnest")
    }

    fn start(&self, config: &Path, args: &[&str], log: &str) -> Daemon {
        Daemon::start(
            Path::new(env!("CARGO_BIN_EXE_crowsnest")),
            config,
            args,
            &[],
            &self.dir.path().join(log),
            self.port,
        )
    }

    /// Every crowsnest commit on `branch` verifies with the key.
    fn assert_signed(&self, remote: &Remote, branch: &str) {
        let ours: Vec<_> = remote
            .log(branch)
            .into_iter()
            .filter(|c| c.author_name == AUTHOR)
            .collect();
        assert!(!ours.is_empty(), "crowsnest committed to {branch}");
        for commit in ours {
            self.key
                .verify_commit(&remote.path, &commit.id)
                .unwrap_or_else(|e| panic!("{branch} {} is not signed: {e}", commit.id));
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repository<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {status:#}"))
}

/// A `pre-receive` hook that rejects every push to `refs/heads/locked`.
const LOCKED_HOOK: &str = "#!/bin/sh\nwhile read old new ref; do\n  if [ \"$ref\" = refs/heads/locked ]; then\n    echo \"locked: this branch takes no pushes\" >&2\n    exit 1\n  fi\ndone\nexit 0\n";

/// Besides the three entries, two that fail on their own in the same run:
/// `locked` (the team's server rejects its push with a hook) and `broken`
/// (a platform branch whose `shared` policy has an invalid range).
#[test]
fn once_lists_each_image_once_and_commits_in_every_repository() {
    let setup = Setup::new();
    setup.team.set_branch("locked", "main");
    setup.team.set_hook("pre-receive", LOCKED_HOOK);
    setup.platform.set_branch("broken", "main");
    let host = setup.registry.host();
    setup
        .platform
        .change("broken", "break the shared policy", |dir| {
            let policies =
                policies(&host, &["shared", "alpha"]).replacen(">=1.0.0", ">=1.0.0 <", 1);
            support::git::write(dir, "policies/apps.yaml", policies.as_bytes());
        });
    let broken_tip = setup.platform.tip("broken");
    let config = setup.config(&[
        ("locked", "locked", On::Team),
        ("broken", "broken", On::Platform),
    ]);
    setup.registry.push_tags("demo/shared", &["1.1.0"]);
    setup.registry.push_tags("demo/beta", &["1.2.0"]);
    let before = setup.listings();
    // Without the log, stderr holds only what `once` prints.
    let output = Command::new(env!("CARGO_BIN_EXE_crowsnest"))
        .args(["once", "--config", config.to_str().unwrap()])
        .env("CROWSNEST_LOG", "off")
        .current_dir(setup.dir.path())
        .output()
        .expect("run crowsnest");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let stdout = text(&output.stdout);
    for name in ["platform", "platform-prod", "team", "locked", "broken"] {
        assert!(
            stdout.contains(&format!("== repository {name}\n")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("to production: 1 change(s)"), "{stdout}");
    // Each stderr line names its entry: the rejected push and the broken
    // policy, each in its own repository only.
    for line in stderr.lines() {
        assert!(
            line.starts_with("[locked] ") || line.starts_with("[broken] "),
            "{line:?} names no entry in\n{stderr}"
        );
    }
    assert!(
        stderr.lines().any(|l| l.starts_with("[locked] error: ")
            && l.contains("locked")
            && l.contains("reject")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("[broken] policies/apps.yaml:10:")
                && l.contains("invalid semver range")),
        "{stderr}"
    );
    assert_eq!(setup.team.tip("locked"), setup.team.tip("main~1"));
    assert_eq!(setup.platform.tip("broken"), broken_tip);
    let after = setup.listings();
    for image in ["demo/shared", "demo/alpha", "demo/beta"] {
        assert_eq!(
            after.get(image).copied().unwrap_or(0) - before.get(image).copied().unwrap_or(0),
            1,
            "{image} listed once for the three repositories: {after:?}"
        );
    }
    assert!(setup.pins(&setup.platform, "main", "shared", "1.1.0"));
    assert!(setup.pins(&setup.platform, "production", "shared", "1.1.0"));
    assert!(setup.pins(&setup.platform, "main", "alpha", "1.0.0"));
    assert!(setup.pins(&setup.team, "main", "shared", "1.1.0"));
    assert!(setup.pins(&setup.team, "main", "beta", "1.2.0"));
    setup.assert_signed(&setup.platform, "main");
    setup.assert_signed(&setup.platform, "production");
    setup.assert_signed(&setup.team, "main");
    // One clone for the platform URL holds both branches.
    let clones: Vec<_> = std::fs::read_dir(setup.dir.path().join("state/clones"))
        .expect("a clone per URL")
        .collect();
    assert_eq!(clones.len(), 2, "{clones:?}");

    // history reads one entry's clone and branch.
    let history = setup.crowsnest(&[
        "history",
        "--config",
        config.to_str().unwrap(),
        "--repository",
        "platform-prod",
        "--json",
    ]);
    assert_eq!(history.status.code(), Some(0), "{}", text(&history.stderr));
    let json = text(&history.stdout);
    assert!(json.contains("1.1.0") && !json.contains("beta"), "{json}");
    let ambiguous = setup.crowsnest(&["history", "--config", config.to_str().unwrap()]);
    assert_eq!(ambiguous.status.code(), Some(2));
    let names = "choose one with --repository: platform, platform-prod, team, locked, broken";
    assert!(
        text(&ambiguous.stderr).contains(names),
        "{}",
        text(&ambiguous.stderr)
    );

    // explain reads one entry's clone and branch; without --repository
    // it is bad usage (exit 2), naming the entries.
    let explain = setup.crowsnest(&[
        "explain",
        "default:shared",
        "--config",
        config.to_str().unwrap(),
        "--repository",
        "platform-prod",
        "--json",
    ]);
    assert_eq!(explain.status.code(), Some(0), "{}", text(&explain.stderr));
    let json: serde_json::Value = serde_json::from_slice(&explain.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&explain.stdout)));
    assert_eq!(json["selected"], "1.1.0", "{json:#}");
    let broken = setup.crowsnest(&[
        "explain",
        "default:shared",
        "--config",
        config.to_str().unwrap(),
        "--repository",
        "broken",
    ]);
    // The broken entry's branch is the one read: its policy is disabled,
    // so there is no such policy to explain (exit 2, as for an unknown one).
    assert_eq!(broken.status.code(), Some(2), "{}", text(&broken.stderr));
    assert!(
        text(&broken.stderr).contains(
            "policies/apps.yaml:10:14: policy default:shared is disabled by a problem in its files"
        ),
        "{}",
        text(&broken.stderr)
    );
    let ambiguous = setup.crowsnest(&[
        "explain",
        "default:shared",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(ambiguous.status.code(), Some(2));
    assert!(
        text(&ambiguous.stderr).contains(names),
        "{}",
        text(&ambiguous.stderr)
    );
}

#[test]
fn a_daemon_scans_each_image_once_and_a_dead_remote_holds_back_only_its_repository() {
    let mut setup = Setup::new();
    let config = setup.config(&[]);
    let mut daemon = setup.start(&config, &[], "daemon.log");
    daemon.wait_ready();
    daemon.wait_until("three repositories ready", Duration::from_secs(30), |d| {
        d.status()["repositories"]
            .as_array()
            .is_some_and(|r| r.len() == 3 && r.iter().all(|r| r["ready"] == true))
    });
    // The three first passes ran together and missed the tag cache for
    // the same images: each image was listed by one of them only.
    let log = std::fs::read_to_string(setup.dir.path().join("daemon.log")).unwrap();
    for image in ["demo/shared", "demo/alpha", "demo/beta"] {
        let by_passes = log
            .lines()
            .filter(|l| l.contains("run_pass") && l.contains("listed tags"))
            .filter(|l| l.contains(&format!("/{image}\u{1b}")) || l.contains(&format!("/{image} ")))
            .count();
        assert_eq!(
            by_passes, 1,
            "{image} listed once by the first passes:\n{log}"
        );
    }
    // The registry delivers the notifications of the pushes made before
    // the daemon listened (each one rescans its image); wait for quiet.
    let mut quiet = setup.listings();
    let mut stable_since = std::time::Instant::now();
    while stable_since.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(300));
        let now = setup.listings();
        if now != quiet {
            quiet = now;
            stable_since = std::time::Instant::now();
        }
    }
    let status = daemon.status();
    let shared: Vec<&serde_json::Value> = status["policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["id"] == "default:shared")
        .collect();
    let owners: BTreeSet<&str> = shared
        .iter()
        .map(|p| p["repository"].as_str().unwrap())
        .collect();
    assert_eq!(
        owners,
        BTreeSet::from(["platform", "platform-prod", "team"])
    );

    // A push of the shared image: one notification, one listing, a
    // signed commit in every repository using it.
    setup.registry.push_tags("demo/shared", &["1.1.0"]);
    daemon.wait_until("1.1.0 everywhere", Duration::from_secs(30), |_| {
        setup.pins(&setup.platform, "main", "shared", "1.1.0")
            && setup.pins(&setup.platform, "production", "shared", "1.1.0")
            && setup.pins(&setup.team, "main", "shared", "1.1.0")
    });
    let after = setup.listings();
    let more = |image: &str| {
        after.get(image).copied().unwrap_or(0) - quiet.get(image).copied().unwrap_or(0)
    };
    assert_eq!(
        more("demo/shared"),
        1,
        "one scan for three repositories: {after:?}"
    );
    assert_eq!(more("demo/alpha") + more("demo/beta"), 0, "{after:?}");
    setup.assert_signed(&setup.platform, "production");
    setup.assert_signed(&setup.team, "main");
    let metrics = daemon.metrics();
    for name in ["platform", "platform-prod", "team"] {
        let line = format!("crowsnest_commits_total{{repository=\"{name}\"}} 1");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }

    // The team's server goes away: its repository fails on its own, the
    // others keep committing, the daemon stays ready.
    setup.http = None;
    setup.registry.push_tags("demo/shared", &["1.2.0"]);
    daemon.wait_until("1.2.0 on the platform", Duration::from_secs(30), |_| {
        setup.pins(&setup.platform, "main", "shared", "1.2.0")
            && setup.pins(&setup.platform, "production", "shared", "1.2.0")
    });
    daemon.wait_until("the team's failure", Duration::from_secs(30), |d| {
        repository(&d.status(), "team")["lastError"].is_string()
    });
    let status = daemon.status();
    assert_eq!(status["ready"], true);
    let error = repository(&status, "team")["lastError"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("127.0.0.1"), "{error}");
    assert!(
        repository(&status, "platform")["lastError"].is_null(),
        "{status:#}"
    );
    assert!(setup.pins(&setup.team, "main", "shared", "1.1.0"));
    let (code, page) = daemon.get("/");
    assert_eq!(code, 200);
    for name in ["platform", "platform-prod", "team"] {
        assert!(page.contains(&format!("<h2>{name} ")), "{page}");
    }
    daemon.terminate(Duration::from_secs(20));
}

#[test]
fn shards_split_repositories_with_no_policy_handled_twice() {
    let setup = Setup::new();
    let extra = [
        ("staging", "staging", On::Platform),
        ("qa", "qa", On::Platform),
        ("canary", "canary", On::Platform),
    ];
    for (_, branch, _) in extra {
        setup.platform.set_branch(branch, "main");
    }
    let config = setup.config(&extra);
    let all: BTreeSet<String> = [
        "platform",
        "platform-prod",
        "team",
        "staging",
        "qa",
        "canary",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut policies: BTreeSet<(String, String)> = BTreeSet::new();
    for shard in ["0/2", "1/2"] {
        let mut daemon = setup.start(
            &config,
            &["--shard", shard],
            &format!("shard-{}.log", &shard[..1]),
        );
        daemon.wait_ready();
        let status = daemon.status();
        for r in status["repositories"].as_array().unwrap() {
            let name = r["name"].as_str().unwrap().to_owned();
            assert!(
                seen.insert(name.clone(), shard.to_owned()).is_none(),
                "{name} on two shards"
            );
        }
        for p in status["policies"].as_array().unwrap() {
            let key = (
                p["repository"].as_str().unwrap().to_owned(),
                p["id"].as_str().unwrap().to_owned(),
            );
            assert_eq!(seen.get(&key.0).map(String::as_str), Some(shard), "{key:?}");
            assert!(policies.insert(key.clone()), "{key:?} handled twice");
        }
        daemon.terminate(Duration::from_secs(20));
    }
    let names: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(names, all);
    assert_eq!(
        policies.len(),
        12,
        "two policies in each of six repositories"
    );
}
