//! What a repository asks for: its policies and every scalar they set
//! (markers and policy `targets`), read from any [`FileSource`] — the
//! daemon's Git snapshot or a checkout on disk for `crowsnest check`.
//!
//! Problems are collected as [`Finding`]s (`file:line:col: message`) rather
//! than stopping at the first, so one run shows everything to fix.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::manifests::{self, Setter};
use crate::model::{Located, PolicyId, Position, Shard};
use crate::policy::{self, Automation, Declares, FluxObjects, Policy};

mod promotions;
pub use promotions::Sources;

/// The largest manifest crowsnest reads, in bytes; larger files are reported.
pub const MAX_MANIFEST_BYTES: usize = 8 * 1024 * 1024;

/// Files of a repository, addressed by `/`-separated repository-relative
/// paths. Symlinks are never followed and no path leaves the root.
pub trait FileSource {
    /// Regular files under `dir` (`""` for the root), sorted.
    fn list(&self, dir: &str) -> Result<Vec<String>, SourceError>;
    /// A regular file's bytes; `None` when there is no regular file at
    /// `path` (missing, a directory, or a symlink). A source may stop
    /// reading a file one byte past [`MAX_MANIFEST_BYTES`].
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError>;
}

/// A file source that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct SourceError {
    pub what: String,
    pub message: String,
}

/// A problem in the repository's policies or manifests, and what it holds
/// back: a pass skips exactly that ([`FindingKind`]) and updates the rest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Finding {
    pub at: Located,
    pub message: String,
    pub kind: FindingKind,
    /// The policies it disables or holds back, sorted: one for a broken
    /// policy or a marker naming it; those a file's or a malformed
    /// marker's text names for a file that does not parse or a marker
    /// that cannot be read; none when no policy can be told.
    pub policies: Vec<PolicyId>,
}

/// What a finding is about, which says what it holds back. The labels
/// are the values of the `crowsnest_findings{kind}` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// A policy document that does not read or validate, or a policy
    /// declared twice: that policy is disabled.
    Policy,
    /// A Flux `ImageUpdateAutomation` that cannot be read or chosen: it may
    /// name the branch and author of every commit, so nothing is written.
    Automation,
    /// A file that is not valid YAML (or not UTF-8, or too large): it is
    /// never written and its markers are skipped.
    Manifest,
    /// A comment meant as a marker that cannot be read, or a marker or
    /// setter that cannot set its value: that value is left alone.
    Marker,
    /// A marker naming a policy no file declares: skipped.
    UnknownPolicy,
    /// A marker naming a disabled policy: skipped.
    DisabledPolicy,
    /// A policy target that resolves to nothing: skipped.
    Target,
}

impl FindingKind {
    pub const ALL: [FindingKind; 7] = [
        FindingKind::Policy,
        FindingKind::Automation,
        FindingKind::Manifest,
        FindingKind::Marker,
        FindingKind::UnknownPolicy,
        FindingKind::DisabledPolicy,
        FindingKind::Target,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::Policy => "policy",
            FindingKind::Automation => "automation",
            FindingKind::Manifest => "manifest",
            FindingKind::Marker => "marker",
            FindingKind::UnknownPolicy => "unknown_policy",
            FindingKind::DisabledPolicy => "disabled_policy",
            FindingKind::Target => "target",
        }
    }
}

impl Finding {
    fn new(kind: FindingKind, at: Located, message: impl Into<String>) -> Self {
        Self {
            at,
            message: message.into(),
            kind,
            policies: Vec::new(),
        }
    }

    fn file(kind: FindingKind, file: &str, message: impl Into<String>) -> Self {
        Self::new(kind, Located::new(file, Position::new(1, 1)), message)
    }

    /// The same finding, about `policy`.
    fn about(mut self, policy: &PolicyId) -> Self {
        self.policies = vec![policy.clone()];
        self
    }

    /// The same finding, about the policies the markers in `text` name
    /// (a file that does not parse, or a marker's line).
    fn about_mentioned(mut self, text: &str) -> Self {
        self.policies = manifests::mentioned_policies(text);
        self
    }

    /// Whether a pass of `shard` reports it: a finding about a policy on
    /// every shard that owns one of its policies, one about no policy on
    /// shard 0 only, one that holds everything back on every shard.
    pub fn concerns(&self, shard: Shard) -> bool {
        if self.holds_everything() {
            return true;
        }
        if self.policies.is_empty() {
            return shard.index == 0;
        }
        self.policies.iter().any(|p| shard.owns(p))
    }

    /// Whether `shard` counts it in `crowsnest_findings`: exactly one
    /// shard does (the owner of its first policy, or shard 0), so the
    /// gauge summed over shards counts each finding once.
    pub fn counted_by(&self, shard: Shard) -> bool {
        match self.policies.first() {
            Some(policy) if !self.holds_everything() => shard.owns(policy),
            _ => shard.index == 0,
        }
    }

    /// Whether it holds back every change of the repository (an
    /// automation that may name other branches), not only its own part.
    pub fn holds_everything(&self) -> bool {
        self.kind == FindingKind::Automation
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// A manifest with at least one setter, and its text as read.
#[derive(Debug, Clone)]
pub struct ManifestFile {
    pub text: String,
    pub setters: Vec<Setter>,
}

/// Policies by id and the files holding their setters.
#[derive(Debug, Default)]
pub struct Inventory {
    pub policies: BTreeMap<PolicyId, Policy>,
    /// Repository-relative path to the file's setters.
    pub files: BTreeMap<String, ManifestFile>,
    /// The Flux `ImageUpdateAutomation` that applies, if the repository has one.
    pub automation: Option<Automation>,
    /// Things that do not stop a pass but that the user should know: Flux
    /// fields crowsnest cannot honour, suspended policies.
    pub warnings: Vec<Finding>,
    /// The folder markers were read from (`scan_dir`, or the automation's
    /// `update.path` when [`Options::automation_path`] allows it).
    pub scan_dir: String,
    /// Policies a finding disabled, and where that finding is; their
    /// markers are skipped (reported as such) and their targets not read.
    pub disabled: BTreeMap<PolicyId, Located>,
    /// Flux policies with `suspend: true`; their markers are left alone.
    suspended: BTreeSet<PolicyId>,
    /// Policy files with documents that could not be read far enough to
    /// name what they declare: a marker naming an unknown policy may mean one of these.
    unreadable: BTreeSet<String>,
}

/// Where an [`Inventory`] reads from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    /// Folder of policy files (crowsnest's and Flux's objects).
    pub policies_dir: &'a str,
    /// Folder scanned for markers.
    pub scan_dir: &'a str,
    /// Read Flux objects from every YAML file under `scan_dir` too
    /// (`flux.scanPath`).
    pub flux_in_scan_dir: bool,
    /// The `ImageUpdateAutomation` to follow when there are several
    /// (`flux.automation`).
    pub automation: Option<&'a PolicyId>,
    /// Take the automation's `update.path` as the scan folder (the daemon
    /// config leaves `git.path` unset).
    pub automation_path: bool,
    /// The daemon config's promotion sources, when there is a config.
    pub sources: Option<Sources<'a>>,
}

impl Inventory {
    /// Reads policies from `policies_dir` and setters from `scan_dir`.
    pub fn build(
        source: &dyn FileSource,
        policies_dir: &str,
        scan_dir: &str,
    ) -> Result<(Inventory, Vec<Finding>), SourceError> {
        Self::build_with(
            source,
            &Options {
                policies_dir,
                scan_dir,
                ..Options::default()
            },
        )
    }

    /// Reads policies, Flux objects and setters as `options` say.
    pub fn build_with(
        source: &dyn FileSource,
        options: &Options<'_>,
    ) -> Result<(Inventory, Vec<Finding>), SourceError> {
        let mut findings = Vec::new();
        let mut inventory = Inventory::default();
        inventory.load_policies(source, options, &mut findings)?;
        inventory.scan_dir = match &inventory.automation {
            Some(Automation {
                update_path: Some(path),
                ..
            }) if options.automation_path => path.clone(),
            _ => options.scan_dir.to_owned(),
        };
        let scan_dir = inventory.scan_dir.clone();
        inventory.load_markers(source, &scan_dir, &mut findings)?;
        inventory.load_targets(source, &mut findings)?;
        inventory.check_digest_setters(&mut findings);
        if let Some(automation) = inventory.automation.as_ref().filter(|a| a.suspended) {
            inventory.warnings.push(Finding::new(
                FindingKind::Automation,
                automation.declared_at.clone(),
                format!(
                    "ImageUpdateAutomation {}/{} is suspended (spec.suspend: true): crowsnest changes nothing until it is resumed",
                    automation.id.namespace, automation.id.name
                ),
            ));
            inventory.files.clear();
        }
        findings.sort();
        // A YAML error in a file of Flux objects is found by both readers.
        findings.dedup();
        inventory.warnings.sort();
        Ok((inventory, findings))
    }

    /// The policies some setter uses, in id order.
    pub fn used_policies(&self) -> Vec<&Policy> {
        let mut used: Vec<&PolicyId> = self
            .files
            .values()
            .flat_map(|f| f.setters.iter().map(|s| &s.policy))
            .collect();
        used.sort();
        used.dedup();
        used.into_iter()
            .filter_map(|id| self.policies.get(id))
            .collect()
    }

    fn load_policies(
        &mut self,
        source: &dyn FileSource,
        options: &Options<'_>,
        findings: &mut Vec<Finding>,
    ) -> Result<(), SourceError> {
        let mut declared: HashMap<PolicyId, Located> = HashMap::new();
        let mut flux = FluxObjects::default();
        let is_yaml = |p: &str| p.ends_with(".yaml") || p.ends_with(".yml");
        let policy_files = source.list(options.policies_dir)?;
        for path in &policy_files {
            if !is_yaml(path) {
                continue;
            }
            let Some(text) = read_text(source, path, findings, FindingKind::Policy)? else {
                self.unreadable.insert(path.clone());
                continue;
            };
            let broken = flux.read(path, &text);
            self.disable(path, broken, findings);
            let read = policy::read_policy_file(path, &text);
            self.disable(path, read.broken, findings);
            for policy in read.policies {
                self.declare(policy, &mut declared, findings);
            }
        }
        if options.flux_in_scan_dir {
            for path in source.list(options.scan_dir)? {
                if !is_yaml(&path) || policy_files.contains(&path) {
                    continue;
                }
                let Some(bytes) = source.read(&path)? else {
                    continue;
                };
                if memchr::memmem::find(&bytes, policy::flux::GROUP.as_bytes()).is_none() {
                    continue;
                }
                let Some(text) = text_of(&path, bytes, findings, FindingKind::Policy) else {
                    continue;
                };
                let broken = flux.read(&path, &text);
                self.disable(&path, broken, findings);
            }
        }
        let resolved = flux.resolve();
        for broken in resolved.errors {
            let file = broken.error.at().file.clone();
            self.disable(&file, vec![broken], findings);
        }
        for policy in resolved.policies {
            self.declare(policy, &mut declared, findings);
        }
        for policy in resolved.suspended {
            self.warnings.push(Finding::new(
                FindingKind::Policy,
                policy.declared_at.clone(),
                format!(
                    "ImagePolicy {} is suspended (its own or its ImageRepository's spec.suspend: true): crowsnest leaves its markers as they are",
                    policy.id
                ),
            ));
            self.suspended.insert(policy.id);
        }
        match flux.automation(options.automation) {
            Ok(automation) => self.automation = automation.cloned(),
            Err(message) => {
                let at = flux.automations.first().map_or_else(
                    || Located::new(options.policies_dir, Position::new(1, 1)),
                    |a| a.declared_at.clone(),
                );
                findings.push(Finding::new(FindingKind::Automation, at, message));
            }
        }
        self.warnings.extend(
            flux.warnings
                .into_iter()
                .map(|w| Finding::new(FindingKind::Policy, w.at, w.message)),
        );
        // A policy that is both declared and broken somewhere is as
        // ambiguous as one declared twice.
        for id in self.disabled.keys() {
            self.policies.remove(id);
        }
        self.check_promotions(options.sources, findings);
        Ok(())
    }

    /// Reports broken policy documents and disables what they declare.
    fn disable(&mut self, file: &str, broken: Vec<policy::Broken>, findings: &mut Vec<Finding>) {
        for policy::Broken { declares, error } in broken {
            let mut finding = finding_from_error(file, &error.to_string(), FindingKind::Policy);
            match declares {
                Declares::Policy(id) => {
                    finding.message = format!(
                        "{} (policy {id} is disabled until this is fixed)",
                        finding.message
                    );
                    self.disabled
                        .entry(id.clone())
                        .or_insert_with(|| finding.at.clone());
                    finding = finding.about(&id);
                }
                Declares::Automation => finding.kind = FindingKind::Automation,
                Declares::Unknown => {
                    self.unreadable.insert(file.to_owned());
                }
            }
            findings.push(finding);
        }
    }

    /// Adds a policy; a second declaration of the same id disables both,
    /// since either could be the one meant.
    fn declare(
        &mut self,
        policy: Policy,
        declared: &mut HashMap<PolicyId, Located>,
        findings: &mut Vec<Finding>,
    ) {
        if let Some(first) = declared.get(&policy.id) {
            findings.push(
                Finding::new(
                    FindingKind::Policy,
                    policy.declared_at.clone(),
                    format!(
                        "policy {} is already declared at {first}; both are disabled until one is removed or renamed",
                        policy.id
                    ),
                )
                .about(&policy.id),
            );
            self.disabled
                .entry(policy.id.clone())
                .or_insert_with(|| policy.declared_at.clone());
            return;
        }
        declared.insert(policy.id.clone(), policy.declared_at.clone());
        self.policies.insert(policy.id.clone(), policy);
    }

    fn load_markers(
        &mut self,
        source: &dyn FileSource,
        dir: &str,
        findings: &mut Vec<Finding>,
    ) -> Result<(), SourceError> {
        // Reading stays on this thread (a FileSource need not be Sync);
        // parsing the files that pass the fast path, the expensive part, is
        // spread over the cores.
        let mut candidates = Vec::new();
        for path in source.list(dir)? {
            if !manifests::is_manifest_path(&path) {
                continue;
            }
            let Some(bytes) = source.read(&path)? else {
                continue;
            };
            if !manifests::may_contain_markers(&bytes) {
                continue;
            }
            match decode(&path, bytes, FindingKind::Manifest) {
                Ok(text) => candidates.push((path, text)),
                // Never written: held back are the policies its markers name.
                Err((finding, bytes)) => {
                    findings.push(finding.about_mentioned(&String::from_utf8_lossy(&bytes)));
                }
            }
        }
        let parsed = scan_markers_in_parallel(&candidates);
        for ((path, text), found) in candidates.into_iter().zip(parsed) {
            let scan = match found {
                Ok(scan) => scan,
                Err(e) => {
                    // Not YAML: never written, its markers skipped; held
                    // back are the policies its markers name.
                    findings.push(
                        Finding::new(
                            FindingKind::Manifest,
                            e.at().clone(),
                            format!(
                                "not valid YAML: {}; crowsnest does not write this file",
                                e.message()
                            ),
                        )
                        .about_mentioned(&text),
                    );
                    continue;
                }
            };
            for problem in scan.problems {
                let line = line_of(&text, problem.at().position.line);
                findings.push(
                    Finding::new(
                        FindingKind::Marker,
                        problem.at().clone(),
                        format!("{}; the value is left as it is", problem.message()),
                    )
                    .about_mentioned(line),
                );
            }
            if scan.setters.is_empty() {
                continue;
            }
            let mut known = Vec::with_capacity(scan.setters.len());
            for setter in scan.setters {
                let at = Located::new(&path, setter.at);
                if self.policies.contains_key(&setter.policy) {
                    known.push(setter);
                } else if self.suspended.contains(&setter.policy) {
                    continue;
                } else if let Some(problem) = self.disabled.get(&setter.policy) {
                    findings.push(
                        Finding::new(
                            FindingKind::DisabledPolicy,
                            at,
                            format!(
                                "marker names policy {}, which is disabled by the problem at {problem}; the value is left as it is",
                                setter.policy
                            ),
                        )
                        .about(&setter.policy),
                    );
                } else {
                    let hint = if self.unreadable.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (it may be in {}, which cannot be read)",
                            self.unreadable
                                .iter()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    findings.push(
                        Finding::new(
                            FindingKind::UnknownPolicy,
                            at,
                            format!(
                                "marker names policy {}, which no policy file declares{hint}; the value is left as it is",
                                setter.policy
                            ),
                        )
                        .about(&setter.policy),
                    );
                }
            }
            self.files.insert(
                path,
                ManifestFile {
                    text,
                    setters: known,
                },
            );
        }
        Ok(())
    }

    fn load_targets(
        &mut self,
        source: &dyn FileSource,
        findings: &mut Vec<Finding>,
    ) -> Result<(), SourceError> {
        let targets: Vec<(PolicyId, crate::model::Target)> = self
            .policies
            .values()
            .flat_map(|p| p.targets.iter().map(|t| (p.id.clone(), t.clone())))
            .collect();
        for (policy, target) in targets {
            if !self.files.contains_key(&target.file) {
                if !is_inside(&target.file) {
                    findings.push(
                        Finding::new(
                            FindingKind::Target,
                            target.declared_at.clone(),
                            format!("target file {:?} is outside the repository", target.file),
                        )
                        .about(&policy),
                    );
                    continue;
                }
                let Some(bytes) = source.read(&target.file)? else {
                    findings.push(
                        Finding::new(
                            FindingKind::Target,
                            target.declared_at.clone(),
                            format!(
                                "target file {} does not exist or is not a regular file",
                                target.file
                            ),
                        )
                        .about(&policy),
                    );
                    continue;
                };
                let text = match decode(&target.file, bytes, FindingKind::Manifest) {
                    Ok(text) => text,
                    Err((finding, _)) => {
                        findings.push(finding.about(&policy));
                        continue;
                    }
                };
                self.files.insert(
                    target.file.clone(),
                    ManifestFile {
                        text,
                        setters: Vec::new(),
                    },
                );
            }
            let file = self
                .files
                .get_mut(&target.file)
                .expect("inserted above when missing");
            match manifests::resolve_target(&target.file, &file.text, &policy, &target) {
                Ok(setter) => {
                    if let Some(other) = file.setters.iter().find(|s| s.span == setter.span) {
                        findings.push(
                            Finding::new(
                                FindingKind::Target,
                                target.declared_at.clone(),
                                format!(
                                    "target {} in {} is already set by policy {} at {}:{}",
                                    target.path, target.file, other.policy, target.file, other.at
                                ),
                            )
                            .about(&policy),
                        );
                    } else {
                        file.setters.push(setter);
                    }
                }
                Err(e) => findings.push(
                    Finding::new(
                        FindingKind::Target,
                        target.declared_at.clone(),
                        format!("target {} in {}: {}", target.path, target.file, e.message()),
                    )
                    .about(&policy),
                ),
            }
        }
        self.files.retain(|_, f| !f.setters.is_empty());
        for file in self.files.values_mut() {
            file.setters.sort_by_key(|s| s.span.start);
        }
        Ok(())
    }
}

impl Inventory {
    /// A `digest` setter can only be written when its policy resolves digests.
    fn check_digest_setters(&mut self, findings: &mut Vec<Finding>) {
        for (path, file) in &mut self.files {
            file.setters.retain(|setter| {
                let never = self.policies.get(&setter.policy).is_some_and(|p| {
                    p.digest_reflection == crate::model::DigestReflection::Never
                });
                if setter.field == crate::model::Field::Digest && never {
                    findings.push(
                        Finding::new(
                            FindingKind::Marker,
                            Located::new(path, setter.at),
                            format!(
                                "a digest setter needs digestReflectionPolicy IfNotPresent or Always on policy {}; the value is left as it is",
                                setter.policy
                            ),
                        )
                        .about(&setter.policy),
                    );
                    return false;
                }
                true
            });
        }
    }
}

/// Errors of the policy and manifest modules already start with
/// `file:line:col: `; this splits that back into a finding.
fn finding_from_error(file: &str, text: &str, kind: FindingKind) -> Finding {
    let parse = || -> Option<Finding> {
        let rest = text.strip_prefix(file)?.strip_prefix(':')?;
        let (line, rest) = rest.split_once(':')?;
        let (column, message) = rest.split_once(':')?;
        Some(Finding::new(
            kind,
            Located::new(
                file,
                Position::new(line.parse().ok()?, column.parse().ok()?),
            ),
            message.trim_start(),
        ))
    };
    parse().unwrap_or_else(|| Finding::file(kind, file, text))
}

fn read_text(
    source: &dyn FileSource,
    path: &str,
    findings: &mut Vec<Finding>,
    kind: FindingKind,
) -> Result<Option<String>, SourceError> {
    Ok(source
        .read(path)?
        .and_then(|bytes| text_of(path, bytes, findings, kind)))
}

/// A file's bytes as text; one too large or not UTF-8 is a finding of `kind`.
fn text_of(
    path: &str,
    bytes: Vec<u8>,
    findings: &mut Vec<Finding>,
    kind: FindingKind,
) -> Option<String> {
    decode(path, bytes, kind)
        .map_err(|(finding, _)| findings.push(finding))
        .ok()
}

/// A file's bytes as text, or the finding that says why not and the bytes.
fn decode(path: &str, bytes: Vec<u8>, kind: FindingKind) -> Result<String, (Finding, Vec<u8>)> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        let finding = Finding::file(
            kind,
            path,
            format!("file is too large: crowsnest reads files up to {MAX_MANIFEST_BYTES} bytes"),
        );
        return Err((finding, bytes));
    }
    String::from_utf8(bytes).map_err(|e| {
        let finding = Finding::file(
            kind,
            path,
            format!(
                "file is not valid UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            ),
        );
        (finding, e.into_bytes())
    })
}

/// The text of line `line` (1-based) of `text`, without its end.
fn line_of(text: &str, line: u32) -> &str {
    let index = usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX);
    text.lines().nth(index).unwrap_or("")
}

/// A `/`-separated relative path that stays inside the root.
pub fn is_inside(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// A checkout on disk. Symlinks are neither listed nor read, at any depth,
/// and `.git` is skipped.
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn error(&self, e: impl fmt::Display) -> SourceError {
        SourceError {
            what: self.root.display().to_string(),
            message: e.to_string(),
        }
    }

    /// The file at `path` if no component of it is a symlink.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        if !is_inside(path) {
            return None;
        }
        let mut current = self.root.clone();
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            current.push(part);
            let meta = std::fs::symlink_metadata(&current).ok()?;
            if meta.file_type().is_symlink() {
                return None;
            }
        }
        Some(current)
    }
}

impl FileSource for DirSource {
    fn list(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        let start = match dir {
            "" | "." => self.root.clone(),
            d => match self.resolve(d) {
                Some(p) if p.is_dir() => p,
                _ => return Ok(Vec::new()),
            },
        };
        let mut files = Vec::new();
        let walker = walkdir::WalkDir::new(&start)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git");
        for entry in walker {
            let entry = entry.map_err(|e| self.error(e))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let relative = entry
                .path()
                .strip_prefix(&self.root)
                .map_err(|e| self.error(e))?;
            let Some(text) = relative.to_str() else {
                continue;
            };
            files.push(text.replace(std::path::MAIN_SEPARATOR, "/"));
        }
        Ok(files)
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(full) = self.resolve(path) else {
            return Ok(None);
        };
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.is_file() => {}
            _ => return Ok(None),
        }
        // A file over the limit is refused by its size; reading one byte
        // past the limit is enough to tell, whatever its length.
        let mut bytes = Vec::new();
        std::fs::File::open(&full)
            .and_then(|file| {
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(file, MAX_MANIFEST_BYTES as u64 + 1),
                    &mut bytes,
                )
            })
            .map(|_| Some(bytes))
            .map_err(|e| self.error(format!("{path}: {e}")))
    }
}

#[cfg(test)]
mod tests;

/// [`manifests::scan_markers`] of every file, in order, on up to four
/// threads when there are enough files for threads to pay off.
fn scan_markers_in_parallel(
    files: &[(String, String)],
) -> Vec<Result<manifests::MarkerScan, manifests::ManifestError>> {
    const PER_THREAD: usize = 64;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
        .min(files.len() / PER_THREAD)
        .max(1);
    if threads == 1 {
        return files
            .iter()
            .map(|(path, text)| manifests::scan_markers(path, text))
            .collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(path, text)| manifests::scan_markers(path, text))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a marker parser thread panicked"))
            .collect()
    })
}
