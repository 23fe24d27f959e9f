//! The one error type of the `git` module.

use std::path::PathBuf;

/// What went wrong talking to the remote or writing a commit. Every message
/// names the remote (without credentials) and, where one is involved, the
/// branch, says what happened and what to do about it. Secrets never appear.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{remote}: cannot keep the clone in {path}: {source}; check that stateDir is writable")]
    StateDir {
        remote: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{remote}: cannot fetch branch {branch}: {message}; check git.url, the network and the credentials"
    )]
    Fetch {
        remote: String,
        branch: String,
        message: String,
    },

    #[error("{remote}: cannot push to branch {branch}: {message}")]
    Push {
        remote: String,
        branch: String,
        message: String,
    },

    #[error("{remote}: authentication failed: {message}")]
    Auth { remote: String, message: String },

    #[error("{remote}: refusing to connect: {message}")]
    HostKey { remote: String, message: String },

    #[error(
        "{remote}: refusing to connect: the server's TLS certificate is not trusted ({message}); \
         crowsnest checks it against the system's CA roots, or the bundle named by SSL_CERT_FILE / SSL_CERT_DIR"
    )]
    Tls { remote: String, message: String },

    #[error("{path}: {message}")]
    KnownHosts { path: PathBuf, message: String },

    #[error("{path}: cannot read {what}: {source}")]
    ReadSecret {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{remote}: branch {branch} does not exist on the remote; create it there or fix git.branch"
    )]
    BranchNotFound { remote: String, branch: String },

    #[error("{remote}: {dir:?} is not a folder in commit {commit} of branch {branch}")]
    DirNotFound {
        remote: String,
        branch: String,
        commit: String,
        dir: String,
    },

    #[error("{path}: {reason}; crowsnest only rewrites regular files that exist in the branch")]
    NotWritable { path: String, reason: &'static str },

    #[error("{remote}: no change to commit on branch {branch}: every edit matches the branch")]
    NothingToCommit { remote: String, branch: String },

    #[error("{key_file}: cannot sign with this key: {message}")]
    Signing { key_file: PathBuf, message: String },

    #[error(transparent)]
    Template(#[from] crate::message::MessageError),

    #[error(
        "{remote}: branch {branch} kept moving: gave up after {attempts} attempts to push on top of it; the next pass tries again"
    )]
    Conflict {
        remote: String,
        branch: String,
        attempts: u32,
    },

    #[error(
        "{remote}: the server rejected the push to branch {branch}: {message}; check branch protection and server hooks, crowsnest never force-pushes it"
    )]
    Rejected {
        remote: String,
        branch: String,
        message: String,
    },

    #[error("{remote}: local clone: {what}: {message}")]
    Repository {
        remote: String,
        what: &'static str,
        message: String,
    },
}

impl GitError {
    /// A short stable label for the `errors_total{kind=...}` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            GitError::StateDir { .. } => "state_dir",
            GitError::Fetch { .. } => "fetch",
            GitError::Push { .. } => "push",
            GitError::Auth { .. } => "auth",
            GitError::HostKey { .. } => "host_key",
            GitError::Tls { .. } => "tls",
            GitError::KnownHosts { .. } => "known_hosts",
            GitError::ReadSecret { .. } => "read_secret",
            GitError::BranchNotFound { .. } => "branch_not_found",
            GitError::DirNotFound { .. } => "dir_not_found",
            GitError::NotWritable { .. } => "not_writable",
            GitError::NothingToCommit { .. } => "nothing_to_commit",
            GitError::Signing { .. } => "signing",
            GitError::Template(_) => "template",
            GitError::Conflict { .. } => "conflict",
            GitError::Rejected { .. } => "rejected",
            GitError::Repository { .. } => "repository",
        }
    }
}
