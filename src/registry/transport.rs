//! One registry host on the wire: its HTTP client (system roots plus the
//! host's `caFile`), a concurrency limit, the adaptive rate, and the
//! request loop with its politeness rules:
//!
//! - 429: the host's rate is halved and every request to it waits out
//!   `Retry-After` (or a backoff), then this request is retried; a
//!   `Retry-After` longer than `max_retry_after` fails fast and keeps
//!   failing fast until then, without asking again.
//! - 500/502/503/504, timeouts, dropped connections and truncated bodies:
//!   retried with exponential backoff and jitter (`Retry-After` on 503 is
//!   honoured).
//! - A refused connection or a TLS failure is not retried: it will not
//!   heal within a scan.
//! - Redirects are followed by hand (at most 5): `Authorization` goes only
//!   to the origin the request was made for, and https never downgrades to
//!   http.
//! - Every response body is read against a size cap, and counted.
//!
//! What happened on the wire (each response's status, each retry, the
//! bytes read, the host's rate limit) is written into an [`Exchange`] the
//! caller records; this module never touches metrics, so a call flows one
//! way: `Registry` → `Host::fetch` → back to `Registry`, which records it.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;
use tracing::{debug, warn};
use url::Url;

use super::auth::AuthState;
use super::headers::retry_after;
use super::rate::AdaptiveRate;
use super::{RegistryError, RegistryOptions};
use crate::config::HostConfig;
use crate::model::Secret;

const MAX_REDIRECTS: usize = 5;

/// What a request is for: a metric label and the size cap it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Tags,
    Manifest,
    /// The OCI 1.1 referrers API (an image index).
    Referrers,
    Blob,
    Token,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Tags => "tags",
            Kind::Manifest => "manifest",
            Kind::Referrers => "referrers",
            Kind::Blob => "blob",
            Kind::Token => "token",
        }
    }

    fn cap(self, options: &RegistryOptions) -> usize {
        match self {
            Kind::Tags => options.max_tags_page_bytes,
            Kind::Manifest | Kind::Referrers => options.max_manifest_bytes,
            Kind::Blob | Kind::Token => options.max_small_body_bytes,
        }
    }
}

/// One request to make.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: Url,
    pub kind: Kind,
    pub accept: Option<&'static str>,
    pub authorization: Option<Secret>,
    /// An `application/x-www-form-urlencoded` body (the OAuth2 token POST).
    pub form: Option<Vec<(&'static str, String)>>,
    /// For messages.
    pub repository: &'a str,
}

/// What one call did on the wire, for the caller to record, whether it
/// succeeded or not.
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    /// Each response's status code (`"error"` when none came), in order;
    /// redirects and retries each add one.
    pub responses: Vec<String>,
    /// Why each retry happened: `rate_limited`, `server_error`, `timeout`,
    /// `transport`.
    pub retries: Vec<&'static str>,
    /// Response body bytes read.
    pub bytes: u64,
    /// The host's adaptive rate limit after the call, when it was looked
    /// at (`Some(None)`: unlimited).
    pub rate_limit: Option<Option<f64>>,
}

/// A response, read in full.
pub(crate) struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that answered (after redirects), for resolving `Link`.
    pub url: Url,
}

impl Fetched {
    pub(crate) fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A registry host and everything crowsnest keeps per host.
pub(crate) struct Host {
    /// As image names spell it (`docker.io`, `127.0.0.1:5000`); metric label.
    pub name: String,
    /// `scheme://authority/` of the API (`registry-1.docker.io` for Docker Hub).
    pub base: Url,
    pub insecure: bool,
    pub config: Option<HostConfig>,
    pub auth: AuthState,
    client: reqwest::Client,
    permits: Semaphore,
    rate: AdaptiveRate,
    /// After a `Retry-After` too long to wait out: fail fast until then.
    refuse_until: Mutex<Option<Instant>>,
}

/// Why one attempt failed, and whether another may succeed.
enum Failure {
    Retry { reason: String, timeout: bool },
    Fatal(RegistryError),
}

impl Host {
    pub(crate) fn new(
        name: &str,
        config: Option<HostConfig>,
        client: reqwest::Client,
        options: &RegistryOptions,
    ) -> Result<Host, RegistryError> {
        let insecure = config.as_ref().is_some_and(|c| c.insecure);
        let api = if name == crate::model::ImageName::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            name
        };
        let scheme = if insecure { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{api}/")).map_err(|e| RegistryError::Setup {
            detail: format!("registry host {name:?} does not make a URL: {e}"),
        })?;
        Ok(Host {
            name: name.to_owned(),
            base,
            insecure,
            config,
            auth: AuthState::default(),
            client,
            permits: Semaphore::new(options.per_host_concurrency.max(1)),
            rate: AdaptiveRate::new(options.min_rate, Instant::now()),
            refuse_until: Mutex::new(None),
        })
    }

    /// `/v2/...` on this host.
    pub(crate) fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|e| RegistryError::Protocol {
            host: self.name.clone(),
            repository: String::new(),
            detail: format!("cannot build a URL for {path:?}: {e}"),
        })
    }

    /// Makes the request with retries; returns whatever status finally came back.
    pub(crate) async fn fetch(
        &self,
        options: &RegistryOptions,
        call: &Call<'_>,
        exchange: &mut Exchange,
    ) -> Result<Fetched, RegistryError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            self.check_refusal(call)?;
            self.wait_for_slot().await;
            let outcome = {
                let _permit = self.permits.acquire().await.map_err(|_| {
                    self.error_protocol(call, "the host's request limiter was closed".into())
                })?;
                self.attempt(options, call, exchange).await
            };
            let retries_left = attempt <= options.max_retries;
            match outcome {
                Ok(f) if f.status == StatusCode::TOO_MANY_REQUESTS => {
                    let asked = f
                        .header(header::RETRY_AFTER)
                        .and_then(|h| retry_after(h, SystemTime::now()));
                    let wait = asked.unwrap_or_else(|| backoff(options, attempt));
                    let now = Instant::now();
                    if wait > options.max_retry_after {
                        *self.refuse_until.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(now + wait);
                        self.rate.throttled(now, Duration::ZERO);
                        exchange.rate_limit = Some(self.rate.limit(now));
                        return Err(RegistryError::RateLimited {
                            host: self.name.clone(),
                            repository: call.repository.to_owned(),
                            detail: format!(
                                "the registry asks crowsnest to wait {}s; no request goes to it until then",
                                wait.as_secs()
                            ),
                        });
                    }
                    self.rate.throttled(now, wait);
                    exchange.rate_limit = Some(self.rate.limit(now));
                    if !retries_left {
                        return Err(RegistryError::RateLimited {
                            host: self.name.clone(),
                            repository: call.repository.to_owned(),
                            detail: format!("still 429 after {attempt} attempts"),
                        });
                    }
                    exchange.retries.push("rate_limited");
                    warn!(host = %self.name, repository = call.repository, wait_ms = wait.as_millis() as u64,
                        limit = ?self.rate.limit(now), "registry says too many requests; slowing down");
                }
                Ok(f) if is_retryable_status(f.status) => {
                    if !retries_left {
                        return Err(RegistryError::Server {
                            host: self.name.clone(),
                            repository: call.repository.to_owned(),
                            status: f.status.as_u16(),
                            attempts: attempt,
                        });
                    }
                    let wait = f
                        .header(header::RETRY_AFTER)
                        .and_then(|h| retry_after(h, SystemTime::now()))
                        .filter(|w| *w <= options.max_retry_after)
                        .unwrap_or_else(|| backoff(options, attempt));
                    exchange.retries.push("server_error");
                    warn!(host = %self.name, repository = call.repository, status = f.status.as_u16(),
                        wait_ms = wait.as_millis() as u64, "registry error; retrying");
                    tokio::time::sleep(wait).await;
                }
                Ok(f) => {
                    exchange.rate_limit = Some(self.rate.limit(Instant::now()));
                    return Ok(f);
                }
                Err(Failure::Retry { reason, timeout }) => {
                    if !retries_left {
                        return Err(if timeout {
                            RegistryError::Timeout {
                                host: self.name.clone(),
                                repository: call.repository.to_owned(),
                                after: options.request_timeout,
                                attempts: attempt,
                            }
                        } else {
                            RegistryError::Unreachable {
                                host: self.name.clone(),
                                repository: call.repository.to_owned(),
                                reason: format!("{reason} (after {attempt} attempts)"),
                            }
                        });
                    }
                    let wait = backoff(options, attempt);
                    exchange
                        .retries
                        .push(if timeout { "timeout" } else { "transport" });
                    warn!(host = %self.name, repository = call.repository, %reason,
                        wait_ms = wait.as_millis() as u64, "request failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(Failure::Fatal(error)) => return Err(error),
            }
        }
    }

    fn check_refusal(&self, call: &Call<'_>) -> Result<(), RegistryError> {
        let mut refuse = self.refuse_until.lock().unwrap_or_else(|e| e.into_inner());
        match *refuse {
            Some(until) if until > Instant::now() => Err(RegistryError::RateLimited {
                host: self.name.clone(),
                repository: call.repository.to_owned(),
                detail: format!(
                    "the registry asked crowsnest to wait; {}s left, no request sent",
                    until.saturating_duration_since(Instant::now()).as_secs()
                ),
            }),
            Some(_) => {
                *refuse = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn wait_for_slot(&self) {
        loop {
            let at = self.rate.reserve(Instant::now());
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            // A 429 that arrived while this request waited pauses it too.
            if self.rate.paused_past(at).is_none() {
                return;
            }
        }
    }

    fn error_protocol(&self, call: &Call<'_>, detail: String) -> RegistryError {
        RegistryError::Protocol {
            host: self.name.clone(),
            repository: call.repository.to_owned(),
            detail,
        }
    }

    /// One attempt: the request, any redirects, and the capped body.
    async fn attempt(
        &self,
        options: &RegistryOptions,
        call: &Call<'_>,
        exchange: &mut Exchange,
    ) -> Result<Fetched, Failure> {
        let mut url = call.url.clone();
        let mut authorization = call.authorization.as_ref();
        let mut method = call.method.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .timeout(options.request_timeout);
            if let Some(secret) = authorization {
                let mut value = HeaderValue::from_str(secret.expose()).map_err(|_| {
                    Failure::Fatal(RegistryError::Credentials {
                        host: self.name.clone(),
                        detail: "the credential contains characters not allowed in an HTTP header"
                            .into(),
                    })
                })?;
                value.set_sensitive(true);
                request = request.header(header::AUTHORIZATION, value);
            }
            if let Some(accept) = call.accept {
                request = request.header(header::ACCEPT, accept);
            }
            if let Some(form) = &call.form {
                request = request.form(form);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    exchange.responses.push("error".into());
                    return Err(self.classify(e, call));
                }
            };
            let status = response.status();
            exchange.responses.push(status.as_str().to_owned());
            debug!(host = %self.name, repository = call.repository, kind = call.kind.label(),
                method = %method, path = url.path(), status = status.as_u16(), "registry response");
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        Failure::Fatal(self.error_protocol(
                            call,
                            format!("HTTP {status} without a Location header"),
                        ))
                    })?;
                let next = url.join(location).map_err(|e| {
                    Failure::Fatal(
                        self.error_protocol(call, format!("redirect to an invalid URL: {e}")),
                    )
                })?;
                if url.scheme() == "https" && next.scheme() != "https" {
                    return Err(Failure::Fatal(self.error_protocol(
                        call,
                        format!("refusing a redirect from https to {}", next.scheme()),
                    )));
                }
                if next.origin() != call.url.origin() {
                    // Credentials never leave the host they were meant for.
                    authorization = None;
                }
                if status == StatusCode::SEE_OTHER {
                    method = Method::GET;
                }
                url = next;
                continue;
            }
            let headers = response.headers().clone();
            let body = self.read_body(response, call, options, exchange).await?;
            return Ok(Fetched {
                status,
                headers,
                body,
                url,
            });
        }
        Err(Failure::Fatal(self.error_protocol(
            call,
            format!("more than {MAX_REDIRECTS} redirects"),
        )))
    }

    async fn read_body(
        &self,
        mut response: reqwest::Response,
        call: &Call<'_>,
        options: &RegistryOptions,
        exchange: &mut Exchange,
    ) -> Result<Bytes, Failure> {
        let cap = call.kind.cap(options);
        let too_large = || {
            Failure::Fatal(RegistryError::TooLarge {
                host: self.name.clone(),
                repository: call.repository.to_owned(),
                what: call.kind.label(),
                limit: cap,
            })
        };
        if call.method == Method::HEAD {
            return Ok(Bytes::new());
        }
        if response.content_length().is_some_and(|l| l > cap as u64) {
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    exchange.bytes += chunk.len() as u64;
                    if body.len() + chunk.len() > cap {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body.freeze()),
                Err(e) => return Err(self.classify(e, call)),
            }
        }
    }

    fn classify(&self, error: reqwest::Error, call: &Call<'_>) -> Failure {
        let timeout = error.is_timeout();
        let connect = error.is_connect();
        let reason = describe(&error.without_url());
        if timeout {
            return Failure::Retry {
                reason,
                timeout: true,
            };
        }
        if connect {
            let lower = reason.to_ascii_lowercase();
            let tls = ["certificate", "tls", "handshake", "corrupt message", "peer"]
                .iter()
                .any(|w| lower.contains(w));
            return Failure::Fatal(if tls {
                RegistryError::Tls {
                    host: self.name.clone(),
                    repository: call.repository.to_owned(),
                    reason,
                }
            } else {
                RegistryError::Unreachable {
                    host: self.name.clone(),
                    repository: call.repository.to_owned(),
                    reason,
                }
            });
        }
        Failure::Retry {
            reason,
            timeout: false,
        }
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// `base * 2^(attempt-1)`, capped, with jitter: a uniform pick from the
/// upper half so retries of many clients spread out but never fire at once.
fn backoff(options: &RegistryOptions, attempt: u32) -> Duration {
    use rand::Rng as _;
    let exp = options
        .backoff_base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(options.backoff_max);
    let millis = exp.as_millis().max(2) as u64;
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

/// The innermost cause of an error: "Connection refused (os error 111)"
/// says more than reqwest's "error sending request" wrapper around it.
fn describe(error: &dyn std::error::Error) -> String {
    let mut innermost = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    innermost.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let options = RegistryOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            ..RegistryOptions::default()
        };
        for (attempt, low, high) in [(1, 50, 100), (2, 100, 200), (3, 200, 400), (9, 500, 1000)] {
            for _ in 0..20 {
                let wait = backoff(&options, attempt).as_millis() as u64;
                assert!((low..=high).contains(&wait), "attempt {attempt}: {wait}");
            }
        }
    }
}
