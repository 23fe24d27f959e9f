//! `crowsnest tags` as a user runs it: the binary, a tag list, a policy
//! file or flags; exit codes and rendered output (insta snapshots).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const TAGS: &str = "6.1.0
6.2.0
7.0.0
6.3.0-rc.1
latest
sha256-abc.sig
5.0.0
v6.2.0
";

const POLICIES: &str = r#"apiVersion: crowsnest/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: apps
spec:
  image: ghcr.io/stefanprodan/podinfo
  policy:
    semver:
      range: ">=6.0.0-0 <7.0.0"
---
apiVersion: crowsnest/v1
kind: ImagePolicy
metadata:
  name: builds
spec:
  image: ghcr.io/org/app
  policy:
    numerical: {order: asc}
  filterTags:
    pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)$'
    extract: '$ts'
"#;

fn crowsnest(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crowsnest"))
        .args(args)
        .env_remove("CROWSNEST_IMAGE")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start crowsnest");
    if let Some(input) = stdin {
        let written = child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes());
        // A command refused before it reads its input (a bad range exits 2
        // at once) closes the pipe: that is its answer, not a test failure.
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    child.wait_with_output().expect("crowsnest output")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write fixture");
    path.display().to_string()
}

#[test]
fn summary_shows_the_pick_and_why_higher_tags_lost() {
    let dir = tempfile::tempdir().unwrap();
    let tags = write(dir.path(), "tags.txt", TAGS);
    let out = crowsnest(
        &["tags", "--tags-from", &tags, "--semver", ">=6.0.0 <7.0.0"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("tags_summary", stdout(&out));
}

#[test]
fn all_lists_every_tag_in_an_aligned_table() {
    let out = crowsnest(
        &[
            "tags",
            "--tags-from",
            "-",
            "--semver",
            ">=6.0.0 <7.0.0",
            "--all",
        ],
        Some(TAGS),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("tags_all", stdout(&out));
}

#[test]
fn json_has_selected_and_a_verdict_per_tag() {
    let out = crowsnest(
        &[
            "tags",
            "--tags-from",
            "-",
            "--semver",
            ">=6.0.0 <7.0.0",
            "--json",
        ],
        Some(TAGS),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["selected"], "6.2.0");
    let verdicts: Vec<&str> = json["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        [
            "lower_than_pick",
            "selected",
            "outside_range",
            "prerelease_not_allowed",
            "not_a_version",
            "excluded",
            "outside_range",
            "tied_with_pick"
        ]
    );
    assert_eq!(json["candidates"][5]["tag"], "sha256-abc.sig");
}

#[test]
fn nothing_matched_exits_one_with_null_in_json() {
    let out = crowsnest(
        &["tags", "--tags-from", "-", "--semver", ">=8", "--json"],
        Some(TAGS),
    );
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["selected"].is_null());
    let out = crowsnest(&["tags", "--tags-from", "-", "--semver", ">=8"], Some(TAGS));
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("tags_none", stdout(&out));
}

#[test]
fn policies_are_picked_from_a_file_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let policies = write(dir.path(), "policies.yaml", POLICIES);
    let out = crowsnest(
        &[
            "tags",
            "--tags-from",
            "-",
            "--policy",
            &format!("{policies}:apps:podinfo"),
        ],
        Some(TAGS),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The policy's range admits prereleases.
    assert!(
        stdout(&out).starts_with("selected 6.3.0-rc.1 by policy apps:podinfo ("),
        "{}",
        stdout(&out)
    );
    let builds =
        "main-abc123-1700000100\nmain-def456-1700000200\nfeature-x-1800000000\nmain-0a1b2c-999\n";
    let out = crowsnest(
        &[
            "tags",
            "--tags-from",
            "-",
            "--policy",
            &format!("{policies}:builds"),
            "--all",
        ],
        Some(builds),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out).replace(&policies, "POLICIES");
    insta::assert_snapshot!("tags_extract", text);
    // Without a name, a file with two policies is ambiguous.
    let out = crowsnest(
        &["tags", "--tags-from", "-", "--policy", &policies],
        Some(TAGS),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("apps:podinfo, default:builds"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_ranges_and_policies_exit_two_with_the_place() {
    let out = crowsnest(
        &["tags", "--tags-from", "-", "--semver", ">=1 <2.x.y"],
        Some(TAGS),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: invalid --semver range \">=1 <2.x.y\": unexpected \".y\" after version \"2.x\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = POLICIES.replace(">=6.0.0-0 <7.0.0", ">=6.0.0 <<7");
    let policies = write(dir.path(), "bad.yaml", &bad);
    let out = crowsnest(
        &["tags", "--tags-from", "-", "--policy", &policies],
        Some(TAGS),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {policies}:10:23: invalid semver range \">=6.0.0 <<7\": unknown operator \"<<\"\n"
        )
    );
    let out = crowsnest(
        &[
            "tags",
            "--tags-from",
            "-",
            "--filter",
            "^(",
            "--alphabetical",
            "asc",
        ],
        Some(TAGS),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid --filter \"^(\": unclosed group"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn numerical_skips_non_numbers_with_a_warning() {
    let out = crowsnest(
        &["tags", "--tags-from", "-", "--numerical", "desc"],
        Some("10\n9\nlatest\n11\n"),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).starts_with("selected 9 by --numerical desc"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        stderr(&out),
        "warning: 1 tag is not a number and was skipped (Flux would fail this policy)\n"
    );
}

#[test]
fn an_unreadable_tag_list_is_a_usage_error() {
    let out = crowsnest(&["tags", "--tags-from", "/nonexistent/tags.txt"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("error: /nonexistent/tags.txt: cannot read the tag list"));
}
