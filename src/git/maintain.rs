//! Keeping the long-lived clone fast: libgit2 never runs `git gc`, and every
//! fetch that brings objects adds a pack while every commit adds loose
//! objects. Left alone, a daemon that runs for months would hold tens of
//! thousands of packs (each one searched on lookups and mapped into
//! memory). When there are too many, the small packs and the loose objects
//! are rewritten into one pack; the largest pack (the initial clone) is
//! left as it is, so the work is proportional to what arrived since.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

/// Small packs tolerated before they are merged.
pub(crate) const MAX_SMALL_PACKS: usize = 24;
/// Loose objects tolerated (estimated as git does, from `objects/17`).
pub(crate) const MAX_LOOSE_OBJECTS: usize = 4096;

struct Pack {
    pack: PathBuf,
    idx: PathBuf,
    size: u64,
}

/// Whether the clone has enough small packs or loose objects to merge.
pub(crate) fn needed(clone: &Path) -> bool {
    let small = packs(clone).len().saturating_sub(1);
    let loose_estimate = std::fs::read_dir(clone.join("objects/17"))
        .map(|d| d.count() * 256)
        .unwrap_or(0);
    small > MAX_SMALL_PACKS || loose_estimate > MAX_LOOSE_OBJECTS
}

/// Merges every pack but the largest, and every loose object, into one new
/// pack, checks that it holds all of them, then removes the old files.
/// Returns how many objects were moved.
pub(crate) fn compact(repo: &Repository, clone: &Path) -> Result<usize, String> {
    let mut all = packs(clone);
    all.sort_by_key(|p| std::cmp::Reverse(p.size));
    let small: Vec<Pack> = all.into_iter().skip(1).collect();
    let mut objects: Vec<Oid> = Vec::new();
    for pack in &small {
        objects.extend(read_idx(&pack.idx)?);
    }
    let loose = loose_objects(clone);
    objects.extend(loose.iter().map(|(oid, _)| *oid));
    let wanted: HashSet<Oid> = objects.iter().copied().collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let before: HashSet<PathBuf> = packs(clone).into_iter().map(|p| p.idx).collect();

    let mut builder = repo.packbuilder().map_err(|e| e.message().to_owned())?;
    for oid in &wanted {
        builder
            .insert_object(*oid, None)
            .map_err(|e| format!("packing {oid}: {}", e.message()))?;
    }
    let odb = repo.odb().map_err(|e| e.message().to_owned())?;
    let mut writer = odb.packwriter().map_err(|e| e.message().to_owned())?;
    let mut failed = None;
    builder
        .foreach(|chunk| match writer.write_all(chunk) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e.to_string());
                false
            }
        })
        .map_err(|e| e.message().to_owned())?;
    if let Some(e) = failed {
        return Err(e);
    }
    writer.commit().map_err(|e| e.message().to_owned())?;

    // Only delete what the new pack provably holds.
    let new_idx = packs(clone)
        .into_iter()
        .map(|p| p.idx)
        .find(|idx| !before.contains(idx))
        .ok_or("the merged pack was not written")?;
    let written: HashSet<Oid> = read_idx(&new_idx)?.into_iter().collect();
    if !wanted.is_subset(&written) {
        let _ = remove_pack(&new_idx.with_extension("pack"));
        return Err("the merged pack is missing objects; kept the old packs".into());
    }
    for pack in &small {
        remove_pack(&pack.pack).map_err(|e| format!("{}: {e}", pack.pack.display()))?;
    }
    for (_, path) in &loose {
        let _ = std::fs::remove_file(path);
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    Ok(wanted.len())
}

fn remove_pack(pack: &Path) -> std::io::Result<()> {
    for ext in ["idx", "rev", "bitmap", "mtimes"] {
        let _ = std::fs::remove_file(pack.with_extension(ext));
    }
    std::fs::remove_file(pack)
}

/// The clone's packs that have an index and no `.keep`.
fn packs(clone: &Path) -> Vec<Pack> {
    let Ok(entries) = std::fs::read_dir(clone.join("objects/pack")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .filter(|p| p.with_extension("idx").is_file() && !p.with_extension("keep").exists())
        .map(|pack| Pack {
            size: std::fs::metadata(&pack).map(|m| m.len()).unwrap_or(0),
            idx: pack.with_extension("idx"),
            pack,
        })
        .collect()
}

fn loose_objects(clone: &Path) -> Vec<(Oid, PathBuf)> {
    let mut found = Vec::new();
    let Ok(dirs) = std::fs::read_dir(clone.join("objects")) else {
        return found;
    };
    for dir in dirs.flatten() {
        let name = dir.file_name();
        let Some(prefix) = name.to_str().filter(|n| is_hex(n, 2)) else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for file in files.flatten() {
            let file_name = file.file_name();
            if let Some(rest) = file_name.to_str().filter(|n| is_hex(n, 38)) {
                if let Ok(oid) = Oid::from_str(&format!("{prefix}{rest}")) {
                    found.push((oid, file.path()));
                }
            }
        }
    }
    found
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The object ids in a version 2 pack index (SHA-1).
fn read_idx(path: &Path) -> Result<Vec<Oid>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = || format!("{}: not a version 2 pack index", path.display());
    if bytes.get(..8) != Some(b"\xfftOc\x00\x00\x00\x02".as_slice()) {
        return Err(bad());
    }
    let fanout_end = 8 + 256 * 4;
    let count = bytes
        .get(fanout_end - 4..fanout_end)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(bad)?;
    let names = bytes
        .get(fanout_end..fanout_end + count * 20)
        .ok_or_else(bad)?;
    names
        .chunks_exact(20)
        .map(|raw| Oid::from_bytes(raw).map_err(|_| bad()))
        .collect()
}
