//! The audit trail: `Image-Update` trailers written into commit messages
//! (PRODUCT.md §5) and read back out of them.
//!
//! A trailer reads `Image-Update: <ns>:<name> <image>:<old>[@digest] -> <image>:<new>[@digest]`,
//! one per policy and old value, so plain git can list the trail with
//! `git log --format='%(trailers:key=Image-Update)'`.
//!
//! Reading the trail back (`crowsnest history`) is pure here: [`record`]
//! holds what is listed and how it is rendered, [`fields`] finds manual
//! changes of managed fields between two versions of a file, [`time`]
//! reads and writes times. [`history`] is the read side that walks the
//! commit graph (it needs Git, so it exists only with the `runtime` feature).

pub mod fields;
#[cfg(feature = "runtime")]
pub mod history;
pub mod record;
pub mod time;
#[cfg(feature = "runtime")]
pub mod trail;

use std::collections::BTreeSet;

use crate::model::{ImageUpdate, PolicyId};

/// The trailer key.
pub const TRAILER_KEY: &str = "Image-Update";

/// The trailer lines for a set of updates: sorted, one per policy and old value.
pub fn trailer_lines(updates: &[ImageUpdate]) -> Vec<String> {
    let unique: BTreeSet<&ImageUpdate> = updates.iter().collect();
    unique
        .into_iter()
        .map(|u| format!("{TRAILER_KEY}: {u}"))
        .collect()
}

/// The key of the trailer a promotion adds beside its `Image-Update`:
/// `Promoted-From: <source ns>:<name> <source commit>`.
pub const PROMOTED_KEY: &str = "Promoted-From";

/// A promotion's source: the policy and the commit its value landed with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromotedFrom {
    pub policy: PolicyId,
    pub commit: String,
}

/// The `Promoted-From` lines, sorted and distinct.
pub fn promoted_lines(sources: &[PromotedFrom]) -> Vec<String> {
    let unique: BTreeSet<&PromotedFrom> = sources.iter().collect();
    unique
        .into_iter()
        .map(|p| format!("{PROMOTED_KEY}: {} {}", p.policy, p.commit))
        .collect()
}

/// Reads the `Promoted-From` trailers of a commit message.
pub fn parse_promoted(message: &str) -> Vec<PromotedFrom> {
    message
        .lines()
        .filter_map(|line| line.strip_prefix(PROMOTED_KEY)?.strip_prefix(':'))
        .filter_map(|rest| {
            let (policy, commit) = rest.trim().split_once(' ')?;
            let (namespace, name) = policy.split_once(':')?;
            let commit = commit.trim();
            let hex = commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit());
            (!namespace.is_empty() && !name.is_empty() && hex).then(|| PromotedFrom {
                policy: PolicyId::new(namespace, name),
                commit: commit.to_owned(),
            })
        })
        .collect()
}

/// The key of the trailer a policy with `verify` adds beside its
/// `Image-Update`: `Verified: <ns>:<name> <digest> key <signer>`.
pub const VERIFIED_KEY: &str = "Verified";

/// The `Verified` line of a policy: the digest verified and who signed it.
pub fn verified_line(policy: &PolicyId, digest: &str, signer: &str) -> String {
    format!("{VERIFIED_KEY}: {policy} {digest} key {signer}")
}

/// What a commit says it wrote for a policy with `verify`: the tag of its
/// `Image-Update` and the digest of its `Verified` trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWrite {
    pub policy: PolicyId,
    pub tag: String,
    pub digest: String,
}

/// Reads the `Verified` trailers of a commit message, each with the tag
/// its policy's `Image-Update` trailer wrote (a `Verified` line without
/// one is left out: the tag it was for is unknown).
pub fn parse_verified(message: &str) -> Vec<VerifiedWrite> {
    let updates = parse_trailers(message);
    message
        .lines()
        .filter_map(|line| line.strip_prefix(VERIFIED_KEY)?.strip_prefix(':'))
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            let (policy, digest) = (words.next()?, words.next()?);
            let (namespace, name) = policy.split_once(':')?;
            let policy = PolicyId::new(namespace, name);
            let (algorithm, hex) = digest.split_once(':')?;
            if algorithm.is_empty() || hex.is_empty() || words.next() != Some("key") {
                return None;
            }
            let written = updates.iter().find(|u| u.policy == policy)?;
            let reference = written.to.split_once('@').map_or(&*written.to, |(r, _)| r);
            let (_, tag) = reference
                .rsplit_once(':')
                .filter(|(_, t)| !t.contains('/'))?;
            Some(VerifiedWrite {
                policy,
                tag: tag.to_owned(),
                digest: digest.to_owned(),
            })
        })
        .collect()
}

/// `true` when `message` mentions the trailer key at all: a cheap test
/// that lets most commits skip [`parse_trailers`].
pub fn may_have_trailers(message: &[u8]) -> bool {
    memchr::memmem::find(message, TRAILER_KEY.as_bytes()).is_some()
}

/// Reads the `Image-Update` trailers of a commit message. Lines that do not
/// have the trailer's shape are ignored: the trail only holds what parses.
pub fn parse_trailers(message: &str) -> Vec<ImageUpdate> {
    message
        .lines()
        .filter_map(|line| line.strip_prefix(TRAILER_KEY)?.strip_prefix(':'))
        .filter_map(|rest| parse_update(rest.trim()))
        .collect()
}

fn parse_update(text: &str) -> Option<ImageUpdate> {
    let (policy, rest) = text.split_once(' ')?;
    let (namespace, name) = policy.split_once(':')?;
    let (from, to) = rest.split_once(" -> ")?;
    let (from, to) = (from.trim(), to.trim());
    if namespace.is_empty() || name.is_empty() || from.is_empty() || to.is_empty() {
        return None;
    }
    if from.contains(' ') || to.contains(' ') {
        return None;
    }
    Some(ImageUpdate {
        policy: PolicyId::new(namespace, name),
        from: from.to_owned(),
        to: to.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(from: &str, to: &str) -> ImageUpdate {
        ImageUpdate {
            policy: PolicyId::new("default", "podinfo"),
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn trailers_round_trip_and_dedupe() {
        let a = update("ghcr.io/s/podinfo:6.1.0", "ghcr.io/s/podinfo:6.2.0");
        let b = update("ghcr.io/s/podinfo:6.0.0", "ghcr.io/s/podinfo:6.2.0");
        let lines = trailer_lines(&[a.clone(), b.clone(), a.clone()]);
        assert_eq!(
            lines,
            vec![
                "Image-Update: default:podinfo ghcr.io/s/podinfo:6.0.0 -> ghcr.io/s/podinfo:6.2.0",
                "Image-Update: default:podinfo ghcr.io/s/podinfo:6.1.0 -> ghcr.io/s/podinfo:6.2.0",
            ]
        );
        let message = format!("subject\n\nbody\n\n{}\n", lines.join("\n"));
        let promoted = promoted_lines(&[PromotedFrom {
            policy: PolicyId::new("staging", "podinfo"),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
        }]);
        assert_eq!(
            promoted,
            ["Promoted-From: staging:podinfo 0123456789abcdef0123456789abcdef01234567"]
        );
        let with = format!("{message}{}\n", promoted[0]);
        assert_eq!(
            parse_promoted(&with)[0].policy,
            PolicyId::new("staging", "podinfo")
        );
        assert!(parse_promoted("Promoted-From: x y\nPromoted-From: a:b zz\n").is_empty());
        assert_eq!(parse_trailers(&message), vec![b, a]);
    }

    #[test]
    fn verified_trailers_are_read_with_the_tag_written() {
        let policy = PolicyId::new("default", "app");
        let message = format!(
            "subject\n\nImage-Update: default:app r.io/app:1.0.0 -> r.io/app:1.1.0\nImage-Update: default:other r.io/o:1 -> r.io/o:2@sha256:bb\n{}\n{}\nVerified: default:gone sha256:cc key x\nVerified: default:app nonsense key x\n",
            verified_line(&policy, "sha256:aa", "sha256:0123"),
            verified_line(
                &PolicyId::new("default", "other"),
                "sha256:bb",
                "ci (issuer)"
            ),
        );
        assert_eq!(
            parse_verified(&message),
            vec![
                VerifiedWrite {
                    policy,
                    tag: "1.1.0".into(),
                    digest: "sha256:aa".into()
                },
                VerifiedWrite {
                    policy: PolicyId::new("default", "other"),
                    tag: "2".into(),
                    digest: "sha256:bb".into()
                },
            ]
        );
    }

    #[test]
    fn malformed_trailers_are_not_records() {
        let message =
            "x\n\nImage-Update: nonsense\nImage-Update: a:b x -> \nImage-Update: a:b x y -> z\n";
        assert!(parse_trailers(message).is_empty());
    }
}
