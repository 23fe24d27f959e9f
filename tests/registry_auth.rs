//! The bearer-token flow against the real CNCF registry in `auth: token`
//! mode, which validates the ES256 JWTs of the test issuer itself; docker
//! `config.json` credentials; TLS with a private CA. Requests to the
//! registry and to the token service are counted.

mod support;

use std::time::Duration;

use crowsnest::config::RegistriesConfig;
use crowsnest::model::ImageName;
use crowsnest::registry::Registry;
use support::registry::{Auth, Logged, RegistryServer};
use support::token::IssuerOptions;

fn image(reg: &RegistryServer, repository: &str) -> ImageName {
    ImageName::parse(&format!("{}/{repository}", reg.host())).unwrap()
}

fn lines(requests: &[Logged]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path(), r.status))
        .collect()
}

fn private(lifetime: Duration) -> Auth {
    Auth::Token(IssuerOptions {
        credentials: Some(("robot".into(), "hunter2".into())),
        refresh_token: None,
        lifetime,
    })
}

#[tokio::test]
async fn anonymous_tokens_cost_one_request_per_repository_and_are_reused() {
    let reg = RegistryServer::start(Auth::Token(IssuerOptions::default()));
    reg.push_tags("demo/app", &["1.0.0"]);
    reg.push_tags("team/api", &["v1"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let issuer = reg.issuer().unwrap();
    let mark = reg.request_count();

    for _ in 0..3 {
        assert_eq!(
            registry.list_tags(&image(&reg, "demo/app")).await.unwrap(),
            ["1.0.0"]
        );
        assert_eq!(
            registry.list_tags(&image(&reg, "team/api")).await.unwrap(),
            ["v1"]
        );
    }

    // One challenge for the host, then only pages: 1 + 6.
    let seen = lines(&reg.requests_since(mark));
    assert_eq!(seen[0], "GET /v2/demo/app/tags/list 401");
    assert_eq!(seen.len(), 7, "{seen:#?}");
    assert!(seen[1..].iter().all(|l| l.ends_with(" 200")), "{seen:#?}");
    let tokens = issuer.requests();
    assert_eq!(
        tokens
            .iter()
            .map(|t| t.scopes.join(" "))
            .collect::<Vec<_>>(),
        ["repository:demo/app:pull", "repository:team/api:pull"]
    );
    assert!(tokens.iter().all(|t| t.presented.is_none() && t.granted));
    let tally = registry.metrics().snapshot();
    assert_eq!(tally.tokens[&reg.host()], 2);
    assert_eq!(tally.requests_of(&reg.host(), "token"), 2);
}

#[tokio::test]
async fn credentials_go_to_the_token_service_and_a_token_lives_until_it_expires() {
    let reg = RegistryServer::start(private(Duration::from_secs(2)));
    reg.push_tags("demo/app", &["1.0.0"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let issuer = reg.issuer().unwrap();
    let name = image(&reg, "demo/app");

    registry.list_tags(&name).await.unwrap();
    registry.list_tags(&name).await.unwrap();
    assert_eq!(issuer.requests().len(), 1, "reused within its lifetime");
    assert_eq!(issuer.requests()[0].presented.as_deref(), Some("robot"));

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mark = reg.request_count();
    registry.list_tags(&name).await.unwrap();
    assert_eq!(issuer.requests().len(), 2, "a new token after expiry");
    assert_eq!(
        lines(&reg.requests_since(mark)),
        ["GET /v2/demo/app/tags/list 200"],
        "refreshed before use, not after a 401"
    );
}

#[tokio::test]
async fn concurrent_requests_for_one_repository_wait_for_one_token() {
    let reg = RegistryServer::start(Auth::Token(IssuerOptions::default()));
    let tags = ["1", "2", "3", "4", "5", "6"];
    reg.push_tags("demo/app", &tags);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let name = image(&reg, "demo/app");
    // Learn the challenge first.
    registry.list_tags(&name).await.unwrap();
    let other = image(&reg, "demo/other");
    reg.push_tags("demo/other", &tags);
    let results =
        futures::future::join_all(tags.iter().map(|t| registry.inspect(&other, t, None))).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let scopes: Vec<String> = reg
        .issuer()
        .unwrap()
        .requests()
        .iter()
        .map(|t| t.scopes.join(" "))
        .collect();
    assert_eq!(
        scopes,
        ["repository:demo/app:pull", "repository:demo/other:pull"]
    );
}

#[tokio::test]
async fn a_wrong_password_at_the_token_service_is_an_authentication_failure() {
    let reg = RegistryServer::start(private(Duration::from_secs(300)));
    let mut config = reg.registries_config();
    let wrong = reg.dir().join("wrong");
    std::fs::write(&wrong, "hunter3").unwrap();
    config.hosts[0].password_file = Some(wrong);
    let registry = Registry::new(&config).unwrap();
    let err = registry
        .list_tags(&image(&reg, "demo/app"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth_failed", "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}/demo/app: authentication failed", reg.host())),
        "{message}"
    );
    assert!(message.contains("token service refused"), "{message}");
    assert!(!message.contains("hunter3"));
    assert_eq!(reg.issuer().unwrap().requests().len(), 1);
}

#[tokio::test]
async fn no_credentials_for_a_private_token_registry_says_what_to_configure() {
    let reg = RegistryServer::start(private(Duration::from_secs(300)));
    let mut config = reg.registries_config();
    config.hosts[0].username = None;
    config.hosts[0].password_file = None;
    let registry = Registry::new(&config).unwrap();
    let err = registry
        .list_tags(&image(&reg, "demo/app"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth_required", "{err}");
}

#[tokio::test]
async fn docker_config_auths_supply_the_password() {
    let reg = RegistryServer::start(Auth::htpasswd("robot", "pa:ss"));
    reg.push_tags("demo/app", &["1.0.0"]);
    let docker = reg.dir().join("docker-config.json");
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "robot:pa:ss");
    std::fs::write(
        &docker,
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let mut host = reg.host_config();
    host.username = None;
    host.password_file = None;
    let config = RegistriesConfig {
        docker_config: Some(docker),
        hosts: vec![host],
    };
    let registry = Registry::new(&config).unwrap();
    assert_eq!(
        registry.list_tags(&image(&reg, "demo/app")).await.unwrap(),
        ["1.0.0"]
    );
}

#[tokio::test]
async fn a_docker_identity_token_is_exchanged_with_the_refresh_token_grant() {
    let reg = RegistryServer::start(Auth::Token(IssuerOptions {
        credentials: Some(("robot".into(), "unused".into())),
        refresh_token: Some("refresh-me".into()),
        lifetime: Duration::from_secs(300),
    }));
    reg.push_tags("demo/app", &["1.0.0"]);
    let docker = reg.dir().join("docker-config.json");
    std::fs::write(
        &docker,
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"refresh-me"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let mut host = reg.host_config();
    host.username = None;
    host.password_file = None;
    let registry = Registry::new(&RegistriesConfig {
        docker_config: Some(docker),
        hosts: vec![host],
    })
    .unwrap();
    assert_eq!(
        registry.list_tags(&image(&reg, "demo/app")).await.unwrap(),
        ["1.0.0"]
    );
    let requests = reg.issuer().unwrap().requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].presented.as_deref(),
        Some("grant_type=refresh_token")
    );
}

#[tokio::test]
async fn tls_with_the_hosts_ca_file_works_and_without_it_says_to_set_one() {
    let reg = RegistryServer::start_tls(Auth::htpasswd("robot", "pw"));
    reg.push_tags("demo/app", &["1.0.0"]);
    let registry = Registry::new(&reg.registries_config()).unwrap();
    assert_eq!(
        registry.list_tags(&image(&reg, "demo/app")).await.unwrap(),
        ["1.0.0"]
    );

    let mut config = reg.registries_config();
    config.hosts[0].ca_file = None;
    let registry = Registry::new(&config).unwrap();
    let mark = reg.request_count();
    let err = registry
        .list_tags(&image(&reg, "demo/app"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "tls", "{err}");
    assert!(err.to_string().contains("caFile"), "{err}");
    assert!(reg.requests_since(mark).is_empty());
}

#[tokio::test]
async fn a_ca_file_that_is_not_a_certificate_is_refused_up_front() {
    let reg = RegistryServer::start_tls(Auth::Anonymous);
    let mut config = reg.registries_config();
    let junk = reg.dir().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    config.hosts[0].ca_file = Some(junk);
    let err = Registry::new(&config).err().unwrap();
    assert_eq!(err.kind(), "setup");
    assert!(err.to_string().contains("junk.pem"), "{err}");
}

#[tokio::test]
async fn concurrent_first_requests_to_a_new_host_collect_one_challenge() {
    let reg = RegistryServer::start(Auth::Token(IssuerOptions::default()));
    let names: Vec<String> = (0..8).map(|i| format!("team/app{i}")).collect();
    for name in &names {
        reg.push_tags(name, &["1.0.0"]);
    }
    let registry = Registry::new(&reg.registries_config()).unwrap();
    let images: Vec<ImageName> = names.iter().map(|n| image(&reg, n)).collect();
    let mark = reg.request_count();
    let results = futures::future::join_all(images.iter().map(|i| registry.list_tags(i))).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let seen = lines(&reg.requests_since(mark));
    assert_eq!(
        seen.iter().filter(|l| l.ends_with(" 401")).count(),
        1,
        "{seen:#?}"
    );
    assert_eq!(seen.len(), 1 + 8);
    assert_eq!(reg.issuer().unwrap().requests().len(), 8);
}
