//! `crowsnest history`: the audit trail read back out of the commit graph.
//!
//! Like `reconcile`, this module joins others: it reads commits, trees and
//! blobs through [`crate::git::objects`] (gitoxide's pack reader; git2
//! opens the repository, resolves the revision and extracts signatures
//! for `git::verify`), reads policy files (`policy`) and managed fields
//! (`manifests`, through `audit::fields`), and produces `audit::record`
//! entries. It reads only; nothing here writes to the repository.
//!
//! Every commit reachable from the tip is visited, newest first by
//! committer time (`git log`'s order). A commit whose message holds
//! `Image-Update` trailers gives one record per trailer. Any other commit
//! is diffed against its parents for manual changes of managed fields,
//! and that is where the time would go on a long history, so the diff is
//! kept small:
//!
//! - trees are compared by id and only differing subtrees are entered,
//!   and only those that can hold a manifest under the scanned path or a
//!   policy target file;
//! - raw tree objects are merge-joined (no per-entry lookups) and cached
//!   by id;
//! - of the changed files, only manifests and target files are read, and
//!   a manifest that no target names is parsed only when a changed line
//!   mentions a marker ([`fields::may_change_markers`]);
//! - the managed fields of a blob are computed once and cached by blob id,
//!   and policy files once per policy-folder tree id;
//! - commits are walked and parsed once, sequentially, and handed out in
//!   batches of consecutive commits to one worker thread per core while
//!   the walk goes on; each worker reads objects through its own handle
//!   (its own delta-base cache, no lock shared with the others).
//!
//! A merge lists a field only when its value differs from every parent's
//! (git's combined diff): merging a branch is not a manual change, a
//! conflict resolved to a new value is.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use git2::{ObjectType, Oid, Repository};

use super::fields::{self, FieldKey, ManagedField};
use super::record::{Entry, Filter, Kind, Person, SignatureReport, image_of};
use crate::audit;
use crate::git::objects::{Objects, RawEntries, common_entries, git_order};
use crate::git::verify::Verifier;
use crate::inventory::MAX_MANIFEST_BYTES;
use crate::manifests;
use crate::model::{PolicyId, Target};
use crate::policy;

/// What to read and what to keep.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The policy folder, relative to the root (`git.policies`).
    pub policies_dir: String,
    /// The subtree scanned for markers (`git.path`; `""` for the root).
    pub scan_dir: String,
    pub filter: Filter,
    /// Threads to read with; `None` picks by the machine and the length
    /// of the history (one per 2,000 commits, up to the cores, at most 8).
    pub workers: Option<usize>,
}

/// The repository could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "{repo}: cannot open the repository: {message}; pass a Git clone (--repo) or the daemon's config (--config)"
    )]
    Open { repo: String, message: String },
    #[error("{repo}: {rev} names no commit: {message}")]
    Revision {
        repo: String,
        rev: String,
        message: String,
    },
    #[error("{repo}: cannot read {what}: {message}")]
    Read {
        repo: String,
        what: String,
        message: String,
    },
}

impl HistoryError {
    /// A stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            HistoryError::Open { .. } => "history_open",
            HistoryError::Revision { .. } => "history_revision",
            HistoryError::Read { .. } => "history_read",
        }
    }
}

/// What [`read`] found.
#[derive(Debug, Default)]
pub struct Trail {
    /// Newest first.
    pub entries: Vec<Entry>,
    /// Commits visited.
    pub commits: usize,
    /// Commits diffed for manual changes (no trailers, in the time window).
    pub diffed: usize,
    /// Commits the walk reached whose parents a shallow clone lacks (read,
    /// as `git log` does, as if they had none); 0 in a full clone.
    pub shallow: usize,
}

/// Opens a repository (a worktree's folder or a bare clone) for reading
/// history. Objects are then read through [`Objects`], which, like git
/// reading its packs, does not re-hash them.
pub fn open(path: &Path) -> Result<Repository, HistoryError> {
    Repository::open(path).map_err(|e| HistoryError::Open {
        repo: path.display().to_string(),
        message: e.message().to_owned(),
    })
}

/// The commit `rev` names (`HEAD`, a branch, `refs/remotes/origin/main`, an id).
pub fn resolve(repo: &Repository, rev: &str) -> Result<Oid, HistoryError> {
    repo.revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map(|c| c.id())
        .map_err(|e| HistoryError::Revision {
            repo: repo.path().display().to_string(),
            rev: rev.to_owned(),
            message: e.message().to_owned(),
        })
}

/// Reads the trail from `tip` back. With a verifier, every listed entry
/// carries its commit's signature verdict.
pub fn read(
    repo: &Repository,
    tip: Oid,
    options: &Options,
    verifier: Option<&Verifier>,
) -> Result<Trail, HistoryError> {
    let walk_error = |message| HistoryError::Read {
        repo: repo.path().display().to_string(),
        what: "the commit graph".into(),
        message,
    };
    let objects = Objects::open(repo).map_err(|message| HistoryError::Read {
        repo: repo.path().display().to_string(),
        what: "the object database".into(),
        message,
    })?;
    let shallow = shallow_commits(repo).map_err(walk_error)?;
    let mut walk = Walk::new(objects.clone(), shallow, tip).map_err(walk_error)?;
    let first = walk.batch(BATCH).map_err(walk_error)?;
    let workers = options
        .workers
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_WORKERS)
        })
        .max(1);
    let mut trail = Trail::default();
    if workers == 1 || walk.done() {
        let mut commits = first;
        while !walk.done() {
            commits.extend(walk.batch(BATCH).map_err(walk_error)?);
        }
        trail.commits = commits.len();
        trail.shallow = walk.grafted;
        Reader::new(repo, objects.clone(), options).read(&commits, verifier, &mut trail)?;
        return Ok(trail);
    }
    // Commits are independent once listed (each carries its parents'
    // trees), so the diffs need not wait for the walk: this thread keeps
    // walking and hands out batches of consecutive commits (so a worker's
    // caches see consecutive versions of each folder), and the workers,
    // each with its own handle on the repository, read them as they come.
    let path = repo.path().to_owned();
    let (sender, receiver) = std::sync::mpsc::channel::<(usize, Vec<CommitInfo>)>();
    let receiver = std::sync::Mutex::new(receiver);
    let (parts, walked) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (path, receiver) = (&path, &receiver);
                let objects = objects.clone();
                scope.spawn(move || {
                    let repo = Repository::open(path).map_err(|e| HistoryError::Open {
                        repo: path.display().to_string(),
                        message: e.message().to_owned(),
                    })?;
                    let mut reader = Reader::new(&repo, objects, options);
                    let mut parts = Vec::new();
                    loop {
                        let next = receiver.lock().expect("the batch queue").recv();
                        let Ok((number, batch)) = next else { break };
                        let mut part = Trail::default();
                        reader.read(&batch, verifier, &mut part)?;
                        parts.push((number, part));
                    }
                    Ok::<_, HistoryError>(parts)
                })
            })
            .collect();
        let mut walked = Ok(first.len());
        let _ = sender.send((0, first));
        let mut number = 1;
        while !walk.done() {
            match walk.batch(BATCH) {
                Ok(batch) => {
                    walked = walked.map(|n| n + batch.len());
                    let _ = sender.send((number, batch));
                    number += 1;
                }
                Err(message) => {
                    walked = Err(walk_error(message));
                    break;
                }
            }
        }
        drop(sender);
        let parts: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("a history worker panicked"))
            .collect();
        (parts, walked)
    });
    trail.commits = walked?;
    trail.shallow = walk.grafted;
    let mut all = Vec::new();
    for part in parts {
        all.extend(part?);
    }
    all.sort_by_key(|(number, _)| *number);
    for (_, part) in all {
        trail.entries.extend(part.entries);
        trail.diffed += part.diffed;
    }
    Ok(trail)
}

/// Commits per batch handed to a worker.
const BATCH: usize = 2_000;

/// What the walk keeps of a commit: enough to list it and diff it,
/// parsed once from the raw object.
#[derive(Clone, Debug)]
struct CommitInfo {
    id: Oid,
    tree: Oid,
    parents: Vec<Oid>,
    /// The parents' root trees, filled in when the commit is listed.
    parent_trees: Vec<Oid>,
    /// Committer time.
    time: i64,
    author: Person,
    /// The message's `Image-Update` trailers.
    updates: Vec<crate::model::ImageUpdate>,
    /// Its `Promoted-From` trailers.
    promoted: Vec<audit::PromotedFrom>,
}

/// Every commit reachable from `tip`, newest first by committer time,
/// each after all its children that are newer — `git log`'s default order
/// (a priority queue on the date; equal dates in the order found) —
/// listed a batch at a time.
///
/// Commits are read from the object database and parsed here, once, not
/// through libgit2's commit objects: its time-sorted revwalk plus
/// `find_commit` cost 1.3 s on 100,000 commits, mostly re-inflating
/// commits its object cache had evicted.
struct Walk {
    objects: Objects,
    /// A shallow clone's boundary: commits read as having no parents.
    shallow: HashSet<Oid>,
    /// Boundary commits reached.
    grafted: usize,
    queue: BinaryHeap<(i64, Reverse<u64>, Oid)>,
    pending: HashMap<Oid, CommitInfo>,
    /// The root tree of every commit read so far.
    trees: HashMap<Oid, Oid>,
    order: u64,
}

impl Walk {
    fn new(objects: Objects, shallow: HashSet<Oid>, tip: Oid) -> Result<Walk, String> {
        let mut walk = Walk {
            objects,
            shallow,
            grafted: 0,
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            trees: HashMap::new(),
            order: 0,
        };
        let first = walk.read(tip)?;
        walk.queue.push((first.time, Reverse(0), tip));
        walk.trees.insert(tip, first.tree);
        walk.pending.insert(tip, first);
        Ok(walk)
    }

    fn done(&self) -> bool {
        self.queue.is_empty()
    }

    fn read(&mut self, id: Oid) -> Result<CommitInfo, String> {
        let (kind, data) = self.objects.read(id)?;
        if kind != ObjectType::Commit {
            return Err(format!("{id} is a {kind}, not a commit"));
        }
        let mut commit =
            parse_commit(id, &data).ok_or_else(|| format!("commit {id} does not parse"))?;
        if self.shallow.contains(&id) {
            commit.parents.clear();
            self.grafted += 1;
        }
        Ok(commit)
    }

    /// The next (up to) `size` commits.
    fn batch(&mut self, size: usize) -> Result<Vec<CommitInfo>, String> {
        let mut commits = Vec::with_capacity(size);
        while commits.len() < size {
            let Some((_, _, id)) = self.queue.pop() else {
                break;
            };
            let mut commit = self
                .pending
                .remove(&id)
                .expect("queued commits are pending");
            for &parent in &commit.parents {
                if !self.trees.contains_key(&parent) {
                    let info = self.read(parent)?;
                    self.order += 1;
                    self.queue.push((info.time, Reverse(self.order), parent));
                    self.trees.insert(parent, info.tree);
                    self.pending.insert(parent, info);
                }
            }
            commit.parent_trees = commit.parents.iter().map(|p| self.trees[p]).collect();
            commits.push(commit);
        }
        Ok(commits)
    }
}

/// The commits a shallow clone cut its history at (`shallow` in the
/// repository's folder, one id per line): git reads them as root commits.
fn shallow_commits(repo: &Repository) -> Result<HashSet<Oid>, String> {
    let path = repo.commondir().join("shallow");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| Oid::from_str(line.trim()).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

/// The headers crowsnest needs from a raw commit object, and its trailers.
fn parse_commit(id: Oid, raw: &[u8]) -> Option<CommitInfo> {
    let split = memchr::memmem::find(raw, b"\n\n").map_or(raw.len(), |i| i + 1);
    let (headers, message) = (&raw[..split], raw.get(split + 1..).unwrap_or(b""));
    let mut tree = None;
    let mut parents = Vec::new();
    let mut time = None;
    let mut author = None;
    for line in headers.split(|&b| b == b'\n') {
        if let Some(hex) = line.strip_prefix(b"tree ") {
            tree = Oid::from_str(std::str::from_utf8(hex).ok()?).ok();
        } else if let Some(hex) = line.strip_prefix(b"parent ") {
            parents.push(Oid::from_str(std::str::from_utf8(hex).ok()?).ok()?);
        } else if let Some(who) = line.strip_prefix(b"author ") {
            author = Some(person(who)?.0);
        } else if let Some(who) = line.strip_prefix(b"committer ") {
            time = Some(person(who)?.1);
        }
    }
    let (updates, promoted) = if audit::may_have_trailers(message) {
        let text = String::from_utf8_lossy(message);
        (audit::parse_trailers(&text), audit::parse_promoted(&text))
    } else {
        (Vec::new(), Vec::new())
    };
    Some(CommitInfo {
        id,
        tree: tree?,
        parent_trees: Vec::new(),
        parents,
        time: time?,
        author: author?,
        updates,
        promoted,
    })
}

/// `Name <email> 1700000000 +0000` -> the person and the Unix time.
fn person(text: &[u8]) -> Option<(Person, i64)> {
    let open = text.iter().position(|&b| b == b'<')?;
    let close = open + text[open..].iter().position(|&b| b == b'>')?;
    let name = String::from_utf8_lossy(text[..open].trim_ascii_end()).into_owned();
    let email = String::from_utf8_lossy(&text[open + 1..close]).into_owned();
    let when = std::str::from_utf8(&text[close + 1..]).ok()?;
    let time = when.split_whitespace().next()?.parse().ok()?;
    Some((Person { name, email }, time))
}

/// Threads reading history at most, and the least commits worth a thread.
const MAX_WORKERS: usize = 8;

/// The verdict on one commit's signature.
pub fn verify_commit(
    repo: &Repository,
    verifier: &Verifier,
    id: Oid,
    commit_time: i64,
) -> SignatureReport {
    match repo.extract_signature(&id, None) {
        Ok((signature, payload)) => verifier.verify(Some((&signature, &payload)), commit_time),
        Err(_) => verifier.verify(None, commit_time),
    }
}

/// Policies declared by one version of the policy folder.
#[derive(Debug, Default)]
struct PolicySet {
    images: HashMap<PolicyId, String>,
    /// Promotion policies and the policy each promotes from.
    promoted_from: HashMap<PolicyId, PolicyId>,
    /// File -> the targets that name it, and a hash of that list (the
    /// field cache's key: a blob's fields depend on the targets too).
    targets: HashMap<String, (Vec<(PolicyId, Target)>, u64)>,
}

struct ManualChange {
    key: FieldKey,
    image: Option<String>,
    file: String,
    line: u32,
    from: String,
    to: String,
}

/// Raw trees kept at most; the cache is emptied when full (a walk needs
/// only the last few versions of each folder).
const TREE_CACHE_ENTRIES: usize = 4096;

/// Blob answers kept at most, likewise.
const MENTIONS_CACHE_ENTRIES: usize = 1 << 18;

struct Reader<'r> {
    repo: &'r Repository,
    objects: Objects,
    trees: HashMap<Oid, Arc<[u8]>>,
    options: &'r Options,
    /// By the policy folder's tree id (`Oid::ZERO_SHA1`: no folder).
    policies: HashMap<Oid, Rc<PolicySet>>,
    /// Whether a blob mentions a marker, by blob id.
    mentions: HashMap<Oid, bool>,
    /// By (blob, markers scanned, targets hash).
    fields: HashMap<(Oid, bool, u64), Rc<Vec<ManagedField>>>,
}

impl<'r> Reader<'r> {
    fn new(repo: &'r Repository, objects: Objects, options: &'r Options) -> Reader<'r> {
        Reader {
            repo,
            objects,
            trees: HashMap::new(),
            options,
            policies: HashMap::new(),
            mentions: HashMap::new(),
            fields: HashMap::new(),
        }
    }

    /// The entries of `commits` (newest first), appended to `trail`.
    fn read(
        &mut self,
        commits: &[CommitInfo],
        verifier: Option<&Verifier>,
        trail: &mut Trail,
    ) -> Result<(), HistoryError> {
        let filter = &self.options.filter;
        for commit in commits {
            let (id, time) = (commit.id, commit.time);
            if !filter.keeps_time(time) {
                continue;
            }
            let first = trail.entries.len();
            if !commit.updates.is_empty() {
                // Which updates are promotions: the commit's policies say
                // what each promotes from, the trailers from which commit.
                let sources = if commit.promoted.is_empty() {
                    None
                } else {
                    Some(self.policy_set(commit.tree)?)
                };
                for update in &commit.updates {
                    let image = image_of(&update.to).to_owned();
                    if !filter.keeps_policy(&update.policy) || !filter.keeps_image(Some(&image)) {
                        continue;
                    }
                    let promoted_from = sources.as_ref().and_then(|set| {
                        let from = set.promoted_from.get(&update.policy)?;
                        commit
                            .promoted
                            .iter()
                            .find(|p| &p.policy == from)
                            .map(|p| format!("{} {}", p.policy, p.commit))
                    });
                    trail.entries.push(Entry {
                        kind: if promoted_from.is_some() {
                            Kind::Promotion
                        } else {
                            Kind::Update
                        },
                        promoted_from,
                        time,
                        commit: id.to_string(),
                        author: commit.author.clone(),
                        policy: update.policy.clone(),
                        image: Some(image),
                        field: None,
                        file: None,
                        line: None,
                        from: update.from.clone(),
                        to: update.to.clone(),
                        signature: None,
                    });
                }
            } else if !commit.parents.is_empty() {
                trail.diffed += 1;
                for change in self.manual_changes(commit)? {
                    if !filter.keeps_policy(change.key.policy())
                        || !filter.keeps_image(change.image.as_deref())
                    {
                        continue;
                    }
                    trail.entries.push(Entry {
                        promoted_from: None,
                        kind: Kind::Manual,
                        time,
                        commit: id.to_string(),
                        author: commit.author.clone(),
                        policy: change.key.policy().clone(),
                        image: change.image,
                        field: Some(change.key.field()),
                        file: Some(change.file),
                        line: Some(change.line),
                        from: change.from,
                        to: change.to,
                        signature: None,
                    });
                }
            }
            if let Some(verifier) = verifier {
                if trail.entries.len() > first {
                    let report = verify_commit(self.repo, verifier, id, time);
                    for entry in &mut trail.entries[first..] {
                        entry.signature = Some(report.clone());
                    }
                }
            }
        }
        Ok(())
    }

    fn error(&self, what: &str, message: String) -> HistoryError {
        HistoryError::Read {
            repo: self.repo.path().display().to_string(),
            what: what.to_owned(),
            message,
        }
    }

    /// Object `id`, which must be a `kind`.
    fn object(&mut self, id: Oid, kind: ObjectType, what: &str) -> Result<Arc<[u8]>, HistoryError> {
        match self.objects.read(id) {
            Ok((found, data)) if found == kind => Ok(data),
            Ok((found, _)) => Err(self.error(what, format!("{id} is a {found}, not a {kind}"))),
            Err(message) => Err(self.error(what, message)),
        }
    }

    fn manual_changes(&mut self, commit: &CommitInfo) -> Result<Vec<ManualChange>, HistoryError> {
        let new_root = commit.tree;
        let old_root = commit.parent_trees[0];
        if old_root == new_root {
            return Ok(Vec::new());
        }
        let new_set = self.policy_set(new_root)?;
        let old_set = self.policy_set(old_root)?;
        let mut changed = Vec::new();
        let mut prefix = String::new();
        self.diff(
            old_root,
            new_root,
            &mut prefix,
            &[&old_set, &new_set],
            &mut changed,
        )?;
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        let others: Vec<(Oid, Rc<PolicySet>)> = commit.parent_trees[1..]
            .iter()
            .map(|&root| Ok((root, self.policy_set(root)?)))
            .collect::<Result<_, HistoryError>>()?;
        let mut found = Vec::new();
        'files: for (path, old_blob, new_blob) in changed {
            let targeted =
                old_set.targets.contains_key(&path) || new_set.targets.contains_key(&path);
            if !targeted && !self.may_change_markers(&path, old_blob, new_blob)? {
                continue;
            }
            let old = self.fields(old_blob, &path, &old_set)?;
            let new = self.fields(new_blob, &path, &new_set)?;
            let mut changes = fields::changes(&old, &new);
            if changes.is_empty() {
                continue;
            }
            for (root, set) in &others {
                let blob = match self.entry_at(*root, &path)? {
                    Some((mode, blob)) if mode & 0o170000 == 0o100000 => blob,
                    _ => continue,
                };
                if blob == new_blob {
                    continue 'files;
                }
                let theirs = self.fields(blob, &path, set)?;
                changes.retain(|c| fields::value_of(&theirs, &c.key) != Some(c.to.as_str()));
            }
            for change in changes {
                found.push(ManualChange {
                    image: new_set.images.get(change.key.policy()).cloned(),
                    key: change.key,
                    file: path.clone(),
                    line: change.line,
                    from: change.from,
                    to: change.to,
                });
            }
        }
        Ok(found)
    }

    /// Files present in both trees with different blobs, restricted to
    /// paths that can hold managed fields: `(path, old blob, new blob)`.
    /// Walks the raw tree objects side by side (they are sorted the same
    /// way), so a folder of hundreds of entries costs one pass and no
    /// lookups.
    fn diff(
        &mut self,
        old: Oid,
        new: Oid,
        prefix: &mut String,
        sets: &[&PolicySet],
        out: &mut Vec<(String, Oid, Oid)>,
    ) -> Result<(), HistoryError> {
        let (a, b) = (self.raw_tree(old)?, self.raw_tree(new)?);
        let mut subtrees = Vec::new();
        // Entries the two versions share byte for byte at the start (most
        // of a folder when one file changed) are skipped in one comparison.
        let skip = common_entries(&a, &b);
        let (mut left, mut right) = (RawEntries(&a[skip..]), RawEntries(&b[skip..]));
        let (mut x, mut y) = (left.next(), right.next());
        while let (Some(l), Some(r)) = (x, y) {
            match git_order(&l, &r) {
                std::cmp::Ordering::Less => x = left.next(),
                std::cmp::Ordering::Greater => y = right.next(),
                std::cmp::Ordering::Equal => {
                    if l.id != r.id {
                        if let Ok(name) = std::str::from_utf8(r.name) {
                            let len = prefix.len();
                            prefix.push_str(name);
                            if l.is_tree() && r.is_tree() {
                                if self.may_hold_fields(prefix, sets) {
                                    subtrees.push((prefix.clone(), l.oid(), r.oid()));
                                }
                            } else if l.is_file()
                                && r.is_file()
                                && (self.scans_markers(prefix)
                                    || sets.iter().any(|s| s.targets.contains_key(prefix.as_str())))
                            {
                                out.push((prefix.clone(), l.oid(), r.oid()));
                            }
                            prefix.truncate(len);
                        }
                    }
                    x = left.next();
                    y = right.next();
                }
            }
        }
        for (path, before, after) in subtrees {
            let mut inner = path;
            inner.push('/');
            self.diff(before, after, &mut inner, sets, out)?;
        }
        Ok(())
    }

    /// A tree object's bytes, cached by id: each version of a folder is
    /// typically the new side of one diff and the old side of the next.
    fn raw_tree(&mut self, id: Oid) -> Result<Arc<[u8]>, HistoryError> {
        if let Some(found) = self.trees.get(&id) {
            return Ok(found.clone());
        }
        let bytes = self.object(id, ObjectType::Tree, &format!("tree {id}"))?;
        if self.trees.len() >= TREE_CACHE_ENTRIES {
            self.trees.clear();
        }
        self.trees.insert(id, bytes.clone());
        Ok(bytes)
    }

    /// The cheap test before parsing a manifest that no target names:
    /// did a line mentioning a marker change? (See
    /// [`fields::may_change_markers`].)
    ///
    /// A field is listed only when both versions hold it, so first both
    /// blobs must mention a marker at all; that answer is cached by blob
    /// id, and a blob known not to mention one spares reading the other.
    /// The old side is asked first: walking newest first, it is the next
    /// commit's new side, which then needs no read.
    fn may_change_markers(&mut self, path: &str, old: Oid, new: Oid) -> Result<bool, HistoryError> {
        if self.mentions.get(&old) == Some(&false) || self.mentions.get(&new) == Some(&false) {
            return Ok(false);
        }
        let old_blob = self.object(old, ObjectType::Blob, path)?;
        if !remember_mentions(&mut self.mentions, old, &old_blob) {
            return Ok(false);
        }
        let new_blob = self.object(new, ObjectType::Blob, path)?;
        let new_mentions = manifests::may_contain_markers(&new_blob);
        let changes = new_mentions && fields::may_change_markers(&old_blob, &new_blob);
        remember(&mut self.mentions, new, new_mentions);
        Ok(changes)
    }

    /// The entry at `path` (`a/b/c`) below the root tree `root`, found
    /// through the raw tree cache: its mode and id.
    fn entry_at(&mut self, root: Oid, path: &str) -> Result<Option<(u32, Oid)>, HistoryError> {
        let mut current = (0o40000, root);
        for name in path.split('/') {
            if current.0 != 0o40000 {
                return Ok(None);
            }
            let raw = self.raw_tree(current.1)?;
            match RawEntries(&raw).find(|e| e.name == name.as_bytes()) {
                Some(entry) => current = (entry.mode, entry.oid()),
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// A manifest under the scanned path.
    fn scans_markers(&self, path: &str) -> bool {
        manifests::is_manifest_path(path) && under(path, &self.options.scan_dir)
    }

    /// Whether the folder `dir` can hold a scanned manifest or a target file.
    fn may_hold_fields(&self, dir: &str, sets: &[&PolicySet]) -> bool {
        let scan = self.options.scan_dir.trim_matches('/');
        scan.is_empty()
            || scan == "."
            || under(dir, scan)
            || under(scan, dir)
            || sets
                .iter()
                .any(|s| s.targets.keys().any(|file| under(file, dir)))
    }

    /// The policies of the commit whose root tree is `root`.
    fn policy_set(&mut self, root: Oid) -> Result<Rc<PolicySet>, HistoryError> {
        let dir = self.options.policies_dir.trim_matches('/');
        let folder = match self.entry_at(root, dir)? {
            Some((0o40000, id)) if !dir.is_empty() => id,
            _ => Oid::ZERO_SHA1,
        };
        if let Some(set) = self.policies.get(&folder) {
            return Ok(set.clone());
        }
        let mut set = PolicySet::default();
        if !folder.is_zero() {
            let mut files = Vec::new();
            self.policy_files(folder, &format!("{dir}/"), &mut files)?;
            let mut targets: HashMap<String, Vec<(PolicyId, Target)>> = HashMap::new();
            for (path, blob) in files {
                let content = self.object(blob, ObjectType::Blob, &path)?;
                let Ok(text) = std::str::from_utf8(&content) else {
                    continue;
                };
                // A broken document declares nothing at this commit (its
                // good neighbours still do); `crowsnest check` reports it.
                for p in policy::read_policy_file(&path, text).policies {
                    if set.images.contains_key(&p.id) {
                        continue;
                    }
                    set.images.insert(p.id.clone(), p.image.written.clone());
                    if let Some(promote) = &p.promote {
                        set.promoted_from.insert(p.id.clone(), promote.from.clone());
                    }
                    for target in p.targets {
                        targets
                            .entry(target.file.clone())
                            .or_default()
                            .push((p.id.clone(), target));
                    }
                }
            }
            set.targets = targets
                .into_iter()
                .map(|(file, list)| {
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    list.hash(&mut hasher);
                    // 0 means "no targets" in the field cache's key.
                    let hash = hasher.finish() | 1;
                    (file, (list, hash))
                })
                .collect();
        }
        let set = Rc::new(set);
        self.policies.insert(folder, set.clone());
        Ok(set)
    }

    /// The YAML files in the policy folder `tree` and below, in
    /// `git ls-tree -r` order: `(path, blob)`.
    fn policy_files(
        &mut self,
        tree: Oid,
        prefix: &str,
        files: &mut Vec<(String, Oid)>,
    ) -> Result<(), HistoryError> {
        let raw = self.raw_tree(tree)?;
        for entry in RawEntries(&raw) {
            let Ok(name) = std::str::from_utf8(entry.name) else {
                continue;
            };
            let path = format!("{prefix}{name}");
            if entry.is_tree() {
                self.policy_files(entry.oid(), &format!("{path}/"), files)?;
            } else if entry.mode & 0o170000 == 0o100000
                && (name.ends_with(".yaml") || name.ends_with(".yml"))
            {
                files.push((path, entry.oid()));
            }
        }
        Ok(())
    }

    fn fields(
        &mut self,
        blob: Oid,
        path: &str,
        set: &PolicySet,
    ) -> Result<Rc<Vec<ManagedField>>, HistoryError> {
        let markers = self.scans_markers(path);
        let (targets, hash) = match set.targets.get(path) {
            Some((list, hash)) => (list.as_slice(), *hash),
            None => (&[][..], 0),
        };
        let key = (blob, markers, hash);
        if let Some(found) = self.fields.get(&key) {
            return Ok(found.clone());
        }
        let bytes = &self.object(blob, ObjectType::Blob, path)?[..];
        let markers = markers && manifests::may_contain_markers(bytes);
        let found = if (!markers && targets.is_empty()) || bytes.len() > MAX_MANIFEST_BYTES {
            Vec::new()
        } else {
            match std::str::from_utf8(bytes) {
                Ok(text) => fields::managed_fields(path, text, markers, targets),
                Err(_) => Vec::new(),
            }
        };
        let found = Rc::new(found);
        self.fields.insert(key, found.clone());
        Ok(found)
    }
}

/// Whether a blob mentions a marker, remembered by id.
fn remember_mentions(cache: &mut HashMap<Oid, bool>, id: Oid, bytes: &[u8]) -> bool {
    if let Some(&known) = cache.get(&id) {
        return known;
    }
    let found = manifests::may_contain_markers(bytes);
    remember(cache, id, found);
    found
}

fn remember(cache: &mut HashMap<Oid, bool>, id: Oid, mentions: bool) {
    if cache.len() >= MENTIONS_CACHE_ENTRIES {
        cache.clear();
    }
    cache.insert(id, mentions);
}

/// `path` is `dir` or inside it (`""` and `.` hold everything).
fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_matches('/');
    dir.is_empty()
        || dir == "."
        || path == dir
        || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::{Oid, common_entries, parse_commit, under};

    #[test]
    fn raw_commits_parse_past_signatures_and_merge_tags() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
parent 1111111111111111111111111111111111111111\n\
parent 2222222222222222222222222222222222222222\n\
author Ada Admin <ada@example.com> 1700000000 +0200\n\
committer crowsnest <crowsnest@localhost> 1700000123 -0500\n\
mergetag object 3333333333333333333333333333333333333333\n \
type commit\n tagger Eve <eve@example.com> 1 +0000\n \n parent 4444444444444444444444444444444444444444\n\
gpgsig -----BEGIN PGP SIGNATURE-----\n \n iHUEABYKAB0WIQ\n -----END PGP SIGNATURE-----\n\
\n\
Update podinfo\n\n\
Image-Update: default:podinfo ghcr.io/s/podinfo:6.0.0 -> ghcr.io/s/podinfo:6.1.0\n";
        let commit = parse_commit(Oid::ZERO_SHA1, raw).expect("parses");
        assert_eq!(
            commit.tree.to_string(),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
        assert_eq!(commit.parents.len(), 2);
        assert_eq!(commit.time, 1_700_000_123);
        assert_eq!(commit.author.name, "Ada Admin");
        assert_eq!(commit.author.email, "ada@example.com");
        assert_eq!(commit.updates.len(), 1);
        assert!(parse_commit(Oid::ZERO_SHA1, b"tree nonsense\n\nx").is_none());
        assert!(parse_commit(Oid::ZERO_SHA1, b"author a <b> 1 +0000\n\nx").is_none());
    }

    #[test]
    fn common_entries_stop_at_the_first_differing_entry() {
        let entry = |name: &str, id: u8| {
            let mut raw = format!("100644 {name}\0").into_bytes();
            raw.extend([id; 20]);
            raw
        };
        let a = [entry("a.yaml", 1), entry("b.yaml", 2), entry("c.yaml", 3)].concat();
        let b = [entry("a.yaml", 1), entry("b.yaml", 9), entry("c.yaml", 3)].concat();
        assert_eq!(common_entries(&a, &b), entry("a.yaml", 1).len());
        assert_eq!(common_entries(&a, &a), a.len());
        assert_eq!(common_entries(&a, &[]), 0);
        let longer = [a.clone(), entry("d.yaml", 4)].concat();
        assert_eq!(common_entries(&a, &longer), a.len());
    }

    #[test]
    fn under_is_by_whole_path_components() {
        assert!(under("apps/web/x.yaml", ""));
        assert!(under("apps/web/x.yaml", "."));
        assert!(under("apps/web/x.yaml", "apps"));
        assert!(under("apps/web/x.yaml", "apps/"));
        assert!(under("apps", "apps"));
        assert!(!under("apps2/x.yaml", "apps"));
        assert!(!under("apps", "apps/web"));
    }
}
