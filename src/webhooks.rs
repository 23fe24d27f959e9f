//! Registry push notifications, pure: payload bytes in, the image
//! repositories they name out. No IO and no async, so the fuzz target
//! `webhooks` drives it directly.
//!
//! A notification only ever asks for an immediate scan of a repository:
//! the tag in it is reported for logs but never trusted, because the daemon
//! re-reads the tags from the registry. A forged payload can therefore at
//! worst cause a scan.
//!
//! Formats, in the shape each registry's documentation gives:
//! - `distribution`: CNCF distribution (`docker-registry`) notification
//!   envelopes, `{"events": [{"action": "push", "target": {"repository",
//!   "tag", ...}, "request": {"host", ...}}]}`. Only manifest pushes carry a
//!   tag; blob pushes and pushes by digest are ignored.
//! - `dockerhub`: `{"push_data": {"tag"}, "repository": {"repo_name"}}`.
//! - `harbor`: `{"type": "PUSH_ARTIFACT", "event_data": {"resources":
//!   [{"tag", "resource_url"}], "repository": {"repo_full_name"}}}`.
//! - `quay`: repository push, `{"docker_url", "updated_tags": [...]}`.
//! - `github`: `package` / `registry_package` events of container packages,
//!   `{"action": "published", "package": {"package_type": "container",
//!   "package_version": {"package_url", "container_metadata": {"tag":
//!   {"name"}}}}}`.
//! - `generic`: `{"image": "registry/repository", "tag": "..."}`.
//!
//! [`authorize`] checks the shared token in constant time: a bearer token,
//! a `?token=` query parameter, or GitHub's `X-Hub-Signature-256` HMAC.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::model::ImageName;

/// The largest payload a hook reads; registries send a few kilobytes.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Who sent a notification, by the endpoint it arrived at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Distribution,
    DockerHub,
    Harbor,
    Quay,
    GitHub,
    Generic,
}

impl Source {
    pub const ALL: [Source; 6] = [
        Source::Distribution,
        Source::DockerHub,
        Source::Harbor,
        Source::Quay,
        Source::GitHub,
        Source::Generic,
    ];

    /// The last path segment of the endpoint, `/hooks/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Distribution => "distribution",
            Source::DockerHub => "dockerhub",
            Source::Harbor => "harbor",
            Source::Quay => "quay",
            Source::GitHub => "github",
            Source::Generic => "generic",
        }
    }

    pub fn from_name(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One pushed repository a notification names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Push {
    /// The registry host when the payload names one (`docker.io`, `ghcr.io`,
    /// the `Host` a client pushed to). `None`: match any registry.
    pub registry: Option<String>,
    /// The repository path, as [`ImageName::repository`] spells it
    /// (`library/nginx` for Docker Hub's official images).
    pub repository: String,
    /// The tag the payload claims was pushed; for logs only.
    pub tag: Option<String>,
}

impl Push {
    /// Whether `image` is this repository: the same repository path and,
    /// when the payload names a registry, the same registry.
    pub fn matches(&self, image: &ImageName) -> bool {
        self.repository == image.repository
            && self.registry.as_ref().is_none_or(|r| *r == image.registry)
    }

    /// Whether `image` has this repository path on any registry: the
    /// fallback for a registry that names itself differently from the
    /// policies (a `Host` header of `registry.internal:5000` for images
    /// written `127.0.0.1:5000/...`).
    pub fn matches_path(&self, image: &ImageName) -> bool {
        self.repository == image.repository
    }

    fn from_reference(reference: &str, tag: Option<String>) -> Result<Push, WebhookError> {
        let (name, tag_in_reference) = split_reference(reference);
        let image = ImageName::parse(name).map_err(|e| WebhookError::Invalid(e.to_string()))?;
        Ok(Push {
            registry: Some(image.registry),
            repository: image.repository,
            tag: tag.or(tag_in_reference.map(str::to_owned)),
        })
    }
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the payload is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("the payload has no {0}")]
    Missing(&'static str),
    #[error("the payload names an invalid image: {0}")]
    Invalid(String),
    #[error("the payload is larger than {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge,
}

impl WebhookError {
    /// A short label for `crowsnest_webhooks_total{result}`.
    pub fn kind(&self) -> &'static str {
        match self {
            WebhookError::Json(_) => "invalid_json",
            WebhookError::Missing(_) | WebhookError::Invalid(_) => "invalid_payload",
            WebhookError::TooLarge => "too_large",
        }
    }
}

/// The pushes a payload of `source` names, deduplicated; empty when it
/// names none that could add a tag (a pull, a blob push, a deletion).
pub fn parse(source: Source, body: &[u8]) -> Result<Vec<Push>, WebhookError> {
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(WebhookError::TooLarge);
    }
    let mut pushes = match source {
        Source::Distribution => distribution(body)?,
        Source::DockerHub => docker_hub(body)?,
        Source::Harbor => harbor(body)?,
        Source::Quay => quay(body)?,
        Source::GitHub => github(body)?,
        Source::Generic => generic(body)?,
    };
    pushes.sort();
    pushes.dedup();
    Ok(pushes)
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|e| WebhookError::Json(e.to_string()))
}

/// `name[:tag][@digest]` split into the name and the tag.
fn split_reference(reference: &str) -> (&str, Option<&str>) {
    let without_digest = reference.split_once('@').map_or(reference, |(r, _)| r);
    match without_digest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') && !name.is_empty() => (name, Some(tag)),
        _ => (without_digest, None),
    }
}

/// `https://ghcr.io/x` and `ghcr.io/x` alike: registries put either in URLs.
fn strip_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    events: Vec<DistributionEvent>,
}

#[derive(Deserialize)]
struct DistributionEvent {
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: DistributionTarget,
    #[serde(default)]
    request: DistributionRequest,
}

#[derive(Deserialize, Default)]
struct DistributionTarget {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Deserialize, Default)]
struct DistributionRequest {
    #[serde(default)]
    host: Option<String>,
}

fn distribution(body: &[u8]) -> Result<Vec<Push>, WebhookError> {
    let envelope: Envelope = json(body)?;
    let mut pushes = Vec::new();
    for event in envelope.events {
        // Blob pushes and manifests pushed by digest carry no tag: they
        // cannot add a tag, so they trigger nothing.
        let Some(tag) = event.target.tag.filter(|t| !t.is_empty()) else {
            continue;
        };
        if event.action != "push" {
            continue;
        }
        if event.target.repository.is_empty() {
            return Err(WebhookError::Missing("events[].target.repository"));
        }
        // Validate the path with the image-name rules; the host is a hint.
        let host = event.request.host.filter(|h| !h.is_empty());
        let probe = format!(
            "{}/{}",
            host.as_deref().unwrap_or("registry.invalid"),
            event.target.repository
        );
        let image = ImageName::parse(&probe).map_err(|e| WebhookError::Invalid(e.to_string()))?;
        pushes.push(Push {
            registry: host.map(|_| image.registry),
            repository: image.repository,
            tag: Some(tag),
        });
    }
    Ok(pushes)
}

#[derive(Deserialize)]
struct DockerHubPayload {
    #[serde(default)]
    push_data: Option<DockerHubPushData>,
    repository: Option<DockerHubRepository>,
}

#[derive(Deserialize)]
struct DockerHubPushData {
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Deserialize)]
struct DockerHubRepository {
    #[serde(default)]
    repo_name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

fn docker_hub(body: &[u8]) -> Result<Vec<Push>, WebhookError> {
    let payload: DockerHubPayload = json(body)?;
    let repository = payload
        .repository
        .ok_or(WebhookError::Missing("repository"))?;
    let name = match (repository.repo_name, repository.namespace, repository.name) {
        (Some(full), _, _) if !full.is_empty() => full,
        (_, Some(namespace), Some(name)) => format!("{namespace}/{name}"),
        _ => return Err(WebhookError::Missing("repository.repo_name")),
    };
    let tag = payload.push_data.and_then(|p| p.tag);
    Ok(vec![Push::from_reference(
        &format!("{}/{name}", ImageName::DOCKER_HUB),
        tag,
    )?])
}

#[derive(Deserialize)]
struct HarborPayload {
    #[serde(default, rename = "type")]
    kind: String,
    event_data: Option<HarborEventData>,
}

#[derive(Deserialize)]
struct HarborEventData {
    #[serde(default)]
    resources: Vec<HarborResource>,
}

#[derive(Deserialize)]
struct HarborResource {
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    resource_url: Option<String>,
}

fn harbor(body: &[u8]) -> Result<Vec<Push>, WebhookError> {
    let payload: HarborPayload = json(body)?;
    // Harbor sends PULL_ARTIFACT, DELETE_ARTIFACT, SCANNING_* ... too.
    if !payload.kind.eq_ignore_ascii_case("PUSH_ARTIFACT") {
        return Ok(Vec::new());
    }
    let data = payload
        .event_data
        .ok_or(WebhookError::Missing("event_data"))?;
    let mut pushes = Vec::new();
    for resource in data.resources {
        let url = resource
            .resource_url
            .ok_or(WebhookError::Missing("event_data.resources[].resource_url"))?;
        pushes.push(Push::from_reference(strip_scheme(&url), resource.tag)?);
    }
    Ok(pushes)
}

#[derive(Deserialize)]
struct QuayPayload {
    docker_url: Option<String>,
    #[serde(default)]
    updated_tags: Vec<String>,
}

fn quay(body: &[u8]) -> Result<Vec<Push>, WebhookError> {
    let payload: QuayPayload = json(body)?;
    let url = payload
        .docker_url
        .ok_or(WebhookError::Missing("docker_url"))?;
    let tag = payload.updated_tags.into_iter().next();
    Ok(vec![Push::from_reference(strip_scheme(&url), tag)?])
}

#[derive(Deserialize)]
struct GitHubPayload {
    #[serde(default)]
    action: String,
    package: Option<GitHubPackage>,
    registry_package: Option<GitHubPackage>,
}

#[derive(Deserialize)]
struct GitHubPackage {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    package_type: String,
    #[serde(default)]
    package_version: Option<GitHubVersion>,
    #[serde(default)]
    owner: Option<GitHubOwner>,
}

#[derive(Deserialize)]
struct GitHubVersion {
    #[serde(default)]
    package_url: Option<String>,
    #[serde(default)]
    container_metadata: Option<GitHubContainerMetadata>,
}

#[derive(Deserialize)]
struct GitHubContainerMetadata {
    #[serde(default)]
    tag: Option<GitHubTag>,
}

#[derive(Deserialize)]
struct GitHubTag {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct GitHubOwner {
    #[serde(default)]
    login: Option<String>,
}

fn github(body: &[u8]) -> Result<Vec<Push>, WebhookError> {
    let payload: GitHubPayload = json(body)?;
    let Some(package) = payload.package.or(payload.registry_package) else {
        // A `ping` or an event of another kind.
        return Ok(Vec::new());
    };
    if !matches!(payload.action.as_str(), "published" | "updated")
        || !package.package_type.eq_ignore_ascii_case("container")
    {
        return Ok(Vec::new());
    }
    let version = package.package_version;
    let tag = version
        .as_ref()
        .and_then(|v| v.container_metadata.as_ref())
        .and_then(|m| m.tag.as_ref())
        .and_then(|t| t.name.clone())
        .filter(|t| !t.is_empty());
    if let Some(url) = version
        .and_then(|v| v.package_url)
        .filter(|u| !u.is_empty())
    {
        return Ok(vec![Push::from_reference(strip_scheme(&url), tag)?]);
    }
    let owner = package
        .namespace
        .or(package.owner.and_then(|o| o.login))
        .ok_or(WebhookError::Missing("package.namespace"))?;
    if package.name.is_empty() {
        return Err(WebhookError::Missing("package.name"));
    }
    let reference = format!(
        "ghcr.io/{}/{}",
        owner.to_ascii_lowercase(),
        package.name.to_ascii_lowercase()
    );
    Ok(vec![Push::from_reference(&reference, tag)?])
}

#[derive(Deserialize)]
struct GenericPayload {
    image: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

fn generic(body: &[u8]) -> Result<Vec<Push>, WebhookError> {
    let payload: GenericPayload = json(body)?;
    let image = payload.image.ok_or(WebhookError::Missing("image"))?;
    Ok(vec![Push::from_reference(&image, payload.tag)?])
}

/// How a request proved it knows the webhook token.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `token` query parameter.
    pub query_token: Option<&'a str>,
    /// GitHub's `X-Hub-Signature-256` header, `sha256=<hex>`.
    pub github_signature: Option<&'a str>,
}

/// Why a request was not authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no credentials: send Authorization: Bearer <token>, ?token=<token>, or a GitHub X-Hub-Signature-256"
    )]
    Missing,
    #[error("the credentials do not match the webhook token")]
    Wrong,
}

/// Checks `credentials` against `token` in constant time. Any one valid
/// proof is enough; a wrong one is not outweighed by another.
pub fn authorize(token: &str, credentials: &Credentials<'_>, body: &[u8]) -> Result<(), AuthError> {
    let mut presented = false;
    if let Some(header) = credentials.authorization {
        presented = true;
        let given = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .unwrap_or("")
            .trim();
        if !secret_eq(given, token) {
            return Err(AuthError::Wrong);
        }
    }
    if let Some(given) = credentials.query_token {
        presented = true;
        if !secret_eq(given, token) {
            return Err(AuthError::Wrong);
        }
    }
    if let Some(signature) = credentials.github_signature {
        presented = true;
        let given = signature
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h.trim()).ok())
            .unwrap_or_default();
        let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(body);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&given).is_err() {
            return Err(AuthError::Wrong);
        }
    }
    if presented {
        Ok(())
    } else {
        Err(AuthError::Missing)
    }
}

/// Constant-time equality that does not leak the length either: both sides
/// are hashed first.
fn secret_eq(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    bool::from(a.ct_eq(&b))
}

/// `sha256=<hex>` of `body` under `token`, as GitHub signs deliveries.
pub fn github_signature(token: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests;
