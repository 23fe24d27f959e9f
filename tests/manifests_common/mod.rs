//! Shared by the manifests tests and benchmarks: the fixture corpus, the
//! image each fixture policy moves to, and an independent check of the
//! patcher's guarantees.
#![allow(dead_code)]

use std::path::PathBuf;

use crowsnest::manifests::{self, Edit, Setter};
use crowsnest::model::{Field, ImageName, Selection};

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

/// Every fixture file name, sorted.
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixture directory")
        .map(|e| {
            e.expect("fixture entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| manifests::is_manifest_path(n))
        .collect();
    names.sort();
    names
}

pub fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(name)).expect("fixture is UTF-8")
}

/// What each fixture policy selects next: image, tag, digest.
pub fn selection_for(policy: &str) -> (&'static str, &'static str, Option<&'static str>) {
    let zeros = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    match policy {
        "apps:podinfo" => ("ghcr.io/stefanprodan/podinfo", "6.2.0", None),
        "apps:nginx" => ("docker.io/library/nginx", "1.25.4", Some(zeros)),
        "apps:busybox" => ("busybox", "1.36.1", None),
        "data:busybox" => ("docker.io/library/busybox", "1.36.1", None),
        "data:redis" => ("docker.io/library/redis", "7.2.4", None),
        "data:bitnami-redis" => ("bitnami/redis", "7.2.4-debian-11-r1", None),
        "data:bitnami-sentinel" => ("bitnami/redis-sentinel", "7.2.4-debian-11-r1", None),
        "monitoring:node-exporter" => ("quay.io/prometheus/node-exporter", "v1.8.0", None),
        "batch:report" => ("ghcr.io/acme/report", "1.5.0", None),
        "batch:fetcher" => ("ghcr.io/acme/fetcher", "0.10.0", None),
        "tools:alpine" => ("alpine", "3.19.0", None),
        "q:plain" => ("q", "1.10", None),
        "q:single" => ("q", "yes", None),
        "q:double" => ("q", "2.0\"beta\\", None),
        "q:tagged" => ("q", "1.10", None),
        "q:escaped" => ("q", "\u{fc}\t2", None),
        "q:anchored" => ("q", "2.0.0", None),
        other => panic!("no selection for fixture policy {other}"),
    }
}

/// The value a setter gets from [`selection_for`].
pub fn new_value(setter: &Setter) -> String {
    let (image, tag, digest) = selection_for(&setter.policy.to_string());
    let image = ImageName::parse(image).expect("fixture image names parse");
    let selection = Selection {
        tag: tag.to_owned(),
        digest: digest.map(str::to_owned),
    };
    match setter.field {
        Field::Digest => digest.expect("digest policies have a digest").to_owned(),
        Field::Image => Selection {
            digest: None,
            ..selection
        }
        .reference(&image),
        field => selection.value(&image, field).expect("a value"),
    }
}

pub fn edits_for(setters: &[Setter]) -> Vec<Edit> {
    setters
        .iter()
        .map(|s| Edit {
            span: s.span.clone(),
            value: new_value(s),
        })
        .collect()
}

/// 1-based numbers of the original lines a patch changed or removed.
pub fn changed_lines(old: &str, new: &str) -> Vec<usize> {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut lines: Vec<usize> = diff
        .ops()
        .iter()
        .flat_map(|op| {
            let (tag, old_range, _) = op.as_tag_tuple();
            match tag {
                similar::DiffTag::Equal | similar::DiffTag::Insert => 0..0,
                _ => old_range,
            }
        })
        .map(|i| i + 1)
        .collect();
    lines.dedup();
    lines
}

/// The patcher's promises, checked from the outside:
/// 1. the patched text parses;
/// 2. its scalars are the original's, at the same paths, except the
///    edited ones, which hold their new values (and its markers are the
///    original's with those values);
/// 3. every byte outside the replaced spans is identical;
/// 4. where serde-saphyr reads the original as data, it reads the patched
///    text as the same data with the new strings (types included: a
///    `1.10` written unquoted would come back as a number).
pub fn check_guarantees(file: &str, text: &str, edits: &[Edit], out: &str) -> Result<(), String> {
    let before = manifests::scalars(file, text).map_err(|e| format!("original: {e}"))?;
    let after =
        manifests::scalars(file, out).map_err(|e| format!("patched text does not parse: {e}"))?;
    if before.len() != after.len() {
        return Err(format!("{} scalars became {}", before.len(), after.len()));
    }
    let edited = |span: &std::ops::Range<usize>| edits.iter().find(|e| e.span == *span);
    let mut replaced: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> = Vec::new();
    for (b, a) in before.iter().zip(&after) {
        if b.path != a.path || b.document != a.document {
            return Err(format!("scalar moved: {:?} -> {:?}", b.path, a.path));
        }
        match edited(&b.span) {
            Some(edit) => {
                if a.value != edit.value {
                    return Err(format!(
                        "{:?} reads back as {:?}, not {:?}",
                        b.path, a.value, edit.value
                    ));
                }
                if b.value != edit.value {
                    replaced.push((b.span.clone(), a.span.clone()));
                } else if text[b.span.clone()] != out[a.span.clone()] {
                    return Err(format!("unchanged value {:?} was rewritten", b.value));
                }
            }
            None if a.value != b.value => {
                return Err(format!(
                    "{:?} changed from {:?} to {:?}",
                    b.path, b.value, a.value
                ));
            }
            None => {}
        }
    }
    // Bytes between and around the replaced spans.
    let (mut old_at, mut new_at) = (0, 0);
    for (old_span, new_span) in &replaced {
        if text.as_bytes().get(old_at..old_span.start) != out.as_bytes().get(new_at..new_span.start)
        {
            return Err(format!("bytes before {old_span:?} changed"));
        }
        old_at = old_span.end;
        new_at = new_span.end;
    }
    if text.as_bytes()[old_at..] != out.as_bytes()[new_at.min(out.len())..] {
        return Err("bytes after the last edit changed".into());
    }
    if replaced.is_empty() && text != out {
        return Err("no value changed but the text did".into());
    }
    // Markers: same policies and fields at the same places, new values.
    if let Ok(old_markers) = manifests::find_markers(file, text) {
        let new_markers =
            manifests::find_markers(file, out).map_err(|e| format!("markers after patch: {e}"))?;
        let summary = |m: &[Setter]| {
            m.iter()
                .map(|s| (s.policy.clone(), s.field))
                .collect::<Vec<_>>()
        };
        if summary(&old_markers) != summary(&new_markers) {
            return Err("markers changed".into());
        }
    }
    // Data as another reader types it. An anchored scalar's aliases change
    // with it, which the path-based expectation cannot follow: skip those.
    let anchored = edits.iter().any(|e| is_anchored(text, e.span.start));
    if anchored {
        return Ok(());
    }
    if let Ok(mut expected) =
        serde_saphyr::from_str_multiple::<serde_json::Value, Vec<serde_json::Value>>(text)
    {
        for (b, a) in before.iter().zip(&after) {
            if let Some(edit) = edited(&b.span) {
                if let Some(slot) = pointer(&mut expected, a.document, &a.path) {
                    *slot = serde_json::Value::String(edit.value.clone());
                }
            }
        }
        let got = serde_saphyr::from_str_multiple::<serde_json::Value, Vec<serde_json::Value>>(out)
            .map_err(|e| format!("serde-saphyr cannot read the patched text: {e}"))?;
        if got != expected {
            return Err(format!(
                "data differs:\n expected {expected:?}\n      got {got:?}"
            ));
        }
    }
    Ok(())
}

fn pointer<'v>(
    docs: &'v mut [serde_json::Value],
    document: usize,
    path: &[manifests::PathStep],
) -> Option<&'v mut serde_json::Value> {
    let mut current = docs.get_mut(document)?;
    for step in path {
        current = match step {
            manifests::PathStep::Key(k) => current.get_mut(k.as_str())?,
            manifests::PathStep::Index(i) => current.get_mut(*i)?,
            manifests::PathStep::ComplexKey => return None,
        };
    }
    Some(current)
}

/// True when the node at `start` has an `&anchor` in front of it.
fn is_anchored(text: &str, start: usize) -> bool {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..start]
        .split_whitespace()
        .rev()
        .take_while(|t| t.starts_with('&') || t.starts_with('!'))
        .any(|t| t.starts_with('&'))
}
