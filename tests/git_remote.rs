//! crowsnest's git write-back against real remotes: `file://` bare
//! repositories, smart HTTP (nginx + git http-backend) and sshd.

mod support;

use support::git::Remote;
use support::signing::{GpgKey, GpgSpec, SshSigningKey, is_unsigned};

#[test]
fn support_seeds_a_remote_and_reads_it_back() {
    let remote = Remote::new(&[("apps/a.yaml", "a: 1\n"), ("README.md", "hi\n")]);
    assert_eq!(remote.commit_count("main"), 1);
    assert_eq!(remote.file("main", "apps/a.yaml").unwrap(), b"a: 1\n");
    let tip = remote.commit_files("main", "Change a", &[("apps/a.yaml", "a: 2\n")]);
    assert_eq!(remote.tip("main"), tip);
    assert_eq!(remote.commit_count("main"), 2);
    assert_eq!(remote.changed_files(&tip), vec!["apps/a.yaml"]);
    assert!(
        remote.diff(&tip).contains("-a: 1\n+a: 2\n"),
        "{}",
        remote.diff(&tip)
    );
    assert_eq!(remote.log("main")[0].message, "Change a\n");
    assert!(is_unsigned(&remote.path, &tip));
}

#[test]
fn support_gpg_verification_accepts_git_signatures_and_refuses_unsigned_commits() {
    let key = GpgKey::new(GpgSpec {
        algorithm: "ed25519",
        passphrase: None,
        signing_subkey: false,
    });
    let remote = Remote::new(&[("a", "1\n")]);
    assert!(key.verify_commit(&remote.path, "main").is_err());
    let signed = key.git_signed_commit(&remote.path, "main");
    let status = key.verify_commit(&remote.path, &signed).unwrap();
    assert!(status.contains("GOODSIG"), "{status}");
    let secret = std::fs::read_to_string(&key.key_file).unwrap();
    assert!(secret.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"));
}

#[test]
fn support_ssh_verification_accepts_git_signatures_and_refuses_unsigned_commits() {
    let key = SshSigningKey::new("ed25519", None);
    let remote = Remote::new(&[("a", "1\n")]);
    assert!(key.verify_commit(&remote.path, "main").is_err());
    let signed = key.git_signed_commit(&remote.path, "main");
    let status = key.verify_commit(&remote.path, &signed).unwrap();
    assert!(status.contains("Good \"git\" signature"), "{status}");
    assert!(key.public_key.starts_with("ssh-ed25519 "));
}

// ---------------------------------------------------------------------------
// crowsnest's Repo against file:// remotes

use std::path::Path;

use crowsnest::config::{Author, GitAuth, GitConfig, Signing, SigningFormat};
use std::time::Duration;

use crowsnest::git::{GitError, PushOutcome, Repo, Retry, Stats, Update, WriteBack};

fn config(url: &str) -> GitConfig {
    GitConfig {
        url: url.to_owned(),
        branch: "main".into(),
        push_branch: "main".into(),
        path: String::new(),
        policies: "policies".into(),
        auth: GitAuth::default(),
        author: Author {
            name: "Crowsnest Bot".into(),
            email: "bot@example.com".into(),
        },
        signing: None,
        message_template: None,
    }
}

fn state() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("crowsnest-state-")
        .tempdir()
        .unwrap()
}

fn edit(path: &str, text: &str) -> (String, Vec<u8>) {
    (path.to_owned(), text.as_bytes().to_vec())
}

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\n# keep me\nspec:\n  image: ghcr.io/s/podinfo:6.1.0 # {\"$imagepolicy\": \"default:podinfo\"}\n";

fn fleet() -> Remote {
    let remote = Remote::new(&[
        ("apps/podinfo/deploy.yaml", DEPLOY),
        ("apps/podinfo/values.yaml", "tag: 6.1.0\n"),
        ("README.md", "fleet\n"),
        ("policies/podinfo.yaml", "kind: ImagePolicy\n"),
    ]);
    remote.change("main", "Add a symlink and a script", |dir| {
        std::os::unix::fs::symlink("deploy.yaml", dir.join("apps/podinfo/link.yaml")).unwrap();
        support::git::write(dir, "apps/run.sh", b"#!/bin/sh\necho 1\n");
        support::git::set_mode(&dir.join("apps/run.sh"), 0o755);
    });
    remote
}

#[test]
fn one_commit_holds_every_edit_and_nothing_else_changes() {
    let remote = fleet();
    let state = state();
    let before = remote.tip("main");
    let mut repo = Repo::open(&config(&remote.url()), state.path()).unwrap();
    let base = repo.fetch().unwrap();
    assert_eq!(base.commit.to_string(), before);
    let files = repo.files(&base, "").unwrap();
    let deploy = files
        .iter()
        .find(|f| f.path == "apps/podinfo/deploy.yaml")
        .unwrap();
    assert_eq!(repo.read(deploy).unwrap(), DEPLOY.as_bytes());
    let new_deploy = DEPLOY.replace("6.1.0", "6.2.0");
    let commit = repo
        .commit(
            &base,
            &[
                edit("apps/podinfo/deploy.yaml", &new_deploy),
                edit("apps/podinfo/values.yaml", "tag: 6.2.0\n"),
                edit("apps/run.sh", "#!/bin/sh\necho 2\n"),
            ],
            "Update podinfo\n\nImage-Update: default:podinfo a -> b\n",
        )
        .unwrap();
    // Not on the remote until pushed.
    assert_eq!(remote.tip("main"), before);
    assert_eq!(repo.push(&base, &commit).unwrap(), PushOutcome::Pushed);

    assert_eq!(remote.tip("main"), commit.to_string());
    assert_eq!(remote.commit_count("main"), 3);
    let logged = &remote.log("main")[0];
    assert_eq!(logged.parents, vec![before.clone()]);
    assert_eq!(
        (logged.author_name.as_str(), logged.author_email.as_str()),
        ("Crowsnest Bot", "bot@example.com")
    );
    assert_eq!(
        (
            logged.committer_name.as_str(),
            logged.committer_email.as_str()
        ),
        ("Crowsnest Bot", "bot@example.com")
    );
    assert_eq!(
        logged.message,
        "Update podinfo\n\nImage-Update: default:podinfo a -> b\n"
    );
    assert_eq!(
        remote.changed_files(&commit.to_string()),
        vec![
            "apps/podinfo/deploy.yaml",
            "apps/podinfo/values.yaml",
            "apps/run.sh"
        ]
    );
    let after = remote.tree(&commit.to_string());
    let old = remote.tree(&before);
    assert_eq!(after["apps/podinfo/deploy.yaml"].1, new_deploy.as_bytes());
    // Modes survive: the script stays executable, the symlink a symlink.
    assert_eq!(after["apps/run.sh"].0, "100755");
    assert_eq!(
        after["apps/podinfo/link.yaml"],
        old["apps/podinfo/link.yaml"]
    );
    assert_eq!(after["README.md"], old["README.md"]);
    assert!(support::signing::is_unsigned(&remote.path, "main"));
    remote.fsck();
}

#[test]
fn files_lists_a_subtree_flags_symlinks_and_never_reads_through_them() {
    let remote = fleet();
    let state = state();
    let mut repo = Repo::open(&config(&remote.url()), state.path()).unwrap();
    let base = repo.fetch().unwrap();
    let files = repo.files(&base, "apps/podinfo").unwrap();
    let listed: Vec<(&str, bool)> = files
        .iter()
        .map(|f| (f.path.as_str(), f.is_symlink))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("apps/podinfo/deploy.yaml", false),
            ("apps/podinfo/link.yaml", true),
            ("apps/podinfo/values.yaml", false),
        ]
    );
    let link = &files[1];
    assert!(matches!(repo.read(link), Err(GitError::NotWritable { .. })));
    let all = repo.files(&base, "").unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.iter().any(|f| f.path == "apps/run.sh" && f.executable));
    for missing in ["nope", "README.md"] {
        let err = repo.files(&base, missing).unwrap_err();
        assert_eq!(err.kind(), "dir_not_found", "{err}");
    }
}

#[test]
fn edits_that_change_nothing_make_no_commit() {
    let remote = fleet();
    let state = state();
    let mut repo = Repo::open(&config(&remote.url()), state.path()).unwrap();
    let base = repo.fetch().unwrap();
    let same = [edit("apps/podinfo/values.yaml", "tag: 6.1.0\n")];
    assert!(repo.already_contains(&base, &same).unwrap());
    let err = repo.commit(&base, &same, "nothing").unwrap_err();
    assert_eq!(err.kind(), "nothing_to_commit", "{err}");
    assert!(
        !repo
            .already_contains(&base, &[edit("apps/podinfo/values.yaml", "tag: 7\n")])
            .unwrap()
    );
    assert_eq!(remote.commit_count("main"), 2);
}

#[test]
fn edits_to_symlinks_missing_files_or_paths_outside_the_tree_are_refused() {
    let remote = fleet();
    let state = state();
    let mut repo = Repo::open(&config(&remote.url()), state.path()).unwrap();
    let base = repo.fetch().unwrap();
    for (path, want) in [
        ("apps/podinfo/link.yaml", "symbolic link"),
        ("apps/podinfo/new.yaml", "does not exist"),
        ("apps/podinfo", "not a regular file"),
        ("../outside.yaml", "not a normalized path"),
        ("/etc/passwd", "not a relative file path"),
        (".git/config", "inside .git"),
    ] {
        let err = repo
            .commit(&base, &[edit(path, "x: 1\n")], "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{path}: {err}");
    }
    assert_eq!(remote.commit_count("main"), 2);
}

/// Makes one commit and pushes it; returns its id.
fn commit_one(repo: &mut Repo, path: &str, text: &str) -> String {
    let base = repo.fetch().unwrap();
    let commit = repo.commit(&base, &[edit(path, text)], "Update\n").unwrap();
    assert_eq!(repo.push(&base, &commit).unwrap(), PushOutcome::Pushed);
    commit.to_string()
}

fn signing(format: SigningFormat, key_file: &Path, passphrase_file: Option<&Path>) -> Signing {
    Signing {
        format,
        key_file: key_file.to_owned(),
        passphrase_file: passphrase_file.map(Path::to_owned),
    }
}

#[test]
fn openpgp_signatures_verify_with_git_for_ed25519_rsa_passphrases_and_subkeys() {
    let specs = [
        ("ed25519", None, false),
        ("rsa3072", None, false),
        ("ed25519", Some("correct horse"), false),
        ("ed25519", None, true),
        ("rsa2048", Some("s3cret"), true),
    ];
    for (algorithm, passphrase, signing_subkey) in specs {
        let key = GpgKey::new(GpgSpec {
            algorithm,
            passphrase,
            signing_subkey,
        });
        let remote = fleet();
        let state = state();
        let mut config = config(&remote.url());
        config.signing = Some(signing(
            SigningFormat::OpenPgp,
            &key.key_file,
            key.passphrase_file.as_deref(),
        ));
        let mut repo = Repo::open(&config, state.path()).unwrap();
        let id = commit_one(&mut repo, "apps/podinfo/values.yaml", "tag: 6.2.0\n");
        let status = key.verify_commit(&remote.path, &id).unwrap_or_else(|e| {
            panic!(
                "{algorithm} {passphrase:?} subkey={signing_subkey}: git refused the signature:\n{e}\n{}",
                remote.raw_commit(&id)
            )
        });
        assert!(status.contains("GOODSIG"), "{status}");
        // `VALIDSIG <signing key> ... <primary key>`: a separate signing
        // subkey is the one that signs, as gpg would pick it.
        let validsig: Vec<&str> = status
            .lines()
            .find_map(|l| l.strip_prefix("[GNUPG:] VALIDSIG "))
            .unwrap_or_else(|| panic!("{status}"))
            .split_whitespace()
            .collect();
        assert_eq!(validsig.last(), Some(&key.fingerprint.as_str()), "{status}");
        assert_eq!(
            validsig[0] != key.fingerprint,
            signing_subkey,
            "{algorithm} subkey={signing_subkey}: {status}"
        );
        // git's own header layout: no blank continuation line at the end.
        let raw = remote.raw_commit(&id);
        assert!(raw.contains("\n -----END PGP SIGNATURE-----\n\n"), "{raw}");
        assert!(!raw.contains("-----END PGP SIGNATURE-----\n \n"), "{raw}");
        remote.fsck();
    }
}

#[test]
fn ssh_signatures_verify_with_git_for_ed25519_and_ecdsa() {
    let made = [
        ("ed25519", None),
        ("ecdsa", None),
        ("ecdsa-384", None),
        ("ecdsa-521", None),
        ("ed25519", Some("pass phrase")),
    ]
    .map(|(kind, passphrase)| (kind.to_owned(), SshSigningKey::new(kind, passphrase)));
    // A scalar with a leading zero byte is one byte short in OpenSSH's file.
    let short = [
        (256, None),
        (384, None),
        (521, None),
        (256, Some("pass phrase")),
    ]
    .map(|(bits, passphrase)| {
        let kind = format!("ecdsa-{bits} with a short scalar, passphrase {passphrase:?}");
        (
            kind,
            SshSigningKey::ecdsa_with_short_scalar(bits, passphrase),
        )
    });
    for (kind, key) in made.into_iter().chain(short) {
        let remote = fleet();
        let state = state();
        let mut config = config(&remote.url());
        config.signing = Some(signing(
            SigningFormat::Ssh,
            &key.key_file,
            key.passphrase_file.as_deref(),
        ));
        let mut repo = Repo::open(&config, state.path()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let id = commit_one(&mut repo, "apps/podinfo/values.yaml", "tag: 6.2.0\n");
        let status = key.verify_commit(&remote.path, &id).unwrap_or_else(|e| {
            panic!(
                "{kind}: git refused the signature:\n{e}\n{}",
                remote.raw_commit(&id)
            )
        });
        assert!(status.contains("Good \"git\" signature"), "{status}");
        remote.fsck();
    }
}

#[test]
fn a_wrong_or_missing_signing_passphrase_fails_at_open_without_leaking_it() {
    let key = GpgKey::new(GpgSpec {
        algorithm: "ed25519",
        passphrase: Some("right-one"),
        signing_subkey: false,
    });
    let remote = fleet();
    let state = state();
    let wrong = key.dir().join("wrong");
    std::fs::write(&wrong, "wrong-one\n").unwrap();
    let mut config = config(&remote.url());
    config.signing = Some(signing(SigningFormat::OpenPgp, &key.key_file, Some(&wrong)));
    let err = Repo::open(&config, state.path()).unwrap_err();
    assert_eq!(err.kind(), "signing");
    let text = err.to_string();
    assert!(text.contains("passphraseFile"), "{text}");
    assert!(!text.contains("wrong-one"), "{text}");
    config.signing = Some(signing(SigningFormat::OpenPgp, &key.key_file, None));
    let text = Repo::open(&config, state.path()).unwrap_err().to_string();
    assert!(text.contains("protected by a passphrase"), "{text}");

    let ssh = SshSigningKey::new("ed25519", Some("right-one"));
    config.signing = Some(signing(SigningFormat::Ssh, &ssh.key_file, Some(&wrong)));
    let text = Repo::open(&config, state.path()).unwrap_err().to_string();
    assert!(text.contains("cannot decrypt"), "{text}");
    assert!(!text.contains("wrong-one"), "{text}");
}

#[test]
fn a_push_after_someone_else_pushed_is_non_fast_forward_and_changes_nothing() {
    let remote = fleet();
    let state = state();
    let mut repo = Repo::open(&config(&remote.url()), state.path()).unwrap();
    let base = repo.fetch().unwrap();
    let commit = repo
        .commit(
            &base,
            &[edit("apps/podinfo/values.yaml", "tag: 6.2.0\n")],
            "Ours\n",
        )
        .unwrap();
    let theirs = remote.commit_files("main", "Theirs", &[("README.md", "changed\n")]);
    assert_eq!(
        repo.push(&base, &commit).unwrap(),
        PushOutcome::NonFastForward
    );
    assert_eq!(remote.tip("main"), theirs);

    // Fetch again: the new base is their commit, and ours goes on top.
    let base = repo.fetch().unwrap();
    assert_eq!(base.commit.to_string(), theirs);
    let commit = repo
        .commit(
            &base,
            &[edit("apps/podinfo/values.yaml", "tag: 6.2.0\n")],
            "Ours\n",
        )
        .unwrap();
    assert_eq!(repo.push(&base, &commit).unwrap(), PushOutcome::Pushed);
    assert_eq!(remote.log("main")[0].parents, vec![theirs]);
    assert_eq!(remote.file("main", "README.md").unwrap(), b"changed\n");
}

#[test]
fn write_back_replans_on_the_new_tip_after_losing_a_race() {
    let remote = fleet();
    let state = state();
    let mut repo = Repo::open(&config(&remote.url()), state.path()).unwrap();
    let mut plans = Vec::new();
    let retry = Retry {
        attempts: 3,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    };
    let result = repo
        .write_back(&retry, |repo, base| -> Result<_, GitError> {
            plans.push(base.commit.to_string());
            if plans.len() == 1 {
                // Someone pushes between our fetch and our push.
                remote.commit_files(
                    "main",
                    "Theirs",
                    &[("apps/podinfo/values.yaml", "tag: 6.1.0\nreplicas: 2\n")],
                );
            }
            let old = repo.read_path(base, "apps/podinfo/values.yaml")?.unwrap();
            let new = String::from_utf8(old).unwrap().replace("6.1.0", "6.2.0");
            Ok(Some(Update {
                edits: vec![edit("apps/podinfo/values.yaml", &new)],
                message: "Update podinfo\n".into(),
            }))
        })
        .unwrap();
    let WriteBack::Pushed {
        commit, attempts, ..
    } = result
    else {
        panic!("{result:?}")
    };
    assert_eq!(attempts, 2);
    assert_eq!(plans.len(), 2);
    assert_ne!(plans[0], plans[1]);
    assert_eq!(remote.tip("main"), commit.to_string());
    // Their change and ours are both there: nothing was lost.
    assert_eq!(
        remote.file("main", "apps/podinfo/values.yaml").unwrap(),
        b"tag: 6.2.0\nreplicas: 2\n"
    );
    assert_eq!(remote.commit_count("main"), 4);

    // The same plan again finds its change already on the branch.
    let again = repo
        .write_back(&retry, |_, _| -> Result<_, GitError> {
            Ok(Some(Update {
                edits: vec![edit(
                    "apps/podinfo/values.yaml",
                    "tag: 6.2.0\nreplicas: 2\n",
                )],
                message: "again\n".into(),
            }))
        })
        .unwrap();
    assert!(matches!(again, WriteBack::Unchanged { .. }), "{again:?}");
    assert_eq!(remote.commit_count("main"), 4);
}

#[test]
fn a_restart_reuses_the_clone_instead_of_cloning_again() {
    let remote = fleet();
    let state = state();
    let config = config(&remote.url());
    let clone = state.path().join("repo.git");
    {
        let mut repo = Repo::open(&config, state.path()).unwrap();
        assert_eq!(repo.stats().clones, 1);
        commit_one(&mut repo, "apps/podinfo/values.yaml", "tag: 6.2.0\n");
    }
    std::fs::write(clone.join("crowsnest-test-marker"), "still here").unwrap();
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&clone).unwrap());
    remote.commit_files("main", "Theirs", &[("README.md", "new\n")]);

    let mut repo = Repo::open(&config, state.path()).unwrap();
    assert_eq!(repo.stats().clones, 0, "reopening must not clone");
    let base = repo.fetch().unwrap();
    assert_eq!(
        repo.stats(),
        Stats {
            clones: 0,
            fetches: 1
        }
    );
    assert_eq!(base.commit.to_string(), remote.tip("main"));
    assert!(clone.join("crowsnest-test-marker").exists());
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&clone).unwrap()),
        inode
    );
    let id = commit_one(&mut repo, "apps/podinfo/values.yaml", "tag: 6.3.0\n");
    assert_eq!(remote.tip("main"), id);
}

// ---------------------------------------------------------------------------
// pushBranch ≠ branch: the review workflow

const REVIEW: &str = "crowsnest/updates";

fn review_config(url: &str) -> GitConfig {
    let mut config = config(url);
    config.push_branch = REVIEW.into();
    config
}

/// One write_back that sets values.yaml's tag; the Base it built on.
fn set_tag(repo: &mut Repo, tag: &str) -> WriteBack {
    let text = format!("tag: {tag}\n");
    repo.write_back(&Retry::default(), |_, _| -> Result<_, GitError> {
        Ok(Some(Update {
            edits: vec![edit("apps/podinfo/values.yaml", &text)],
            message: format!("Update to {tag}\n"),
        }))
    })
    .unwrap()
}

fn pushed(outcome: &WriteBack) -> (String, crowsnest::git::Base) {
    match outcome {
        WriteBack::Pushed { commit, base, .. } => (commit.to_string(), base.clone()),
        other => panic!("expected a push, got {other:?}"),
    }
}

#[test]
fn the_push_branch_is_created_from_branch_then_extended_while_branch_stays() {
    let remote = fleet();
    let main = remote.tip("main");
    let state = state();
    let mut repo = Repo::open(&review_config(&remote.url()), state.path()).unwrap();

    let (first, base) = pushed(&set_tag(&mut repo, "6.2.0"));
    assert!(base.creates_push_branch());
    assert_eq!(base.commit.to_string(), main);
    assert_eq!(remote.tip(REVIEW), first);
    assert_eq!(remote.log(REVIEW)[0].parents, vec![main.clone()]);

    let (second, base) = pushed(&set_tag(&mut repo, "6.3.0"));
    assert!(!base.creates_push_branch() && !base.rebuilds_push_branch());
    assert_eq!(base.commit.to_string(), first, "built on the push branch");
    assert_eq!(remote.log(REVIEW)[0].parents, vec![first]);
    assert_eq!(remote.tip(REVIEW), second);
    assert_eq!(remote.tip("main"), main, "branch is never written");
}

#[test]
fn the_push_branch_is_rebuilt_from_branch_once_branch_moved_past_it() {
    let remote = fleet();
    let state = state();
    let mut repo = Repo::open(&review_config(&remote.url()), state.path()).unwrap();
    let (first, _) = pushed(&set_tag(&mut repo, "6.2.0"));

    // The pull request is merged, then someone else commits on main.
    let merge = remote.merge("main", REVIEW);
    assert!(remote.is_ancestor(&first, &merge));
    let later = remote.commit_files("main", "Unrelated", &[("README.md", "more\n")]);

    let (rebuilt, base) = pushed(&set_tag(&mut repo, "6.3.0"));
    assert!(base.rebuilds_push_branch());
    assert_eq!(base.commit.to_string(), later);
    assert_eq!(remote.tip(REVIEW), rebuilt);
    assert_eq!(remote.log(REVIEW)[0].parents, vec![later.clone()]);
    assert_eq!(remote.commit_count(REVIEW), remote.commit_count("main") + 1);
    assert_eq!(remote.tip("main"), later, "branch is never written");
    assert_eq!(
        remote.file(REVIEW, "README.md").unwrap(),
        b"more\n",
        "the rebuilt branch holds what branch has"
    );

    // Nothing to change on the rebuilt branch: no commit.
    let again = set_tag(&mut repo, "6.3.0");
    assert!(matches!(again, WriteBack::Unchanged { .. }), "{again:?}");
    assert_eq!(remote.tip(REVIEW), rebuilt);
}

#[test]
fn a_rebuild_never_overwrites_a_push_branch_that_moved_since_the_fetch() {
    let remote = fleet();
    let state = state();
    let mut repo = Repo::open(&review_config(&remote.url()), state.path()).unwrap();
    pushed(&set_tag(&mut repo, "6.2.0"));
    remote.commit_files("main", "Unrelated", &[("README.md", "more\n")]);

    let base = repo.fetch().unwrap();
    assert!(base.rebuilds_push_branch());
    let commit = repo
        .commit(
            &base,
            &[edit("apps/podinfo/values.yaml", "tag: 6.3.0\n")],
            "m\n",
        )
        .unwrap();
    // A reviewer pushes a fix-up to the review branch meanwhile.
    let fixup = remote.commit_files(REVIEW, "Reviewer fix-up", &[("README.md", "fix\n")]);
    assert_eq!(
        repo.push(&base, &commit).unwrap(),
        PushOutcome::NonFastForward,
        "the lease on the push branch must hold"
    );
    assert_eq!(remote.tip(REVIEW), fixup);
}

#[test]
fn a_deleted_push_branch_is_created_again() {
    let remote = fleet();
    let state = state();
    let mut repo = Repo::open(&review_config(&remote.url()), state.path()).unwrap();
    pushed(&set_tag(&mut repo, "6.2.0"));
    remote.merge("main", REVIEW);
    remote.delete_branch(REVIEW);

    let (again, base) = pushed(&set_tag(&mut repo, "6.3.0"));
    assert!(base.creates_push_branch());
    assert_eq!(base.commit.to_string(), remote.tip("main"));
    assert_eq!(remote.tip(REVIEW), again);
}

// ---------------------------------------------------------------------------
// The clone: replaced when the URL changes or it is corrupt

#[test]
fn a_changed_url_replaces_the_clone() {
    let first = fleet();
    let second = fleet();
    let state = state();
    let mut repo = Repo::open(&config(&first.url()), state.path()).unwrap();
    repo.fetch().unwrap();
    drop(repo);
    let mut repo = Repo::open(&config(&second.url()), state.path()).unwrap();
    assert_eq!(repo.stats().clones, 1, "a new URL means a new clone");
    let id = commit_one(&mut repo, "README.md", "second\n");
    assert_eq!(second.tip("main"), id);
    assert_eq!(first.commit_count("main"), 2, "the old remote is untouched");
}

#[test]
fn a_corrupt_clone_is_detected_and_replaced() {
    let remote = fleet();
    let state = state();
    let config = config(&remote.url());
    let clone = state.path().join("repo.git");
    let mut repo = Repo::open(&config, state.path()).unwrap();
    repo.fetch().unwrap();
    drop(repo);

    // Objects lost (disk trouble, an interrupted copy): every pack and
    // loose object removed.
    for entry in walkdir::WalkDir::new(clone.join("objects")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let mut repo = Repo::open(&config, state.path()).unwrap();
    assert_eq!(repo.stats().clones, 1);
    commit_one(&mut repo, "README.md", "after objects were lost\n");
    drop(repo);

    // A lock file left by a crash mid-fetch.
    std::fs::write(clone.join("refs/remotes/origin/main.lock"), "").unwrap();
    let mut repo = Repo::open(&config, state.path()).unwrap();
    assert_eq!(
        repo.stats().clones,
        0,
        "a stale lock is removed, not a reason to re-clone"
    );
    commit_one(&mut repo, "README.md", "after a stale lock\n");
    drop(repo);

    // Garbage where the repository should be.
    std::fs::write(clone.join("HEAD"), "garbage").unwrap();
    std::fs::remove_file(clone.join("config")).unwrap();
    let mut repo = Repo::open(&config, state.path()).unwrap();
    assert_eq!(repo.stats().clones, 1);
    commit_one(&mut repo, "README.md", "after garbage\n");
    // Interrupted clones are cleaned up.
    std::fs::create_dir(state.path().join("repo.git.tmp-123-456")).unwrap();
    drop(repo);
    Repo::open(&config, state.path()).unwrap();
    assert!(!state.path().join("repo.git.tmp-123-456").exists());
    remote.fsck();
}

// ---------------------------------------------------------------------------
// SSH: Debian's sshd on a loopback port

use support::sshd::Sshd;

fn ssh_config(sshd: &Sshd, remote: &Remote, known_hosts: &Path) -> GitConfig {
    let mut config = config(&sshd.url(&remote.path));
    config.auth = GitAuth {
        ssh_key_file: Some(sshd.client_key.clone()),
        ssh_passphrase_file: sshd.client_passphrase_file.clone(),
        known_hosts_file: Some(known_hosts.to_owned()),
        ..GitAuth::default()
    };
    config
}

#[test]
fn ssh_remote_clones_fetches_and_pushes_a_signed_commit() {
    let sshd = Sshd::start(None);
    let remote = fleet();
    let known = sshd.write_known_hosts(
        "known_hosts",
        &format!(
            "# from ssh-keyscan\ngit.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMD47rIiPzoacoADV1pnGTmU4onIAUMvLSvmu0or4h+P\n{}\n",
            sshd.known_hosts_line()
        ),
    );
    let key = SshSigningKey::new("ed25519", None);
    let mut config = ssh_config(&sshd, &remote, &known);
    config.signing = Some(signing(SigningFormat::Ssh, &key.key_file, None));
    let state = state();
    let mut repo =
        Repo::open(&config, state.path()).unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    let id = commit_one(&mut repo, "apps/podinfo/values.yaml", "tag: 6.2.0\n");
    assert_eq!(remote.tip("main"), id);
    key.verify_commit(&remote.path, &id).unwrap();
    // A second pass over the same connection setup: fetch sees our commit.
    let base = repo.fetch().unwrap();
    assert_eq!(base.commit.to_string(), id);
    remote.fsck();
}

#[test]
fn ssh_key_with_a_passphrase_and_a_hashed_known_hosts_entry() {
    let sshd = Sshd::start(Some("client pass"));
    let remote = fleet();
    // `ssh-keygen -H` turns names into |1|salt|hash entries.
    let known = sshd.write_known_hosts("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    support::process::run(
        std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&known),
    );
    let hashed = std::fs::read_to_string(&known).unwrap();
    assert!(hashed.starts_with("|1|"), "{hashed}");
    let state = state();
    let mut repo = Repo::open(&ssh_config(&sshd, &remote, &known), state.path())
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    let id = commit_one(&mut repo, "README.md", "over ssh\n");
    assert_eq!(remote.tip("main"), id);
    // A wrong or missing passphrase is named at startup, not left to
    // libssh2's "Unsupported private key format" at the first fetch.
    let wrong = sshd.dir().join("wrong-passphrase");
    std::fs::write(&wrong, "not the pass\n").unwrap();
    for (passphrase_file, expected) in [
        (Some(wrong), "does not decrypt the SSH key"),
        (
            None,
            "is protected by a passphrase; set git.auth.sshPassphraseFile",
        ),
    ] {
        let mut config = ssh_config(&sshd, &remote, &known);
        config.auth.ssh_passphrase_file = passphrase_file;
        let Err(err) = Repo::open(&config, state.path()) else {
            panic!("{expected}: the key was accepted");
        };
        let err = err.to_string();
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains("client pass"), "{err}");
    }
    // A protected ECDSA key whose scalar is a byte short in its file: the
    // startup check decrypts it too (ssh-key alone refuses it).
    let short = SshSigningKey::ecdsa_with_short_scalar(256, Some("client pass"));
    sshd.authorize(&short.public_key);
    let mut config = ssh_config(&sshd, &remote, &known);
    config.auth.ssh_key_file = Some(short.key_file.clone());
    config.auth.ssh_passphrase_file = short.passphrase_file.clone();
    let fresh = crate::state();
    let mut repo =
        Repo::open(&config, fresh.path()).unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    let id = commit_one(&mut repo, "README.md", "over ssh, ecdsa\n");
    assert_eq!(remote.tip("main"), id);
}

#[test]
fn an_unknown_or_changed_ssh_host_key_is_refused_before_anything_is_sent() {
    let sshd = Sshd::start(None);
    let remote = fleet();
    let other = support::sshd::keygen(&sshd.dir().join("other_host_key"), None);
    let cases = [
        (
            "unknown",
            format!(
                "[127.0.0.1]:1 {}\ngit.example.com {}\n",
                sshd.host_key, sshd.host_key
            ),
            "is not in",
        ),
        (
            "mismatch",
            format!("[127.0.0.1]:{} {other}\n", sshd.port),
            "does not match",
        ),
        (
            "revoked",
            format!(
                "{}\n@revoked * {}\n",
                sshd.known_hosts_line(),
                sshd.host_key
            ),
            "@revoked",
        ),
    ];
    for (name, content, want) in cases {
        let known = sshd.write_known_hosts(name, &content);
        let state = state();
        let err = Repo::open(&ssh_config(&sshd, &remote, &known), state.path()).unwrap_err();
        assert_eq!(err.kind(), "host_key", "{name}: {err}");
        let text = err.to_string();
        assert!(text.contains(want), "{name}: {text}");
        assert!(
            text.contains("SHA256:"),
            "{name}: names the presented key: {text}"
        );
        assert!(
            !state.path().join("repo.git").exists(),
            "{name}: no clone left behind"
        );
    }
    let log = sshd.log();
    assert!(
        !log.contains("Accepted publickey"),
        "no login happened:\n{log}"
    );
}

#[test]
fn an_ssh_key_the_server_does_not_accept_is_an_auth_error() {
    let sshd = Sshd::start(None);
    let remote = fleet();
    let known = sshd.write_known_hosts("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    let stranger = sshd.dir().join("stranger");
    support::sshd::keygen(&stranger, None);
    let mut config = ssh_config(&sshd, &remote, &known);
    config.auth.ssh_key_file = Some(stranger);
    let state = state();
    let err = Repo::open(&config, state.path()).unwrap_err();
    assert_eq!(err.kind(), "auth", "{err}");
    assert!(err.to_string().contains("refused the SSH key"), "{err}");
}

// ---------------------------------------------------------------------------
// Smart HTTP: git http-backend behind nginx + fcgiwrap with basic auth

use support::git_http::GitHttp;

fn http_config(http: &GitHttp, password_file: &Path) -> GitConfig {
    let mut config = config(&http.url("fleet.git"));
    config.auth = GitAuth {
        username: Some(http.user.clone()),
        password_file: Some(password_file.to_owned()),
        ..GitAuth::default()
    };
    config
}

#[test]
fn http_remote_with_basic_auth_clones_fetches_and_pushes() {
    let remote = fleet();
    let http = GitHttp::start(remote.dir(), "bot", "t0ken-value");
    let key = GpgKey::ed25519();
    let mut config = http_config(&http, &http.password_file);
    config.signing = Some(signing(SigningFormat::OpenPgp, &key.key_file, None));
    let state = state();
    let mut repo =
        Repo::open(&config, state.path()).unwrap_or_else(|e| panic!("{e}\n{}", http.error_log()));
    let id = commit_one(&mut repo, "apps/podinfo/values.yaml", "tag: 6.2.0\n");
    assert_eq!(remote.tip("main"), id);
    key.verify_commit(&remote.path, &id).unwrap();
    assert!(
        http.requests()
            .iter()
            .any(|r| r.contains("git-receive-pack") && r.contains(" 200 ")),
        "{:?}",
        http.requests()
    );
    remote.fsck();
}

#[test]
fn http_credentials_missing_or_wrong_are_auth_errors_that_never_show_the_password() {
    let remote = fleet();
    let http = GitHttp::start(remote.dir(), "bot", "right-t0ken");
    let wrong = http.dir().join("wrong");
    std::fs::write(&wrong, "wrong-t0ken\n").unwrap();
    let state = state();
    let err = Repo::open(&http_config(&http, &wrong), state.path()).unwrap_err();
    assert_eq!(err.kind(), "auth", "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("refused git.auth.username"), "{text}");
    assert!(
        !text.contains("wrong-t0ken") && !text.contains("right-t0ken"),
        "{text}"
    );

    let mut anonymous = config(&http.url("fleet.git"));
    anonymous.auth = GitAuth::default();
    let err = Repo::open(&anonymous, state.path()).unwrap_err();
    assert_eq!(err.kind(), "auth", "{err}");
    assert!(err.to_string().contains("set git.auth.username"), "{err}");
}

#[test]
fn an_https_remote_whose_certificate_no_ca_vouches_for_is_refused() {
    let remote = fleet();
    let https = GitHttp::start_tls(remote.dir(), "bot", "pw");
    // The server works: curl accepts it when told to trust the certificate.
    support::process::run(
        std::process::Command::new(support::process::require("curl", "curl"))
            .args(["-sf", "-u", "bot:pw", "--cacert"])
            .arg(https.dir().join("cert.pem"))
            .arg(format!(
                "{}/info/refs?service=git-upload-pack",
                https.url("fleet.git")
            )),
    );
    let served = https.requests().len();
    let state = state();
    let err = Repo::open(&http_config(&https, &https.password_file), state.path()).unwrap_err();
    assert_eq!(err.kind(), "tls", "{err}");
    assert!(err.to_string().contains("SSL_CERT_FILE"), "{err}");
    assert_eq!(
        https.requests().len(),
        served,
        "nothing was requested over the untrusted connection: {:?}",
        https.requests()
    );
}

// ---------------------------------------------------------------------------
// Server-side refusals: protected branches, hooks

const PROTECT_MAIN: &str = "#!/bin/sh\nwhile read old new ref; do\n  if [ \"$ref\" = refs/heads/main ]; then\n    echo \"GL-HOOK-ERR: main is protected; open a pull request\" >&2\n    exit 1\n  fi\ndone\n";

#[test]
fn a_protected_branch_rejection_reaches_the_caller_with_the_servers_message() {
    let remote = fleet();
    remote.set_hook("pre-receive", PROTECT_MAIN);
    let before = remote.tip("main");
    let http = GitHttp::start(remote.dir(), "bot", "pw");
    let sshd = Sshd::start(None);
    let known = sshd.write_known_hosts("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    for config in [
        http_config(&http, &http.password_file),
        ssh_config(&sshd, &remote, &known),
    ] {
        let state = state();
        let mut repo = Repo::open(&config, state.path()).unwrap();
        let base = repo.fetch().unwrap();
        let commit = repo
            .commit(&base, &[edit("README.md", "x\n")], "m\n")
            .unwrap();
        let outcome = repo.push(&base, &commit).unwrap();
        let PushOutcome::Rejected(message) = outcome else {
            panic!("{}: {outcome:?}", config.url)
        };
        assert!(message.contains("pre-receive hook declined"), "{message}");
        assert!(
            message.contains("main is protected; open a pull request"),
            "{message}"
        );

        let err = repo
            .write_back(&Retry::default(), |_, _| -> Result<_, GitError> {
                Ok(Some(Update {
                    edits: vec![edit("README.md", "y\n")],
                    message: "m\n".into(),
                }))
            })
            .unwrap_err();
        assert_eq!(err.kind(), "rejected");
        let text = err.to_string();
        assert!(
            text.contains("main is protected") && text.contains("branch main"),
            "{text}"
        );
    }
    assert_eq!(remote.tip("main"), before);
}

// ---------------------------------------------------------------------------
// Two crowsnest processes racing on one remote

const ROUNDS: usize = 6;

/// Two `Repo`s with their own state dirs push concurrently: `a` sets
/// `apps/a.yaml` to 1..=ROUNDS, `b` sets `apps/b.yaml`; then both try to
/// make the same change. Every update lands exactly once.
fn race(remote: &Remote, config: &GitConfig) {
    let before = remote.commit_count("main");
    let retry = Retry {
        attempts: 20,
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
    };
    let barrier = std::sync::Barrier::new(2);
    let writer = |file: &'static str| {
        let state = state();
        let mut repo = Repo::open(config, state.path()).unwrap();
        barrier.wait();
        let mut lost = 0;
        for round in 1..=ROUNDS {
            let text = format!("value: {round}\n");
            match repo
                .write_back(&retry, |_, _| -> Result<_, GitError> {
                    Ok(Some(Update {
                        edits: vec![edit(file, &text)],
                        message: format!("{file} -> {round}\n"),
                    }))
                })
                .unwrap()
            {
                WriteBack::Pushed { attempts, .. } => lost += attempts - 1,
                other => panic!("{file} round {round}: {other:?}"),
            }
        }
        barrier.wait();
        // Both now make one and the same change.
        let same = repo
            .write_back(&retry, |_, _| -> Result<_, GitError> {
                Ok(Some(Update {
                    edits: vec![edit("README.md", "both agree\n")],
                    message: "same change\n".into(),
                }))
            })
            .unwrap();
        (lost, matches!(same, WriteBack::Pushed { .. }))
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| writer("apps/a.yaml"));
        let b = s.spawn(|| writer("apps/b.yaml"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(
        remote.commit_count("main"),
        before + 2 * ROUNDS + 1,
        "every update once, the shared one once (lost races: {} + {})",
        a.0,
        b.0
    );
    assert!(a.1 ^ b.1, "exactly one of them pushes the shared change");
    let tip = remote.tip("main");
    let last = format!("value: {ROUNDS}\n");
    assert_eq!(remote.file(&tip, "apps/a.yaml").unwrap(), last.as_bytes());
    assert_eq!(remote.file(&tip, "apps/b.yaml").unwrap(), last.as_bytes());
    for file in ["apps/a.yaml", "apps/b.yaml"] {
        let messages: Vec<String> = remote
            .log("main")
            .into_iter()
            .rev()
            .map(|c| c.message)
            .filter(|m| m.starts_with(file))
            .collect();
        let want: Vec<String> = (1..=ROUNDS).map(|r| format!("{file} -> {r}\n")).collect();
        assert_eq!(messages, want, "each of {file}'s updates, in order, once");
    }
    remote.fsck();
}

fn race_remote() -> Remote {
    Remote::new(&[
        ("apps/a.yaml", "value: 0\n"),
        ("apps/b.yaml", "value: 0\n"),
        ("README.md", "fleet\n"),
    ])
}

#[test]
fn two_writers_racing_over_file_url_lose_nothing_and_duplicate_nothing() {
    let remote = race_remote();
    race(&remote, &config(&remote.url()));
}

#[test]
fn two_writers_racing_over_http_lose_nothing_and_duplicate_nothing() {
    let remote = race_remote();
    let http = GitHttp::start(remote.dir(), "bot", "pw");
    race(&remote, &http_config(&http, &http.password_file));
}

#[test]
fn two_writers_racing_over_ssh_lose_nothing_and_duplicate_nothing() {
    let remote = race_remote();
    let sshd = Sshd::start(None);
    let known = sshd.write_known_hosts("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    race(&remote, &ssh_config(&sshd, &remote, &known));
}

// ---------------------------------------------------------------------------
// The long-lived clone stays healthy

fn pack_count(clone: &Path) -> usize {
    std::fs::read_dir(clone.join("objects/pack"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .count()
}

#[test]
fn packs_from_many_fetches_are_merged_and_the_clone_stays_valid() {
    let remote = fleet();
    let state = state();
    let clone = state.path().join("repo.git");
    let mut repo = Repo::open(&config(&remote.url()), state.path()).unwrap();
    let mut most = 0;
    for round in 0..40 {
        remote.commit_files(
            "main",
            "Someone else",
            &[("README.md", &format!("{round}\n"))],
        );
        repo.fetch().unwrap();
        most = most.max(pack_count(&clone));
    }
    assert!(most > 10, "fetches add packs ({most})");
    assert!(
        pack_count(&clone) < 26,
        "small packs were merged: {}",
        pack_count(&clone)
    );
    assert_eq!(repo.stats().clones, 1, "merging is not re-cloning");
    let id = commit_one(&mut repo, "apps/podinfo/values.yaml", "tag: 9\n");
    assert_eq!(remote.tip("main"), id);
    support::process::run(support::git::git().arg("-C").arg(&clone).args([
        "fsck",
        "--strict",
        "--no-dangling",
    ]));
    let count = support::process::run(support::git::git().arg("-C").arg(&clone).args([
        "rev-list",
        "--count",
        "--objects",
        "refs/remotes/origin/main",
    ]));
    assert!(count.trim().parse::<usize>().unwrap() > 40);
}

#[test]
fn a_missing_object_found_while_reading_makes_the_next_fetch_clone_again() {
    let remote = fleet();
    let state = state();
    let clone = state.path().join("repo.git");
    let mut repo = Repo::open(&config(&remote.url()), state.path()).unwrap();
    commit_one(&mut repo, "apps/podinfo/values.yaml", "tag: 7.0.0\n");
    // Our own commit's new blob is a loose object in the clone: lose it.
    let blob = support::process::run(
        support::git::git()
            .arg("-C")
            .arg(&remote.path)
            .args(["rev-parse", "main:apps/podinfo/values.yaml"]),
    );
    let blob = blob.trim();
    let loose = clone.join("objects").join(&blob[..2]).join(&blob[2..]);
    std::fs::remove_file(&loose).unwrap();

    let base = repo.fetch().unwrap();
    let file = repo
        .files(&base, "apps/podinfo")
        .unwrap()
        .into_iter()
        .find(|f| f.path.ends_with("values.yaml"))
        .unwrap();
    let err = repo.read(&file).unwrap_err();
    assert_eq!(err.kind(), "repository", "{err}");
    let base = repo.fetch().unwrap();
    assert_eq!(repo.stats().clones, 2, "the damaged clone was replaced");
    let file = repo
        .files(&base, "apps/podinfo")
        .unwrap()
        .into_iter()
        .find(|f| f.path.ends_with("values.yaml"))
        .unwrap();
    assert_eq!(repo.read(&file).unwrap(), b"tag: 7.0.0\n");
}
