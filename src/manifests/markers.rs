//! Flux's setter markers: a line comment holding a JSON object,
//! `{"$imagepolicy": "<namespace>:<name>[:tag|:name|:digest]"}`, or the
//! long kyaml form `{"$ref": "#/definitions/io.k8s.cli.setters.<same>"}`.
//!
//! Flux (kyaml's fieldmeta) reads the comment after stripping its leading
//! `#`s, as a JSON object of strings; the short key wins over `$ref`.
//! crowsnest reads the same comments, and differs in two ways meant to
//! help `crowsnest check`: a trailing comment that mentions `$imagepolicy`
//! or a setters `$ref` but is not a valid marker (`# $imagepolicy: a:b`,
//! an unclosed object) is an error rather than silently ignored (its value
//! is left alone), and a marker must sit on the line of the scalar it
//! sets, after it. As in Flux, a comment on a line of its own is never a
//! marker, whatever it says.

use memchr::memmem;
use std::sync::LazyLock;

use super::tree::{Comment, Kind, NodeId, Role, Tree};
use super::{ManifestError, Setter};
use crate::model::{Field, Located, PolicyId};

/// Flux's short-hand key, as any mention of it reads (quoted in a valid
/// marker, perhaps not in a mistaken one).
const SHORT_KEY: &[u8] = b"$imagepolicy";
/// What the long form's `$ref` value starts with.
const SETTER_REF_PREFIX: &str = "#/definitions/io.k8s.cli.setters.";

static SHORT_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(SHORT_KEY));
static REF_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(SETTER_REF_PREFIX.as_bytes()));

/// True when `text` mentions `$imagepolicy` or a setters `$ref`; a file
/// without either has no markers (valid or not) and need not be parsed.
pub fn may_contain_markers(text: &[u8]) -> bool {
    SHORT_FINDER.find(text).is_some() || REF_FINDER.find(text).is_some()
}

/// A marker's policy and field, or why the comment is not a valid marker.
pub(crate) type MarkerSpec = Result<(PolicyId, Field), String>;

/// What a comment says, if it is meant as a marker: any comment that
/// mentions `$imagepolicy` or a setters `$ref` is.
pub(crate) fn parse_comment(text: &str) -> Option<MarkerSpec> {
    let body = text.trim_start_matches('#').trim();
    if !may_contain_markers(body.as_bytes()) {
        return None;
    }
    if !body.starts_with('{') {
        return Some(Err(
            "marker comment is not a JSON object; write {\"$imagepolicy\": \"<namespace>:<name>\"}"
                .into(),
        ));
    }
    Some(parse_marker_json(body))
}

/// The policies a text's marker mentions name, read loosely from the raw
/// bytes (`"$imagepolicy": "ns:name"`, `$imagepolicy: ns:name`, a setters
/// `$ref`), sorted and without repeats. Lines that are comments of their
/// own are skipped, as they are never markers. For a file that does not
/// parse or a marker that is malformed: which policies they hold back.
pub fn mentioned_policies(text: &str) -> Vec<PolicyId> {
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || !may_contain_markers(line.as_bytes()) {
            continue;
        }
        for start in SHORT_FINDER.find_iter(line.as_bytes()) {
            let rest = &line[start + SHORT_KEY.len()..];
            let rest = rest.trim_start_matches('"').trim_start();
            if let Some(value) = rest.strip_prefix(':') {
                found.extend(setter_id(value.trim_start()));
            }
        }
        for start in REF_FINDER.find_iter(line.as_bytes()) {
            found.extend(setter_id(&line[start + SETTER_REF_PREFIX.len()..]));
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The policy of the setter name `text` starts with, quoted or not.
fn setter_id(text: &str) -> Option<PolicyId> {
    let text = text.strip_prefix('"').unwrap_or(text);
    let end = text
        .find(|c: char| c == '"' || c == ',' || c == '}' || c.is_whitespace())
        .unwrap_or(text.len());
    parse_setter_name(&text[..end]).ok().map(|(id, _)| id)
}

fn parse_marker_json(body: &str) -> Result<(PolicyId, Field), String> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body)
        .map_err(|e| {
            format!(
                "marker comment is not a JSON object ({e}); write {{\"$imagepolicy\": \"<namespace>:<name>\"}}"
            )
        })?;
    let short = object.get("$imagepolicy");
    let setter = match short {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.as_str(),
        Some(serde_json::Value::String(_)) => {
            return Err("marker \"$imagepolicy\" is empty; write \"<namespace>:<name>\"".into());
        }
        Some(other) => {
            return Err(format!(
                "marker \"$imagepolicy\" must be a string \"<namespace>:<name>\", not {other}"
            ));
        }
        None => match object.get("$ref") {
            Some(serde_json::Value::String(r)) => {
                r.strip_prefix(SETTER_REF_PREFIX).ok_or_else(|| {
                    format!("marker \"$ref\" {r:?} does not start with {SETTER_REF_PREFIX:?}")
                })?
            }
            Some(other) => {
                return Err(format!("marker \"$ref\" must be a string, not {other}"));
            }
            None => {
                return Err(
                    "marker comment has no \"$imagepolicy\" key; write {\"$imagepolicy\": \"<namespace>:<name>\"}"
                        .into(),
                );
            }
        },
    };
    parse_setter_name(setter)
}

/// `ns:name`, `ns:name:tag`, `ns:name:name`, `ns:name:digest`.
pub(crate) fn parse_setter_name(setter: &str) -> Result<(PolicyId, Field), String> {
    let parts: Vec<&str> = setter.split(':').collect();
    let valid = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == '"');
    let (namespace, name, field) = match parts.as_slice() {
        [ns, name] => (*ns, *name, Field::Image),
        [ns, name, suffix] => {
            let field = match *suffix {
                "tag" => Field::Tag,
                "name" => Field::Name,
                "digest" => Field::Digest,
                other => {
                    return Err(format!(
                        "marker {setter:?} ends in {other:?}; the setter suffix is one of tag, name, digest"
                    ));
                }
            };
            (*ns, *name, field)
        }
        [_] => {
            return Err(format!(
                "marker {setter:?} has no namespace; write \"<namespace>:{setter}\" (for example \"default:{setter}\")"
            ));
        }
        _ => {
            return Err(format!(
                "marker {setter:?} is not <namespace>:<name>[:tag|:name|:digest]"
            ));
        }
    };
    if !valid(namespace) || !valid(name) {
        return Err(format!(
            "marker {setter:?} is not <namespace>:<name>[:tag|:name|:digest]"
        ));
    }
    Ok((PolicyId::new(namespace, name), field))
}

/// Every marker in the tree, each either the scalar it sets or why it
/// cannot set one.
pub(crate) fn scan(file: &str, text: &str, tree: &Tree<'_>) -> Vec<Result<Setter, ManifestError>> {
    let candidates: Vec<(&Comment<'_>, MarkerSpec)> = tree
        .comments
        .iter()
        .filter(|c| !on_a_line_of_its_own(text, c))
        .filter_map(|c| parse_comment(&c.text).map(|parsed| (c, parsed)))
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    // Nodes that end at a token a marker can follow, by where they end.
    let mut tokens: Vec<(usize, NodeId)> = tree
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| match n.kind {
            Kind::Mapping { flow } | Kind::Sequence { flow } => flow,
            _ => true,
        })
        .map(|(id, n)| (n.span.end, id))
        .collect();
    tokens.sort_unstable();
    let mut out = Vec::new();
    for (comment, parsed) in candidates {
        let at = Located::new(file, comment.start);
        let result = parsed
            .map_err(|message| ManifestError::Marker {
                at: at.clone(),
                message,
            })
            .and_then(|(policy, field)| {
                let id = attach(file, text, tree, &tokens, comment)?;
                let node = &tree.nodes[id];
                let (value, _) = node.scalar().ok_or_else(|| ManifestError::NotSettable {
                    at: at.clone(),
                    message: format!("marker is on {}, not a scalar", node.describe()),
                })?;
                Ok(Setter {
                    policy,
                    field,
                    at: node.start,
                    span: node.span.clone(),
                    value: value.to_owned(),
                })
            });
        out.push(result);
    }
    out
}

/// A comment with nothing but blanks before it on its line. Flux's rule:
/// such a comment is never a setter, whatever it says (a how-to comment
/// quoting a marker is documentation, not a marker).
fn on_a_line_of_its_own(text: &str, comment: &Comment<'_>) -> bool {
    let c = comment.span.start;
    let line_start = text[..c].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..c]
        .trim_start_matches([' ', '\t'])
        .is_empty()
}

/// The scalar a marker comment sets: the last node that ends before the
/// comment on the comment's line.
fn attach(
    file: &str,
    text: &str,
    tree: &Tree<'_>,
    tokens: &[(usize, NodeId)],
    comment: &Comment<'_>,
) -> Result<NodeId, ManifestError> {
    let at = Located::new(file, comment.start);
    let not_settable = |message: String| ManifestError::NotSettable {
        at: at.clone(),
        message,
    };
    let line = comment.start.line;
    let c = comment.span.start;
    let split = tokens.partition_point(|&(end, _)| end <= c);
    let before = split
        .checked_sub(1)
        .map(|i| tokens[i].1)
        .filter(|&id| tree.nodes[id].end_line == line);
    // The node right after the comment: an empty sequence item (`- # m`)
    // or a block scalar whose header precedes the comment.
    let after = tokens[split..]
        .iter()
        .map(|&(_, id)| id)
        .filter(|&id| tree.nodes[id].span.start >= c)
        .min_by_key(|&id| tree.nodes[id].span.start);
    let block_header_before_comment = {
        let line_start = text[..c].rfind('\n').map_or(0, |i| i + 1);
        let head = text[line_start..c].trim_end();
        let last = head.rsplit([' ', '\t']).next().unwrap_or("");
        let last = last.trim_end_matches(|ch: char| ch.is_ascii_digit() || ch == '-' || ch == '+');
        last == "|" || last == ">"
    };
    if let Some(next) = after.map(|id| &tree.nodes[id]) {
        let is_block = next.scalar().is_some_and(|(_, s)| s.is_block());
        if is_block && block_header_before_comment {
            return Err(not_settable(
                "marker is on a block scalar (| or >); crowsnest only rewrites plain and quoted scalars, so write the value on one line"
                    .into(),
            ));
        }
        if before.is_none() && next.span.is_empty() && next.start.line == line {
            return Err(not_settable(
                "marker is on an empty value; write the current value before the marker".into(),
            ));
        }
    }
    let Some(id) = before else {
        return Err(not_settable(
            "marker follows no value on its line; put it after the value it sets, on the same line"
                .into(),
        ));
    };
    let node = &tree.nodes[id];
    match (&node.kind, node.role) {
        (Kind::Scalar { .. }, Role::Key) => {
            let key = node.scalar().map_or("", |s| s.0);
            let value = tree.value_of_key(id).map(|v| &tree.nodes[v]);
            Err(not_settable(match value {
                Some(v) if v.scalar().is_some_and(|(_, s)| s.is_block()) => {
                    "marker is on a block scalar (| or >); crowsnest only rewrites plain and quoted scalars, so write the value on one line".into()
                }
                Some(v) if v.span.is_empty() && v.end_line == line => {
                    "marker is on an empty value; write the current value before the marker".into()
                }
                Some(v) if v.span.start < c => format!(
                    "marker is on {}, the value of {key:?}; markers go after a scalar value",
                    v.describe()
                ),
                Some(v) if v.start.line > line => format!(
                    "marker follows the key {key:?}, but its value is {} on line {}; put the marker after a scalar value on its line",
                    v.describe(),
                    v.start.line
                ),
                _ => format!("marker is on the mapping key {key:?}, not on a value"),
            }))
        }
        (Kind::Scalar { style, .. }, _) if style.is_block() => Err(not_settable(
            "marker is on a block scalar (| or >); crowsnest only rewrites plain and quoted scalars, so write the value on one line".into(),
        )),
        (Kind::Scalar { .. }, _) if node.span.is_empty() => Err(not_settable(
            "marker is on an empty value; write the current value before the marker".into(),
        )),
        (Kind::Scalar { .. }, _) if !node.string_tag => Err(not_settable(format!(
            "marker is on a value tagged {}; crowsnest writes strings only",
            node.tag.as_deref().unwrap_or("?")
        ))),
        (Kind::Scalar { .. }, _) => Ok(id),
        (Kind::Alias(_), _) => Err(not_settable(format!(
            "marker is on the alias {}; put it on the anchored value instead",
            &text[node.span.clone()]
        ))),
        (Kind::Mapping { .. } | Kind::Sequence { .. }, _) => Err(not_settable(format!(
            "marker follows the end of {}, not a scalar value; break the collection over lines and put the marker after the value, before the closing bracket",
            node.describe()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flux_marker_forms_parse() {
        let cases = [
            (r#"{"$imagepolicy": "default:podinfo"}"#, Field::Image),
            (r#" {"$imagepolicy":"default:podinfo:tag"}"#, Field::Tag),
            (r#"{"$imagepolicy": "default:podinfo:name"}"#, Field::Name),
            (
                r#"{"$imagepolicy": "default:podinfo:digest"}"#,
                Field::Digest,
            ),
            (
                r##"{"$ref": "#/definitions/io.k8s.cli.setters.default:podinfo"}"##,
                Field::Image,
            ),
            (
                r##"{"$ref":"#/definitions/io.k8s.cli.setters.default:podinfo:tag"}"##,
                Field::Tag,
            ),
            (r#"# {"$imagepolicy": "default:podinfo"}"#, Field::Image),
        ];
        for (text, field) in cases {
            let (policy, got) = parse_comment(text).unwrap().unwrap();
            assert_eq!(policy, PolicyId::new("default", "podinfo"), "{text}");
            assert_eq!(got, field, "{text}");
        }
    }

    #[test]
    fn ordinary_comments_are_not_markers() {
        for text in [
            " just a comment",
            " see the imagepolicy docs",
            r#" {"other": "json"}"#,
            "",
        ] {
            assert!(parse_comment(text).is_none(), "{text}");
        }
    }

    /// Review of issue 15: a trailing comment that mentions `$imagepolicy`
    /// without being a JSON object was neither used nor reported.
    #[test]
    fn r15_comments_mentioning_a_marker_without_braces_are_errors() {
        for text in [
            " $imagepolicy: default:app",
            r#" "$imagepolicy": "default:app""#,
            r#"# see the "$imagepolicy" docs"#,
            " #/definitions/io.k8s.cli.setters.default:app",
        ] {
            let err = parse_comment(text).unwrap().unwrap_err();
            assert!(err.contains("not a JSON object"), "{text}: {err}");
        }
    }

    #[test]
    fn mentioned_policies_reads_valid_and_malformed_markers() {
        let text = concat!(
            "# own line: {\"$imagepolicy\": \"docs:howto\"}\n",
            "a: x:1 # {\"$imagepolicy\": \"default:app:tag\"}\n",
            "b: [x:1 # $imagepolicy: prod:web\n",
            "c: x:1 # {\"$imagepolicy\" : \"default:app\"\n",
            "d: x:1 # {\"$ref\": \"#/definitions/io.k8s.cli.setters.team:api\"}\n",
            "e: x:1 # {\"$imagepolicy\": \"no-namespace\"}\n",
        );
        let ids: Vec<String> = mentioned_policies(text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ids, ["default:app", "prod:web", "team:api"]);
        assert!(mentioned_policies("a: b # plain\n").is_empty());
    }

    #[test]
    fn malformed_markers_say_what_is_wrong() {
        let cases = [
            (r#"{"$imagepolicy": "podinfo"}"#, "has no namespace"),
            (
                r#"{"$imagepolicy": "a:b:version"}"#,
                "one of tag, name, digest",
            ),
            (
                r#"{"$imagepolicy": "a:b:c:d"}"#,
                "is not <namespace>:<name>",
            ),
            (r#"{"$imagepolicy": ""}"#, "is empty"),
            (r#"{"$imagepolicy": 3}"#, "must be a string"),
            (r#"{"$imagepolicy": "a:b""#, "not a JSON object"),
            (r#"{"$imagepolicy": "a:b"} trailing"#, "not a JSON object"),
            (r#"{"$imagepolicy": " :b"}"#, "is not <namespace>:<name>"),
            (
                r##"{"x": 1, "$refs": "#/definitions/io.k8s.cli.setters.a:b"}"##,
                "no \"$imagepolicy\" key",
            ),
        ];
        for (text, want) in cases {
            let err = parse_comment(text).unwrap().unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn the_fast_path_looks_for_both_forms() {
        assert!(may_contain_markers(br#"a: b # {"$imagepolicy": "a:b"}"#));
        assert!(may_contain_markers(
            br##"a: b # {"$ref": "#/definitions/io.k8s.cli.setters.a:b"}"##
        ));
        assert!(may_contain_markers(b"a: b # $imagepolicy without quotes"));
        assert!(!may_contain_markers(b"a: b # imagepolicy"));
        assert!(!may_contain_markers(b""));
    }
}
