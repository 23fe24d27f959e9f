//! Finding the scalars crowsnest sets in Kubernetes YAML, and rewriting
//! them byte-exactly. Pure over `&str`: no file IO, no async; imports only
//! `crate::model`.
//!
//! - [`find_markers`]: Flux's setter comments (`# {"$imagepolicy": "ns:name"}`
//!   and the long `$ref` form), on mapping values, sequence items and in
//!   flow collections, in every document of a file. [`may_contain_markers`]
//!   is the fast path that lets most files skip parsing.
//! - [`resolve_target`]: the marker-less `targets:` of a policy file.
//! - [`patch`]: replace the bytes of the given scalars and nothing else.
//!
//! Why the patcher is hand-written: no YAML crate edits a file
//! byte-exactly. Round-trip libraries (ruamel.yaml, kyaml over go-yaml)
//! re-serialise the whole tree, and lose indentation, comment columns,
//! flow spacing, document markers or quoting on the way. That reformatting
//! is what users complain about in Flux and Argo CD Image Updater:
//! BENCHMARKS.md counts 109 stray lines from ruamel.yaml on the fixture
//! corpus, against none from this module. Here granit-parser supplies
//! exact byte spans for every scalar and comment; the patch splices new
//! text into those spans and copies every other byte, then re-parses its
//! own output and refuses to return it unless the tree is unchanged apart
//! from the edited scalars.

mod markers;
mod patch;
mod quote;
mod targets;
mod tree;

use std::ops::Range;

use crate::model::{Field, Located, PolicyId, Position, Target};

pub use markers::{may_contain_markers, mentioned_policies};
pub use quote::reads_as_non_string;
pub use tree::PathStep;

/// A scalar crowsnest may set: where it is and what it holds now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setter {
    pub policy: PolicyId,
    pub field: Field,
    /// Line and column of the scalar's first byte (its opening quote, if any).
    pub at: Position,
    /// The scalar's bytes in the file, quotes included.
    pub span: Range<usize>,
    /// The scalar's value, decoded (no quotes, escapes resolved).
    pub value: String,
}

/// One scalar to rewrite: its span (as a [`Setter`] gives it) and the new
/// decoded value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub span: Range<usize>,
    pub value: String,
}

/// Why a manifest cannot be read or patched. Display is
/// `file:line:col: message`, the form `crowsnest check` prints.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The file is not valid YAML; it is never written.
    #[error("{at}: not valid YAML: {message}")]
    Parse { at: Located, message: String },
    /// A comment meant as a marker that is not one crowsnest can read.
    #[error("{at}: {message}")]
    Marker { at: Located, message: String },
    /// A marker, target or edit that names something other than a plain
    /// or quoted scalar value (block scalar, collection, alias, empty value, key).
    #[error("{at}: {message}")]
    NotSettable { at: Located, message: String },
    /// A target path that names nothing, or more than one thing.
    #[error("{at}: {message}")]
    Target { at: Located, message: String },
    /// An edit whose span is not a scalar of the text (stale text, or a
    /// caller bug); the file is left unchanged.
    #[error("{at}: {message}")]
    Edit { at: Located, message: String },
    /// The patched text failed verification; the file is left unchanged.
    #[error("{at}: cannot patch safely: {message}")]
    Unsafe { at: Located, message: String },
}

impl ManifestError {
    /// A short stable name for the `errors_total{kind=...}` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ManifestError::Parse { .. } => "parse",
            ManifestError::Marker { .. } => "marker",
            ManifestError::NotSettable { .. } => "not_settable",
            ManifestError::Target { .. } => "target",
            ManifestError::Edit { .. } => "edit",
            ManifestError::Unsafe { .. } => "unsafe_patch",
        }
    }

    /// Where the problem is.
    pub fn at(&self) -> &Located {
        match self {
            ManifestError::Parse { at, .. }
            | ManifestError::Marker { at, .. }
            | ManifestError::NotSettable { at, .. }
            | ManifestError::Target { at, .. }
            | ManifestError::Edit { at, .. }
            | ManifestError::Unsafe { at, .. } => at,
        }
    }

    /// The message without the `file:line:col: ` prefix.
    pub fn message(&self) -> &str {
        match self {
            ManifestError::Parse { message, .. }
            | ManifestError::Marker { message, .. }
            | ManifestError::NotSettable { message, .. }
            | ManifestError::Target { message, .. }
            | ManifestError::Edit { message, .. }
            | ManifestError::Unsafe { message, .. } => message,
        }
    }
}

/// True for the files crowsnest scans for markers: `*.yaml`, `*.yml`, and
/// files named `Kustomization` (as Flux). `path` is `/`-separated.
pub fn is_manifest_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let has_ext = |ext: &str| name.len() > ext.len() && name.ends_with(ext);
    has_ext(".yaml") || has_ext(".yml") || name == "Kustomization"
}

/// Every marker in `text`, in file order. The first problem (the file
/// does not parse, a malformed marker, a marker on something other than a
/// plain or quoted scalar value) is an error; see [`scan_markers`] for
/// all of them at once.
pub fn find_markers(file: &str, text: &str) -> Result<Vec<Setter>, ManifestError> {
    Manifest::parse(file, text)?.markers()
}

/// The markers of a file that parses, and each marker problem separately.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkerScan {
    pub setters: Vec<Setter>,
    pub problems: Vec<ManifestError>,
}

/// Like [`find_markers`], but keeps going past marker problems so that
/// `crowsnest check` can report every one; only a parse error stops it.
pub fn scan_markers(file: &str, text: &str) -> Result<MarkerScan, ManifestError> {
    Ok(Manifest::parse(file, text)?.scan_markers())
}

/// The scalar a policy file's target names in `text`. Errors when the
/// path resolves to nothing, to more than one document, or to something
/// other than a plain or quoted scalar value. Messages are located in
/// `file` (the manifest), where the walk stopped.
pub fn resolve_target(
    file: &str,
    text: &str,
    policy: &PolicyId,
    target: &Target,
) -> Result<Setter, ManifestError> {
    Manifest::parse_structure(file, text)?.resolve_target(policy, target)
}

/// `text` with each edit's scalar replaced by its new value, in the
/// scalar's own quoting style where that is safe, and every other byte
/// unchanged. The result is verified by parsing it again; any doubt is an
/// error and no output. Edits whose value equals the current one change
/// nothing.
pub fn patch(file: &str, text: &str, edits: &[Edit]) -> Result<String, ManifestError> {
    if edits.is_empty() {
        return Ok(text.to_owned());
    }
    Manifest::parse_structure(file, text)?.patch(edits)
}

/// A file parsed once, for callers that find markers or resolve targets
/// and then patch the same text: [`Manifest::patch`] reuses the parse, so
/// a scan-and-patch costs two parses instead of three. The free functions
/// above are shorthands for one call on a fresh `Manifest`.
#[derive(Debug)]
pub struct Manifest<'a> {
    file: &'a str,
    text: &'a str,
    tree: tree::Tree<'a>,
}

impl<'a> Manifest<'a> {
    /// Parses `text` (every document, comments included). `file` names
    /// the file in errors.
    pub fn parse(file: &'a str, text: &'a str) -> Result<Self, ManifestError> {
        Ok(Self {
            file,
            text,
            tree: tree::Tree::parse(file, text)?,
        })
    }

    /// Parses without comments: enough for targets and patches, not for
    /// markers (a third faster).
    pub fn parse_structure(file: &'a str, text: &'a str) -> Result<Self, ManifestError> {
        Ok(Self {
            file,
            text,
            tree: tree::Tree::parse_structure(file, text)?,
        })
    }

    /// See [`find_markers`].
    pub fn markers(&self) -> Result<Vec<Setter>, ManifestError> {
        let scan = self.scan_markers();
        match scan.problems.into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(scan.setters),
        }
    }

    /// See [`scan_markers`].
    pub fn scan_markers(&self) -> MarkerScan {
        let mut scan = MarkerScan::default();
        for result in markers::scan(self.file, self.text, &self.tree) {
            match result {
                Ok(setter) => scan.setters.push(setter),
                Err(problem) => scan.problems.push(problem),
            }
        }
        scan.setters.sort_by_key(|s| s.span.start);
        scan
    }

    /// See [`resolve_target`].
    pub fn resolve_target(
        &self,
        policy: &PolicyId,
        target: &Target,
    ) -> Result<Setter, ManifestError> {
        let id = targets::resolve(self.file, &self.tree, &target.path)?;
        Ok(targets::setter(&self.tree, id, policy, target.field))
    }

    /// See [`patch`].
    pub fn patch(&self, edits: &[Edit]) -> Result<String, ManifestError> {
        patch::patch(self.file, self.text, &self.tree, edits)
    }

    /// See [`scalars`].
    pub fn scalars(&self) -> Vec<ScalarInfo> {
        let tree = &self.tree;
        tree.nodes
            .iter()
            .enumerate()
            .filter_map(|(id, n)| {
                n.scalar().map(|(value, style)| ScalarInfo {
                    span: n.span.clone(),
                    value: value.to_owned(),
                    document: tree.document_of(id),
                    path: tree.path_of(id),
                    settable: !style.is_block()
                        && !n.span.is_empty()
                        && n.role != tree::Role::Key
                        && n.string_tag,
                })
            })
            .collect()
    }
}

/// One scalar of a file, as [`scalars`] lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalarInfo {
    /// The scalar's bytes, quotes included (what an [`Edit`] names).
    pub span: Range<usize>,
    /// The decoded value.
    pub value: String,
    /// 0-based document index in the stream.
    pub document: usize,
    /// Keys and indexes from the document root.
    pub path: Vec<PathStep>,
    /// True when [`patch`] can rewrite it: a plain or quoted, non-empty
    /// mapping value, sequence item or root scalar without a non-string tag.
    pub settable: bool,
}

/// Every scalar of `text` in file order: where it sits and whether it can
/// be patched. For tools (the diff-noise benchmark, the fuzz target, the
/// property tests) that name scalars by path or pick them at random.
pub fn scalars(file: &str, text: &str) -> Result<Vec<ScalarInfo>, ManifestError> {
    Ok(Manifest::parse_structure(file, text)?.scalars())
}

#[cfg(test)]
mod tests;
