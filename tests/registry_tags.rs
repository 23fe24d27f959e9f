//! Listing tags against the real CNCF registry: anonymous and htpasswd,
//! with the requests it sees counted from its access log. (2.8.2 returns
//! every tag in one response; pages are tested in registry_faults.rs.)

mod support;

use crowsnest::config::RegistriesConfig;
use crowsnest::model::ImageName;
use crowsnest::registry::{Registry, RegistryError};
use support::registry::{Auth, Logged, RegistryServer};

fn image(reg: &RegistryServer, repository: &str) -> ImageName {
    ImageName::parse(&format!("{}/{repository}", reg.host())).unwrap()
}

fn sorted(mut tags: Vec<String>) -> Vec<String> {
    tags.sort();
    tags
}

fn lines(requests: &[Logged]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path(), r.status))
        .collect()
}

#[tokio::test]
async fn anonymous_listing_is_one_request_per_repository() {
    let reg = RegistryServer::start(Auth::Anonymous);
    reg.push_tags("demo/app", &["1.0.0", "1.1.0", "2.0.0-rc.1"]);
    reg.push_tags("team/api", &["v1"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let mark = reg.request_count();

    let app = registry.list_tags(&image(&reg, "demo/app")).await.unwrap();
    let api = registry.list_tags(&image(&reg, "team/api")).await.unwrap();

    assert_eq!(sorted(app), ["1.0.0", "1.1.0", "2.0.0-rc.1"]);
    assert_eq!(api, ["v1"]);
    assert_eq!(
        lines(&reg.requests_since(mark)),
        [
            "GET /v2/demo/app/tags/list 200",
            "GET /v2/team/api/tags/list 200"
        ]
    );
    let tally = registry.metrics().snapshot();
    assert_eq!(tally.requests_of(&reg.host(), "tags"), 2);
    assert!(tally.bytes[&reg.host()] > 0);
}

#[tokio::test]
async fn the_registry_order_is_kept() {
    let reg = RegistryServer::start(Auth::Anonymous);
    let tags: Vec<String> = (0..40).map(|i| format!("0.{i}.0")).collect();
    let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    reg.push_tags("demo/app", &refs);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let listed = registry.list_tags(&image(&reg, "demo/app")).await.unwrap();
    let raw = reqwest::get(format!("{}/v2/demo/app/tags/list", reg.url()))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let raw: Vec<String> = serde_json::from_value(raw["tags"].clone()).unwrap();
    assert_eq!(listed, raw);
}

#[tokio::test]
async fn concurrent_listings_of_one_repository_share_one_request() {
    let reg = RegistryServer::start(Auth::Anonymous);
    reg.push_tags("demo/app", &["1.0.0"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let name = image(&reg, "demo/app");
    let mark = reg.request_count();
    let results = futures::future::join_all((0..5).map(|_| registry.list_tags(&name))).await;
    for result in results {
        assert_eq!(result.unwrap(), ["1.0.0"]);
    }
    assert_eq!(reg.requests_since(mark).len(), 1);
}

#[tokio::test]
async fn htpasswd_costs_one_challenge_per_host_then_only_pages() {
    let reg = RegistryServer::start(Auth::htpasswd("robot", "correct horse"));
    reg.push_tags("demo/app", &["1.0.0", "1.1.0"]);
    reg.push_tags("team/api", &["v1"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let mark = reg.request_count();

    let app = registry.list_tags(&image(&reg, "demo/app")).await.unwrap();
    let api = registry.list_tags(&image(&reg, "team/api")).await.unwrap();

    assert_eq!(sorted(app), ["1.0.0", "1.1.0"]);
    assert_eq!(api, ["v1"]);
    assert_eq!(
        lines(&reg.requests_since(mark)),
        [
            "GET /v2/demo/app/tags/list 401",
            "GET /v2/demo/app/tags/list 200",
            "GET /v2/team/api/tags/list 200",
        ]
    );
}

#[tokio::test]
async fn a_wrong_password_says_authentication_failed_and_never_the_password() {
    let reg = RegistryServer::start(Auth::htpasswd("robot", "correct horse"));
    reg.push_tags("demo/app", &["1.0.0"]);
    let mut config = reg.registries_config();
    let wrong = reg.dir().join("wrong-password");
    std::fs::write(&wrong, "battery staple\n").unwrap();
    config.hosts[0].password_file = Some(wrong.clone());
    let registry = Registry::new(&config).unwrap();
    let mark = reg.request_count();

    let err = registry
        .list_tags(&image(&reg, "demo/app"))
        .await
        .unwrap_err();

    assert!(matches!(err, RegistryError::AuthFailed { .. }), "{err:?}");
    assert_eq!(err.kind(), "auth_failed");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}/demo/app: authentication failed: ", reg.host())),
        "{message}"
    );
    assert!(message.contains(&wrong.display().to_string()), "{message}");
    assert!(!message.contains("battery") && !format!("{err:?}").contains("battery"));
    // The unauthenticated try and the one with the password: no hammering.
    assert_eq!(reg.requests_since(mark).len(), 2);
}

#[tokio::test]
async fn no_credentials_for_a_protected_registry_says_what_to_configure() {
    let reg = RegistryServer::start(Auth::htpasswd("robot", "pw"));
    reg.push_tags("demo/app", &["1.0.0"]);
    let mut config = reg.registries_config();
    config.hosts[0].username = None;
    config.hosts[0].password_file = None;
    let registry = Registry::new(&config).unwrap();
    let mark = reg.request_count();
    let err = registry
        .list_tags(&image(&reg, "demo/app"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth_required", "{err}");
    assert!(err.to_string().contains("passwordFile"), "{err}");
    assert_eq!(reg.requests_since(mark).len(), 1);
}

#[tokio::test]
async fn an_unreadable_password_file_names_the_file() {
    let reg = RegistryServer::start(Auth::htpasswd("robot", "pw"));
    let mut config = reg.registries_config();
    config.hosts[0].password_file = Some(reg.dir().join("missing-password"));
    let registry = Registry::new(&config).unwrap();
    let err = registry
        .list_tags(&image(&reg, "demo/app"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "credentials", "{err}");
    assert!(err.to_string().contains("missing-password"), "{err}");
}

#[tokio::test]
async fn an_unreachable_registry_is_named() {
    let mut reg = RegistryServer::start(Auth::Anonymous);
    let config = reg.registries_config();
    reg.stop();
    let registry = Registry::new(&config).unwrap();
    let err = registry
        .list_tags(&image(&reg, "demo/app"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "unreachable", "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}/demo/app: registry unreachable", reg.host())),
        "{err}"
    );
}

#[tokio::test]
async fn plain_http_is_used_only_for_insecure_hosts() {
    let reg = RegistryServer::start(Auth::Anonymous);
    reg.push_tags("demo/app", &["1.0.0"]);
    let registry = Registry::new(&RegistriesConfig::default()).unwrap();
    let mark = reg.request_count();
    let err = registry
        .list_tags(&image(&reg, "demo/app"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "tls", "{err}");
    assert!(err.to_string().contains("insecure: true"), "{err}");
    assert!(
        reg.requests_since(mark).is_empty(),
        "no HTTP request was made"
    );
}

#[tokio::test]
async fn an_unknown_repository_is_not_found() {
    let reg = RegistryServer::start(Auth::Anonymous);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let err = registry
        .list_tags(&image(&reg, "no/such"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "not_found", "{err}");
    assert!(err.to_string().contains("no/such"), "{err}");
}
