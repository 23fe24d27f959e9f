//! Timelines read from real repositories built with git2 (commits with set
//! times), and decisions over them.

use git2::{Repository, Signature, Time};

use super::*;
use crate::policy::{Range, Rule, Selector};

const HOUR: i64 = 3600;
const T0: i64 = 1_700_000_000;

fn deployment(tag: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: r.example/app:{tag} # {{\"$imagepolicy\": \"staging:app\"}}\n"
    )
}

/// A repository whose `main` gets one commit per `(hours after T0, tag,
/// author)`, each setting `staging/app.yaml` to that tag.
fn history(steps: &[(i64, &str, &str)]) -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path().join("r.git")).unwrap();
    let mut parent: Option<Oid> = None;
    for (hours, tag, author) in steps {
        let time = Time::new(T0 + hours * HOUR, 0);
        let who = Signature::new(author, "a@example.com", &time).unwrap();
        let blob = repo.blob(deployment(tag).as_bytes()).unwrap();
        let mut sub = repo.treebuilder(None).unwrap();
        sub.insert("app.yaml", blob, 0o100644).unwrap();
        let sub = sub.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("staging", sub, 0o040000).unwrap();
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let parents: Vec<git2::Commit> = parent
            .iter()
            .map(|p| repo.find_commit(*p).unwrap())
            .collect();
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        let id = repo
            .commit(
                Some("refs/heads/main"),
                &who,
                &who,
                &format!("set {tag}"),
                &tree,
                &refs,
            )
            .unwrap();
        parent = Some(id);
    }
    (dir, repo)
}

fn tip(repo: &Repository) -> Oid {
    repo.refname_to_id("refs/heads/main").unwrap()
}

fn staging() -> PolicyId {
    PolicyId::new("staging", "app")
}

fn promote(soak_hours: u64) -> Promote {
    Promote {
        from: staging(),
        repository: None,
        soak: Duration::from_secs(soak_hours * 3600),
        rollback_blocks: true,
        require_signed: false,
    }
}

fn decide_at(
    timeline: &Timeline,
    promote: &Promote,
    current: Option<&str>,
    hours: i64,
) -> Decision {
    let rule = Rule::Semver(Range::parse("*").unwrap());
    let exclusions = crate::policy::Exclusions::default();
    let selector = Selector {
        rule: &rule,
        filter: None,
        exclusions: &exclusions,
    };
    decide(timeline, promote, &selector, current, T0 + hours * HOUR)
}

fn verdicts(decision: &Decision) -> Vec<(String, String)> {
    decision
        .candidates
        .iter()
        .map(|c| (c.value.clone(), c.verdict.to_string()))
        .collect()
}

#[test]
fn periods_follow_the_first_parent_chain_with_their_times_and_authors() {
    let (_dir, repo) = history(&[
        (0, "1.0.0", "bot"),
        (10, "1.1.0", "bot"),
        (40, "1.2.0", "alice"),
    ]);
    let timeline = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging")
        .unwrap();
    assert_eq!(timeline.commits_read, 3);
    let values: Vec<(&str, i64, &str)> = timeline
        .holdings
        .iter()
        .map(|h| (h.value.as_str(), (h.since - T0) / HOUR, h.author.as_str()))
        .collect();
    assert_eq!(
        values,
        [
            ("r.example/app:1.0.0", 0, "bot"),
            ("r.example/app:1.1.0", 10, "bot"),
            ("r.example/app:1.2.0", 40, "alice")
        ]
    );
    assert_eq!(
        timeline.holdings[1].ended.as_ref().unwrap().at,
        T0 + 40 * HOUR
    );
    assert!(
        timeline
            .current()
            .is_some_and(|h| h.value.ends_with("1.2.0"))
    );
}

#[test]
fn a_soaked_value_is_picked_and_a_newer_one_soaks() {
    let (_dir, repo) = history(&[
        (0, "1.0.0", "bot"),
        (10, "1.1.0", "bot"),
        (40, "1.2.0", "bot"),
    ]);
    let timeline = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging")
        .unwrap();
    let decision = decide_at(&timeline, &promote(24), Some("1.0.0"), 50);
    assert_eq!(
        decision.picked().map(|c| c.value.as_str()),
        Some("r.example/app:1.1.0")
    );
    let v = verdicts(&decision);
    assert_eq!(v[0].0, "r.example/app:1.2.0");
    assert!(v[0].1.starts_with("soaking 10h of 1day"), "{v:?}");
    assert_eq!(decision.next_change, Some(T0 + 64 * HOUR));
    // After the soak, the newest is picked.
    let later = decide_at(&timeline, &promote(24), Some("1.1.0"), 64);
    assert_eq!(
        later.picked().map(|c| c.value.as_str()),
        Some("r.example/app:1.2.0")
    );
    assert_eq!(later.next_change, None);
}

#[test]
fn a_rolled_back_value_is_never_promoted_even_after_it_soaks() {
    let (_dir, repo) = history(&[
        (0, "1.0.0", "bot"),
        (30, "1.1.0", "bot"),
        (60, "1.0.0", "alice"),
    ]);
    let timeline = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging")
        .unwrap();
    let decision = decide_at(&timeline, &promote(24), Some("0.9.0"), 200);
    let v = verdicts(&decision);
    assert!(
        v.iter()
            .any(|(value, verdict)| value.ends_with("1.1.0")
                && verdict.starts_with("rolled back in ")),
        "{v:?}"
    );
    assert_eq!(
        decision.picked().map(|c| c.value.as_str()),
        Some("r.example/app:1.0.0")
    );
    let allow = Promote {
        rollback_blocks: false,
        ..promote(24)
    };
    let allowed = decide_at(&timeline, &allow, Some("0.9.0"), 200);
    assert_eq!(
        allowed.picked().map(|c| c.value.as_str()),
        Some("r.example/app:1.1.0")
    );
}

#[test]
fn nothing_moves_backwards_and_a_short_period_does_not_count() {
    let (_dir, repo) = history(&[
        (0, "1.0.0", "bot"),
        (5, "1.1.0", "bot"),
        (6, "1.2.0", "bot"),
    ]);
    let timeline = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging")
        .unwrap();
    let decision = decide_at(&timeline, &promote(24), Some("1.0.0"), 10);
    let v = verdicts(&decision);
    assert!(
        v.iter().any(
            |(value, verdict)| value.ends_with("1.1.0") && verdict.contains("before it soaked")
        ),
        "{v:?}"
    );
    assert!(decision.picked().is_none(), "nothing held 24h yet");
    // 1.2.0 has soaked by hour 40, but production already holds 2.0.0.
    let ahead = decide_at(&timeline, &promote(24), Some("2.0.0"), 40);
    assert!(ahead.picked().is_none());
    assert!(
        verdicts(&ahead)
            .iter()
            .any(|(_, v)| v == "not higher than the current value")
    );
}

#[test]
fn later_reads_take_only_new_commits_and_a_force_push_reads_again() {
    let (_dir, repo) = history(&[(0, "1.0.0", "bot"), (10, "1.1.0", "bot")]);
    let first = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging")
        .unwrap();
    assert_eq!(first.commits_read, 2);
    // Two more commits on main.
    let (_other, grown) = history(&[
        (0, "1.0.0", "bot"),
        (10, "1.1.0", "bot"),
        (20, "1.2.0", "bot"),
        (30, "1.3.0", "bot"),
    ]);
    // Same object ids: the same trees, times and authors.
    assert!(grown.find_commit(first.tip.unwrap()).is_ok());
    let next = first
        .clone()
        .read(&grown, tip(&grown), &staging(), "staging")
        .unwrap();
    assert_eq!(next.commits_read, 2);
    assert_eq!(next.holdings.len(), 4);
    let unchanged = next
        .clone()
        .read(&grown, tip(&grown), &staging(), "staging")
        .unwrap();
    assert_eq!(unchanged.commits_read, 0);
    // A history that does not contain the old tip is read from the root.
    let (_forced, rewritten) = history(&[(1, "1.0.0", "bot"), (11, "1.5.0", "bot")]);
    let again = next
        .read(&rewritten, tip(&rewritten), &staging(), "staging")
        .unwrap();
    assert_eq!(again.commits_read, 2);
    assert_eq!(again.holdings.len(), 2);
}

#[test]
fn values_split_into_tag_and_digest() {
    assert_eq!(
        tag_and_digest("r/app:1.0@sha256:ab"),
        (Some("1.0"), Some("sha256:ab"))
    );
    assert_eq!(tag_and_digest("127.0.0.1:5000/app:2"), (Some("2"), None));
    assert_eq!(tag_and_digest("1.2.3"), (Some("1.2.3"), None));
    assert_eq!(tag_and_digest("r/app"), (None, None));
}
