//! The daemon's Prometheus metrics. The scheduler and the webhook handlers
//! update them; `GET /metrics` encodes them (OpenMetrics text) together
//! with the registry client's `crowsnest_registry_*` families. Every metric
//! is listed in the README.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::inventory::{Finding, FindingKind};
use crate::model::{PolicyId, Shard};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// A series per repository entry of the config (bounded by the config).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepositoryLabels {
    pub repository: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepositoryResultLabels {
    pub repository: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepositoryKindLabels {
    pub repository: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ImageLabels {
    pub image: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SelectedLabels {
    pub repository: String,
    pub policy: String,
    pub image: String,
    pub tag: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub repository: String,
    pub policy: String,
    pub image: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepositoryPolicyLabels {
    pub repository: String,
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub source: String,
    pub result: String,
}

/// Every daemon metric; cheap to share behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    pub ready: Gauge,
    pub policies: Gauge,
    pub repositories: Gauge,
    pub scans: Family<ResultLabels, Counter>,
    pub scan_duration: Histogram,
    pub tags: Family<ImageLabels, Gauge>,
    pub selected: Family<SelectedLabels, Gauge>,
    pub not_numeric: Family<PolicyLabels, Gauge>,
    pub tag_moved: Family<RepositoryPolicyLabels, Gauge>,
    pub unsigned: Family<RepositoryPolicyLabels, Gauge>,
    pub findings: Family<RepositoryKindLabels, Gauge>,
    pub passes: Family<RepositoryResultLabels, Counter>,
    pub pass_duration: Histogram,
    pub commits: Family<RepositoryLabels, Counter>,
    pub pushes: Family<RepositoryResultLabels, Counter>,
    pub conflicts: Family<RepositoryLabels, Counter>,
    pub errors: Family<KindLabels, Counter>,
    pub webhooks: Family<WebhookLabels, Counter>,
    pub last_pass: Family<RepositoryLabels, Gauge<f64, AtomicU64>>,
    pub last_commit: Family<RepositoryLabels, Gauge<f64, AtomicU64>>,
}

impl Metrics {
    /// The daemon's families plus whatever `extra` registers (the
    /// registry client's).
    pub fn new(extra: impl FnOnce(&mut Registry)) -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            ready: Gauge::default(),
            policies: Gauge::default(),
            repositories: Gauge::default(),
            scans: Family::default(),
            scan_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            tags: Family::default(),
            selected: Family::default(),
            not_numeric: Family::default(),
            tag_moved: Family::default(),
            unsigned: Family::default(),
            findings: Family::default(),
            passes: Family::default(),
            pass_duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            commits: Family::default(),
            pushes: Family::default(),
            conflicts: Family::default(),
            errors: Family::default(),
            webhooks: Family::default(),
            last_pass: Family::default(),
            last_commit: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "crowsnest_ready",
            "1 once every repository has had its first pass (done, or failed on its own)",
            m.ready.clone(),
        );
        registry.register(
            "crowsnest_policies",
            "Policies this daemon (shard) watches",
            m.policies.clone(),
        );
        registry.register(
            "crowsnest_repositories",
            "Image repositories this daemon scans",
            m.repositories.clone(),
        );
        registry.register(
            "crowsnest_scans",
            "Tag scans of image repositories, by result (ok, error)",
            m.scans.clone(),
        );
        registry.register(
            "crowsnest_scan_duration_seconds",
            "Time to list one repository's tags",
            m.scan_duration.clone(),
        );
        registry.register(
            "crowsnest_tags",
            "Tags an image repository had at its last scan",
            m.tags.clone(),
        );
        registry.register(
            "crowsnest_policy_selected",
            "1 for the tag each policy selects (the tag is a label)",
            m.selected.clone(),
        );
        registry.register(
            "crowsnest_policy_tags_not_numeric",
            "Tags a numerical policy skipped at its last decision because they are not numbers",
            m.not_numeric.clone(),
        );
        registry.register(
            "crowsnest_tag_moved",
            "1 when the tag the files hold (or a verified tag about to be written) points to another digest in the registry than the one written for it; not followed with verify, followed without it under digestReflectionPolicy Always",
            m.tag_moved.clone(),
        );
        registry.register(
            "crowsnest_unsigned_tags",
            "Better tags a policy with verify passed over at its last decision because their image is not signed by its keys",
            m.unsigned.clone(),
        );
        registry.register(
            "crowsnest_findings",
            "Problems in each repository at its last pass, by kind; each holds back only what it touches",
            m.findings.clone(),
        );
        registry.register(
            "crowsnest_passes",
            "Reconcile passes, by repository and result (ok, failed, abandoned)",
            m.passes.clone(),
        );
        registry.register(
            "crowsnest_pass_duration_seconds",
            "Time of one reconcile pass: fetch, plan, commit and push",
            m.pass_duration.clone(),
        );
        registry.register(
            "crowsnest_commits",
            "Commits made and pushed, by repository",
            m.commits.clone(),
        );
        registry.register(
            "crowsnest_pushes",
            "Pushes, by repository and result (pushed, rejected)",
            m.pushes.clone(),
        );
        registry.register(
            "crowsnest_push_conflicts",
            "Pushes that lost a race with another writer and were re-planned on the new tip, by repository",
            m.conflicts.clone(),
        );
        registry.register(
            "crowsnest_errors",
            "Errors by kind (registry kinds such as unreachable or auth_failed, git, conflict, push_rejected, patch, no_match, repository, cache)",
            m.errors.clone(),
        );
        registry.register(
            "crowsnest_webhooks",
            "Webhook requests, by source and result (accepted, unauthorized, invalid_json, invalid_payload, too_large, busy)",
            m.webhooks.clone(),
        );
        registry.register(
            "crowsnest_last_pass_timestamp_seconds",
            "Unix time each repository's last pass finished",
            m.last_pass.clone(),
        );
        registry.register(
            "crowsnest_last_commit_timestamp_seconds",
            "Unix time of each repository's last pushed commit",
            m.last_commit.clone(),
        );
        extra(&mut registry);
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text of every family.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    pub fn counted(family: &Family<ResultLabels, Counter>, result: &str) {
        family
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts one `result` of `repository` in `family`.
    pub fn counted_for(
        family: &Family<RepositoryResultLabels, Counter>,
        repository: &str,
        result: &str,
    ) {
        family
            .get_or_create(&RepositoryResultLabels {
                repository: repository.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// The `repository` series of a per-repository family.
    pub fn of<M: Default + Clone>(family: &Family<RepositoryLabels, M>, repository: &str) -> M {
        family
            .get_or_create(&RepositoryLabels {
                repository: repository.to_owned(),
            })
            .clone()
    }

    pub fn webhook(&self, source: &str, result: &str) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                source: source.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Sets `crowsnest_findings` to the last pass's counts: every kind has
    /// a series, so a fixed problem goes back to 0 instead of going stale.
    /// With policy shards, each finding is counted by one shard only.
    pub fn findings_of(&self, repository: &str, findings: &[Finding], shard: Option<Shard>) {
        for kind in FindingKind::ALL {
            let count = findings
                .iter()
                .filter(|f| f.kind == kind && shard.is_none_or(|s| f.counted_by(s)))
                .count();
            self.findings
                .get_or_create(&RepositoryKindLabels {
                    repository: repository.to_owned(),
                    kind: kind.label().to_owned(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Moves a policy's `crowsnest_policy_selected` series to `tag`.
    pub fn select(
        &self,
        repository: &str,
        policy: &PolicyId,
        image: &str,
        old: Option<&str>,
        tag: &str,
    ) {
        if let Some(old) = old.filter(|o| *o != tag) {
            self.selected.remove(&SelectedLabels {
                repository: repository.to_owned(),
                policy: policy.to_string(),
                image: image.to_owned(),
                tag: old.to_owned(),
            });
        }
        self.selected
            .get_or_create(&SelectedLabels {
                repository: repository.to_owned(),
                policy: policy.to_string(),
                image: image.to_owned(),
                tag: tag.to_owned(),
            })
            .set(1);
    }

    /// Sets a numerical policy's `crowsnest_policy_tags_not_numeric`.
    pub fn not_numeric(&self, repository: &str, policy: &PolicyId, image: &str, count: usize) {
        self.not_numeric
            .get_or_create(&PolicyLabels {
                repository: repository.to_owned(),
                policy: policy.to_string(),
                image: image.to_owned(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets a policy's `crowsnest_tag_moved`.
    pub fn tag_moved(&self, repository: &str, policy: &PolicyId, moved: u8) {
        self.tag_moved
            .get_or_create(&RepositoryPolicyLabels {
                repository: repository.to_owned(),
                policy: policy.to_string(),
            })
            .set(i64::from(moved));
    }

    /// Sets a policy's `crowsnest_unsigned_tags`.
    pub fn unsigned(&self, repository: &str, policy: &PolicyId, count: usize) {
        self.unsigned
            .get_or_create(&RepositoryPolicyLabels {
                repository: repository.to_owned(),
                policy: policy.to_string(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Drops a policy's `crowsnest_policy_tags_not_numeric` series.
    pub fn forget_not_numeric(&self, repository: &str, policy: &PolicyId, image: &str) {
        self.not_numeric.remove(&PolicyLabels {
            repository: repository.to_owned(),
            policy: policy.to_string(),
            image: image.to_owned(),
        });
    }

    /// Drops a policy's `crowsnest_policy_selected` series (the policy is gone).
    pub fn unselect(&self, repository: &str, policy: &PolicyId, image: &str, tag: &str) {
        self.selected.remove(&SelectedLabels {
            repository: repository.to_owned(),
            policy: policy.to_string(),
            image: image.to_owned(),
            tag: tag.to_owned(),
        });
    }

    pub fn tags_of(&self, image: &str, count: usize) {
        self.tags
            .get_or_create(&ImageLabels {
                image: image.to_owned(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn forget_image(&self, image: &str) {
        self.tags.remove(&ImageLabels {
            image: image.to_owned(),
        });
    }
}

/// Seconds since the Unix epoch, for the timestamp gauges.
pub fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_encode_with_their_names_and_labels() {
        let metrics = Metrics::new(|_| {});
        metrics.error("git");
        Metrics::counted(&metrics.scans, "ok");
        let id = PolicyId::new("default", "app");
        metrics.select("default", &id, "r/app", None, "1.0.0");
        metrics.select("default", &id, "r/app", Some("1.0.0"), "1.1.0");
        metrics.webhook("distribution", "accepted");
        metrics.not_numeric("default", &id, "r/app", 3);
        metrics.findings_of("default", &[], None);
        metrics.not_numeric("default", &PolicyId::new("default", "gone"), "r/gone", 1);
        metrics.forget_not_numeric("default", &PolicyId::new("default", "gone"), "r/gone");
        Metrics::of(&metrics.commits, "fleet").inc();
        let text = metrics.encode();
        for expected in [
            "crowsnest_errors_total{kind=\"git\"} 1",
            "crowsnest_scans_total{result=\"ok\"} 1",
            "crowsnest_policy_selected{repository=\"default\",policy=\"default:app\",image=\"r/app\",tag=\"1.1.0\"} 1",
            "crowsnest_webhooks_total{source=\"distribution\",result=\"accepted\"} 1",
            "crowsnest_policy_tags_not_numeric{repository=\"default\",policy=\"default:app\",image=\"r/app\"} 3",
            "crowsnest_ready 0",
            "crowsnest_findings{repository=\"default\",kind=\"unknown_policy\"} 0",
            "crowsnest_commits_total{repository=\"fleet\"} 1",
            "# TYPE crowsnest_pass_duration_seconds histogram",
        ] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
        assert!(!text.contains("tag=\"1.0.0\""), "{text}");
        assert!(!text.contains("default:gone"), "{text}");
    }

    #[test]
    fn every_metric_is_documented_in_the_readme() {
        let registry = crate::registry::Registry::new(&Default::default()).unwrap();
        let metrics = Metrics::new(|r| registry.register_metrics(r));
        // Families print their TYPE line once they hold a series.
        let m = registry.metrics();
        m.record(
            "h",
            "tags",
            &["200".into()],
            &["timeout"],
            1,
            Some(Some(1.0)),
        );
        m.token("h");
        metrics.error("git");
        metrics.webhook("generic", "accepted");
        metrics.tags_of("h/r", 1);
        metrics.select("r", &PolicyId::new("a", "b"), "h/r", None, "1");
        metrics.not_numeric("r", &PolicyId::new("a", "b"), "h/r", 0);
        Metrics::counted(&metrics.scans, "ok");
        for family in [&metrics.passes, &metrics.pushes] {
            Metrics::counted_for(family, "r", "ok");
        }
        Metrics::of(&metrics.commits, "r").inc();
        Metrics::of(&metrics.conflicts, "r").inc();
        Metrics::of(&metrics.last_pass, "r").set(1.0);
        Metrics::of(&metrics.last_commit, "r").set(1.0);
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let mut names = Vec::new();
        for line in metrics.encode().lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (name, kind) = rest.split_once(' ').unwrap();
            let shown = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            assert!(
                readme.contains(&format!("| `{shown}` |")),
                "{shown} is not in the README's metrics table"
            );
            names.push(shown);
        }
        assert!(names.len() >= 21, "{names:?}");
    }
}
