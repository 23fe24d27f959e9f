//! Table tests for markers, targets and the patcher over small inputs;
//! the shapes corpus and the property tests live in `tests/manifests_*.rs`.

use super::*;
use crate::model::TargetPath;

const M: &str = r#"# {"$imagepolicy": "apps:podinfo"}"#;
const M_TAG: &str = r#"# {"$imagepolicy": "apps:podinfo:tag"}"#;

fn setters(text: &str) -> Vec<(String, Field, String)> {
    find_markers("t.yaml", text)
        .unwrap()
        .into_iter()
        .map(|s| (s.policy.to_string(), s.field, s.value))
        .collect()
}

fn marker_error(text: &str) -> String {
    find_markers("t.yaml", text).unwrap_err().to_string()
}

fn target(path: &str) -> Target {
    Target {
        file: "t.yaml".into(),
        path: TargetPath::parse(path).unwrap(),
        field: Field::Tag,
        declared_at: Located::new("policies/p.yaml", Position::new(9, 7)),
    }
}

fn resolve(text: &str, path: &str) -> Result<Setter, ManifestError> {
    resolve_target(
        "t.yaml",
        text,
        &PolicyId::new("apps", "podinfo"),
        &target(path),
    )
}

/// Patches the one scalar whose decoded value is `old`.
fn set(text: &str, old: &str, new: &str) -> Result<String, ManifestError> {
    let spans: Vec<_> = scalars("t.yaml", text)
        .unwrap()
        .into_iter()
        .filter(|s| s.value == old)
        .collect();
    assert_eq!(spans.len(), 1, "exactly one scalar {old:?} in {text:?}");
    patch(
        "t.yaml",
        text,
        &[Edit {
            span: spans[0].span.clone(),
            value: new.into(),
        }],
    )
}

#[test]
fn markers_on_mapping_values_sequence_items_and_flow_collections() {
    let text = format!(
        "image: ghcr.io/a/podinfo:6.1.0 {M}\n\
         tag: '6.1.0' {M_TAG}\n\
         list:\n  - \"ghcr.io/a/podinfo:6.1.0\" {M}\n\
         flow: {{image: ghcr.io/a/podinfo:6.1.0, {M}\n  tag: x}}\n\
         seq: [ghcr.io/a/podinfo:6.1.0 {M}\n  ]\n"
    );
    let found = setters(&text);
    let image = (
        "apps:podinfo".to_owned(),
        Field::Image,
        "ghcr.io/a/podinfo:6.1.0".to_owned(),
    );
    assert_eq!(
        found,
        vec![
            image.clone(),
            ("apps:podinfo".into(), Field::Tag, "6.1.0".into()),
            image.clone(),
            image.clone(),
            image,
        ]
    );
}

#[test]
fn setters_carry_exact_spans_and_positions() {
    let text = format!("a: 1\nimage: \"nginx:1.25\"   {M}\n");
    let s = &find_markers("t.yaml", &text).unwrap()[0];
    assert_eq!(&text[s.span.clone()], "\"nginx:1.25\"");
    assert_eq!(s.at, Position::new(2, 8));
    assert_eq!(s.value, "nginx:1.25");
}

#[test]
fn every_document_and_both_marker_forms() {
    let text = concat!(
        "a: x:1 # {\"$imagepolicy\": \"ns:one\"}\n",
        "---\n",
        "b: y:2 # {\"$ref\": \"#/definitions/io.k8s.cli.setters.ns:two:tag\"}\n",
        "...\n",
        "---\n",
        "- z:3 # {\"$imagepolicy\": \"ns:three:digest\"}\n",
    );
    assert_eq!(
        setters(text),
        vec![
            ("ns:one".into(), Field::Image, "x:1".into()),
            ("ns:two".into(), Field::Tag, "y:2".into()),
            ("ns:three".into(), Field::Digest, "z:3".into()),
        ]
    );
}

#[test]
fn ordinary_comments_and_hashes_in_strings_are_not_markers() {
    let text =
        "# header\na: \"# {\\\"$imagepolicy\\\": \\\"x:y\\\"}\" # plain comment\nb: c # see docs\n";
    assert_eq!(setters(text), vec![]);
}

#[test]
fn crlf_bom_tabs_and_unicode_comments() {
    let text = "\u{feff}# caf\u{e9} \u{1F980}\r\nimage: a:1\t# {\"$imagepolicy\": \"ns:p\"}\r\n";
    let s = &find_markers("t.yaml", text).unwrap()[0];
    assert_eq!(&text[s.span.clone()], "a:1");
    assert_eq!(s.at, Position::new(2, 8));
}

/// Issue 15: a how-to comment quoting a marker froze the whole repository
/// ("marker comment is not a JSON object"). As in Flux, a comment on a line
/// of its own is never a marker, whatever it says.
#[test]
fn r15_comments_on_lines_of_their_own_are_never_markers() {
    let text = format!(
        "# Set images like this: image: x:1 {M}\n  # {{\"$imagepolicy\": broken\n{M}\nimage: a:1 {M}\nlist:\n  - b:1\n    {M}\n"
    );
    let scan = scan_markers("t.yaml", &text).unwrap();
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    assert_eq!(scan.setters.len(), 1);
    assert_eq!(scan.setters[0].value, "a:1");
    assert_eq!(scan.setters[0].at, Position::new(4, 8));
}

#[test]
fn misplaced_markers_are_errors_with_positions() {
    let cases = [
        (
            format!("image: | {M}\n  a:1\n"),
            "t.yaml:1:10: marker is on a block scalar",
        ),
        (
            format!("- > {M}\n  a:1\n"),
            "t.yaml:1:5: marker is on a block scalar",
        ),
        (
            format!("image: {M}\n  a:1\n"),
            "t.yaml:1:8: marker follows the key \"image\"",
        ),
        (
            format!("image: [a:1] {M}\n"),
            "t.yaml:1:14: marker follows the end of a sequence",
        ),
        (
            format!("image: {{a: b}} {M}\n"),
            "t.yaml:1:15: marker follows the end of a mapping",
        ),
        (
            format!("a: &x a:1\nb: *x {M}\n"),
            "t.yaml:2:7: marker is on the alias *x",
        ),
        (
            format!("image: {M}\nnext: 1\n"),
            "t.yaml:1:8: marker is on an empty value",
        ),
        (
            format!("- {M}\n- a\n"),
            "t.yaml:1:3: marker is on an empty value",
        ),
        (
            format!("n: !!int 3 {M}\n"),
            "t.yaml:1:12: marker is on a value tagged tag:yaml.org,2002:int",
        ),
        (
            "image: a:1 # {\"$imagepolicy\": \"podinfo\"}\n".to_owned(),
            "t.yaml:1:12: marker \"podinfo\" has no namespace",
        ),
        (
            "image: a:1 # {\"$imagepolicy\": \"ns:p\",}\n".to_owned(),
            "t.yaml:1:12: marker comment is not a JSON object",
        ),
        (
            "image: a:1 # $imagepolicy: ns:p\n".to_owned(),
            "t.yaml:1:12: marker comment is not a JSON object",
        ),
        (
            "image: a:1 # \"$imagepolicy\": \"ns:p\"\n".to_owned(),
            "t.yaml:1:12: marker comment is not a JSON object",
        ),
    ];
    for (text, want) in cases {
        let got = marker_error(&text);
        assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
    }
}

#[test]
fn scan_markers_reports_every_problem_and_keeps_good_markers() {
    let text = format!("a: {M}\n  x\nb: ok:1 {M}\nc: | {M}\n  y\n");
    let scan = scan_markers("t.yaml", &text).unwrap();
    assert_eq!(scan.setters.len(), 1);
    assert_eq!(scan.setters[0].value, "ok:1");
    let lines: Vec<u32> = scan.problems.iter().map(|p| p.at().position.line).collect();
    assert_eq!(lines, vec![1, 4]);
    assert!(scan.problems.iter().all(|p| p.kind() == "not_settable"));
}

#[test]
fn files_that_do_not_parse_are_errors() {
    let err = find_markers("bad.yaml", &format!("a: [b {M}\n")).unwrap_err();
    assert_eq!(err.kind(), "parse");
    assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
}

#[test]
fn manifest_paths() {
    for yes in [
        "a.yaml",
        "dir/b.yml",
        "x/Kustomization",
        "Kustomization",
        "a.b.yaml",
    ] {
        assert!(is_manifest_path(yes), "{yes}");
    }
    for no in [
        "a.json",
        "kustomization",
        "dir/.yaml",
        "a.yaml.bak",
        "yaml",
        "Kustomization/x.txt",
    ] {
        assert!(!is_manifest_path(no), "{no}");
    }
}

#[test]
fn targets_resolve_dotted_keys_indexes_and_selectors() {
    let text = "image:\n  repository: r\n  tag: \"1.0\"\nimages:\n  - name: a\n    newTag: v1\n  - name: b\n    newTag: v2\n";
    let s = resolve(text, "image.tag").unwrap();
    assert_eq!(
        (s.value.as_str(), &text[s.span.clone()]),
        ("1.0", "\"1.0\"")
    );
    assert_eq!(s.at, Position::new(3, 8));
    assert_eq!(s.field, Field::Tag);
    assert_eq!(resolve(text, "images[1].newTag").unwrap().value, "v2");
    assert_eq!(resolve(text, "images[name=a].newTag").unwrap().value, "v1");
}

#[test]
fn targets_pick_the_one_document_that_has_the_path() {
    let text = "kind: Service\nspec: {}\n---\nkind: Deployment\nspec:\n  image: x:1\n";
    let s = resolve(text, "spec.image").unwrap();
    assert_eq!(s.value, "x:1");
}

#[test]
fn targets_that_do_not_resolve_say_where_the_walk_stopped() {
    let text = "image:\n  repository: r\n  tag: |\n    1.0\nlist: [a, b]\nm: {}\nal: &x {tag: 1}\nref: *x\nempty:\nnum: !!int 3\n";
    let cases = [
        (
            "image.tagg",
            "t.yaml:2:3: target path image.tagg resolves to nothing: image has no key \"tagg\"",
        ),
        (
            "image.tag",
            "t.yaml:4:5: target path image.tag resolves to a block scalar",
        ),
        (
            "image",
            "t.yaml:2:3: target path image resolves to a mapping, not a scalar",
        ),
        (
            "list[2]",
            "t.yaml:5:7: target path list[2] resolves to nothing: list has 2 items, so [2] is out of range",
        ),
        (
            "list[name=a]",
            "resolves to nothing: no item of list has name: a",
        ),
        (
            "image[0]",
            "image is a mapping, not a sequence to take [0] of",
        ),
        ("m.a", "m has no key \"a\""),
        (
            "ref.tag",
            "ref is an alias, and crowsnest does not follow aliases",
        ),
        ("ref", "resolves to an alias"),
        ("empty", "resolves to an empty value"),
        ("num", "resolves to a value tagged tag:yaml.org,2002:int"),
        (
            "nothing",
            "t.yaml:1:1: target path nothing resolves to nothing: the document root has no key \"nothing\"",
        ),
    ];
    for (path, want) in cases {
        let got = resolve(text, path).unwrap_err().to_string();
        assert!(got.contains(want), "{path}\n got: {got}\nwant: {want}");
    }
}

#[test]
fn targets_in_two_documents_or_two_items_are_ambiguous() {
    let text = "image: {tag: a}\n---\nimage: {tag: b}\n";
    let err = resolve(text, "image.tag").unwrap_err().to_string();
    assert!(
        err.contains("matches in more than one document (document 1 line 1, document 2 line 3)"),
        "{err}"
    );
    let text = "l:\n- {name: a, v: 1}\n- {name: a, v: 2}\n";
    let err = resolve(text, "l[name=a].v").unwrap_err().to_string();
    assert!(
        err.contains("items on lines 2 and 3 of l both have name: a"),
        "{err}"
    );
}

#[test]
fn patch_keeps_the_style_and_quotes_only_when_needed() {
    let cases = [
        ("tag: 1.0.0\n", "1.0.0", "1.1.0", "tag: 1.1.0\n"),
        ("tag: 1.0.0\n", "1.0.0", "1.10", "tag: \"1.10\"\n"),
        ("tag: 1.0.0\n", "1.0.0", "yes", "tag: \"yes\"\n"),
        ("tag: 1.0.0\n", "1.0.0", "0x1", "tag: \"0x1\"\n"),
        ("tag: 1.0.0\n", "1.0.0", "1e3", "tag: \"1e3\"\n"),
        (
            "tag: 1.0.0\n",
            "1.0.0",
            "2024-01-02",
            "tag: \"2024-01-02\"\n",
        ),
        ("tag: '1.0.0'\n", "1.0.0", "it's", "tag: 'it''s'\n"),
        ("tag: '1.0.0'\n", "1.0.0", "on", "tag: 'on'\n"),
        (
            "tag: \"1.0.0\"\n",
            "1.0.0",
            "a\"b\\c\td",
            "tag: \"a\\\"b\\\\c\\td\"\n",
        ),
        (
            "- {image: a:1, x: y}\n",
            "a:1",
            "b:2",
            "- {image: b:2, x: y}\n",
        ),
        ("- [a:1, y]\n", "a:1", "b,c", "- [\"b,c\", y]\n"),
        (
            "tag: multi\n  line # c\n",
            "multi line",
            "one",
            "tag: one # c\n",
        ),
        (
            "tag: x # {\"$imagepolicy\": \"a:b\"}",
            "x",
            "z",
            "tag: z # {\"$imagepolicy\": \"a:b\"}",
        ),
    ];
    for (text, old, new, want) in cases {
        assert_eq!(
            set(text, old, new).unwrap(),
            want,
            "{text:?} {old} -> {new}"
        );
    }
}

#[test]
fn patch_preserves_crlf_bom_tabs_and_missing_final_newline() {
    let text = "\u{feff}# h\u{e9}\t\u{1F980}\r\n\r\nimage: a:1\t# c\r\n---\r\nother:   'x'";
    let out = set(text, "a:1", "a:2").unwrap();
    assert_eq!(out, text.replace("a:1", "a:2"));
}

#[test]
fn patch_refuses_what_it_cannot_rewrite_exactly() {
    let refuse = |text: &str, old: &str, want: &str| {
        let err = set(text, old, "new").unwrap_err();
        assert!(err.to_string().contains(want), "{text:?}: {err}");
        assert_eq!(err.kind(), "not_settable");
    };
    refuse("a: |\n  block\n", "block\n", "block scalar");
    refuse("a: >-\n  folded\n", "folded", "block scalar");
    refuse("a: 1\n", "a", "mapping key");
    refuse("a: !!int 1\n", "1", "tag tag:yaml.org,2002:int");
    refuse("a: !custom x\n", "x", "writes strings only");
}

#[test]
fn patch_keeps_string_tags() {
    assert_eq!(
        set("a: !!str 1.0\n", "1.0", "2.0").unwrap(),
        "a: !!str \"2.0\"\n"
    );
    assert_eq!(set("a: ! x\n", "x", "w").unwrap(), "a: ! w\n");
}

#[test]
fn patch_edits_several_scalars_and_skips_unchanged_ones() {
    let text = "a: x:1 # c\nb: 'y'\nc: z\n";
    let spans = scalars("t.yaml", text).unwrap();
    let span = |v: &str| spans.iter().find(|s| s.value == v).unwrap().span.clone();
    let edits = vec![
        Edit {
            span: span("z"),
            value: "zz".into(),
        },
        Edit {
            span: span("x:1"),
            value: "x:2".into(),
        },
        Edit {
            span: span("y"),
            value: "y".into(),
        },
    ];
    assert_eq!(
        patch("t.yaml", text, &edits).unwrap(),
        "a: x:2 # c\nb: 'y'\nc: zz\n"
    );
    assert_eq!(patch("t.yaml", text, &edits[2..]).unwrap(), text);
    assert_eq!(patch("t.yaml", text, &[]).unwrap(), text);
}

#[test]
fn patch_refuses_stale_or_overlapping_edits() {
    let text = "a: x:1\nb: y\n";
    let err = patch(
        "t.yaml",
        text,
        &[Edit {
            span: 3..5,
            value: "q".into(),
        }],
    )
    .unwrap_err();
    assert_eq!(err.kind(), "edit");
    assert!(
        err.to_string()
            .starts_with("t.yaml:1:4: bytes 3..5 are not a scalar"),
        "{err}"
    );
    let edit = Edit {
        span: 3..6,
        value: "q".into(),
    };
    let err = patch("t.yaml", text, &[edit.clone(), edit]).unwrap_err();
    assert!(err.to_string().contains("overlap"), "{err}");
    let err = patch(
        "t.yaml",
        "a: [",
        &[Edit {
            span: 3..4,
            value: "q".into(),
        }],
    )
    .unwrap_err();
    assert_eq!(err.kind(), "parse");
}

#[test]
fn patch_output_round_trips_through_markers() {
    let text = format!("spec:\n  image: \"old:1\" {M}\n");
    let s = &find_markers("t.yaml", &text).unwrap()[0];
    let out = patch(
        "t.yaml",
        &text,
        &[Edit {
            span: s.span.clone(),
            value: "new:1.10".into(),
        }],
    )
    .unwrap();
    let again = &find_markers("t.yaml", &out).unwrap()[0];
    assert_eq!(again.value, "new:1.10");
    assert_eq!(again.policy, s.policy);
}

#[test]
fn a_parsed_manifest_gives_the_same_answers_as_the_free_functions() {
    let text = format!("image:\n  repository: r\n  tag: 1.0.0 {M_TAG}\nbad: | {M}\n  x\n");
    let manifest = Manifest::parse("t.yaml", &text).unwrap();
    let scan = manifest.scan_markers();
    assert_eq!(scan, scan_markers("t.yaml", &text).unwrap());
    assert_eq!(scan.setters.len(), 1);
    assert_eq!(
        manifest.markers().unwrap_err(),
        find_markers("t.yaml", &text).unwrap_err()
    );
    let policy = PolicyId::new("apps", "podinfo");
    let via_target = manifest
        .resolve_target(&policy, &target("image.tag"))
        .unwrap();
    assert_eq!(
        via_target,
        resolve_target("t.yaml", &text, &policy, &target("image.tag")).unwrap()
    );
    assert_eq!(via_target.span, scan.setters[0].span);
    let edits = [Edit {
        span: via_target.span.clone(),
        value: "1.10".into(),
    }];
    let once = manifest.patch(&edits).unwrap();
    assert_eq!(once, patch("t.yaml", &text, &edits).unwrap());
    assert!(once.contains("tag: \"1.10\" #"), "{once}");
    assert_eq!(manifest.scalars(), scalars("t.yaml", &text).unwrap());
}

/// Review of issue 15: trailing comments that mention a marker without
/// being one were skipped in silence. The fuzz seed holding each form
/// scans to its two good markers and one problem per malformed one; the
/// own-line how-to comment is neither.
#[test]
fn r15_every_trailing_mention_that_is_not_a_marker_is_a_problem() {
    let text = include_str!("../../fuzz/seeds/patcher/trailing-mentions.yaml");
    let scan = scan_markers("t.yaml", text).unwrap();
    let values: Vec<(u32, &str)> = scan
        .setters
        .iter()
        .map(|s| (s.at.line, s.value.as_str()))
        .collect();
    assert_eq!(values, [(9, "ghcr.io/org/app:1.0.0"), (18, "1.0.0")]);
    let problems: Vec<String> = scan.problems.iter().map(ToString::to_string).collect();
    let lines: Vec<u32> = scan.problems.iter().map(|p| p.at().position.line).collect();
    assert_eq!(lines, [11, 13, 15, 17], "{problems:#?}");
    assert!(
        problems.iter().all(|p| p.contains("not a JSON object")),
        "{problems:#?}"
    );
}
