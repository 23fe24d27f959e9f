//! The daemon's HTTP surface (PRODUCT.md §6): health, readiness, metrics,
//! the status page and its JSON, and registry webhooks. Handlers only read
//! the shared status and metrics, and webhooks only send triggers to the
//! scheduler: nothing here scans, patches or commits.

mod page;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::model::Secret;
use crate::status::SharedStatus;
use crate::webhooks::{self, Credentials, Push, Source};

/// What the handlers share.
pub struct AppState {
    pub status: SharedStatus,
    pub metrics: Arc<Metrics>,
    /// To the scheduler: repositories to scan now.
    pub triggers: mpsc::Sender<Vec<Push>>,
    /// `http.webhookTokenFile`; `None` (loopback only) accepts any webhook.
    pub token: Option<Secret>,
}

/// Every route of the daemon.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(status_page))
        .route("/api/status", get(status_json))
        .route("/hooks/{source}", post(hook))
        .layer(DefaultBodyLimit::max(webhooks::MAX_PAYLOAD_BYTES))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let status = state.status.read().unwrap_or_else(|e| e.into_inner());
    if status.ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let waiting: Vec<String> = status
            .repositories
            .iter()
            .filter(|r| !r.ready)
            .map(|r| match &r.last_error {
                Some(error) => format!("{}: {error}", r.name),
                None => format!("{}: first pass not finished", r.name),
            })
            .collect();
        let why = waiting.join("; ");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn status_json(State(state): State<Arc<AppState>>) -> Response {
    let status = state
        .status
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Json(status).into_response()
}

async fn status_page(State(state): State<Arc<AppState>>) -> Html<String> {
    let status = state
        .status
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Html(page::render(&status))
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// `POST /hooks/{source}`: authenticate, parse, hand the repositories to
/// the scheduler. The tag in the payload is never used.
async fn hook(
    State(state): State<Arc<AppState>>,
    Path(source): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(source) = Source::from_name(&source) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "no webhook endpoint {source:?}; use one of: {}",
                Source::ALL.map(Source::name).join(", ")
            ),
        );
    };
    let name = source.name();
    if let Some(token) = &state.token {
        let query_token = query.as_deref().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        });
        let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let credentials = Credentials {
            authorization: header_text("authorization"),
            query_token: query_token.as_deref(),
            github_signature: header_text("x-hub-signature-256"),
        };
        if let Err(e) = webhooks::authorize(token.expose(), &credentials, &body) {
            warn!(source = name, reason = %e, "webhook refused");
            state.metrics.webhook(name, "unauthorized");
            return refuse(StatusCode::UNAUTHORIZED, e.to_string());
        }
    }
    let pushes = match webhooks::parse(source, &body) {
        Ok(pushes) => pushes,
        Err(e) => {
            warn!(source = name, error = %e, "webhook payload refused");
            state.metrics.webhook(name, e.kind());
            return refuse(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let repositories: Vec<String> = pushes
        .iter()
        .map(|p| match &p.registry {
            Some(r) => format!("{r}/{}", p.repository),
            None => p.repository.clone(),
        })
        .collect();
    if !pushes.is_empty() {
        info!(source = name, repositories = ?repositories, "webhook: scan requested");
        if state.triggers.try_send(pushes).is_err() {
            state.metrics.webhook(name, "busy");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many scans requested at once; retry later",
            );
        }
    }
    state.metrics.webhook(name, "accepted");
    (StatusCode::ACCEPTED, Json(json!({ "scan": repositories }))).into_response()
}

#[cfg(test)]
mod tests;
