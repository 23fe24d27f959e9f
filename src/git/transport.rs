//! How crowsnest reaches the remote: which transport the URL names, the
//! credentials libgit2 asks for, and the SSH host-key check.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;

use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

use super::GitError;
use super::known_hosts::{self, KnownHosts, Verdict};
use super::ssh_key_file::{self, KeyFileError};
use crate::config::GitConfig;
use crate::model::Secret;

/// The user name for `ssh://host/...` URLs that do not name one.
const DEFAULT_SSH_USER: &str = "git";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `file://` or a local path: the bare repository's path.
    Local(PathBuf),
    Ssh {
        host: String,
        port: u16,
    },
    Http,
}

/// The remote and everything needed to connect to it. Secrets are read
/// once, when the repository is opened.
pub(crate) struct Transport {
    /// The URL as configured, given to libgit2.
    pub url: String,
    /// The URL for messages: no password, and no user name for http(s).
    pub display: String,
    pub kind: Kind,
    ssh_key: Option<PathBuf>,
    ssh_passphrase: Option<Secret>,
    known_hosts: Option<KnownHosts>,
    username: Option<String>,
    password: Option<Secret>,
}

/// What the callbacks of one connection saw, for turning libgit2's terse
/// errors into messages that say what to do.
#[derive(Default)]
pub(crate) struct Observed {
    pub host_key: RefCell<Option<String>>,
    pub auth: RefCell<Option<String>>,
    attempts: Cell<u32>,
    tried_ssh_key: Cell<bool>,
    tried_password: Cell<bool>,
    /// Text the server sent on the sideband (`remote: ...` lines).
    pub remote_output: RefCell<String>,
}

impl Transport {
    pub fn new(config: &GitConfig) -> Result<Transport, GitError> {
        let url = config.url.clone();
        let display = redact(&url);
        let kind = kind_of(&url).map_err(|message| GitError::Repository {
            remote: display.clone(),
            what: "git.url",
            message,
        })?;
        let auth = &config.auth;
        let read = |what: &'static str, path: &PathBuf| {
            Secret::read_file(path).map_err(|source| GitError::ReadSecret {
                what,
                path: path.clone(),
                source,
            })
        };
        // Fail at startup, not at the first fetch, when the key is
        // unreadable (or, below, its passphrase wrong).
        let ssh_key = auth
            .ssh_key_file
            .as_ref()
            .map(|key| {
                std::fs::read(key).map_err(|source| GitError::ReadSecret {
                    what: "the SSH key (git.auth.sshKeyFile)",
                    path: key.clone(),
                    source,
                })
            })
            .transpose()?;
        let ssh_passphrase = auth
            .ssh_passphrase_file
            .as_ref()
            .map(|p| read("the SSH key passphrase (git.auth.sshPassphraseFile)", p))
            .transpose()?;
        if let (Some(path), Some(key)) = (&auth.ssh_key_file, &ssh_key) {
            check_ssh_key(path, key, ssh_passphrase.as_ref()).map_err(|message| {
                GitError::Auth {
                    remote: display.clone(),
                    message,
                }
            })?;
        }
        let password = auth
            .password_file
            .as_ref()
            .map(|p| read("the git password or token (git.auth.passwordFile)", p))
            .transpose()?;
        let known_hosts = auth
            .known_hosts_file
            .as_deref()
            .map(KnownHosts::load)
            .transpose()?;
        if matches!(kind, Kind::Ssh { .. }) && known_hosts.is_none() {
            return Err(GitError::HostKey {
                remote: display,
                message: "an ssh:// remote needs git.auth.knownHostsFile; crowsnest has no accept-anything mode".into(),
            });
        }
        Ok(Transport {
            url,
            display,
            kind,
            ssh_key: auth.ssh_key_file.clone(),
            ssh_passphrase,
            known_hosts,
            username: auth.username.clone(),
            password,
        })
    }

    /// Callbacks for one fetch or push: credentials, host-key check, and
    /// collection of the server's sideband messages.
    pub fn callbacks<'a>(&'a self, observed: &'a Observed) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(move |_url, user_from_url, allowed| {
            self.credentials(observed, user_from_url, allowed)
        });
        callbacks.certificate_check(move |cert, host| match &self.kind {
            Kind::Ssh { port, .. } => {
                let verdict = match cert.as_hostkey().and_then(|k| k.hostkey()) {
                    Some(key) => self.check_host_key(host, *port, key),
                    None => Err("the SSH library gave no host key to check".to_owned()),
                };
                verdict.map_err(|message| {
                    observed.host_key.replace(Some(message.clone()));
                    git2::Error::from_str(&message)
                })
            }
            // TLS: libgit2's own verification against the system roots.
            _ => Ok(CertificateCheckStatus::CertificatePassthrough),
        });
        callbacks.sideband_progress(move |data| {
            observed
                .remote_output
                .borrow_mut()
                .push_str(&String::from_utf8_lossy(data));
            true
        });
        callbacks
    }

    fn check_host_key(
        &self,
        host: &str,
        port: u16,
        key: &[u8],
    ) -> Result<CertificateCheckStatus, String> {
        let known = self
            .known_hosts
            .as_ref()
            .ok_or("no git.auth.knownHostsFile to check the host key against")?;
        let name = known_hosts::lookup_name(host, port);
        let presented = format!(
            "{} {}",
            known_hosts::blob_key_type(key).unwrap_or_else(|| "unknown".into()),
            known_hosts::fingerprint(key)
        );
        let file = known.path().display();
        match known.check(host, port, key) {
            Verdict::Known => Ok(CertificateCheckStatus::CertificateOk),
            Verdict::Revoked => Err(format!(
                "the host key of {name} ({presented}) is marked @revoked in {file}"
            )),
            Verdict::Mismatch { known_types } => Err(format!(
                "the host key of {name} ({presented}) does not match the {} key(s) {file} lists for it: \
                 the server's key changed or someone is intercepting the connection; \
                 if the change is expected, update {file}",
                known_types.join(", ")
            )),
            Verdict::Unknown => Err(format!(
                "{name} is not in {file} (the server presented {presented}); \
                 add its key, e.g. the output of `ssh-keyscan{} {host}` checked against a trusted source",
                if port == 22 {
                    String::new()
                } else {
                    format!(" -p {port}")
                }
            )),
        }
    }

    fn credentials(
        &self,
        observed: &Observed,
        user_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        let attempt = observed.attempts.get() + 1;
        observed.attempts.set(attempt);
        let fail = |message: String| {
            observed.auth.replace(Some(message.clone()));
            Err(git2::Error::from_str(&message))
        };
        if attempt > 4 {
            return fail("the server keeps asking for credentials".into());
        }
        if allowed.contains(CredentialType::USERNAME) {
            let user = user_from_url
                .or(self.username.as_deref())
                .unwrap_or(DEFAULT_SSH_USER);
            return Cred::username(user);
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            let Some(key) = &self.ssh_key else {
                return fail("the server asks for an SSH key; set git.auth.sshKeyFile".into());
            };
            if observed.tried_ssh_key.replace(true) {
                return fail(format!(
                    "the server refused the SSH key {} (is its public key authorized for this user?{})",
                    key.display(),
                    if self.ssh_passphrase.is_some() {
                        " is git.auth.sshPassphraseFile right?"
                    } else {
                        " does the key need git.auth.sshPassphraseFile?"
                    }
                ));
            }
            let user = user_from_url.unwrap_or(DEFAULT_SSH_USER);
            return Cred::ssh_key(
                user,
                None,
                key,
                self.ssh_passphrase.as_ref().map(Secret::expose),
            );
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            let (Some(user), Some(password)) = (
                self.username.as_deref().or(user_from_url),
                self.password.as_ref(),
            ) else {
                return fail(
                    "the server asks for a user name and password; set git.auth.username and git.auth.passwordFile"
                        .into(),
                );
            };
            if observed.tried_password.replace(true) {
                return fail(
                    "the server refused git.auth.username and the password or token in git.auth.passwordFile"
                        .into(),
                );
            }
            return Cred::userpass_plaintext(user, password.expose());
        }
        fail(format!(
            "the server asks for credentials crowsnest cannot give ({allowed:?})"
        ))
    }

    /// Removes secrets from a libgit2 message (they should never be there;
    /// this is the last line of defence).
    pub fn scrub(&self, message: &str) -> String {
        let mut text = message.to_owned();
        for secret in [&self.password, &self.ssh_passphrase].into_iter().flatten() {
            if !secret.expose().is_empty() {
                text = text.replace(secret.expose(), "<redacted>");
            }
        }
        if text.contains(&self.url) && self.url != self.display {
            text = text.replace(&self.url, &self.display);
        }
        text
    }

    /// Turns a libgit2 failure during fetch or push into the most telling
    /// error: a refused host key or credentials first, then `other`.
    pub fn classify(
        &self,
        observed: &Observed,
        error: &git2::Error,
        other: impl FnOnce(String) -> GitError,
    ) -> GitError {
        if let Some(message) = observed.host_key.borrow().clone() {
            return GitError::HostKey {
                remote: self.display.clone(),
                message,
            };
        }
        if let Some(message) = observed.auth.borrow().clone() {
            return GitError::Auth {
                remote: self.display.clone(),
                message,
            };
        }
        let untrusted_certificate = error.code() == git2::ErrorCode::Certificate
            || (error.class() == git2::ErrorClass::Ssl
                && error.message().to_ascii_lowercase().contains("certificate"));
        if untrusted_certificate && self.kind == Kind::Http {
            return GitError::Tls {
                remote: self.display.clone(),
                message: self.scrub(error.message()),
            };
        }
        if error.code() == git2::ErrorCode::Auth {
            return GitError::Auth {
                remote: self.display.clone(),
                message: self.scrub(error.message()),
            };
        }
        other(self.scrub(error.message()))
    }
}

/// Which transport a configured URL names.
pub(crate) fn kind_of(url: &str) -> Result<Kind, String> {
    if let Some((scheme, _)) = url.split_once("://") {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
        return match scheme {
            "file" => parsed
                .to_file_path()
                .map(Kind::Local)
                .map_err(|()| "a file:// URL must name an absolute local path".to_owned()),
            "ssh" => Ok(Kind::Ssh {
                host: parsed
                    .host_str()
                    .ok_or("an ssh:// URL needs a host")?
                    .to_owned(),
                port: parsed.port().unwrap_or(22),
            }),
            "http" | "https" => Ok(Kind::Http),
            other => Err(format!("the {other}:// scheme is not supported")),
        };
    }
    Ok(Kind::Local(PathBuf::from(url)))
}

/// The URL without a password, and for http(s) without a user name either
/// (tokens are often put there).
/// Whether the passphrase (or its absence) fits an OpenSSH-format key,
/// checked at startup: libssh2 reports a wrong passphrase only as
/// "Unsupported private key format", at the first fetch. Keys in other
/// formats (PEM) are left to libssh2.
fn check_ssh_key(
    path: &std::path::Path,
    bytes: &[u8],
    passphrase: Option<&Secret>,
) -> Result<(), String> {
    match ssh_key_file::read(bytes, passphrase) {
        Ok(_) | Err(KeyFileError::NotOpenSsh(_)) => Ok(()),
        Err(KeyFileError::NeedsPassphrase) => Err(format!(
            "the SSH key {} is protected by a passphrase; set git.auth.sshPassphraseFile",
            path.display()
        )),
        Err(KeyFileError::CannotDecrypt(_)) => Err(format!(
            "the passphrase in git.auth.sshPassphraseFile does not decrypt the SSH key {}",
            path.display()
        )),
    }
}

pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if !url.contains("://") {
        return url.to_owned();
    }
    let _ = parsed.set_password(None);
    if matches!(parsed.scheme(), "http" | "https") {
        let _ = parsed.set_username("");
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        let cases = [
            (
                "https://user:tok3n@git.example.com/fleet.git",
                "https://git.example.com/fleet.git",
            ),
            (
                "https://tok3n@git.example.com/fleet.git",
                "https://git.example.com/fleet.git",
            ),
            (
                "ssh://git:pw@git.example.com:2222/fleet.git",
                "ssh://git@git.example.com:2222/fleet.git",
            ),
            ("file:///srv/fleet.git", "file:///srv/fleet.git"),
            ("/srv/fleet.git", "/srv/fleet.git"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want);
        }
    }

    #[test]
    fn url_kinds() {
        assert_eq!(
            kind_of("ssh://git@127.0.0.1:2222/x.git").unwrap(),
            Kind::Ssh {
                host: "127.0.0.1".into(),
                port: 2222
            }
        );
        assert_eq!(
            kind_of("ssh://git.example.com/x.git").unwrap(),
            Kind::Ssh {
                host: "git.example.com".into(),
                port: 22
            }
        );
        assert_eq!(
            kind_of("file:///srv/x.git").unwrap(),
            Kind::Local("/srv/x.git".into())
        );
        assert_eq!(
            kind_of("/srv/x.git").unwrap(),
            Kind::Local("/srv/x.git".into())
        );
        assert_eq!(kind_of("https://h/x.git").unwrap(), Kind::Http);
        assert!(kind_of("ftp://h/x").is_err());
    }
}
