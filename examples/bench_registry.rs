//! The registry half of `scripts/bench-registry` (issue 4): seeds a local
//! registry and scans it with crowsnest's `Registry`, printing one JSON
//! line of figures.
//!
//! ```text
//! bench_registry seed URL REPOSITORY TAGS        push TAGS tags (1.0.0 ... ) over plain HTTP
//! bench_registry scan HOST PREFIX REPOS          list every tag of HOST/PREFIX000 ... (insecure host)
//! bench_registry scan-token STORAGE PREFIX REPOS the same against a token-auth registry on STORAGE
//! ```
//! Test support (the registry server and token issuer) is shared with the
//! integration tests.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Instant;

use crowsnest::config::{HostConfig, RegistriesConfig};
use crowsnest::model::ImageName;
use crowsnest::registry::Registry;
use futures::StreamExt as _;

/// How many repositories are scanned at once, as the reconcile pass does.
const SCAN_CONCURRENCY: usize = 16;

/// `1.0.0`, `1.0.1`, ... `1.9.99`: semver tags, 100 per minor.
fn tag(i: usize) -> String {
    format!("1.{}.{}", i / 100, i % 100)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["seed", url, repository, count] => {
            let count: usize = count.parse().expect("TAGS is a number");
            let tags: Vec<String> = (0..count).map(tag).collect();
            let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
            let started = Instant::now();
            support::registry::push_tags_to(url, repository, &refs);
            eprintln!(
                "pushed {count} tags to {repository} in {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
        ["scan", host, prefix, repos] => {
            let config = RegistriesConfig {
                docker_config: None,
                hosts: vec![HostConfig {
                    host: host.to_string(),
                    insecure: true,
                    ..HostConfig::default()
                }],
            };
            let repos = repos.parse().expect("REPOS is a number");
            println!("{}", scan(&config, host, prefix, repos));
        }
        ["scan-token", storage, prefix, repos] => {
            let reg = support::registry::RegistryServer::start_on_storage(
                support::registry::Auth::Token(support::token::IssuerOptions::default()),
                Path::new(storage),
            );
            let repos = repos.parse().expect("REPOS is a number");
            let mark = reg.request_count();
            let mut figures = scan(&reg.registries_config(), &reg.host(), prefix, repos);
            let seen = reg.requests_since(mark);
            figures["registry_saw"] = serde_json::json!(seen.len());
            figures["registry_saw_401"] =
                serde_json::json!(seen.iter().filter(|r| r.status == 401).count());
            figures["token_service_saw"] =
                serde_json::json!(reg.issuer().expect("token auth").requests().len());
            println!("{figures}");
        }
        _ => {
            eprintln!(
                "usage: bench_registry seed URL REPOSITORY TAGS | scan HOST PREFIX REPOS | scan-token STORAGE PREFIX REPOS"
            );
            return std::process::ExitCode::from(2);
        }
    }
    std::process::ExitCode::SUCCESS
}

fn scan(config: &RegistriesConfig, host: &str, prefix: &str, repos: usize) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let started = Instant::now();
        let registry = Registry::new(config).expect("a registry client");
        let images: Vec<ImageName> = (0..repos)
            .map(|i| ImageName::parse(&format!("{host}/{prefix}{i:03}")).expect("an image name"))
            .collect();
        let listed: Vec<usize> = futures::stream::iter(&images)
            .map(|image| {
                let registry = registry.clone();
                async move {
                    registry
                        .list_tags(image)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"))
                        .len()
                }
            })
            .buffer_unordered(SCAN_CONCURRENCY)
            .collect()
            .await;
        let wall = started.elapsed();
        let tally = registry.metrics().snapshot();
        serde_json::json!({
            "repositories": repos,
            "tags": listed.iter().sum::<usize>(),
            "scan_ms": wall.as_millis() as u64,
            "requests": tally.total_requests(),
            "tag_pages": tally.requests_of(host, "tags"),
            "token_requests": tally.requests_of(host, "token"),
            "bytes": tally.bytes.values().sum::<u64>(),
        })
    })
}
