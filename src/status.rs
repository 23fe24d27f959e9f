//! What the daemon is doing, as `GET /api/status` returns it and the status
//! page renders it. The scheduler publishes a fresh [`Status`] after every
//! scan round and pass; the HTTP handlers only read it. No field holds a
//! secret: error texts come from errors that never contain one.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Serialize;

/// The status shared between the scheduler (writer) and HTTP (readers).
pub type SharedStatus = Arc<RwLock<Status>>;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// True once every repository of this shard has had its first pass
    /// (finished, or failed on its own: an unreachable remote does not
    /// keep the daemon unready).
    pub ready: bool,
    pub version: String,
    /// `I/N` with `--shard`.
    pub shard: Option<String>,
    pub started_at: String,
    /// The repository entries of this shard, in config order.
    pub repositories: Vec<RepositoryStatus>,
    /// Every policy of every repository, by repository then id.
    pub policies: Vec<PolicyStatus>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryStatus {
    /// The entry's name in the config.
    pub name: String,
    /// The Git remote (never holds a password: the config refuses one).
    pub remote: String,
    pub branch: String,
    pub push_branch: String,
    /// True once its first pass finished.
    pub ready: bool,
    pub last_pass: Option<PassStatus>,
    pub last_commit: Option<CommitStatus>,
    /// The last failure of the repository as a whole (clone, fetch, push).
    pub last_error: Option<String>,
    /// Problems in its policies or manifests at the last pass
    /// (`file:line:col: message`); each holds back only what it touches.
    pub findings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassStatus {
    pub finished_at: String,
    pub duration_ms: u64,
    /// `ok` or `failed`.
    pub result: String,
    pub changes: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitStatus {
    pub id: String,
    pub at: String,
    /// The commit's `Image-Update` trailer values.
    pub updates: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// The repository entry whose files use it.
    pub repository: String,
    /// `namespace:name`.
    pub id: String,
    /// Empty for a policy that could not be read (see `findings`).
    pub image: String,
    /// The tags the repository's files hold for it now.
    pub current: Vec<String>,
    /// The tag the policy selects from the last scan.
    pub latest: Option<String>,
    pub digest: Option<String>,
    /// True when every file already holds `latest`.
    pub up_to_date: bool,
    pub last_scan: Option<String>,
    /// The last commit this daemon pushed for the policy.
    pub last_commit: Option<String>,
    pub last_error: Option<String>,
    /// Problems holding it back (all of it when the policy is disabled,
    /// or some of its markers and targets).
    pub findings: Vec<String>,
    /// For a promotion: its source and candidates.
    pub promotion: Option<PromotionStatus>,
    /// With `verify`: the verified digest and key of the pick.
    pub verified: Option<String>,
    /// With `verify`: better tags passed over, `tag: verdict`.
    pub unsigned: Vec<String>,
    /// The tag the files hold points to another digest than the one
    /// written for it (followed only without `verify`, under `Always`).
    pub tag_moved: Option<String>,
    /// Its change waits for its window: when the window opens.
    pub waiting_for_window: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionStatus {
    /// `namespace:name` of the source policy.
    pub from: String,
    /// The `repositories` entry it is read from.
    pub repository: String,
    /// The value picked at the last pass, and the source commit it
    /// landed with.
    pub picked: Option<String>,
    pub picked_commit: Option<String>,
    /// A candidate still soaking, and when it becomes eligible.
    pub soaking: Option<String>,
    pub eligible_at: Option<String>,
    /// Every candidate, newest first: `value: verdict`.
    pub candidates: Vec<String>,
    /// The last commit that promoted a value for it (from the branch's
    /// `Promoted-From` trailers; `None` before the first).
    pub last_promotion: Option<LastPromotionStatus>,
}

/// A promotion's last promotion.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastPromotionStatus {
    /// The value it wrote.
    pub value: String,
    pub commit: String,
    /// RFC 3339, the commit's time.
    pub at: String,
    /// The source commit the value landed with.
    pub source_commit: String,
}

/// RFC 3339 in UTC, seconds precision.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}
