//! A whole setup for `crowsnest once` end to end: a real registry with
//! tags, a bare Git remote seeded with one marked Deployment and its
//! policy, an OpenPGP signing key, and a config writer. Plus the audit
//! check every fault test ends with: on the remote's branch, every
//! crowsnest commit is signed and verifies, and every `Image-Update`
//! trailer appears exactly once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::git::Remote;
use super::registry::RegistryServer;
use super::signing::GpgKey;

pub const AUTHOR: &str = "Crowsnest Bot";
pub const DEPLOYMENT_PATH: &str = "apps/podinfo/deployment.yaml";

pub fn deployment(image_host: &str, tag: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n  template:\n    spec:\n      containers:\n        - name: podinfo\n          image: {image_host}/demo/podinfo:{tag} # {{\"$imagepolicy\": \"default:podinfo\"}}\n"
    )
}

pub fn policy(image_host: &str) -> String {
    format!(
        "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo\nspec:\n  image: {image_host}/demo/podinfo\n  policy:\n    semver:\n      range: \">=6.0.0 <7.0.0\"\n"
    )
}

pub struct Fleet {
    pub registry: RegistryServer,
    pub remote: Remote,
    pub key: GpgKey,
    pub dir: tempfile::TempDir,
    /// The registry host written in the manifests and the policy.
    pub image_host: String,
}

impl Fleet {
    /// `registry` gets `demo/podinfo` 6.0.0 and 6.1.0; the remote's
    /// Deployment is at 6.0.0. `image_host` is what the files name (the
    /// registry itself, or a proxy in front of it).
    pub fn new(registry: RegistryServer, image_host: Option<&str>) -> Fleet {
        registry.push_tags("demo/podinfo", &["6.0.0", "6.1.0"]);
        let image_host = image_host.map_or_else(|| registry.host(), str::to_owned);
        let remote = Remote::new(&[
            (DEPLOYMENT_PATH, &deployment(&image_host, "6.0.0")),
            ("policies/podinfo.yaml", &policy(&image_host)),
        ]);
        Fleet {
            registry,
            remote,
            key: GpgKey::ed25519(),
            dir: tempfile::tempdir().expect("temp dir"),
            image_host,
        }
    }

    /// Writes `crowsnest.yaml` for `url`. `git_extra` goes under `git:`
    /// (indented two spaces), `host_extra` under the registry host entry
    /// (six spaces), `registries_extra` under `registries:` (two spaces).
    pub fn config_with(
        &self,
        url: &str,
        git_extra: &str,
        host_extra: &str,
        registries_extra: &str,
    ) -> PathBuf {
        let path = self.dir.path().join("crowsnest.yaml");
        let signing = if git_extra.contains("signing:") {
            String::new()
        } else {
            format!(
                "  signing:\n    format: openpgp\n    keyFile: {}\n",
                self.key.key_file.display()
            )
        };
        let text = format!(
            "git:\n  url: {url}\n  author: {{ name: {AUTHOR}, email: bot@example.com }}\n{signing}{git_extra}registries:\n{registries_extra}  hosts:\n    - host: {host}\n      insecure: true\n{host_extra}stateDir: state\n",
            host = self.image_host,
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    pub fn config(&self) -> PathBuf {
        self.config_with(&self.remote.url(), "", "", "")
    }

    /// Tags the remote's Deployment should end at, read from the remote.
    pub fn deployed(&self) -> String {
        let text = String::from_utf8(
            self.remote
                .file("main", DEPLOYMENT_PATH)
                .expect("the deployment"),
        )
        .expect("utf-8");
        text.split(&format!("{}/demo/podinfo:", self.image_host))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the image line")
            .to_owned()
    }

    /// The audit check: every crowsnest commit on `main` verifies with the
    /// public key, and every Image-Update trailer appears exactly once.
    /// Returns the trailers, oldest first.
    pub fn assert_trail(&self) -> Vec<String> {
        let mut trailers = Vec::new();
        for commit in self.remote.log("main").iter().rev() {
            if commit.author_name != AUTHOR {
                continue;
            }
            self.key
                .verify_commit(&self.remote.path, &commit.id)
                .unwrap_or_else(|e| panic!("commit {} is not signed: {e}", commit.id));
            for line in commit.message.lines() {
                if let Some(value) = line.strip_prefix("Image-Update: ") {
                    trailers.push(value.to_owned());
                }
            }
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &trailers {
            *counts.entry(t).or_default() += 1;
        }
        let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(repeated.is_empty(), "duplicate updates: {repeated:?}");
        self.remote.fsck();
        trailers
    }

    /// The trailer for podinfo moving from `from` to `to`.
    pub fn trailer(&self, from: &str, to: &str) -> String {
        let image = format!("{}/demo/podinfo", self.image_host);
        format!("default:podinfo {image}:{from} -> {image}:{to}")
    }
}

/// Runs the crowsnest binary from `cwd` with the default log level.
pub fn crowsnest(bin: &str, cwd: &Path, args: &[&str]) -> Output {
    crowsnest_logged(bin, cwd, args, "info")
}

/// Runs the crowsnest binary from `cwd` with `CROWSNEST_LOG=log`.
pub fn crowsnest_logged(bin: &str, cwd: &Path, args: &[&str], log: &str) -> Output {
    Command::new(bin)
        .current_dir(cwd)
        .args(args)
        .env("CROWSNEST_LOG", log)
        .env_remove("CROWSNEST_LOG_FORMAT")
        .output()
        .expect("run crowsnest")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Panics with both streams unless the exit code is `code`.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}
