//! Timelines read from real repositories built with git2 (commits with set
//! times), and decisions over them.

use std::collections::BTreeMap;

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
    history_of(steps, deployment)
}

/// [`history`] with `staging/app.yaml` rendered by `render` from the tag.
fn history_of(
    steps: &[(i64, &str, &str)],
    render: fn(&str) -> String,
) -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path().join("r.git")).unwrap();
    let mut parent: Option<Oid> = None;
    for (hours, tag, author) in steps {
        let time = Time::new(T0 + hours * HOUR, 0);
        let who = Signature::new(author, "a@example.com", &time).unwrap();
        let blob = repo.blob(render(tag).as_bytes()).unwrap();
        let mut sub = repo.treebuilder(None).unwrap();
        sub.insert("app.yaml", blob, 0o100644).unwrap();
        let sub = sub.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("staging", sub, 0o040000).unwrap();
        let id = commit_on_main(
            &repo,
            parent,
            &who,
            root.write().unwrap(),
            &format!("set {tag}"),
        );
        parent = Some(id);
    }
    (dir, repo)
}

/// Commits `tree` on `main` after `parent`, by and at `who`.
fn commit_on_main(
    repo: &Repository,
    parent: Option<Oid>,
    who: &Signature,
    tree: Oid,
    message: &str,
) -> Oid {
    let tree = repo.find_tree(tree).unwrap();
    let parents: Vec<git2::Commit> = parent
        .iter()
        .map(|p| repo.find_commit(*p).unwrap())
        .collect();
    let refs: Vec<&git2::Commit> = parents.iter().collect();
    repo.commit(Some("refs/heads/main"), who, who, message, &tree, &refs)
        .unwrap()
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
        from_at: crate::model::Located::new(
            "policies/production.yaml",
            crate::model::Position::new(9, 11),
        ),
        repository_at: None,
        require_signed_at: None,
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
        .read(&repo, tip(&repo), &staging(), "staging", &[])
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
fn values_set_only_by_tag_markers_are_read() {
    // Helm-style values: the name and the tag each carry their own marker;
    // neither comment holds the bare `"staging:app"`.
    fn values(tag: &str) -> String {
        format!(
            "image:\n  repository: r.example/app # {{\"$imagepolicy\": \"staging:app:name\"}}\n  tag: {tag} # {{\"$imagepolicy\": \"staging:app:tag\"}}\n"
        )
    }
    let (_dir, repo) = history_of(&[(0, "1.0.0", "bot"), (10, "1.1.0", "bot")], values);
    let timeline = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging", &[])
        .unwrap();
    let held: Vec<&str> = timeline.holdings.iter().map(|h| h.value.as_str()).collect();
    assert_eq!(held, ["1.0.0", "1.1.0"]);
}

#[test]
fn a_soaked_value_is_picked_and_a_newer_one_soaks() {
    let (_dir, repo) = history(&[
        (0, "1.0.0", "bot"),
        (10, "1.1.0", "bot"),
        (40, "1.2.0", "bot"),
    ]);
    let timeline = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging", &[])
        .unwrap();
    let decision = decide_at(&timeline, &promote(24), Some("1.0.0"), 50);
    assert_eq!(
        decision.picked().map(|c| c.value.as_str()),
        Some("r.example/app:1.1.0")
    );
    let v = verdicts(&decision);
    assert_eq!(v[0].0, "r.example/app:1.2.0");
    assert!(v[0].1.starts_with("soaking 10h of 24h"), "{v:?}");
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
        .read(&repo, tip(&repo), &staging(), "staging", &[])
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
        .read(&repo, tip(&repo), &staging(), "staging", &[])
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
fn durations_read_as_the_contract_prints_them() {
    let d = Duration::from_secs;
    assert_eq!(span(d(3 * 3600 + 59)), "3h");
    assert_eq!(span(d(24 * 3600)), "24h");
    assert_eq!(span(d(90 * 60 + 7)), "1h30m");
    assert_eq!(span(d(45 * 60)), "45m");
    assert_eq!(span(d(3)), "3s");
}

#[test]
fn a_value_the_ordering_cannot_place_neither_wins_nor_freezes_the_destination() {
    let (_dir, repo) = history(&[(0, "1.0.0", "bot"), (30, "latest", "bot")]);
    let timeline = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging", &[])
        .unwrap();
    // `latest` soaked longest but has no place in the ordering; its
    // arrival is no rollback of 1.0.0.
    let decision = decide_at(&timeline, &promote(24), Some("0.9.0"), 200);
    assert_eq!(
        verdicts(&decision),
        [
            (
                "r.example/app:latest".to_owned(),
                "not a value the source policy orders".to_owned()
            ),
            ("r.example/app:1.0.0".to_owned(), "picked".to_owned())
        ]
    );
    // A destination on a tag the ordering cannot place is promoted, as
    // the registry guard would replace it.
    let from_latest = decide_at(&timeline, &promote(24), Some("latest"), 200);
    assert_eq!(
        from_latest.picked().map(|c| c.value.as_str()),
        Some("r.example/app:1.0.0")
    );
    // An equal value is the pick (nothing to write); a lower one never is.
    let same = decide_at(&timeline, &promote(24), Some("1.0.0"), 200);
    assert!(same.picked().is_some());
    let ahead = decide_at(&timeline, &promote(24), Some("1.0.1"), 200);
    assert!(ahead.picked().is_none());
}

#[test]
fn a_rollback_made_file_by_file_still_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path().join("r.git")).unwrap();
    // Two files, each with a setter of staging:app: (hour, a, b).
    let steps = [
        (0, "1.0.0", "1.0.0"),
        (30, "1.1.0", "1.1.0"),
        (60, "1.0.0", "1.1.0"),
        (61, "1.0.0", "1.0.0"),
        (70, "1.2.0", "1.0.0"),
        (71, "1.2.0", "1.2.0"),
    ];
    let mut parent = None;
    let mut ids = Vec::new();
    for (hours, a, b) in steps {
        let files = BTreeMap::from([
            ("staging/a.yaml".to_owned(), deployment(a)),
            ("staging/b.yaml".to_owned(), deployment(b)),
        ]);
        let time = Time::new(T0 + hours * HOUR, 0);
        let who = Signature::new("bot", "a@example.com", &time).unwrap();
        let id = commit_on_main(&repo, parent, &who, write_tree(&repo, &files), "step");
        ids.push(id);
        parent = Some(id);
    }
    let timeline = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging", &[])
        .unwrap();
    assert!(
        timeline.holdings[1]
            .ended
            .as_ref()
            .is_some_and(|e| e.by.is_none()),
        "1.1.0 ends while the files disagree"
    );
    let decision = decide_at(&timeline, &promote(24), Some("0.9.0"), 200);
    let verdict = |value: &str| {
        decision
            .candidates
            .iter()
            .find(|c| c.value.ends_with(value))
            .map(|c| c.verdict.clone())
    };
    // Held 30h, then rolled back where the files agreed on the lower
    // value again.
    assert_eq!(
        verdict("1.1.0"),
        Some(Verdict::RolledBack { commit: ids[3] })
    );
    // Moving forward file by file is no rollback.
    assert_eq!(verdict("1.0.0"), Some(Verdict::Outranked));
    assert_eq!(verdict("1.2.0"), Some(Verdict::Picked));
}

#[test]
fn a_value_held_again_since_an_unsigned_commit_says_so() {
    let (_dir, repo) = history(&[
        (0, "1.0.0", "bot"),
        (30, "1.1.0", "bot"),
        (32, "1.2.0", "bot"),
        (34, "1.1.0", "mallory"),
    ]);
    let mut timeline = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging", &[])
        .unwrap();
    for (holding, signed) in timeline.holdings.iter_mut().zip([true, true, true, false]) {
        holding.signed = Some(signed);
    }
    let signed_only = Promote {
        require_signed: true,
        ..promote(24)
    };
    let decision = decide_at(&timeline, &signed_only, Some("0.9.0"), 100);
    let held = decision
        .candidates
        .iter()
        .find(|c| c.value.ends_with("1.1.0"))
        .unwrap();
    assert_eq!(
        held.verdict,
        Verdict::HeldUnsigned {
            commit: timeline.holdings[3].commit
        }
    );
    assert!(
        held.verdict
            .to_string()
            .starts_with("unsigned: held since "),
        "{}",
        held.verdict
    );
    assert_eq!(
        decision.picked().map(|c| c.value.as_str()),
        Some("r.example/app:1.0.0")
    );
}

#[test]
fn later_reads_take_only_new_commits_and_a_force_push_reads_again() {
    let (_dir, repo) = history(&[(0, "1.0.0", "bot"), (10, "1.1.0", "bot")]);
    let first = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging", &[])
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
        .read(&grown, tip(&grown), &staging(), "staging", &[])
        .unwrap();
    assert_eq!(next.commits_read, 2);
    assert_eq!(next.holdings.len(), 4);
    let unchanged = next
        .clone()
        .read(&grown, tip(&grown), &staging(), "staging", &[])
        .unwrap();
    assert_eq!(unchanged.commits_read, 0);
    // A history that does not contain the old tip is read from the root.
    let (_forced, rewritten) = history(&[(1, "1.0.0", "bot"), (11, "1.5.0", "bot")]);
    let again = next
        .read(&rewritten, tip(&rewritten), &staging(), "staging", &[])
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

/// Writes the folders of `files` (path to content) as nested trees.
fn write_tree(repo: &Repository, files: &BTreeMap<String, String>) -> Oid {
    let mut here = repo.treebuilder(None).unwrap();
    let mut folders: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for (path, text) in files {
        match path.split_once('/') {
            Some((folder, rest)) => {
                folders
                    .entry(folder)
                    .or_default()
                    .insert(rest.to_owned(), text.clone());
            }
            None => {
                let blob = repo.blob(text.as_bytes()).unwrap();
                here.insert(path, blob, 0o100644).unwrap();
            }
        }
    }
    for (folder, inside) in folders {
        here.insert(folder, write_tree(repo, &inside), 0o040000)
            .unwrap();
    }
    here.write().unwrap()
}

/// A seeded history of `commits` commits on `main` that moves the setters
/// of `staging:app` every way a diff can see: two image markers that agree
/// or not, tag and digest markers, files deleted, a folder replaced by a
/// file and back, setters in files that do not parse or are not YAML,
/// other policies, the file a target names (`deploy/values.yaml`, see
/// [`tag_target`]) set, emptied, deleted and replaced by a folder, and commits outside `env/` or
/// with no change at all.
fn scrambled_history(commits: usize) -> (tempfile::TempDir, Repository, Vec<Oid>) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path().join("r.git")).unwrap();
    let marker = |field: &str| {
        if field.is_empty() {
            r#"# {"$imagepolicy": "staging:app"}"#.to_owned()
        } else {
            format!(r#"# {{"$imagepolicy": "staging:app:{field}"}}"#)
        }
    };
    let image = |tag: u64| {
        format!(
            "kind: Deployment\nspec:\n  image: r.example/app:1.0.{tag} {}\n",
            marker("")
        )
    };
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chain = Vec::new();
    let mut parent: Option<Oid> = None;
    for n in 0..commits as u64 {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let pick = (rng >> 33) % 18;
        let tag = (rng >> 20) % 3;
        match pick {
            0..=2 => {
                files.insert("env/a/app.yaml".into(), image(tag));
            }
            3 | 4 => {
                files.retain(|p, _| !p.starts_with("env/b"));
                files.insert("env/b/app.yaml".into(), image(tag));
            }
            5 => {
                files.remove("env/b/app.yaml");
            }
            6 => {
                // The folder env/b becomes a file, and its setters go.
                files.retain(|p, _| !p.starts_with("env/b/"));
                files.insert("env/b".into(), image(tag));
            }
            7 => {
                files.insert(
                    "env/c/tags.yml".into(),
                    format!(
                        "tag: 1.0.{tag} {}\ndigest: sha256:{tag:064} {}\n",
                        marker("tag"),
                        marker("digest")
                    ),
                );
            }
            8 => {
                files.remove("env/c/tags.yml");
            }
            9 => {
                let text = format!("image: [unclosed 1.0.{tag} {}\n", marker(""));
                files.insert("env/a/broken.yaml".into(), text);
            }
            10 => {
                files.insert("env/a/notes.txt".into(), image(tag));
                files.insert(
                    "env/a/other.yaml".into(),
                    image(tag).replace("staging:app", "staging:other"),
                );
            }
            11 => {
                files.insert("other/app.yaml".into(), image(tag));
            }
            12 => {
                // Only the tag and digest markers are left.
                files.retain(|p, _| !p.starts_with("env/a/") && !p.starts_with("env/b"));
            }
            13 | 14 => {
                // The file a target names, outside `env/`.
                files.retain(|p, _| !p.starts_with("deploy/values.yaml/"));
                files.insert(
                    "deploy/values.yaml".into(),
                    format!("image:\n  repository: r.example/app\n  tag: 1.0.{tag}\n"),
                );
            }
            15 => {
                // The target's field gone.
                files.insert("deploy/values.yaml".into(), "image: {}\n".into());
            }
            16 => {
                // The target's file gone, or a folder in its place.
                files.remove("deploy/values.yaml");
                if tag == 0 {
                    files.insert("deploy/values.yaml/x.yaml".into(), image(tag));
                } else {
                    files.retain(|p, _| !p.starts_with("deploy/values.yaml/"));
                }
            }
            _ => {} // The same tree again.
        }
        let time = Time::new(T0 + n as i64 * HOUR, 0);
        let who =
            Signature::new(["ada", "bo", "cy"][n as usize % 3], "a@example.com", &time).unwrap();
        let tree = write_tree(&repo, &files);
        let id = commit_on_main(&repo, parent, &who, tree, &format!("step {n}"));
        chain.push(id);
        parent = Some(id);
    }
    (dir, repo, chain)
}

/// A period as a timeline lists it: its value, the commit it landed
/// with, and the commit that ended it with the value that replaced it.
type Period = (String, Oid, Option<(Oid, Option<String>)>);

/// The periods `value_at` gives, commit by commit from scratch: what a
/// timeline must hold.
fn periods_from_scratch(
    repo: &Repository,
    chain: &[Oid],
    scan_dir: &str,
    targets: &[Target],
) -> Vec<Period> {
    let mut periods: Vec<Period> = Vec::new();
    let mut held: Option<String> = None;
    for &id in chain {
        let value = value_at(repo, id, &staging(), scan_dir, targets).unwrap();
        if value == held {
            continue;
        }
        if let Some(last) = periods.last_mut().filter(|p| p.2.is_none()) {
            last.2 = Some((id, value.clone()));
        }
        if let Some(value) = &value {
            periods.push((value.clone(), id, None));
        }
        held = value;
    }
    periods
}

fn periods(timeline: &Timeline) -> Vec<Period> {
    timeline
        .holdings
        .iter()
        .map(|h| {
            (
                h.value.clone(),
                h.commit,
                h.ended.as_ref().map(|e| (e.commit, e.by.clone())),
            )
        })
        .collect()
}

/// The target `image.tag` of `deploy/values.yaml`, a tag setter.
fn tag_target() -> Target {
    Target {
        file: "deploy/values.yaml".into(),
        path: TargetPath::parse("image.tag").unwrap(),
        field: Field::Tag,
        declared_at: crate::model::Located::new(
            "policies/staging.yaml",
            crate::model::Position::new(12, 9),
        ),
    }
}

#[test]
fn chunks_read_on_threads_give_the_timeline_one_thread_gives() {
    let (_dir, repo, chain) = scrambled_history(300);
    let tip = *chain.last().unwrap();
    let with_target = [tag_target()];
    for (scan_dir, targets) in [
        ("env", &[][..]),
        ("", &[]),
        ("env", &with_target),
        ("", &with_target),
    ] {
        let case = format!("{scan_dir:?}, {} targets", targets.len());
        let expected = periods_from_scratch(&repo, &chain, scan_dir, targets);
        assert!(expected.len() > 15, "{case}: {} periods", expected.len());
        assert!(
            expected
                .iter()
                .any(|p| p.2.as_ref().is_some_and(|e| e.1.is_none()))
        );
        let read = |timeline: Timeline, tip: Oid, workers: usize, chunk: usize| {
            timeline
                .read_with(
                    &repo,
                    tip,
                    &staging(),
                    scan_dir,
                    targets,
                    Some(workers),
                    chunk,
                )
                .unwrap()
        };
        let whole = read(Timeline::default(), tip, 1, usize::MAX);
        assert_eq!(periods(&whole), expected, "one chunk, {case}");
        assert_eq!(whole.commits_read, 300);
        // Chunks of 1, 7 and 64 commits, on one thread and on three.
        for (workers, chunk) in [(1, 7), (3, 1), (3, 7), (2, 64)] {
            let threaded = read(Timeline::default(), tip, workers, chunk);
            let label = format!("{workers} workers, chunks of {chunk}, {case}");
            assert_eq!(threaded.holdings, whole.holdings, "{label}");
            assert_eq!(threaded.files, whole.files, "{label}");
            assert_eq!(threaded.watched, whole.watched, "{label}");
            assert_eq!(
                (threaded.tip, threaded.commits_read),
                (Some(tip), 300),
                "{label}"
            );
            // A read on threads continues from where an earlier one ended.
            let earlier = read(Timeline::default(), chain[130], workers, chunk);
            let grown = read(earlier, tip, workers, chunk);
            assert_eq!(grown.commits_read, 169, "{label}");
            assert_eq!(grown.holdings, whole.holdings, "{label}");
            assert_eq!(grown.files, whole.files, "{label}");
        }
    }
}

/// A source whose policy sets a field through `targets:` only, in a file
/// outside the scanned folder: its values are candidates like markers'.
#[test]
fn a_source_policys_targets_are_its_setters_too() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path().join("r.git")).unwrap();
    let mut files = BTreeMap::new();
    let mut parent = None;
    let mut chain = Vec::new();
    for (hours, path, text) in [
        (
            0,
            "deploy/values.yaml",
            "image:\n  tag: 1.0.0 # the target\n",
        ),
        (
            5,
            "deploy/values.yaml",
            "image:\n  tag: 1.1.0 # the target\n",
        ),
        (6, "staging/notes.yaml", "unrelated: true\n"),
        (
            9,
            "deploy/values.yaml",
            "image:\n  tag: 1.2.0 # the target\n",
        ),
    ] {
        files.insert(path.to_owned(), text.to_owned());
        let time = Time::new(T0 + hours * HOUR, 0);
        let who = Signature::new("ada", "a@example.com", &time).unwrap();
        let id = commit_on_main(&repo, parent, &who, write_tree(&repo, &files), path);
        chain.push(id);
        parent = Some(id);
    }
    let targets = [tag_target()];
    let markers_only = Timeline::default()
        .read(&repo, tip(&repo), &staging(), "staging", &[])
        .unwrap();
    assert!(markers_only.holdings.is_empty());
    // Other targets than the timeline was read with: read again from the root.
    let timeline = markers_only
        .read(&repo, tip(&repo), &staging(), "staging", &targets)
        .unwrap();
    assert_eq!(timeline.commits_read, 4);
    let held: Vec<_> = timeline
        .holdings
        .iter()
        .map(|h| {
            (
                h.value.as_str(),
                h.since,
                h.ended.as_ref().map(|e| e.commit),
            )
        })
        .collect();
    assert_eq!(
        held,
        [
            ("1.0.0", T0, Some(chain[1])),
            ("1.1.0", T0 + 5 * HOUR, Some(chain[3])),
            ("1.2.0", T0 + 9 * HOUR, None),
        ]
    );
    let value = value_at(&repo, chain[2], &staging(), "staging", &targets).unwrap();
    assert_eq!(value.as_deref(), Some("1.1.0"));
    let decision = decide_at(&timeline, &promote(3), None, 10);
    assert_eq!(decision.picked().map(|c| c.value.as_str()), Some("1.1.0"));
}
