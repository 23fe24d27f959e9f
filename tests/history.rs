//! `crowsnest history` on repositories the suite builds with the git CLI:
//! signed automation commits, a commit whose message was altered after
//! signing, unsigned manual edits of managed fields, merges (clean and
//! conflict-resolved), and the daemon's clone read through `--config`.
//! Every signature verdict is compared with git's own (`%G?` and
//! `git verify-commit`), with gpg and with an SSH allowed-signers file.

mod support;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use crowsnest::audit::time::format_time;
use serde_json::Value;
use support::git::{Remote, git, write};
use support::process::run;
use support::signing::{GpgKey, GpgSpec, SshSigningKey, git_ssh_signature_code};

const POLICIES: &str = r#"apiVersion: crowsnest/v1
kind: ImagePolicy
metadata:
  name: podinfo
spec:
  image: ghcr.io/s/podinfo
  policy:
    semver:
      range: ">=6.0.0"
---
apiVersion: crowsnest/v1
kind: ImagePolicy
metadata:
  name: redis
spec:
  image: registry.example.com/redis
  policy:
    semver:
      range: ">=7.0.0"
  targets:
    - file: apps/redis/values.yaml
      path: image.tag
      field: tag
"#;

fn deployment(tag: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers:\n        - name: podinfo\n          image: ghcr.io/s/podinfo:{tag} # {{\"$imagepolicy\": \"default:podinfo\"}}\n"
    )
}

fn values(tag: &str) -> String {
    format!("image:\n  repository: registry.example.com/redis\n  tag: \"{tag}\"\n")
}

const DEPLOYMENT: &str = "apps/podinfo/deployment.yaml";
const VALUES: &str = "apps/redis/values.yaml";
/// 2023-11-14T22:13:20Z; every commit is one hour after the previous.
const EPOCH: i64 = 1_700_000_000;

#[derive(Clone, Copy)]
enum Who {
    Bot,
    Person,
}

#[derive(Clone, Copy)]
enum Sign<'a> {
    No,
    Gpg(&'a GpgKey),
    Ssh(&'a SshSigningKey),
}

/// A working clone whose commits have fixed, increasing dates.
struct Work {
    dir: tempfile::TempDir,
    path: PathBuf,
    clock: Cell<i64>,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::Builder::new()
            .prefix("crowsnest-history-")
            .tempdir()
            .expect("create a temp dir");
        let path = dir.path().join("fleet");
        run(git().args(["init", "-q", "-b", "main"]).arg(&path));
        Work {
            dir,
            path,
            clock: Cell::new(EPOCH),
        }
    }

    fn git(&self) -> Command {
        let mut command = git();
        command.arg("-C").arg(&self.path);
        command
    }

    fn write(&self, path: &str, content: &str) {
        write(&self.path, path, content.as_bytes());
    }

    /// A git command dated one hour after the previous commit, as `who`.
    fn dated(&self, who: Who) -> (Command, i64) {
        let time = self.clock.get() + 3600;
        self.clock.set(time);
        let date = format!("{time} +0000");
        let mut command = self.git();
        command
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date);
        if let Who::Bot = who {
            for (key, value) in [
                ("GIT_AUTHOR_NAME", "crowsnest"),
                ("GIT_AUTHOR_EMAIL", "crowsnest@localhost"),
                ("GIT_COMMITTER_NAME", "crowsnest"),
                ("GIT_COMMITTER_EMAIL", "crowsnest@localhost"),
            ] {
                command.env(key, value);
            }
        }
        (command, time)
    }

    /// Adds everything and commits; returns the new commit.
    fn commit(&self, who: Who, message: &str, sign: Sign<'_>) -> String {
        run(self.git().args(["add", "-A"]));
        let (mut command, _) = self.dated(who);
        match sign {
            Sign::No => {}
            Sign::Gpg(key) => {
                command
                    .env("GNUPGHOME", key.signer_home())
                    .arg("-c")
                    .arg(format!("user.signingkey={}", key.fingerprint));
            }
            Sign::Ssh(key) => {
                command
                    .args(["-c", "gpg.format=ssh", "-c"])
                    .arg(format!("user.signingkey={}", key.key_file.display()));
            }
        }
        command.args(["commit", "-q", "--allow-empty", "-m", message]);
        if !matches!(sign, Sign::No) {
            command.arg("-S");
        }
        run(&mut command);
        self.head()
    }

    fn head(&self) -> String {
        run(self.git().args(["rev-parse", "HEAD"]))
            .trim()
            .to_owned()
    }

    fn checkout(&self, args: &[&str]) {
        run(self.git().args(["checkout", "-q"]).args(args));
    }

    /// `git merge --no-ff` of `branch`; `resolve` writes the files of a
    /// conflicted merge before it is committed.
    fn merge(&self, branch: &str, resolve: Option<&dyn Fn()>) -> String {
        let (mut command, _) = self.dated(Who::Person);
        let message = format!("Merge branch '{branch}'");
        let output = command
            .args(["merge", "-q", "--no-ff", "-m", &message, branch])
            .output()
            .expect("run git merge");
        match resolve {
            None => assert!(
                output.status.success(),
                "git merge failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
            Some(resolve) => {
                assert!(!output.status.success(), "the merge was meant to conflict");
                resolve();
                run(self.git().args(["add", "-A"]));
                let (mut command, _) = self.dated(Who::Person);
                run(command.args(["commit", "-q", "--no-edit"]));
            }
        }
        self.head()
    }

    /// Rewrites `rev`'s message after signing (the signature stays) and
    /// moves the branch onto the altered commit.
    fn tamper(&self, rev: &str, from: &str, to: &str) -> String {
        let raw = run(self.git().args(["cat-file", "commit", rev]));
        assert!(raw.contains("gpgsig"), "{rev} is not signed");
        assert!(raw.contains(from), "{rev} does not say {from}");
        let file = self.dir.path().join("tampered-commit");
        std::fs::write(&file, raw.replace(from, to)).expect("write the altered commit");
        let id = run(self
            .git()
            .args(["hash-object", "-t", "commit", "-w"])
            .arg(&file))
        .trim()
        .to_owned();
        run(self.git().args(["reset", "-q", "--soft", &id]));
        id
    }

    /// The first commit: the policies, a Deployment with a marker and a
    /// values file a policy target names.
    fn seed(&self) -> String {
        self.write("policies/images.yaml", POLICIES);
        self.write(DEPLOYMENT, &deployment("6.0.0", 1));
        self.write(VALUES, &values("7.0.0"));
        self.write("docs/README.md", "# fleet\n");
        self.commit(Who::Person, "Initial fleet", Sign::No)
    }
}

fn trailer(policy: &str, image: &str, from: &str, to: &str) -> String {
    format!(
        "Update {policy} to {to}\n\nImage-Update: default:{policy} {image}:{from} -> {image}:{to}\n"
    )
}

fn crowsnest(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crowsnest"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CROWSNEST_") {
            command.env_remove(key);
        }
    }
    command
        .arg("history")
        .args(args)
        .env("CROWSNEST_LOG", "warn")
        .output()
        .expect("run crowsnest")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `--json` output, one value per entry.
fn entries(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// `(kind, commit, policy, from, to, file)` per entry, commits by label.
fn summary(
    entries: &[Value],
    labels: &BTreeMap<String, &str>,
) -> Vec<(String, String, String, String, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    entries
        .iter()
        .map(|e| {
            let commit = e["commit"].as_str().expect("commit id");
            (
                text(&e["kind"]),
                labels
                    .get(commit)
                    .map(|l| (*l).to_owned())
                    .unwrap_or_else(|| format!("unlabelled {commit}")),
                text(&e["policy"]),
                text(&e["from"]),
                text(&e["to"]),
                text(&e["file"]),
            )
        })
        .collect()
}

fn row(
    kind: &str,
    commit: &str,
    policy: &str,
    from: &str,
    to: &str,
    file: &str,
) -> (String, String, String, String, String, String) {
    (
        kind.into(),
        commit.into(),
        policy.into(),
        from.into(),
        to.into(),
        file.into(),
    )
}

/// What `crowsnest history` reports git would say, given git's `%G?`.
fn status_for_gpg_code(code: &str) -> &'static str {
    match code {
        // `U` is gpg's good signature from a key of unknown trust, which
        // `git verify-commit` accepts.
        "G" | "U" => "good",
        "B" | "X" | "Y" | "R" => "bad",
        "E" => "unknown-key",
        "N" => "unsigned",
        other => panic!("unexpected %G? {other:?}"),
    }
}

fn status_for_ssh_code(code: &str) -> &'static str {
    match code {
        "G" => "good",
        "B" => "bad",
        // ssh: "No principal matched"; git refuses it.
        "U" => "unknown-key",
        "N" => "unsigned",
        other => panic!("unexpected %G? {other:?}"),
    }
}

fn labels<'a>(named: &[(&'a str, &String)]) -> BTreeMap<String, &'a str> {
    named.iter().map(|(l, id)| ((*id).clone(), *l)).collect()
}

#[test]
fn openpgp_trail_lists_updates_and_manual_changes_with_git_verdicts() {
    let bot = GpgKey::ed25519();
    let stranger = GpgKey::new(GpgSpec {
        algorithm: "ed25519",
        passphrase: None,
        signing_subkey: true,
    });
    let work = Work::new();
    let c0 = work.seed();

    work.write(DEPLOYMENT, &deployment("6.1.0", 1));
    let c1 = work.commit(
        Who::Bot,
        &trailer("podinfo", "ghcr.io/s/podinfo", "6.0.0", "6.1.0"),
        Sign::Gpg(&bot),
    );
    // A person edits a target's value and, in the same commit, replicas.
    work.write(VALUES, &values("7.0.1"));
    work.write(DEPLOYMENT, &deployment("6.1.0", 3));
    let c2 = work.commit(Who::Person, "Pin redis by hand", Sign::No);
    // Only unmanaged text: not listed.
    work.write(DEPLOYMENT, &deployment("6.1.0", 2));
    work.write("docs/README.md", "# fleet\n\nMore.\n");
    let c3 = work.commit(Who::Person, "Scale back", Sign::No);
    work.write(DEPLOYMENT, &deployment("6.2.0", 2));
    let signed = work.commit(
        Who::Bot,
        &trailer("podinfo", "ghcr.io/s/podinfo", "6.1.0", "6.2.0"),
        Sign::Gpg(&bot),
    );
    let c4 = work.tamper(&signed, "6.2.0", "6.9.9");
    work.write(VALUES, &values("7.0.2"));
    let c5 = work.commit(
        Who::Bot,
        &trailer("redis", "registry.example.com/redis", "7.0.1", "7.0.2"),
        Sign::Gpg(&stranger),
    );
    // A branch with a manual bump, merged cleanly: the branch commit is
    // the manual change, the merge is not.
    work.checkout(&["-b", "side"]);
    work.write(DEPLOYMENT, &deployment("6.2.1", 2));
    let c6 = work.commit(Who::Person, "Try 6.2.1", Sign::No);
    work.checkout(&["main"]);
    work.write(VALUES, &values("7.1.0"));
    let c7 = work.commit(
        Who::Bot,
        &trailer("redis", "registry.example.com/redis", "7.0.2", "7.1.0"),
        Sign::Gpg(&bot),
    );
    let c8 = work.merge("side", None);
    // Both sides change the image; the conflict is resolved to a third
    // value, which only the merge commit holds: a manual change.
    work.checkout(&["-b", "side2"]);
    work.write(DEPLOYMENT, &deployment("6.4.0", 2));
    let c9 = work.commit(Who::Person, "Try 6.4.0", Sign::No);
    work.checkout(&["main"]);
    work.write(DEPLOYMENT, &deployment("6.3.0", 2));
    let c10 = work.commit(
        Who::Bot,
        &trailer("podinfo", "ghcr.io/s/podinfo", "6.2.1", "6.3.0"),
        Sign::Gpg(&bot),
    );
    let c11 = work.merge(
        "side2",
        Some(&|| work.write(DEPLOYMENT, &deployment("6.5.0", 2))),
    );

    let names = labels(&[
        ("c0", &c0),
        ("c1", &c1),
        ("c2", &c2),
        ("c3", &c3),
        ("c4", &c4),
        ("c5", &c5),
        ("c6", &c6),
        ("c7", &c7),
        ("c8", &c8),
        ("c9", &c9),
        ("c10", &c10),
        ("c11", &c11),
    ]);
    let repo = work.path.to_str().expect("utf-8 path");
    let keyring = bot.public_key_file();
    let keyring = keyring.to_str().expect("utf-8 path");
    let output = crowsnest(&["--repo", repo, "--json", "--verify", keyring]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let listed = entries(&output);
    let p = |tag: &str| format!("ghcr.io/s/podinfo:{tag}");
    let r = |tag: &str| format!("registry.example.com/redis:{tag}");
    assert_eq!(
        summary(&listed, &names),
        vec![
            row(
                "manual",
                "c11",
                "default:podinfo",
                &p("6.3.0"),
                &p("6.5.0"),
                DEPLOYMENT
            ),
            row(
                "update",
                "c10",
                "default:podinfo",
                &p("6.2.1"),
                &p("6.3.0"),
                "-"
            ),
            row(
                "manual",
                "c9",
                "default:podinfo",
                &p("6.2.1"),
                &p("6.4.0"),
                DEPLOYMENT
            ),
            row(
                "update",
                "c7",
                "default:redis",
                &r("7.0.2"),
                &r("7.1.0"),
                "-"
            ),
            row(
                "manual",
                "c6",
                "default:podinfo",
                &p("6.2.0"),
                &p("6.2.1"),
                DEPLOYMENT
            ),
            row(
                "update",
                "c5",
                "default:redis",
                &r("7.0.1"),
                &r("7.0.2"),
                "-"
            ),
            row(
                "update",
                "c4",
                "default:podinfo",
                &p("6.1.0"),
                &p("6.9.9"),
                "-"
            ),
            row("manual", "c2", "default:redis", "7.0.0", "7.0.1", VALUES),
            row(
                "update",
                "c1",
                "default:podinfo",
                &p("6.0.0"),
                &p("6.1.0"),
                "-"
            ),
        ]
    );

    // Each verdict is git's, with gpg holding only the bot's public key.
    let mut seen = BTreeMap::new();
    for entry in &listed {
        let commit = entry["commit"].as_str().unwrap();
        let status = entry["signature"]["status"].as_str().unwrap();
        let code = bot.git_signature_code(&work.path, commit);
        assert_eq!(
            status,
            status_for_gpg_code(&code),
            "{}: %G? is {code}; crowsnest says {entry}",
            names[commit]
        );
        assert_eq!(
            status == "good",
            bot.verify_commit(&work.path, commit).is_ok(),
            "{}: git verify-commit disagrees with {status}",
            names[commit]
        );
        seen.insert(names[commit], status.to_owned());
    }
    let want: BTreeMap<&str, String> = [
        ("c1", "good"),
        ("c2", "unsigned"),
        ("c4", "bad"),
        ("c5", "unknown-key"),
        ("c6", "unsigned"),
        ("c7", "good"),
        ("c9", "unsigned"),
        ("c10", "good"),
        ("c11", "unsigned"),
    ]
    .into_iter()
    .map(|(c, s)| (c, s.to_owned()))
    .collect();
    assert_eq!(seen, want);
    let c1_entry = listed.iter().find(|e| e["commit"] == c1.as_str()).unwrap();
    assert_eq!(c1_entry["signature"]["format"], "openpgp");
    assert_eq!(
        c1_entry["signature"]["signer"],
        support::signing::SIGNER_UID
    );
    assert_eq!(c1_entry["signature"]["key"], bot.fingerprint.as_str());
    let c5_entry = listed.iter().find(|e| e["commit"] == c5.as_str()).unwrap();
    assert!(
        c5_entry["signature"]["reason"]
            .as_str()
            .unwrap()
            .contains("no key that made this signature"),
        "{c5_entry}"
    );
    assert_ne!(c5_entry["signature"]["key"], bot.fingerprint.as_str());

    // The table, with commit ids by label (signatures make them differ
    // from run to run; times and everything else are fixed).
    let output = crowsnest(&["--repo", repo, "--verify", keyring]);
    let mut table = stdout(&output);
    for (id, label) in &names {
        table = table.replace(&id[..12], &format!("{label:<12}"));
    }
    insta::assert_snapshot!("openpgp_table", table);

    // Without --verify: no signature column, exit 0.
    let plain = crowsnest(&["--repo", repo]);
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    assert!(!stdout(&plain).contains("SIGNATURE"));
    assert_eq!(stdout(&plain).lines().count(), 1 + listed.len());
    assert!(
        stderr(&plain).contains("5 update(s), 4 manual change(s) in 12 commit(s) read"),
        "{}",
        stderr(&plain)
    );
}

#[test]
fn ssh_verdicts_match_git_for_each_allowed_signers_variant() {
    let bot = SshSigningKey::new("ed25519", None);
    let stranger = SshSigningKey::new("ecdsa", None);
    let work = Work::new();
    work.seed();
    work.write(DEPLOYMENT, &deployment("6.1.0", 1));
    let good = work.commit(
        Who::Bot,
        &trailer("podinfo", "ghcr.io/s/podinfo", "6.0.0", "6.1.0"),
        Sign::Ssh(&bot),
    );
    work.write(DEPLOYMENT, &deployment("6.2.0", 1));
    let signed = work.commit(
        Who::Bot,
        &trailer("podinfo", "ghcr.io/s/podinfo", "6.1.0", "6.2.0"),
        Sign::Ssh(&bot),
    );
    let tampered = work.tamper(&signed, "6.2.0", "6.9.9");
    work.write(VALUES, &values("7.0.1"));
    let unknown = work.commit(
        Who::Bot,
        &trailer("redis", "registry.example.com/redis", "7.0.0", "7.0.1"),
        Sign::Ssh(&stranger),
    );
    work.write(DEPLOYMENT, &deployment("6.2.1", 1));
    let manual = work.commit(Who::Person, "Hotfix", Sign::No);

    let public = bot.public_key.clone();
    let variants = [
        (
            "plain",
            bot.allowed_signers().to_owned(),
            ["good", "bad", "unknown-key", "unsigned"],
        ),
        (
            "namespace file only",
            write_allowed(
                &work,
                "ns",
                &format!("bot@example.com namespaces=\"file\" {public}\n"),
            ),
            ["bad", "bad", "unknown-key", "unsigned"],
        ),
        (
            "expired before the commits",
            write_allowed(
                &work,
                "expired",
                &format!("bot@example.com valid-before=\"20000101\" {public}\n"),
            ),
            // The altered commit is Bad even then: git checks the signature
            // against the key it carries when no principal matches.
            ["unknown-key", "bad", "unknown-key", "unsigned"],
        ),
        (
            "valid from before the commits, wildcard principal, comments",
            write_allowed(
                &work,
                "window",
                &format!(
                    "# fleet signers\n\n\"*@example.com\" namespaces=\"git\",valid-after=\"20230101\" {public} bot\n"
                ),
            ),
            ["good", "bad", "unknown-key", "unsigned"],
        ),
    ];
    let repo = work.path.to_str().expect("utf-8 path");
    for (name, file, want) in variants {
        let output = crowsnest(&["--repo", repo, "--json", "--verify", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{name}: {}", stderr(&output));
        let listed = entries(&output);
        let by_commit: BTreeMap<&str, &str> = listed
            .iter()
            .map(|e| {
                (
                    e["commit"].as_str().unwrap(),
                    e["signature"]["status"].as_str().unwrap(),
                )
            })
            .collect();
        let got: Vec<&str> = [&good, &tampered, &unknown, &manual]
            .iter()
            .map(|c| by_commit.get(c.as_str()).copied().unwrap_or("not listed"))
            .collect();
        assert_eq!(got, want, "{name}");
        for (commit, status) in &by_commit {
            let code = git_ssh_signature_code(&work.path, commit, &file);
            assert_eq!(
                *status,
                status_for_ssh_code(&code),
                "{name}: {commit}: %G? is {code}"
            );
        }
    }
    let output = crowsnest(&[
        "--repo",
        repo,
        "--json",
        "--verify",
        bot.allowed_signers().to_str().unwrap(),
    ]);
    let listed = entries(&output);
    let first_good = listed
        .iter()
        .find(|e| e["commit"] == good.as_str())
        .unwrap();
    assert_eq!(first_good["signature"]["format"], "ssh");
    assert_eq!(first_good["signature"]["signer"], "bot@example.com");
    assert!(
        first_good["signature"]["key"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    assert!(bot.verify_commit(&work.path, &good).is_ok());
}

fn write_allowed(work: &Work, name: &str, text: &str) -> PathBuf {
    let path = work.dir.path().join(format!("allowed-{name}"));
    std::fs::write(&path, text).expect("write allowed signers");
    path
}

#[test]
fn filters_select_by_policy_image_and_time() {
    let work = Work::new();
    work.seed();
    work.write(DEPLOYMENT, &deployment("6.1.0", 1));
    let c1 = work.commit(
        Who::Bot,
        &trailer("podinfo", "ghcr.io/s/podinfo", "6.0.0", "6.1.0"),
        Sign::No,
    );
    work.write(VALUES, &values("7.0.1"));
    let c2 = work.commit(Who::Person, "Pin redis", Sign::No);
    work.write(VALUES, &values("7.1.0"));
    let c3 = work.commit(
        Who::Bot,
        &trailer("redis", "registry.example.com/redis", "7.0.1", "7.1.0"),
        Sign::No,
    );
    let repo = work.path.to_str().unwrap();
    let commits = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--repo", repo, "--json"];
        all.extend_from_slice(args);
        let output = crowsnest(&all);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        entries(&output)
            .iter()
            .map(|e| e["commit"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(commits(&[]), vec![c3.clone(), c2.clone(), c1.clone()]);
    assert_eq!(
        commits(&["--policy", "default:redis"]),
        vec![c3.clone(), c2.clone()]
    );
    assert_eq!(commits(&["--policy", "podinfo"]), vec![c1.clone()]);
    assert_eq!(
        commits(&["--image", "registry.example.com/redis"]),
        vec![c3.clone(), c2.clone()]
    );
    assert!(commits(&["--image", "docker.io/library/redis"]).is_empty());
    // c1, c2, c3 are at EPOCH + 2h, 3h, 4h (the seed is at + 1h).
    let t2 = format_time(EPOCH + 3 * 3600);
    let t3 = format_time(EPOCH + 4 * 3600);
    assert_eq!(commits(&["--since", &t2, "--until", &t3]), vec![c2.clone()]);
    assert_eq!(commits(&["--since", &t3]), vec![c3.clone()]);
    // A day alone as --until includes that day.
    assert_eq!(commits(&["--until", &t3[..10]]).len(), 3);
    assert!(commits(&["--since", "2030-01-01"]).is_empty());
    // CROWSNEST_* variables work as the flags do.
    let output = Command::new(env!("CARGO_BIN_EXE_crowsnest"))
        .args(["history", "--json"])
        .env("CROWSNEST_REPO", repo)
        .env("CROWSNEST_HISTORY_POLICY", "default:podinfo")
        .output()
        .expect("run crowsnest");
    assert_eq!(
        entries(&output)
            .iter()
            .map(|e| e["commit"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
        vec![c1]
    );
}

/// A seeded clone plus twelve rounds of two commits: a podinfo tag change
/// (every third by hand, the others by the bot with a trailer), then a
/// hand edit of the redis values file.
fn twelve_rounds() -> Work {
    let work = Work::new();
    work.seed();
    for n in 1..=12u32 {
        let tag = format!("6.{n}.0");
        if n % 3 == 0 {
            work.write(DEPLOYMENT, &deployment(&tag, n));
            work.commit(Who::Person, "By hand", Sign::No);
        } else {
            work.write(DEPLOYMENT, &deployment(&tag, 1));
            let old = format!("6.{}.0", n - 1);
            work.commit(
                Who::Bot,
                &trailer("podinfo", "ghcr.io/s/podinfo", &old, &tag),
                Sign::No,
            );
        }
        work.write(VALUES, &values(&format!("7.{n}.0")));
        work.commit(Who::Person, "Bump redis by hand", Sign::No);
    }
    work
}

/// The library's trail from `tip`, read by `workers` threads.
fn read_with_workers(
    repo: &git2::Repository,
    tip: git2::Oid,
    workers: usize,
) -> crowsnest::audit::history::Trail {
    let options = crowsnest::audit::history::Options {
        policies_dir: "policies".into(),
        scan_dir: String::new(),
        filter: Default::default(),
        workers: Some(workers),
    };
    crowsnest::audit::history::read(repo, tip, &options, None).expect("read")
}

#[test]
fn parallel_workers_list_exactly_what_one_reader_lists() {
    let work = twelve_rounds();
    let repo = crowsnest::audit::history::open(&work.path).expect("open");
    let tip = crowsnest::audit::history::resolve(&repo, "HEAD").expect("HEAD");
    let read = |workers: usize| read_with_workers(&repo, tip, workers);
    let one = read(1);
    assert_eq!(one.commits, 25);
    assert_eq!(one.entries.len(), 24, "{:#?}", one.entries);
    for workers in [2, 3, 7, 25, 100] {
        let many = read(workers);
        assert_eq!(many.entries, one.entries, "{workers} workers");
        assert_eq!((many.commits, many.diffed), (one.commits, one.diffed));
    }
}

/// A shallow clone is read as git reads it: the boundary commits as if
/// they had no parents, everything after them as in the full history.
#[test]
fn a_shallow_clone_lists_what_it_holds_and_says_it_is_shallow() {
    let work = twelve_rounds();
    let path = work.path.to_str().unwrap();
    let full = crowsnest(&["--repo", path, "--json"]);
    assert!(full.status.success(), "{}", stderr(&full));
    assert!(!stderr(&full).contains("shallow"), "{}", stderr(&full));

    let shallow = tempfile::tempdir().expect("a temporary folder");
    run(git()
        .args(["clone", "-q", "--depth", "5"])
        .arg(format!("file://{path}"))
        .arg(shallow.path()));
    let kept: Vec<String> = run(git()
        .arg("-C")
        .arg(shallow.path())
        .args(["rev-list", "HEAD"]))
    .lines()
    .map(str::to_owned)
    .collect();
    assert_eq!(kept.len(), 5);
    let output = crowsnest(&["--repo", shallow.path().to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("shallow clone"),
        "{}",
        stderr(&output)
    );
    // The boundary commit (a hand edit of the values file) has no parent
    // to diff against; the four after it are listed as in the full clone.
    let expected: Vec<Value> = entries(&full)
        .into_iter()
        .filter(|e| {
            kept[..4]
                .iter()
                .any(|id| id == e["commit"].as_str().unwrap())
        })
        .collect();
    assert_eq!(expected.len(), 4, "{expected:#?}");
    assert_eq!(entries(&output), expected);
}

/// A fast-import stream of `commits` commits after a seed: every third a
/// bot update with a trailer, the others hand edits of the marker's tag
/// or of the targeted values file (each a manual change). Returns the
/// stream and how many updates and manual changes it holds.
fn long_history(commits: u32) -> (String, usize, usize) {
    fn file(path: &str, text: &str) -> String {
        format!("M 100644 inline {path}\ndata {}\n{text}\n", text.len())
    }
    fn commit(n: u32, who: &str, message: &str, files: &[String]) -> String {
        let time = EPOCH + i64::from(n) * 3600;
        format!(
            "commit refs/heads/main\nauthor {who} {time} +0000\ncommitter {who} {time} +0000\n\
             data {}\n{message}\n{}\n",
            message.len(),
            files.concat()
        )
    }
    const BOT: &str = "crowsnest <crowsnest@localhost>";
    const ADA: &str = "Ada <ada@example.com>";
    let mut stream = commit(
        0,
        ADA,
        "Initial fleet",
        &[
            file("policies/images.yaml", POLICIES),
            file(DEPLOYMENT, &deployment("6.0.0", 1)),
            file(VALUES, &values("7.0.0")),
        ],
    );
    let (mut updates, mut manual) = (0, 0);
    let (mut podinfo, mut redis) = (0u32, 0u32);
    for n in 1..=commits {
        let (old, new) = (format!("6.{podinfo}.0"), format!("6.{}.0", podinfo + 1));
        stream += &match n % 3 {
            0 => {
                updates += 1;
                podinfo += 1;
                let message = trailer("podinfo", "ghcr.io/s/podinfo", &old, &new);
                commit(n, BOT, &message, &[file(DEPLOYMENT, &deployment(&new, 1))])
            }
            1 => {
                manual += 1;
                podinfo += 1;
                commit(n, ADA, "By hand", &[file(DEPLOYMENT, &deployment(&new, 1))])
            }
            _ => {
                manual += 1;
                redis += 1;
                let tag = format!("7.{redis}.0");
                commit(n, ADA, "Bump redis by hand", &[file(VALUES, &values(&tag))])
            }
        };
    }
    (stream, updates, manual)
}

/// More commits than one batch (2,000), so the walk hands batches to
/// worker threads while it goes on; read from `git fast-import`'s pack,
/// whose delta chains run from each version back to the one before.
#[test]
fn parallel_workers_over_many_batches_list_what_one_reader_lists() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    run(git()
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(dir.path()));
    let (stream, updates, manual) = long_history(7_000);
    let mut import = git()
        .arg("-C")
        .arg(dir.path())
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    std::io::Write::write_all(&mut import.stdin.take().expect("stdin"), stream.as_bytes())
        .expect("git fast-import reads the stream");
    assert!(import.wait().expect("git fast-import ends").success());
    let repo = crowsnest::audit::history::open(dir.path()).expect("open");
    let tip = crowsnest::audit::history::resolve(&repo, "main").expect("main");
    let read = |workers: usize| read_with_workers(&repo, tip, workers);
    let one = read(1);
    assert_eq!(one.commits, 7_001);
    let count = |kind: &str| {
        one.entries
            .iter()
            .filter(|e| serde_json::to_value(e).unwrap()["kind"] == kind)
            .count()
    };
    assert_eq!((count("update"), count("manual")), (updates, manual));
    assert!(
        one.entries.windows(2).all(|w| w[0].time >= w[1].time),
        "newest first"
    );
    for workers in [2, 3] {
        let many = read(workers);
        assert_eq!(many.entries, one.entries, "{workers} workers");
        assert_eq!((many.commits, many.diffed), (one.commits, one.diffed));
    }
}

#[test]
fn config_reads_the_daemons_clone_with_its_policy_folder_and_path() {
    let policies = POLICIES.replace("apps/redis/values.yaml", "clusters/prod/redis.yaml");
    let remote = Remote::new(&[
        ("deploy/policies/images.yaml", &policies),
        ("clusters/prod/podinfo.yaml", &deployment("6.0.0", 1)),
        ("clusters/prod/redis.yaml", &values("7.0.0")),
        ("elsewhere/podinfo.yaml", &deployment("6.0.0", 1)),
    ]);
    let edit = remote.commit_files(
        "main",
        "Hand edits",
        &[
            ("clusters/prod/podinfo.yaml", &deployment("6.0.1", 1)),
            ("clusters/prod/redis.yaml", &values("7.0.1")),
            ("elsewhere/podinfo.yaml", &deployment("6.0.9", 1)),
        ],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let config_file = dir.path().join("crowsnest.yaml");
    std::fs::write(
        &config_file,
        format!(
            "git:\n  url: {}\n  path: clusters\n  policies: deploy/policies\nstateDir: {}\n",
            remote.url(),
            state.display()
        ),
    )
    .expect("write config");
    let config_path = config_file.to_str().unwrap();

    let missing = crowsnest(&["--config", config_path]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("crowsnest once --config"),
        "{}",
        stderr(&missing)
    );

    let config = crowsnest::config::Config::load(&config_file).expect("valid config");
    let entry = &config.repositories[0];
    crowsnest::git::Repo::open(&entry.git, &entry.clone_dir).expect("clone");
    let output = crowsnest(&["--config", config_path, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let found: Vec<(String, String, String, String)> = entries(&output)
        .iter()
        .map(|e| {
            assert_eq!(e["commit"], edit.as_str());
            assert_eq!(e["author"]["name"], "Someone Else");
            (
                e["file"].as_str().unwrap().to_owned(),
                e["field"].as_str().unwrap().to_owned(),
                e["from"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let own = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    assert_eq!(
        found,
        vec![
            own(
                "clusters/prod/podinfo.yaml",
                "image",
                "ghcr.io/s/podinfo:6.0.0",
                "ghcr.io/s/podinfo:6.0.1"
            ),
            own("clusters/prod/redis.yaml", "tag", "7.0.0", "7.0.1"),
        ],
        "only git.path is scanned, with targets from git.policies"
    );

    // The same remote as a plain clone: every folder is scanned and
    // policies are read from policies/, which it does not have.
    let output = crowsnest(&["--repo", remote.path.to_str().unwrap(), "--json"]);
    let files: Vec<String> = entries(&output)
        .iter()
        .map(|e| e["file"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        files,
        vec!["clusters/prod/podinfo.yaml", "elsewhere/podinfo.yaml"]
    );
}

#[test]
fn usage_errors_exit_2_and_unreadable_repositories_exit_1() {
    let work = Work::new();
    work.seed();
    let repo = work.path.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--since", "last week"], "--since"),
        (&["--until", "2024-13-01"], "--until"),
        (&["--policy", "a:b:c"], "is not a policy"),
        (
            &["--verify", "/nonexistent/keys"],
            "cannot read the keys file",
        ),
        (&["--rev", "no-such-branch"], "names no commit"),
    ];
    for (args, want) in cases {
        let mut all = vec!["--repo", repo];
        all.extend_from_slice(args);
        let output = crowsnest(&all);
        let code = if want == "names no commit" { 1 } else { 2 };
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(want),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let broken_signers = work.dir.path().join("allowed");
    std::fs::write(&broken_signers, "# ok\nbot@example.com ssh-ed25519 !!!\n").unwrap();
    let output = crowsnest(&["--repo", repo, "--verify", broken_signers.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(":2: not an SSH public key"),
        "{}",
        stderr(&output)
    );

    let not_a_repo = tempfile::tempdir().unwrap();
    let output = crowsnest(&["--repo", not_a_repo.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot open the repository"),
        "{}",
        stderr(&output)
    );
}
