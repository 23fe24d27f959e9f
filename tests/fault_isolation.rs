//! Issue 15: a broken policy, marker or file holds back only what it
//! touches. A repository with one good policy and every kind of problem
//! next to it (an invalid range, a policy file that is not YAML, a marker
//! naming a missing policy, a manifest that is not YAML, a how-to comment
//! quoting a marker, a trailing malformed marker, a trailing comment that
//! mentions `$imagepolicy` without being a marker) is updated for the good
//! policy by `crowsnest once` and `crowsnest run`, with every other byte
//! left alone and each problem reported once per pass with its place.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use support::daemon::Daemon;
use support::fleet::{DEPLOYMENT_PATH, Fleet, assert_exit, text};
use support::registry::{Auth, RegistryServer};

const BIN: &str = env!("CARGO_BIN_EXE_crowsnest");

/// The deployment with a how-to comment on its first line and a sidecar
/// whose trailing marker is malformed (the JSON is not closed).
fn deployment(host: &str, tag: &str) -> String {
    format!(
        "# How to pin an image: write `image: <repo>:<tag> # {{\"$imagepolicy\": \"<namespace>:<name>\"}}`\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n  template:\n    spec:\n      containers:\n        - name: podinfo\n          image: {host}/demo/podinfo:{tag} # {{\"$imagepolicy\": \"default:podinfo\"}}\n        - name: sidecar\n          image: {host}/demo/podinfo:6.0.0 # {{\"$imagepolicy\": \"default:podinfo\"\n"
    )
}

/// Every problem of the issue, as (path, content), besides the deployment.
fn problems(host: &str) -> Vec<(String, String)> {
    let marker = |policy: &str| format!("# {{\"$imagepolicy\": \"default:{policy}\"}}");
    vec![
        (
            "policies/broken.yaml".into(),
            support::fleet::policy(host)
                .replace("name: podinfo", "name: broken")
                .replace(">=6.0.0 <7.0.0", ">=1.0.0 <"),
        ),
        ("policies/notes.yaml".into(), "this: is: not: yaml\n".into()),
        (
            "apps/broken/deployment.yaml".into(),
            format!("image: {host}/demo/podinfo:6.0.0 {}\n", marker("broken")),
        ),
        (
            "apps/missing/deployment.yaml".into(),
            format!("image: {host}/demo/podinfo:6.0.0 {}\n", marker("missing")),
        ),
        (
            "apps/not-yaml/deployment.yaml".into(),
            format!(
                "image: [unclosed {host}/demo/podinfo:6.0.0 {}\n",
                marker("podinfo")
            ),
        ),
        (
            "apps/plain/deployment.yaml".into(),
            format!("image: {host}/demo/podinfo:6.0.0 # $imagepolicy: default:podinfo\n"),
        ),
    ]
}

/// The start of each finding line, in `file:line:col` order.
const FINDINGS: [&str; 7] = [
    "apps/broken/deployment.yaml:1:8: marker names policy default:broken, which is disabled by the problem at policies/broken.yaml:9:24",
    "apps/missing/deployment.yaml:1:8: marker names policy default:missing, which no policy file declares (it may be in policies/notes.yaml, which cannot be read)",
    "apps/not-yaml/deployment.yaml:1:8: not valid YAML: unclosed bracket",
    "apps/plain/deployment.yaml:1:", // column depends on the host's length
    "apps/podinfo/deployment.yaml:13:53: marker comment is not a JSON object",
    "policies/broken.yaml:9:24: invalid semver range \">=1.0.0 <\"",
    "policies/notes.yaml:1:9: mapping values are not allowed",
];

/// A fleet whose remote holds the good policy and every problem.
fn broken_fleet() -> Fleet {
    let fx = Fleet::new(RegistryServer::start(Auth::Anonymous), None);
    let host = fx.image_host.clone();
    fx.remote.change("main", "every kind of problem", |dir| {
        support::git::write(dir, DEPLOYMENT_PATH, deployment(&host, "6.0.0").as_bytes());
        for (path, content) in problems(&host) {
            support::git::write(dir, &path, content.as_bytes());
        }
    });
    fx
}

/// Each finding appears exactly `times` times among `lines`.
fn assert_reported(lines: &str, times: usize) {
    for finding in FINDINGS {
        let count = lines.lines().filter(|l| l.contains(finding)).count();
        assert_eq!(count, times, "{finding:?} in\n{lines}");
    }
}

/// Every file but the deployment is byte for byte what it was.
fn assert_only_the_deployment_changed(fx: &Fleet, before: &BTreeMap<String, (String, Vec<u8>)>) {
    let mut after = fx.remote.tree("main");
    let mut before = before.clone();
    after.remove(DEPLOYMENT_PATH);
    before.remove(DEPLOYMENT_PATH);
    assert_eq!(after, before);
}

#[test]
fn once_commits_the_good_policy_exits_1_and_reports_each_problem_once() {
    let fx = broken_fleet();
    let before = fx.remote.tree("main");
    let output = support::fleet::crowsnest(
        BIN,
        fx.dir.path(),
        &["once", "--config", fx.config().to_str().unwrap()],
    );
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert_reported(&stderr, 1);
    assert!(
        text(&output.stdout).starts_with("committed "),
        "{}",
        text(&output.stdout)
    );
    // Exactly the good scalar moved: the how-to comment, the sidecar with
    // its malformed marker and every other file are untouched.
    assert_eq!(
        String::from_utf8(fx.remote.file("main", DEPLOYMENT_PATH).unwrap()).unwrap(),
        deployment(&fx.image_host, "6.1.0")
    );
    assert_only_the_deployment_changed(&fx, &before);
    assert_eq!(
        fx.assert_trail(),
        [fx.trailer("6.0.0", "6.1.0")],
        "one signed commit with the good policy's update"
    );
    // `check` stays strict on the same files.
    let checkout = tempfile::tempdir().unwrap();
    for (path, (_, bytes)) in fx.remote.tree("main") {
        support::git::write(checkout.path(), &path, &bytes);
    }
    let check = support::fleet::crowsnest(
        BIN,
        fx.dir.path(),
        &["check", checkout.path().to_str().unwrap()],
    );
    assert_exit(&check, 1);
    assert_reported(&text(&check.stdout), 1);
}

#[test]
fn run_updates_the_good_policy_and_reports_every_problem_on_every_pass() {
    let fx = broken_fleet();
    let before = fx.remote.tree("main");
    let port = Daemon::free_port();
    let config = fx.config();
    let mut text_config = std::fs::read_to_string(&config).unwrap();
    text_config.push_str(&format!(
        "scan:\n  interval: 1s\nhttp:\n  listen: 127.0.0.1:{port}\n"
    ));
    std::fs::write(&config, text_config).unwrap();
    let mut daemon = Daemon::start(
        Path::new(BIN),
        &config,
        &[],
        &[],
        &fx.dir.path().join("run.log"),
        port,
    );
    daemon.wait_until(
        "the good policy is committed",
        Duration::from_secs(60),
        |_| fx.deployed() == "6.1.0",
    );
    fx.registry.push_tags("demo/podinfo", &["6.2.0"]);
    daemon.wait_until(
        "a second commit and three more passes",
        Duration::from_secs(60),
        |d| {
            fx.deployed() == "6.2.0"
                && d.metrics()
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix(
                            "crowsnest_passes_total{repository=\"default\",result=\"failed\"} ",
                        )
                    })
                    .and_then(|n| n.parse::<f64>().ok())
                    .is_some_and(|n| n >= 4.0)
        },
    );
    let status = daemon.status();
    let findings: Vec<&str> = status["repositories"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(findings.len(), FINDINGS.len(), "{findings:#?}");
    for (finding, want) in findings.iter().zip(FINDINGS) {
        assert!(
            finding.starts_with(want),
            "{finding:?} should start with {want:?}"
        );
    }
    let policy = |id: &str| {
        status["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {status:#}"))
            .clone()
    };
    assert_eq!(policy("default:podinfo")["latest"], "6.2.0");
    // Its other setters moved, but three are held back: the file that is
    // not YAML and the two malformed markers name it, so it is not shown
    // up to date.
    let podinfo = policy("default:podinfo");
    let held: Vec<&str> = podinfo["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(held.len(), 3, "{podinfo:#}");
    assert_eq!(podinfo["upToDate"], false, "{podinfo:#}");
    for (finding, want) in held.iter().zip([FINDINGS[2], FINDINGS[3], FINDINGS[4]]) {
        assert!(
            finding.starts_with(want),
            "{finding:?} should start with {want:?}"
        );
    }
    assert!(
        held[1].contains("marker comment is not a JSON object"),
        "{held:?}"
    );
    let broken = policy("default:broken");
    assert_eq!(
        broken["findings"].as_array().unwrap().len(),
        2,
        "{broken:#}"
    );
    assert!(
        broken["findings"][1]
            .as_str()
            .unwrap()
            .starts_with(FINDINGS[5])
    );
    assert!(
        policy("default:missing")["findings"][0]
            .as_str()
            .unwrap()
            .starts_with(FINDINGS[1])
    );
    let metrics = daemon.metrics();
    for (kind, count) in [
        ("policy", 2),
        ("disabled_policy", 1),
        ("unknown_policy", 1),
        ("manifest", 1),
        ("marker", 2),
        ("target", 0),
        ("automation", 0),
    ] {
        let line = format!("crowsnest_findings{{repository=\"default\",kind=\"{kind}\"}} {count}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    // The page lists the findings themselves, escaped, and marks both the
    // broken policy and the good one with held-back setters.
    let (_, page) = daemon.get("/");
    for text in [
        "<li><code>policies/broken.yaml:9:24: invalid semver range &quot;&gt;=1.0.0 &lt;&quot;",
        "<code>default:broken</code> <span class=\"badge bad\">held back</span>",
        "<code>default:podinfo</code> <span class=\"badge bad\">held back</span>",
    ] {
        assert!(page.contains(text), "{text} in\n{page}");
    }
    assert!(
        !page.contains("<span class=\"badge ok\">up to date</span>"),
        "{page}"
    );
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    // Once per pass: as many times as the passes that ran, no more.
    let log = daemon.log_text();
    let passes = log
        .lines()
        .filter(|l| l.contains("crowsnest::reconcile"))
        .filter(|l| l.contains("nothing to change") || l.contains(" pushed "))
        .count();
    assert!(passes >= 4, "{log}");
    assert_reported(&log, passes);
    assert_only_the_deployment_changed(&fx, &before);
    assert_eq!(
        fx.assert_trail(),
        [fx.trailer("6.0.0", "6.1.0"), fx.trailer("6.1.0", "6.2.0")]
    );
}
