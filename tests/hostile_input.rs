//! Hostile repositories and tag lists: alias bombs, 100 MB files, deep
//! nesting, invalid UTF-8, symlinks to /etc and out of the repository,
//! `../` paths, tags with control characters or 10,000 characters. Each is
//! refused with a `file:line:col` message (or left alone when it is a
//! symlink), quickly and without reading or writing anything outside the
//! repository. Checked through `crowsnest check` on a checkout and
//! `crowsnest once` on a real Git remote and registry.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::fleet::{DEPLOYMENT_PATH, Fleet, assert_exit, crowsnest, text};
use support::registry::{Auth, RegistryServer};

const BIN: &str = env!("CARGO_BIN_EXE_crowsnest");

const POLICY: &str = "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata: {name: app}\nspec:\n  image: reg.example.com/app\n  policy: {semver: {range: \">=1.0.0\"}}\n";
const MARKED: &str = "image: reg.example.com/app:1.0.0 # {\"$imagepolicy\": \"default:app\"}\n";

fn alias_bomb() -> String {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    bomb
}

fn deep(levels: usize) -> String {
    format!("a: {}{}\n", "[".repeat(levels), "]".repeat(levels))
}

/// A checkout with one good policy and one good marked file, plus `extra`.
fn checkout(extra: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<(&str, &[u8])> = vec![
        ("policies/app.yaml", POLICY.as_bytes()),
        ("apps/ok.yaml", MARKED.as_bytes()),
    ];
    files.extend_from_slice(extra);
    for (path, bytes) in files {
        support::git::write(dir.path(), path, bytes);
    }
    dir
}

/// `crowsnest check DIR`: exit 1, and each of `expected` on its own line of stdout.
fn assert_check_refuses(dir: &Path, expected: &[&str]) -> String {
    let started = Instant::now();
    let output = crowsnest(BIN, dir, &["check", "."]);
    let took = started.elapsed();
    assert_exit(&output, 1);
    let stdout = text(&output.stdout);
    for line in expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "no line starting with {line:?} in:\n{stdout}"
        );
    }
    assert!(took < Duration::from_secs(20), "check took {took:?}");
    assert!(
        !text(&output.stderr).contains("panicked"),
        "{}",
        text(&output.stderr)
    );
    stdout
}

#[test]
fn alias_bombs_in_policies_are_refused_and_in_manifests_never_expanded() {
    let bomb = alias_bomb();
    let manifest = format!("{bomb}{MARKED}");
    let dir = checkout(&[
        ("policies/bomb.yaml", bomb.as_bytes()),
        ("apps/bomb.yaml", manifest.as_bytes()),
    ]);
    let stdout = assert_check_refuses(dir.path(), &["policies/bomb.yaml:"]);
    assert!(stdout.contains("too large or too complex"), "{stdout}");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let nested = deep(100_000);
    let manifest = format!("{MARKED}{nested}");
    let mut mapping = String::from(MARKED);
    for i in 0..5_000 {
        mapping.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
    }
    let dir = checkout(&[
        ("policies/deep.yaml", nested.as_bytes()),
        ("apps/deep.yaml", manifest.as_bytes()),
        ("apps/deep-mapping.yaml", mapping.as_bytes()),
    ]);
    let stdout = assert_check_refuses(
        dir.path(),
        &[
            "policies/deep.yaml:1:",
            "apps/deep.yaml:2:",
            "apps/deep-mapping.yaml:",
        ],
    );
    assert!(stdout.contains("recursion limit"), "{stdout}");
}

#[test]
fn files_of_100_mb_are_refused_by_size() {
    let mut huge = String::from(MARKED);
    huge.push_str(&"# padding padding padding padding padding padding padding\n".repeat(1_800_000));
    assert!(huge.len() > 100_000_000);
    let mut huge_policy = String::from(POLICY);
    huge_policy.push_str(&huge[MARKED.len()..]);
    let dir = checkout(&[
        ("apps/huge.yaml", huge.as_bytes()),
        ("policies/huge.yaml", huge_policy.as_bytes()),
    ]);
    let stdout = assert_check_refuses(
        dir.path(),
        &[
            "apps/huge.yaml:1:1: file is",
            "policies/huge.yaml:1:1: file is",
        ],
    );
    assert!(stdout.contains("crowsnest reads files up to"), "{stdout}");
}

#[test]
fn invalid_utf8_is_refused_with_the_byte_offset() {
    let manifest = [MARKED.as_bytes(), b"x: \"\xff\xfe\"\n"].concat();
    let dir = checkout(&[
        ("apps/latin1.yaml", &manifest),
        ("policies/latin1.yaml", b"apiVersion: \xc3\x28\n"),
    ]);
    let stdout = assert_check_refuses(
        dir.path(),
        &[
            "apps/latin1.yaml:1:1: file is not valid UTF-8 (at byte 71)",
            "policies/latin1.yaml:1:1: file is not valid UTF-8 (at byte 12)",
        ],
    );
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
}

#[test]
fn symlinks_to_etc_and_out_of_the_repository_are_never_read() {
    let outside = tempfile::tempdir().unwrap();
    // Outside the checkout: a policy file and a marked manifest that would
    // be picked up if crowsnest followed links.
    support::git::write(
        outside.path(),
        "policies/evil.yaml",
        POLICY.replace("name: app", "name: evil").as_bytes(),
    );
    support::git::write(
        outside.path(),
        "evil.yaml",
        MARKED.replace("default:app", "default:evil").as_bytes(),
    );
    let dir = checkout(&[]);
    let root = dir.path();
    let link = |target: &Path, at: &str| std::os::unix::fs::symlink(target, root.join(at)).unwrap();
    link(Path::new("/etc/passwd"), "policies/passwd.yaml");
    link(Path::new("/etc"), "apps/etc");
    link(Path::new("/etc/hosts"), "apps/hosts.yaml");
    link(&outside.path().join("policies"), "policies/elsewhere");
    link(&outside.path().join("evil.yaml"), "apps/evil.yaml");
    // Even the whole policies folder as a link is not followed.
    let output = crowsnest(BIN, root, &["check", "."]);
    assert_exit(&output, 0);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("1 policies, 1 setters in 1 files"),
        "{stderr}"
    );
    for link in [
        "apps/etc",
        "apps/evil.yaml",
        "apps/hosts.yaml",
        "policies/elsewhere",
        "policies/passwd.yaml",
    ] {
        assert!(
            stderr.contains(&format!(
                "note: {link} is a symbolic link; crowsnest never follows links"
            )),
            "{link}: {stderr}"
        );
    }

    // A policy target through a link or out of the tree: refused by name.
    let targets = [
        ("apps/evil.yaml", "does not exist or is not a regular file"),
        ("../outside.yaml", "must stay inside the repository"),
        ("/etc/hosts", "must be relative to the repository root"),
        ("apps/etc/hosts", "does not exist or is not a regular file"),
    ];
    for (i, (file, _)) in targets.iter().enumerate() {
        let policy = POLICY.replace("name: app", &format!("name: t{i}"))
            + &format!("  targets:\n    - {{file: {file}, path: image}}\n");
        support::git::write(root, &format!("policies/t{i}.yaml"), policy.as_bytes());
    }
    let stdout = assert_check_refuses(
        root,
        &[
            "policies/t0.yaml:8:",
            "policies/t1.yaml:8:",
            "policies/t2.yaml:8:",
            "policies/t3.yaml:8:",
        ],
    );
    for (i, (file, message)) in targets.iter().enumerate() {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("policies/t{i}.yaml:")))
            .unwrap();
        assert!(line.contains(file) && line.contains(message), "{line}");
    }
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
}

#[test]
fn once_on_a_hostile_remote_refuses_and_writes_nothing_outside_the_repository() {
    let fx = Fleet::new(RegistryServer::start(Auth::Anonymous), None);
    let config = fx.config();
    let outside = tempfile::tempdir().unwrap();
    let sentinel = outside.path().join("deployment.yaml");
    let sentinel_text = support::fleet::deployment(&fx.image_host, "6.0.0");
    std::fs::write(&sentinel, &sentinel_text).unwrap();

    // Symlinks in the repository (to /etc, and to a marked file outside
    // it) are neither read nor written: the pass updates the real file.
    fx.remote.change("main", "links", |dir| {
        std::os::unix::fs::symlink("/etc/passwd", dir.join("policies/passwd.yaml")).unwrap();
        std::os::unix::fs::symlink(&sentinel, dir.join("apps/outside.yaml")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc", dir.join("apps/etc")).unwrap();
    });
    assert_exit(
        &support::fleet::crowsnest(
            BIN,
            fx.dir.path(),
            &["once", "--config", config.to_str().unwrap()],
        ),
        0,
    );
    assert_eq!(fx.deployed(), "6.1.0");
    assert_eq!(fx.remote.changed_files("main"), [DEPLOYMENT_PATH]);
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), sentinel_text);

    // A hostile file anywhere is reported with its place and holds back
    // only itself: the deployment still moves to each new tag.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "policies/bomb.yaml",
            alias_bomb().into_bytes(),
            "policies/bomb.yaml:",
        ),
        (
            "policies/deep.yaml",
            deep(100_000).into_bytes(),
            "policies/deep.yaml:1:",
        ),
        (
            "apps/latin1.yaml",
            [MARKED.as_bytes(), b"\xff\n"].concat(),
            "apps/latin1.yaml:1:1: file is not valid UTF-8",
        ),
        (
            "policies/escape.yaml",
            format!(
                "{}  targets:\n    - {{file: ../../{}, path: image}}\n",
                support::fleet::policy(&fx.image_host).replace("name: podinfo", "name: other"),
                sentinel.display()
            )
            .into_bytes(),
            "policies/escape.yaml:11:14: targets[].file",
        ),
    ];
    for (minor, (path, bytes, expected)) in (2..).zip(cases) {
        let tag = format!("6.{minor}.0");
        fx.registry.push_tags("demo/podinfo", &[tag.as_str()]);
        fx.remote.change("main", "hostile", |dir| {
            support::git::write(dir, path, &bytes)
        });
        let output = support::fleet::crowsnest(
            BIN,
            fx.dir.path(),
            &["once", "--config", config.to_str().unwrap()],
        );
        assert_exit(&output, 1);
        let stderr = text(&output.stderr);
        assert!(
            stderr.lines().any(|l| l.starts_with(expected)),
            "{expected}: {stderr}"
        );
        assert!(stderr.contains("held back what they touch"), "{stderr}");
        assert_eq!(fx.deployed(), tag, "the good policy still moves");
        assert_eq!(fx.remote.changed_files("main"), [DEPLOYMENT_PATH]);
        assert_eq!(fx.remote.file("main", path).as_deref(), Some(&bytes[..]));
        fx.remote.change("main", "remove it", |dir| {
            std::fs::remove_file(dir.join(path)).unwrap()
        });
    }
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), sentinel_text);
    assert_exit(
        &support::fleet::crowsnest(
            BIN,
            fx.dir.path(),
            &["once", "--config", config.to_str().unwrap()],
        ),
        0,
    );
    assert_eq!(fx.deployed(), "6.5.0");
    fx.assert_trail();
}

#[test]
fn tags_with_control_characters_or_10000_characters_are_refused_by_tags() {
    let dir = tempfile::tempdir().unwrap();
    let long = "9".repeat(10_000);
    let list =
        format!("1.0.0\n\u{1b}[2J\u{1b}[31m9.0.0\n1.5.0\u{7}\n{long}\n8.0.0\u{202e}\n1.2.0\n");
    std::fs::write(dir.path().join("tags.txt"), &list).unwrap();
    for args in [
        &["tags", "--tags-from", "tags.txt", "--alphabetical", "asc"][..],
        &[
            "tags",
            "--tags-from",
            "tags.txt",
            "--semver",
            ">=1",
            "--all",
        ],
        &[
            "tags",
            "--tags-from",
            "tags.txt",
            "--semver",
            ">=1",
            "--json",
        ],
    ] {
        let output = crowsnest(BIN, dir.path(), args);
        assert_exit(&output, 0);
        let stdout = text(&output.stdout);
        let stderr = text(&output.stderr);
        assert!(stdout.contains("1.2.0"), "{args:?}: {stdout}");
        for (name, stream) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(
                !stream
                    .chars()
                    .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
                "{args:?}: raw control characters on {name}: {stream:?}"
            );
            assert!(!stream.contains(&long), "{args:?}: the long tag on {name}");
        }
        assert!(
            !stdout.contains("9.0.0") && !stdout.contains("8.0.0"),
            "{stdout}"
        );
        for line in [2, 3, 4, 5] {
            assert!(
                stderr.contains(&format!("warning: tags.txt:{line}: ")),
                "{args:?}: line {line} not reported: {stderr}"
            );
        }
        assert!(stderr.contains("(10000 bytes) is not a tag"), "{stderr}");
    }
}

#[test]
fn hostile_daemon_configs_are_refused_with_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let huge = format!(
        "git:\n  url: file:///x\n{}",
        "# padding padding padding padding padding padding padding\n".repeat(1_800_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bomb.yaml",
            format!("git:\n  url: file:///x\n{}", alias_bomb()).into_bytes(),
            "bomb.yaml:",
        ),
        ("deep.yaml", deep(100_000).into_bytes(), "deep.yaml:1:"),
        (
            "latin1.yaml",
            b"git:\n  url: file:///\xff\n".to_vec(),
            "latin1.yaml: cannot read the config file",
        ),
        ("huge.yaml", huge.into_bytes(), "huge.yaml:1:1: file is"),
        (
            "escape.yaml",
            b"git:\n  url: file:///x\n  policies: ../../etc\n".to_vec(),
            "escape.yaml:3:13: git.policies must stay inside the repository",
        ),
    ];
    for (name, bytes, expected) in cases {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let started = Instant::now();
        let output = crowsnest(BIN, dir.path(), &["check", "--config", name]);
        assert!(started.elapsed() < Duration::from_secs(20), "{name}");
        assert_exit(&output, 1);
        let stdout = text(&output.stdout);
        assert!(stdout.starts_with(expected), "{name}: {stdout}");
        let output = crowsnest(BIN, dir.path(), &["once", "--config", name]);
        assert_exit(&output, 2);
        assert!(
            text(&output.stderr).contains(expected),
            "{name}: {}",
            text(&output.stderr)
        );
    }
}
