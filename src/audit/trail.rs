//! The tag and digest each policy with `verify` was last written with,
//! read back from the `Verified` trailers of the branch's history
//! ([`super::parse_verified`]). A tag written without its digest in the
//! files (`digestReflectionPolicy: Never`, or a tag field with no digest
//! field beside it) is told to have moved by this digest.
//!
//! Read incrementally, so a steady daemon reads only the commits a pass
//! adds: a later read walks the commits added since the last tip, and
//! the older history only while a policy asked for was not found there
//! and the history was not yet read to its first commit. A rewritten
//! branch (the last tip is no longer an ancestor) is read again.

use std::collections::{BTreeSet, HashMap};

use git2::{Oid, Repository, Sort};

use super::{VERIFIED_KEY, VerifiedWrite, parse_verified};
use crate::model::PolicyId;

/// What the history below `tip` says, kept between passes.
#[derive(Debug, Default)]
pub struct VerifiedTrail {
    tip: Option<Oid>,
    /// The newest verified write of each policy met so far.
    found: HashMap<PolicyId, VerifiedWrite>,
    /// The history below `tip` was read to its first commit.
    complete: bool,
}

impl VerifiedTrail {
    /// The newest verified write of each of `wanted` reachable from `tip`
    /// (a policy never written with `verify` is absent).
    pub fn read(
        &mut self,
        repo: &Repository,
        tip: Oid,
        wanted: &BTreeSet<PolicyId>,
    ) -> Result<HashMap<PolicyId, VerifiedWrite>, git2::Error> {
        match self.tip {
            Some(old) if old == tip => {}
            Some(old) if repo.graph_descendant_of(tip, old)? => {
                let (newer, _) = walk(repo, tip, Some(old), None)?;
                self.found.extend(newer);
            }
            _ => *self = VerifiedTrail::default(),
        }
        self.tip = Some(tip);
        if !self.complete && wanted.iter().any(|p| !self.found.contains_key(p)) {
            (self.found, self.complete) = walk(repo, tip, None, Some(wanted))?;
        }
        Ok(wanted
            .iter()
            .filter_map(|p| Some((p.clone(), self.found.get(p)?.clone())))
            .collect())
    }
}

/// The newest verified write of each policy in the commits reachable from
/// `tip` and not from `hide`, newest first; stops once every policy of
/// `until` is found. Also returns whether the walk reached the end.
fn walk(
    repo: &Repository,
    tip: Oid,
    hide: Option<Oid>,
    until: Option<&BTreeSet<PolicyId>>,
) -> Result<(HashMap<PolicyId, VerifiedWrite>, bool), git2::Error> {
    let mut revwalk = repo.revwalk()?;
    revwalk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)?;
    revwalk.push(tip)?;
    if let Some(hide) = hide {
        revwalk.hide(hide)?;
    }
    let key = format!("{VERIFIED_KEY}:");
    let mut found: HashMap<PolicyId, VerifiedWrite> = HashMap::new();
    for oid in revwalk {
        let commit = repo.find_commit(oid?)?;
        let message = commit.message_raw_bytes();
        if memchr::memmem::find(message, key.as_bytes()).is_none() {
            continue;
        }
        for write in parse_verified(&String::from_utf8_lossy(message)) {
            found.entry(write.policy.clone()).or_insert(write);
        }
        if until.is_some_and(|until| until.iter().all(|p| found.contains_key(p))) {
            return Ok((found, false));
        }
    }
    Ok((found, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, parent: Option<Oid>, message: &str) -> Oid {
        let signature = git2::Signature::now("t", "t@example.com").unwrap();
        let tree = repo
            .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let parents: Vec<git2::Commit> = parent
            .map(|p| repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(None, &signature, &signature, message, &tree, &parents)
            .unwrap()
    }

    fn written(tag: &str, digest: &str) -> String {
        format!(
            "update\n\nImage-Update: default:app r/app:0 -> r/app:{tag}\nVerified: default:app {digest} key sha256:00\n"
        )
    }

    #[test]
    fn the_newest_verified_write_is_read_then_only_new_commits() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let app = PolicyId::new("default", "app");
        let wanted = BTreeSet::from([app.clone(), PolicyId::new("default", "never")]);
        let first = commit(&repo, None, &written("1.0.0", "sha256:aa"));
        let second = commit(&repo, Some(first), &written("1.1.0", "sha256:bb"));
        let third = commit(&repo, Some(second), "by hand\n");
        let mut trail = VerifiedTrail::default();
        let read = trail.read(&repo, third, &wanted).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(
            (read[&app].tag.as_str(), read[&app].digest.as_str()),
            ("1.1.0", "sha256:bb")
        );
        assert!(trail.complete, "a policy never verified: read to the end");
        let fourth = commit(&repo, Some(third), &written("1.2.0", "sha256:cc"));
        let read = trail.read(&repo, fourth, &wanted).unwrap();
        assert_eq!(read[&app].digest, "sha256:cc");
        // A branch rewritten under the trail is read again.
        let rewritten = commit(&repo, Some(first), "rewritten\n");
        let read = trail.read(&repo, rewritten, &wanted).unwrap();
        assert_eq!(read[&app].digest, "sha256:aa");
    }

    #[test]
    fn the_walk_stops_once_every_wanted_policy_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let app = PolicyId::new("default", "app");
        let first = commit(&repo, None, &written("1.0.0", "sha256:aa"));
        let second = commit(&repo, Some(first), &written("1.1.0", "sha256:bb"));
        let mut trail = VerifiedTrail::default();
        let read = trail
            .read(&repo, second, &BTreeSet::from([app.clone()]))
            .unwrap();
        assert_eq!(read[&app].digest, "sha256:bb");
        assert!(!trail.complete, "stopped before the first commit");
    }
}
