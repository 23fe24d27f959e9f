//! The core slice end to end: `crowsnest once` against a real registry
//! (Debian's docker-registry) and a bare Git remote over file://, checked
//! with plain git and `git verify-commit`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::git::Remote;
use support::registry::{Auth, RegistryServer};
use support::signing::GpgKey;

const DEPLOYMENT: &str = r#"# podinfo, as the platform team wrote it.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo

spec:
  replicas: 2   # two is plenty
  template:
    spec:
      containers:
        - name: podinfo
          image: REGISTRY/demo/podinfo:6.0.0 # {"$imagepolicy": "default:podinfo"}

        # The sidecar is pinned by hand.
        - name: sidecar
          image: 'busybox:1.36'
"#;

const VALUES: &str = r#"image:
  repository: REGISTRY/demo/redis
  tag: "7.0.0"  # {"$imagepolicy": "default:redis:tag"}
  pullPolicy: IfNotPresent
"#;

const POLICIES: &str = r#"apiVersion: crowsnest/v1
kind: ImagePolicy
metadata:
  name: podinfo
spec:
  image: REGISTRY/demo/podinfo
  policy:
    semver:
      range: ">=6.0.0 <7.0.0"
---
apiVersion: crowsnest/v1
kind: ImagePolicy
metadata:
  name: redis
spec:
  image: REGISTRY/demo/redis
  policy:
    semver:
      range: "~7.0"
"#;

/// A registry with tags, a seeded remote, a signing key and a config.
struct Fixture {
    registry: RegistryServer,
    remote: Remote,
    key: GpgKey,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(auth: Auth) -> Fixture {
        let registry = RegistryServer::start(auth);
        registry.push_tags("demo/podinfo", &["6.0.0", "6.0.1", "6.1.0", "7.0.0"]);
        registry.push_tags("demo/redis", &["7.0.0", "7.0.4", "7.2.0"]);
        let host = registry.host();
        let remote = Remote::new(&[
            (
                "apps/podinfo/deployment.yaml",
                &DEPLOYMENT.replace("REGISTRY", &host),
            ),
            ("apps/redis/values.yaml", &VALUES.replace("REGISTRY", &host)),
            ("policies/images.yaml", &POLICIES.replace("REGISTRY", &host)),
        ]);
        Fixture {
            registry,
            remote,
            key: GpgKey::ed25519(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Writes `crowsnest.yaml` with extra registry host lines and returns its path.
    fn config(&self, host_extra: &str) -> PathBuf {
        let path = self.dir.path().join("crowsnest.yaml");
        let text = format!(
            "git:\n  url: {url}\n  author: {{ name: Crowsnest Bot, email: bot@example.com }}\n  signing:\n    format: openpgp\n    keyFile: {key}\nregistries:\n  hosts:\n    - host: {host}\n      insecure: true\n{host_extra}stateDir: state\n",
            url = self.remote.url(),
            key = self.key.key_file.display(),
            host = self.registry.host(),
        );
        std::fs::write(&path, text).expect("write config");
        path
    }
}

fn crowsnest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crowsnest"))
        .args(args)
        .env("CROWSNEST_LOG", "warn")
        .output()
        .expect("run crowsnest")
}

fn once(config: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["once", "--config", config.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    crowsnest(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[test]
fn once_makes_one_signed_commit_that_changes_only_the_marked_scalars() {
    let fx = Fixture::new(Auth::Anonymous);
    let config = fx.config("");
    let host = fx.registry.host();
    let before = fx.remote.commit_count("main");

    let output = once(&config, &[]);
    assert_exit(&output, 0);
    assert_eq!(
        fx.remote.commit_count("main"),
        before + 1,
        "exactly one commit"
    );

    // Only the two marked scalars changed, and nothing else of any file.
    let deployment = text(
        &fx.remote
            .file("main", "apps/podinfo/deployment.yaml")
            .unwrap(),
    );
    assert_eq!(
        deployment,
        DEPLOYMENT
            .replace("REGISTRY", &host)
            .replace("podinfo:6.0.0", "podinfo:6.1.0")
    );
    let values = text(&fx.remote.file("main", "apps/redis/values.yaml").unwrap());
    assert_eq!(
        values,
        VALUES
            .replace("REGISTRY", &host)
            .replace("\"7.0.0\"", "\"7.0.4\"")
    );
    let mut files = fx.remote.changed_files("main");
    files.sort();
    assert_eq!(
        files,
        ["apps/podinfo/deployment.yaml", "apps/redis/values.yaml"]
    );

    // The trailers, readable with plain git.
    let message = fx.remote.message("main");
    assert!(
        message.contains(&format!(
            "Image-Update: default:podinfo {host}/demo/podinfo:6.0.0 -> {host}/demo/podinfo:6.1.0"
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "Image-Update: default:redis {host}/demo/redis:7.0.0 -> {host}/demo/redis:7.0.4"
        )),
        "{message}"
    );
    let trailers = support::process::run(fx.remote.git().args([
        "log",
        "-1",
        "--format=%(trailers:key=Image-Update,valueonly)",
        "main",
    ]));
    assert_eq!(trailers.trim().lines().count(), 2, "{trailers}");

    // Signed, and git accepts the signature with only the public key.
    fx.key
        .verify_commit(&fx.remote.path, "main")
        .expect("git verify-commit accepts crowsnest's signature");
    let log = fx.remote.log("main");
    assert_eq!(log[0].author_name, "Crowsnest Bot");

    // Nothing new: no commit.
    assert_exit(&once(&config, &[]), 0);
    assert_eq!(
        fx.remote.commit_count("main"),
        before + 1,
        "a pass with nothing to change commits nothing"
    );

    // A newer tag: a new commit with the right trailer.
    fx.registry.push_tags("demo/podinfo", &["6.2.0"]);
    assert_exit(&once(&config, &[]), 0);
    assert_eq!(fx.remote.commit_count("main"), before + 2);
    let message = fx.remote.message("main");
    assert!(
        message.contains(&format!(
            "Image-Update: default:podinfo {host}/demo/podinfo:6.1.0 -> {host}/demo/podinfo:6.2.0"
        )),
        "{message}"
    );
    assert!(!message.contains("default:redis"), "{message}");
    assert_eq!(
        fx.remote.changed_files("main"),
        ["apps/podinfo/deployment.yaml"]
    );
    fx.key
        .verify_commit(&fx.remote.path, "main")
        .expect("signed");
}

#[test]
fn dry_run_prints_the_diff_and_trailers_and_commits_nothing() {
    let fx = Fixture::new(Auth::Anonymous);
    let config = fx.config("");
    let host = fx.registry.host();
    let before = fx.remote.tip("main");

    let output = once(&config, &["--dry-run"]);
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("--- a/apps/podinfo/deployment.yaml\n+++ b/apps/podinfo/deployment.yaml"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "-          image: {host}/demo/podinfo:6.0.0 # {{\"$imagepolicy\": \"default:podinfo\"}}\n+          image: {host}/demo/podinfo:6.1.0 # {{\"$imagepolicy\": \"default:podinfo\"}}"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("-  tag: \"7.0.0\"  #"), "{stdout}");
    assert!(stdout.contains("+  tag: \"7.0.4\"  #"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "Image-Update: default:podinfo {host}/demo/podinfo:6.0.0 -> {host}/demo/podinfo:6.1.0"
        )),
        "{stdout}"
    );
    assert_eq!(fx.remote.tip("main"), before, "dry run pushed nothing");
}

#[test]
fn htpasswd_registry_with_the_right_password_updates() {
    let fx = Fixture::new(Auth::htpasswd("ci", "s3cret-pass"));
    let password = fx.dir.path().join("registry-password");
    std::fs::write(&password, "s3cret-pass\n").unwrap();
    let config = fx.config(&format!(
        "      username: ci\n      passwordFile: {}\n",
        password.display()
    ));
    let output = once(&config, &[]);
    assert_exit(&output, 0);
    assert!(
        fx.remote
            .message("main")
            .contains("Image-Update: default:podinfo")
    );
}

#[test]
fn wrong_registry_password_fails_clearly_and_pushes_nothing() {
    let fx = Fixture::new(Auth::htpasswd("ci", "s3cret-pass"));
    let password = fx.dir.path().join("registry-password");
    std::fs::write(&password, "not-the-password").unwrap();
    let config = fx.config(&format!(
        "      username: ci\n      passwordFile: {}\n",
        password.display()
    ));
    let before = fx.remote.tip("main");
    let output = once(&config, &[]);
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&fx.registry.host()),
        "names the registry: {stderr}"
    );
    assert!(
        stderr.contains("demo/podinfo"),
        "names the repository: {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("auth") || stderr.contains("401"),
        "says authentication failed: {stderr}"
    );
    assert!(
        !stderr.contains("not-the-password"),
        "never prints the secret: {stderr}"
    );
    assert_eq!(fx.remote.tip("main"), before, "nothing pushed");
}

#[test]
fn unreachable_registry_fails_clearly_and_pushes_nothing() {
    let mut fx = Fixture::new(Auth::Anonymous);
    let config = fx.config("");
    fx.registry.stop();
    let before = fx.remote.tip("main");
    let output = once(&config, &[]);
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&fx.registry.host()),
        "names the registry: {stderr}"
    );
    assert_eq!(fx.remote.tip("main"), before, "nothing pushed");
}

#[test]
fn marker_naming_an_unknown_policy_is_reported_and_the_rest_is_pushed() {
    let fx = Fixture::new(Auth::Anonymous);
    let config = fx.config("");
    fx.remote.commit_files(
        "main",
        "a typo in a marker",
        &[(
            "apps/other.yaml",
            "image: nginx:1.0 # {\"$imagepolicy\": \"default:podnifo\"}\n",
        )],
    );
    let before = fx.remote.tip("main");
    let output = once(&config, &[]);
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("apps/other.yaml:1:8: marker names policy default:podnifo"),
        "{stderr}"
    );
    assert!(stderr.contains("held back what they touch"), "{stderr}");
    assert_ne!(
        fx.remote.tip("main"),
        before,
        "the good policies are pushed"
    );
    assert_eq!(
        fx.remote.file("main", "apps/other.yaml").unwrap(),
        b"image: nginx:1.0 # {\"$imagepolicy\": \"default:podnifo\"}\n"
    );
}

#[test]
fn missing_or_invalid_config_exits_2_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let output = once(&missing, &[]);
    assert_exit(&output, 2);
    assert!(text(&output.stderr).contains("nope.yaml: cannot read the config file"));

    let invalid = dir.path().join("bad.yaml");
    std::fs::write(&invalid, "git:\n  url: file:///x\n  brnach: main\n").unwrap();
    let output = once(&invalid, &[]);
    assert_exit(&output, 2);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("bad.yaml:3:3: unknown field `brnach`"),
        "{stderr}"
    );

    let output = crowsnest(&["once"]);
    assert_exit(&output, 2);
}
