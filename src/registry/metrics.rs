//! Registry metrics: requests by host, kind and status; tokens fetched;
//! bytes read; throttling and retries. [`RegistryMetrics::register`] puts
//! them into the `prometheus_client` registry the HTTP module serves;
//! [`RegistryMetrics::snapshot`] reads them back for tests and benchmarks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RequestLabels {
    /// The registry host as images name it (`docker.io`, `127.0.0.1:5000`).
    pub host: String,
    /// `tags`, `manifest`, `blob` or `token`.
    pub kind: String,
    /// The HTTP status, or `error` when no response arrived.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct HostLabels {
    pub host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RetryLabels {
    pub host: String,
    /// `rate_limited`, `server_error`, `timeout` or `transport`.
    pub reason: String,
}

/// Counters shared by every clone of a [`super::Registry`].
#[derive(Clone, Default)]
pub struct RegistryMetrics {
    requests: Family<RequestLabels, Counter>,
    tokens: Family<HostLabels, Counter>,
    bytes: Family<HostLabels, Counter>,
    retries: Family<RetryLabels, Counter>,
    /// Current adaptive limit in milli-requests per second; 0 = unlimited.
    rate_limit: Family<HostLabels, Gauge>,
    tally: Arc<Mutex<Tally>>,
}

/// Plain copies of the counters, for assertions and the benchmark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub requests: BTreeMap<RequestLabels, u64>,
    pub tokens: BTreeMap<String, u64>,
    pub bytes: BTreeMap<String, u64>,
    pub retries: BTreeMap<RetryLabels, u64>,
}

impl Tally {
    /// All requests to `host` of `kind` (any status).
    pub fn requests_of(&self, host: &str, kind: &str) -> u64 {
        self.requests
            .iter()
            .filter(|(l, _)| l.host == host && l.kind == kind)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

impl RegistryMetrics {
    /// Registers every family under `crowsnest_registry_*`.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "crowsnest_registry_requests",
            "HTTP requests to container registries, by host, kind (tags, manifest, blob, token) and status",
            self.requests.clone(),
        );
        registry.register(
            "crowsnest_registry_tokens_fetched",
            "Bearer tokens fetched from registry token services",
            self.tokens.clone(),
        );
        registry.register(
            "crowsnest_registry_response_bytes",
            "Response body bytes read from registries",
            self.bytes.clone(),
        );
        registry.register(
            "crowsnest_registry_retries",
            "Requests retried after 429, 5xx, timeouts or broken connections",
            self.retries.clone(),
        );
        registry.register(
            "crowsnest_registry_rate_limit_millirequests_per_second",
            "Adaptive request-rate limit per registry host after 429s (0 = unlimited)",
            self.rate_limit.clone(),
        );
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Everything one call did on the wire (see `transport::Exchange`).
    pub(crate) fn record(
        &self,
        host: &str,
        kind: &str,
        responses: &[String],
        retries: &[&str],
        bytes: u64,
        rate_limit: Option<Option<f64>>,
    ) {
        for status in responses {
            self.request(host, kind, status);
        }
        for reason in retries {
            self.retry(host, reason);
        }
        if bytes > 0 {
            self.bytes(host, bytes);
        }
        if let Some(limit) = rate_limit {
            self.rate_limit(host, limit);
        }
    }

    fn request(&self, host: &str, kind: &str, status: &str) {
        let labels = RequestLabels {
            host: host.to_owned(),
            kind: kind.to_owned(),
            status: status.to_owned(),
        };
        self.requests.get_or_create(&labels).inc();
        *self.tally().requests.entry(labels).or_default() += 1;
    }

    pub(crate) fn token(&self, host: &str) {
        self.tokens
            .get_or_create(&HostLabels {
                host: host.to_owned(),
            })
            .inc();
        *self.tally().tokens.entry(host.to_owned()).or_default() += 1;
    }

    fn bytes(&self, host: &str, count: u64) {
        self.bytes
            .get_or_create(&HostLabels {
                host: host.to_owned(),
            })
            .inc_by(count);
        *self.tally().bytes.entry(host.to_owned()).or_default() += count;
    }

    fn retry(&self, host: &str, reason: &str) {
        let labels = RetryLabels {
            host: host.to_owned(),
            reason: reason.to_owned(),
        };
        self.retries.get_or_create(&labels).inc();
        *self.tally().retries.entry(labels).or_default() += 1;
    }

    fn rate_limit(&self, host: &str, limit: Option<f64>) {
        self.rate_limit
            .get_or_create(&HostLabels {
                host: host.to_owned(),
            })
            .set(limit.map_or(0, |l| (l * 1000.0) as i64));
    }

    /// A copy of the counters so far.
    pub fn snapshot(&self) -> Tally {
        self.tally().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_metrics_encode_with_their_labels() {
        let metrics = RegistryMetrics::default();
        let ok = ["200".to_owned()];
        metrics.record("ghcr.io", "tags", &ok, &[], 1000, None);
        metrics.record("ghcr.io", "tags", &ok, &[], 234, None);
        metrics.token("ghcr.io");
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"crowsnest_registry_requests_total{host="ghcr.io",kind="tags",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"crowsnest_registry_tokens_fetched_total{host="ghcr.io"} 1"#));
        assert!(text.contains(r#"crowsnest_registry_response_bytes_total{host="ghcr.io"} 1234"#));
        assert_eq!(metrics.snapshot().requests_of("ghcr.io", "tags"), 2);
    }
}
