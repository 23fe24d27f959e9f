//! Signing keys made with the real tools (gpg, ssh-keygen) and commit
//! signatures checked the way git checks them (`git verify-commit`).
//!
//! A [`GpgKey`] is generated in one GnuPG home and exported as the armored
//! secret key crowsnest's `signing.keyFile` takes; its public key alone is
//! imported into a second home, which is what `verify_commit` uses, so a
//! passing check proves the signature verifies against the public key.

use std::path::{Path, PathBuf};
use std::process::Command;

use p256::pkcs8::{EncodePrivateKey, LineEnding::LF};
use tempfile::TempDir;

use super::git::{git, set_mode};
use super::process::{require, run};

/// The identity on every test signing key.
pub const SIGNER_UID: &str = "Crowsnest Bot <bot@example.com>";
pub const SIGNER_EMAIL: &str = "bot@example.com";

/// An OpenPGP key made by gpg.
pub struct GpgKey {
    dir: TempDir,
    signer_home: PathBuf,
    verifier_home: PathBuf,
    /// Primary key fingerprint, upper-case hex.
    pub fingerprint: String,
    /// The armored secret key (`gpg --armor --export-secret-keys`).
    pub key_file: PathBuf,
    /// A file holding the passphrase, when the key has one.
    pub passphrase_file: Option<PathBuf>,
}

/// How to make a [`GpgKey`].
#[derive(Clone, Copy, Debug)]
pub struct GpgSpec<'a> {
    /// gpg's algorithm name: `ed25519`, `rsa2048`, `rsa3072`, ...
    pub algorithm: &'a str,
    pub passphrase: Option<&'a str>,
    /// Make the primary key certify-only and add a separate signing subkey.
    pub signing_subkey: bool,
}

impl GpgKey {
    /// An unprotected ed25519 key that signs with its primary key.
    pub fn ed25519() -> GpgKey {
        GpgKey::new(GpgSpec {
            algorithm: "ed25519",
            passphrase: None,
            signing_subkey: false,
        })
    }

    pub fn new(spec: GpgSpec<'_>) -> GpgKey {
        require("gpg", "gnupg");
        let dir = tempfile::Builder::new()
            .prefix("crowsnest-gpg-")
            .tempdir()
            .expect("create a temp dir");
        let signer_home = dir.path().join("signer");
        let verifier_home = dir.path().join("verifier");
        for home in [&signer_home, &verifier_home] {
            std::fs::create_dir(home).expect("create a GnuPG home");
            set_mode(home, 0o700);
        }
        let passphrase = spec.passphrase.unwrap_or("");
        let gpg = |home: &Path| {
            let mut command = Command::new("gpg");
            command
                .arg("--homedir")
                .arg(home)
                .args(["--batch", "--no-tty", "--pinentry-mode", "loopback"])
                .args(["--passphrase", passphrase]);
            command
        };
        let primary_usage = if spec.signing_subkey { "cert" } else { "sign" };
        run(gpg(&signer_home).args([
            "--quick-gen-key",
            SIGNER_UID,
            spec.algorithm,
            primary_usage,
            "never",
        ]));
        let fingerprint = run(gpg(&signer_home).args(["--with-colons", "--list-secret-keys"]))
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .map(|rest| rest.trim_matches(':').to_owned())
            .expect("gpg lists the new key's fingerprint");
        if spec.signing_subkey {
            run(gpg(&signer_home).args([
                "--quick-add-key",
                &fingerprint,
                spec.algorithm,
                "sign",
                "never",
            ]));
        }
        let secret = run(gpg(&signer_home).args(["--armor", "--export-secret-keys", &fingerprint]));
        let public = run(gpg(&signer_home).args(["--armor", "--export", &fingerprint]));
        let key_file = dir.path().join("signing-key.asc");
        std::fs::write(&key_file, secret).expect("write the secret key");
        let public_file = dir.path().join("signing-key.pub.asc");
        std::fs::write(&public_file, public).expect("write the public key");
        run(gpg(&verifier_home).arg("--import").arg(&public_file));
        let passphrase_file = spec.passphrase.map(|p| {
            let path = dir.path().join("passphrase");
            std::fs::write(&path, format!("{p}\n")).expect("write the passphrase");
            path
        });
        let key = GpgKey {
            dir,
            signer_home,
            verifier_home,
            fingerprint,
            key_file,
            passphrase_file,
        };
        key.stop_agents();
        key
    }

    /// The temporary directory holding the homes and key files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The GnuPG home holding the secret key, for `git commit -S` (set
    /// `GNUPGHOME` to it and `user.signingkey` to [`GpgKey::fingerprint`]).
    pub fn signer_home(&self) -> &Path {
        &self.signer_home
    }

    /// The armored public key (`gpg --armor --export`): a keyring file.
    pub fn public_key_file(&self) -> PathBuf {
        self.dir.path().join("signing-key.pub.asc")
    }

    /// git's verdict letter (`%G?`) on `rev` with a GnuPG home holding
    /// only this public key: `G`, `B`, `E`, `N`, ...
    pub fn git_signature_code(&self, repo: &Path, rev: &str) -> String {
        let code = run(git()
            .env("GNUPGHOME", &self.verifier_home)
            .arg("-C")
            .arg(repo)
            .args(["log", "-1", "--format=%G?", rev]));
        self.stop_agents();
        code.trim().to_owned()
    }

    /// `git verify-commit --raw REV` in `repo` with a GnuPG home that holds
    /// only the public key. `Ok(gpg status output)` when git accepts the
    /// signature, `Err(output)` otherwise.
    pub fn verify_commit(&self, repo: &Path, rev: &str) -> Result<String, String> {
        let output = git()
            .env("GNUPGHOME", &self.verifier_home)
            .arg("-C")
            .arg(repo)
            .args(["verify-commit", "--raw", rev])
            .output()
            .expect("run git verify-commit");
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// A commit on top of `rev` in `repo` signed by git itself with this
    /// key (`git commit-tree -S`), for checking the checker. Returns its id.
    pub fn git_signed_commit(&self, repo: &Path, rev: &str) -> String {
        let id = run(git()
            .env("GNUPGHOME", &self.signer_home)
            .arg("-C")
            .arg(repo)
            .args(["commit-tree", &format!("-S{}", self.fingerprint)])
            .args(["-p", rev, "-m", "signed by git", &format!("{rev}^{{tree}}")]));
        self.stop_agents();
        id.trim().to_owned()
    }

    /// gpg starts agents per home; stop ours (only for these two homes).
    fn stop_agents(&self) {
        for home in [&self.signer_home, &self.verifier_home] {
            let _ = Command::new("gpgconf")
                .arg("--homedir")
                .arg(home)
                .args(["--kill", "all"])
                .output();
        }
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        self.stop_agents();
    }
}

/// An SSH signing key made by ssh-keygen, with the allowed-signers file
/// `git verify-commit` needs for SSH signatures.
pub struct SshSigningKey {
    dir: TempDir,
    /// The private key in OpenSSH format.
    pub key_file: PathBuf,
    pub public_key: String,
    pub passphrase_file: Option<PathBuf>,
    allowed_signers: PathBuf,
}

impl SshSigningKey {
    /// `kind` is ssh-keygen's `-t`: `ed25519` or `ecdsa` (P-256, or
    /// `ecdsa-384`, `ecdsa-521` for P-384, P-521).
    pub fn new(kind: &str, passphrase: Option<&str>) -> SshSigningKey {
        let (t, bits): (&str, &[&str]) = match kind {
            "ecdsa-384" => ("ecdsa", &["-b", "384"]),
            "ecdsa-521" => ("ecdsa", &["-b", "521"]),
            other => (other, &[]),
        };
        SshSigningKey::made(passphrase, |key_file| {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", t])
                .args(bits)
                .args(["-N", passphrase.unwrap_or(""), "-C", SIGNER_EMAIL, "-f"])
                .arg(key_file));
        })
    }

    /// An ECDSA key on the curve of `bits` (256, 384, 521) whose private
    /// scalar is a byte short in OpenSSH's file, which writes it as an
    /// mpint: its first byte is zero and its second below 0x80 (else the
    /// mpint's sign byte makes the width up again). One key in 512 that
    /// ssh-keygen makes, one in four at P-521. The scalar is drawn here and
    /// written as PKCS #8 PEM; ssh-keygen itself then rewrites the file in
    /// OpenSSH's format (`-p`).
    pub fn ecdsa_with_short_scalar(bits: u16, passphrase: Option<&str>) -> SshSigningKey {
        let mut scalar = vec![0u8; usize::from(bits).div_ceil(8)];
        let pkcs8 = loop {
            rand::fill(&mut scalar[1..]);
            scalar[1] &= 0x7f;
            let pem = match bits {
                256 => p256::SecretKey::from_slice(&scalar).map(|k| k.to_pkcs8_pem(LF)),
                384 => p384::SecretKey::from_slice(&scalar).map(|k| k.to_pkcs8_pem(LF)),
                521 => p521::SecretKey::from_slice(&scalar).map(|k| k.to_pkcs8_pem(LF)),
                other => panic!("no ECDSA curve of {other} bits"),
            };
            // A scalar of zero or past the curve's order is drawn again.
            if let Ok(pem) = pem {
                break pem.expect("encode PKCS #8 PEM");
            }
        };
        SshSigningKey::made(passphrase, |key_file| {
            std::fs::write(key_file, pkcs8.as_bytes()).expect("write the PKCS #8 key");
            set_mode(key_file, 0o600);
            run(Command::new("ssh-keygen")
                .args(["-q", "-p", "-P", "", "-N", passphrase.unwrap_or(""), "-f"])
                .arg(key_file));
            let public = run(Command::new("ssh-keygen")
                .arg("-y")
                .arg("-f")
                .arg(key_file)
                .args(passphrase.map(|p| ["-P", p]).iter().flatten()));
            std::fs::write(key_file.with_extension("pub"), public).expect("write the public key");
        })
    }

    /// A key `make` writes to the file it is given (and its `.pub` beside).
    fn made(passphrase: Option<&str>, make: impl FnOnce(&Path)) -> SshSigningKey {
        require("ssh-keygen", "openssh-client");
        let dir = tempfile::Builder::new()
            .prefix("crowsnest-sshsig-")
            .tempdir()
            .expect("create a temp dir");
        let key_file = dir.path().join("signing-key");
        make(&key_file);
        let public_key = std::fs::read_to_string(key_file.with_extension("pub"))
            .expect("read the public key")
            .trim()
            .to_owned();
        let allowed_signers = dir.path().join("allowed_signers");
        std::fs::write(
            &allowed_signers,
            format!("{SIGNER_EMAIL} namespaces=\"git\" {public_key}\n"),
        )
        .expect("write allowed signers");
        let passphrase_file = passphrase.map(|p| {
            let path = dir.path().join("passphrase");
            std::fs::write(&path, format!("{p}\n")).expect("write the passphrase");
            path
        });
        SshSigningKey {
            dir,
            key_file,
            public_key,
            passphrase_file,
            allowed_signers,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The allowed-signers file naming this key for namespace `git`.
    pub fn allowed_signers(&self) -> &Path {
        &self.allowed_signers
    }

    /// A commit on top of `rev` signed by git itself with this key.
    pub fn git_signed_commit(&self, repo: &Path, rev: &str) -> String {
        run(git()
            .args(["-c", "gpg.format=ssh", "-c"])
            .arg(format!("user.signingkey={}", self.key_file.display()))
            .arg("-C")
            .arg(repo)
            .args(["commit-tree", "-S", "-p", rev, "-m", "signed by git"])
            .arg(format!("{rev}^{{tree}}")))
        .trim()
        .to_owned()
    }

    /// `git -c gpg.ssh.allowedSignersFile=... verify-commit --raw REV`.
    pub fn verify_commit(&self, repo: &Path, rev: &str) -> Result<String, String> {
        let output = git()
            .arg("-c")
            .arg(format!(
                "gpg.ssh.allowedSignersFile={}",
                self.allowed_signers.display()
            ))
            .arg("-C")
            .arg(repo)
            .args(["verify-commit", "--raw", rev])
            .output()
            .expect("run git verify-commit");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }
}

/// git's verdict letter (`%G?`) on `rev` with `allowed` as
/// `gpg.ssh.allowedSignersFile`: `G`, `B`, `U`, `N`, ...
pub fn git_ssh_signature_code(repo: &Path, rev: &str, allowed: &Path) -> String {
    run(git()
        .arg("-c")
        .arg(format!("gpg.ssh.allowedSignersFile={}", allowed.display()))
        .arg("-C")
        .arg(repo)
        .args(["log", "-1", "--format=%G?", rev]))
    .trim()
    .to_owned()
}

/// A shell-free check that a commit carries no signature at all.
pub fn is_unsigned(repo: &Path, rev: &str) -> bool {
    !run(git().arg("-C").arg(repo).args(["cat-file", "commit", rev]))
        .lines()
        .take_while(|line| !line.is_empty())
        .any(|line| line.starts_with("gpgsig"))
}
