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
//! the one before. Policy `targets:` are not followed here (markers only).
//!
//! Reading is incremental: a timeline remembers the tip it was read at and
//! the markers of every file then, so a later read whose tip descends
//! (first parent) from it reads only the new commits; any other tip (a
//! force push) is read again from the root. Only files whose text names
//! the source policy are parsed.
//!
//! [`decide`] is pure: given the timeline, the time, the promotion's soak,
//! rollback rule and signature rule, the source's ordering and the value
//! the destination holds, every candidate value gets a [`Verdict`], and
//! the highest eligible value by the ordering is picked; the instant the
//! next candidate finishes soaking is returned for the scheduler.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use crate::audit::record::SignatureStatus;
use crate::git::verify::Verifier;
use crate::manifests::Manifest;
use crate::model::{Field, PolicyId};
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
    scan_tree: Option<Oid>,
}

#[derive(Debug, Clone)]
struct FileState {
    blob: Oid,
    /// The policy's setters in the file: field and value.
    setters: Vec<(Field, String)>,
}

impl Timeline {
    /// Brings the timeline of `policy`'s markers under `scan_dir` up to
    /// `tip`: only new first-parent commits when `tip` descends from the
    /// tip it was read at, from the root otherwise.
    pub fn read(
        mut self,
        repo: &Repository,
        tip: Oid,
        policy: &PolicyId,
        scan_dir: &str,
    ) -> Result<Timeline, PromoteError> {
        let fail = |what: &str, e: git2::Error| PromoteError {
            policy: policy.clone(),
            what: what.to_owned(),
            message: e.message().to_owned(),
        };
        if self.tip == Some(tip) {
            self.commits_read = 0;
            return Ok(self);
        }
        let mut chain = Vec::new();
        let mut at = Some(tip);
        let mut reached_old = false;
        while let Some(id) = at {
            if Some(id) == self.tip {
                reached_old = true;
                break;
            }
            let commit = repo.find_commit(id).map_err(|e| fail("a commit", e))?;
            chain.push(id);
            at = commit.parent_ids().next();
        }
        if !reached_old {
            self = Timeline::default();
        }
        self.commits_read = chain.len();
        let needle = format!("\"{policy}\"");
        for id in chain.into_iter().rev() {
            let commit = repo.find_commit(id).map_err(|e| fail("a commit", e))?;
            let tree = commit.tree().map_err(|e| fail("a tree", e))?;
            let scan_tree = scan_subtree(&tree, scan_dir);
            if scan_tree == self.scan_tree {
                continue;
            }
            let previous = std::mem::replace(&mut self.scan_tree, scan_tree);
            match (previous, scan_tree) {
                (Some(old), Some(new)) => {
                    diff_files(repo, old, new, policy, &needle, &mut self.files)
                        .map_err(|e| fail("a diff", e))?;
                }
                _ => update_files(repo, scan_tree, policy, &needle, &mut self.files)
                    .map_err(|e| fail("a file", e))?,
            }
            let value = held_value(self.files.values());
            let current = self.holdings.last().filter(|h| h.ended.is_none());
            if current.map(|h| &h.value) == value.as_ref() {
                continue;
            }
            let time = commit.time().seconds();
            if let Some(last) = self.holdings.last_mut().filter(|h| h.ended.is_none()) {
                last.ended = Some(Ending {
                    at: time,
                    commit: id,
                    by: value.clone(),
                });
            }
            if let Some(value) = value {
                self.holdings.push(Holding {
                    value,
                    since: time,
                    commit: id,
                    author: commit.author().name().unwrap_or("").to_owned(),
                    signed: None,
                    ended: None,
                });
            }
        }
        self.tip = Some(tip);
        Ok(self)
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

/// The value `policy`'s markers under `scan_dir` hold at `commit` (what
/// a destination holds now, for `explain`).
pub fn value_at(
    repo: &Repository,
    commit: Oid,
    policy: &PolicyId,
    scan_dir: &str,
) -> Result<Option<String>, git2::Error> {
    let tree = repo.find_commit(commit)?.tree()?;
    let scan_tree = scan_subtree(&tree, scan_dir);
    let mut files = HashMap::new();
    update_files(
        repo,
        scan_tree,
        policy,
        &format!("\"{policy}\""),
        &mut files,
    )?;
    Ok(held_value(files.values()))
}

/// The id of the scanned subtree of `tree` (`None`: there is none).
fn scan_subtree(tree: &git2::Tree<'_>, scan_dir: &str) -> Option<Oid> {
    if scan_dir.is_empty() {
        return Some(tree.id());
    }
    tree.get_path(std::path::Path::new(scan_dir))
        .ok()
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .map(|e| e.id())
}

/// Brings `files` (path under the scanned tree -> the policy's setters)
/// to the YAML files of `scan_tree`, parsing only the blobs that changed.
fn update_files(
    repo: &Repository,
    scan_tree: Option<Oid>,
    policy: &PolicyId,
    needle: &str,
    files: &mut HashMap<String, FileState>,
) -> Result<(), git2::Error> {
    let mut seen: HashMap<String, Oid> = HashMap::new();
    if let Some(scan_tree) = scan_tree {
        repo.find_tree(scan_tree)?
            .walk(TreeWalkMode::PreOrder, |dir, entry| {
                if entry.kind() == Some(ObjectType::Blob) {
                    if let Ok(name) = entry.name() {
                        if name.ends_with(".yaml") || name.ends_with(".yml") {
                            seen.insert(format!("{dir}{name}"), entry.id());
                        }
                    }
                }
                TreeWalkResult::Ok
            })?;
    }
    files.retain(|path, _| seen.contains_key(path));
    for (path, blob) in seen {
        if files.get(&path).is_some_and(|f| f.blob == blob) {
            continue;
        }
        let setters = setters_of(repo, blob, &path, policy, needle)?;
        files.insert(path, FileState { blob, setters });
    }
    Ok(())
}

/// Brings `files` from the scanned tree `old` to `new` through git's tree
/// diff, which enters only the subtrees whose ids differ.
fn diff_files(
    repo: &Repository,
    old: Oid,
    new: Oid,
    policy: &PolicyId,
    needle: &str,
    files: &mut HashMap<String, FileState>,
) -> Result<(), git2::Error> {
    let old = repo.find_tree(old)?;
    let new = repo.find_tree(new)?;
    let diff = repo.diff_tree_to_tree(Some(&old), Some(&new), None)?;
    for delta in diff.deltas() {
        if let Some(path) = delta.old_file().path().and_then(|p| p.to_str()) {
            if delta.status() == git2::Delta::Deleted || delta.status() == git2::Delta::Renamed {
                files.remove(path);
            }
        }
        let file = delta.new_file();
        let Some(path) = file.path().and_then(|p| p.to_str()) else {
            continue;
        };
        if delta.status() == git2::Delta::Deleted
            || !(path.ends_with(".yaml") || path.ends_with(".yml"))
            || file.mode() != git2::FileMode::Blob && file.mode() != git2::FileMode::BlobExecutable
        {
            continue;
        }
        let setters = setters_of(repo, file.id(), path, policy, needle)?;
        files.insert(
            path.to_owned(),
            FileState {
                blob: file.id(),
                setters,
            },
        );
    }
    Ok(())
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
/// the chain, looked up with `lookup`.
pub fn ordering(
    from: &PolicyId,
    mut lookup: impl FnMut(&PolicyId) -> Option<crate::policy::Policy>,
) -> Option<crate::policy::Policy> {
    let mut at = lookup(from)?;
    for _ in 0..8 {
        match at.promote.clone() {
            None => return Some(at),
            Some(promote) => at = lookup(&promote.from)?,
        }
    }
    None
}

/// The source policy's setters in one file version (none if the file does
/// not name the policy or does not parse).
fn setters_of(
    repo: &Repository,
    blob: Oid,
    path: &str,
    policy: &PolicyId,
    needle: &str,
) -> Result<Vec<(Field, String)>, git2::Error> {
    let blob = repo.find_blob(blob)?;
    let bytes = blob.content();
    if memchr::memmem::find(bytes, needle.as_bytes()).is_none() {
        return Ok(Vec::new());
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(Vec::new());
    };
    let Ok(manifest) = Manifest::parse(path, text) else {
        return Ok(Vec::new());
    };
    Ok(manifest
        .scan_markers()
        .setters
        .into_iter()
        .filter(|s| &s.policy == policy)
        .map(|s| (s.field, s.value))
        .collect())
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
    /// Eligible, but not above what the destination holds.
    NotHigher,
    /// Eligible, but a higher eligible value was picked.
    Outranked,
    /// Its tag is not a value the source policy's ordering accepts.
    Unordered,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |id: &Oid| id.to_string()[..12].to_owned();
        let hours = |d: &Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
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
            Verdict::NotHigher => write!(f, "not higher than the current value"),
            Verdict::Outranked => write!(f, "eligible, lower than the pick"),
            Verdict::Unordered => write!(f, "not a value the source policy orders"),
        }
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
    let rank_tag = |value: &str| tag_and_digest(value).0.map(str::to_owned);
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
        let periods: Vec<&Holding> = timeline
            .holdings
            .iter()
            .filter(|h| h.value == value)
            .collect();
        let latest = periods.last().expect("a value has a period");
        let rolled_back = periods.iter().find_map(|h| {
            let end = h.ended.as_ref()?;
            let by = end.by.as_deref()?;
            lower(by, &h.value).then_some(end.commit)
        });
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
        let higher = match (current, tag.as_deref()) {
            (Some(current), Some(tag)) => order.ranks_below(current, tag) || current == tag,
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
