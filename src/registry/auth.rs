//! Credentials and tokens. Credentials come from the host's `username` +
//! `passwordFile` in the daemon config, else from the docker `config.json`
//! named by `registries.dockerConfig` (`auths`, `credHelpers`,
//! `credsStore`, through the `docker_credential` crate), else none
//! (anonymous). They are resolved once per host, wrapped in
//! [`Secret`], and re-read after the registry refuses them (a rotated
//! Kubernetes secret is picked up on the next scan).
//!
//! Tokens are cached per host and scope (`repository:NAME:pull`) until
//! shortly before they expire, so a repository costs one token request per
//! token lifetime however often it is scanned.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::headers::Challenge;
use crate::config::HostConfig;
use crate::model::{ImageName, Secret};

/// A credential for one registry host.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`), for the token flow only.
    IdentityToken(Secret),
}

/// A credential and where it came from, for messages.
#[derive(Clone, Debug)]
pub(crate) struct Credentials {
    pub credential: Credential,
    /// `passwordFile /etc/...` or `docker config /etc/... (credHelpers: ecr-login)`.
    pub source: String,
}

impl Credentials {
    pub(crate) fn basic_header(&self) -> Option<Secret> {
        match &self.credential {
            Credential::Basic { username, password } => Some(basic(username, password)),
            Credential::IdentityToken(_) => None,
        }
    }
}

pub(crate) fn basic(username: &str, password: &Secret) -> Secret {
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{username}:{}", password.expose()))
    ))
}

/// Finds the credentials for `host` (blocking: reads files, may run a
/// credential helper). `Ok(None)` means anonymous.
pub(crate) fn resolve(
    host: &str,
    host_config: Option<&HostConfig>,
    docker_config: Option<&Path>,
) -> Result<Option<Credentials>, String> {
    if let Some(HostConfig {
        username: Some(username),
        password_file: Some(file),
        ..
    }) = host_config
    {
        let password = Secret::read_file(file).map_err(|e| {
            format!(
                "cannot read passwordFile {} for registry host {host}: {e}",
                file.display()
            )
        })?;
        return Ok(Some(Credentials {
            credential: Credential::Basic {
                username: username.clone(),
                password,
            },
            source: format!("username {username:?} and passwordFile {}", file.display()),
        }));
    }
    match docker_config {
        Some(path) => from_docker_config(host, path),
        None => Ok(None),
    }
}

/// The parts of `config.json` crowsnest needs to name a helper in messages.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct HelperNames {
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    creds_store: Option<String>,
}

/// The server names docker uses for `host`, canonical first.
fn server_names(host: &str) -> Vec<String> {
    if host == ImageName::DOCKER_HUB {
        [
            "https://index.docker.io/v1/",
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
        ]
        .map(String::from)
        .to_vec()
    } else {
        vec![host.to_owned()]
    }
}

fn from_docker_config(host: &str, path: &Path) -> Result<Option<Credentials>, String> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read registries.dockerConfig {shown}: {e}"))?;
    let helpers: HelperNames = serde_json::from_slice(&bytes)
        .map_err(|e| format!("registries.dockerConfig {shown} is not valid JSON: {e}"))?;
    let names = server_names(host);
    // credHelpers is an exact-key lookup: ask with the name it is listed under.
    let server = names
        .iter()
        .find(|n| helpers.cred_helpers.contains_key(n.as_str()))
        .unwrap_or(&names[0])
        .clone();
    // The order docker_credential consults: credHelpers, auths, credsStore.
    let helper_name = match helpers.cred_helpers.get(&server) {
        Some(h) => Some(h.clone()),
        None if has_auth_entry(&bytes, &server) => None,
        None => helpers.creds_store.clone(),
    };
    let origin = match (&helper_name, helpers.cred_helpers.contains_key(&server)) {
        (Some(h), true) => format!("credHelpers: {h}"),
        (Some(h), false) => format!("credsStore: {h}"),
        (None, _) => "auths".to_owned(),
    };
    let helper_name = helper_name.as_deref();
    let found = docker_credential::get_credential_from_reader(&bytes[..], &server);
    let credential = match found {
        Ok(DockerCredential::UsernamePassword(username, password)) => Credential::Basic {
            username,
            password: Secret::new(password),
        },
        Ok(DockerCredential::IdentityToken(token)) => Credential::IdentityToken(Secret::new(token)),
        Err(E::NoCredentialConfigured) => return Ok(None),
        Err(E::HelperFailure { .. }) => {
            return Err(format!(
                "the credential helper docker-credential-{} failed for {server} (from {shown}); run `echo {server} | docker-credential-{} get` to see why",
                helper_name.unwrap_or("?"),
                helper_name.unwrap_or("?"),
            ));
        }
        Err(E::HelperCommunicationError) | Err(E::MalformedHelperResponse) => {
            return Err(format!(
                "cannot use the credential helper docker-credential-{} named in {shown}: is it installed and on PATH?",
                helper_name.unwrap_or("?")
            ));
        }
        Err(E::CredentialDecodingError) | Err(E::CredentialMismatchError) => {
            return Err(format!(
                "the `auths` entry for {server} in {shown} is not valid base64 user:password (or disagrees with its username/password fields)"
            ));
        }
        Err(other) => return Err(format!("cannot read {shown}: {other}")),
    };
    Ok(Some(Credentials {
        credential,
        source: format!("docker config {shown} ({origin})"),
    }))
}

/// Whether `auths` has an entry docker would use for `server` (then
/// `credsStore` is not consulted).
fn has_auth_entry(bytes: &[u8], server: &str) -> bool {
    #[derive(Deserialize)]
    struct Auths {
        #[serde(default)]
        auths: HashMap<String, serde_json::Value>,
    }
    let Ok(parsed) = serde_json::from_slice::<Auths>(bytes) else {
        return false;
    };
    let bare = |key: &str| -> String {
        let stripped = key
            .strip_prefix("https://")
            .or_else(|| key.strip_prefix("http://"))
            .unwrap_or(key);
        let host = stripped.split('/').next().unwrap_or(stripped);
        match host {
            "registry-1.docker.io" | "docker.io" => "index.docker.io".into(),
            h => h.into(),
        }
    };
    let wanted = bare(server);
    parsed.auths.iter().any(|(key, value)| {
        bare(key) == wanted
            && ["auth", "identitytoken", "username"]
                .iter()
                .any(|field| value.get(field).is_some_and(|v| !v.is_null()))
    })
}

/// A bearer token and when to stop using it.
pub(crate) struct Token {
    pub value: Secret,
    pub valid_until: Instant,
}

impl Token {
    /// A token granted at `now` for `expires_in` seconds (60 when the
    /// service does not say, as the distribution spec prescribes). It is
    /// dropped a tenth of its lifetime (at most 30 s) early so a request
    /// never carries a token that expires in flight.
    pub(crate) fn new(value: Secret, expires_in: Option<u64>, now: Instant) -> Token {
        let lifetime = Duration::from_secs(expires_in.unwrap_or(60).max(1));
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        Token {
            value,
            valid_until: now + lifetime - margin,
        }
    }

    pub(crate) fn header(&self) -> Secret {
        Secret::new(format!("Bearer {}", self.value.expose()))
    }
}

/// The body of a token response. Not `Debug`: it holds the token.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl TokenResponse {
    pub(crate) fn into_token(self, now: Instant) -> Option<Token> {
        let value = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        Some(Token::new(Secret::new(value), self.expires_in, now))
    }
}

/// What one host has taught crowsnest about its authentication.
#[derive(Default)]
pub(crate) struct AuthState {
    challenge: Mutex<Option<Challenge>>,
    /// Whether a response has told what the host wants (a challenge, or
    /// an answer without one).
    settled: AtomicBool,
    /// Held by the one request that finds out, while the host is unsettled.
    probe: tokio::sync::Mutex<()>,
    /// `None`: not resolved yet.
    credentials: tokio::sync::Mutex<Option<Option<Arc<Credentials>>>>,
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Token>>>>>,
}

impl AuthState {
    pub(crate) fn challenge(&self) -> Option<Challenge> {
        self.challenge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn learn(&self, challenge: Challenge) {
        *self.challenge.lock().unwrap_or_else(|e| e.into_inner()) = Some(challenge);
        self.settle();
    }

    pub(crate) fn settle(&self) {
        self.settled.store(true, Ordering::Release);
    }

    /// While nothing is known about the host's auth, lets one request at a
    /// time through (the guard), so concurrent first requests do not all
    /// collect the same 401; `None` once settled.
    pub(crate) async fn gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        if self.settled.load(Ordering::Acquire) {
            return None;
        }
        let guard = self.probe.lock().await;
        if self.settled.load(Ordering::Acquire) {
            return None;
        }
        Some(guard)
    }

    /// The host's credentials, resolved on first use with `resolve`.
    pub(crate) async fn credentials<F>(
        &self,
        resolve: F,
    ) -> Result<Option<Arc<Credentials>>, String>
    where
        F: FnOnce() -> Result<Option<Credentials>, String> + Send + 'static,
    {
        let mut slot = self.credentials.lock().await;
        if let Some(known) = slot.as_ref() {
            return Ok(known.clone());
        }
        let resolved = tokio::task::spawn_blocking(resolve)
            .await
            .map_err(|e| format!("reading credentials panicked: {e}"))??
            .map(Arc::new);
        *slot = Some(resolved.clone());
        Ok(resolved)
    }

    /// Forgets resolved credentials so the next use reads them again.
    pub(crate) async fn forget_credentials(&self) {
        *self.credentials.lock().await = None;
    }

    /// The slot of the token for `scope`; lock it to read or refresh, so
    /// concurrent requests for one repository share one token request.
    pub(crate) fn token_slot(&self, scope: &str) -> Arc<tokio::sync::Mutex<Option<Token>>> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(scope.to_owned())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_config(user: &str, file: &Path) -> HostConfig {
        HostConfig {
            host: "r.example".into(),
            username: Some(user.into()),
            password_file: Some(file.to_owned()),
            ..HostConfig::default()
        }
    }

    #[test]
    fn host_password_file_wins_over_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("pass");
        std::fs::write(&pass, "s3cret\n").unwrap();
        let docker = dir.path().join("config.json");
        std::fs::write(
            &docker,
            r#"{"auths":{"r.example":{"auth":"b3RoZXI6b3RoZXI="}}}"#,
        )
        .unwrap();
        let found = resolve(
            "r.example",
            Some(&host_config("robot", &pass)),
            Some(&docker),
        )
        .unwrap()
        .unwrap();
        match &found.credential {
            Credential::Basic { username, password } => {
                assert_eq!((username.as_str(), password.expose()), ("robot", "s3cret"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{found:?}").contains("s3cret"), "{found:?}");
    }

    #[test]
    fn docker_config_auths_and_missing_entries() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("config.json");
        // "user:pa:ss" — a colon in the password survives.
        std::fs::write(
            &docker,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},"127.0.0.1:5000":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        let hub = resolve("docker.io", None, Some(&docker)).unwrap().unwrap();
        match &hub.credential {
            Credential::Basic { username, password } => {
                assert_eq!((username.as_str(), password.expose()), ("user", "pa:ss"));
            }
            other => panic!("{other:?}"),
        }
        assert!(hub.source.contains("(auths)"), "{}", hub.source);
        assert!(
            resolve("127.0.0.1:5000", None, Some(&docker))
                .unwrap()
                .is_some()
        );
        assert!(resolve("quay.io", None, Some(&docker)).unwrap().is_none());
        assert!(resolve("quay.io", None, None).unwrap().is_none());
    }

    #[test]
    fn unreadable_sources_name_the_file_and_never_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = resolve("r.example", Some(&host_config("u", &missing)), None).unwrap_err();
        assert!(
            err.contains("passwordFile") && err.contains("nope"),
            "{err}"
        );
        let docker = dir.path().join("config.json");
        std::fs::write(&docker, "{not json").unwrap();
        let err = resolve("r.example", None, Some(&docker)).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        std::fs::write(
            &docker,
            r#"{"credHelpers":{"r.example":"crowsnest-test-absent"}}"#,
        )
        .unwrap();
        let err = resolve("r.example", None, Some(&docker)).unwrap_err();
        assert!(
            err.contains("docker-credential-crowsnest-test-absent"),
            "{err}"
        );
    }

    #[test]
    fn tokens_expire_a_little_early_and_default_to_a_minute() {
        let now = Instant::now();
        let t = Token::new(Secret::new("x"), Some(300), now);
        assert_eq!(t.valid_until, now + Duration::from_secs(270));
        let t = Token::new(Secret::new("x"), None, now);
        assert_eq!(t.valid_until, now + Duration::from_secs(54));
        let t = Token::new(Secret::new("x"), Some(3600), now);
        assert_eq!(t.valid_until, now + Duration::from_secs(3570));
    }
}
