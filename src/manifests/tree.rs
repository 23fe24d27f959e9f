//! A YAML stream as a flat arena of nodes with byte spans, built from
//! granit-parser's events. Markers, targets and the patcher all read this
//! one shape, and the patcher's verification compares two of them.

use std::borrow::Cow;
use std::ops::Range;

use granit_parser::{Event, Marker, Parser, ScalarStyle, StructureStyle};

use super::ManifestError;
use crate::model::{Located, Position};

pub(crate) type NodeId = usize;

/// How a scalar is written in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Single,
    Double,
    /// `|` block scalar.
    Literal,
    /// `>` block scalar.
    Folded,
}

impl Style {
    pub(crate) fn is_block(self) -> bool {
        matches!(self, Style::Literal | Style::Folded)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind<'a> {
    Scalar {
        value: Cow<'a, str>,
        style: Style,
    },
    /// An alias, by the anchor id it refers to.
    Alias(usize),
    Mapping {
        flow: bool,
    },
    Sequence {
        flow: bool,
    },
}

/// Where a node sits in its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The root node of a document.
    Root,
    /// A mapping key.
    Key,
    /// A mapping value.
    Value,
    /// A sequence item.
    Item,
}

#[derive(Clone, Debug)]
pub(crate) struct Node<'a> {
    pub kind: Kind<'a>,
    /// The explicit tag, resolved (`tag:yaml.org,2002:str`), if any.
    pub tag: Option<String>,
    /// True when the tag is absent or says "string" (`!!str`, or the
    /// non-specific `!`), so writing any text keeps the node's type.
    pub string_tag: bool,
    /// Anchor id defined on this node, 0 for none.
    pub anchor: usize,
    pub role: Role,
    pub parent: Option<NodeId>,
    /// Mapping: key, value, key, value...; sequence: the items.
    pub children: Vec<NodeId>,
    /// Scalars and aliases: the token, quotes included, tag and anchor
    /// excluded. Flow collections: opening to closing bracket. Block
    /// collections: first child's start to last child's end.
    pub span: Range<usize>,
    pub start: Position,
    /// 1-based line of the span's end.
    pub end_line: u32,
    /// True inside a flow collection (where `,[]{}` end a plain scalar).
    pub in_flow: bool,
}

impl Node<'_> {
    pub(crate) fn scalar(&self) -> Option<(&str, Style)> {
        match &self.kind {
            Kind::Scalar { value, style } => Some((value, *style)),
            _ => None,
        }
    }

    /// What the node is, for messages: "a mapping", "a block scalar"...
    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { style, .. } if style.is_block() => "a block scalar",
            Kind::Scalar { .. } if self.span.is_empty() => "an empty value",
            Kind::Scalar { .. } => "a scalar",
            Kind::Alias(_) => "an alias",
            Kind::Mapping { .. } => "a mapping",
            Kind::Sequence { .. } => "a sequence",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Comment<'a> {
    /// The text after `#`.
    pub text: Cow<'a, str>,
    /// `#` to the end of the line, line break excluded.
    pub span: Range<usize>,
    pub start: Position,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Document {
    pub root: Option<NodeId>,
    /// Starts with `---`.
    pub explicit: bool,
    /// `%YAML` version, if declared.
    pub version: Option<(u32, u32)>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Tree<'a> {
    pub nodes: Vec<Node<'a>>,
    pub documents: Vec<Document>,
    pub comments: Vec<Comment<'a>>,
}

pub(crate) fn position(marker: &Marker) -> Position {
    Position::new(
        u32::try_from(marker.line().max(1)).unwrap_or(u32::MAX),
        u32::try_from(marker.col().saturating_add(1)).unwrap_or(u32::MAX),
    )
}

/// The 1-based line and column (in characters) of a byte offset, for
/// messages about offsets that no parser event names.
pub(crate) fn position_of_offset(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..]
        .trim_start_matches('\u{feff}')
        .chars()
        .count()
        + 1;
    Position::new(
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

fn style_of(style: ScalarStyle) -> Style {
    match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted => Style::Single,
        ScalarStyle::DoubleQuoted => Style::Double,
        ScalarStyle::Literal => Style::Literal,
        ScalarStyle::Folded => Style::Folded,
    }
}

fn options(comments: bool) -> granit_parser::Options {
    granit_parser::options! {
        emit_comments: comments,
        // Long comment blocks (license headers, commented-out manifests)
        // are common; the default of 96 buffered comments would refuse
        // them. Memory stays linear in the file size either way.
        max_buffered_comment_events: usize::MAX,
    }
}

impl<'a> Tree<'a> {
    /// Parses every document of `text`, comments included. `file` only
    /// names the file in errors.
    pub(crate) fn parse(file: &str, text: &'a str) -> Result<Tree<'a>, ManifestError> {
        Self::parse_with(file, text, true)
    }

    /// Parses without collecting comments (`comments` stays empty): about
    /// a third faster, for everything but the marker scan.
    pub(crate) fn parse_structure(file: &str, text: &'a str) -> Result<Tree<'a>, ManifestError> {
        Self::parse_with(file, text, false)
    }

    fn parse_with(file: &str, text: &'a str, comments: bool) -> Result<Tree<'a>, ManifestError> {
        let mut tree = Tree::default();
        // Open collections, innermost last.
        let mut open: Vec<NodeId> = Vec::new();
        for next in Parser::new_from_str_with_options(text, options(comments)) {
            let (event, span) = next.map_err(|e| ManifestError::Parse {
                at: Located::new(file, position(e.marker())),
                message: e.info(),
            })?;
            let range = span.byte_range().ok_or_else(|| ManifestError::Parse {
                at: Located::new(file, position(&span.start)),
                message: "the YAML parser gave no byte offsets".into(),
            })?;
            let (kind, tag, anchor) = match event {
                Event::Comment(text, _placement) => {
                    tree.comments.push(Comment {
                        text,
                        span: range,
                        start: position(&span.start),
                    });
                    continue;
                }
                Event::DocumentStart(explicit, version) => {
                    tree.documents.push(Document {
                        root: None,
                        explicit,
                        version: version.map(|v| (v.major, v.minor)),
                    });
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let Some(id) = open.pop() else {
                        return Err(ManifestError::Parse {
                            at: Located::new(file, position(&span.start)),
                            message: "collection end without a start".into(),
                        });
                    };
                    let node = &tree.nodes[id];
                    let flow = matches!(
                        node.kind,
                        Kind::Mapping { flow: true } | Kind::Sequence { flow: true }
                    );
                    // Children close before their parent, so their spans
                    // are final here.
                    let last_child = node.children.last().map(|&last| &tree.nodes[last]);
                    let (end, end_line) = match (flow, last_child) {
                        (true, _) => (range.end, position(&span.end).line),
                        (false, Some(last)) => (last.span.end, last.end_line),
                        (false, None) => (node.span.start, node.start.line),
                    };
                    let node = &mut tree.nodes[id];
                    node.span.end = end.max(node.span.start);
                    node.end_line = end_line;
                    continue;
                }
                Event::Scalar(value, style, anchor, tag) => (
                    Kind::Scalar {
                        value,
                        style: style_of(style),
                    },
                    tag,
                    anchor,
                ),
                Event::Alias(id) => (Kind::Alias(id), None, 0),
                Event::MappingStart(style, anchor, tag) => (
                    Kind::Mapping {
                        flow: style == StructureStyle::Flow,
                    },
                    tag,
                    anchor,
                ),
                Event::SequenceStart(style, anchor, tag) => (
                    Kind::Sequence {
                        flow: style == StructureStyle::Flow,
                    },
                    tag,
                    anchor,
                ),
                _ => continue,
            };
            let id = tree.nodes.len();
            let parent = open.last().copied();
            let role = match parent.map(|p| &tree.nodes[p]) {
                None => Role::Root,
                Some(p) => match p.kind {
                    Kind::Mapping { .. } if p.children.len() % 2 == 0 => Role::Key,
                    Kind::Mapping { .. } => Role::Value,
                    _ => Role::Item,
                },
            };
            let parent_in_flow = parent.is_some_and(|p| tree.nodes[p].in_flow);
            let is_collection = matches!(kind, Kind::Mapping { .. } | Kind::Sequence { .. });
            let self_flow = matches!(
                kind,
                Kind::Mapping { flow: true } | Kind::Sequence { flow: true }
            );
            let string_tag = tag.as_ref().is_none_or(|t| {
                // The non-specific tag `!` reads as handle "" and suffix "!".
                t.is_yaml_core_schema_tag("str") || (t.handle().is_empty() && t.suffix() == "!")
            });
            tree.nodes.push(Node {
                kind,
                tag: tag.map(|t| t.to_string()),
                string_tag,
                anchor,
                role,
                parent,
                children: Vec::new(),
                span: range.clone(),
                start: position(&span.start),
                end_line: position(&span.end).line,
                in_flow: parent_in_flow || self_flow,
            });
            match parent {
                Some(p) => tree.nodes[p].children.push(id),
                None => {
                    if let Some(doc) = tree.documents.last_mut() {
                        doc.root = Some(id);
                    }
                }
            }
            if is_collection {
                open.push(id);
            }
        }
        Ok(tree)
    }

    /// The mapping value that belongs to key `key`.
    pub(crate) fn value_of_key(&self, key: NodeId) -> Option<NodeId> {
        let parent = self.nodes[key].parent?;
        let children = &self.nodes[parent].children;
        let at = children.iter().position(|&c| c == key)?;
        children.get(at + 1).copied()
    }

    /// The path from the document root to `id`, as a target path would
    /// spell it (`spec.containers[0].image`), for messages and tools.
    pub(crate) fn path_of(&self, id: NodeId) -> Vec<PathStep> {
        let mut steps = Vec::new();
        let mut current = id;
        while let Some(parent) = self.nodes[current].parent {
            let children = &self.nodes[parent].children;
            let at = children.iter().position(|&c| c == current).unwrap_or(0);
            match self.nodes[parent].kind {
                Kind::Mapping { .. } => {
                    let key_id = if at % 2 == 1 {
                        children[at - 1]
                    } else {
                        current
                    };
                    match self.nodes[key_id].scalar() {
                        Some((key, _)) => steps.push(PathStep::Key(key.to_owned())),
                        None => steps.push(PathStep::ComplexKey),
                    }
                }
                _ => steps.push(PathStep::Index(at)),
            }
            current = parent;
        }
        steps.reverse();
        steps
    }

    /// Which document (0-based) a node belongs to.
    pub(crate) fn document_of(&self, id: NodeId) -> usize {
        let mut root = id;
        while let Some(parent) = self.nodes[root].parent {
            root = parent;
        }
        self.documents
            .iter()
            .position(|d| d.root == Some(root))
            .unwrap_or(0)
    }
}

/// One step of a node's path from its document root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(usize),
    /// A key that is itself a collection.
    ComplexKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Tree<'_> {
        Tree::parse("t.yaml", text).unwrap()
    }

    #[test]
    fn spans_cover_quotes_and_roles_follow_the_structure() {
        let text = "a: 'x''y' # c\nb:\n  - \"q\"\n  - {k: v}\n";
        let tree = parse(text);
        let scalars: Vec<(&str, &str, Role, bool)> = tree
            .nodes
            .iter()
            .filter_map(|n| {
                n.scalar()
                    .map(|(v, _)| (v, &text[n.span.clone()], n.role, n.in_flow))
            })
            .collect();
        assert_eq!(
            scalars,
            vec![
                ("a", "a", Role::Key, false),
                ("x'y", "'x''y'", Role::Value, false),
                ("b", "b", Role::Key, false),
                ("q", "\"q\"", Role::Item, false),
                ("k", "k", Role::Key, true),
                ("v", "v", Role::Value, true),
            ]
        );
        assert_eq!(tree.comments.len(), 1);
        assert_eq!(&text[tree.comments[0].span.clone()], "# c");
        let v = tree
            .nodes
            .iter()
            .position(|n| n.scalar().map(|s| s.0) == Some("v"));
        assert_eq!(
            tree.path_of(v.unwrap()),
            vec![
                PathStep::Key("b".into()),
                PathStep::Index(1),
                PathStep::Key("k".into())
            ]
        );
    }

    #[test]
    fn every_document_has_its_root() {
        let tree = parse("a: 1\n---\n- x\n--- plain\n");
        assert_eq!(tree.documents.len(), 3);
        assert!(tree.documents.iter().all(|d| d.root.is_some()));
        assert!(!tree.documents[0].explicit && tree.documents[1].explicit);
        let last = tree.documents[2].root.unwrap();
        assert_eq!(tree.document_of(last), 2);
    }

    #[test]
    fn parse_errors_name_line_and_column() {
        let err = Tree::parse("bad.yaml", "a: b\nc: [d\n").unwrap_err();
        assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
        assert_eq!(err.kind(), "parse");
    }

    #[test]
    fn offsets_map_to_lines_and_character_columns() {
        let text = "\u{feff}a: é\r\nbb: c";
        assert_eq!(position_of_offset(text, 3), Position::new(1, 1));
        assert_eq!(position_of_offset(text, text.len()), Position::new(2, 6));
        assert_eq!(position_of_offset(text, 7), Position::new(1, 4));
    }
}
