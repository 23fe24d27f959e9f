//! The CNCF distribution registry (Debian `docker-registry`, 2.8.2) on an
//! ephemeral loopback port in its own temporary directory: anonymous,
//! htpasswd, or token auth (with [`TokenIssuer`]), over plain HTTP or TLS
//! with a throwaway CA. Tags are pushed with plain HTTP requests (one config
//! blob per call, then one manifest PUT per tag on a keep-alive
//! connection); the access log is parsed so tests can count requests.
//!
//! ```ignore
//! let reg = RegistryServer::start(Auth::Anonymous);
//! reg.push_tags("demo/app", &["1.0.0", "1.1.0"]);
//! let host = reg.host(); // "127.0.0.1:PORT"
//! ```
//!
//! Pushes run on a thread of their own, so async tests may call them too.
//! 2.8.2 ignores `n` on `tags/list` (every tag, no `Link`); pagination is
//! tested through [`super::fault_proxy`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::process::{Guard, free_port, require, run};
use super::token::{ISSUER, IssuerOptions, SERVICE, TokenIssuer};

/// How clients authenticate.
#[derive(Clone, Debug)]
pub enum Auth {
    Anonymous,
    /// `auth: htpasswd`; `/v2/` answers 401 `WWW-Authenticate: Basic`.
    Htpasswd {
        username: String,
        password: String,
    },
    /// `auth: token` with a [`TokenIssuer`] started alongside.
    Token(IssuerOptions),
}

impl Auth {
    pub fn htpasswd(username: &str, password: &str) -> Auth {
        Auth::Htpasswd {
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }
}

/// One line of the registry's access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub status: u16,
}

impl Logged {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// A running registry; stopped and its directory removed on drop.
pub struct RegistryServer {
    guard: Guard,
    issuer: Option<TokenIssuer>,
    port: u16,
    auth: Auth,
    ca: Option<PathBuf>,
    /// Access-log lines of the start-up probe, not reported.
    startup_requests: usize,
    dir: tempfile::TempDir,
}

/// What one manifest push produced.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub tag: String,
    pub digest: String,
}

/// A multi-arch push: the index and its children in platform order.
#[derive(Clone, Debug)]
pub struct PushedIndex {
    pub digest: String,
    pub children: Vec<String>,
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

impl RegistryServer {
    /// A plain-HTTP registry with `auth`.
    pub fn start(auth: Auth) -> RegistryServer {
        Self::start_with(auth, false)
    }

    /// A registry serving HTTPS with a certificate from a fresh CA
    /// ([`RegistryServer::ca_file`]).
    pub fn start_tls(auth: Auth) -> RegistryServer {
        Self::start_with(auth, true)
    }

    /// A plain-HTTP registry serving an existing storage directory (the
    /// benchmark scans one seeded repository tree under several auth modes).
    pub fn start_on_storage(auth: Auth, storage: &Path) -> RegistryServer {
        Self::start_full(auth, false, Some(storage), "")
    }

    /// A plain-HTTP registry that POSTs its own notification envelopes
    /// (`notifications:` in its config) to `url`, with
    /// `Authorization: Bearer <token>`: real webhooks for the daemon.
    pub fn start_notifying(auth: Auth, url: &str, token: &str) -> RegistryServer {
        let notifications = format!(
            "notifications:\n  endpoints:\n    - name: crowsnest\n      url: {url}\n      headers: {{Authorization: [\"Bearer {token}\"]}}\n      timeout: 2s\n      threshold: 5\n      backoff: 1s\n"
        );
        Self::start_full(auth, false, None, &notifications)
    }

    fn start_with(auth: Auth, tls: bool) -> RegistryServer {
        Self::start_full(auth, tls, None, "")
    }

    fn start_full(auth: Auth, tls: bool, storage: Option<&Path>, extra: &str) -> RegistryServer {
        let binary = require("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("crowsnest-registry-")
            .tempdir()
            .expect("make a temp dir");
        let mut tail = String::new();
        let mut ca = None;
        if tls {
            let (ca_file, cert, key) = make_tls(dir.path());
            tail.push_str(&format!(
                "  tls: {{certificate: {}, key: {}}}\n",
                cert.display(),
                key.display()
            ));
            ca = Some(ca_file);
        }
        tail.push_str(extra);
        let mut issuer = None;
        match &auth {
            Auth::Anonymous => {}
            Auth::Htpasswd { username, password } => {
                let htpasswd = require("htpasswd", "apache2-utils");
                let file = dir.path().join("htpasswd");
                let line = run(Command::new(htpasswd)
                    .arg("-Bbn")
                    .arg(username)
                    .arg(password));
                std::fs::write(&file, line).expect("write htpasswd");
                tail.push_str(&format!(
                    "auth:\n  htpasswd: {{realm: test, path: {}}}\n",
                    file.display()
                ));
            }
            Auth::Token(options) => {
                let started = TokenIssuer::start(dir.path(), options.clone());
                tail.push_str(&format!(
                    "auth:\n  token: {{realm: \"{}\", service: {SERVICE}, issuer: {ISSUER}, rootcertbundle: {}}}\n",
                    started.realm(),
                    started.cert.display()
                ));
                issuer = Some(started);
            }
        }
        // free_port() can race with other tests binding ports: start on a
        // fresh port until the process that answers is this registry.
        for _ in 0..10 {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log: {{level: warn, accesslog: {{disabled: false}}}}\n\
                 storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}}}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: crowsnest-test\n{tail}",
                data = storage
                    .map_or_else(|| dir.path().join("data"), Path::to_path_buf)
                    .display()
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).expect("write registry config");
            let log = dir.path().join(format!("registry-{port}.log"));
            let mut command = Command::new(&binary);
            command.arg("serve").arg(&config_path);
            let mut guard = Guard::spawn("docker-registry", command, &log);
            let scheme = if tls { "https" } else { "http" };
            if !answers_as_registry(
                &mut guard,
                &format!("{scheme}://127.0.0.1:{port}"),
                ca.as_deref(),
            ) {
                continue;
            }
            let mut server = RegistryServer {
                guard,
                issuer,
                port,
                auth,
                ca,
                startup_requests: 0,
                dir,
            };
            server.startup_requests = parse_access_log(&server.guard.log_text()).len();
            return server;
        }
        panic!(
            "docker-registry did not start on any of 10 ports; see {}",
            dir.path().display()
        );
    }

    /// `127.0.0.1:PORT`, as image names and the daemon config spell it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` or `https://...`.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// The CA certificate (PEM) that signed the server certificate, with TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    pub fn issuer(&self) -> Option<&TokenIssuer> {
        self.issuer.as_ref()
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The temporary directory (config, logs, storage), for writing
    /// password files and configs next to the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The filesystem storage of `repository`.
    pub fn repository_dir(&self, repository: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/repositories")
            .join(repository)
    }

    /// The user name and password clients need, if any.
    pub fn credentials(&self) -> Option<(String, String)> {
        match &self.auth {
            Auth::Anonymous => None,
            Auth::Htpasswd { username, password } => Some((username.clone(), password.clone())),
            Auth::Token(options) => options.credentials.clone(),
        }
    }

    /// The daemon-config entry for this server: `insecure` unless TLS,
    /// its CA as `caFile`, and its credentials as `username` plus a
    /// `passwordFile` written next to the server.
    pub fn host_config(&self) -> crowsnest::config::HostConfig {
        let (username, password_file) = match self.credentials() {
            Some((user, password)) => {
                let file = self.dir.path().join("registry-password");
                std::fs::write(&file, format!("{password}\n")).expect("write the password file");
                (Some(user), Some(file))
            }
            None => (None, None),
        };
        crowsnest::config::HostConfig {
            host: self.host(),
            insecure: self.ca.is_none(),
            ca_file: self.ca.clone(),
            username,
            password_file,
        }
    }

    /// A `registries:` config with just this server.
    pub fn registries_config(&self) -> crowsnest::config::RegistriesConfig {
        crowsnest::config::RegistriesConfig {
            docker_config: None,
            hosts: vec![self.host_config()],
        }
    }

    /// Stops the server now (an unreachable registry).
    pub fn stop(&mut self) {
        self.guard.stop();
    }

    /// The server's log, for assertion messages.
    pub fn log_text(&self) -> String {
        self.guard.log_text()
    }

    /// Pushes one manifest per tag (distinct digests: the tag is an
    /// annotation) sharing one config blob for linux/amd64.
    pub fn push_tags(&self, repository: &str, tags: &[&str]) -> Vec<Pushed> {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        self.with_pusher(repository, move |pusher| {
            let config = pusher.blob(&platform_config("linux/amd64"));
            tags.iter()
                .map(|tag| Pushed {
                    tag: tag.clone(),
                    digest: pusher.manifest(tag, OCI_MANIFEST, &image_manifest(&config, tag)),
                })
                .collect()
        })
    }

    /// Pushes a cosign signature manifest under `tag` (cosign's
    /// `sha256-<hex>.sig`): one layer per `(payload, base64 signature)`,
    /// the payload as the layer blob and the signature in the
    /// `dev.cosignproject.cosign/signature` annotation, as cosign writes them.
    pub fn push_signatures(
        &self,
        repository: &str,
        tag: &str,
        layers: &[(Vec<u8>, String)],
    ) -> String {
        let layers: Vec<(Vec<u8>, serde_json::Value)> = layers
            .iter()
            .map(|(payload, signature)| {
                (
                    payload.clone(),
                    serde_json::json!({"dev.cosignproject.cosign/signature": signature}),
                )
            })
            .collect();
        self.push_signature_layers(repository, tag, &layers)
    }

    /// Pushes a cosign `.sig` manifest under `tag`: one simple-signing
    /// layer per (payload, annotations), as `cosign sign` writes them.
    pub fn push_signature_layers(
        &self,
        repository: &str,
        tag: &str,
        layers: &[(Vec<u8>, serde_json::Value)],
    ) -> String {
        let (tag, layers) = (tag.to_owned(), layers.to_vec());
        self.with_pusher(repository, move |pusher| {
            let config = pusher.blob(b"{}");
            let descriptors: Vec<serde_json::Value> = layers
                .iter()
                .map(|(payload, annotations)| {
                    let mut layer = pusher.blob(payload);
                    layer["mediaType"] = "application/vnd.dev.cosign.simplesigning.v1+json".into();
                    layer["annotations"] = annotations.clone();
                    layer
                })
                .collect();
            let manifest = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config,
                "layers": descriptors,
            }))
            .expect("serialize a manifest");
            pusher.manifest(&tag, OCI_MANIFEST, &manifest)
        })
    }

    /// Attaches a Sigstore bundle to `subject` as OCI 1.1 referrers do on
    /// a registry without the referrers API: the artifact manifest (with
    /// `subject`) by digest, and the image index of the subject's referrers
    /// under the fallback tag `sha256-<hex>`. Returns the artifact's digest.
    pub fn push_referrer_bundle(&self, repository: &str, subject: &str, bundle: &[u8]) -> String {
        let index = self.push_referrer_artifact(repository, subject, bundle);
        let digest = index["manifests"][0]["digest"]
            .as_str()
            .expect("digest")
            .to_owned();
        let fallback = subject.replace(':', "-");
        self.with_pusher(repository, move |pusher| {
            let body = serde_json::to_vec(&index).expect("serialize an index");
            pusher.manifest(&fallback, OCI_INDEX, &body);
        });
        digest
    }

    /// Pushes a Sigstore bundle as an OCI artifact whose `subject` is
    /// `subject` (by digest, no tag) and returns the image index a
    /// referrers API would answer for it.
    pub fn push_referrer_artifact(
        &self,
        repository: &str,
        subject: &str,
        bundle: &[u8],
    ) -> serde_json::Value {
        let (subject, bundle) = (subject.to_owned(), bundle.to_vec());
        self.with_pusher(repository, move |pusher| {
            let bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
            let mut config = pusher.blob(b"{}");
            config["mediaType"] = "application/vnd.oci.empty.v1+json".into();
            let mut layer = pusher.blob(&bundle);
            layer["mediaType"] = bundle_type.into();
            let subject_descriptor = serde_json::json!({
                "mediaType": OCI_MANIFEST,
                "digest": subject,
                "size": 0,
            });
            let artifact = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": bundle_type,
                "config": config,
                "layers": [layer],
                "subject": subject_descriptor,
            }))
            .expect("serialize a manifest");
            let digest = pusher.manifest(&sha256(&artifact), OCI_MANIFEST, &artifact);
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [{
                    "mediaType": OCI_MANIFEST,
                    "artifactType": bundle_type,
                    "digest": digest,
                    "size": artifact.len(),
                }],
            })
        })
    }

    /// Pushes a single-platform image (`os/arch[/variant]` in its config).
    pub fn push_image(&self, repository: &str, tag: &str, platform: &str) -> String {
        let (tag, platform) = (tag.to_owned(), platform.to_owned());
        self.with_pusher(repository, move |pusher| {
            let config = pusher.blob(&platform_config(&platform));
            pusher.manifest(&tag, OCI_MANIFEST, &image_manifest(&config, &tag))
        })
    }

    /// Pushes an OCI index under `tag` with one child manifest per platform.
    pub fn push_index(&self, repository: &str, tag: &str, platforms: &[&str]) -> PushedIndex {
        let tag = tag.to_owned();
        let platforms: Vec<String> = platforms.iter().map(|p| p.to_string()).collect();
        self.with_pusher(repository, move |pusher| {
            let mut children = Vec::new();
            let mut entries = Vec::new();
            for platform in &platforms {
                let config = pusher.blob(&platform_config(platform));
                let body = image_manifest(&config, &format!("{tag}-{platform}"));
                let digest = pusher.manifest(&sha256(&body), OCI_MANIFEST, &body);
                entries.push(serde_json::json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": body.len(),
                    "platform": platform_json(platform),
                }));
                children.push(digest);
            }
            let index = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": entries,
            }))
            .expect("serialize an index");
            PushedIndex {
                digest: pusher.manifest(&tag, OCI_INDEX, &index),
                children,
            }
        })
    }

    fn with_pusher<T: Send>(&self, repository: &str, work: impl FnOnce(&Pusher) -> T + Send) -> T {
        let authorization = match &self.auth {
            Auth::Anonymous => None,
            Auth::Htpasswd { username, password } => Some(format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("{username}:{password}")
                )
            )),
            Auth::Token(_) => Some(format!(
                "Bearer {}",
                self.issuer
                    .as_ref()
                    .expect("token auth has an issuer")
                    .mint(repository, &["pull", "push"])
            )),
        };
        with_pusher(
            &self.url(),
            self.ca.clone(),
            authorization,
            repository,
            work,
        )
    }

    /// Every request in the access log so far, once the log has settled
    /// (the registry writes a line just after answering).
    pub fn requests(&self) -> Vec<Logged> {
        let mut last = parse_access_log(&self.guard.log_text());
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            std::thread::sleep(Duration::from_millis(120));
            let now = parse_access_log(&self.guard.log_text());
            if now == last || Instant::now() > deadline {
                return now.into_iter().skip(self.startup_requests).collect();
            }
            last = now;
        }
    }

    /// How many requests the access log holds; pair with [`Self::requests_since`].
    pub fn request_count(&self) -> usize {
        self.requests().len()
    }

    /// The requests after the first `count`.
    pub fn requests_since(&self, count: usize) -> Vec<Logged> {
        self.requests().into_iter().skip(count).collect()
    }
}

/// Pushes `tags` to the anonymous plain-HTTP registry at `base`
/// (`http://127.0.0.1:PORT`), one manifest each sharing one config blob —
/// for servers this module did not start, such as the benchmark's.
pub fn push_tags_to(base: &str, repository: &str, tags: &[&str]) -> Vec<Pushed> {
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    with_pusher(base, None, None, repository, move |pusher| {
        let config = pusher.blob(&platform_config("linux/amd64"));
        tags.iter()
            .map(|tag| Pushed {
                tag: tag.clone(),
                digest: pusher.manifest(tag, OCI_MANIFEST, &image_manifest(&config, tag)),
            })
            .collect()
    })
}

/// Runs `work` with a keep-alive blocking client on a thread of its own
/// (so async tests may push too).
fn with_pusher<T: Send>(
    base: &str,
    ca: Option<PathBuf>,
    authorization: Option<String>,
    repository: &str,
    work: impl FnOnce(&Pusher) -> T + Send,
) -> T {
    let base = base.to_owned();
    let repository = repository.to_owned();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let mut builder = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(ca) = ca {
                    let pem = std::fs::read(ca).expect("read the test CA");
                    builder = builder.add_root_certificate(
                        reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"),
                    );
                }
                let pusher = Pusher {
                    client: builder.build().expect("build a blocking client"),
                    base,
                    repository,
                    authorization,
                };
                work(&pusher)
            })
            .join()
            .expect("the push thread panicked")
    })
}

/// Waits until `url` answers `/v2/` with the distribution API header
/// (`false` when the process exits, e.g. its port was taken, or another
/// server answers there).
fn answers_as_registry(guard: &mut Guard, url: &str, ca: Option<&Path>) -> bool {
    let probe = format!("{url}/v2/");
    let ca = ca.map(|c| std::fs::read(c).expect("read the test CA"));
    let deadline = Instant::now() + Duration::from_secs(20);
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut builder =
                    reqwest::blocking::Client::builder().timeout(Duration::from_secs(2));
                if let Some(pem) = &ca {
                    builder = builder.add_root_certificate(
                        reqwest::Certificate::from_pem(pem).expect("a PEM certificate"),
                    );
                }
                let client = builder.build().expect("build a blocking client");
                while Instant::now() < deadline {
                    if guard.exited().is_some() {
                        return false;
                    }
                    if let Ok(response) = client.get(&probe).send() {
                        return response
                            .headers()
                            .contains_key("Docker-Distribution-Api-Version");
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                panic!(
                    "docker-registry did not answer {probe}:\n{}",
                    guard.log_text()
                );
            })
            .join()
            .expect("the probe thread panicked")
    })
}

/// Parses combined-format access-log lines:
/// `127.0.0.1 - user [date] "GET /v2/ HTTP/1.1" 200 2 "" "agent"`.
pub fn parse_access_log(text: &str) -> Vec<Logged> {
    text.lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("] \"")?;
            let (request, rest) = rest.split_once("\" ")?;
            let mut parts = request.split(' ');
            let method = parts.next()?;
            let target = parts.next()?;
            if !parts.next()?.starts_with("HTTP/") {
                return None;
            }
            let status = rest.split(' ').next()?.parse().ok()?;
            Some(Logged {
                method: method.to_owned(),
                target: target.to_owned(),
                status,
            })
        })
        .collect()
}

struct Pusher {
    client: reqwest::blocking::Client,
    base: String,
    repository: String,
    authorization: Option<String>,
}

impl Pusher {
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
        let builder = self.client.request(method, url);
        match &self.authorization {
            Some(a) => builder.header("Authorization", a),
            None => builder,
        }
    }

    /// Uploads a blob (POST then PUT with the digest) and returns its descriptor.
    fn blob(&self, body: &[u8]) -> serde_json::Value {
        let digest = sha256(body);
        let started = self
            .request(
                reqwest::Method::POST,
                &format!("{}/v2/{}/blobs/uploads/", self.base, self.repository),
            )
            .send()
            .expect("start a blob upload");
        assert_eq!(
            started.status(),
            202,
            "blob upload start: {:?}",
            started.text()
        );
        let location = started
            .headers()
            .get("Location")
            .and_then(|l| l.to_str().ok())
            .expect("upload Location")
            .to_owned();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let done = self
            .request(
                reqwest::Method::PUT,
                &format!("{location}{separator}digest={digest}"),
            )
            .header("Content-Type", "application/octet-stream")
            .body(body.to_vec())
            .send()
            .expect("finish a blob upload");
        assert_eq!(done.status(), 201, "blob upload: {:?}", done.text());
        serde_json::json!({"mediaType": OCI_CONFIG, "digest": digest, "size": body.len()})
    }

    /// PUTs a manifest under `reference` (tag or digest); returns its digest.
    fn manifest(&self, reference: &str, media_type: &str, body: &[u8]) -> String {
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("{}/v2/{}/manifests/{reference}", self.base, self.repository),
            )
            .header("Content-Type", media_type)
            .body(body.to_vec())
            .send()
            .expect("put a manifest");
        assert_eq!(
            response.status(),
            201,
            "manifest put {reference}: {:?}",
            response.text()
        );
        let digest = sha256(body);
        if let Some(sent) = response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|d| d.to_str().ok())
        {
            assert_eq!(sent, digest, "the registry's digest of the manifest");
        }
        digest
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn platform_json(platform: &str) -> serde_json::Value {
    let parts: Vec<&str> = platform.split('/').collect();
    let mut value = serde_json::json!({"os": parts[0], "architecture": parts[1]});
    if let Some(variant) = parts.get(2) {
        value["variant"] = serde_json::json!(variant);
    }
    value
}

/// An image config blob for `os/arch[/variant]`.
fn platform_config(platform: &str) -> Vec<u8> {
    let mut config = platform_json(platform);
    config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": []});
    serde_json::to_vec(&config).expect("serialize a config")
}

fn image_manifest(config: &serde_json::Value, tag: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [],
        "annotations": {"org.example.crowsnest-test.tag": tag},
    }))
    .expect("serialize a manifest")
}

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it.
fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = require("openssl", "openssl");
    let ca_key = dir.join("ca-key.pem");
    let ca = dir.join("ca.pem");
    let key = dir.join("server-key.pem");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.pem");
    let ext = dir.join("server.ext");
    run(Command::new(&openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=crowsnest test CA"])
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca));
    run(Command::new(&openssl)
        .args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write the extensions file");
    run(Command::new(&openssl)
        .args(["x509", "-req", "-days", "30", "-CAcreateserial"])
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&cert));
    (ca, cert, key)
}
