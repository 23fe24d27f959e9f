//! Property tests of the patcher's guarantees over generated documents and
//! the fixture corpus: the patched file re-parses; its tree equals the
//! original except the edited scalars; every byte outside the replaced
//! spans is identical (checked by `manifests_common::check_guarantees`).
//!
//! The generator writes Kubernetes-like YAML the way people do: block
//! mappings and sequences with `- key:` items, one-line and multi-line
//! flow collections, every scalar style, block scalars as bystanders,
//! blank lines, own-line and trailing comments with tabs and unicode,
//! Flux markers in both forms, several documents, CRLF, a BOM and a
//! missing final newline.

mod manifests_common;

use crowsnest::manifests::{self, Edit};
use crowsnest::model::Field;
use manifests_common::*;
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

#[derive(Clone, Debug)]
enum Note {
    None,
    Comment(String),
    /// Policy index, field, long `$ref` form.
    Marker(u8, Field, bool),
}

#[derive(Clone, Debug)]
struct Scalar {
    value: String,
    style: Style,
    note: Note,
}

#[derive(Clone, Debug)]
enum Node {
    Scalar(Scalar),
    Map(Vec<(String, Node, u8)>, bool),
    Seq(Vec<(Node, u8)>, bool),
}

#[derive(Clone, Debug)]
struct Doc {
    documents: Vec<Node>,
    first_explicit: bool,
    crlf: bool,
    bom: bool,
    final_newline: bool,
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9.-]{0,8}(/[a-z0-9-]{1,8}){0,2}:[0-9]\\.[0-9]{1,2}\\.[0-9]",
        2 => "[0-9]\\.[0-9]{1,2}\\.[0-9]",
        1 => "[a-z]{1,6}( [a-z]{1,6}){0,2}",
        1 => "[ -~]{0,12}",
        1 => "[a-zé€😀'\"\\\\\t]{0,8}",
        1 => Just(String::new()),
    ]
}

/// New values, including everything plain YAML cannot hold as-is.
fn new_value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => value_strategy(),
        2 => prop::sample::select(vec![
            "1.10", "yes", "no", "on", "off", "y", "n", "true", "~", "null", "0x1", "0o7", "017",
            "1e3", "1_000", ".inf", "-.nan", "1:30", "2024-01-02", "2024-01-02T03:04:05Z", "<<",
            "=", "", " ", " lead", "trail ", "a: b", "a #b", "a,b", "[a]", "{a}", "*a", "&a",
            "!a", "%a", "@a", "`a", "-", "- a", "? a", ": a", "---", "...", "#", "'", "\"",
            "\\", "a\nb", "a\r\nb", "\t", "\u{85}", "\u{2028}", "\u{feff}", "\u{7f}", "\u{0}",
            "é", "😀", "a'b\"c",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn comment_strategy() -> impl Strategy<Value = String> {
    "[ a-zA-Z0-9\t.,:#é—🦀-]{0,16}"
}

fn field_strategy() -> impl Strategy<Value = Field> {
    prop::sample::select(vec![Field::Image, Field::Tag, Field::Name, Field::Digest])
}

fn note_strategy() -> impl Strategy<Value = Note> {
    prop_oneof![
        3 => Just(Note::None),
        1 => comment_strategy().prop_map(Note::Comment),
        2 => (0u8..3, field_strategy(), any::<bool>()).prop_map(|(p, f, l)| Note::Marker(p, f, l)),
    ]
}

fn scalar_strategy() -> impl Strategy<Value = Scalar> {
    let style = prop_oneof![
        4 => Just(Style::Plain),
        2 => Just(Style::Single),
        2 => Just(Style::Double),
        1 => Just(Style::Literal),
    ];
    (value_strategy(), style, note_strategy()).prop_map(|(value, style, note)| Scalar {
        value,
        style,
        note,
    })
}

fn node_strategy() -> impl Strategy<Value = Node> {
    let key = "[a-z][a-z0-9_-]{0,6}";
    let gap = 0u8..6;
    scalar_strategy()
        .prop_map(Node::Scalar)
        .prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                (
                    prop::collection::btree_map(key, (inner.clone(), gap.clone()), 1..6),
                    prop::bool::weighted(0.2)
                )
                    .prop_map(|(entries, flow)| Node::Map(
                        entries.into_iter().map(|(k, (v, g))| (k, v, g)).collect(),
                        flow
                    )),
                (
                    prop::collection::vec((inner, gap.clone()), 1..5),
                    prop::bool::weighted(0.2)
                )
                    .prop_map(|(items, flow)| Node::Seq(items, flow)),
            ]
        })
}

fn doc_strategy() -> impl Strategy<Value = Doc> {
    let root = prop::collection::btree_map("[a-z][a-z0-9]{0,6}", (node_strategy(), 0u8..6), 1..6)
        .prop_map(|m| Node::Map(m.into_iter().map(|(k, (v, g))| (k, v, g)).collect(), false));
    (
        prop::collection::vec(root, 1..4),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(documents, first_explicit, crlf, bom, final_newline)| Doc {
                documents,
                first_explicit,
                crlf,
                bom,
                final_newline,
            },
        )
}

/// A marker the renderer wrote: policy, field, decoded value.
type Expected = (String, Field, String);

struct Renderer {
    out: String,
    markers: Vec<Expected>,
}

fn plain_ok(value: &str) -> bool {
    let mut chars = value.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "./_-".contains(c) || c == ':')
        && !value.ends_with(':')
        && !manifests::reads_as_non_string(value)
}

fn quoted(value: &str, style: Style) -> String {
    match style {
        Style::Plain if plain_ok(value) => value.to_owned(),
        Style::Single
            if value
                .chars()
                .all(|c| (' '..='~').contains(&c) || c as u32 >= 0xa0) =>
        {
            format!("'{}'", value.replace('\'', "''"))
        }
        _ => {
            let mut s = String::from("\"");
            for c in value.chars() {
                match c {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    '\t' => s.push_str("\\t"),
                    c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                        s.push_str(&format!("\\x{:02x}", c as u32))
                    }
                    c => s.push(c),
                }
            }
            s.push('"');
            s
        }
    }
}

impl Renderer {
    fn note(&mut self, scalar: &Scalar) -> String {
        match &scalar.note {
            Note::None => String::new(),
            Note::Comment(c) => format!(" #{c}"),
            Note::Marker(p, field, long) => {
                let setter = match field.suffix() {
                    Some(s) => format!("ns:p{p}:{s}"),
                    None => format!("ns:p{p}"),
                };
                self.markers
                    .push((format!("ns:p{p}"), *field, scalar.value.clone()));
                if *long {
                    format!(" # {{\"$ref\": \"#/definitions/io.k8s.cli.setters.{setter}\"}}")
                } else {
                    format!(" # {{\"$imagepolicy\": \"{setter}\"}}")
                }
            }
        }
    }

    fn gap(&mut self, gap: u8, indent: usize) {
        if gap & 1 == 1 {
            self.out.push('\n');
        }
        if gap & 2 == 2 {
            self.out
                .push_str(&format!("{}# note\tcafé 🦀\n", " ".repeat(indent)));
        }
    }

    /// A block scalar, with a `|` header; never carries a marker.
    fn literal(&mut self, value: &str, indent: usize) {
        let body = value.replace(['\n', '\r'], " ");
        let body = body.trim();
        if body.is_empty() || body.starts_with('#') || body.contains('\t') {
            self.out.push_str(" \"\"\n");
            return;
        }
        self.out.push_str(" |-\n");
        self.out
            .push_str(&format!("{}{}\n", " ".repeat(indent + 2), body));
    }

    /// Writes a value after `key:` or `- ` (the cursor is right after the
    /// indicator), ending with a newline.
    fn value(&mut self, node: &Node, indent: usize) {
        match node {
            Node::Scalar(s) => match s.style {
                Style::Literal => self.literal(&s.value, indent),
                style => {
                    let text = quoted(&s.value, style);
                    let note = self.note(s);
                    self.out.push_str(&format!(" {text}{note}\n"));
                }
            },
            Node::Map(_, true) | Node::Seq(_, true) => {
                self.out.push(' ');
                self.flow(node, indent + 2);
                self.out.push('\n');
            }
            Node::Map(..) | Node::Seq(..) => {
                self.out.push('\n');
                self.block(node, indent + 2);
            }
        }
    }

    fn block(&mut self, node: &Node, indent: usize) {
        let pad = " ".repeat(indent);
        match node {
            Node::Map(entries, _) => {
                for (key, value, gap) in entries {
                    self.gap(*gap, indent);
                    self.out.push_str(&format!("{pad}{key}:"));
                    self.value(value, indent);
                }
            }
            Node::Seq(items, _) => {
                for (item, gap) in items {
                    self.gap(*gap, indent);
                    match item {
                        Node::Map(entries, false) => {
                            // `- key: value` with the rest aligned under it.
                            for (i, (key, value, _)) in entries.iter().enumerate() {
                                if i == 0 {
                                    self.out.push_str(&format!("{pad}- {key}:"));
                                } else {
                                    self.out.push_str(&format!("{pad}  {key}:"));
                                }
                                self.value(value, indent + 2);
                            }
                        }
                        _ => {
                            self.out.push_str(&format!("{pad}-"));
                            self.value(item, indent);
                        }
                    }
                }
            }
            Node::Scalar(s) => {
                let text = quoted(&s.value, s.style);
                self.out.push_str(&format!("{pad}{text}\n"));
            }
        }
    }

    /// A flow collection: one line, or one entry per line when an entry
    /// has a comment. Block scalars inside become double-quoted.
    fn flow(&mut self, node: &Node, indent: usize) {
        let entries: Vec<(Option<&str>, &Node)> = match node {
            Node::Map(e, _) => e.iter().map(|(k, v, _)| (Some(k.as_str()), v)).collect(),
            Node::Seq(i, _) => i.iter().map(|(v, _)| (None, v)).collect(),
            Node::Scalar(_) => return,
        };
        let (open, close) = if matches!(node, Node::Map(..)) {
            ('{', '}')
        } else {
            ('[', ']')
        };
        let multiline = entries.iter().any(|(_, v)| {
            matches!(
                v,
                Node::Scalar(Scalar {
                    note: Note::Marker(..) | Note::Comment(_),
                    ..
                })
            )
        });
        let pad = " ".repeat(indent + 2);
        self.out.push(open);
        for (i, (key, value)) in entries.iter().enumerate() {
            let last = i + 1 == entries.len();
            if multiline {
                self.out.push('\n');
                self.out.push_str(&pad);
            } else if i > 0 {
                self.out.push(' ');
            }
            if let Some(k) = key {
                self.out.push_str(&format!("{k}: "));
            }
            let comma = if last { "" } else { "," };
            match value {
                Node::Scalar(s) => {
                    let style = match s.style {
                        Style::Literal => Style::Double,
                        other => other,
                    };
                    let text = match style {
                        // Flow plain scalars must not hold flow indicators.
                        Style::Plain if plain_ok(&s.value) => s.value.clone(),
                        Style::Plain => quoted(&s.value, Style::Double),
                        other => quoted(&s.value, other),
                    };
                    let note = if multiline {
                        self.note(s)
                    } else {
                        String::new()
                    };
                    self.out.push_str(&format!("{text}{comma}{note}"));
                }
                nested => {
                    self.flow(nested, indent + 2);
                    self.out.push_str(comma);
                }
            }
        }
        if multiline {
            self.out.push('\n');
            self.out.push_str(&pad);
        }
        self.out.push(close);
    }
}

fn render(doc: &Doc) -> (String, Vec<Expected>) {
    let mut r = Renderer {
        out: String::new(),
        markers: Vec::new(),
    };
    for (i, root) in doc.documents.iter().enumerate() {
        if i > 0 || doc.first_explicit {
            r.out.push_str("---\n");
        }
        r.block(root, 0);
    }
    let mut text = r.out;
    if !doc.final_newline {
        while text.ends_with('\n') {
            text.pop();
        }
    }
    if doc.crlf {
        text = text.replace('\n', "\r\n");
    }
    if doc.bom {
        text.insert(0, '\u{feff}');
    }
    (text, r.markers)
}

// 256 cases per property (proptest's default); PROPTEST_CASES=N for more.
proptest! {
    /// The markers the generator wrote are the ones found, and patching
    /// any of them to any value keeps every guarantee.
    #[test]
    fn generated_markers_patch_safely(
        doc in doc_strategy(),
        values in prop::collection::vec(new_value_strategy(), 16),
        pick in prop::collection::vec(any::<bool>(), 16),
    ) {
        let (text, expected) = render(&doc);
        let found = manifests::find_markers("gen.yaml", &text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let got: Vec<Expected> = found.iter().map(|s| (s.policy.to_string(), s.field, s.value.clone())).collect();
        prop_assert_eq!(&got, &expected, "{}", text);
        let edits: Vec<Edit> = found
            .iter()
            .enumerate()
            .filter(|(i, _)| pick[i % pick.len()])
            .map(|(i, s)| Edit { span: s.span.clone(), value: values[i % values.len()].clone() })
            .collect();
        let out = manifests::patch("gen.yaml", &text, &edits)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        check_guarantees("gen.yaml", &text, &edits, &out)
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- before\n{text}\n--- after\n{out}")))?;
        let again = manifests::find_markers("gen.yaml", &out)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
        for (old, new) in found.iter().zip(&again) {
            let want = edits.iter().find(|e| e.span == old.span).map_or(&old.value, |e| &e.value);
            prop_assert_eq!(&new.value, want);
        }
    }

    /// Any settable scalar, marker or not, takes any value safely; keys
    /// and block scalars are refused, never mangled.
    #[test]
    fn any_scalar_patches_safely(
        doc in doc_strategy(),
        values in prop::collection::vec(new_value_strategy(), 8),
        seed in any::<usize>(),
    ) {
        let (text, _) = render(&doc);
        let scalars = manifests::scalars("gen.yaml", &text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let settable: Vec<_> = scalars.iter().filter(|s| s.settable).collect();
        let edits: Vec<Edit> = settable
            .iter()
            .enumerate()
            .filter(|(i, _)| (seed >> (i % 64)) & 1 == 1)
            .map(|(i, s)| Edit { span: s.span.clone(), value: values[i % values.len()].clone() })
            .collect();
        let out = manifests::patch("gen.yaml", &text, &edits)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        check_guarantees("gen.yaml", &text, &edits, &out)
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- before\n{text}\n--- after\n{out}")))?;
        if let Some(fixed) = scalars.iter().find(|s| !s.settable) {
            let refused = manifests::patch("gen.yaml", &text, &[Edit { span: fixed.span.clone(), value: "x".into() }]);
            prop_assert!(refused.is_err() || fixed.value == "x");
        }
    }

    /// Random values into the markers of the fixture corpus.
    #[test]
    fn fixture_markers_take_any_value(
        fixture in prop::sample::select(fixture_names()),
        values in prop::collection::vec(new_value_strategy(), 8),
    ) {
        let text = read_fixture(&fixture);
        let found = manifests::find_markers(&fixture, &text).unwrap();
        let edits: Vec<Edit> = found
            .iter()
            .enumerate()
            .map(|(i, s)| Edit { span: s.span.clone(), value: values[i % values.len()].clone() })
            .collect();
        let out = manifests::patch(&fixture, &text, &edits)
            .map_err(|e| TestCaseError::fail(format!("{fixture}: {e}")))?;
        check_guarantees(&fixture, &text, &edits, &out)
            .map_err(|e| TestCaseError::fail(format!("{fixture}: {e}\n{out}")))?;
    }
}

/// The whole corpus with the fixture selections: zero lines changed
/// beyond the marked ones (the diff-noise goal), file by file.
#[test]
fn corpus_diff_noise_is_zero() {
    for name in fixture_names() {
        let text = read_fixture(&name);
        let setters = manifests::find_markers(&name, &text).unwrap();
        let edits = edits_for(&setters);
        let out = manifests::patch(&name, &text, &edits).unwrap();
        check_guarantees(&name, &text, &edits, &out).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut target_lines: Vec<usize> = setters
            .iter()
            .zip(&edits)
            .filter(|(s, e)| s.value != e.value)
            .map(|(s, _)| s.at.line as usize)
            .collect();
        target_lines.dedup();
        let noise: Vec<usize> = changed_lines(&text, &out)
            .into_iter()
            .filter(|l| !target_lines.contains(l))
            .collect();
        assert_eq!(noise, Vec::<usize>::new(), "{name}");
    }
}
