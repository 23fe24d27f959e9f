//! Arbitrary bytes through the marker finder, the target resolver and the
//! patcher: none may panic, and any text `patch` returns must keep its
//! guarantees (it parses; only the edited scalars changed, to exactly
//! their new values; every other byte is identical).
//!
//! Input: YAML text, optionally followed by `\0` and new values separated
//! by `\x01`; without them, values come from a built-in list of the
//! values YAML finds hardest to hold. Seed with tests/fixtures/manifests.
#![no_main]

use crowsnest::manifests::{self, Edit, ScalarInfo};
use crowsnest::model::{Field, Located, PathSegment, PolicyId, Position, Target, TargetPath};
use libfuzzer_sys::fuzz_target;

const TRICKY: &[&str] = &[
    "6.2.0",
    "ghcr.io/a/b:1.2.3",
    "1.10",
    "yes",
    "~",
    "",
    " ",
    "a: b",
    "a #b",
    "a,b",
    "[x]",
    "{y}",
    "*z",
    "&w",
    "!v",
    "'",
    "\"",
    "\\",
    "a\nb",
    "\r",
    "\t",
    "\u{feff}",
    "\u{85}",
    "\u{2028}",
    "---",
    "...",
    "- x",
    "? x",
    "0x1",
    "1e3",
    "2024-01-02",
    "é😀",
];

fuzz_target!(|data: &[u8]| {
    let (yaml, values) = match data.iter().rposition(|&b| b == 0) {
        Some(nul) => (&data[..nul], Some(&data[nul + 1..])),
        None => (data, None),
    };
    let text = match std::str::from_utf8(yaml) {
        Ok(t) => t,
        Err(e) => match std::str::from_utf8(&yaml[..e.valid_up_to()]) {
            Ok(t) => t,
            Err(_) => return,
        },
    };
    let values: Vec<String> = match values.map(String::from_utf8_lossy) {
        Some(v) if !v.is_empty() => v.split('\u{1}').map(str::to_owned).collect(),
        _ => TRICKY.iter().map(|s| (*s).to_owned()).collect(),
    };
    let seed = data
        .iter()
        .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)));

    let fast = manifests::may_contain_markers(text.as_bytes());
    let markers = manifests::find_markers("f.yaml", text);
    if let Ok(found) = &markers {
        assert!(
            fast || found.is_empty(),
            "the fast path skipped a file with markers"
        );
    }
    let _ = manifests::scan_markers("f.yaml", text);
    let _ = manifests::is_manifest_path(text);
    let Ok(scalars) = manifests::scalars("f.yaml", text) else {
        assert!(
            markers.is_err(),
            "markers found in a file that does not parse"
        );
        return;
    };

    // Targets: the path of a scalar resolves to it, to another document's
    // scalar of the same path (ambiguity error), or to an error.
    for (i, scalar) in scalars.iter().enumerate().take(8) {
        if let Some(path) = target_path(scalar) {
            let target = Target {
                file: "f.yaml".into(),
                path,
                field: Field::Tag,
                declared_at: Located::new("p.yaml", Position::new(1, 1)),
            };
            if let Ok(setter) =
                manifests::resolve_target("f.yaml", text, &PolicyId::new("a", "b"), &target)
            {
                let resolved = scalars.iter().find(|s| s.span == setter.span);
                assert!(
                    resolved.is_some_and(|s| s.path == scalar.path),
                    "target {i} resolved elsewhere"
                );
            }
        }
    }

    // Edits: every marker, plus settable scalars picked by the seed.
    let mut edits: Vec<Edit> = Vec::new();
    if let Ok(found) = &markers {
        for (i, m) in found.iter().enumerate() {
            edits.push(Edit {
                span: m.span.clone(),
                value: values[(seed as usize + i) % values.len()].clone(),
            });
        }
    }
    for (i, s) in scalars.iter().enumerate() {
        if s.settable && (seed >> (i % 61)) & 1 == 1 && !edits.iter().any(|e| e.span == s.span) {
            edits.push(Edit {
                span: s.span.clone(),
                value: values[(i + 7) % values.len()].clone(),
            });
        }
    }
    if let Ok(out) = manifests::patch("f.yaml", text, &edits) {
        check(text, &scalars, &edits, &out);
    }
});

fn target_path(scalar: &ScalarInfo) -> Option<TargetPath> {
    let mut segments = Vec::new();
    for step in &scalar.path {
        segments.push(match step {
            manifests::PathStep::Key(k) if !k.is_empty() && !k.contains(['.', '[', ']']) => {
                PathSegment::Key(k.clone())
            }
            manifests::PathStep::Index(i) if !segments.is_empty() => PathSegment::Index(*i),
            _ => return None,
        });
    }
    (!segments.is_empty()).then_some(TargetPath(segments))
}

fn check(text: &str, before: &[ScalarInfo], edits: &[Edit], out: &str) {
    let after = manifests::scalars("f.yaml", out).expect("patched text parses");
    assert_eq!(before.len(), after.len(), "scalar count changed");
    let (mut old_at, mut new_at) = (0, 0);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (&b.path, b.document),
            (&a.path, a.document),
            "a scalar moved"
        );
        match edits.iter().find(|e| e.span == b.span) {
            Some(edit) => {
                assert_eq!(a.value, edit.value, "edited value reads back differently");
                if b.value != edit.value {
                    assert_eq!(
                        &text.as_bytes()[old_at..b.span.start],
                        &out.as_bytes()[new_at..a.span.start],
                        "bytes outside the edits changed"
                    );
                    old_at = b.span.end;
                    new_at = a.span.end;
                }
            }
            None => assert_eq!(a.value, b.value, "an unedited scalar changed"),
        }
    }
    assert_eq!(
        &text.as_bytes()[old_at..],
        &out.as_bytes()[new_at..],
        "bytes after the last edit changed"
    );
}
