//! The router through `tower::ServiceExt::oneshot`, as axum's examples test.

use std::sync::RwLock;

use axum::body::{Body, to_bytes};
use axum::http::Request;
use tower::ServiceExt as _;

use super::*;
use crate::status::{PolicyStatus, RepositoryStatus, Status};

struct Harness {
    app: Router,
    triggers: mpsc::Receiver<Vec<Push>>,
    state: Arc<AppState>,
}

fn harness(token: Option<&str>) -> Harness {
    let (tx, rx) = mpsc::channel(4);
    let state = Arc::new(AppState {
        status: Arc::new(RwLock::new(Status {
            version: "0.1.0".into(),
            repositories: vec![RepositoryStatus {
                name: "fleet".into(),
                remote: "file:///srv/fleet.git".into(),
                branch: "main".into(),
                push_branch: "main".into(),
                ..RepositoryStatus::default()
            }],
            ..Status::default()
        })),
        metrics: Arc::new(Metrics::new(|_| {})),
        triggers: tx,
        token: token.map(Secret::new),
    });
    Harness {
        app: router(state.clone()),
        triggers: rx,
        state,
    }
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post(path: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut request = Request::post(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

const GENERIC: &str = r#"{"image": "127.0.0.1:5000/demo/app", "tag": "1.2.0"}"#;

#[tokio::test]
async fn health_is_always_ok_and_readiness_follows_the_status() {
    let h = harness(None);
    assert_eq!(call(&h.app, get("/healthz")).await.0, StatusCode::OK);
    let (code, body) = call(&h.app, get("/readyz")).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.starts_with("not ready"), "{body}");
    assert!(body.contains("fleet: first pass not finished"), "{body}");
    h.state.status.write().unwrap().ready = true;
    assert_eq!(call(&h.app, get("/readyz")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_openmetrics_text() {
    let h = harness(None);
    let response = h.app.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("# TYPE crowsnest_ready gauge"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn status_json_and_page_show_each_policy_escaped() {
    let h = harness(None);
    h.state.status.write().unwrap().policies.push(PolicyStatus {
        repository: "fleet".into(),
        id: "default:<app>".into(),
        image: "127.0.0.1:5000/demo/app".into(),
        current: vec!["1.0.0".into()],
        latest: Some("1.2.0".into()),
        digest: None,
        up_to_date: false,
        last_scan: Some("2025-01-01T00:00:00Z".into()),
        last_commit: None,
        last_error: None,
        findings: vec!["apps/app.yaml:3:9: marker <b>names</b> a disabled policy".into()],
        promotion: None,
        verified: None,
        unsigned: Vec::new(),
        tag_moved: None,
        waiting_for_window: None,
    });
    let (code, json) = call(&h.app, get("/api/status")).await;
    assert_eq!(code, StatusCode::OK);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["policies"][0]["latest"], "1.2.0");
    assert_eq!(value["policies"][0]["current"][0], "1.0.0");
    assert_eq!(value["repositories"][0]["pushBranch"], "main");
    assert_eq!(value["policies"][0]["repository"], "fleet");
    let (code, html) = call(&h.app, get("/")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("default:&lt;app&gt;"), "{html}");
    assert!(!html.contains("<app>"));
    assert_eq!(
        value["policies"][0]["findings"][0],
        "apps/app.yaml:3:9: marker <b>names</b> a disabled policy"
    );
    assert!(html.contains("held back"), "{html}");
    assert!(html.contains("marker &lt;b&gt;names&lt;/b&gt;"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
}

#[tokio::test]
async fn webhooks_without_a_configured_token_are_accepted_and_trigger_a_scan() {
    let mut h = harness(None);
    let (code, body) = call(&h.app, post("/hooks/generic", &[], GENERIC)).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("127.0.0.1:5000/demo/app"), "{body}");
    let pushes = h.triggers.try_recv().unwrap();
    assert_eq!(pushes[0].repository, "demo/app");
}

#[tokio::test]
async fn webhooks_need_the_token_when_one_is_configured() {
    let mut h = harness(Some("hook-token"));
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, StatusCode);
    let cases: [Case<'_>; 5] = [
        ("/hooks/generic", vec![], StatusCode::UNAUTHORIZED),
        (
            "/hooks/generic",
            vec![("authorization", "Bearer nope".into())],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/hooks/generic",
            vec![("authorization", "Bearer hook-token".into())],
            StatusCode::ACCEPTED,
        ),
        (
            "/hooks/generic?token=hook-token",
            vec![],
            StatusCode::ACCEPTED,
        ),
        (
            "/hooks/github",
            vec![(
                "x-hub-signature-256",
                webhooks::github_signature("hook-token", GENERIC.as_bytes()),
            )],
            // Authorized; a generic body is not a package event: nothing to scan.
            StatusCode::ACCEPTED,
        ),
    ];
    for (path, headers, expected) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (code, body) = call(&h.app, post(path, &headers, GENERIC)).await;
        assert_eq!(code, expected, "{path} {headers:?}: {body}");
        assert!(!body.contains("hook-token"), "{body}");
    }
    assert_eq!(h.triggers.try_recv().unwrap().len(), 1);
    assert_eq!(h.triggers.try_recv().unwrap().len(), 1);
    assert!(
        h.triggers.try_recv().is_err(),
        "the unauthorized ones sent nothing"
    );
    let metrics = h.state.metrics.encode();
    assert!(
        metrics.contains("crowsnest_webhooks_total{source=\"generic\",result=\"unauthorized\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_payloads_and_unknown_endpoints_are_refused() {
    let h = harness(None);
    let (code, body) = call(&h.app, post("/hooks/generic", &[], "{")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let (code, body) = call(&h.app, post("/hooks/gitlab", &[], GENERIC)).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body.contains("distribution"), "{body}");
    let big = "x".repeat(webhooks::MAX_PAYLOAD_BYTES + 10);
    let (code, _) = call(&h.app, post("/hooks/generic", &[], &big)).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        call(&h.app, get("/hooks/generic")).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn a_full_trigger_queue_answers_503_so_the_registry_retries() {
    let h = harness(None);
    for _ in 0..4 {
        assert_eq!(
            call(&h.app, post("/hooks/generic", &[], GENERIC)).await.0,
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(
        call(&h.app, post("/hooks/generic", &[], GENERIC)).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
