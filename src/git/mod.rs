//! Git write-back: a persistent bare clone in `stateDir`, commits built
//! straight from the fetched tip (no worktree, no checkout), signed when
//! configured, pushed with a compare-and-swap on the branch.
//!
//! The flow of one pass, all blocking (call it from `spawn_blocking`):
//!
//! ```text
//! Repo::open      once: reuse stateDir/repo.git, or clone it (again when it is
//!                 corrupt or git.url changed)
//! Repo::fetch     every pass: the Base to build on
//! Repo::files / Repo::read      the files of the Base's tree, as blobs
//! Repo::commit    one commit on top of Base holding every edit
//! Repo::push      Pushed | NonFastForward (fetch, re-plan, retry) | Rejected
//! ```
//!
//! [`Repo::write_back`] runs fetch → plan → commit → push with bounded,
//! jittered retries on non-fast-forward, which is what reconcile needs.
//!
//! `branch` is never force-pushed. With `pushBranch` ≠ `branch` (review
//! workflow) the push branch is created from `branch`, extended while it
//! still contains `branch`'s tip, and rebuilt from `branch` — a
//! force-with-lease on the push branch only — once `branch` has moved past
//! it (its pull request merged, or other commits landed).
//!
//! Remotes:
//! - `ssh://`: key auth (`sshKeyFile`, optional `sshPassphraseFile`); the
//!   server's host key must be listed in `knownHostsFile` ([`known_hosts`]:
//!   `[host]:port` names, wildcards, hashed `|1|` names, `@revoked`). An
//!   unknown or changed key is refused; there is no accept-anything mode.
//! - `http(s)://`: `username` + `passwordFile` (password or token); TLS
//!   certificates are checked against the system roots, or the bundle in
//!   `SSL_CERT_FILE` / `SSL_CERT_DIR`.
//! - `file://` and local paths: a new clone hard-links the remote's object
//!   files (as `git clone --local`); a push copies only the new objects and
//!   moves the branch with a compare-and-swap. There is no server, so server
//!   hooks do not run.
//!
//! The clone is kept healthy across months of passes: small packs left by
//! fetches are merged, stale lock files from a crash are removed at startup,
//! and a clone found damaged (unreadable objects, unreadable tip) or cloned
//! from another URL is replaced by a fresh clone, built next to it and
//! moved into place.
//!
//! Signatures ([`sign`]) are in the forms git writes itself: OpenPGP
//! detached signatures (`git verify-commit` with a GnuPG keyring) and SSH
//! signatures in namespace `git` (`gpg.ssh.allowedSignersFile`).
//!
//! This module knows nothing of registries or policies: it moves bytes,
//! messages and signatures.

mod error;
pub mod known_hosts;
mod local;
mod maintain;
pub mod objects;
pub mod sign;
mod ssh_key_file;
mod transport;
pub mod verify;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use git2::{
    AutotagOption, ErrorClass, ErrorCode, FetchOptions, FileMode, ObjectType, Oid, PushOptions,
    Repository, RepositoryInitOptions, Signature, TreeWalkMode, TreeWalkResult,
};
use tracing::{debug, info, info_span, warn};

pub use error::GitError;
pub use sign::{SignatureKind, Signer};
pub use transport::redact as redact_url;

use crate::config::{Author, GitConfig};
use crate::message::{self, MessageError, MessageInput, MessageTemplate};
use transport::{Kind, Observed, Transport};

/// The clone's folder inside `stateDir`.
pub const CLONE_DIR: &str = "repo.git";

/// The daemon's clone for a `stateDir`.
pub fn clone_path(state_dir: &Path) -> PathBuf {
    state_dir.join(CLONE_DIR)
}
/// Where a clone is built before it is moved into place, so an
/// interrupted clone never looks like a finished one.
const CLONE_TMP_PREFIX: &str = "repo.git.tmp-";
/// The remote's name inside the clone.
const REMOTE: &str = "origin";

/// A commit id (SHA-1 hex when displayed).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(pub Oid);

impl CommitId {
    /// The first 12 hex digits, for logs.
    pub fn short(&self) -> String {
        self.0.to_string()[..12].to_owned()
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitId({})", self.0)
    }
}

impl std::str::FromStr for CommitId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Oid::from_str(s)
            .map(CommitId)
            .map_err(|_| format!("{s:?} is not a commit id"))
    }
}

/// The commit a pass builds on, and how a commit on top of it reaches the
/// remote. Only [`Repo::fetch`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Base {
    /// The commit to read files from and to use as the new commit's parent.
    pub commit: CommitId,
    /// The tip of `branch` on the remote.
    pub branch_tip: CommitId,
    /// The branch a push goes to (`pushBranch`, which defaults to `branch`).
    pub push_branch: String,
    plan: Plan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Fast-forward `push_branch`, which must still point at this commit.
    Extend(Oid),
    /// `push_branch` does not exist yet: create it.
    Create,
    /// `push_branch` (≠ `branch`) fell behind `branch`: replace it, if it
    /// still points at the lease.
    Rebuild { lease: Oid },
}

impl Base {
    /// `true` when a push from this base replaces the push branch (force
    /// with lease) because `branch` moved past it.
    pub fn rebuilds_push_branch(&self) -> bool {
        matches!(self.plan, Plan::Rebuild { .. })
    }

    /// `true` when the push branch does not exist yet.
    pub fn creates_push_branch(&self) -> bool {
        matches!(self.plan, Plan::Create)
    }
}

/// A file of the base tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeFile {
    /// Repository-relative, `/`-separated.
    pub path: String,
    /// The blob's id (hex).
    pub blob: String,
    /// A symbolic link: its "content" is the link target. Never followed,
    /// never written.
    pub is_symlink: bool,
    pub executable: bool,
    oid: Oid,
}

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// The remote branch moved since the fetch (someone else pushed):
    /// fetch, recompute the edits on the new tip, and push again.
    NonFastForward,
    /// The server refused the update (protected branch, hook): its status
    /// and the `remote:` lines it printed.
    Rejected(String),
}

/// Counters for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Clones made by this `Repo` (0 when an existing clone was reused).
    pub clones: u32,
    /// Fetches made by [`Repo::fetch`].
    pub fetches: u32,
}

/// Bounds for [`Repo::write_back`]'s retries on non-fast-forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Pushes tried before giving up (at least 1).
    pub attempts: u32,
    /// Backoff before the second attempt; doubles each time, with jitter.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// What [`Repo::write_back`] should commit on a base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// `(path, new bytes)` of existing regular files.
    pub edits: Vec<(String, Vec<u8>)>,
    pub message: String,
}

/// What [`Repo::write_back`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteBack {
    /// Nothing to change on this base (the plan said so, or the branch
    /// already holds every edit).
    Unchanged { base: Base },
    Pushed {
        commit: CommitId,
        base: Base,
        /// Pushes it took (1 when nobody raced us).
        attempts: u32,
    },
}

/// Who writes and where: the branches, author, signer and message
/// template of one repository entry. Entries on one URL share a clone
/// ([`Repo`]) and each hands its writer to it before its git work
/// ([`Repo::set_writer`]).
#[derive(Debug, Clone)]
pub struct Writer {
    pub branch: String,
    /// Equal to `branch` unless the entry names another.
    pub push_branch: String,
    pub author: Author,
    signer: Option<Arc<Signer>>,
    template: Option<Arc<MessageTemplate>>,
}

impl Writer {
    /// Reads the signing key and checks the message template, so a mistake
    /// in either fails at startup.
    pub fn load(config: &GitConfig) -> Result<Writer, GitError> {
        Ok(Writer {
            branch: config.branch.clone(),
            push_branch: config.push_branch.clone(),
            author: config.author.clone(),
            signer: config
                .signing
                .as_ref()
                .map(Signer::load)
                .transpose()?
                .map(Arc::new),
            template: config
                .message_template
                .as_deref()
                .map(MessageTemplate::compile)
                .transpose()?
                .map(Arc::new),
        })
    }
}

/// The persistent clone of one URL and everything needed to write to the
/// remote as the current [`Writer`].
pub struct Repo {
    repo: Repository,
    path: PathBuf,
    transport: Transport,
    writer: Writer,
    stats: Stats,
    /// Set when reading the clone failed in a way that means it is
    /// damaged; the next fetch replaces the clone.
    damaged: std::cell::RefCell<Option<String>>,
}

impl fmt::Debug for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repo")
            .field("path", &self.path)
            .field("remote", &self.transport.display)
            .field("writer", &self.writer)
            .finish()
    }
}

impl Repo {
    /// Opens the clone in `state_dir/repo.git`, cloning when there is none,
    /// when it is corrupt, or when it was cloned from another URL. Reads
    /// the credentials, the signing key and the message template now, so a
    /// mistake in any of them fails at startup.
    pub fn open(config: &GitConfig, state_dir: &Path) -> Result<Repo, GitError> {
        let writer = Writer::load(config)?;
        Self::open_as(config, state_dir, writer)
    }

    /// [`Repo::open`] writing as `writer` (loaded beforehand: entries on
    /// one URL share the clone, each with its own writer).
    pub fn open_as(config: &GitConfig, state_dir: &Path, writer: Writer) -> Result<Repo, GitError> {
        let transport = Transport::new(config)?;
        let path = state_dir.join(CLONE_DIR);
        let span = info_span!("git_open", remote = %transport.display, branch = %config.branch);
        let _enter = span.enter();
        std::fs::create_dir_all(state_dir).map_err(|source| GitError::StateDir {
            remote: transport.display.clone(),
            path: state_dir.to_owned(),
            source,
        })?;
        remove_interrupted_clones(state_dir);
        let mut stats = Stats::default();
        let repo = match reusable(&path, &transport, &config.branch) {
            Ok(existing) => {
                debug!(path = %path.display(), "reusing the clone");
                existing
            }
            Err(reason) => {
                if path.exists() {
                    warn!(path = %path.display(), %reason, "replacing the clone");
                } else {
                    info!(path = %path.display(), "cloning");
                }
                stats.clones += 1;
                clone_fresh(&path, &transport, &config.branch, &config.push_branch)?
            }
        };
        Ok(Repo {
            repo,
            path,
            transport,
            writer,
            stats,
            damaged: std::cell::RefCell::new(None),
        })
    }

    /// The bare clone (for reading history).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The clone, for reading history (promotions read a source branch).
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// Fetches `branch` alone into its tracking ref and returns its tip
    /// (`None`: the remote has no such branch). Another entry's branch on
    /// the same URL, read by a promotion.
    pub fn fetch_branch(&mut self, branch: &str) -> Result<Option<CommitId>, GitError> {
        let heads = fetch_refs(&self.repo, &self.transport, branch, branch)
            .map_err(|f| f.into_error(&self.transport))?;
        self.stats.fetches += 1;
        Ok(heads.branch.map(CommitId))
    }

    /// The remote URL without credentials.
    pub fn remote(&self) -> &str {
        &self.transport.display
    }

    pub fn branch(&self) -> &str {
        &self.writer.branch
    }

    pub fn push_branch(&self) -> &str {
        &self.writer.push_branch
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Writes as `writer` from now on: the next fetch, commit and push use
    /// its branches, author, signer and template.
    pub fn set_writer(&mut self, writer: Writer) {
        self.writer = writer;
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Follows other branches from the next [`Repo::fetch`] on (a Flux
    /// `ImageUpdateAutomation` naming them where the config does not).
    /// Returns `true` when they changed.
    pub fn set_branches(&mut self, branch: &str, push_branch: &str) -> bool {
        if self.writer.branch == branch && self.writer.push_branch == push_branch {
            return false;
        }
        info!(
            branch,
            push_branch, "following the branches the ImageUpdateAutomation names"
        );
        self.writer.branch = branch.to_owned();
        self.writer.push_branch = push_branch.to_owned();
        true
    }

    /// The author (and committer) of the next commits.
    pub fn set_author(&mut self, author: Author) {
        self.writer.author = author;
    }

    pub fn author(&self) -> &Author {
        &self.writer.author
    }

    /// The configured signer, if any.
    pub fn signer(&self) -> Option<&Signer> {
        self.writer.signer.as_deref()
    }

    /// Fetches `branch` (and `pushBranch`) and returns the base for this
    /// pass. A clone found corrupt while fetching is replaced once.
    pub fn fetch(&mut self) -> Result<Base, GitError> {
        let span =
            info_span!("git_fetch", branch = %self.writer.branch, commit = tracing::field::Empty);
        let _enter = span.enter();
        if let Some(reason) = self.damaged.take() {
            warn!(%reason, "the clone is damaged; cloning again");
            self.repo = clone_fresh(
                &self.path,
                &self.transport,
                &self.writer.branch,
                &self.writer.push_branch,
            )?;
            self.stats.clones += 1;
        }
        let heads = match fetch_refs(
            &self.repo,
            &self.transport,
            &self.writer.branch,
            &self.writer.push_branch,
        ) {
            Ok(heads) => heads,
            Err(Fetched::Corrupt(reason)) => {
                warn!(%reason, "the clone is corrupt; cloning again");
                self.repo = clone_fresh(
                    &self.path,
                    &self.transport,
                    &self.writer.branch,
                    &self.writer.push_branch,
                )?;
                self.stats.clones += 1;
                fetch_refs(
                    &self.repo,
                    &self.transport,
                    &self.writer.branch,
                    &self.writer.push_branch,
                )
                .map_err(|f| f.into_error(&self.transport))?
            }
            Err(Fetched::Failed(e)) => return Err(e),
        };
        self.stats.fetches += 1;
        if maintain::needed(&self.path) {
            match maintain::compact(&self.repo, &self.path) {
                Ok(objects) => {
                    info!(objects, "merged the clone's small packs and loose objects");
                    // A fresh handle: the old one still maps the removed packs.
                    self.repo = Repository::open_bare(&self.path)
                        .map_err(|e| self.repo_error("reopening the clone", e))?;
                }
                Err(reason) => warn!(%reason, "could not merge the clone's packs"),
            }
        }
        let base = self.base(heads)?;
        span.record("commit", tracing::field::display(&base.commit.short()));
        Ok(base)
    }

    fn base(&self, heads: Heads) -> Result<Base, GitError> {
        let Some(branch_tip) = heads.branch else {
            return Err(GitError::BranchNotFound {
                remote: self.transport.display.clone(),
                branch: self.writer.branch.clone(),
            });
        };
        let (commit, plan) = if self.writer.push_branch == self.writer.branch {
            (branch_tip, Plan::Extend(branch_tip))
        } else {
            match heads.push_branch {
                None => (branch_tip, Plan::Create),
                Some(push_tip) => {
                    let contains = push_tip == branch_tip
                        || self
                            .repo
                            .graph_descendant_of(push_tip, branch_tip)
                            .map_err(|e| self.repo_error("comparing branches", e))?;
                    if contains {
                        (push_tip, Plan::Extend(push_tip))
                    } else {
                        (branch_tip, Plan::Rebuild { lease: push_tip })
                    }
                }
            }
        };
        Ok(Base {
            commit: CommitId(commit),
            branch_tip: CommitId(branch_tip),
            push_branch: self.writer.push_branch.clone(),
            plan,
        })
    }

    /// Regular files and symlinks under `dir` (`""` is the root) in the
    /// base's tree, sorted by path. Submodules are skipped.
    pub fn files(&self, base: &Base, dir: &str) -> Result<Vec<TreeFile>, GitError> {
        let tree = self.tree_of(base)?;
        let dir = dir.trim_matches('/');
        let not_found = || GitError::DirNotFound {
            remote: self.transport.display.clone(),
            branch: self.writer.branch.clone(),
            commit: base.commit.short(),
            dir: dir.to_owned(),
        };
        let subtree = if dir.is_empty() || dir == "." {
            tree
        } else {
            let entry = tree.get_path(Path::new(dir)).map_err(|_| not_found())?;
            if entry.kind() != Some(ObjectType::Tree) {
                return Err(not_found());
            }
            self.repo
                .find_tree(entry.id())
                .map_err(|e| self.repo_error("reading a tree", e))?
        };
        let prefix = if dir.is_empty() || dir == "." {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut files = Vec::new();
        subtree
            .walk(TreeWalkMode::PreOrder, |root, entry| {
                if entry.kind() != Some(ObjectType::Blob) {
                    return TreeWalkResult::Ok;
                }
                let Ok(name) = entry.name() else {
                    debug!(root, "skipping a file whose name is not UTF-8");
                    return TreeWalkResult::Ok;
                };
                let mode = entry.filemode();
                files.push(TreeFile {
                    path: format!("{prefix}{root}{name}"),
                    blob: entry.id().to_string(),
                    is_symlink: mode == i32::from(FileMode::Link),
                    executable: mode == i32::from(FileMode::BlobExecutable),
                    oid: entry.id(),
                });
                TreeWalkResult::Ok
            })
            .map_err(|e| self.repo_error("listing files", e))?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// A file's bytes. Symlinks are refused: crowsnest never follows them.
    pub fn read(&self, file: &TreeFile) -> Result<Vec<u8>, GitError> {
        if file.is_symlink {
            return Err(GitError::NotWritable {
                path: file.path.clone(),
                reason: "is a symbolic link, which crowsnest never follows",
            });
        }
        self.repo
            .find_blob(file.oid)
            .map(|b| b.content().to_vec())
            .map_err(|e| self.repo_error("reading a file", e))
    }

    /// Reads one file of the base by path (`None` when it does not exist).
    pub fn read_path(&self, base: &Base, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let tree = self.tree_of(base)?;
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        if entry.filemode() == i32::from(FileMode::Link) {
            return Err(GitError::NotWritable {
                path: path.to_owned(),
                reason: "is a symbolic link, which crowsnest never follows",
            });
        }
        self.repo
            .find_blob(entry.id())
            .map(|b| Some(b.content().to_vec()))
            .map_err(|e| self.repo_error("reading a file", e))
    }

    /// `true` when every edit's bytes already are what the base holds:
    /// committing them would change nothing.
    pub fn already_contains(
        &self,
        base: &Base,
        edits: &[(String, Vec<u8>)],
    ) -> Result<bool, GitError> {
        let tree = self.tree_of(base)?;
        for (path, bytes) in edits {
            let Ok(entry) = tree.get_path(Path::new(path)) else {
                return Ok(false);
            };
            let id = Oid::hash_object(ObjectType::Blob, bytes)
                .map_err(|e| self.repo_error("hashing a file", e))?;
            if entry.id() != id {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The commit message for a set of changes: `git.messageTemplate` (or
    /// the default subject and body), then the trailers.
    pub fn message(&self, input: &MessageInput<'_>) -> Result<String, GitError> {
        Ok(message::compose(self.writer.template.as_deref(), input)?)
    }

    /// Writes one commit on top of the base holding every edit, authored
    /// and committed by the configured author, signed when signing is
    /// configured. The commit is only in the clone until [`Repo::push`].
    /// Fails with [`GitError::NothingToCommit`] rather than make an empty
    /// commit.
    pub fn commit(
        &self,
        base: &Base,
        edits: &[(String, Vec<u8>)],
        message: &str,
    ) -> Result<CommitId, GitError> {
        let span = info_span!("git_commit", branch = %self.writer.push_branch, commit = tracing::field::Empty, files = edits.len());
        let _enter = span.enter();
        if message.trim().is_empty() {
            return Err(GitError::Template(MessageError {
                message: "the commit message is empty".into(),
            }));
        }
        let parent = self
            .repo
            .find_commit(base.commit.0)
            .map_err(|e| self.repo_error("reading the base commit", e))?;
        let tree = parent
            .tree()
            .map_err(|e| self.repo_error("reading the base tree", e))?;
        let mut update = git2::build::TreeUpdateBuilder::new();
        let mut seen = std::collections::HashSet::new();
        let mut changed = false;
        for (path, bytes) in edits {
            check_edit_path(path)?;
            if !seen.insert(path.as_str()) {
                return Err(GitError::NotWritable {
                    path: path.clone(),
                    reason: "is edited twice in one commit",
                });
            }
            let entry = tree
                .get_path(Path::new(path))
                .map_err(|_| GitError::NotWritable {
                    path: path.clone(),
                    reason: "does not exist in the branch",
                })?;
            let mode = match entry.filemode() {
                m if m == i32::from(FileMode::Blob) => FileMode::Blob,
                m if m == i32::from(FileMode::BlobExecutable) => FileMode::BlobExecutable,
                m if m == i32::from(FileMode::Link) => {
                    return Err(GitError::NotWritable {
                        path: path.clone(),
                        reason: "is a symbolic link, which crowsnest never follows",
                    });
                }
                _ => {
                    return Err(GitError::NotWritable {
                        path: path.clone(),
                        reason: "is not a regular file",
                    });
                }
            };
            let blob = self
                .repo
                .blob(bytes)
                .map_err(|e| self.repo_error("writing a file", e))?;
            if blob != entry.id() {
                changed = true;
                update.upsert(path.as_str(), blob, mode);
            }
        }
        let nothing = || GitError::NothingToCommit {
            remote: self.transport.display.clone(),
            branch: self.writer.push_branch.clone(),
        };
        if !changed {
            return Err(nothing());
        }
        let tree_id = update
            .create_updated(&self.repo, &tree)
            .map_err(|e| self.repo_error("writing the tree", e))?;
        if tree_id == tree.id() {
            return Err(nothing());
        }
        let new_tree = self
            .repo
            .find_tree(tree_id)
            .map_err(|e| self.repo_error("reading the new tree", e))?;
        let who = Signature::now(&self.writer.author.name, &self.writer.author.email)
            .map_err(|e| self.repo_error("making the author signature", e))?;
        let mut message = message.to_owned();
        if !message.ends_with('\n') {
            message.push('\n');
        }
        let id = match &self.writer.signer {
            None => self
                .repo
                .commit(None, &who, &who, &message, &new_tree, &[&parent])
                .map_err(|e| self.repo_error("writing the commit", e))?,
            Some(signer) => {
                let buffer = self
                    .repo
                    .commit_create_buffer(&who, &who, &message, &new_tree, &[&parent])
                    .map_err(|e| self.repo_error("writing the commit", e))?;
                let payload = buffer.as_str().map_err(|_| GitError::Repository {
                    remote: self.transport.display.clone(),
                    what: "writing the commit",
                    message: "the commit is not UTF-8".into(),
                })?;
                let signature = signer.sign(payload.as_bytes())?;
                self.repo
                    .commit_signed(payload, &signature, Some(sign::SIGNATURE_HEADER))
                    .map_err(|e| self.repo_error("writing the signed commit", e))?
            }
        };
        span.record("commit", tracing::field::display(&id));
        info!(commit = %id, files = edits.len(), signed = self.writer.signer.is_some(), "committed");
        Ok(CommitId(id))
    }

    /// Pushes `commit` (made on `base`) to the push branch. The branch must
    /// still be where the fetch saw it; if it moved the result is
    /// [`PushOutcome::NonFastForward`] and nothing changed on the remote.
    pub fn push(&self, base: &Base, commit: &CommitId) -> Result<PushOutcome, GitError> {
        let span =
            info_span!("git_push", branch = %self.writer.push_branch, commit = %commit.short());
        let _enter = span.enter();
        let (expected, force) = match base.plan {
            Plan::Extend(tip) => (Some(tip), false),
            Plan::Create => (None, false),
            Plan::Rebuild { lease } => (Some(lease), true),
        };
        if force && self.writer.push_branch == self.writer.branch {
            // Plans never say so; this guards the promise all the same.
            return Err(GitError::Repository {
                remote: self.transport.display.clone(),
                what: "pushing",
                message: format!("refusing to force-push {}", self.writer.branch),
            });
        }
        let parent_is_base = self
            .repo
            .find_commit(commit.0)
            .map(|c| c.parent_id(0).ok() == Some(base.commit.0))
            .unwrap_or(false);
        if !parent_is_base {
            return Err(GitError::Repository {
                remote: self.transport.display.clone(),
                what: "pushing",
                message: format!("commit {commit} was not made on base {}", base.commit),
            });
        }
        let dst = format!("refs/heads/{}", self.writer.push_branch);
        let outcome = match &self.transport.kind {
            Kind::Local(path) => {
                match local::push(&self.repo, path, commit.0, &dst, expected, force) {
                    Ok(local::LocalOutcome::Pushed) => PushOutcome::Pushed,
                    Ok(local::LocalOutcome::Moved) => PushOutcome::NonFastForward,
                    Ok(local::LocalOutcome::Rejected(message)) => PushOutcome::Rejected(message),
                    Err(e) => {
                        return Err(GitError::Push {
                            remote: self.transport.display.clone(),
                            branch: self.writer.push_branch.clone(),
                            message: e.message().to_owned(),
                        });
                    }
                }
            }
            _ => self.push_network(commit.0, &dst, expected, force)?,
        };
        match &outcome {
            PushOutcome::Pushed => {
                let _ = self.repo.reference(
                    &tracking_ref(&self.writer.push_branch),
                    commit.0,
                    true,
                    "crowsnest push",
                );
                info!(commit = %commit, rebuilt = force, "pushed");
            }
            PushOutcome::NonFastForward => {
                info!("the remote branch moved since the fetch");
            }
            PushOutcome::Rejected(message) => warn!(%message, "the server rejected the push"),
        }
        Ok(outcome)
    }

    fn push_network(
        &self,
        commit: Oid,
        dst: &str,
        expected: Option<Oid>,
        force: bool,
    ) -> Result<PushOutcome, GitError> {
        let observed = Observed::default();
        let moved = std::cell::Cell::new(false);
        let rejected = std::cell::RefCell::new(Vec::<String>::new());
        let result = {
            let mut callbacks = self.transport.callbacks(&observed);
            callbacks.push_negotiation(|updates| {
                for update in updates {
                    if update.dst_refname() == Ok(dst) {
                        let current = Some(update.src()).filter(|id| !id.is_zero());
                        if current != expected {
                            moved.set(true);
                            return Err(git2::Error::from_str("the remote branch moved"));
                        }
                    }
                }
                Ok(())
            });
            callbacks.push_update_reference(|refname, status| {
                if let Some(status) = status {
                    rejected.borrow_mut().push(format!("{refname}: {status}"));
                }
                Ok(())
            });
            let mut options = PushOptions::new();
            options.remote_callbacks(callbacks);
            let refspec = format!("{}{commit}:{dst}", if force { "+" } else { "" });
            let mut remote = self
                .repo
                .find_remote(REMOTE)
                .map_err(|e| self.repo_error("finding the remote", e))?;
            remote.push(&[refspec.as_str()], Some(&mut options))
        };
        if moved.get() {
            return Ok(PushOutcome::NonFastForward);
        }
        if let Err(e) = result {
            if e.code() == ErrorCode::NotFastForward {
                return Ok(PushOutcome::NonFastForward);
            }
            return Err(self
                .transport
                .classify(&observed, &e, |message| GitError::Push {
                    remote: self.transport.display.clone(),
                    branch: self.writer.push_branch.clone(),
                    message,
                }));
        }
        let rejected = rejected.into_inner();
        if rejected.is_empty() {
            return Ok(PushOutcome::Pushed);
        }
        let status = rejected.join("; ");
        let lost_race = [
            "non-fast-forward",
            "fetch first",
            "stale info",
            "failed to update ref",
            "failed to lock",
            "cannot lock ref",
        ]
        .iter()
        .any(|s| status.contains(s));
        let remote_output = observed.remote_output.borrow();
        if lost_race
            && !remote_output.contains("hook declined")
            && !status.contains("hook declined")
        {
            return Ok(PushOutcome::NonFastForward);
        }
        let lines: Vec<&str> = remote_output
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let message = if lines.is_empty() {
            status
        } else {
            format!("{status} (the server said: {})", lines.join(" / "))
        };
        Ok(PushOutcome::Rejected(self.transport.scrub(&message)))
    }

    /// One whole write: fetch, ask `plan` what to change on the fetched
    /// base, commit, push; on non-fast-forward wait (exponential backoff
    /// with jitter) and start over on the new tip, up to `retry.attempts`
    /// pushes. `plan` returns `None` when there is nothing to do. A change
    /// the branch already holds is never committed again, so two writers
    /// racing on one remote make one commit between them.
    pub fn write_back<E>(
        &mut self,
        retry: &Retry,
        mut plan: impl FnMut(&Repo, &Base) -> Result<Option<Update>, E>,
    ) -> Result<WriteBack, E>
    where
        E: From<GitError>,
    {
        let attempts = retry.attempts.max(1);
        let mut backoff = retry.first_backoff;
        for attempt in 1..=attempts {
            let base = self.fetch()?;
            let Some(update) = plan(self, &base)? else {
                return Ok(WriteBack::Unchanged { base });
            };
            if update.edits.is_empty() || self.already_contains(&base, &update.edits)? {
                return Ok(WriteBack::Unchanged { base });
            }
            let commit = self.commit(&base, &update.edits, &update.message)?;
            match self.push(&base, &commit)? {
                PushOutcome::Pushed => {
                    return Ok(WriteBack::Pushed {
                        commit,
                        base,
                        attempts: attempt,
                    });
                }
                PushOutcome::Rejected(message) => {
                    return Err(GitError::Rejected {
                        remote: self.transport.display.clone(),
                        branch: self.writer.push_branch.clone(),
                        message,
                    }
                    .into());
                }
                PushOutcome::NonFastForward if attempt < attempts => {
                    let jitter = rand::random_range(0.5..1.5);
                    let wait = backoff.mul_f64(jitter).min(retry.max_backoff);
                    info!(
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "push lost a race; retrying on the new tip"
                    );
                    std::thread::sleep(wait);
                    backoff = (backoff * 2).min(retry.max_backoff);
                }
                PushOutcome::NonFastForward => {}
            }
        }
        Err(GitError::Conflict {
            remote: self.transport.display.clone(),
            branch: self.writer.push_branch.clone(),
            attempts,
        }
        .into())
    }

    fn tree_of(&self, base: &Base) -> Result<git2::Tree<'_>, GitError> {
        self.repo
            .find_commit(base.commit.0)
            .and_then(|c| c.tree())
            .map_err(|e| self.repo_error("reading the base tree", e))
    }

    fn repo_error(&self, what: &'static str, e: git2::Error) -> GitError {
        if is_local_corruption(&e) {
            self.damaged
                .replace(Some(format!("{what}: {}", e.message())));
        }
        GitError::Repository {
            remote: self.transport.display.clone(),
            what,
            message: e.message().to_owned(),
        }
    }
}

/// The advertised tips of the two branches after a fetch.
struct Heads {
    branch: Option<Oid>,
    push_branch: Option<Oid>,
}

enum Fetched {
    /// The clone itself is broken: clone again.
    Corrupt(String),
    Failed(GitError),
}

impl Fetched {
    fn into_error(self, transport: &Transport) -> GitError {
        match self {
            Fetched::Failed(e) => e,
            Fetched::Corrupt(message) => GitError::Repository {
                remote: transport.display.clone(),
                what: "fetching into a fresh clone",
                message,
            },
        }
    }
}

/// Why the existing clone cannot be used, or the opened clone.
fn reusable(path: &Path, transport: &Transport, branch: &str) -> Result<Repository, String> {
    if !path.exists() {
        return Err("there is no clone yet".into());
    }
    let repo = Repository::open_bare(path)
        .map_err(|e| format!("the clone cannot be opened: {}", e.message()))?;
    let url = repo
        .find_remote(REMOTE)
        .ok()
        .and_then(|r| r.url().ok().map(str::to_owned));
    if url.as_deref() != Some(transport.url.as_str()) {
        return Err(format!(
            "git.url changed from {} to {}",
            url.as_deref().map(transport::redact).unwrap_or_default(),
            transport.display
        ));
    }
    remove_stale_locks(path);
    let tracking = tracking_ref(branch);
    if let Ok(id) = repo.refname_to_id(&tracking) {
        check_commit(&repo, id).map_err(|e| format!("the clone is corrupt: {tracking}: {e}"))?;
    }
    Ok(repo)
}

/// Clones into a temporary folder next to `path`, then moves it into
/// place (replacing an old clone), so an interrupted clone is never used.
fn clone_fresh(
    path: &Path,
    transport: &Transport,
    branch: &str,
    push_branch: &str,
) -> Result<Repository, GitError> {
    let state_dir = path.parent().unwrap_or(Path::new("."));
    let tmp = state_dir.join(format!(
        "{CLONE_TMP_PREFIX}{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let state_err = |path: &Path, source: std::io::Error| GitError::StateDir {
        remote: transport.display.clone(),
        path: path.to_owned(),
        source,
    };
    let repo_err = |what: &'static str, e: git2::Error| GitError::Repository {
        remote: transport.display.clone(),
        what,
        message: e.message().to_owned(),
    };
    let result = (|| {
        let new = Repository::init_opts(&tmp, RepositoryInitOptions::new().bare(true))
            .map_err(|e| repo_err("creating the clone", e))?;
        new.remote(REMOTE, &transport.url)
            .map_err(|e| repo_err("configuring the remote", e))?;
        if let Kind::Local(remote) = &transport.kind {
            match local::seed_objects(remote, &tmp) {
                Ok(files) => debug!(files, "seeded the clone from the local remote's objects"),
                Err(e) => {
                    debug!(error = %e, "cannot seed from the local remote; fetching everything")
                }
            }
        }
        fetch_refs(&new, transport, branch, push_branch).map_err(|f| f.into_error(transport))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| state_err(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| state_err(path, e))?;
    Repository::open_bare(path).map_err(|e| repo_err("opening the clone", e))
}

/// One fetch of the configured branches; the remote's advertised tips.
fn fetch_refs(
    repo: &Repository,
    transport: &Transport,
    branch: &str,
    push_branch: &str,
) -> Result<Heads, Fetched> {
    let mut branches = vec![branch];
    if push_branch != branch {
        branches.push(push_branch);
    }
    let refspecs: Vec<String> = branches
        .iter()
        .map(|b| format!("+refs/heads/{b}:{}", tracking_ref(b)))
        .collect();
    let observed = Observed::default();
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(transport.callbacks(&observed))
        .download_tags(AutotagOption::None);
    let mut remote = repo
        .find_remote(REMOTE)
        .map_err(|e| Fetched::Corrupt(format!("the remote is missing: {}", e.message())))?;
    if let Err(e) = remote.fetch(&refspecs, Some(&mut options), None) {
        if is_local_corruption(&e) && observed.host_key.borrow().is_none() {
            return Err(Fetched::Corrupt(e.message().to_owned()));
        }
        return Err(Fetched::Failed(transport.classify(
            &observed,
            &e,
            |message| GitError::Fetch {
                remote: transport.display.clone(),
                branch: branch.to_owned(),
                message,
            },
        )));
    }
    let advertised = remote.list().map_err(|e| {
        Fetched::Failed(GitError::Fetch {
            remote: transport.display.clone(),
            branch: branch.to_owned(),
            message: e.message().to_owned(),
        })
    })?;
    let find = |branch: &str| {
        let name = format!("refs/heads/{branch}");
        advertised
            .iter()
            .find(|h| h.name() == name)
            .map(|h| h.oid())
    };
    let heads = Heads {
        branch: find(branch),
        push_branch: find(push_branch),
    };
    for (branch, tip) in [(branch, heads.branch), (push_branch, heads.push_branch)] {
        let tracking = tracking_ref(branch);
        match tip {
            Some(id) => {
                check_commit(repo, id).map_err(|e| {
                    Fetched::Corrupt(format!("{branch} at {id} cannot be read: {e}"))
                })?;
            }
            None => {
                if let Ok(mut stale) = repo.find_reference(&tracking) {
                    let _ = stale.delete();
                }
            }
        }
    }
    Ok(heads)
}

/// Where the clone's copy of `branch` lives (what `crowsnest history
/// --config` reads).
pub fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/{REMOTE}/{branch}")
}

/// The commit and its root tree can be read.
fn check_commit(repo: &Repository, id: Oid) -> Result<(), String> {
    let commit = repo.find_commit(id).map_err(|e| e.message().to_owned())?;
    commit.tree().map_err(|e| e.message().to_owned())?;
    Ok(())
}

/// Errors that mean the local clone, not the remote or the network, is
/// broken.
fn is_local_corruption(e: &git2::Error) -> bool {
    matches!(
        e.class(),
        ErrorClass::Odb | ErrorClass::Object | ErrorClass::Zlib | ErrorClass::Repository
    ) || e.code() == ErrorCode::Locked
}

/// Leftovers of clones interrupted by a crash.
fn remove_interrupted_clones(state_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(CLONE_TMP_PREFIX))
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Lock files left by a crash would make every later fetch fail. Only one
/// crowsnest uses a state dir, so at startup any lock is stale.
fn remove_stale_locks(clone: &Path) {
    for entry in walkdir::WalkDir::new(clone)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_file()
            && entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".lock"))
            && !entry.path().starts_with(clone.join("objects"))
        {
            warn!(path = %entry.path().display(), "removing a stale lock file");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A path crowsnest may write: relative, `/`-separated, no `.`/`..`/`.git`
/// components.
fn check_edit_path(path: &str) -> Result<(), GitError> {
    let bad = |reason| {
        Err(GitError::NotWritable {
            path: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() || path.starts_with('/') || path.ends_with('/') {
        return bad("is not a relative file path");
    }
    if path.contains(['\\', '\0']) {
        return bad("contains a backslash or NUL");
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return bad("is not a normalized path inside the repository");
        }
        if part.eq_ignore_ascii_case(".git") {
            return bad("is inside .git");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_paths_stay_inside_the_tree() {
        for good in ["a.yaml", "apps/x/deploy.yaml", ".github/x.yml"] {
            assert!(check_edit_path(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "./a",
            "a//b",
            "a/",
            ".git/config",
            "x/.GIT/hooks/pre-commit",
            "a\\b",
        ] {
            assert!(check_edit_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_repo_can_move_into_spawn_blocking() {
        fn send<T: Send + 'static>() {}
        send::<Repo>();
        send::<GitError>();
        send::<Base>();
    }

    #[test]
    fn error_kinds_are_metric_labels() {
        let e = GitError::NothingToCommit {
            remote: "file:///r".into(),
            branch: "main".into(),
        };
        assert_eq!(e.kind(), "nothing_to_commit");
        assert!(e.to_string().contains("branch main"), "{e}");
    }
}
