//! The registry test support itself, against the real `docker-registry`:
//! pushes land, each auth mode challenges the way real registries do, the
//! access log counts requests, and the fault proxy pages like Quay.

mod support;

use std::time::Duration;

use support::fault_proxy::{FaultProxy, Paging};
use support::registry::{Auth, RegistryServer};
use support::token::IssuerOptions;

/// A blocking GET on a thread of its own; returns status, headers, body.
fn get(
    url: &str,
    authorization: Option<String>,
    ca: Option<&std::path::Path>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let url = url.to_owned();
    let ca = ca.map(|c| std::fs::read(c).unwrap());
    std::thread::spawn(move || {
        let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10));
        if let Some(pem) = ca {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        let mut request = builder.build().unwrap().get(&url);
        if let Some(a) = authorization {
            request = request.header("Authorization", a);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().unwrap())
    })
    .join()
    .unwrap()
}

fn tags_of(body: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    value["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn anonymous_pushes_are_listed_and_counted_in_the_access_log() {
    let reg = RegistryServer::start(Auth::Anonymous);
    let pushed = reg.push_tags("demo/app", &["1.0.0", "1.1.0", "2.0.0"]);
    assert_eq!(pushed.len(), 3);
    assert_ne!(
        pushed[0].digest, pushed[1].digest,
        "each tag has its own manifest"
    );
    let before = reg.request_count();
    // 2 blob requests (POST, PUT) and 3 manifest PUTs.
    assert_eq!(before, 5, "{:?}", reg.requests());
    let (status, _, body) = get(&format!("{}/v2/demo/app/tags/list", reg.url()), None, None);
    assert_eq!(status, 200);
    // 2.8.2 lists in directory order, not sorted.
    let mut listed = tags_of(&body);
    listed.sort();
    assert_eq!(listed, ["1.0.0", "1.1.0", "2.0.0"]);
    let after = reg.requests_since(before);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (after[0].method.as_str(), after[0].path()),
        ("GET", "/v2/demo/app/tags/list")
    );
}

#[test]
fn htpasswd_registry_challenges_with_basic_and_accepts_the_password() {
    let reg = RegistryServer::start(Auth::htpasswd("robot", "s3cret"));
    reg.push_tags("team/api", &["0.1.0"]);
    let url = format!("{}/v2/team/api/tags/list", reg.url());
    let (status, headers, _) = get(&url, None, None);
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "robot:s3cret")
    );
    let (status, _, body) = get(&url, Some(basic), None);
    assert_eq!(status, 200);
    assert_eq!(tags_of(&body), ["0.1.0"]);
}

#[test]
fn token_registry_validates_tokens_signed_by_the_test_issuer() {
    let reg = RegistryServer::start(Auth::Token(IssuerOptions::default()));
    reg.push_tags("demo/app", &["1.0.0"]);
    let url = format!("{}/v2/demo/app/tags/list", reg.url());
    let (status, headers, _) = get(&url, None, None);
    assert_eq!(status, 401);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert!(
        challenge.contains("scope=\"repository:demo/app:pull\""),
        "{challenge}"
    );
    let issuer = reg.issuer().unwrap();
    let (status, _, body) = get(
        &format!(
            "{}?service=test-registry&scope=repository:demo/app:pull",
            issuer.realm()
        ),
        None,
        None,
    );
    assert_eq!(status, 200);
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    let (status, _, body) = get(&url, Some(bearer.clone()), None);
    assert_eq!(status, 200, "{body}\n{}", reg.log_text());
    assert_eq!(tags_of(&body), ["1.0.0"]);
    // A pull token does not reach another repository.
    let (status, _, _) = get(
        &format!("{}/v2/other/tags/list", reg.url()),
        Some(bearer),
        None,
    );
    assert_eq!(status, 401);
    assert_eq!(issuer.requests().len(), 1);
}

#[test]
fn tls_registry_is_trusted_with_its_ca_only() {
    let reg = RegistryServer::start_tls(Auth::Anonymous);
    reg.push_tags("demo/app", &["1.0.0"]);
    let (status, _, body) = get(
        &format!("{}/v2/demo/app/tags/list", reg.url()),
        None,
        reg.ca_file(),
    );
    assert_eq!(status, 200);
    assert_eq!(tags_of(&body), ["1.0.0"]);
}

#[test]
fn fault_proxy_pages_tags_with_link_headers() {
    let reg = RegistryServer::start(Auth::Anonymous);
    let tags: Vec<String> = (0..250).map(|i| format!("1.0.{i:03}")).collect();
    let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    reg.push_tags("demo/app", &refs);
    let (_, _, body) = get(&format!("{}/v2/demo/app/tags/list", reg.url()), None, None);
    let upstream_order = tags_of(&body);
    let proxy = FaultProxy::start(
        &reg.url(),
        Paging {
            cap: Some(100),
            honour_n: true,
        },
    );
    let mut url = format!("http://{}/v2/demo/app/tags/list?n=1000", proxy.host());
    let mut listed = Vec::new();
    loop {
        let (status, headers, body) = get(&url, None, None);
        assert_eq!(status, 200);
        listed.extend(tags_of(&body));
        match headers.get("link") {
            Some(link) => {
                let link = link.to_str().unwrap();
                let next = &link[1..link.find('>').unwrap()];
                url = format!("http://{}{next}", proxy.host());
            }
            None => break,
        }
    }
    assert_eq!(listed, upstream_order);
    assert_eq!(listed.len(), tags.len());
    assert_eq!(proxy.seen_matching("/tags/list").len(), 3);
}
