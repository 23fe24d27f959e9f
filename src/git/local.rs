//! Pushing to a `file://` remote or a local path.
//!
//! libgit2's own local transport moves the branch without comparing its old
//! value, so two writers could overwrite each other. crowsnest instead
//! copies the new objects into the remote and then moves the branch with a
//! compare-and-swap (`git_reference_create_matching`), like `git
//! receive-pack` does. Server hooks do not run: there is no server.
//!
//! The objects to copy are found by descending from the new commit only
//! into trees the remote does not have, so a push costs what changed, not
//! the size of the tree (libgit2's pack walk marks every object of the old
//! tree first: 20,000 files cost a tree walk per push).
//!
//! Here crowsnest is the process that locks the remote's branch
//! (`refs/heads/<branch>.lock`, held for the microseconds of the rename), so
//! a crowsnest killed in that window leaves the lock behind, and every later
//! push would find the branch locked. A lock older than [`STALE_REF_LOCK`]
//! is taken as left by a dead writer and removed; a younger one counts as
//! a concurrent writer (the branch moved: fetch, re-plan, retry).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use git2::{ErrorCode, ObjectType, Odb, Oid, Repository};
use tracing::warn;

/// How old a lock on the remote's branch must be to be taken as left by a
/// writer that died. git and libgit2 hold a ref lock only while writing
/// and renaming one small file.
pub(crate) const STALE_REF_LOCK: Duration = Duration::from_secs(10);

/// What happened to the remote's branch.
pub(crate) enum LocalOutcome {
    Pushed,
    /// The branch no longer had the expected value.
    Moved,
    Rejected(String),
}

/// Copies `commit` and what it needs into the bare repository at `remote`
/// and points `refname` at it, if and only if `refname` still points at
/// `expected` (or does not exist, when `expected` is `None`).
pub(crate) fn push(
    local: &Repository,
    remote: &Path,
    commit: Oid,
    refname: &str,
    expected: Option<Oid>,
    force: bool,
) -> Result<LocalOutcome, git2::Error> {
    let target = Repository::open_bare(remote)?;
    let current = match target.refname_to_id(refname) {
        Ok(id) => Some(id),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(e),
    };
    if current != expected {
        return Ok(LocalOutcome::Moved);
    }
    if let Some(old) = current {
        let fast_forward = old == commit || local.graph_descendant_of(commit, old)?;
        let denied = target
            .config()?
            .get_bool("receive.denyNonFastForwards")
            .unwrap_or(false);
        if !fast_forward && (!force || denied) {
            return Ok(LocalOutcome::Rejected(if denied {
                "non-fast-forward updates are denied (receive.denyNonFastForwards)".into()
            } else {
                "non-fast-forward".into()
            }));
        }
    }

    copy_objects(local, &target, commit, current)?;

    let message = "push by crowsnest";
    let update = || match current {
        Some(old) => target.reference_matching(refname, commit, true, old, message),
        None => target.reference(refname, commit, false, message),
    };
    let mut updated = update();
    if updated
        .as_ref()
        .is_err_and(|e| e.code() == ErrorCode::Locked)
        && remove_stale_lock(&remote.join(format!("{refname}.lock")))
    {
        updated = update();
    }
    match updated {
        Ok(_) => Ok(LocalOutcome::Pushed),
        Err(e)
            if matches!(
                e.code(),
                ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked | ErrorCode::NotFound
            ) =>
        {
            Ok(LocalOutcome::Moved)
        }
        Err(e) => Err(e),
    }
}

/// Removes `lock` when it is older than [`STALE_REF_LOCK`]. Returns
/// whether it did.
fn remove_stale_lock(lock: &Path) -> bool {
    let age = std::fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    match age {
        Some(age) if age >= STALE_REF_LOCK => {
            warn!(lock = %lock.display(), ?age, "removing a stale lock on the remote's branch (left by a writer that died)");
            std::fs::remove_file(lock).is_ok()
        }
        _ => false,
    }
}

/// Copies what `commit` needs and `target` lacks. The common case (the
/// commit's parents are on the remote) writes the new commit, the trees
/// along the changed paths and the new blobs as loose objects; otherwise
/// a pack of everything between `current` and `commit`.
fn copy_objects(
    local: &Repository,
    target: &Repository,
    commit: Oid,
    current: Option<Oid>,
) -> Result<(), git2::Error> {
    let theirs = target.odb()?;
    let ours = local.odb()?;
    let new_commit = local.find_commit(commit)?;
    let parents_present = new_commit.parent_ids().all(|p| theirs.exists(p));
    if !parents_present {
        return copy_pack(local, &theirs, commit, current);
    }
    let mut missing = Vec::new();
    if !theirs.exists(commit) {
        missing.push(commit);
    }
    let mut trees = vec![new_commit.tree_id()];
    while let Some(tree_id) = trees.pop() {
        if theirs.exists(tree_id) {
            continue;
        }
        missing.push(tree_id);
        for entry in local.find_tree(tree_id)?.iter() {
            match entry.kind() {
                Some(ObjectType::Tree) => trees.push(entry.id()),
                Some(ObjectType::Blob) if !theirs.exists(entry.id()) => missing.push(entry.id()),
                // Submodule commits live in other repositories.
                _ => {}
            }
        }
    }
    // Blobs and trees first, the commit last: a reader never sees a commit
    // whose tree is not there yet.
    for oid in missing.iter().rev() {
        let object = ours.read(*oid)?;
        theirs.write(object.kind(), object.data())?;
    }
    Ok(())
}

fn copy_pack(
    local: &Repository,
    theirs: &Odb<'_>,
    commit: Oid,
    current: Option<Oid>,
) -> Result<(), git2::Error> {
    let mut walk = local.revwalk()?;
    walk.push(commit)?;
    if let Some(old) = current.filter(|old| local.find_commit(*old).is_ok()) {
        walk.hide(old)?;
    }
    let mut pack = local.packbuilder()?;
    pack.insert_walk(&mut walk)?;
    if pack.object_count() == 0 {
        return Ok(());
    }
    let mut writer = theirs.packwriter()?;
    let mut failed = None;
    pack.foreach(|chunk| match writer.write_all(chunk) {
        Ok(()) => true,
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    if let Some(e) = failed {
        return Err(git2::Error::from_str(&format!(
            "cannot write objects into the remote: {e}"
        )));
    }
    writer.commit()?;
    Ok(())
}

/// Seeds a new clone of a local remote with the remote's own object files
/// (hard links where possible, copies otherwise), as `git clone --local`
/// does: the fetch that follows then finds every wanted commit present and
/// transfers nothing, where libgit2's local transport would otherwise
/// rebuild and delta-compress a pack of the whole history. Loose objects
/// are taken before packs, so a `git gc` running on the remote meanwhile
/// cannot make an object slip between the two. Any failure leaves the
/// fetch to do the work.
pub(crate) fn seed_objects(remote: &Path, clone: &Path) -> std::io::Result<usize> {
    let theirs = remote.join("objects");
    if theirs.join("info/alternates").exists() {
        return Ok(0);
    }
    let ours = clone.join("objects");
    let mut linked = 0;
    for dir in std::fs::read_dir(&theirs)?.flatten() {
        let name = dir.file_name();
        let is_fanout = name
            .to_str()
            .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()));
        if !is_fanout || !dir.file_type()?.is_dir() {
            continue;
        }
        std::fs::create_dir_all(ours.join(&name))?;
        for file in std::fs::read_dir(dir.path())?.flatten() {
            if file.file_type()?.is_file() {
                link_or_copy(&file.path(), &ours.join(&name).join(file.file_name()))?;
                linked += 1;
            }
        }
    }
    std::fs::create_dir_all(ours.join("pack"))?;
    let mut packs: Vec<_> = std::fs::read_dir(theirs.join("pack"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    packs.sort();
    for pack in packs {
        let idx = pack.with_extension("idx");
        let (Some(pack_name), Some(idx_name)) = (pack.file_name(), idx.file_name()) else {
            continue;
        };
        // The index last: libgit2 only uses a pack whose index is there.
        link_or_copy(&pack, &ours.join("pack").join(pack_name))?;
        link_or_copy(&idx, &ours.join("pack").join(idx_name))?;
        linked += 1;
    }
    Ok(linked)
}

fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if to.exists() {
        return Ok(());
    }
    if std::fs::hard_link(from, to).is_err() {
        let tmp = to.with_extension("tmp-copy");
        std::fs::copy(from, &tmp)?;
        std::fs::rename(&tmp, to)?;
    }
    Ok(())
}
