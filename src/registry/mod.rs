//! The OCI distribution client: every tag of a repository (all pages),
//! tag digests and platforms, with every auth scheme registries use, and
//! as few requests as the protocol allows.
//!
//! # Why not `oci-client`
//! The project prefers well-kept crates and writes by hand only what no
//! crate does well. `oci-client` 0.18 was read and set aside for this
//! module, because crowsnest's promise is to be the most economical client
//! a registry sees, and its design works against that:
//! - `list_tags` returns the body only, so the `Link` header that carries
//!   the next page is lost; pagination could only guess with `n`/`last`.
//! - Before every token request it sends an extra `GET /v2/` to discover the
//!   challenge, one more request per repository and token lifetime.
//! - It has no answer to 429 (`Retry-After`, a lower rate), no retries with
//!   backoff, no per-host concurrency limit, no cap on response sizes, and
//!   no hook to count requests, tokens or bytes.
//! - It pulls in reqwest 0.13 next to the 0.12 the rest of crowsnest uses.
//!
//! What this module writes by hand is the distribution protocol's small
//! request/response layer on `reqwest`; parsing of credentials stores is
//! `docker_credential`'s, TLS is `rustls` with the system roots.
//!
//! # Economy
//! - A tag list costs exactly its pages. No `/v2/` ping: the first request
//!   goes straight to `tags/list`, and a 401 there teaches the host's
//!   scheme once per process (while a host is new, one request finds out
//!   and concurrent ones wait for it, so they do not each collect a 401). The first page is asked without `n`, so
//!   registries that return everything (distribution, Docker Hub) answer in
//!   one page; after that `Link: rel="next"` is followed as given.
//! - Bearer tokens are cached per host and `repository:NAME:pull` until just
//!   before they expire: one token request per repository per lifetime.
//!   Concurrent requests for one repository wait for one token request.
//! - Concurrent `list_tags` calls for one repository share one scan.
//! - `inspect` sends one HEAD (`Docker-Content-Digest`) when only the digest
//!   is wanted; with a platform it GETs a tag's manifest once, caches what it
//!   learnt by digest (and the config blobs of single-platform images), and
//!   afterwards only HEADs to see whether the tag moved.
//!
//! # Credentials
//! Only to the host they belong to and to the token service that host's
//! challenge names; never across a redirect to another origin, and over
//! plain http only to hosts configured `insecure: true`. They live in
//! [`Secret`]s and appear in no log line or error.

mod auth;
mod headers;
mod manifest;
mod metrics;
mod rate;
mod transport;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use reqwest::header;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tracing::{debug, info, warn};
use url::Url;

pub use metrics::{RegistryMetrics, RequestLabels, Tally};

use crate::config::{HostConfig, RegistriesConfig};
use crate::model::{DigestReflection, ImageName, Platform, Secret};
use auth::{Credential, Credentials, Token, TokenResponse};
use headers::{Challenge, next_link, parse_challenge};
use transport::{Call, Exchange, Fetched, Host, Kind};

/// A registry failure. Each message names the registry host and
/// repository and says what to do; none contains a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "{host}/{repository}: registry unreachable: {reason}; check the host and port, and that the registry is up"
    )]
    Unreachable {
        host: String,
        repository: String,
        reason: String,
    },
    #[error(
        "{host}/{repository}: TLS failed: {reason}; for a private CA set caFile for host {host}, for a plain-http registry set insecure: true"
    )]
    Tls {
        host: String,
        repository: String,
        reason: String,
    },
    #[error("{host}/{repository}: authentication failed: {detail}")]
    AuthFailed {
        host: String,
        repository: String,
        detail: String,
    },
    #[error(
        "{host}/{repository}: the registry requires authentication and no credentials are configured for {host}; set username and passwordFile for it under registries.hosts, or registries.dockerConfig"
    )]
    AuthRequired { host: String, repository: String },
    #[error(
        "{host}/{repository}: access denied (HTTP {status}); the credentials were accepted but may not pull this repository"
    )]
    Denied {
        host: String,
        repository: String,
        status: u16,
    },
    #[error("{host}/{repository}: {what} not found; check the image name")]
    NotFound {
        host: String,
        repository: String,
        what: String,
    },
    #[error("{host}/{repository}: {reference:?} is not a valid tag")]
    InvalidTag {
        host: String,
        repository: String,
        reference: String,
    },
    #[error(
        "{host}/{repository}: rate limited by the registry ({detail}); crowsnest slowed down and tries again on the next scan"
    )]
    RateLimited {
        host: String,
        repository: String,
        detail: String,
    },
    #[error(
        "{host}/{repository}: the registry answered HTTP {status} {attempts} times; it is failing, try again later"
    )]
    Server {
        host: String,
        repository: String,
        status: u16,
        attempts: u32,
    },
    #[error(
        "{host}/{repository}: no complete answer within {after:?}, {attempts} attempts; the registry or the network is too slow"
    )]
    Timeout {
        host: String,
        repository: String,
        after: Duration,
        attempts: u32,
    },
    #[error(
        "{host}/{repository}: a {what} response is larger than {limit} bytes; crowsnest stopped reading it"
    )]
    TooLarge {
        host: String,
        repository: String,
        what: &'static str,
        limit: usize,
    },
    #[error("{host}/{repository}: unexpected registry response: {detail}")]
    Protocol {
        host: String,
        repository: String,
        detail: String,
    },
    #[error("{host}: cannot use the configured credentials: {detail}")]
    Credentials { host: String, detail: String },
    #[error("registries: {detail}")]
    Setup { detail: String },
}

impl RegistryError {
    /// A short label for `errors_total{kind=...}`.
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::Unreachable { .. } => "unreachable",
            RegistryError::Tls { .. } => "tls",
            RegistryError::AuthFailed { .. } => "auth_failed",
            RegistryError::AuthRequired { .. } => "auth_required",
            RegistryError::Denied { .. } => "denied",
            RegistryError::NotFound { .. } => "not_found",
            RegistryError::InvalidTag { .. } => "invalid_tag",
            RegistryError::RateLimited { .. } => "rate_limited",
            RegistryError::Server { .. } => "server",
            RegistryError::Timeout { .. } => "timeout",
            RegistryError::TooLarge { .. } => "too_large",
            RegistryError::Protocol { .. } => "protocol",
            RegistryError::Credentials { .. } => "credentials",
            RegistryError::Setup { .. } => "setup",
        }
    }
}

/// Limits and timings; the defaults suit public registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Requests in flight to one host at a time.
    pub per_host_concurrency: usize,
    /// Whole request, body included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after 429, 5xx, timeouts and broken connections.
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A longer `Retry-After` is not waited out: the scan fails fast.
    pub max_retry_after: Duration,
    /// Lowest rate (requests per second) the adaptive limit goes down to.
    pub min_rate: f64,
    pub max_tags_page_bytes: usize,
    pub max_manifest_bytes: usize,
    /// Token responses and config blobs.
    pub max_small_body_bytes: usize,
    pub max_pages: usize,
    pub user_agent: String,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            per_host_concurrency: 8,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            min_rate: 0.2,
            max_tags_page_bytes: 32 << 20,
            max_manifest_bytes: 4 << 20,
            max_small_body_bytes: 1 << 20,
            max_pages: 10_000,
            user_agent: concat!("crowsnest/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// What [`Registry::inspect`] learnt about a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// The manifest digest the tag points at (the index digest for a
    /// multi-arch image), as `docker pull` resolves it.
    pub digest: String,
    pub media_type: Option<String>,
    /// The platforms the tag provides; empty when not inspected (no
    /// platform was asked for).
    pub platforms: Vec<Platform>,
    /// Whether the tag provides the platform asked for (true when none was).
    pub provides_platform: bool,
}

/// What a manifest digest is known to provide.
struct ManifestFacts {
    media_type: String,
    platforms: Vec<Platform>,
}

type ScanResult = Result<Arc<Vec<String>>, RegistryError>;
/// A scan in flight, with an id so the waiters of a finished scan never
/// remove a newer one.
type RunningScan = (u64, Shared<BoxFuture<'static, ScanResult>>);

/// Caches are cleared when they grow past this many entries.
const CACHE_LIMIT: usize = 100_000;

/// The registry client; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    config: RegistriesConfig,
    options: RegistryOptions,
    metrics: RegistryMetrics,
    default_client: reqwest::Client,
    /// Clients for hosts with a `caFile`.
    ca_clients: HashMap<String, reqwest::Client>,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    manifests: Mutex<HashMap<String, Arc<ManifestFacts>>>,
    configs: Mutex<HashMap<String, Platform>>,
    tag_digests: Mutex<HashMap<(String, String), String>>,
    scans: Mutex<HashMap<String, RunningScan>>,
    next_scan: std::sync::atomic::AtomicU64,
    /// Hosts a Flux `ImageRepository` marks `insecure: true`.
    plain_http: Mutex<HashSet<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every value behind these locks stays consistent between statements,
    // so a panic elsewhere does not poison the client.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// A client for the configured hosts (and any other, over https).
    /// Reads each host's `caFile` now; credentials are read on first use.
    pub fn new(config: &RegistriesConfig) -> Result<Registry, RegistryError> {
        Self::with_options(config, RegistryOptions::default())
    }

    pub fn with_options(
        config: &RegistriesConfig,
        options: RegistryOptions,
    ) -> Result<Registry, RegistryError> {
        let builder = || {
            reqwest::Client::builder()
                .use_rustls_tls()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(options.connect_timeout)
                .pool_max_idle_per_host(options.per_host_concurrency.max(1))
                .user_agent(options.user_agent.clone())
        };
        let build = |b: reqwest::ClientBuilder, what: &str| {
            b.build().map_err(|e| RegistryError::Setup {
                detail: format!("cannot build the HTTP client{what}: {e}"),
            })
        };
        let default_client = build(builder(), "")?;
        let mut ca_clients = HashMap::new();
        for host in &config.hosts {
            let Some(ca_file) = &host.ca_file else {
                continue;
            };
            let pem = std::fs::read(ca_file).map_err(|e| RegistryError::Setup {
                detail: format!(
                    "cannot read caFile {} of registry host {}: {e}",
                    ca_file.display(),
                    host.host
                ),
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| RegistryError::Setup {
                    detail: format!(
                        "caFile {} of registry host {} holds no PEM certificate",
                        ca_file.display(),
                        host.host
                    ),
                })?;
            let with_ca = certificates
                .into_iter()
                .fold(builder(), |b, c| b.add_root_certificate(c));
            ca_clients.insert(
                host.host.clone(),
                build(with_ca, &format!(" for {}", host.host))?,
            );
        }
        Ok(Registry {
            inner: Arc::new(Inner {
                config: config.clone(),
                options,
                metrics: RegistryMetrics::default(),
                default_client,
                ca_clients,
                hosts: Mutex::new(HashMap::new()),
                manifests: Mutex::new(HashMap::new()),
                configs: Mutex::new(HashMap::new()),
                tag_digests: Mutex::new(HashMap::new()),
                scans: Mutex::new(HashMap::new()),
                next_scan: std::sync::atomic::AtomicU64::new(0),
                plain_http: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The client's counters (shared by every clone).
    pub fn metrics(&self) -> &RegistryMetrics {
        &self.inner.metrics
    }

    /// Registers the registry metrics into the registry the HTTP module serves.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.metrics.register(registry);
    }

    /// Every tag of the repository, in the registry's order, following every
    /// page. Concurrent calls for one repository share one scan.
    pub async fn list_tags(&self, image: &ImageName) -> Result<Vec<String>, RegistryError> {
        let key = image.canonical();
        let (id, scan) = {
            let mut scans = lock(&self.inner.scans);
            match scans.get(&key) {
                Some(running) => running.clone(),
                None => {
                    let id = self
                        .inner
                        .next_scan
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let this = self.clone();
                    let image = image.clone();
                    let scan = async move { this.scan(&image).await.map(Arc::new) }
                        .boxed()
                        .shared();
                    scans.insert(key.clone(), (id, scan.clone()));
                    (id, scan)
                }
            }
        };
        let result = scan.await;
        {
            let mut scans = lock(&self.inner.scans);
            if scans.get(&key).is_some_and(|(running, _)| *running == id) {
                scans.remove(&key);
            }
        }
        result.map(|tags| tags.as_ref().clone())
    }

    /// The digest of `tag` (the index digest for a multi-arch image) and,
    /// with `platform`, whether the tag provides it.
    pub async fn inspect(
        &self,
        image: &ImageName,
        tag: &str,
        platform: Option<&Platform>,
    ) -> Result<TagInfo, RegistryError> {
        let host = self.host(&image.registry)?;
        let repository = image.repository.as_str();
        if !valid_tag(tag) {
            return Err(RegistryError::InvalidTag {
                host: host.name.clone(),
                repository: repository.to_owned(),
                reference: tag.to_owned(),
            });
        }
        let key = (image.canonical(), tag.to_owned());
        let seen_before = lock(&self.inner.tag_digests).contains_key(&key);
        let mut head_digest = None;
        if platform.is_none() || seen_before {
            let url = host.url(&format!("/v2/{repository}/manifests/{tag}"))?;
            let fetched = self
                .request(&host, repository, Method::HEAD, url, Kind::Manifest)
                .await?;
            self.expect_ok(&host, repository, &fetched, || format!("tag {tag}"))?;
            head_digest = fetched
                .header(header::HeaderName::from_static("docker-content-digest"))
                .map(|d| checked_digest(&host, repository, d))
                .transpose()?;
            if let Some(digest) = &head_digest {
                self.remember_tag(key.clone(), digest);
                let facts = lock(&self.inner.manifests).get(digest).cloned();
                match (platform, facts) {
                    (None, facts) => {
                        return Ok(TagInfo {
                            digest: digest.clone(),
                            media_type: fetched
                                .header(header::CONTENT_TYPE)
                                .map(str::to_owned)
                                .or_else(|| facts.as_ref().map(|f| f.media_type.clone())),
                            platforms: facts.map(|f| f.platforms.clone()).unwrap_or_default(),
                            provides_platform: true,
                        });
                    }
                    (Some(wanted), Some(facts)) => {
                        return Ok(info(digest.clone(), &facts, Some(wanted)));
                    }
                    (Some(_), None) => {}
                }
            }
        }
        // A digest is immutable: fetch by it when the HEAD gave one.
        let reference = head_digest.as_deref().unwrap_or(tag);
        let url = host.url(&format!("/v2/{repository}/manifests/{reference}"))?;
        let fetched = self
            .request(&host, repository, Method::GET, url, Kind::Manifest)
            .await?;
        self.expect_ok(&host, repository, &fetched, || format!("tag {tag}"))?;
        let digest = self.manifest_digest(&host, repository, &fetched, head_digest.as_deref())?;
        self.remember_tag(key, &digest);
        let parsed = manifest::parse(&fetched.body, fetched.header(header::CONTENT_TYPE)).map_err(
            |detail| protocol(&host, repository, format!("manifest of {tag}: {detail}")),
        )?;
        let facts = match parsed {
            manifest::Parsed::Index {
                media_type,
                platforms,
            } => ManifestFacts {
                media_type,
                platforms,
            },
            manifest::Parsed::Image { media_type, config } => {
                if platform.is_none() {
                    // The platform is in the config blob; not worth a request now.
                    return Ok(TagInfo {
                        digest,
                        media_type: Some(media_type),
                        platforms: Vec::new(),
                        provides_platform: true,
                    });
                }
                ManifestFacts {
                    media_type,
                    platforms: vec![self.config_platform(&host, repository, &config).await?],
                }
            }
            manifest::Parsed::Schema1 { platform } => ManifestFacts {
                media_type: "application/vnd.docker.distribution.manifest.v1+json".into(),
                platforms: vec![platform],
            },
        };
        let facts = Arc::new(facts);
        {
            let mut manifests = lock(&self.inner.manifests);
            if manifests.len() >= CACHE_LIMIT {
                manifests.clear();
            }
            manifests.insert(digest.clone(), facts.clone());
        }
        Ok(info(digest, &facts, platform))
    }

    /// The digest to write for `tag` under `reflection`: `None` for
    /// `Never` (no request), `known` for `IfNotPresent` when the caller
    /// already has one for this tag (no request), else a HEAD.
    pub async fn digest(
        &self,
        image: &ImageName,
        tag: &str,
        reflection: DigestReflection,
        known: Option<&str>,
    ) -> Result<Option<String>, RegistryError> {
        match (reflection, known) {
            (DigestReflection::Never, _) => Ok(None),
            (DigestReflection::IfNotPresent, Some(known)) => Ok(Some(known.to_owned())),
            _ => Ok(Some(self.inspect(image, tag, None).await?.digest)),
        }
    }

    /// The manifest `reference` (a tag or a digest) names, with its digest
    /// (the bytes' sha256, checked against what the registry says);
    /// `None` when the registry has no such manifest (404). Signature
    /// verification reads `sha256-<hex>.sig` manifests through this.
    pub async fn manifest(
        &self,
        image: &ImageName,
        reference: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let host = self.host(&image.registry)?;
        let repository = image.repository.as_str();
        let url = host.url(&format!("/v2/{repository}/manifests/{reference}"))?;
        let fetched = self
            .request(&host, repository, Method::GET, url, Kind::Manifest)
            .await?;
        if fetched.status.as_u16() == 404 {
            return Ok(None);
        }
        self.expect_ok(&host, repository, &fetched, || {
            format!("manifest {reference}")
        })?;
        let expected = reference.starts_with("sha256:").then_some(reference);
        let digest = self.manifest_digest(&host, repository, &fetched, expected)?;
        Ok(Some(FetchedManifest {
            digest,
            media_type: fetched.header(header::CONTENT_TYPE).map(str::to_owned),
            body: fetched.body.to_vec(),
        }))
    }

    /// The OCI 1.1 referrers of `digest` with `artifact_type` (the image
    /// index the referrers API answers), or `None` when the registry has
    /// no referrers API (404 for the route, as registries before OCI 1.1
    /// answer; one that has it answers an empty index for a digest without
    /// referrers).
    pub async fn referrers(
        &self,
        image: &ImageName,
        digest: &str,
        artifact_type: &str,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let host = self.host(&image.registry)?;
        let repository = image.repository.as_str();
        let mut url = host.url(&format!("/v2/{repository}/referrers/{digest}"))?;
        url.query_pairs_mut()
            .append_pair("artifactType", artifact_type);
        let fetched = self
            .request(&host, repository, Method::GET, url, Kind::Referrers)
            .await?;
        if fetched.status.as_u16() == 404 {
            return Ok(None);
        }
        self.expect_ok(&host, repository, &fetched, || {
            format!("referrers of {digest}")
        })?;
        Ok(Some(fetched.body.to_vec()))
    }

    /// A blob's bytes, checked against its sha256 digest.
    pub async fn blob(&self, image: &ImageName, digest: &str) -> Result<Vec<u8>, RegistryError> {
        use sha2::Digest as _;
        let host = self.host(&image.registry)?;
        let repository = image.repository.as_str();
        let url = host.url(&format!("/v2/{repository}/blobs/{digest}"))?;
        let fetched = self
            .request(&host, repository, Method::GET, url, Kind::Blob)
            .await?;
        self.expect_ok(&host, repository, &fetched, || format!("blob {digest}"))?;
        let actual = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(&fetched.body))
        );
        if actual != digest {
            return Err(protocol(
                &host,
                repository,
                format!("blob {digest} has the bytes of {actual}"),
            ));
        }
        Ok(fetched.body.to_vec())
    }

    /// Talks plain http to `host` (`host[:port]` as image names spell it)
    /// from now on, as `insecure: true` in its config would: what a Flux
    /// `ImageRepository` with `insecure: true` asks for.
    pub fn allow_plain_http(&self, host: &str) {
        if self.host_config(host).is_some_and(|c| c.insecure) {
            return;
        }
        if lock(&self.inner.plain_http).insert(host.to_owned()) {
            tracing::info!(
                host,
                "plain http for this registry (insecure: true on a Flux ImageRepository)"
            );
            lock(&self.inner.hosts).remove(host);
        }
    }

    fn host(&self, name: &str) -> Result<Arc<Host>, RegistryError> {
        let mut hosts = lock(&self.inner.hosts);
        if let Some(host) = hosts.get(name) {
            return Ok(host.clone());
        }
        let mut config = self.host_config(name).cloned();
        if lock(&self.inner.plain_http).contains(name) {
            let mut plain = config.unwrap_or_else(|| HostConfig {
                host: name.to_owned(),
                ..HostConfig::default()
            });
            plain.insecure = true;
            config = Some(plain);
        }
        let client = config
            .as_ref()
            .and_then(|c| self.inner.ca_clients.get(&c.host))
            .unwrap_or(&self.inner.default_client)
            .clone();
        let host = Arc::new(Host::new(name, config, client, &self.inner.options)?);
        hosts.insert(name.to_owned(), host.clone());
        Ok(host)
    }

    fn host_config(&self, name: &str) -> Option<&HostConfig> {
        let config = &self.inner.config;
        config.host(name).or_else(|| {
            (name == ImageName::DOCKER_HUB)
                .then(|| {
                    ["index.docker.io", "registry-1.docker.io"]
                        .into_iter()
                        .find_map(|alias| config.host(alias))
                })
                .flatten()
        })
    }

    async fn scan(&self, image: &ImageName) -> Result<Vec<String>, RegistryError> {
        let host = self.host(&image.registry)?;
        let repository = image.repository.as_str();
        let started = Instant::now();
        let mut url = host.url(&format!("/v2/{repository}/tags/list"))?;
        let mut tags = Vec::new();
        let mut seen = HashSet::new();
        let mut visited = HashSet::new();
        let mut pages = 0;
        let mut skipped = 0usize;
        loop {
            pages += 1;
            if pages > self.inner.options.max_pages {
                return Err(protocol(
                    &host,
                    repository,
                    format!("more than {} pages of tags", self.inner.options.max_pages),
                ));
            }
            let fetched = self
                .request(&host, repository, Method::GET, url.clone(), Kind::Tags)
                .await?;
            self.expect_ok(&host, repository, &fetched, || "repository".to_owned())?;
            let page: TagsPage = serde_json::from_slice(&fetched.body)
                .map_err(|e| protocol(&host, repository, format!("tags/list is not JSON: {e}")))?;
            let before = tags.len();
            for tag in page.tags.unwrap_or_default() {
                // A tag outside the OCI grammar (control characters, a
                // newline that would forge a commit trailer, 10,000
                // characters) is one no registry should list; it is never
                // offered to a policy, so it can never be written.
                if !valid_tag(&tag) {
                    skipped += 1;
                    if skipped == 1 {
                        warn!(image = %image, host = %host.name, tag = %preview(&tag),
                            "the registry listed an invalid tag; ignoring it (and any others)");
                    }
                    continue;
                }
                if seen.insert(tag.clone()) {
                    tags.push(tag);
                }
            }
            let next = match fetched.header(header::LINK) {
                Some(link) => next_link(link, &fetched.url)
                    .map_err(|detail| protocol(&host, repository, detail))?,
                None => None,
            };
            let Some(next) = next else { break };
            if next.origin() != host.base.origin() {
                return Err(protocol(
                    &host,
                    repository,
                    format!("the next page is on another host ({next}); not following it"),
                ));
            }
            if tags.len() == before || !visited.insert(next.to_string()) {
                return Err(protocol(
                    &host,
                    repository,
                    format!("pagination does not advance (page {pages} links to {next})"),
                ));
            }
            url = next;
        }
        if skipped > 0 {
            warn!(image = %image, host = %host.name, skipped, "invalid tags ignored");
        }
        info!(image = %image, host = %host.name, tags = tags.len(), pages,
            elapsed_ms = started.elapsed().as_millis() as u64, "listed tags");
        Ok(tags)
    }

    /// One call on the wire (retries included), recorded in the metrics
    /// whatever its outcome.
    async fn send(&self, host: &Host, call: &Call<'_>) -> Result<Fetched, RegistryError> {
        let mut exchange = Exchange::default();
        let result = host.fetch(&self.inner.options, call, &mut exchange).await;
        self.inner.metrics.record(
            &host.name,
            call.kind.label(),
            &exchange.responses,
            &exchange.retries,
            exchange.bytes,
            exchange.rate_limit,
        );
        result
    }

    /// A request with the host's auth: sends what the host is known to
    /// want, learns from a 401, and retries once with fresh credentials.
    async fn request(
        &self,
        host: &Host,
        repository: &str,
        method: Method,
        url: Url,
        kind: Kind,
    ) -> Result<Fetched, RegistryError> {
        let scope = format!("repository:{repository}:pull");
        let accept = match kind {
            Kind::Manifest => Some(manifest::ACCEPT),
            Kind::Referrers => Some("application/vnd.oci.image.index.v1+json"),
            Kind::Tags => Some("application/json"),
            Kind::Blob | Kind::Token => None,
        };
        let mut second = false;
        loop {
            let gate = host.auth.gate().await;
            let authorization = self.authorization(host, repository, &scope).await?;
            let sent = authorization.is_some();
            let call = Call {
                method: method.clone(),
                url: url.clone(),
                kind,
                accept,
                authorization,
                form: None,
                repository,
            };
            let fetched = self.send(host, &call).await?;
            if fetched.status != StatusCode::UNAUTHORIZED {
                host.auth.settle();
                return Ok(fetched);
            }
            let Some(challenge) = fetched
                .header(header::WWW_AUTHENTICATE)
                .and_then(parse_challenge)
            else {
                return Err(protocol(
                    host,
                    repository,
                    "HTTP 401 without a Basic or Bearer challenge".into(),
                ));
            };
            debug!(host = %host.name, repository, ?challenge, "registry asks for authentication");
            let is_basic = challenge == Challenge::Basic;
            host.auth.learn(challenge);
            drop(gate);
            if sent {
                *host.auth.token_slot(&scope).lock().await = None;
            }
            if second {
                return Err(self.refused(host, repository).await);
            }
            second = true;
            if is_basic && self.credentials(host).await?.is_none() {
                return Err(RegistryError::AuthRequired {
                    host: host.name.clone(),
                    repository: repository.to_owned(),
                });
            }
        }
    }

    /// The `Authorization` value for a request, per what the host asked for.
    async fn authorization(
        &self,
        host: &Host,
        repository: &str,
        scope: &str,
    ) -> Result<Option<Secret>, RegistryError> {
        match host.auth.challenge() {
            None => Ok(None),
            Some(Challenge::Basic) => match self.credentials(host).await? {
                Some(credentials) => match credentials.basic_header() {
                    Some(header) => Ok(Some(header)),
                    None => Err(RegistryError::AuthFailed {
                        host: host.name.clone(),
                        repository: repository.to_owned(),
                        detail: format!(
                            "the registry wants a password but {} holds an identity token",
                            credentials.source
                        ),
                    }),
                },
                None => Ok(None),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                let slot = host.auth.token_slot(scope);
                let mut token = slot.lock().await;
                if let Some(cached) = token.as_ref() {
                    if cached.valid_until > Instant::now() {
                        return Ok(Some(cached.header()));
                    }
                }
                let fresh = self
                    .fetch_token(host, repository, scope, &realm, service.as_deref())
                    .await?;
                let header = fresh.header();
                *token = Some(fresh);
                Ok(Some(header))
            }
        }
    }

    async fn fetch_token(
        &self,
        host: &Host,
        repository: &str,
        scope: &str,
        realm: &str,
        service: Option<&str>,
    ) -> Result<Token, RegistryError> {
        let mut url = Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| {
                protocol(
                    host,
                    repository,
                    format!("the token realm {realm:?} is not an http(s) URL"),
                )
            })?;
        let credentials = self.credentials(host).await?;
        if credentials.is_some() && url.scheme() == "http" && !host.insecure {
            return Err(RegistryError::AuthFailed {
                host: host.name.clone(),
                repository: repository.to_owned(),
                detail: format!(
                    "the token service {realm} is plain http; crowsnest sends credentials over plain http only to hosts with insecure: true"
                ),
            });
        }
        let mut call = Call {
            method: Method::GET,
            url: url.clone(),
            kind: Kind::Token,
            accept: Some("application/json"),
            authorization: None,
            form: None,
            repository,
        };
        match credentials.as_deref().map(|c| &c.credential) {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh.expose().to_owned()),
                    ("client_id", "crowsnest".to_owned()),
                    ("scope", scope.to_owned()),
                ];
                if let Some(service) = service {
                    form.push(("service", service.to_owned()));
                }
                call.method = Method::POST;
                call.form = Some(form);
            }
            other => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    query.append_pair("scope", scope);
                }
                call.url = url;
                if let Some(Credential::Basic { username, password }) = other {
                    call.authorization = Some(auth::basic(username, password));
                }
            }
        }
        let fetched = self.send(host, &call).await?;
        match fetched.status.as_u16() {
            200 => {}
            401 | 403 => {
                return Err(match credentials {
                    Some(c) => {
                        host.auth.forget_credentials().await;
                        RegistryError::AuthFailed {
                            host: host.name.clone(),
                            repository: repository.to_owned(),
                            detail: format!(
                                "the token service refused the credentials from {}",
                                c.source
                            ),
                        }
                    }
                    None => RegistryError::AuthRequired {
                        host: host.name.clone(),
                        repository: repository.to_owned(),
                    },
                });
            }
            status => {
                return Err(protocol(
                    host,
                    repository,
                    format!("the token service answered HTTP {status}"),
                ));
            }
        }
        let response: TokenResponse = serde_json::from_slice(&fetched.body).map_err(|e| {
            protocol(
                host,
                repository,
                format!("the token response is not JSON: {e}"),
            )
        })?;
        let token = response
            .into_token(Instant::now())
            .ok_or_else(|| protocol(host, repository, "the token response has no token".into()))?;
        self.inner.metrics.token(&host.name);
        debug!(host = %host.name, repository, "fetched a registry token");
        Ok(token)
    }

    async fn credentials(&self, host: &Host) -> Result<Option<Arc<Credentials>>, RegistryError> {
        let name = host.name.clone();
        let host_config = host.config.clone();
        let docker_config = self.inner.config.docker_config.clone();
        host.auth
            .credentials(move || {
                auth::resolve(&name, host_config.as_ref(), docker_config.as_deref())
            })
            .await
            .map_err(|detail| RegistryError::Credentials {
                host: host.name.clone(),
                detail,
            })
    }

    /// The error for a request refused after fresh credentials were sent.
    async fn refused(&self, host: &Host, repository: &str) -> RegistryError {
        match self.credentials(host).await {
            Ok(Some(credentials)) => {
                host.auth.forget_credentials().await;
                RegistryError::AuthFailed {
                    host: host.name.clone(),
                    repository: repository.to_owned(),
                    detail: format!(
                        "the registry refused the credentials from {} (wrong password, or no pull access to this repository)",
                        credentials.source
                    ),
                }
            }
            Ok(None) => RegistryError::AuthRequired {
                host: host.name.clone(),
                repository: repository.to_owned(),
            },
            Err(error) => error,
        }
    }

    fn expect_ok(
        &self,
        host: &Host,
        repository: &str,
        fetched: &Fetched,
        what: impl FnOnce() -> String,
    ) -> Result<(), RegistryError> {
        match fetched.status.as_u16() {
            200 => Ok(()),
            404 => Err(RegistryError::NotFound {
                host: host.name.clone(),
                repository: repository.to_owned(),
                what: what(),
            }),
            403 => Err(RegistryError::Denied {
                host: host.name.clone(),
                repository: repository.to_owned(),
                status: 403,
            }),
            status => Err(protocol(
                host,
                repository,
                format!("HTTP {status} for {}", fetched.url.path()),
            )),
        }
    }

    /// The digest of a fetched manifest: the bytes' sha256, checked against
    /// what the registry and the HEAD said.
    fn manifest_digest(
        &self,
        host: &Host,
        repository: &str,
        fetched: &Fetched,
        expected: Option<&str>,
    ) -> Result<String, RegistryError> {
        let computed = format!("sha256:{}", hex::encode(Sha256::digest(&fetched.body)));
        let claimed = fetched
            .header(header::HeaderName::from_static("docker-content-digest"))
            .or(expected);
        match claimed {
            Some(claimed) if claimed.starts_with("sha256:") && claimed != computed => {
                Err(protocol(
                    host,
                    repository,
                    format!("the manifest's bytes hash to {computed}, not {claimed}"),
                ))
            }
            Some(claimed) => checked_digest(host, repository, claimed),
            None => Ok(computed),
        }
    }

    async fn config_platform(
        &self,
        host: &Host,
        repository: &str,
        digest: &str,
    ) -> Result<Platform, RegistryError> {
        if let Some(known) = lock(&self.inner.configs).get(digest) {
            return Ok(known.clone());
        }
        let url = host.url(&format!("/v2/{repository}/blobs/{digest}"))?;
        let fetched = self
            .request(host, repository, Method::GET, url, Kind::Blob)
            .await?;
        self.expect_ok(host, repository, &fetched, || {
            format!("config blob {digest}")
        })?;
        let platform = manifest::config_platform(&fetched.body).map_err(|detail| {
            protocol(host, repository, format!("config blob {digest}: {detail}"))
        })?;
        let mut configs = lock(&self.inner.configs);
        if configs.len() >= CACHE_LIMIT {
            configs.clear();
        }
        configs.insert(digest.to_owned(), platform.clone());
        Ok(platform)
    }

    fn remember_tag(&self, key: (String, String), digest: &str) {
        let mut tags = lock(&self.inner.tag_digests);
        if tags.len() >= CACHE_LIMIT {
            tags.clear();
        }
        tags.insert(key, digest.to_owned());
    }
}

/// A manifest as [`Registry::manifest`] returns it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: String,
    pub media_type: Option<String>,
    pub body: Vec<u8>,
}

fn info(digest: String, facts: &ManifestFacts, wanted: Option<&Platform>) -> TagInfo {
    TagInfo {
        digest,
        media_type: Some(facts.media_type.clone()),
        platforms: facts.platforms.clone(),
        provides_platform: wanted.is_none_or(|w| {
            facts
                .platforms
                .iter()
                .any(|offered| manifest::provides(offered, w))
        }),
    }
}

fn protocol(host: &Host, repository: &str, detail: String) -> RegistryError {
    RegistryError::Protocol {
        host: host.name.clone(),
        repository: repository.to_owned(),
        detail,
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`, the distribution spec's tag grammar.
/// A digest as the OCI spec writes them (`sha256:` and 64 lowercase hex
/// digits, or `sha512:` and 128): anything else a registry sends is refused
/// before it can reach a file or a commit message.
fn checked_digest(host: &Host, repository: &str, digest: &str) -> Result<String, RegistryError> {
    let valid = match digest.split_once(':') {
        Some(("sha256", hex)) => hex.len() == 64,
        Some(("sha512", hex)) => hex.len() == 128,
        _ => false,
    } && digest
        .split_once(':')
        .is_some_and(|(_, hex)| hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    if valid {
        Ok(digest.to_owned())
    } else {
        Err(protocol(
            host,
            repository,
            format!("the registry sent an invalid digest {}", preview(digest)),
        ))
    }
}

/// At most 64 characters of registry-supplied text, for a message.
fn preview(text: &str) -> String {
    let mut short: String = text.chars().take(64).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("{short:?}")
}

fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[derive(Deserialize)]
struct TagsPage {
    tags: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_distribution_grammar() {
        for good in ["1.0.0", "v1", "_x", "latest", "a-b_c.d", &"a".repeat(128)] {
            assert!(valid_tag(good), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a:b", "sha256:abc", &"a".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn error_kinds_are_distinct_labels() {
        let e = RegistryError::AuthRequired {
            host: "h".into(),
            repository: "r".into(),
        };
        assert_eq!(e.kind(), "auth_required");
        assert!(e.to_string().starts_with("h/r: "), "{e}");
    }
}
