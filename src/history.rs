//! `crowsnest history`: the audit trail read back out of the commit graph.
//!
//! Like `reconcile`, this module joins others: it walks commits with git2
//! (`git`), reads policy files (`policy`) and managed fields
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
//! - of the changed files, only manifests and target files are read, and
//!   a file without `"$imagepolicy"` (or a setters `$ref`) that is no
//!   target is never parsed;
//! - the managed fields of a blob are computed once and cached by blob id
//!   (each version is the "new" side of one commit and the "old" side of
//!   the next), and policy files once per policy-folder tree id.
//!
//! A merge lists a field only when its value differs from every parent's
//! (git's combined diff): merging a branch is not a manual change, a
//! conflict resolved to a new value is.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::rc::Rc;

use git2::{ObjectType, Oid, Repository, Sort, Tree};

use crate::audit::fields::{self, FieldKey, ManagedField};
use crate::audit::record::{Entry, Filter, Kind, Person, SignatureReport, image_of};
use crate::audit::{self};
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
}

/// Opens a repository (a worktree's folder or a bare clone).
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
    let mut reader = Reader {
        repo,
        options,
        policies: HashMap::new(),
        fields: HashMap::new(),
    };
    let mut trail = Trail::default();
    let mut walk = repo
        .revwalk()
        .map_err(|e| reader.error("the commit graph", e))?;
    walk.set_sorting(Sort::TIME)
        .and_then(|()| walk.push(tip))
        .map_err(|e| reader.error("the commit graph", e))?;
    for id in walk {
        let id = id.map_err(|e| reader.error("the commit graph", e))?;
        trail.commits += 1;
        let commit = repo
            .find_commit(id)
            .map_err(|e| reader.error(&format!("commit {id}"), e))?;
        let time = commit.time().seconds();
        if !options.filter.keeps_time(time) {
            continue;
        }
        let first = trail.entries.len();
        let message = commit.message_raw_bytes();
        let updates = if audit::may_have_trailers(message) {
            audit::parse_trailers(&String::from_utf8_lossy(message))
        } else {
            Vec::new()
        };
        let author = || {
            let a = commit.author();
            Person {
                name: String::from_utf8_lossy(a.name_bytes()).into_owned(),
                email: String::from_utf8_lossy(a.email_bytes()).into_owned(),
            }
        };
        if !updates.is_empty() {
            for update in updates {
                let image = image_of(&update.to).to_owned();
                if !options.filter.keeps_policy(&update.policy)
                    || !options.filter.keeps_image(Some(&image))
                {
                    continue;
                }
                trail.entries.push(Entry {
                    kind: Kind::Update,
                    time,
                    commit: id.to_string(),
                    author: author(),
                    policy: update.policy,
                    image: Some(image),
                    field: None,
                    file: None,
                    line: None,
                    from: update.from,
                    to: update.to,
                    signature: None,
                });
            }
        } else if commit.parent_count() > 0 {
            trail.diffed += 1;
            for change in reader.manual_changes(&commit)? {
                if !options.filter.keeps_policy(change.key.policy())
                    || !options.filter.keeps_image(change.image.as_deref())
                {
                    continue;
                }
                trail.entries.push(Entry {
                    kind: Kind::Manual,
                    time,
                    commit: id.to_string(),
                    author: author(),
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
                let report = verify_commit(repo, verifier, id, time);
                for entry in &mut trail.entries[first..] {
                    entry.signature = Some(report.clone());
                }
            }
        }
    }
    Ok(trail)
}

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

struct Reader<'r> {
    repo: &'r Repository,
    options: &'r Options,
    /// By the policy folder's tree id (`Oid::ZERO_SHA1`: no folder).
    policies: HashMap<Oid, Rc<PolicySet>>,
    /// By (blob, markers scanned, targets hash).
    fields: HashMap<(Oid, bool, u64), Rc<Vec<ManagedField>>>,
}

impl<'r> Reader<'r> {
    fn error(&self, what: &str, e: git2::Error) -> HistoryError {
        HistoryError::Read {
            repo: self.repo.path().display().to_string(),
            what: what.to_owned(),
            message: e.message().to_owned(),
        }
    }

    fn tree(&self, id: Oid) -> Result<Tree<'r>, HistoryError> {
        self.repo
            .find_tree(id)
            .map_err(|e| self.error(&format!("tree {id}"), e))
    }

    fn commit_tree(&self, id: Oid) -> Result<Oid, HistoryError> {
        self.repo
            .find_commit(id)
            .map(|c| c.tree_id())
            .map_err(|e| self.error(&format!("commit {id}"), e))
    }

    fn manual_changes(
        &mut self,
        commit: &git2::Commit<'_>,
    ) -> Result<Vec<ManualChange>, HistoryError> {
        let parents: Vec<Oid> = commit.parent_ids().collect();
        let new_root = commit.tree_id();
        let old_root = self.commit_tree(parents[0])?;
        if old_root == new_root {
            return Ok(Vec::new());
        }
        let new_tree = self.tree(new_root)?;
        let old_tree = self.tree(old_root)?;
        let new_set = self.policy_set(&new_tree)?;
        let old_set = self.policy_set(&old_tree)?;
        let mut changed = Vec::new();
        let mut prefix = String::new();
        self.diff(
            &old_tree,
            &new_tree,
            &mut prefix,
            &[&old_set, &new_set],
            &mut changed,
        )?;
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        let others: Vec<(Tree<'r>, Rc<PolicySet>)> = parents[1..]
            .iter()
            .map(|p| {
                let tree = self.tree(self.commit_tree(*p)?)?;
                let set = self.policy_set(&tree)?;
                Ok((tree, set))
            })
            .collect::<Result<_, HistoryError>>()?;
        let mut found = Vec::new();
        'files: for (path, old_blob, new_blob) in changed {
            let old = self.fields(old_blob, &path, &old_set)?;
            let new = self.fields(new_blob, &path, &new_set)?;
            let mut changes = fields::changes(&old, &new);
            if changes.is_empty() {
                continue;
            }
            for (tree, set) in &others {
                let Some(blob) = blob_at(tree, &path) else {
                    continue;
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
    fn diff(
        &self,
        old: &Tree<'r>,
        new: &Tree<'r>,
        prefix: &mut String,
        sets: &[&PolicySet],
        out: &mut Vec<(String, Oid, Oid)>,
    ) -> Result<(), HistoryError> {
        for entry in new.iter() {
            let Some(before) = old.get_name_bytes(entry.name_bytes()) else {
                continue;
            };
            if before.id() == entry.id() {
                continue;
            }
            let Ok(name) = std::str::from_utf8(entry.name_bytes()) else {
                continue;
            };
            let len = prefix.len();
            prefix.push_str(name);
            match (before.kind(), entry.kind()) {
                (Some(ObjectType::Tree), Some(ObjectType::Tree)) => {
                    if self.may_hold_fields(prefix, sets) {
                        let (a, b) = (self.tree(before.id())?, self.tree(entry.id())?);
                        prefix.push('/');
                        self.diff(&a, &b, prefix, sets, out)?;
                    }
                }
                (Some(ObjectType::Blob), Some(ObjectType::Blob)) => {
                    if self.scans_markers(prefix)
                        || sets.iter().any(|s| s.targets.contains_key(prefix.as_str()))
                    {
                        out.push((prefix.clone(), before.id(), entry.id()));
                    }
                }
                _ => {}
            }
            prefix.truncate(len);
        }
        Ok(())
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

    fn policy_set(&mut self, root: &Tree<'r>) -> Result<Rc<PolicySet>, HistoryError> {
        let dir = self.options.policies_dir.trim_matches('/');
        let folder = match root.get_path(Path::new(dir)) {
            Ok(entry) if entry.kind() == Some(ObjectType::Tree) => entry.id(),
            _ => Oid::ZERO_SHA1,
        };
        if let Some(set) = self.policies.get(&folder) {
            return Ok(set.clone());
        }
        let mut set = PolicySet::default();
        if !folder.is_zero() {
            let tree = self.tree(folder)?;
            let mut files = Vec::new();
            tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
                if entry.kind() == Some(ObjectType::Blob) {
                    if let Ok(name) = entry.name() {
                        if name.ends_with(".yaml") || name.ends_with(".yml") {
                            files.push((format!("{dir}/{root}{name}"), entry.id()));
                        }
                    }
                }
                git2::TreeWalkResult::Ok
            })
            .map_err(|e| self.error("the policy folder", e))?;
            let mut targets: HashMap<String, Vec<(PolicyId, Target)>> = HashMap::new();
            for (path, blob) in files {
                let blob = self
                    .repo
                    .find_blob(blob)
                    .map_err(|e| self.error(&path, e))?;
                let Ok(text) = std::str::from_utf8(blob.content()) else {
                    continue;
                };
                // A policy file that does not parse at this commit declares
                // nothing; `crowsnest check` is where it gets reported.
                let Ok(policies) = policy::parse_policy_file(&path, text) else {
                    continue;
                };
                for p in policies {
                    if set.images.contains_key(&p.id) {
                        continue;
                    }
                    set.images.insert(p.id.clone(), p.image.written.clone());
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
        let content = self.repo.find_blob(blob).map_err(|e| self.error(path, e))?;
        let bytes = content.content();
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

/// `path` is `dir` or inside it (`""` and `.` hold everything).
fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_matches('/');
    dir.is_empty()
        || dir == "."
        || path == dir
        || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

fn blob_at(tree: &Tree<'_>, path: &str) -> Option<Oid> {
    let entry = tree.get_path(Path::new(path)).ok()?;
    (entry.kind() == Some(ObjectType::Blob)).then(|| entry.id())
}

#[cfg(test)]
mod tests {
    use super::under;

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
