//! `spec.promote` checks that need every policy (and, when known, the
//! daemon config): a `from` naming no policy here, the policy itself, or
//! a cycle; a `repository` naming no entry; `requireSigned` without keys.
//! Each disables the promotion (a finding at the key), as a policy that
//! does not validate is disabled, so its markers are skipped and the rest
//! of the repository proceeds. Without them such a promotion would say
//! "nothing to promote" or order its values by a guess.

use std::collections::BTreeSet;

use super::{Finding, FindingKind, Inventory};
use crate::model::{Located, PolicyId};
use crate::policy::Promote;

/// What the daemon config says about promotion sources; `None` in
/// [`super::Options`] when a checkout is read without a config (`check
/// DIR`), and then only the checks that need no config are made.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    /// The `repositories` entry being read.
    pub entry: &'a str,
    /// Every entry of the config.
    pub entries: &'a [&'a str],
    /// Whether `verifyKeys` names any key.
    pub verify_keys: bool,
}

impl Inventory {
    /// Disables every promotion with a problem above, until none is left:
    /// a promotion of a disabled one is disabled in turn.
    pub(super) fn check_promotions(
        &mut self,
        sources: Option<Sources<'_>>,
        findings: &mut Vec<Finding>,
    ) {
        loop {
            let problems: Vec<(PolicyId, Located, String)> = self
                .policies
                .values()
                .filter_map(|p| {
                    let promote = p.promote.as_ref()?;
                    let (at, message) = self.promotion_problem(&p.id, promote, sources)?;
                    Some((p.id.clone(), at, message))
                })
                .collect();
            if problems.is_empty() {
                return;
            }
            for (id, at, message) in problems {
                self.policies.remove(&id);
                self.disabled
                    .entry(id.clone())
                    .or_insert_with(|| at.clone());
                findings.push(
                    Finding::new(
                        FindingKind::Policy,
                        at,
                        format!("{message} (policy {id} is disabled until this is fixed)"),
                    )
                    .about(&id),
                );
            }
        }
    }

    /// The first problem of `id`'s promotion, where it is written.
    fn promotion_problem(
        &self,
        id: &PolicyId,
        promote: &Promote,
        sources: Option<Sources<'_>>,
    ) -> Option<(Located, String)> {
        if let (Some(sources), Some(name), Some(at)) =
            (sources, &promote.repository, &promote.repository_at)
        {
            if !sources.entries.contains(&name.as_str()) {
                return Some((
                    at.clone(),
                    format!(
                        "promote.repository {name:?} is not an entry of the daemon config (it has: {})",
                        sources.entries.join(", ")
                    ),
                ));
            }
        }
        if promote.require_signed && sources.is_some_and(|s| !s.verify_keys) {
            let at = promote
                .require_signed_at
                .clone()
                .unwrap_or_else(|| promote.from_at.clone());
            return Some((
                at,
                "promote.requireSigned needs verifyKeys in the daemon config (the keys whose signatures count as Good)".to_owned(),
            ));
        }
        // `from` in another entry is read from that entry's branch.
        if !local(promote, sources) {
            return None;
        }
        let from = &promote.from;
        let at = promote.from_at.clone();
        if from == id {
            return Some((
                at,
                format!("promote.from names {id} itself: a policy cannot promote its own values"),
            ));
        }
        if let Some(problem) = self.disabled.get(from) {
            return Some((
                at,
                format!(
                    "promote.from names policy {from}, which is disabled by the problem at {problem}"
                ),
            ));
        }
        if !self.policies.contains_key(from) {
            let hint = if promote.repository.is_none() {
                " (add promote.repository when it lives in another repositories entry)"
            } else {
                ""
            };
            return Some((
                at,
                format!(
                    "promote.from names policy {from}, which no policy file here declares{hint}"
                ),
            ));
        }
        // Up the chain: a cycle leaves no policy that orders the values.
        let mut chain = vec![id.clone()];
        let mut seen = BTreeSet::new();
        let mut at_policy = from.clone();
        loop {
            chain.push(at_policy.clone());
            if &at_policy == id {
                let names: Vec<String> = chain.iter().map(ToString::to_string).collect();
                return Some((
                    at,
                    format!(
                        "promote.from makes a cycle ({}): no policy in it chooses from the registry, so none has values to promote",
                        names.join(" -> ")
                    ),
                ));
            }
            // A cycle further up is reported by its own members.
            if !seen.insert(at_policy.clone()) {
                return None;
            }
            let next = self.policies.get(&at_policy)?.promote.as_ref()?;
            if !local(next, sources) {
                return None;
            }
            at_policy = next.from.clone();
        }
    }
}

/// Whether a promotion's `from` lives in the entry being read: no
/// `repository`, or this entry's own name (unknown without a config).
fn local(promote: &Promote, sources: Option<Sources<'_>>) -> bool {
    match (&promote.repository, sources) {
        (None, _) => true,
        (Some(name), Some(sources)) => name == sources.entry,
        (Some(_), None) => false,
    }
}
