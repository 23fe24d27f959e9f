//! Promotion (PRODUCT.md §8): an environment takes the values another
//! environment's policy has held long enough, straight from the Git
//! history of that policy's setters. Called from `reconcile` only.
//!
//! [`Timeline::read`] walks the source branch's **first-parent** chain
//! (the commits as the branch received them: a merged branch's values
//! land at the merge) and records each period the source policy held a
//! value: the value as written (`image:tag@digest`), the commit and time
//! it landed (that commit's committer time), its author, and the commit
//! and time it was replaced. The value a policy holds at a commit is the
//! one all its `image` markers agree on (or all its `tag` markers, with
//! the `digest` markers' digest); while they disagree (a change rolled
//! out file by file) the policy holds no value, which ends the period of
//! the one before. The source policy's `targets:` are setters too: the
//! fields they name are read from their files (anywhere in the
//! repository) at each commit that changed those files.
//!
//! Reading is incremental: a timeline remembers the tip it was read at and
//! the markers of every file then, so a later read whose tip descends
//! (first parent) from it reads only the new commits; any other tip (a
//! force push), or other `targets:`, is read again from the root. Only
//! files whose text names the source policy, and the targets' files, are
//! parsed.
//!
//! A read of more than one chunk of commits (a first read of a long
//! history) is spread over one thread per core, as `crowsnest history`
//! is: this thread walks the chain and hands out chunks of consecutive
//! commits; each worker diffs its chunk through its own object handle
//! into a list of file changes per commit, starting from the tree of the
//! commit before the chunk; the lists are then applied oldest first,
//! which is the same sequence of changes one thread would have made.
//!
//! [`decide`] is pure: given the timeline, the time, the promotion's soak,
//! rollback rule and signature rule, the source's ordering and the value
//! the destination holds, every candidate value gets a [`Verdict`], and
//! the highest eligible value by the ordering is picked; the instant the
//! next candidate finishes soaking is returned for the scheduler.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use std::cmp::Ordering;
use std::sync::Arc;

use crate::git::objects::{Objects, RawEntries, RawEntry, common_entries, git_order};

use crate::audit::record::SignatureStatus;
use crate::git::verify::Verifier;
use crate::manifests::Manifest;
use crate::model::{Field, PolicyId, Target, TargetPath};
use crate::policy::{Promote, Selector};

/// The source history could not be read.
#[derive(Debug, thiserror::Error)]
#[error("promotion from {policy}: cannot read {what}: {message}")]
pub struct PromoteError {
    pub policy: PolicyId,
    pub what: String,
    pub message: String,
}

/// One period the source policy held a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// The value as the source's setters hold it (`image:tag[@digest]`,
    /// or `tag[@digest]` for tag markers).
    pub value: String,
    /// Unix seconds: the committer time of the commit it landed with.
    pub since: i64,
    pub commit: Oid,
    pub author: String,
    /// Whether `commit` is Good-signed (only read when asked for).
    pub signed: Option<bool>,
    /// When and how it left; `None` while it is still held.
    pub ended: Option<Ending>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub at: i64,
    pub commit: Oid,
    /// The value that replaced it (`None`: the setters disagreed or left).
    pub by: Option<String>,
}

/// The periods of one source policy on one branch, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub tip: Option<Oid>,
    pub holdings: Vec<Holding>,
    /// Commits read by the last [`Timeline::read`] (incremental reads
    /// read only what is new).
    pub commits_read: usize,
    files: HashMap<String, FileState>,
    /// What was watched at `tip`.
    watched: Option<Watched>,
    /// The targets it was read with.
    targets: Vec<TargetKey>,
}

/// A target as far as reading goes (not where it is declared).
type TargetKey = (String, TargetPath, Field);

fn target_keys(targets: &[Target]) -> Vec<TargetKey> {
    targets
        .iter()
        .map(|t| (t.file.clone(), t.path.clone(), t.field))
        .collect()
}

/// What a commit holds of what a read watches: the scanned folder's tree,
/// and the blob of each target file (in [`Scope::target_files`] order).
#[derive(Debug, Clone, PartialEq)]
struct Watched {
    scan: Option<Oid>,
    blobs: Vec<Option<Oid>>,
}

#[derive(Debug, Clone, PartialEq)]
struct FileState {
    /// The policy's setters in the file: field and value.
    setters: Vec<(Field, String)>,
}

impl Timeline {
    /// Brings the timeline of `policy`'s markers under `scan_dir`, and of
    /// its `targets`, up to `tip`: only new first-parent commits when
    /// `tip` descends from the tip it was read at (with the same targets),
    /// from the root otherwise.
    pub fn read(
        self,
        repo: &Repository,
        tip: Oid,
        policy: &PolicyId,
        scan_dir: &str,
        targets: &[Target],
    ) -> Result<Timeline, PromoteError> {
        self.read_with(repo, tip, policy, scan_dir, targets, None, CHUNK)
    }

    /// [`Timeline::read`] with `workers` threads (`None`: one per core)
    /// reading chunks of `chunk` commits; on the caller's thread alone
    /// when the new commits fit in one chunk.
    #[allow(clippy::too_many_arguments)]
    fn read_with(
        mut self,
        repo: &Repository,
        tip: Oid,
        policy: &PolicyId,
        scan_dir: &str,
        targets: &[Target],
        workers: Option<usize>,
        chunk: usize,
    ) -> Result<Timeline, PromoteError> {
        let fail = |what: &str, message: String| PromoteError {
            policy: policy.clone(),
            what: what.to_owned(),
            message,
        };
        let walk_error = |m| fail("a commit", m);
        let chunk = chunk.max(1);
        let keys = target_keys(targets);
        if self.targets != keys {
            self = Timeline {
                targets: keys,
                ..Timeline::default()
            };
        }
        if self.tip == Some(tip) {
            self.commits_read = 0;
            return Ok(self);
        }
        let mut objects = Objects::open(repo).map_err(|m| fail("the object database", m))?;
        let mut walk = FirstParents {
            at: Some(tip),
            stop: self.tip,
            stop_watched: self.watched.clone(),
            ahead: None,
            reached_stop: false,
        };
        let needle = marker_needle(policy);
        let scope = Scope::new(policy, &needle, scan_dir, targets);
        let first = walk.chunk(&mut objects, chunk).map_err(walk_error)?;
        let mut read = Vec::new();
        let mut walked = first.commits.len();
        // Asked only now: the machine's parallelism costs system calls
        // (cgroup limits), and most reads fit in one chunk.
        let workers = walk.done().then_some(1).or(workers).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_WORKERS)
        });
        if workers <= 1 {
            // One thread, oldest chunk first (each starts where the one
            // before ended).
            let mut chunks = vec![first];
            while !walk.done() {
                let next = walk.chunk(&mut objects, chunk).map_err(walk_error)?;
                walked += next.commits.len();
                chunks.push(next);
            }
            for (number, chunk) in chunks.into_iter().enumerate().rev() {
                let part = scope
                    .read(&mut objects, chunk)
                    .map_err(|m| fail("a tree", m))?;
                read.push((number, part));
            }
        } else {
            // The walk goes on here while the workers, each with its own
            // handle on the object database, diff chunks as they come.
            let (sender, receiver) = std::sync::mpsc::channel::<(usize, Chunk)>();
            let receiver = std::sync::Mutex::new(receiver);
            let (parts, walk_result) = std::thread::scope(|threads| {
                let handles: Vec<_> = (0..workers)
                    .map(|_| {
                        let (receiver, scope) = (&receiver, &scope);
                        let mut objects = objects.clone();
                        threads.spawn(move || {
                            let mut parts = Vec::new();
                            loop {
                                let next = receiver.lock().expect("the chunk queue").recv();
                                let Ok((number, chunk)) = next else { break };
                                parts.push((number, scope.read(&mut objects, chunk)?));
                            }
                            Ok::<_, String>(parts)
                        })
                    })
                    .collect();
                let _ = sender.send((0, first));
                let mut walk_result = Ok(());
                let mut number = 1;
                while !walk.done() {
                    match walk.chunk(&mut objects, chunk) {
                        Ok(next) => {
                            walked += next.commits.len();
                            let _ = sender.send((number, next));
                            number += 1;
                        }
                        Err(message) => {
                            walk_result = Err(message);
                            break;
                        }
                    }
                }
                drop(sender);
                let parts: Vec<_> = handles
                    .into_iter()
                    .map(|h| h.join().expect("a promotion reader panicked"))
                    .collect();
                (parts, walk_result)
            });
            walk_result.map_err(walk_error)?;
            for part in parts {
                read.extend(part.map_err(|m| fail("a tree", m))?);
            }
        }
        if !walk.reached_stop {
            self = Timeline {
                targets: std::mem::take(&mut self.targets),
                ..Timeline::default()
            };
        }
        self.commits_read = walked;
        // Oldest chunk first; chunk 0 ends at the tip.
        read.sort_by_key(|(number, _)| std::cmp::Reverse(*number));
        for (number, part) in read {
            if number == 0 {
                self.watched = Some(part.watched);
            }
            for step in part.steps {
                self.record(step);
            }
        }
        self.tip = Some(tip);
        Ok(self)
    }

    /// Applies one commit's changes to the files and ends or starts a
    /// period when the value the setters agree on moved.
    fn record(&mut self, step: Step) {
        for change in step.changes {
            change.apply(&mut self.files);
        }
        let value = held_value(self.files.values());
        let current = self.holdings.last().filter(|h| h.ended.is_none());
        if current.map(|h| &h.value) == value.as_ref() {
            return;
        }
        if let Some(last) = self.holdings.last_mut().filter(|h| h.ended.is_none()) {
            last.ended = Some(Ending {
                at: step.time,
                commit: step.id,
                by: value.clone(),
            });
        }
        if let Some(value) = value {
            self.holdings.push(Holding {
                value,
                since: step.time,
                commit: step.id,
                author: step.author,
                signed: None,
                ended: None,
            });
        }
    }

    /// Reads the signature verdict of every period's first commit that has
    /// none yet.
    pub fn verify(&mut self, repo: &Repository, verifier: &Verifier) {
        for holding in self.holdings.iter_mut().filter(|h| h.signed.is_none()) {
            let report =
                crate::audit::history::verify_commit(repo, verifier, holding.commit, holding.since);
            holding.signed = Some(report.status == SignatureStatus::Good);
        }
    }

    /// The value the source holds at its tip.
    pub fn current(&self) -> Option<&Holding> {
        self.holdings.last().filter(|h| h.ended.is_none())
    }
}

/// Commits per chunk: a first read longer than one is spread over
/// threads a chunk at a time (consecutive commits keep a worker's
/// delta-base cache warm; each chunk costs one extra diff, at its start).
const CHUNK: usize = 2_000;

/// Threads a first read uses at most.
const MAX_WORKERS: usize = 8;

/// The first-parent chain from a tip back to the tip read before (or the
/// root), newest first, listed a chunk at a time.
struct FirstParents {
    /// The next commit to read.
    at: Option<Oid>,
    /// The tip the timeline was read at, where the walk stops.
    stop: Option<Oid>,
    /// What was watched at `stop`.
    stop_watched: Option<Watched>,
    /// The commit read last, which opens the next chunk (its root tree
    /// is where the chunk before starts).
    ahead: Option<(Oid, CommitInfo)>,
    reached_stop: bool,
}

/// Consecutive first-parent commits, and the tree the first of them is
/// diffed against.
struct Chunk {
    /// Newest first, as walked.
    commits: Vec<(Oid, CommitInfo)>,
    start: Start,
}

/// Where a chunk's diffs start.
enum Start {
    /// The root tree of the commit before the chunk.
    Root(Oid),
    /// What was watched, known: at the tip read before, or (`None`)
    /// nothing, before the root commit.
    Known(Option<Watched>),
}

impl FirstParents {
    fn done(&self) -> bool {
        self.at.is_none() && self.ahead.is_none()
    }

    /// The next (up to) `size` commits.
    fn chunk(&mut self, objects: &mut Objects, size: usize) -> Result<Chunk, String> {
        let mut commits: Vec<_> = self.ahead.take().into_iter().collect();
        while let Some(id) = self.at {
            if Some(id) == self.stop {
                self.reached_stop = true;
                self.at = None;
                break;
            }
            let commit = commit_info(objects, id)?;
            self.at = commit.parent;
            if commits.len() == size {
                let start = Start::Root(commit.tree);
                self.ahead = Some((id, commit));
                return Ok(Chunk { commits, start });
            }
            commits.push((id, commit));
        }
        let start = Start::Known(if self.reached_stop {
            self.stop_watched.clone()
        } else {
            None
        });
        Ok(Chunk { commits, start })
    }
}

/// What a chunk's commits did to the scanned folder.
struct ChunkRead {
    /// Oldest first: the commits that changed the files.
    steps: Vec<Step>,
    /// What was watched at the newest commit.
    watched: Watched,
}

/// One commit's changes to the files.
struct Step {
    id: Oid,
    time: i64,
    author: String,
    changes: Vec<Change>,
}

/// One change to the files a timeline tracks. A diff lists them in the
/// order it finds them, and applied in that order they bring the files
/// from one commit to the next: chunks diffed apart are stitched by
/// applying their steps oldest first, exactly as one diff after another.
#[derive(Debug)]
enum Change {
    Set(String, Vec<(Field, String)>),
    Remove(String),
    /// Every file under a folder (the prefix ends in `/`).
    RemoveUnder(String),
}

impl Change {
    fn apply(self, files: &mut HashMap<String, FileState>) {
        match self {
            Change::Set(path, setters) => {
                files.insert(path, FileState { setters });
            }
            Change::Remove(path) => {
                files.remove(&path);
            }
            Change::RemoveUnder(prefix) => files.retain(|path, _| !path.starts_with(&prefix)),
        }
    }
}

/// What a read looks for: one policy's setters under one folder, and in
/// the files its targets name.
struct Scope<'a> {
    policy: &'a PolicyId,
    needle: &'a str,
    scan_dir: &'a str,
    targets: &'a [Target],
    /// The targets' files, each once.
    target_files: Vec<&'a str>,
}

impl<'a> Scope<'a> {
    fn new(
        policy: &'a PolicyId,
        needle: &'a str,
        scan_dir: &'a str,
        targets: &'a [Target],
    ) -> Scope<'a> {
        let mut target_files: Vec<&str> = targets.iter().map(|t| t.file.as_str()).collect();
        target_files.sort_unstable();
        target_files.dedup();
        Scope {
            policy,
            needle,
            scan_dir,
            targets,
            target_files,
        }
    }

    /// What `root` (a commit's tree) holds of what this read watches.
    fn watched(&self, objects: &mut Objects, root: Oid) -> Result<Watched, String> {
        let scan = subtree(objects, root, self.scan_dir)?;
        let blobs = self
            .target_files
            .iter()
            .map(|file| file_at(objects, root, file))
            .collect::<Result<_, _>>()?;
        Ok(Watched { scan, blobs })
    }

    /// Diffs each commit of `chunk` against the one before, oldest first.
    fn read(&self, objects: &mut Objects, chunk: Chunk) -> Result<ChunkRead, String> {
        let mut previous = match chunk.start {
            Start::Root(tree) => self.watched(objects, tree)?,
            Start::Known(Some(watched)) => watched,
            Start::Known(None) => Watched {
                scan: None,
                blobs: vec![None; self.target_files.len()],
            },
        };
        let mut steps = Vec::new();
        for (id, commit) in chunk.commits.into_iter().rev() {
            let watched = self.watched(objects, commit.tree)?;
            if watched == previous {
                continue;
            }
            let mut changes = Vec::new();
            Reader {
                objects: &mut *objects,
                policy: self.policy,
                needle: self.needle,
            }
            .diff(previous.scan, watched.scan, "", &mut changes)?;
            for (i, file) in self.target_files.iter().enumerate() {
                if watched.blobs[i] != previous.blobs[i] {
                    changes.push(self.target_change(objects, file, watched.blobs[i])?);
                }
            }
            previous = watched;
            // Files unchanged, value unchanged: no step.
            if !changes.is_empty() {
                steps.push(Step {
                    id,
                    time: commit.time,
                    author: commit.author,
                    changes,
                });
            }
        }
        Ok(ChunkRead {
            steps,
            watched: previous,
        })
    }

    /// The setters the targets in `file` hold in its version `blob`
    /// (none: the file is gone, or a target's field is not there). Kept
    /// apart from the scanned files, under a key no path has.
    fn target_change(
        &self,
        objects: &mut Objects,
        file: &str,
        blob: Option<Oid>,
    ) -> Result<Change, String> {
        let key = format!("\0{file}");
        let Some(blob) = blob else {
            return Ok(Change::Remove(key));
        };
        let (_, bytes) = objects.read(blob)?;
        let setters = target_setters(&bytes, file, self.policy, self.targets);
        Ok(if setters.is_empty() {
            Change::Remove(key)
        } else {
            Change::Set(key, setters)
        })
    }
}

/// What the walk needs of a commit.
struct CommitInfo {
    tree: Oid,
    parent: Option<Oid>,
    /// Committer time.
    time: i64,
    author: String,
}

/// The headers of a raw commit.
fn commit_info(objects: &mut Objects, id: Oid) -> Result<CommitInfo, String> {
    let (kind, raw) = objects.read(id)?;
    if kind != ObjectType::Commit {
        return Err(format!("{id} is not a commit"));
    }
    let headers = &raw[..memchr::memmem::find(&raw, b"\n\n").unwrap_or(raw.len())];
    let (mut tree, mut parent, mut time, mut author) = (None, None, 0, String::new());
    for line in headers.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        if let Some(hex) = text.strip_prefix("tree ") {
            tree = Oid::from_str(hex.trim()).ok();
        } else if let Some(hex) = text.strip_prefix("parent ") {
            if parent.is_none() {
                parent = Oid::from_str(hex.trim()).ok();
            }
        } else if let Some(who) = text.strip_prefix("author ") {
            author = who.split(" <").next().unwrap_or("").to_owned();
        } else if let Some(who) = text.strip_prefix("committer ") {
            let mut fields = who.rsplit(' ');
            let _zone = fields.next();
            time = fields.next().and_then(|t| t.parse().ok()).unwrap_or(0);
        }
    }
    Ok(CommitInfo {
        tree: tree.ok_or_else(|| format!("commit {id} has no tree"))?,
        parent,
        time,
        author,
    })
}

/// The id of the folder `dir` (`""`: the root) in tree `root`.
fn subtree(objects: &mut Objects, root: Oid, dir: &str) -> Result<Option<Oid>, String> {
    let mut at = root;
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        let (kind, raw) = objects.read(at)?;
        if kind != ObjectType::Tree {
            return Err(format!("{at} is not a tree"));
        }
        match RawEntries(&raw).find(|e| e.is_tree() && e.name == part.as_bytes()) {
            Some(entry) => at = entry.oid(),
            None => return Ok(None),
        }
    }
    Ok(Some(at))
}

/// The id of the regular file at `path` in tree `root`, if there is one.
fn file_at(objects: &mut Objects, root: Oid, path: &str) -> Result<Option<Oid>, String> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let Some(tree) = subtree(objects, root, dir)? else {
        return Ok(None);
    };
    let (kind, raw) = objects.read(tree)?;
    if kind != ObjectType::Tree {
        return Err(format!("{tree} is not a tree"));
    }
    Ok(RawEntries(&raw)
        .find(|e| e.is_file() && e.name == name.as_bytes())
        .map(|e| e.oid()))
}

/// Reads the source policy's setters out of changed files.
struct Reader<'a> {
    objects: &'a mut Objects,
    policy: &'a PolicyId,
    needle: &'a str,
}

impl Reader<'_> {
    /// Lists the changes that bring the files from tree `old` to tree `new` (both the scanned
    /// folder, or a folder under it at `prefix`), entering only subtrees
    /// whose ids differ and reading only YAML files that changed. The raw
    /// trees are merge-joined in git's order after skipping the entries
    /// they share byte for byte (most of a folder when one file changed),
    /// and no further than their last difference.
    fn diff(
        &mut self,
        old: Option<Oid>,
        new: Option<Oid>,
        prefix: &str,
        changes: &mut Vec<Change>,
    ) -> Result<(), String> {
        if old == new {
            return Ok(());
        }
        let a = match old {
            Some(id) => self.tree(id)?,
            None => Arc::from(&[][..]),
        };
        let b = match new {
            Some(id) => self.tree(id)?,
            None => Arc::from(&[][..]),
        };
        let skip = common_entries(&a, &b);
        let (mut left, mut right) = (RawEntries(&a[skip..]), RawEntries(&b[skip..]));
        let (mut x, mut y) = (left.next(), right.next());
        loop {
            let order = match (&x, &y) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(l), Some(r)) => git_order(l, r),
            };
            match order {
                // Only in the old tree: gone.
                Ordering::Less => {
                    let l = x.expect("ordered");
                    self.gone(&l, prefix, changes);
                    x = left.next();
                }
                // Only in the new tree: added.
                Ordering::Greater => {
                    let r = y.expect("ordered");
                    self.added(None, &r, prefix, changes)?;
                    y = right.next();
                }
                Ordering::Equal => {
                    let (l, r) = (x.expect("ordered"), y.expect("ordered"));
                    if l.id != r.id || l.mode != r.mode {
                        self.added(Some(&l), &r, prefix, changes)?;
                        // The rest the same byte for byte: nothing more
                        // changed (most of a folder when one entry did).
                        if left.0 == right.0 {
                            break;
                        }
                    }
                    x = left.next();
                    y = right.next();
                }
            }
        }
        Ok(())
    }

    fn tree(&mut self, id: Oid) -> Result<Arc<[u8]>, String> {
        let (kind, raw) = self.objects.read(id)?;
        if kind != ObjectType::Tree {
            return Err(format!("{id} is not a tree"));
        }
        Ok(raw)
    }

    /// An entry of the old tree that the new one lacks.
    fn gone(&mut self, entry: &RawEntry<'_>, prefix: &str, changes: &mut Vec<Change>) {
        let path = format!("{prefix}{}", String::from_utf8_lossy(entry.name));
        changes.push(if entry.is_tree() {
            Change::RemoveUnder(format!("{path}/"))
        } else {
            Change::Remove(path)
        });
    }

    /// An entry new or changed in the new tree (`was`: its old version).
    fn added(
        &mut self,
        was: Option<&RawEntry<'_>>,
        entry: &RawEntry<'_>,
        prefix: &str,
        changes: &mut Vec<Change>,
    ) -> Result<(), String> {
        let name = String::from_utf8_lossy(entry.name);
        let path = format!("{prefix}{name}");
        let was_tree = was.filter(|w| w.is_tree()).map(RawEntry::oid);
        if entry.is_tree() {
            if was.is_some() && was_tree.is_none() {
                changes.push(Change::Remove(path.clone()));
            }
            return self.diff(was_tree, Some(entry.oid()), &format!("{path}/"), changes);
        }
        if was_tree.is_some() {
            changes.push(Change::RemoveUnder(format!("{path}/")));
        }
        if !entry.is_file() || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            changes.push(Change::Remove(path));
            return Ok(());
        }
        let (_, bytes) = self.objects.read(entry.oid())?;
        let setters = setters_in(&bytes, &path, self.policy, self.needle);
        changes.push(if setters.is_empty() {
            Change::Remove(path)
        } else {
            Change::Set(path, setters)
        });
        Ok(())
    }
}

/// The value `policy`'s markers under `scan_dir`, and its `targets`, hold
/// at `commit` (what a destination holds now, for `explain`).
pub fn value_at(
    repo: &Repository,
    commit: Oid,
    policy: &PolicyId,
    scan_dir: &str,
    targets: &[Target],
) -> Result<Option<String>, String> {
    let mut objects = Objects::open(repo)?;
    let tree = commit_info(&mut objects, commit)?.tree;
    let needle = marker_needle(policy);
    let scope = Scope::new(policy, &needle, scan_dir, targets);
    let watched = scope.watched(&mut objects, tree)?;
    let mut changes = Vec::new();
    Reader {
        objects: &mut objects,
        policy,
        needle: &needle,
    }
    .diff(None, watched.scan, "", &mut changes)?;
    for (file, blob) in scope.target_files.iter().zip(watched.blobs) {
        changes.push(scope.target_change(&mut objects, file, blob)?);
    }
    let mut files = HashMap::new();
    for change in changes {
        change.apply(&mut files);
    }
    Ok(held_value(files.values()))
}

/// The policy `id` as declared by the policy files under `policies_dir`
/// at `commit` (documents that do not validate are skipped).
pub fn policy_at(
    repo: &Repository,
    commit: Oid,
    policies_dir: &str,
    id: &PolicyId,
) -> Option<crate::policy::Policy> {
    let tree = repo.find_commit(commit).ok()?.tree().ok()?;
    let dir = if policies_dir.is_empty() {
        tree
    } else {
        repo.find_tree(tree.get_path(std::path::Path::new(policies_dir)).ok()?.id())
            .ok()?
    };
    let mut found = None;
    dir.walk(TreeWalkMode::PreOrder, |prefix, entry| {
        let name = entry.name().unwrap_or("");
        if found.is_none() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
            if let Ok(blob) = repo.find_blob(entry.id()) {
                if let Ok(text) = std::str::from_utf8(blob.content()) {
                    let file = format!("{policies_dir}/{prefix}{name}");
                    let read = crate::policy::read_policy_file(&file, text);
                    found = read.policies.into_iter().find(|p| &p.id == id);
                }
            }
        }
        TreeWalkResult::Ok
    })
    .ok()?;
    found
}

/// The registry policy whose ordering a promotion of `from` uses: `from`
/// itself, or for a promotion of a promotion the first registry policy up
/// the chain, looked up with `lookup`. `None` when a policy of the chain
/// is missing or the chain is a cycle: then nothing orders the values.
pub fn ordering(
    from: &PolicyId,
    mut lookup: impl FnMut(&PolicyId) -> Option<crate::policy::Policy>,
) -> Option<crate::policy::Policy> {
    let mut seen = vec![from.clone()];
    let mut at = lookup(from)?;
    while let Some(promote) = at.promote.take() {
        if seen.contains(&promote.from) {
            return None;
        }
        at = lookup(&promote.from)?;
        seen.push(promote.from);
    }
    Some(at)
}

/// The source policy's setters in one file version (none if the file does
/// not name the policy or does not parse).
/// What a file must contain to hold a setter of `policy`: its id, bare, as
/// every marker spells it (`"ns:name"`, `"ns:name:tag"`, kpt setters).
fn marker_needle(policy: &PolicyId) -> String {
    policy.to_string()
}

fn setters_in(bytes: &[u8], path: &str, policy: &PolicyId, needle: &str) -> Vec<(Field, String)> {
    if memchr::memmem::find(bytes, needle.as_bytes()).is_none() {
        return Vec::new();
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    let Ok(manifest) = Manifest::parse(path, text) else {
        return Vec::new();
    };
    manifest
        .scan_markers()
        .setters
        .into_iter()
        .filter(|s| &s.policy == policy)
        .map(|s| (s.field, s.value))
        .collect()
}

/// The setters `targets` (those naming `file`) hold in one version of it.
fn target_setters(
    bytes: &[u8],
    file: &str,
    policy: &PolicyId,
    targets: &[Target],
) -> Vec<(Field, String)> {
    if bytes.len() > crate::inventory::MAX_MANIFEST_BYTES {
        return Vec::new();
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    let Ok(manifest) = Manifest::parse_structure(file, text) else {
        return Vec::new();
    };
    targets
        .iter()
        .filter(|t| t.file == file)
        .filter_map(|t| manifest.resolve_target(policy, t).ok())
        .map(|s| (s.field, s.value))
        .collect()
}

/// The value every setter agrees on: the `image` markers' value, or else
/// the `tag` markers' tag with the `digest` markers' digest.
fn held_value<'a>(files: impl Iterator<Item = &'a FileState>) -> Option<String> {
    let mut by_field: BTreeMap<u8, Vec<&str>> = BTreeMap::new();
    for (field, value) in files.flat_map(|f| &f.setters) {
        let key = match field {
            Field::Image => 0,
            Field::Tag => 1,
            Field::Digest => 2,
            Field::Name => continue,
        };
        by_field.entry(key).or_default().push(value);
    }
    let agreed = |key: u8| -> Result<Option<&str>, ()> {
        match by_field.get(&key) {
            None => Ok(None),
            Some(values) if values.iter().all(|v| *v == values[0]) => Ok(Some(values[0])),
            Some(_) => Err(()),
        }
    };
    match (agreed(0).ok()?, agreed(1).ok()?, agreed(2).ok()?) {
        (Some(image), _, _) => Some(image.to_owned()),
        (None, Some(tag), Some(digest)) => Some(format!("{tag}@{digest}")),
        (None, Some(tag), None) => Some(tag.to_owned()),
        _ => None,
    }
}

/// The tag and digest of a value (`[image:]tag[@digest]`).
pub fn tag_and_digest(value: &str) -> (Option<&str>, Option<&str>) {
    let (reference, digest) = match value.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (value, None),
    };
    let tag = match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') && !name.is_empty() => Some(tag),
        Some(_) => None,
        None if !reference.contains('/') && !reference.is_empty() => Some(reference),
        None => None,
    };
    (tag, digest)
}

/// Why a candidate value is or is not promoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Picked,
    /// Held `held` of `soak` so far; eligible at `until` (Unix seconds).
    Soaking {
        held: Duration,
        soak: Duration,
        until: i64,
    },
    /// Replaced by a lower value in `commit`.
    RolledBack {
        commit: Oid,
    },
    /// Replaced before it held `soak`.
    ReplacedBeforeSoak {
        held: Duration,
        commit: Oid,
    },
    /// No period of it began with a Good-signed commit.
    Unsigned,
    /// Held now, but since `commit`, which is not Good-signed: that time
    /// does not count (its signed time was replaced before it soaked).
    HeldUnsigned {
        commit: Oid,
    },
    /// Eligible, but below what the destination holds (never backwards).
    NotHigher,
    /// Eligible, but a higher eligible value was picked.
    Outranked,
    /// Its tag has no place in the source policy's ordering (`latest`, a
    /// tag its filter rejects, no tag at all): never promoted.
    Unordered,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |id: &Oid| id.to_string()[..12].to_owned();
        let hours = |d: &Duration| span(*d);
        match self {
            Verdict::Picked => write!(f, "picked"),
            Verdict::Soaking { held, soak, until } => write!(
                f,
                "soaking {} of {} (eligible at {})",
                hours(held),
                hours(soak),
                crate::audit::time::format_time(*until)
            ),
            Verdict::RolledBack { commit } => write!(f, "rolled back in {}", short(commit)),
            Verdict::ReplacedBeforeSoak { held, commit } => write!(
                f,
                "replaced in {} after {}, before it soaked",
                short(commit),
                hours(held)
            ),
            Verdict::Unsigned => write!(f, "unsigned: no period began with a Good-signed commit"),
            Verdict::HeldUnsigned { commit } => write!(
                f,
                "unsigned: held since {}, which is not Good-signed (its signed time did not soak)",
                short(commit)
            ),
            Verdict::NotHigher => write!(f, "not higher than the current value"),
            Verdict::Outranked => write!(f, "eligible, lower than the pick"),
            Verdict::Unordered => write!(f, "not a value the source policy orders"),
        }
    }
}

/// A duration as the contract prints it: "3h of 24h", "1h30m", "45m",
/// "3s" (whole minutes once past the first, hours never turned into days).
fn span(d: Duration) -> String {
    let secs = d.as_secs();
    let (hours, minutes) = (secs / 3600, secs % 3600 / 60);
    match (hours, minutes) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// One candidate value with its verdict and the period that decided it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub value: String,
    pub verdict: Verdict,
    /// The source commit the value landed with (the period that counts:
    /// the first one that soaked, else the latest).
    pub commit: Oid,
    pub since: i64,
    pub author: String,
}

/// The decision of one promotion.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// Newest first.
    pub candidates: Vec<Candidate>,
    /// Index into `candidates` of the pick.
    pub pick: Option<usize>,
    /// When the next soaking candidate becomes eligible (Unix seconds).
    pub next_change: Option<i64>,
}

impl Decision {
    pub fn picked(&self) -> Option<&Candidate> {
        self.pick.map(|i| &self.candidates[i])
    }
}

/// Decides a promotion at `now` (Unix seconds). `order` is the source
/// policy's ordering; `current` the tag the destination holds (for the
/// downgrade guard; `None` when it holds none or `allowDowngrade`).
pub fn decide(
    timeline: &Timeline,
    promote: &Promote,
    order: &Selector<'_>,
    current: Option<&str>,
    now: i64,
) -> Decision {
    let soak = promote.soak.as_secs() as i64;
    let mut values: Vec<&str> = Vec::new();
    for h in timeline.holdings.iter().rev() {
        if !values.contains(&h.value.as_str()) {
            values.push(&h.value);
        }
    }
    // A value's tag, when the source's ordering has a place for it.
    let rank_tag = |value: &str| {
        tag_and_digest(value)
            .0
            .filter(|tag| order.orders(tag))
            .map(str::to_owned)
    };
    let lower = |a: &str, b: &str| -> bool {
        // Whether `a` ranks below `b` under the source's ordering.
        match (rank_tag(a), rank_tag(b)) {
            (Some(a), Some(b)) => order.ranks_below(&a, &b),
            _ => false,
        }
    };
    let mut decision = Decision::default();
    let mut eligible: Vec<usize> = Vec::new();
    for value in values {
        let periods: Vec<(usize, &Holding)> = timeline
            .holdings
            .iter()
            .enumerate()
            .filter(|(_, h)| h.value == value)
            .collect();
        let latest = periods.last().expect("a value has a period").1;
        // Rolled back: the next value all setters agree on after a period
        // is lower, whether it replaced the value at once or file by file
        // (the setters disagreeing in between).
        let rolled_back = periods.iter().find_map(|&(i, h)| {
            let end = h.ended.as_ref()?;
            let (by, commit) = match end.by.as_deref() {
                Some(by) => (by, end.commit),
                None => timeline
                    .holdings
                    .get(i + 1)
                    .map(|next| (next.value.as_str(), next.commit))?,
            };
            lower(by, &h.value).then_some(commit)
        });
        let periods: Vec<&Holding> = periods.into_iter().map(|(_, h)| h).collect();
        let counting: Vec<&&Holding> = periods
            .iter()
            .filter(|h| !promote.require_signed || h.signed == Some(true))
            .collect();
        let soaked = counting.iter().find(|h| {
            let end = h.ended.as_ref().map_or(now, |e| e.at);
            end - h.since >= soak
        });
        let basis = soaked.copied().copied().unwrap_or(latest);
        let verdict = if rank_tag(value).is_none() {
            Verdict::Unordered
        } else if let (Some(commit), true) = (rolled_back, promote.rollback_blocks) {
            Verdict::RolledBack { commit }
        } else if counting.is_empty() {
            Verdict::Unsigned
        } else if soaked.is_some() {
            eligible.push(decision.candidates.len());
            Verdict::Outranked
        } else {
            let still = counting.iter().find(|h| h.ended.is_none());
            match still {
                Some(h) => {
                    let until = h.since + soak;
                    decision.next_change =
                        Some(decision.next_change.map_or(until, |n| n.min(until)));
                    Verdict::Soaking {
                        held: Duration::from_secs((now - h.since).max(0) as u64),
                        soak: promote.soak,
                        until,
                    }
                }
                // Held now, in a period that does not count.
                None if latest.ended.is_none() => Verdict::HeldUnsigned {
                    commit: latest.commit,
                },
                None => {
                    let h = counting.last().expect("checked non-empty");
                    let end = h.ended.as_ref().expect("not still held");
                    Verdict::ReplacedBeforeSoak {
                        held: Duration::from_secs((end.at - h.since).max(0) as u64),
                        commit: end.commit,
                    }
                }
            }
        };
        decision.candidates.push(Candidate {
            value: value.to_owned(),
            verdict,
            commit: basis.commit,
            since: basis.since,
            author: basis.author.clone(),
        });
    }
    // The highest eligible value by the source's ordering.
    let mut best: Option<usize> = None;
    for &i in &eligible {
        let value = &decision.candidates[i].value;
        best = match best {
            Some(b) if !lower(&decision.candidates[b].value, value) => Some(b),
            _ => Some(i),
        };
    }
    if let Some(b) = best {
        let tag = rank_tag(&decision.candidates[b].value);
        // Never backwards; a current value the ordering cannot place
        // (`latest`, a tag outside its filter) may be replaced, as the
        // registry guard (`Policy::permits`) allows.
        let higher = match (current, tag.as_deref()) {
            (Some(current), Some(tag)) => !order.ranks_below(tag, current),
            _ => true,
        };
        if higher {
            decision.candidates[b].verdict = Verdict::Picked;
            decision.pick = Some(b);
        } else {
            for &i in &eligible {
                decision.candidates[i].verdict = Verdict::NotHigher;
            }
        }
    }
    decision
}

#[cfg(test)]
mod tests;
