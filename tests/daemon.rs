//! `crowsnest run` end to end: a real registry (Debian's docker-registry,
//! its own `notifications:` pointing at the daemon), bare Git remotes,
//! the daemon's real HTTP socket, SIGTERM, restarts and shards.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crowsnest::model::{PolicyId, Shard};
use support::daemon::Daemon;
use support::git::Remote;
use support::registry::{Auth, RegistryServer};
use support::signing::GpgKey;

const TOKEN: &str = "hook-t0ken-for-tests";

fn deployment(host: &str, app: &str, tag: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  template:\n    spec:\n      containers:\n        - name: {app}\n          image: {host}/demo/{app}:{tag} # {{\"$imagepolicy\": \"default:{app}\"}}\n"
    )
}

fn policy(host: &str, app: &str) -> String {
    format!(
        "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: {app}\nspec:\n  image: {host}/demo/{app}\n  policy:\n    semver:\n      range: \">=1.0.0\"\n"
    )
}

/// A registry with `apps` (name, tags), a remote whose manifests pin each
/// app at 1.0.0, a signing key, and a daemon config.
struct Fleet {
    registry: RegistryServer,
    remote: Remote,
    key: GpgKey,
    dir: tempfile::TempDir,
    port: u16,
}

impl Fleet {
    fn new(notify: bool, apps: &[(&str, &[&str])]) -> Fleet {
        let port = Daemon::free_port();
        let registry = if notify {
            RegistryServer::start_notifying(
                Auth::Anonymous,
                &format!("http://127.0.0.1:{port}/hooks/distribution"),
                TOKEN,
            )
        } else {
            RegistryServer::start(Auth::Anonymous)
        };
        for (app, tags) in apps {
            registry.push_tags(&format!("demo/{app}"), tags);
        }
        let host = registry.host();
        let mut files = Vec::new();
        let mut policies = String::new();
        for (app, _) in apps {
            files.push((
                format!("apps/{app}/deployment.yaml"),
                deployment(&host, app, "1.0.0"),
            ));
            policies.push_str("---\n");
            policies.push_str(&policy(&host, app));
        }
        files.push(("policies/apps.yaml".to_owned(), policies));
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let remote = Remote::new(&refs);
        Fleet {
            registry,
            remote,
            key: GpgKey::ed25519(),
            dir: tempfile::tempdir().expect("temp dir"),
            port,
        }
    }

    /// Writes a config for a daemon with its own state dir and port.
    fn config(&self, name: &str, port: u16, interval: &str) -> PathBuf {
        std::fs::write(self.dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        let path = self.dir.path().join(format!("{name}.yaml"));
        let text = format!(
            "git:\n  url: {url}\n  author: {{ name: Crowsnest Bot, email: bot@example.com }}\n  signing:\n    format: openpgp\n    keyFile: {key}\nregistries:\n  hosts:\n    - host: {host}\n      insecure: true\nscan:\n  interval: {interval}\nstateDir: state-{name}\nhttp:\n  listen: 127.0.0.1:{port}\n  webhookTokenFile: token\n",
            url = self.remote.url(),
            key = self.key.key_file.display(),
            host = self.registry.host(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn start(&self, name: &str, port: u16, interval: &str, args: &[&str]) -> Daemon {
        let config = self.config(name, port, interval);
        Daemon::start(
            Path::new(env!("CARGO_BIN_EXE_crowsnest")),
            &config,
            args,
            &[],
            &self.dir.path().join(format!("{name}.log")),
            port,
        )
    }

    fn file(&self, app: &str) -> String {
        String::from_utf8(
            self.remote
                .file("main", &format!("apps/{app}/deployment.yaml"))
                .expect("the manifest exists"),
        )
        .unwrap()
    }

    fn pins(&self, app: &str, tag: &str) -> bool {
        self.file(app) == deployment(&self.registry.host(), app, tag)
    }

    fn tag_listings(&self) -> usize {
        self.registry
            .requests()
            .iter()
            .filter(|r| r.path().ends_with("/tags/list"))
            .count()
    }
}

fn policy_of<'a>(status: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    status["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {status:#}"))
}

#[test]
fn registry_notifications_reach_a_signed_commit_and_policy_changes_take_effect() {
    let fx = Fleet::new(true, &[("app", &["1.0.0"])]);
    let mut daemon = fx.start("main", fx.port, "1h", &[]);
    daemon.wait_ready();
    assert_eq!(daemon.get("/healthz"), (200, "ok\n".to_owned()));
    let status = daemon.status();
    assert_eq!(policy_of(&status, "default:app")["latest"], "1.0.0");
    assert_eq!(policy_of(&status, "default:app")["current"][0], "1.0.0");
    let commits = fx.remote.commit_count("main");

    // A push: the registry notifies the daemon, which scans and commits.
    let pushed = Instant::now();
    fx.registry.push_tags("demo/app", &["1.1.0"]);
    daemon.wait_until("the commit for 1.1.0", Duration::from_secs(20), |_| {
        fx.pins("app", "1.1.0")
    });
    let took = pushed.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(fx.remote.commit_count("main"), commits + 1);
    fx.key
        .verify_commit(&fx.remote.path, "main")
        .expect("a signed commit git accepts");
    let message = fx.remote.message("main");
    assert!(
        message.contains(&format!(
            "Image-Update: default:app {h}/demo/app:1.0.0 -> {h}/demo/app:1.1.0",
            h = fx.registry.host()
        )),
        "{message}"
    );

    // Status and metrics over the socket say the same.
    daemon.wait_until(
        "the status to show the commit",
        Duration::from_secs(5),
        |d| d.status()["repositories"][0]["lastCommit"]["id"] == fx.remote.tip("main").as_str(),
    );
    let status = daemon.status();
    let app = policy_of(&status, "default:app");
    assert_eq!(app["latest"], "1.1.0");
    assert_eq!(app["current"][0], "1.1.0");
    assert_eq!(app["upToDate"], true);
    assert_eq!(app["lastCommit"], fx.remote.tip("main").as_str());
    let metrics = daemon.metrics();
    for expected in [
        "crowsnest_webhooks_total{source=\"distribution\",result=\"accepted\"}".to_owned(),
        "crowsnest_commits_total{repository=\"default\"} 1".to_owned(),
        "crowsnest_pushes_total{repository=\"default\",result=\"pushed\"} 1".to_owned(),
        "crowsnest_ready 1".to_owned(),
        format!(
            "crowsnest_policy_selected{{repository=\"default\",policy=\"default:app\",image=\"{}/demo/app\",tag=\"1.1.0\"}} 1",
            fx.registry.host()
        ),
        format!(
            "crowsnest_tags{{image=\"{}/demo/app\"}} 2",
            fx.registry.host()
        ),
        "crowsnest_registry_requests_total{".to_owned(),
    ] {
        assert!(metrics.contains(&expected), "{expected} in\n{metrics}");
    }
    // Only the first pass and notifications listed tags (no polling with a
    // 1h interval). The registry also redelivers the notifications of the
    // set-up pushes that failed while the daemon was not listening yet.
    let listings = fx.tag_listings();
    assert!((2..=3).contains(&listings), "{listings} listings");

    // A policy added in Git takes effect on the next pass; a webhook for a
    // repository no policy watched yet is such a pass. `?token=` auth.
    // This one is numerical: the tags that are not numbers are skipped,
    // and counted in a metric.
    fx.registry
        .push_tags("demo/other", &["20", "21", "latest", "21-rc1"]);
    let host = fx.registry.host();
    fx.remote.commit_files(
        "main",
        "Add the other app",
        &[
            (
                "apps/other/deployment.yaml",
                &deployment(&host, "other", "1"),
            ),
            (
                "policies/other.yaml",
                &policy(&host, "other").replace(
                    "semver:\n      range: \">=1.0.0\"",
                    "numerical:\n      order: asc",
                ),
            ),
        ],
    );
    let (code, body) = daemon.post(
        &format!("/hooks/generic?token={TOKEN}"),
        &[],
        &format!("{{\"image\": \"{host}/demo/other\", \"tag\": \"21\"}}"),
    );
    assert_eq!(code, 202, "{body}");
    daemon.wait_until("the new policy's commit", Duration::from_secs(20), |_| {
        fx.pins("other", "21")
    });
    let skipped = format!(
        "crowsnest_policy_tags_not_numeric{{repository=\"default\",policy=\"default:other\",image=\"{host}/demo/other\"}} 2"
    );
    daemon.wait_until("the not-numeric metric", Duration::from_secs(5), |d| {
        d.metrics().contains(&skipped)
    });
    let metrics = daemon.metrics();
    assert!(
        !metrics.contains(
            "crowsnest_policy_tags_not_numeric{repository=\"default\",policy=\"default:app\""
        ),
        "only numerical policies have the series:\n{metrics}"
    );
    // A wrong token is refused and triggers nothing.
    let (code, _) = daemon.post(
        "/hooks/generic",
        &[("authorization", "Bearer wrong")],
        "{\"image\": \"x/y\"}",
    );
    assert_eq!(code, 401);

    let stopping = Instant::now();
    let exit = daemon.terminate(Duration::from_secs(25));
    assert_eq!(exit.code(), Some(0), "{}", daemon.log_text());
    assert!(stopping.elapsed() < Duration::from_secs(5));
    fx.remote.fsck();
}

#[test]
fn a_restart_plans_from_the_tag_cache_and_never_downgrades() {
    let fx = Fleet::new(false, &[("app", &["1.0.0", "1.1.0"])]);
    let pushed = fx.registry.push_tags("demo/app", &["1.2.0"]);
    let port = fx.port;
    let mut first = fx.start("main", port, "1h", &[]);
    first.wait_ready();
    first.wait_until("the first commit", Duration::from_secs(20), |_| {
        fx.pins("app", "1.2.0")
    });
    assert_eq!(first.terminate(Duration::from_secs(25)).code(), Some(0));
    let listed = fx.tag_listings();
    assert_eq!(listed, 1);

    // The newest tag disappears while the daemon is down.
    let response = reqwest::blocking::Client::new()
        .delete(format!(
            "{}/v2/demo/app/manifests/{}",
            fx.registry.url(),
            pushed[0].digest
        ))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);

    // The restart plans from the cache: ready, no listing, nothing to do.
    let commits = fx.remote.commit_count("main");
    let mut second = fx.start("main", port, "1h", &[]);
    second.wait_ready();
    let status = second.status();
    assert_eq!(policy_of(&status, "default:app")["latest"], "1.2.0");
    assert!(policy_of(&status, "default:app")["lastScan"].is_string());
    assert_eq!(fx.tag_listings(), listed, "no rescan at start");

    // A scan now sees only 1.0.0 and 1.1.0: the pick is held, never written.
    let (code, body) = second.post(
        "/hooks/generic",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        &format!("{{\"image\": \"{}/demo/app\"}}", fx.registry.host()),
    );
    assert_eq!(code, 202, "{body}");
    second.wait_until("the rescan", Duration::from_secs(20), |d| {
        policy_of(&d.status(), "default:app")["latest"] == "1.1.0"
    });
    assert_eq!(fx.tag_listings(), listed + 1);
    assert!(fx.pins("app", "1.2.0"), "never downgraded");
    assert_eq!(fx.remote.commit_count("main"), commits);
    assert_eq!(second.terminate(Duration::from_secs(25)).code(), Some(0));
}

#[test]
fn two_shards_update_disjoint_policies_without_lost_updates() {
    let apps = ["a1", "a2", "a3", "a4", "a5", "a6"];
    let specs: Vec<(&str, &[&str])> = apps.iter().map(|a| (*a, &["1.0.0", "1.0.1"][..])).collect();
    let fx = Fleet::new(false, &specs);
    // Problems beside the apps: a malformed marker naming each app (held
    // back on that app's shard only) and a policy file that is not YAML
    // (about no policy: reported on shard 0 only).
    fx.remote.change("main", "problems", |dir| {
        for app in apps {
            support::git::write(
                dir,
                &format!("apps/{app}/broken.yaml"),
                format!("image: x:1.0.0 # $imagepolicy: default:{app}\n").as_bytes(),
            );
        }
        support::git::write(dir, "policies/notes.yaml", b"not: [yaml\n");
    });
    let other_port = Daemon::free_port();
    let mut shards = [
        fx.start("s0", fx.port, "1s", &["--shard", "0/2"]),
        fx.start("s1", other_port, "1s", &["--shard", "1/2"]),
    ];
    for daemon in &mut shards {
        daemon.wait_ready();
    }
    shards[0].wait_until("every app updated", Duration::from_secs(60), |_| {
        apps.iter().all(|a| fx.pins(a, "1.0.1"))
    });
    // Each shard watches exactly its policies; together, all of them.
    let mut seen = Vec::new();
    for (index, daemon) in shards.iter().enumerate() {
        let shard = Shard {
            index: index as u32,
            count: 2,
        };
        let status = daemon.status();
        assert_eq!(status["shard"], shard.to_string());
        for p in status["policies"].as_array().unwrap() {
            let name = p["id"].as_str().unwrap().trim_start_matches("default:");
            assert!(
                shard.owns(&PolicyId::new("default", name)),
                "{name} in shard {shard}"
            );
            seen.push(name.to_owned());
        }
    }
    seen.sort();
    assert_eq!(seen, apps);
    // Each shard reports the problems of its own policies (and shard 0
    // the one about no policy); the gauge summed over shards counts each
    // problem once.
    let mut reported = Vec::new();
    let mut counted = 0;
    for (index, daemon) in shards.iter().enumerate() {
        let shard = Shard {
            index: index as u32,
            count: 2,
        };
        let status = daemon.status();
        for finding in status["repositories"][0]["findings"].as_array().unwrap() {
            let finding = finding.as_str().unwrap();
            let file = finding.split(':').next().unwrap();
            match file
                .strip_prefix("apps/")
                .and_then(|f| f.strip_suffix("/broken.yaml"))
            {
                Some(app) => assert!(
                    shard.owns(&PolicyId::new("default", app)),
                    "{finding} on shard {shard}"
                ),
                None => assert_eq!((file, index), ("policies/notes.yaml", 0), "{finding}"),
            }
            reported.push(file.to_owned());
        }
        counted += daemon
            .metrics()
            .lines()
            .filter(|l| l.starts_with("crowsnest_findings{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>();
    }
    reported.sort();
    let mut expected: Vec<String> = apps
        .iter()
        .map(|a| format!("apps/{a}/broken.yaml"))
        .collect();
    expected.push("policies/notes.yaml".into());
    assert_eq!(reported, expected);
    assert_eq!(counted, 7, "each problem counted on one shard");
    // Every bot commit holds the updates of one shard only.
    let bot: Vec<_> = fx
        .remote
        .log("main")
        .into_iter()
        .filter(|c| c.author_email == "bot@example.com")
        .collect();
    assert!(!bot.is_empty() && bot.len() <= apps.len(), "{bot:#?}");
    for commit in &bot {
        let owners: std::collections::BTreeSet<u32> = commit
            .message
            .lines()
            .filter_map(|l| l.strip_prefix("Image-Update: default:"))
            .map(|rest| {
                let name = rest.split_whitespace().next().unwrap();
                (0..2)
                    .find(|&i| Shard { index: i, count: 2 }.owns(&PolicyId::new("default", name)))
                    .unwrap()
            })
            .collect();
        assert_eq!(owners.len(), 1, "{}", commit.message);
    }
    for daemon in &mut shards {
        assert_eq!(daemon.terminate(Duration::from_secs(25)).code(), Some(0));
    }
    fx.remote.fsck();
}

#[test]
fn the_status_page_renders_in_headless_chromium() {
    let chromium = support::process::require("chromium", "chromium");
    let fx = Fleet::new(
        false,
        &[
            ("api", &["1.0.0", "1.4.2"]),
            ("web", &["1.0.0"]),
            ("worker", &["1.0.0", "2.0.0-rc.1", "1.1.0"]),
        ],
    );
    let mut daemon = fx.start("main", fx.port, "1h", &[]);
    daemon.wait_ready();
    daemon.wait_until("the commit", Duration::from_secs(20), |d| {
        d.status()["repositories"][0]["lastCommit"].is_object()
    });
    let (code, html) = daemon.get("/");
    assert_eq!(code, 200);
    for id in ["default:api", "default:web", "default:worker"] {
        assert!(html.contains(id), "{id} in\n{html}");
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let shot = out_dir.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(daemon.url("/"))
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // A blank page compresses to a few kilobytes; a rendered table does not.
    assert!(png.len() > 20_000, "{} bytes", png.len());
    assert_eq!(daemon.terminate(Duration::from_secs(25)).code(), Some(0));
}

/// Regression guard for PRODUCT.md §4 "secrets never appear in logs": the
/// daemon runs with every kind of secret configured (Git HTTP password,
/// registry password, signing-key passphrase, webhook token, a Docker
/// config credential), at trace level for every crate, in JSON; webhooks arrive with the
/// right token, a wrong one, a query token and a GitHub signature. No log
/// line may contain any of them, and every line must be a JSON object.
#[test]
fn no_secret_appears_in_any_log_line() {
    use base64::Engine as _;
    use support::git_http::GitHttp;
    use support::signing::GpgSpec;

    let git_password = "git-pa55-SECRET-1";
    let registry_password = "reg-pa55-SECRET-2";
    let passphrase = "pgp-pa55-SECRET-3";
    let docker_password = "docker-pa55-SECRET-4";
    let wrong_token = "wrong-t0ken-SECRET-5";
    let registry = RegistryServer::start(Auth::htpasswd("puller", registry_password));
    registry.push_tags("demo/app", &["1.0.0", "1.3.0"]);
    let host = registry.host();
    let remote = Remote::new(&[
        (
            "apps/app/deployment.yaml",
            &deployment(&host, "app", "1.0.0"),
        ),
        ("policies/app.yaml", &policy(&host, "app")),
    ]);
    let http = GitHttp::start(remote.dir(), "bot", git_password);
    let key = GpgKey::new(GpgSpec {
        algorithm: "ed25519",
        passphrase: Some(passphrase),
        signing_subkey: false,
    });
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let registry_password_file = write("registry-password", &format!("{registry_password}\n"));
    write("token", &format!("{TOKEN}\n"));
    let docker_auth =
        base64::engine::general_purpose::STANDARD.encode(format!("someone:{docker_password}"));
    let docker = write(
        "docker.json",
        &format!("{{\"auths\": {{\"other.example.com\": {{\"auth\": \"{docker_auth}\"}}}}}}"),
    );
    let port = Daemon::free_port();
    let config = write(
        "crowsnest.yaml",
        &format!(
            "git:\n  url: {url}\n  auth: {{username: bot, passwordFile: {gitpw}}}\n  author: {{ name: Crowsnest Bot, email: bot@example.com }}\n  signing:\n    format: openpgp\n    keyFile: {key}\n    passphraseFile: {pass}\nregistries:\n  dockerConfig: {docker}\n  hosts:\n    - host: {host}\n      insecure: true\n      username: puller\n      passwordFile: {regpw}\nscan:\n  interval: 1h\nstateDir: state\nhttp:\n  listen: 127.0.0.1:{port}\n  webhookTokenFile: token\n",
            url = http.url("fleet.git"),
            gitpw = http.password_file.display(),
            key = key.key_file.display(),
            pass = key.passphrase_file.as_ref().unwrap().display(),
            docker = docker.display(),
            regpw = registry_password_file.display(),
        ),
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_crowsnest")),
        &config,
        &[],
        &[("CROWSNEST_LOG", "trace"), ("CROWSNEST_LOG_FORMAT", "json")],
        &log,
        port,
    );
    daemon.wait_ready();
    daemon.wait_until("the commit", Duration::from_secs(30), |_| {
        remote.file("main", "apps/app/deployment.yaml").unwrap()
            == deployment(&host, "app", "1.3.0").into_bytes()
    });
    key.verify_commit(&remote.path, "main").unwrap();
    let generic = format!("{{\"image\": \"{host}/demo/app\"}}");
    let github = r#"{"action":"published","package":{"name":"app","namespace":"demo","package_type":"container"}}"#;
    let signature = crowsnest::webhooks::github_signature(TOKEN, github.as_bytes());
    let bearer = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {wrong_token}");
    for (path, headers, body, expected) in [
        (
            "/hooks/generic".to_owned(),
            vec![("authorization", bearer.as_str())],
            generic.as_str(),
            202,
        ),
        (
            "/hooks/generic".to_owned(),
            vec![("authorization", wrong.as_str())],
            generic.as_str(),
            401,
        ),
        (
            format!("/hooks/generic?token={wrong_token}"),
            vec![],
            generic.as_str(),
            401,
        ),
        (
            format!("/hooks/generic?token={TOKEN}"),
            vec![],
            generic.as_str(),
            202,
        ),
        (
            "/hooks/github".to_owned(),
            vec![("x-hub-signature-256", signature.as_str())],
            github,
            202,
        ),
    ] {
        assert_eq!(daemon.post(&path, &headers, body).0, expected, "{path}");
    }
    daemon.wait_until("the webhook scans", Duration::from_secs(10), |d| {
        d.metrics().contains("crowsnest_scans_total{result=\"ok\"}")
    });
    assert_eq!(daemon.terminate(Duration::from_secs(25)).code(), Some(0));

    let text = std::fs::read_to_string(&log).unwrap();
    let basic = |user: &str, password: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    };
    let secrets = [
        git_password.to_owned(),
        registry_password.to_owned(),
        passphrase.to_owned(),
        docker_password.to_owned(),
        TOKEN.to_owned(),
        wrong_token.to_owned(),
        docker_auth.clone(),
        basic("bot", git_password),
        basic("puller", registry_password),
        "PRIVATE KEY".to_owned(),
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 20, "a debug log has lines:\n{text}");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(value.is_object(), "{line}");
        for secret in &secrets {
            assert!(
                !line.contains(secret.as_str()),
                "a secret in the log: {line}"
            );
        }
    }
    // Spans and events carry policy, image and commit fields.
    for field in ["\"policy\":\"default:app\"", "\"image\":", "\"commit\":"] {
        assert!(text.contains(field), "{field} in the log:\n{text}");
    }
}

#[test]
fn pushes_that_arrive_together_make_one_commit() {
    let fx = Fleet::new(false, &[("api", &["1.0.0"]), ("web", &["1.0.0"])]);
    let mut daemon = fx.start("main", fx.port, "1h", &[]);
    daemon.wait_ready();
    let commits = fx.remote.commit_count("main");
    fx.registry.push_tags("demo/api", &["1.1.0"]);
    fx.registry.push_tags("demo/web", &["1.2.0"]);
    // One notification envelope naming both pushes, as a registry batches them.
    let host = fx.registry.host();
    let envelope = format!(
        r#"{{"events":[
            {{"action":"push","target":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"demo/api","tag":"1.1.0"}},"request":{{"host":"{host}"}}}},
            {{"action":"push","target":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"demo/web","tag":"1.2.0"}},"request":{{"host":"{host}"}}}}
        ]}}"#
    );
    let bearer = format!("Bearer {TOKEN}");
    let (code, body) = daemon.post(
        "/hooks/distribution",
        &[("authorization", bearer.as_str())],
        &envelope,
    );
    assert_eq!(code, 202, "{body}");
    daemon.wait_until("both updates", Duration::from_secs(20), |_| {
        fx.pins("api", "1.1.0") && fx.pins("web", "1.2.0")
    });
    assert_eq!(fx.remote.commit_count("main"), commits + 1, "one commit");
    let message = fx.remote.message("main");
    assert_eq!(message.matches("Image-Update: ").count(), 2, "{message}");
    assert_eq!(daemon.terminate(Duration::from_secs(25)).code(), Some(0));
}

/// SIGTERM while a push is in flight (a pre-receive hook on the Git
/// server makes it slow): within the deadline the pass finishes and the
/// commit lands; past a short deadline the daemon exits anyway and the
/// remote holds either nothing new or the whole commit, never a part.
#[test]
fn sigterm_during_a_push_finishes_or_abandons_the_pass_cleanly() {
    use support::git_http::GitHttp;

    let fx = Fleet::new(false, &[("app", &["1.0.0", "1.1.0"])]);
    let http = GitHttp::start(fx.remote.dir(), "bot", "pw");
    let marker = fx.dir.path().join("hook-started");
    let hook = |seconds: u32| {
        fx.remote.set_hook(
            "pre-receive",
            &format!(
                "#!/bin/sh\ncat >/dev/null\ntouch {}\nsleep {seconds}\nexit 0\n",
                marker.display()
            ),
        );
        let _ = std::fs::remove_file(&marker);
    };
    let start = |name: &str, args: &[&str]| {
        let port = Daemon::free_port();
        let path = fx.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, format!(
            "git:\n  url: {url}\n  auth: {{username: bot, passwordFile: {pw}}}\n  author: {{ name: Crowsnest Bot, email: bot@example.com }}\nregistries:\n  hosts:\n    - host: {host}\n      insecure: true\nscan:\n  interval: 1h\nstateDir: state-{name}\nhttp:\n  listen: 127.0.0.1:{port}\n",
            url = http.url("fleet.git"),
            pw = http.password_file.display(),
            host = fx.registry.host(),
        )).unwrap();
        Daemon::start(
            Path::new(env!("CARGO_BIN_EXE_crowsnest")),
            &path,
            args,
            &[],
            &fx.dir.path().join(format!("{name}.log")),
            port,
        )
    };
    let wait_for_marker = |daemon: &mut Daemon| {
        daemon.wait_until(
            "the push to reach the hook",
            Duration::from_secs(30),
            |_| marker.exists(),
        );
    };

    // Finish: the pass completes within the default 20 s deadline.
    hook(2);
    let mut daemon = start("finish", &[]);
    wait_for_marker(&mut daemon);
    let asked = Instant::now();
    assert_eq!(daemon.terminate(Duration::from_secs(25)).code(), Some(0));
    assert!(
        asked.elapsed() >= Duration::from_secs(1),
        "it waited for the push"
    );
    assert!(
        fx.pins("app", "1.1.0"),
        "the pass finished: {}",
        daemon.log_text()
    );
    assert!(
        daemon
            .log_text()
            .contains("letting the running pass finish"),
        "{}",
        daemon.log_text()
    );

    // Abandon: a 1 s deadline against a 5 s hook.
    fx.registry.push_tags("demo/app", &["1.2.0"]);
    let before = fx.remote.tip("main");
    hook(5);
    let mut daemon = start("abandon", &["--shutdown-timeout", "1s"]);
    wait_for_marker(&mut daemon);
    let asked = Instant::now();
    assert_eq!(daemon.terminate(Duration::from_secs(10)).code(), Some(0));
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        daemon
            .log_text()
            .contains("abandoned the pass at the deadline")
    );
    // Once the server is done with the push, the branch is either where
    // it was or at the whole commit.
    std::thread::sleep(Duration::from_secs(6));
    fx.remote.fsck();
    let tip = fx.remote.tip("main");
    assert!(
        tip == before || fx.pins("app", "1.2.0"),
        "half a pass on the remote"
    );
}

#[test]
fn a_failing_registry_backs_off_and_shows_the_error() {
    let mut fx = Fleet::new(false, &[("app", &["1.0.0"])]);
    let mut daemon = fx.start("main", fx.port, "1s", &[]);
    daemon.wait_ready();
    fx.registry.stop();
    let stopped = Instant::now();
    daemon.wait_until("the error in the status", Duration::from_secs(10), |d| {
        policy_of(&d.status(), "default:app")["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable"))
    });
    std::thread::sleep(Duration::from_millis(7500).saturating_sub(stopped.elapsed()));
    let metrics = daemon.metrics();
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("crowsnest_scans_total{result=\"error\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no scan errors in\n{metrics}"));
    // Every 1 s without backoff would be 7; 1 s, 2 s, 4 s apart is 3 or 4.
    assert!((2..=4).contains(&errors), "{errors} failed scans in 7.5 s");
    assert!(
        metrics.contains("crowsnest_errors_total{kind=\"unreachable\"}"),
        "{metrics}"
    );
    let (_, html) = daemon.get("/");
    assert!(html.contains("unreachable"), "{html}");
    assert_eq!(daemon.terminate(Duration::from_secs(25)).code(), Some(0));
}
