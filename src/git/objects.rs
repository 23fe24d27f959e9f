//! Bulk, read-only object access for `crowsnest history`: gitoxide's pack
//! reader (`gix-pack`) plus a cache of delta bases, instead of libgit2.
//!
//! History reads every commit of the branch and the trees (and some blobs)
//! of most of them — hundreds of thousands of objects in one run. Two
//! things decided how they are read:
//!
//! - **Threads.** Through libgit2 this was most of the command's time and
//!   did not spread over threads: every `Repository` in a process shares
//!   libgit2's pack and memory-window locks, so a second worker bought
//!   about 1.1×. gitoxide maps packs and reads them without a process-wide
//!   lock; each worker clones an [`Objects`] (own caches) and reads alone.
//! - **Delta chains.** Consecutive versions of a tree are stored as deltas
//!   of each other, in chains up to 50 long, and which way round depends
//!   on how the pack was made (`git fast-import` and pushed packs delta
//!   the new version against the old; `git repack -f` the old against the
//!   new). Walking history one way or the other, the object asked for
//!   next is then usually an *intermediate* step of the chain resolved
//!   just before. `gix-odb`'s own cache keeps only each chain's final
//!   object, so one direction re-inflated whole chains (on one thread,
//!   3.7 s instead of 2.1 s for the bench's 100,000 commits; see
//!   BENCHMARKS.md). Here every step of a resolved
//!   chain is kept, by pack offset, as libgit2 does; either direction then
//!   costs one delta per object.
//!
//! So this module resolves delta chains itself: `gix-pack` finds objects
//! in the pack indexes, parses entry headers and inflates entries; the
//! chain walk, the delta instructions (a dozen lines of Git's documented
//! pack format that `gix-pack` does not export) and the cache are here.
//! Anything not in a pack (loose objects) is read through `gix-odb`.
//!
//! Everything else (opening the repository, resolving revisions, signature
//! extraction, and all writing) stays with git2; this reads objects by id
//! and nothing more. Ids cross over as raw bytes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use git2::{ObjectType, Oid};
use gix_object::Find;
use gix_pack::data::entry::Header;

/// Decoded objects one handle keeps, in bytes: the newer of two
/// generations is dropped when it holds this much (see [`Bases`]).
const BASE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// An object larger than this is refused: history reads manifests, trees
/// and commits, and a pack entry claiming more is damaged or hostile.
const MAX_OBJECT_BYTES: u64 = 512 * 1024 * 1024;

/// Ref-delta bases followed at most (they may point into another pack);
/// more means a cycle in a damaged pack.
const MAX_REF_DELTA_DEPTH: usize = 64;

/// A handle on a repository's object database (its packs and those of
/// its alternates, and loose objects). Cheap to clone; each clone has its
/// own caches and may be moved to its own thread.
pub struct Objects {
    packs: Arc<[gix_pack::Bundle]>,
    /// Loose objects (and anything else `gix-odb` finds).
    fallback: gix_odb::HandleArc,
    bases: Bases,
    inflate: gix_zlib::Inflate,
    /// The pack the last object came from, searched first.
    last_pack: usize,
}

impl Clone for Objects {
    fn clone(&self) -> Objects {
        Objects {
            packs: self.packs.clone(),
            fallback: self.fallback.clone(),
            bases: Bases::default(),
            inflate: gix_zlib::Inflate::default(),
            last_pack: 0,
        }
    }
}

/// An object read: its type and bytes.
pub type Object = (ObjectType, Arc<[u8]>);

impl Objects {
    /// The object database of the repository git2 opened as `repo`
    /// (a worktree's, a linked worktree's or a bare repository's).
    pub fn open(repo: &git2::Repository) -> Result<Objects, String> {
        Objects::at(&repo.commondir().join("objects"))
    }

    /// The object database in `dir` (a repository's `objects` folder).
    pub fn at(dir: &Path) -> Result<Objects, String> {
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", dir.display());
        let fallback = gix_odb::at(dir, gix_hash::Kind::Sha1)
            .and_then(|h| h.into_arc())
            .map_err(|e| fail(&e))?;
        let cwd = std::env::current_dir().map_err(|e| fail(&e))?;
        let mut dirs = vec![dir.to_owned()];
        dirs.extend(gix_odb::alternate::resolve(dir.to_owned(), &cwd).map_err(|e| fail(&e))?);
        let mut packs = Vec::new();
        for objects in dirs {
            let Ok(listing) = std::fs::read_dir(objects.join("pack")) else {
                continue;
            };
            let mut indexes: Vec<_> = listing
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "idx"))
                .collect();
            indexes.sort();
            for index in indexes {
                // A pack being written (its .idx not yet complete) or
                // removed meanwhile is skipped; its objects are elsewhere.
                if let Ok(bundle) = gix_pack::Bundle::at(&index, gix_hash::Kind::Sha1) {
                    packs.push(bundle);
                }
            }
        }
        Ok(Objects {
            packs: packs.into(),
            fallback,
            bases: Bases::default(),
            inflate: gix_zlib::Inflate::default(),
            last_pack: 0,
        })
    }

    /// Object `id`: its type and bytes.
    pub fn read(&mut self, id: Oid) -> Result<Object, String> {
        self.read_at_depth(id, 0)
    }

    fn read_at_depth(&mut self, id: Oid, depth: usize) -> Result<Object, String> {
        if depth > MAX_REF_DELTA_DEPTH {
            return Err(format!("object {id}: delta chain loops"));
        }
        let key = gix_hash::oid::try_from_bytes(id.as_bytes())
            .map_err(|e| format!("object {id}: {e}"))?;
        let packs = self.packs.clone();
        for n in 0..packs.len() {
            let pack = (self.last_pack + n) % packs.len();
            let bundle = &packs[pack];
            if let Some(index) = bundle.index.lookup(key) {
                self.last_pack = pack;
                let offset = bundle.index.pack_offset_at_index(index);
                return self
                    .decode(pack, offset, depth)
                    .map_err(|e| format!("object {id}: {e}"));
            }
        }
        let mut buffer = Vec::new();
        match self.fallback.try_find(key, &mut buffer) {
            Ok(Some(object)) => Ok((kind(object.kind), Arc::from(object.data))),
            Ok(None) => Err(format!("object {id} not found")),
            Err(e) => Err(format!("object {id}: {e}")),
        }
    }

    /// The object at `offset` in pack `pack`, its delta chain resolved
    /// from the nearest cached step (every step is cached on the way).
    fn decode(&mut self, pack: usize, offset: u64, depth: usize) -> Result<Object, String> {
        let packs = self.packs.clone();
        let file = &packs[pack].pack;
        let mut chain = Vec::new();
        let mut at = offset;
        let (kind, mut bytes) = loop {
            if let Some(found) = self.bases.get(pack, at) {
                break found;
            }
            let entry = file.entry(at).map_err(|e| e.to_string())?;
            match entry.header {
                Header::OfsDelta { base_distance } => {
                    at = entry
                        .checked_base_pack_offset(base_distance)
                        .ok_or("a delta's base lies outside the pack")?;
                    chain.push(entry);
                }
                Header::RefDelta { base_id } => {
                    let base = Oid::from_bytes(base_id.as_bytes()).map_err(|e| e.to_string())?;
                    chain.push(entry);
                    break self.read_at_depth(base, depth + 1)?;
                }
                header => {
                    let kind = header.as_kind().ok_or("an entry of unknown type")?;
                    let bytes: Arc<[u8]> = Arc::from(self.inflate(file, &entry)?);
                    let object = (self::kind(kind), bytes);
                    // An object that is nobody's delta base so far is not
                    // kept: the walk reads most such objects once.
                    if !chain.is_empty() {
                        self.bases.put(pack, at, object.clone());
                    }
                    break object;
                }
            }
        };
        while let Some(entry) = chain.pop() {
            let delta = self.inflate(file, &entry)?;
            bytes = Arc::from(apply_delta(&bytes, &delta)?);
            self.bases
                .put(pack, entry.pack_offset(), (kind, bytes.clone()));
        }
        Ok((kind, bytes))
    }

    fn inflate(
        &mut self,
        file: &gix_pack::data::File,
        entry: &gix_pack::data::Entry,
    ) -> Result<Vec<u8>, String> {
        if entry.decompressed_size > MAX_OBJECT_BYTES {
            return Err(format!(
                "a pack entry of {} bytes (more than {MAX_OBJECT_BYTES})",
                entry.decompressed_size
            ));
        }
        let mut out = vec![0; entry.decompressed_size as usize];
        file.decompress_entry(entry, &mut self.inflate, &mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }
}

fn kind(kind: gix_object::Kind) -> ObjectType {
    match kind {
        gix_object::Kind::Commit => ObjectType::Commit,
        gix_object::Kind::Tree => ObjectType::Tree,
        gix_object::Kind::Blob => ObjectType::Blob,
        gix_object::Kind::Tag => ObjectType::Tag,
    }
}

/// Decoded pack objects by (pack, offset), in two generations: new
/// entries go to the young one; when it is full the old one is dropped and
/// the young one takes its place. A hit in the old generation moves the
/// entry back to the young one, so what a walk keeps using survives — an
/// LRU in all but bookkeeping.
#[derive(Default)]
struct Bases {
    young: HashMap<(usize, u64), Object>,
    old: HashMap<(usize, u64), Object>,
    young_bytes: usize,
}

impl Bases {
    fn get(&mut self, pack: usize, offset: u64) -> Option<Object> {
        if let Some(found) = self.young.get(&(pack, offset)) {
            return Some(found.clone());
        }
        let found = self.old.remove(&(pack, offset))?;
        self.put(pack, offset, found.clone());
        Some(found)
    }

    fn put(&mut self, pack: usize, offset: u64, object: Object) {
        let size = object.1.len() + 64;
        if self.young_bytes + size > BASE_CACHE_BYTES / 2 {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        self.young_bytes += size;
        self.young.insert((pack, offset), object);
    }
}

/// Applies a Git delta (pack format: base size, result size, then copy
/// and insert instructions) to `base`.
fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, String> {
    let mut rest = delta;
    let base_size = varint(&mut rest)?;
    let size = varint(&mut rest)?;
    if base_size != base.len() as u64 {
        return Err(format!(
            "a delta for a base of {base_size} bytes applied to one of {}",
            base.len()
        ));
    }
    if size > MAX_OBJECT_BYTES {
        return Err(format!("a delta producing {size} bytes"));
    }
    let mut out = Vec::with_capacity(size as usize);
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        if op & 0x80 != 0 {
            // Copy from the base: bits 0–3 say which offset bytes follow,
            // bits 4–6 which size bytes; a size of 0 means 0x10000.
            let mut field = |bits: u8, first: u32| -> Result<usize, String> {
                let mut value = 0usize;
                for i in 0..bits {
                    if op & (1 << (first + u32::from(i))) != 0 {
                        let (&byte, tail) = rest.split_first().ok_or("a truncated delta")?;
                        rest = tail;
                        value |= usize::from(byte) << (8 * i);
                    }
                }
                Ok(value)
            };
            let from = field(4, 0)?;
            let length = match field(3, 4)? {
                0 => 0x10000,
                n => n,
            };
            let end = from
                .checked_add(length)
                .filter(|&end| end <= base.len())
                .ok_or("a delta copies past its base")?;
            out.extend_from_slice(&base[from..end]);
        } else if op != 0 {
            let length = usize::from(op);
            let literal = rest.get(..length).ok_or("a truncated delta")?;
            out.extend_from_slice(literal);
            rest = &rest[length..];
        } else {
            return Err("a delta holds the reserved instruction 0".into());
        }
    }
    if out.len() as u64 != size {
        return Err(format!(
            "a delta produced {} bytes, not the {size} it declares",
            out.len()
        ));
    }
    Ok(out)
}

/// A little-endian base-128 number, as delta headers write sizes.
fn varint(rest: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, tail) = rest.split_first().ok_or("a truncated delta header")?;
        *rest = tail;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a delta header size overflows".into())
}

// Raw tree entries, shared by `crowsnest history` and promotions.

/// One entry of a raw tree object: `<octal mode> <name>\0<20-byte id>`.
#[derive(Clone, Copy)]
pub struct RawEntry<'a> {
    pub mode: u32,
    pub name: &'a [u8],
    pub id: &'a [u8],
}

impl RawEntry<'_> {
    pub fn is_tree(&self) -> bool {
        self.mode == 0o40000
    }

    /// A regular file (not a symlink or submodule, which crowsnest never reads).
    pub fn is_file(&self) -> bool {
        self.mode & 0o170000 == 0o100000
    }

    pub fn oid(&self) -> Oid {
        Oid::from_bytes(self.id).expect("a tree entry holds a 20-byte id")
    }
}

/// Entries of a raw tree, in stored order. Stops at the first malformed
/// byte (libgit2 would have refused the object already).
pub struct RawEntries<'a>(pub &'a [u8]);

impl<'a> Iterator for RawEntries<'a> {
    type Item = RawEntry<'a>;

    fn next(&mut self) -> Option<RawEntry<'a>> {
        let rest = self.0;
        let space = memchr::memchr(b' ', rest)?;
        let mode = rest[..space].iter().try_fold(0u32, |m, &d| {
            d.is_ascii_digit().then(|| m * 8 + u32::from(d - b'0'))
        })?;
        let after = &rest[space + 1..];
        let nul = memchr::memchr(0, after)?;
        let id = after.get(nul + 1..nul + 21)?;
        self.0 = &after[nul + 21..];
        Some(RawEntry {
            mode,
            name: &after[..nul],
            id,
        })
    }
}

/// How many leading bytes of two raw trees hold the same whole entries.
pub fn common_entries(a: &[u8], b: &[u8]) -> usize {
    const CHUNK: usize = 32;
    let mut same = 0;
    let len = a.len().min(b.len());
    while same + CHUNK <= len && a[same..same + CHUNK] == b[same..same + CHUNK] {
        same += CHUNK;
    }
    same += a[same..len]
        .iter()
        .zip(&b[same..len])
        .take_while(|(x, y)| x == y)
        .count();
    // An entry's parse depends only on its own bytes, so every entry that
    // ends within the identical prefix is the same entry in both.
    let mut entries = RawEntries(a);
    let mut start = 0;
    while entries.next().is_some() {
        let end = a.len() - entries.0.len();
        if end > same {
            break;
        }
        start = end;
    }
    start
}

/// Git's tree order: names compared bytewise, a folder's as if it ended in `/`.
pub fn git_order(a: &RawEntry<'_>, b: &RawEntry<'_>) -> std::cmp::Ordering {
    let common = a.name.len().min(b.name.len());
    match a.name[..common].cmp(&b.name[..common]) {
        std::cmp::Ordering::Equal => {
            let end = |e: &RawEntry<'_>| match e.name.get(common) {
                Some(&c) => c,
                None if e.is_tree() => b'/',
                None => 0,
            };
            end(a).cmp(&end(b)).then(a.name.len().cmp(&b.name.len()))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::{Objects, apply_delta};
    use git2::{Oid, Repository, Signature};
    use std::io::Write;
    use std::path::Path;

    /// Version `round` of the test file: 300 lines, of which each round
    /// rewrites ten spread out, so a version is closest to its neighbours
    /// and far from versions many rounds away (deltas form chains).
    fn version(round: usize) -> String {
        let mut lines: Vec<usize> = vec![0; 300];
        for r in 1..=round {
            for k in 0..10 {
                lines[(r * 7 + k * 31) % 300] = r;
            }
        }
        lines
            .iter()
            .enumerate()
            .map(|(i, r)| format!("line {i}, last rewritten in round {r}\n"))
            .collect()
    }

    fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> String {
        let mut child = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("git runs");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(input) = input {
            stdin.write_all(input).expect("git reads its input");
        }
        drop(stdin);
        let output = child.wait_with_output().expect("git finishes");
        assert!(output.status.success(), "git {args:?}");
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// Every object of `ids`, in that order, reads as libgit2 reads it.
    fn same_as_libgit2(repo: &Repository, objects: &mut Objects, ids: &[Oid]) {
        let odb = repo.odb().expect("odb");
        for &id in ids {
            let expected = odb.read(id).expect("libgit2 reads it");
            let (kind, bytes) = objects.read(id).expect("crowsnest reads it");
            assert_eq!(kind, expected.kind(), "object {id}");
            assert_eq!(&bytes[..], expected.data(), "object {id}");
        }
        assert!(objects.read(Oid::ZERO_SHA1).is_err());
    }

    /// Every object of the repository, newest commit's first, and the
    /// longest delta chain of its pack.
    fn objects_and_depth(dir: &Path) -> (Vec<Oid>, usize) {
        let ids: Vec<Oid> = git(dir, &["rev-list", "--objects", "--all"], None)
            .lines()
            .map(|line| Oid::from_str(&line[..40]).expect("an id"))
            .collect();
        let pack = std::fs::read_dir(dir.join("objects/pack"))
            .expect("a pack folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "idx"))
            .expect("a pack index");
        let listing = git(dir, &["verify-pack", "-v", pack.to_str().unwrap()], None);
        let depth = listing
            .lines()
            .filter_map(|l| l.strip_prefix("chain length = "))
            .filter_map(|l| l.split(':').next()?.parse().ok())
            .max()
            .unwrap_or(0);
        (ids, depth)
    }

    /// Reads `ids` newest first and oldest first, each with a fresh
    /// handle, and once more on another thread.
    fn both_orders(repo: &Repository, ids: &[Oid]) {
        let objects = Objects::open(repo).expect("opens");
        assert!(!objects.packs.is_empty());
        let reversed: Vec<Oid> = ids.iter().rev().copied().collect();
        same_as_libgit2(repo, &mut objects.clone(), ids);
        same_as_libgit2(repo, &mut objects.clone(), &reversed);
        let mut clone = objects.clone();
        let (first, last) = (ids[0], ids[ids.len() - 1]);
        std::thread::spawn(move || {
            clone.read(first).expect("reads on another thread");
            clone.read(last).expect("reads on another thread");
        })
        .join()
        .expect("the thread reads");
    }

    /// Loose objects; a pack from `git fast-import`, which deltas each
    /// version against the one before; the same repacked from scratch
    /// (`repack -f`, which deltas the other way round). Deep chains each
    /// time, read in both orders: byte for byte what libgit2 reads.
    #[test]
    fn reads_loose_and_packed_objects_like_libgit2() {
        let loose = tempfile::tempdir().expect("a temporary folder");
        let repo = Repository::init_bare(loose.path()).expect("a bare repository");
        let who = Signature::new("A", "a@example.com", &git2::Time::new(1, 0)).expect("sig");
        let mut ids = Vec::new();
        let mut parent: Option<Oid> = None;
        for round in 0..5 {
            let blob = repo.blob(version(round).as_bytes()).expect("blob");
            let mut builder = repo.treebuilder(None).expect("treebuilder");
            builder.insert("file.txt", blob, 0o100644).expect("insert");
            let tree = repo
                .find_tree(builder.write().expect("tree"))
                .expect("tree");
            let parents: Vec<git2::Commit<'_>> = parent
                .iter()
                .map(|&p| repo.find_commit(p).expect("parent"))
                .collect();
            let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
            let commit = repo
                .commit(None, &who, &who, "round", &tree, &parents)
                .expect("commit");
            parent = Some(commit);
            ids.extend([blob, tree.id(), commit]);
        }
        let objects = Objects::open(&repo).expect("opens");
        assert!(objects.packs.is_empty());
        same_as_libgit2(&repo, &mut objects.clone(), &ids);

        let dir = tempfile::tempdir().expect("a temporary folder");
        let repo = Repository::init_bare(dir.path()).expect("a bare repository");
        let mut stream = String::new();
        for round in 0..120 {
            let text = version(round);
            stream += &format!(
                "commit refs/heads/main\ncommitter A <a@example.com> {} +0000\ndata 5\nround\n\
                 M 100644 inline file.txt\ndata {}\n{text}\n",
                round + 1,
                text.len()
            );
        }
        git(
            dir.path(),
            &["fast-import", "--quiet", "--depth=50"],
            Some(stream.as_bytes()),
        );
        let (ids, depth) = objects_and_depth(dir.path());
        assert!(depth >= 20, "fast-import made chains {depth} deep");
        both_orders(&repo, &ids);

        git(
            dir.path(),
            &[
                "repack",
                "-a",
                "-d",
                "-f",
                "-q",
                "--depth=50",
                "--window=250",
            ],
            None,
        );
        let (ids, depth) = objects_and_depth(dir.path());
        assert!(depth >= 20, "repack made chains {depth} deep");
        both_orders(&repo, &ids);
    }

    /// Objects in an alternate's pack are found too.
    #[test]
    fn reads_objects_of_alternates() {
        let lender = tempfile::tempdir().expect("a temporary folder");
        Repository::init_bare(lender.path()).expect("a bare repository");
        let stream = "commit refs/heads/main\ncommitter A <a@example.com> 1 +0000\ndata 5\nround\n\
             M 100644 inline file.txt\ndata 4\nabc\n\n";
        git(
            lender.path(),
            &["fast-import", "--quiet"],
            Some(stream.as_bytes()),
        );
        git(lender.path(), &["repack", "-a", "-d", "-q"], None);
        let (ids, _) = objects_and_depth(lender.path());
        let borrower = tempfile::tempdir().expect("a temporary folder");
        let repo = Repository::init_bare(borrower.path()).expect("a bare repository");
        std::fs::write(
            borrower.path().join("objects/info/alternates"),
            format!("{}\n", lender.path().join("objects").display()),
        )
        .expect("alternates");
        same_as_libgit2(&repo, &mut Objects::open(&repo).expect("opens"), &ids);
    }

    #[test]
    fn deltas_copy_insert_and_refuse_damage() {
        let base = b"0123456789abcdef";
        // base 16, result 9: copy 4 bytes from 10, insert "xyz", copy 2 from 0.
        let delta = [16, 9, 0x91, 10, 4, 3, b'x', b'y', b'z', 0x90, 2];
        assert_eq!(apply_delta(base, &delta).unwrap(), b"abcdxyz01");
        // Wrong base size, copy past the base, truncated, reserved op, wrong result size.
        assert!(apply_delta(base, &[15, 1, 1, b'x']).is_err());
        assert!(apply_delta(base, &[16, 4, 0x91, 14, 4]).is_err());
        assert!(apply_delta(base, &[16, 4, 3, b'x']).is_err());
        assert!(apply_delta(base, &[16, 1, 0]).is_err());
        assert!(apply_delta(base, &[16, 2, 1, b'x']).is_err());
        // A size of 0 means 0x10000.
        let big = vec![7u8; 0x10000];
        assert_eq!(
            apply_delta(&big, &[0x80, 0x80, 0x04, 0x80, 0x80, 0x04, 0x80]).unwrap(),
            big
        );
    }
}
