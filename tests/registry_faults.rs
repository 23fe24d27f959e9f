//! Pagination, politeness and redirects, through the fault-injecting proxy
//! (a fake, in tests/support/fault_proxy.rs) in front of the real registry:
//! 2.8.2 itself never pages, throttles or fails. Every test asserts the
//! requests the proxy saw, not just the result.

mod support;

use std::time::{Duration, Instant};

use crowsnest::config::{HostConfig, RegistriesConfig};
use crowsnest::model::ImageName;
use crowsnest::registry::{Registry, RegistryOptions};
use support::fault_proxy::{Fault, FaultProxy, Paging};
use support::registry::{Auth, RegistryServer};

const TAGS: &str = "/tags/list";

fn config_for(host: &str) -> RegistriesConfig {
    RegistriesConfig {
        docker_config: None,
        hosts: vec![HostConfig {
            host: host.to_owned(),
            insecure: true,
            ..HostConfig::default()
        }],
    }
}

/// Quick retries so the tests do not sleep for long.
fn quick() -> RegistryOptions {
    RegistryOptions {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..RegistryOptions::default()
    }
}

fn registry_with(reg_tags: usize) -> (RegistryServer, Vec<String>) {
    let reg = RegistryServer::start(Auth::Anonymous);
    let tags: Vec<String> = (0..reg_tags).map(|i| format!("1.{i}.0")).collect();
    let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    reg.push_tags("demo/app", &refs);
    let listed = std::thread::spawn({
        let url = format!("{}/v2/demo/app/tags/list", reg.url());
        move || {
            reqwest::blocking::get(url)
                .unwrap()
                .json::<serde_json::Value>()
                .unwrap()
        }
    })
    .join()
    .unwrap();
    let order = serde_json::from_value(listed["tags"].clone()).unwrap();
    (reg, order)
}

fn image(host: &str) -> ImageName {
    ImageName::parse(&format!("{host}/demo/app")).unwrap()
}

#[tokio::test]
async fn pages_capped_at_100_are_followed_by_link_when_n_is_honoured() {
    let (reg, order) = registry_with(250);
    let proxy = FaultProxy::start(
        &reg.url(),
        Paging {
            cap: Some(100),
            honour_n: true,
        },
    );
    let registry = Registry::new(&config_for(&proxy.host())).unwrap();
    let tags = registry.list_tags(&image(&proxy.host())).await.unwrap();
    assert_eq!(tags, order);
    let pages: Vec<String> = proxy
        .seen_matching(TAGS)
        .iter()
        .map(|s| s.target.clone())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(
        pages[0], "/v2/demo/app/tags/list",
        "the first page asks for no n"
    );
    assert!(
        pages[1].contains("n=100") && pages[1].contains("last="),
        "{pages:?}"
    );
}

#[tokio::test]
async fn pages_of_a_registry_that_ignores_n_are_followed_too() {
    let (reg, order) = registry_with(230);
    let proxy = FaultProxy::start(
        &reg.url(),
        Paging {
            cap: Some(100),
            honour_n: false,
        },
    );
    let registry = Registry::new(&config_for(&proxy.host())).unwrap();
    let tags = registry.list_tags(&image(&proxy.host())).await.unwrap();
    assert_eq!(tags, order);
    assert_eq!(proxy.seen_matching(TAGS).len(), 3);
    assert_eq!(
        registry
            .metrics()
            .snapshot()
            .requests_of(&proxy.host(), "tags"),
        3
    );
}

#[tokio::test]
async fn a_429_is_waited_out_for_retry_after_then_retried_once() {
    let (reg, order) = registry_with(3);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    proxy.inject(TAGS, &[Fault::too_many("1")]);
    let registry = Registry::with_options(&config_for(&proxy.host()), quick()).unwrap();
    let started = Instant::now();
    let tags = registry.list_tags(&image(&proxy.host())).await.unwrap();
    assert_eq!(tags, order);
    let seen = proxy.seen_matching(TAGS);
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        [429, 200]
    );
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let tally = registry.metrics().snapshot();
    assert_eq!(tally.retries.values().sum::<u64>(), 1);
}

#[tokio::test]
async fn a_429_pauses_every_request_to_the_host_and_halves_the_rate() {
    let (reg, _) = registry_with(1);
    reg.push_tags("team/api", &["v1"]);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    let registry = Registry::with_options(&config_for(&proxy.host()), quick()).unwrap();
    // Warm up: ten quick listings set the measured sending rate.
    for _ in 0..10 {
        registry.list_tags(&image(&proxy.host())).await.unwrap();
    }
    proxy.inject("/demo/app/tags/list", &[Fault::too_many("1")]);
    let other = ImageName::parse(&format!("{}/team/api", proxy.host())).unwrap();
    let app = image(&proxy.host());
    let throttled = registry.list_tags(&app);
    let bystander = async {
        // Starts after the 429 has arrived.
        tokio::time::sleep(Duration::from_millis(300)).await;
        registry.list_tags(&other).await
    };
    let (a, b) = tokio::join!(throttled, bystander);
    a.unwrap();
    b.unwrap();
    let seen = proxy.seen();
    let refused = seen.iter().find(|s| s.status == 429).unwrap().at;
    let api = seen
        .iter()
        .find(|s| s.path() == "/v2/team/api/tags/list")
        .unwrap()
        .at;
    assert!(
        api - refused >= Duration::from_millis(950),
        "the other repository waited for Retry-After too: {:?}",
        api - refused
    );
    let mut text = String::new();
    let mut metrics = prometheus_client::registry::Registry::default();
    registry.register_metrics(&mut metrics);
    prometheus_client::encoding::text::encode(&mut text, &metrics).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("crowsnest_registry_rate_limit_millirequests_per_second{"))
        .unwrap();
    let limit: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(limit > 0.0, "a limit is in force after a 429: {line}");
}

#[tokio::test]
async fn a_retry_after_too_long_to_wait_fails_fast_and_sends_nothing_more() {
    let (reg, _) = registry_with(1);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    proxy.inject(TAGS, &[Fault::too_many("3600")]);
    let registry = Registry::with_options(&config_for(&proxy.host()), quick()).unwrap();
    let started = Instant::now();
    let err = registry.list_tags(&image(&proxy.host())).await.unwrap_err();
    assert_eq!(err.kind(), "rate_limited", "{err}");
    assert!(err.to_string().contains("3600s"), "{err}");
    let again = registry.list_tags(&image(&proxy.host())).await.unwrap_err();
    assert_eq!(again.kind(), "rate_limited", "{again}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(proxy.seen().len(), 1, "nothing sent while told to wait");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_reported() {
    let (reg, order) = registry_with(2);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    proxy.inject(TAGS, &[Fault::status(500), Fault::status(503)]);
    let registry = Registry::with_options(&config_for(&proxy.host()), quick()).unwrap();
    assert_eq!(
        registry.list_tags(&image(&proxy.host())).await.unwrap(),
        order
    );
    assert_eq!(
        proxy
            .seen_matching(TAGS)
            .iter()
            .map(|s| s.status)
            .collect::<Vec<_>>(),
        [500, 503, 200]
    );

    proxy.inject(TAGS, &vec![Fault::status(502); 4]);
    let err = registry.list_tags(&image(&proxy.host())).await.unwrap_err();
    assert_eq!(err.kind(), "server", "{err}");
    assert!(err.to_string().contains("HTTP 502 4 times"), "{err}");
    assert_eq!(proxy.seen_matching(TAGS).len(), 3 + 4, "1 try + 3 retries");
}

#[tokio::test]
async fn dropped_connections_and_truncated_bodies_are_retried() {
    let (reg, order) = registry_with(5);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    proxy.inject(TAGS, &[Fault::Drop, Fault::Truncate]);
    let registry = Registry::with_options(&config_for(&proxy.host()), quick()).unwrap();
    assert_eq!(
        registry.list_tags(&image(&proxy.host())).await.unwrap(),
        order
    );
    let faults: Vec<Option<Fault>> = proxy
        .seen_matching(TAGS)
        .into_iter()
        .map(|s| s.fault)
        .collect();
    assert_eq!(faults, [Some(Fault::Drop), Some(Fault::Truncate), None]);
}

#[tokio::test]
async fn a_slow_body_times_out_per_request_and_is_retried() {
    let (reg, order) = registry_with(5);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    let slow = Fault::Slow {
        total: Duration::from_secs(3),
    };
    proxy.inject(TAGS, std::slice::from_ref(&slow));
    let options = RegistryOptions {
        request_timeout: Duration::from_millis(600),
        ..quick()
    };
    let registry = Registry::with_options(&config_for(&proxy.host()), options).unwrap();
    let started = Instant::now();
    assert_eq!(
        registry.list_tags(&image(&proxy.host())).await.unwrap(),
        order
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(proxy.seen_matching(TAGS).len(), 2);

    proxy.inject(TAGS, &[slow.clone(), slow.clone(), slow.clone(), slow]);
    let err = registry.list_tags(&image(&proxy.host())).await.unwrap_err();
    assert_eq!(err.kind(), "timeout", "{err}");
    assert_eq!(proxy.seen_matching(TAGS).len(), 2 + 4);
}

#[tokio::test]
async fn a_response_over_the_cap_is_not_read_nor_retried() {
    let (reg, _) = registry_with(200);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    let options = RegistryOptions {
        max_tags_page_bytes: 1000,
        ..quick()
    };
    let registry = Registry::with_options(&config_for(&proxy.host()), options).unwrap();
    let err = registry.list_tags(&image(&proxy.host())).await.unwrap_err();
    assert_eq!(err.kind(), "too_large", "{err}");
    assert!(err.to_string().contains("1000 bytes"), "{err}");
    assert_eq!(proxy.seen().len(), 1);
}

#[tokio::test]
async fn requests_to_one_host_respect_the_concurrency_limit() {
    let reg = RegistryServer::start(Auth::Anonymous);
    let names: Vec<String> = (0..6).map(|i| format!("team/app{i}")).collect();
    for name in &names {
        reg.push_tags(name, &["1.0.0"]);
    }
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    proxy.inject(TAGS, &vec![Fault::Delay(Duration::from_millis(300)); 6]);
    let options = RegistryOptions {
        per_host_concurrency: 2,
        ..quick()
    };
    let registry = Registry::with_options(&config_for(&proxy.host()), options).unwrap();
    let images: Vec<ImageName> = names
        .iter()
        .map(|n| ImageName::parse(&format!("{}/{n}", proxy.host())).unwrap())
        .collect();
    let results = futures::future::join_all(images.iter().map(|i| registry.list_tags(i))).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(proxy.max_in_flight(), 2);
}

#[tokio::test]
async fn credentials_follow_a_redirect_only_within_the_same_origin() {
    // The same content on two registries: A wants a password, B does not.
    let a = RegistryServer::start(Auth::htpasswd("robot", "pw"));
    let b = RegistryServer::start(Auth::Anonymous);
    a.push_tags("demo/app", &["1.0.0"]);
    b.push_tags("demo/app", &["1.0.0"]);
    let front = FaultProxy::start(&a.url(), Paging::default());
    let elsewhere = FaultProxy::start(&b.url(), Paging::default());
    let mut config = a.registries_config();
    config.hosts[0].host = front.host();
    let registry = Registry::with_options(&config, quick()).unwrap();
    let name = image(&front.host());

    // First learn the challenge, so the next request carries the password.
    assert_eq!(registry.list_tags(&name).await.unwrap(), ["1.0.0"]);
    // Same origin: followed with credentials.
    front.inject(
        TAGS,
        &[Fault::Redirect(format!(
            "{}/v2/demo/app/tags/list?again=1",
            front.url()
        ))],
    );
    assert_eq!(registry.list_tags(&name).await.unwrap(), ["1.0.0"]);
    let seen = front.seen_matching(TAGS);
    let followed = seen.last().unwrap();
    assert!(followed.target.ends_with("again=1"));
    assert!(
        followed
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic ")),
        "{followed:?}"
    );
    // Another origin: followed without credentials.
    front.inject(
        TAGS,
        &[Fault::Redirect(format!(
            "{}/v2/demo/app/tags/list",
            elsewhere.url()
        ))],
    );
    assert_eq!(registry.list_tags(&name).await.unwrap(), ["1.0.0"]);
    let there = elsewhere.seen();
    assert_eq!(there.len(), 1);
    assert_eq!(there[0].authorization, None, "the password stayed home");
}

#[tokio::test]
async fn malformed_json_and_error_pages_fail_cleanly_then_the_next_scan_recovers() {
    let (reg, order) = registry_with(3);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    let registry = Registry::with_options(&config_for(&proxy.host()), quick()).unwrap();
    let app = image(&proxy.host());
    let bodies: [(&str, &str); 5] = [
        ("application/json", r#"{"name":"demo/app","tags":["1.0.0","#),
        ("text/html", "<html><body>502 Bad Gateway</body></html>"),
        ("application/json", r#"{"name":"demo/app","tags":"1.0.0"}"#),
        ("application/json", r#"{"name":"demo/app","tags":[1,2,3]}"#),
        ("application/json", ""),
    ];
    for (content_type, body) in bodies {
        proxy.inject(TAGS, &[Fault::body(content_type, body)]);
        let err = registry.list_tags(&app).await.unwrap_err();
        assert_eq!(err.kind(), "protocol", "{content_type} {body:?}: {err}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}/demo/app: ", proxy.host())),
            "names the registry and repository: {message}"
        );
        assert!(message.contains("not JSON"), "{message}");
    }
    assert_eq!(
        proxy.seen_matching(TAGS).len(),
        bodies.len(),
        "a 200 with a bad body is not retried within the scan"
    );
    // The faults are over: the next scan reads the real list.
    assert_eq!(registry.list_tags(&app).await.unwrap(), order);
}

#[tokio::test]
async fn a_json_tag_list_under_a_wrong_content_type_is_still_read() {
    // Some registries and proxies answer tags/list as text/plain or
    // octet-stream; the body decides, as with docker and skopeo.
    let (reg, order) = registry_with(3);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    let registry = Registry::with_options(&config_for(&proxy.host()), quick()).unwrap();
    for content_type in ["text/plain", "application/octet-stream", "text/html"] {
        proxy.inject(TAGS, &[Fault::set_header("Content-Type", content_type)]);
        assert_eq!(
            registry.list_tags(&image(&proxy.host())).await.unwrap(),
            order,
            "{content_type}"
        );
    }
    assert_eq!(proxy.seen_matching(TAGS).len(), 3);
}

#[tokio::test]
async fn tags_outside_the_oci_grammar_are_never_offered() {
    // docker-registry refuses such tags on push, so only a hostile or
    // broken registry lists them: the proxy plays that registry.
    let (reg, _) = registry_with(1);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    let registry = Registry::with_options(&config_for(&proxy.host()), quick()).unwrap();
    let long = "9".repeat(10_000);
    let listing = serde_json::json!({"name": "demo/app", "tags": [
        "1.0.0",
        "1.0.1\nImage-Update: default:app evil:1 -> evil:2",
        "\u{1b}[2J1.0.2",
        "1.0.3\r",
        "1.0.4\u{0}",
        long,
        "../../1.0.5",
        "1.0.6 # comment",
        "1.0.7",
    ]});
    proxy.inject(
        TAGS,
        &[Fault::body("application/json", listing.to_string())],
    );
    assert_eq!(
        registry.list_tags(&image(&proxy.host())).await.unwrap(),
        ["1.0.0", "1.0.7"]
    );
}

#[tokio::test]
async fn a_forged_or_malformed_digest_is_refused_then_the_real_one_is_read() {
    let reg = RegistryServer::start(Auth::Anonymous);
    let pushed = reg.push_tags("demo/app", &["1.0.0"]);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    let registry = Registry::with_options(&config_for(&proxy.host()), quick()).unwrap();
    let app = image(&proxy.host());
    let always = crowsnest::model::DigestReflection::Always;
    for forged in [
        "sha256:../../../etc/passwd",
        "sha256:ABCDEF",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:0123 # {\"$imagepolicy\": \"x:y\"}",
        &format!("sha256:{}", "a".repeat(10_000)),
    ] {
        proxy.inject(
            "/manifests/",
            &[Fault::set_header("Docker-Content-Digest", forged)],
        );
        let err = registry
            .digest(&app, "1.0.0", always, None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "protocol", "{forged}: {err}");
        assert!(err.to_string().contains("invalid digest"), "{err}");
        assert!(
            err.to_string().len() < 400,
            "the message stays short: {err}"
        );
    }
    // The GET path (a platform asks for the manifest body) checks it too.
    let platform = crowsnest::model::Platform::parse("linux/amd64").unwrap();
    proxy.inject(
        "/manifests/",
        &[Fault::set_header("Docker-Content-Digest", "sha1:abc")],
    );
    let err = registry
        .inspect(&app, "1.0.0", Some(&platform))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "protocol", "{err}");
    // No more faults: the registry's own digest.
    let digest = registry
        .digest(&app, "1.0.0", always, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(digest, pushed[0].digest);
}

#[tokio::test]
async fn a_100000_tag_list_is_read_and_the_policy_picks_from_all_of_it() {
    // The proxy serves the list: filling the real registry takes 100,000
    // pushes (8 minutes here), or 100,000 tag directories in its storage,
    // which this machine's disk takes many minutes to delete again.
    let (reg, _) = registry_with(1);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    let mut tags: Vec<String> = (0..100_000)
        .map(|i| format!("2.{}.{}", i / 1000, i % 1000))
        .collect();
    tags.rotate_left(31_337);
    let listing = serde_json::json!({"name": "demo/app", "tags": tags});
    let body = listing.to_string();
    assert!(body.len() > 1_000_000);
    proxy.inject(TAGS, &[Fault::body("application/json", body)]);
    let registry = Registry::with_options(&config_for(&proxy.host()), quick()).unwrap();
    let started = Instant::now();
    let listed = registry.list_tags(&image(&proxy.host())).await.unwrap();
    let took = started.elapsed();
    assert_eq!(listed, tags, "every tag, in the registry's order");
    assert!(took < Duration::from_secs(10), "{took:?}");

    let range = crowsnest::policy::Range::parse(">=2.0.0 <3.0.0").unwrap();
    let rule = crowsnest::policy::Rule::Semver(range);
    let exclusions = crowsnest::policy::Exclusions::default();
    let selector = crowsnest::policy::Selector {
        rule: &rule,
        filter: None,
        exclusions: &exclusions,
    };
    let picked = selector.select(&listed).unwrap();
    assert_eq!(listed[picked], "2.99.999");
}

#[tokio::test]
async fn every_kind_of_backoff_shows_in_the_metrics_and_the_host_recovers() {
    let (reg, order) = registry_with(2);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    let options = RegistryOptions {
        request_timeout: Duration::from_millis(500),
        max_retries: 4,
        ..quick()
    };
    let registry = Registry::with_options(&config_for(&proxy.host()), options).unwrap();
    let app = image(&proxy.host());
    proxy.inject(
        TAGS,
        &[
            Fault::too_many("0"),
            Fault::status(500),
            Fault::Drop,
            Fault::Slow {
                total: Duration::from_secs(2),
            },
        ],
    );
    assert_eq!(registry.list_tags(&app).await.unwrap(), order);

    let mut metrics = prometheus_client::registry::Registry::default();
    registry.register_metrics(&mut metrics);
    let scrape = |metrics: &prometheus_client::registry::Registry| {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, metrics).unwrap();
        text
    };
    let text = scrape(&metrics);
    let host = proxy.host();
    for reason in ["rate_limited", "server_error", "transport", "timeout"] {
        let line =
            format!(r#"crowsnest_registry_retries_total{{host="{host}",reason="{reason}"}} 1"#);
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
    // The dropped connection counts as `error`; the slow answer's head
    // arrived (200) before its body timed out, so 200 counts twice.
    for (status, count) in [("429", 1), ("500", 1), ("error", 1), ("200", 2)] {
        let line = format!(
            r#"crowsnest_registry_requests_total{{host="{host}",kind="tags",status="{status}"}} {count}"#
        );
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }

    // Recovery: the next scans go straight through, with no retry.
    for _ in 0..3 {
        assert_eq!(registry.list_tags(&app).await.unwrap(), order);
    }
    let tally = registry.metrics().snapshot();
    assert_eq!(tally.retries.values().sum::<u64>(), 4);
    assert_eq!(proxy.seen_matching(TAGS).len(), 5 + 3);
}

/// `crowsnest once` through the proxy: a failing registry fails the pass
/// with a message naming it and changes nothing; once it recovers, the
/// update lands exactly once, signed.
#[test]
fn once_changes_nothing_while_the_registry_fails_and_updates_once_it_recovers() {
    use support::fleet::{Fleet, assert_exit, crowsnest, text};
    let reg = RegistryServer::start(Auth::Anonymous);
    let proxy = FaultProxy::start(&reg.url(), Paging::default());
    let fx = Fleet::new(reg, Some(&proxy.host()));
    let config = fx.config();
    let before = fx.remote.tip("main");
    let once = || {
        crowsnest(
            env!("CARGO_BIN_EXE_crowsnest"),
            fx.dir.path(),
            &["once", "--config", config.to_str().unwrap()],
        )
    };
    let faults: [(&[Fault], &str); 4] = [
        (
            &[
                Fault::status(500),
                Fault::status(500),
                Fault::status(502),
                Fault::status(503),
            ],
            "HTTP 503 4 times",
        ),
        (
            &[Fault::body("application/json", "{\"tags\": [\"6.9.9\"")],
            "not JSON",
        ),
        (
            &[Fault::body("text/html", "<h1>Service Unavailable</h1>")],
            "not JSON",
        ),
        (&[Fault::too_many("3600")], "rate limited"),
    ];
    for (faults, expected) in faults {
        proxy.inject(TAGS, faults);
        let output = once();
        assert_exit(&output, 1);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "error: default:podinfo: {}/demo/podinfo: ",
                proxy.host()
            )),
            "names the policy, registry and repository: {stderr}"
        );
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert_eq!(
            fx.remote.tip("main"),
            before,
            "no update while the registry fails"
        );
    }
    assert_exit(&once(), 0);
    assert_exit(&once(), 0);
    assert_eq!(fx.deployed(), "6.1.0");
    assert_eq!(fx.assert_trail(), [fx.trailer("6.0.0", "6.1.0")]);
}
