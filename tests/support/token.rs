//! A small token issuer for the registry's `auth: token` mode (the Docker
//! Hub / GHCR flow). It signs ES256 JWTs with a test certificate made by
//! `openssl`; the CNCF registry validates them itself against that
//! certificate, so a token this issuer gets wrong is refused by the real
//! server, not by a fake.
//!
//! `GET /token?service=..&scope=repository:NAME:pull` answers
//! `{"token", "access_token", "expires_in"}`; with credentials configured it
//! wants them as HTTP Basic and answers 401 otherwise. `POST /token` takes
//! the OAuth2 `refresh_token` grant (docker's `identitytoken`). Every
//! request is recorded so tests can count them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::{Signature, SigningKey, signature::Signer};
use p256::pkcs8::DecodePrivateKey;

use super::http1::{Reply, Request, Response, Server};
use super::process::{require, run};

pub const SERVICE: &str = "test-registry";
pub const ISSUER: &str = "test-issuer";

/// How the issuer behaves.
#[derive(Clone, Debug)]
pub struct IssuerOptions {
    /// Basic credentials the issuer demands; `None` grants anyone (a public registry).
    pub credentials: Option<(String, String)>,
    /// An OAuth2 refresh token accepted by `POST /token`.
    pub refresh_token: Option<String>,
    /// Lifetime of each token (`expires_in` and the JWT's `exp`).
    pub lifetime: Duration,
}

impl Default for IssuerOptions {
    fn default() -> Self {
        Self {
            credentials: None,
            refresh_token: None,
            lifetime: Duration::from_secs(300),
        }
    }
}

/// One request the issuer saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub method: String,
    pub scopes: Vec<String>,
    pub service: Option<String>,
    /// The Basic user name or `refresh_token` grant presented, if any.
    pub presented: Option<String>,
    pub granted: bool,
}

struct State {
    key: SigningKey,
    x5c: String,
    options: IssuerOptions,
    log: Mutex<Vec<TokenRequest>>,
}

/// A running issuer; its certificate is what the registry trusts.
pub struct TokenIssuer {
    server: Server,
    state: Arc<State>,
    /// The PEM certificate the registry's `rootcertbundle` points at.
    pub cert: PathBuf,
}

impl TokenIssuer {
    /// Makes a P-256 key and self-signed certificate in `dir` and starts serving.
    pub fn start(dir: &Path, options: IssuerOptions) -> TokenIssuer {
        let openssl = require("openssl", "openssl");
        let key_path = dir.join("issuer-key.pem");
        let cert = dir.join("issuer-cert.pem");
        run(Command::new(openssl)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:P-256")
            .args(["-nodes", "-days", "30", "-subj"])
            .arg(format!("/CN={ISSUER}"))
            .arg("-keyout")
            .arg(&key_path)
            .arg("-out")
            .arg(&cert));
        let key_pem = std::fs::read_to_string(&key_path).expect("read the issuer key");
        let key = SigningKey::from_pkcs8_pem(&key_pem).expect("openssl wrote a PKCS#8 P-256 key");
        let cert_pem = std::fs::read_to_string(&cert).expect("read the issuer certificate");
        let x5c: String = cert_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let state = Arc::new(State {
            key,
            x5c,
            options,
            log: Mutex::new(Vec::new()),
        });
        let handling = state.clone();
        let server = Server::start(Arc::new(move |request: &Request| {
            Reply::Send(handle(&handling, request))
        }));
        TokenIssuer {
            server,
            state,
            cert,
        }
    }

    /// `http://127.0.0.1:PORT/token`, the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.server.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.log.lock().expect("issuer log").clone()
    }

    /// A token for `repository` with `actions`, minted in process (for pushes
    /// by the test support; not recorded as a request).
    pub fn mint(&self, repository: &str, actions: &[&str]) -> String {
        sign(
            &self.state,
            "test-support",
            &[(
                repository.to_owned(),
                actions.iter().map(|a| a.to_string()).collect(),
            )],
        )
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn sign(state: &State, subject: &str, access: &[(String, Vec<String>)]) -> String {
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [state.x5c]});
    let issued = now();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": issued + state.options.lifetime.as_secs(),
        "nbf": issued.saturating_sub(5),
        "iat": issued,
        "jti": format!("{issued}-{}", rand_suffix()),
        "access": access.iter().map(|(name, actions)| serde_json::json!({
            "type": "repository", "name": name, "actions": actions
        })).collect::<Vec<_>>(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature: Signature = state.key.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// `repository:NAME:pull,push` -> (NAME, [pull, push]).
fn parse_scope(scope: &str) -> Option<(String, Vec<String>)> {
    let rest = scope.strip_prefix("repository:")?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((
        name.to_owned(),
        actions.split(',').map(str::to_owned).collect(),
    ))
}

fn basic_user(request: &Request) -> Option<(String, String)> {
    let value = request.header("Authorization")?.strip_prefix("Basic ")?;
    let decoded = STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

fn handle(state: &State, request: &Request) -> Response {
    if request.path() != "/token" {
        return Response::new(404);
    }
    let (scopes, service, presented, allowed) = match request.method.as_str() {
        "GET" => {
            let query = request.target.split_once('?').map_or("", |(_, q)| q);
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let scopes: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k == "scope")
                .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
                .collect();
            let service = pairs
                .iter()
                .find(|(k, _)| k == "service")
                .map(|p| p.1.clone());
            let basic = basic_user(request);
            let allowed = match &state.options.credentials {
                None => true,
                Some(expected) => basic.as_ref() == Some(expected),
            };
            (scopes, service, basic.map(|b| b.0), allowed)
        }
        "POST" => {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|p| p.1.clone());
            let scopes = get("scope")
                .map(|s| s.split(' ').map(str::to_owned).collect())
                .unwrap_or_default();
            let allowed = get("grant_type").as_deref() == Some("refresh_token")
                && state.options.refresh_token.is_some()
                && get("refresh_token") == state.options.refresh_token;
            (
                scopes,
                get("service"),
                get("grant_type").map(|g| format!("grant_type={g}")),
                allowed,
            )
        }
        _ => return Response::new(405),
    };
    let correct_service = service.as_deref() == Some(SERVICE);
    let granted = allowed && correct_service;
    state.log.lock().expect("issuer log").push(TokenRequest {
        method: request.method.clone(),
        scopes: scopes.clone(),
        service: service.clone(),
        presented: presented.clone(),
        granted,
    });
    if !correct_service {
        return Response::json(
            400,
            &serde_json::json!({"errors": [{"code": "INVALID_SERVICE", "message": "unknown service"}]}),
        );
    }
    if !allowed {
        return Response::json(
            401,
            &serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]}),
        );
    }
    let access: Vec<(String, Vec<String>)> = scopes.iter().filter_map(|s| parse_scope(s)).collect();
    let token = sign(state, presented.as_deref().unwrap_or("anonymous"), &access);
    let lifetime = state.options.lifetime.as_secs();
    Response::json(
        200,
        &serde_json::json!({"token": token, "access_token": token, "expires_in": lifetime}),
    )
}
