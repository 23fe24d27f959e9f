//! Secrets never appear in any output: `once` (and `--dry-run`), `tags`,
//! `check` and `history` run with every kind of secret configured — a git password
//! file (smart HTTP), an SSH key with a passphrase, an OpenPGP signing key
//! with a passphrase, an SSH signing key with a passphrase, a registry
//! `passwordFile`, docker config `auths` — on success and on every failure
//! path (wrong registry password, wrong git password, wrong passphrases),
//! at the most verbose log level, as text and as JSON. Nor do they end up
//! in the files crowsnest writes (the clone in `stateDir`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use support::fleet::{Fleet, text};
use support::git_http::GitHttp;
use support::registry::{Auth, RegistryServer};
use support::signing::{GpgKey, GpgSpec, SshSigningKey};
use support::sshd::Sshd;

const BIN: &str = env!("CARGO_BIN_EXE_crowsnest");

const REGISTRY_PASSWORD: &str = "REGISTRY-s3cret-pw-1f9a";
const GIT_PASSWORD: &str = "GIT-s3cret-token-77c2";
const SSH_PASSPHRASE: &str = "SSH-s3cret-passphrase-0d4e";
const PGP_PASSPHRASE: &str = "PGP-s3cret-passphrase-a2b8";
const SSHSIG_PASSPHRASE: &str = "SSHSIG-s3cret-passphrase-5e61";

/// Every secret and the forms it could leak in.
struct Secrets {
    needles: Vec<(String, String)>,
}

impl Secrets {
    fn new() -> Secrets {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut needles = Vec::new();
        for (what, secret) in [
            ("registry password", REGISTRY_PASSWORD),
            ("git password", GIT_PASSWORD),
            ("ssh passphrase", SSH_PASSPHRASE),
            ("pgp passphrase", PGP_PASSPHRASE),
            ("ssh signing passphrase", SSHSIG_PASSPHRASE),
        ] {
            needles.push((what.to_owned(), secret.to_owned()));
            // As a Basic header would carry it, and docker config stores it.
            for user in ["ci", "robot"] {
                needles.push((
                    format!("{what} in base64"),
                    b64(&format!("{user}:{secret}")),
                ));
            }
        }
        Secrets { needles }
    }

    /// Adds the body lines of a private key file (PEM or armored).
    fn key_file(&mut self, what: &str, path: &Path) {
        let text = std::fs::read_to_string(path).unwrap();
        for line in text.lines() {
            let line = line.trim();
            if line.len() >= 40 && !line.starts_with("-----") && !line.contains(':') {
                self.needles
                    .push((format!("{what} material"), line.to_owned()));
            }
        }
    }

    fn assert_absent(&self, context: &str, haystack: &str) {
        for (what, needle) in &self.needles {
            assert!(
                !haystack.contains(needle.as_str()),
                "{context}: the {what} appears in:\n{haystack}"
            );
        }
    }

    fn check(&self, context: &str, output: &Output) {
        self.assert_absent(&format!("{context} stdout"), &text(&output.stdout));
        self.assert_absent(&format!("{context} stderr"), &text(&output.stderr));
    }

    /// Every file under `dir` (the clone crowsnest keeps).
    fn check_files(&self, dir: &Path) {
        for entry in walk(dir) {
            let bytes = std::fs::read(&entry).unwrap_or_default();
            self.assert_absent(
                &entry.display().to_string(),
                &String::from_utf8_lossy(&bytes),
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.extend(walk(&path));
        } else if kind.is_file() {
            out.push(path);
        }
    }
    out
}

/// Runs `args` at trace level in text and in JSON; checks both.
fn run_all_formats(secrets: &Secrets, cwd: &Path, context: &str, args: &[&str]) -> Vec<Output> {
    let mut outputs = Vec::new();
    for json in [false, true] {
        let mut command = std::process::Command::new(BIN);
        command
            .current_dir(cwd)
            .args(args)
            .env("CROWSNEST_LOG", "trace");
        if json {
            command.env("CROWSNEST_LOG_FORMAT", "json");
        }
        let output = command.output().unwrap();
        secrets.check(&format!("{context} (json: {json})"), &output);
        outputs.push(output);
    }
    outputs
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn no_secret_in_any_output_of_once_tags_check_or_history_on_success_or_failure() {
    let mut secrets = Secrets::new();
    let fx = Fleet::new(
        RegistryServer::start(Auth::htpasswd("ci", REGISTRY_PASSWORD)),
        None,
    );
    let d = fx.dir.path();
    let http = GitHttp::start(fx.remote.dir(), "robot", GIT_PASSWORD);
    let sshd = Sshd::start(Some(SSH_PASSPHRASE));
    let known = sshd.write_known_hosts("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    let pgp = GpgKey::new(GpgSpec {
        algorithm: "ed25519",
        passphrase: Some(PGP_PASSPHRASE),
        signing_subkey: false,
    });
    let sshsig = SshSigningKey::new("ed25519", Some(SSHSIG_PASSPHRASE));
    secrets.key_file("ssh client key", &sshd.client_key);
    secrets.key_file("openpgp key", &pgp.key_file);
    secrets.key_file("ssh signing key", &sshsig.key_file);
    assert!(secrets.needles.len() > 20, "key material to look for");

    let registry_password = write(d, "registry-password", &format!("{REGISTRY_PASSWORD}\n"));
    let wrong_registry_password = write(d, "wrong-registry-password", "not-the-registry-pw\n");
    let git_password = write(d, "git-password", &format!("{GIT_PASSWORD}\n"));
    let wrong_git_password = write(d, "wrong-git-password", "not-the-git-pw\n");
    let wrong_passphrase = write(d, "wrong-passphrase", "not-the-passphrase\n");
    let docker = write(
        d,
        "docker-config.json",
        &format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{}"}}}}}}"#,
            fx.registry.host(),
            base64::engine::general_purpose::STANDARD.encode(format!("ci:{REGISTRY_PASSWORD}"))
        ),
    );
    let docker_wrong = write(
        d,
        "docker-config-wrong.json",
        &format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{}"}}}}}}"#,
            fx.registry.host(),
            base64::engine::general_purpose::STANDARD.encode("ci:not-the-registry-pw")
        ),
    );

    let http_auth = |password: &Path| {
        format!(
            "  auth:\n    username: robot\n    passwordFile: {}\n",
            password.display()
        )
    };
    let ssh_auth = |passphrase: &Path| {
        format!(
            "  auth:\n    sshKeyFile: {}\n    sshPassphraseFile: {}\n    knownHostsFile: {}\n",
            sshd.client_key.display(),
            passphrase.display(),
            known.display()
        )
    };
    let pgp_signing = |passphrase: &Path| {
        format!(
            "  signing:\n    format: openpgp\n    keyFile: {}\n    passphraseFile: {}\n",
            pgp.key_file.display(),
            passphrase.display()
        )
    };
    let ssh_signing = |passphrase: &Path| {
        format!(
            "  signing:\n    format: ssh\n    keyFile: {}\n    passphraseFile: {}\n",
            sshsig.key_file.display(),
            passphrase.display()
        )
    };
    let registry_auth = |password: &Path| {
        format!(
            "      username: ci\n      passwordFile: {}\n",
            password.display()
        )
    };
    let docker_auth = |file: &Path| format!("  dockerConfig: {}\n", file.display());
    let ssh_passphrase = sshd.client_passphrase_file.clone().unwrap();
    let pgp_passphrase = pgp.passphrase_file.clone().unwrap();
    let sshsig_passphrase = sshsig.passphrase_file.clone().unwrap();

    // (name, url, git extra, host extra, registries extra, expected exit of once)
    let cases: Vec<(&str, String, String, String, String, i32)> = vec![
        (
            "http + openpgp + passwordFile",
            http.url("fleet.git"),
            http_auth(&git_password) + &pgp_signing(&pgp_passphrase),
            registry_auth(&registry_password),
            String::new(),
            0,
        ),
        (
            "ssh + ssh signing + docker config",
            sshd.url(&fx.remote.path),
            ssh_auth(&ssh_passphrase) + &ssh_signing(&sshsig_passphrase),
            String::new(),
            docker_auth(&docker),
            0,
        ),
        (
            "wrong registry password",
            http.url("fleet.git"),
            http_auth(&git_password) + &pgp_signing(&pgp_passphrase),
            registry_auth(&wrong_registry_password),
            String::new(),
            1,
        ),
        (
            "wrong docker config auth",
            http.url("fleet.git"),
            http_auth(&git_password) + &pgp_signing(&pgp_passphrase),
            String::new(),
            docker_auth(&docker_wrong),
            1,
        ),
        (
            "wrong git password",
            http.url("fleet.git"),
            http_auth(&wrong_git_password) + &pgp_signing(&pgp_passphrase),
            registry_auth(&registry_password),
            String::new(),
            1,
        ),
        (
            "wrong ssh key passphrase",
            sshd.url(&fx.remote.path),
            ssh_auth(&wrong_passphrase) + &ssh_signing(&sshsig_passphrase),
            registry_auth(&registry_password),
            String::new(),
            1,
        ),
        (
            "wrong openpgp passphrase",
            http.url("fleet.git"),
            http_auth(&git_password) + &pgp_signing(&wrong_passphrase),
            registry_auth(&registry_password),
            String::new(),
            1,
        ),
        (
            "wrong ssh signing passphrase",
            http.url("fleet.git"),
            http_auth(&git_password) + &ssh_signing(&wrong_passphrase),
            registry_auth(&registry_password),
            String::new(),
            1,
        ),
    ];
    let image = format!("{}/demo/podinfo", fx.registry.host());
    for (i, (name, url, git, host, registries, code)) in cases.into_iter().enumerate() {
        // A new tag per case, so each successful pass has something to push.
        fx.registry
            .push_tags("demo/podinfo", &[&format!("6.{}.0", i + 2)]);
        let config = fx.config_with(&url, &git, &host, &registries);
        let config = config.to_str().unwrap();
        let dry = run_all_formats(
            &secrets,
            d,
            name,
            &["once", "--config", config, "--dry-run"],
        );
        let once = run_all_formats(&secrets, d, name, &["once", "--config", config]);
        assert_eq!(
            once[0].status.code(),
            Some(code),
            "{name}: {}",
            text(&once[0].stderr)
        );
        if code == 0 {
            assert_eq!(dry[0].status.code(), Some(0), "{name}");
        }
        // The logs checked are the verbose ones (a pass that fails early
        // may print no more than its error).
        if code == 0 {
            let logged = text(&once[1].stderr);
            assert!(
                logged.lines().filter(|l| l.starts_with('{')).count() >= 20,
                "{name}: JSON log lines expected: {logged}"
            );
        }
        let tags = run_all_formats(&secrets, d, name, &["tags", &image, "--config", config]);
        let registry_ok = !name.starts_with("wrong registry") && !name.starts_with("wrong docker");
        assert_eq!(
            tags[0].status.code(),
            Some(if registry_ok { 0 } else { 1 }),
            "{name}: {}",
            text(&tags[0].stderr)
        );
        run_all_formats(&secrets, d, name, &["check", "--config", config]);
        // history reads the clone in stateDir that once left.
        let history = run_all_formats(&secrets, d, name, &["history", "--config", config]);
        if code == 0 {
            assert_eq!(
                history[0].status.code(),
                Some(0),
                "{name}: {}",
                text(&history[0].stderr)
            );
        }
        // Every failure says what failed, without the secret.
        if code != 0 {
            let stderr = text(&once[0].stderr).to_lowercase();
            assert!(
                stderr.contains("auth")
                    || stderr.contains("passphrase")
                    || stderr.contains("decrypt")
                    || stderr.contains("password"),
                "{name}: {stderr}"
            );
        }
    }
    // The successful cases committed (and signed) their updates.
    assert!(
        fx.remote
            .log("main")
            .iter()
            .filter(|c| c.author_name == support::fleet::AUTHOR)
            .count()
            >= 2
    );
    secrets.check_files(&d.join("state"));
}
