//! The byte-exact patch: splice new scalar text into the original bytes,
//! then prove the result is what was meant by parsing it again.
//!
//! Splicing means every byte outside the replaced spans is copied, so
//! comments, blank lines, indentation, key order, CRLF line ends, a BOM,
//! a missing final newline and other documents cannot change. The
//! re-parse catches the remaining risk, a new value that changes how its
//! surroundings parse: the patched stream must have the same documents,
//! nodes, keys, styles, tags, anchors and comments as the original, with
//! only the edited scalars holding their new values.

use std::collections::HashMap;
use std::ops::Range;

use super::tree::{Kind, NodeId, Role, Style, Tree, position_of_offset};
use super::{Edit, ManifestError, quote};
use crate::model::Located;

/// Patches `text`, whose parse is `tree` (with or without comments).
pub(crate) fn patch(
    file: &str,
    text: &str,
    tree: &Tree<'_>,
    edits: &[Edit],
) -> Result<String, ManifestError> {
    if edits.is_empty() {
        return Ok(text.to_owned());
    }
    // Scalars by span, for the edits to name them.
    let mut by_span: Vec<(usize, usize, NodeId)> = tree
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.kind, Kind::Scalar { .. }))
        .map(|(id, n)| (n.span.start, n.span.end, id))
        .collect();
    by_span.sort_unstable();

    let mut ordered: Vec<&Edit> = edits.iter().collect();
    ordered.sort_by_key(|e| (e.span.start, e.span.end));
    // (node, original span, rendered text, decoded value)
    let mut planned: Vec<(NodeId, Range<usize>, String, &str)> = Vec::new();
    let mut previous_end = 0;
    for (i, edit) in ordered.iter().enumerate() {
        let at = || Located::new(file, position_of_offset(text, edit.span.start));
        if i > 0 && edit.span.start < previous_end {
            return Err(ManifestError::Edit {
                at: at(),
                message: format!(
                    "two edits overlap at bytes {:?}; each scalar is set once per patch",
                    edit.span
                ),
            });
        }
        previous_end = edit.span.end;
        let found = by_span
            .binary_search_by_key(&(edit.span.start, edit.span.end), |&(s, e, _)| (s, e))
            .ok()
            .map(|i| by_span[i].2);
        let Some(id) = found else {
            return Err(ManifestError::Edit {
                at: at(),
                message: format!(
                    "bytes {:?} are not a scalar of this file (did the file change since it was read?)",
                    edit.span
                ),
            });
        };
        let node = &tree.nodes[id];
        let not_settable = |message: String| ManifestError::NotSettable {
            at: Located::new(file, node.start),
            message,
        };
        let Some((old, style)) = node.scalar() else {
            return Err(not_settable("not a scalar".into()));
        };
        if style.is_block() {
            return Err(not_settable(
                "this is a block scalar (| or >); crowsnest only rewrites plain and quoted scalars, so write the value on one line"
                    .into(),
            ));
        }
        if node.span.is_empty() {
            return Err(not_settable(
                "the value is empty; write the current value first".into(),
            ));
        }
        if node.role == Role::Key {
            return Err(not_settable(format!(
                "{old:?} is a mapping key; crowsnest sets values only"
            )));
        }
        if !node.string_tag {
            return Err(not_settable(format!(
                "the value has the tag {}; crowsnest writes strings only",
                node.tag.as_deref().unwrap_or("?")
            )));
        }
        if old == edit.value {
            continue;
        }
        let rendered = quote::render(&edit.value, style, node.in_flow);
        planned.push((id, edit.span.clone(), rendered, edit.value.as_str()));
    }
    if planned.is_empty() {
        return Ok(text.to_owned());
    }

    let growth: usize = planned.iter().map(|(_, _, r, _)| r.len()).sum();
    let mut out = String::with_capacity(text.len() + growth);
    let mut copied = 0;
    // Where each edited node's text lands in the output.
    let mut expected: HashMap<NodeId, (Range<usize>, &str)> = HashMap::new();
    for (id, span, rendered, value) in &planned {
        out.push_str(&text[copied..span.start]);
        let start = out.len();
        out.push_str(rendered);
        expected.insert(*id, (start..out.len(), value));
        copied = span.end;
    }
    out.push_str(&text[copied..]);

    verify(file, tree, &out, &expected)?;
    Ok(out)
}

/// Re-parses the patched text and compares it with the original tree:
/// the same documents and nodes in the same places, with the same keys,
/// values, styles, tags and anchors, except the edited scalars, which must
/// read back as exactly their new values from exactly the bytes written.
///
/// Comments are not compared (both trees are parsed without them, which
/// is a third faster): `patched` is the original with only the edited
/// spans replaced, so a comment could only appear or vanish through a
/// replaced span, and then that scalar would not read back as its value
/// from exactly its bytes.
fn verify(
    file: &str,
    before: &Tree<'_>,
    patched: &str,
    expected: &HashMap<NodeId, (Range<usize>, &str)>,
) -> Result<(), ManifestError> {
    let unsafe_at = |id: NodeId, message: String| ManifestError::Unsafe {
        at: Located::new(
            file,
            before
                .nodes
                .get(id)
                .map_or_else(Default::default, |n| n.start),
        ),
        message: format!("{message}; the file is left unchanged"),
    };
    let first = expected.keys().copied().min().unwrap_or(0);
    let after = Tree::parse_structure(file, patched).map_err(|e| {
        unsafe_at(
            first,
            format!("the patched file would not parse ({})", e.message()),
        )
    })?;
    if before.documents != after.documents {
        return Err(unsafe_at(
            first,
            "the patched file would have different documents".into(),
        ));
    }
    if before.nodes.len() != after.nodes.len() {
        return Err(unsafe_at(
            first,
            format!(
                "the patched file would have {} nodes instead of {}",
                after.nodes.len(),
                before.nodes.len()
            ),
        ));
    }
    for (id, (old, new)) in before.nodes.iter().zip(&after.nodes).enumerate() {
        let same_place = old.role == new.role
            && old.parent == new.parent
            && old.children == new.children
            && old.tag == new.tag
            && old.anchor == new.anchor
            && old.in_flow == new.in_flow;
        if !same_place {
            return Err(unsafe_at(
                id,
                "the new value would change the structure around it".into(),
            ));
        }
        match expected.get(&id) {
            None if old.kind != new.kind => {
                return Err(unsafe_at(
                    id,
                    "the new value would change another node of the file".into(),
                ));
            }
            None => {}
            Some((span, value)) => {
                let Kind::Scalar {
                    value: got,
                    style: new_style,
                } = &new.kind
                else {
                    return Err(unsafe_at(
                        id,
                        "the new value would not be read as a scalar".into(),
                    ));
                };
                let old_style = old.scalar().map(|s| s.1);
                let style_ok = old_style == Some(*new_style) || *new_style == Style::Double;
                if got != value || new.span != *span || !style_ok {
                    return Err(unsafe_at(
                        id,
                        format!("the new value {value:?} would be read back as {got:?}"),
                    ));
                }
                if *new_style == Style::Plain
                    && new.string_tag
                    && new.tag.is_none()
                    && quote::reads_as_non_string(got)
                {
                    return Err(unsafe_at(
                        id,
                        format!("the new value {value:?} would be read as a non-string"),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the verifier on a hand-made "patched" text, as if the scalar
    /// `old` had been replaced by `value` at `new_span`.
    fn check(text: &str, old: &str, patched: &str, value: &str) -> Result<(), ManifestError> {
        let tree = Tree::parse_structure("t.yaml", text).unwrap();
        let id = tree
            .nodes
            .iter()
            .position(|n| n.scalar().map(|s| s.0) == Some(old))
            .unwrap();
        let start = tree.nodes[id].span.start;
        let expected = HashMap::from([(id, (start..start + value.len(), value))]);
        verify("t.yaml", &tree, patched, &expected)
    }

    #[test]
    fn verification_accepts_exactly_the_intended_change() {
        check("a: x\nb: y\n", "x", "a: q\nb: y\n", "q").unwrap();
    }

    #[test]
    fn verification_refuses_any_other_difference() {
        let cases = [
            ("a: q\nb: z\n", "q", "change another node"),
            ("a: q\n", "q", "nodes instead of"),
            ("a: r\nb: y\n", "q", "would be read back as \"r\""),
            ("a: [q\nb: y\n", "q", "would not parse"),
            ("a: q\n---\nb: y\n", "q", "different documents"),
            ("[a, q, b, y]\n", "q", "structure"),
            ("a: 1.10\nb: y\n", "1.10", "read as a non-string"),
        ];
        for (patched, value, want) in cases {
            let err = check("a: x\nb: y\n", "x", patched, value).unwrap_err();
            assert_eq!(err.kind(), "unsafe_patch");
            assert!(err.to_string().contains(want), "{patched:?}: {err}");
            assert!(
                err.to_string().ends_with("the file is left unchanged"),
                "{err}"
            );
        }
    }
}
