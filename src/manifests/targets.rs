//! Marker-less targets: a policy file's `targets:` entry names a scalar by
//! path (`image.tag`, `images[0].newTag`, `spec.containers[name=app].image`).
//!
//! The path is walked in every document of the file; it must name exactly
//! one scalar across them, so a multi-document file cannot silently have
//! the wrong document patched. Aliases are not followed: patching through
//! one would change the anchored value and every other alias of it.

use super::tree::{Kind, NodeId, Tree};
use super::{ManifestError, Setter};
use crate::model::{Located, PathSegment, Position, TargetPath};

/// How far a walk got before failing, and why.
struct Miss {
    depth: usize,
    at: Position,
    message: String,
}

/// Finds the scalar `path` names.
pub(crate) fn resolve(
    file: &str,
    tree: &Tree<'_>,
    path: &TargetPath,
) -> Result<NodeId, ManifestError> {
    let mut found: Vec<NodeId> = Vec::new();
    let mut best_miss: Option<Miss> = None;
    for document in &tree.documents {
        let Some(root) = document.root else {
            continue;
        };
        match walk(tree, root, path) {
            Ok(id) => found.push(id),
            Err(miss) => {
                if best_miss.as_ref().is_none_or(|b| miss.depth > b.depth) {
                    best_miss = Some(miss);
                }
            }
        }
    }
    match found.as_slice() {
        [id] => settable(file, tree, *id, path),
        [] => {
            let miss = best_miss.unwrap_or(Miss {
                depth: 0,
                at: Position::new(1, 1),
                message: "the file has no YAML document".into(),
            });
            Err(ManifestError::Target {
                at: Located::new(file, miss.at),
                message: format!("target path {path} resolves to nothing: {}", miss.message),
            })
        }
        [first, ..] => {
            let places: Vec<String> = found
                .iter()
                .map(|&id| {
                    format!(
                        "document {} line {}",
                        tree.document_of(id) + 1,
                        tree.nodes[id].start.line
                    )
                })
                .collect();
            Err(ManifestError::Target {
                at: Located::new(file, tree.nodes[*first].start),
                message: format!(
                    "target path {path} matches in more than one document ({}); use a marker comment on the one to set",
                    places.join(", ")
                ),
            })
        }
    }
}

/// The resolved node must be a scalar crowsnest can rewrite.
fn settable(
    file: &str,
    tree: &Tree<'_>,
    id: NodeId,
    path: &TargetPath,
) -> Result<NodeId, ManifestError> {
    let node = &tree.nodes[id];
    let problem = match &node.kind {
        Kind::Scalar { style, .. } if style.is_block() => Some(
            "a block scalar (| or >); crowsnest only rewrites plain and quoted scalars, so write the value on one line".to_owned(),
        ),
        Kind::Scalar { .. } if node.span.is_empty() => {
            Some("an empty value; write the current value first".to_owned())
        }
        Kind::Scalar { .. } if !node.string_tag => Some(format!(
            "a value tagged {}; crowsnest writes strings only",
            node.tag.as_deref().unwrap_or("?")
        )),
        Kind::Scalar { .. } => None,
        Kind::Alias(_) => Some("an alias; target the anchored value instead".to_owned()),
        Kind::Mapping { .. } | Kind::Sequence { .. } => {
            Some(format!("{}, not a scalar", node.describe()))
        }
    };
    match problem {
        None => Ok(id),
        Some(p) => Err(ManifestError::NotSettable {
            at: Located::new(file, node.start),
            message: format!("target path {path} resolves to {p}"),
        }),
    }
}

fn walk(tree: &Tree<'_>, root: NodeId, path: &TargetPath) -> Result<NodeId, Miss> {
    let mut current = root;
    for (depth, segment) in path.0.iter().enumerate() {
        let node = &tree.nodes[current];
        let so_far = if depth == 0 {
            "the document root".to_owned()
        } else {
            format!("{}", TargetPath(path.0[..depth].to_vec()))
        };
        let miss = |message: String| Miss {
            depth,
            at: node.start,
            message,
        };
        if let Kind::Alias(_) = node.kind {
            return Err(miss(format!(
                "{so_far} is an alias, and crowsnest does not follow aliases"
            )));
        }
        current = match segment {
            PathSegment::Key(key) => {
                let Kind::Mapping { .. } = node.kind else {
                    return Err(miss(format!(
                        "{so_far} is {}, not a mapping with key {key:?}",
                        node.describe()
                    )));
                };
                let matches: Vec<NodeId> = node
                    .children
                    .chunks(2)
                    .filter(|pair| tree.nodes[pair[0]].scalar().map(|s| s.0) == Some(key.as_str()))
                    .filter_map(|pair| pair.get(1).copied())
                    .collect();
                match matches.as_slice() {
                    [value] => *value,
                    [] => {
                        return Err(miss(format!("{so_far} has no key {key:?}")));
                    }
                    _ => {
                        return Err(miss(format!("{so_far} has key {key:?} more than once")));
                    }
                }
            }
            PathSegment::Index(index) => {
                let Kind::Sequence { .. } = node.kind else {
                    return Err(miss(format!(
                        "{so_far} is {}, not a sequence to take [{index}] of",
                        node.describe()
                    )));
                };
                match node.children.get(*index) {
                    Some(&item) => item,
                    None => {
                        return Err(miss(format!(
                            "{so_far} has {} items, so [{index}] is out of range",
                            node.children.len()
                        )));
                    }
                }
            }
            PathSegment::Match { key, value } => {
                let Kind::Sequence { .. } = node.kind else {
                    return Err(miss(format!(
                        "{so_far} is {}, not a sequence to pick [{key}={value}] from",
                        node.describe()
                    )));
                };
                let matches: Vec<NodeId> = node
                    .children
                    .iter()
                    .copied()
                    .filter(|&item| {
                        let item = &tree.nodes[item];
                        matches!(item.kind, Kind::Mapping { .. })
                            && item.children.chunks(2).any(|pair| {
                                tree.nodes[pair[0]].scalar().map(|s| s.0) == Some(key.as_str())
                                    && pair
                                        .get(1)
                                        .and_then(|&v| tree.nodes[v].scalar())
                                        .map(|s| s.0)
                                        == Some(value.as_str())
                            })
                    })
                    .collect();
                match matches.as_slice() {
                    [item] => *item,
                    [] => {
                        return Err(miss(format!("no item of {so_far} has {key}: {value}")));
                    }
                    [a, b, ..] => {
                        return Err(miss(format!(
                            "items on lines {} and {} of {so_far} both have {key}: {value}",
                            tree.nodes[*a].start.line, tree.nodes[*b].start.line
                        )));
                    }
                }
            }
        };
    }
    Ok(current)
}

/// A resolved target as a setter.
pub(crate) fn setter(
    tree: &Tree<'_>,
    id: NodeId,
    policy: &crate::model::PolicyId,
    field: crate::model::Field,
) -> Setter {
    let node = &tree.nodes[id];
    Setter {
        policy: policy.clone(),
        field,
        at: node.start,
        span: node.span.clone(),
        value: node.scalar().map(|s| s.0.to_owned()).unwrap_or_default(),
    }
}
