//! The newest write of each policy that a kind of trailer records, read
//! back from the branch's history:
//!
//! - [`VerifiedTrail`]: the tag and digest each policy with `verify` was
//!   last written with ([`super::parse_verified`]). A tag written without
//!   its digest in the files (`digestReflectionPolicy: Never`, or a tag
//!   field with no digest field beside it) is told to have moved by this
//!   digest;
//! - [`PromotionTrail`]: each promotion's last promotion (its
//!   `Image-Update` beside a `Promoted-From` naming its source), for the
//!   status.
//!
//! Read incrementally, so a steady daemon reads only the commits a pass
//! adds: a later read walks the commits added since the last tip, and
//! the older history only while a policy asked for was not found there
//! and the history was not yet read to its first commit. A rewritten
//! branch (the last tip is no longer an ancestor) is read again. Only
//! commit messages are read (no trees), and only those holding the key.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use git2::{Commit, Oid, Repository, Sort};

use super::{
    PROMOTED_KEY, VERIFIED_KEY, VerifiedWrite, parse_promoted, parse_trailers, parse_verified,
};
use crate::model::PolicyId;

/// What the history below `tip` says, kept between passes: the newest
/// `W` of each policy.
#[derive(Debug)]
pub struct Trail<W> {
    tip: Option<Oid>,
    /// The newest write of each policy met so far.
    found: HashMap<PolicyId, W>,
    /// The history below `tip` was read to its first commit.
    complete: bool,
}

impl<W> Default for Trail<W> {
    fn default() -> Self {
        Trail {
            tip: None,
            found: HashMap::new(),
            complete: false,
        }
    }
}

/// Reads a commit whose message holds the trail's key: the writes it
/// records, by policy.
type Parse<'p, W> = &'p dyn Fn(&Commit<'_>, &str) -> Vec<(PolicyId, W)>;

impl<W: Clone> Trail<W> {
    /// The newest write of each of `wanted` reachable from `tip` (a policy
    /// with none is absent), reading commits whose message holds `key:`.
    fn read_with(
        &mut self,
        repo: &Repository,
        tip: Oid,
        wanted: &BTreeSet<PolicyId>,
        key: &str,
        parse: Parse<'_, W>,
    ) -> Result<HashMap<PolicyId, W>, git2::Error> {
        match self.tip {
            Some(old) if old == tip => {}
            Some(old) if repo.graph_descendant_of(tip, old)? => {
                let (newer, _) = walk(repo, tip, Some(old), None, key, parse)?;
                self.found.extend(newer);
            }
            _ => *self = Trail::default(),
        }
        self.tip = Some(tip);
        if !self.complete && wanted.iter().any(|p| !self.found.contains_key(p)) {
            (self.found, self.complete) = walk(repo, tip, None, Some(wanted), key, parse)?;
        }
        Ok(wanted
            .iter()
            .filter_map(|p| Some((p.clone(), self.found.get(p)?.clone())))
            .collect())
    }
}

/// The `Verified` trailers' trail.
pub type VerifiedTrail = Trail<VerifiedWrite>;

impl VerifiedTrail {
    /// The newest verified write of each of `wanted` reachable from `tip`
    /// (a policy never written with `verify` is absent).
    pub fn read(
        &mut self,
        repo: &Repository,
        tip: Oid,
        wanted: &BTreeSet<PolicyId>,
    ) -> Result<HashMap<PolicyId, VerifiedWrite>, git2::Error> {
        self.read_with(repo, tip, wanted, VERIFIED_KEY, &|_, message| {
            parse_verified(message)
                .into_iter()
                .map(|w| (w.policy.clone(), w))
                .collect()
        })
    }
}

/// A promotion's last promotion: the commit that wrote it, when, the value
/// it wrote and the source commit that value landed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastPromotion {
    pub commit: String,
    /// Commit time, seconds since the epoch.
    pub at: i64,
    pub value: String,
    pub source_commit: String,
}

/// The `Promoted-From` trailers' trail.
pub type PromotionTrail = Trail<LastPromotion>;

impl PromotionTrail {
    /// The last promotion of each promotion policy of `sources` (policy →
    /// the policy it promotes from) reachable from `tip`: a commit whose
    /// `Image-Update` names the policy and whose `Promoted-From` names its
    /// source.
    pub fn read(
        &mut self,
        repo: &Repository,
        tip: Oid,
        sources: &BTreeMap<PolicyId, PolicyId>,
    ) -> Result<HashMap<PolicyId, LastPromotion>, git2::Error> {
        let wanted = sources.keys().cloned().collect();
        self.read_with(repo, tip, &wanted, PROMOTED_KEY, &|commit, message| {
            let promoted = parse_promoted(message);
            parse_trailers(message)
                .into_iter()
                .filter_map(|update| {
                    let from = sources.get(&update.policy)?;
                    let source = promoted.iter().find(|p| &p.policy == from)?;
                    Some((
                        update.policy.clone(),
                        LastPromotion {
                            commit: commit.id().to_string(),
                            at: commit.time().seconds(),
                            value: update.to.clone(),
                            source_commit: source.commit.clone(),
                        },
                    ))
                })
                .collect()
        })
    }
}

/// The newest write of each policy in the commits reachable from `tip`
/// and not from `hide`, newest first; stops once every policy of `until`
/// is found. Also returns whether the walk reached the end.
fn walk<W>(
    repo: &Repository,
    tip: Oid,
    hide: Option<Oid>,
    until: Option<&BTreeSet<PolicyId>>,
    key: &str,
    parse: Parse<'_, W>,
) -> Result<(HashMap<PolicyId, W>, bool), git2::Error> {
    let mut revwalk = repo.revwalk()?;
    revwalk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)?;
    revwalk.push(tip)?;
    if let Some(hide) = hide {
        revwalk.hide(hide)?;
    }
    let needle = format!("{key}:");
    let mut found: HashMap<PolicyId, W> = HashMap::new();
    for oid in revwalk {
        let commit = repo.find_commit(oid?)?;
        let message = commit.message_raw_bytes();
        if memchr::memmem::find(message, needle.as_bytes()).is_none() {
            continue;
        }
        for (policy, write) in parse(&commit, &String::from_utf8_lossy(message)) {
            found.entry(policy).or_insert(write);
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
    fn the_last_promotion_is_the_newest_update_beside_its_sources_trailer() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let (prod, eu) = (PolicyId::new("prod", "app"), PolicyId::new("eu", "app"));
        let staging = PolicyId::new("staging", "app");
        let sources = BTreeMap::from([(prod.clone(), staging.clone()), (eu.clone(), staging)]);
        let promoted = |to: &str, source: &str| {
            format!(
                "promote\n\nImage-Update: prod:app r/app:0 -> r/app:{to}\nPromoted-From: staging:app {source}\n"
            )
        };
        let first = commit(&repo, None, &promoted("1.0.0", "aaaaaaa"));
        let second = commit(&repo, Some(first), &promoted("1.1.0", "bbbbbbb"));
        // A registry update of the same policy beside another policy's
        // promotion is not a promotion of it.
        let third = commit(
            &repo,
            Some(second),
            "mixed\n\nImage-Update: prod:app r/app:1.1.0 -> r/app:9.9.9\nImage-Update: other:app r/x:0 -> r/x:1\nPromoted-From: other:src ccccccc\n",
        );
        let mut trail = PromotionTrail::default();
        let read = trail.read(&repo, third, &sources).unwrap();
        assert_eq!(read.len(), 1, "eu:app was never promoted: {read:?}");
        let last = &read[&prod];
        assert_eq!(last.commit, second.to_string());
        assert_eq!(
            (last.value.as_str(), last.source_commit.as_str()),
            ("r/app:1.1.0", "bbbbbbb")
        );
        assert_eq!(last.at, repo.find_commit(second).unwrap().time().seconds());
        let fourth = commit(&repo, Some(third), &promoted("1.2.0", "ddddddd"));
        let read = trail.read(&repo, fourth, &sources).unwrap();
        assert_eq!(read[&prod].commit, fourth.to_string());
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
