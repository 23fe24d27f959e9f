//! Policy files (PRODUCT.md §1): YAML streams of `crowsnest/v1`
//! `ImagePolicy` documents, read with [`crate::yaml`] into wire structs
//! (`deny_unknown_fields`, every checked value `Spanned`) and validated into
//! [`Policy`]. Every error names the file, line and column; errors about a
//! range or pattern point at the offending character when the scalar is
//! written on one line.
//!
//! A file is read twice: first only `apiVersion`/`kind` of each document,
//! to tell ours from other Kubernetes objects (Flux's are read by
//! [`super::flux`]); then our documents strictly: the whole stream when
//! every document is ours, else each document on its own.

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::filter::{Exclusions, TagFilter};
use super::select::{Order, Rule};
use super::semver::{Range, SyntaxError};
use super::window::{self, Window};
use super::{Broken, Declares, Identity, Policy, PolicyError, Promote, Verify};
use crate::config::parse_interval;
use crate::model::{
    DigestReflection, Field, ImageName, Located, Platform, PolicyId, Position, Target, TargetPath,
};
use crate::yaml;

/// The `apiVersion` of crowsnest's own documents.
pub const API_VERSION: &str = "crowsnest/v1";
/// The `kind` of a policy document.
pub const KIND: &str = "ImagePolicy";
/// The namespace of a policy without one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What the user typed.
pub(super) mod wire {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_saphyr::Spanned;

    /// Just enough of any document to tell what it is.
    #[derive(Debug, Deserialize)]
    #[serde(rename = "object", rename_all = "camelCase")]
    pub struct HeaderWire {
        #[serde(default)]
        pub api_version: Option<Spanned<String>>,
        #[serde(default)]
        pub kind: Option<Spanned<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "ImagePolicy", deny_unknown_fields, rename_all = "camelCase")]
    pub struct DocumentWire {
        #[allow(dead_code)]
        pub api_version: Spanned<String>,
        #[allow(dead_code)]
        pub kind: Spanned<String>,
        pub metadata: Spanned<MetadataWire>,
        pub spec: Spanned<SpecWire>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "metadata", deny_unknown_fields, rename_all = "camelCase")]
    pub struct MetadataWire {
        pub name: Spanned<String>,
        #[serde(default)]
        pub namespace: Option<Spanned<String>>,
        /// Accepted like on any Kubernetes object; not used.
        #[serde(default)]
        #[allow(dead_code)]
        pub labels: BTreeMap<String, String>,
        #[serde(default)]
        #[allow(dead_code)]
        pub annotations: BTreeMap<String, String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "spec", deny_unknown_fields, rename_all = "camelCase")]
    pub struct SpecWire {
        pub image: Spanned<String>,
        #[serde(default)]
        pub interval: Option<Spanned<String>>,
        /// How to choose among the registry's tags; or `promote`.
        #[serde(default)]
        pub policy: Option<Spanned<RuleWire>>,
        /// Take what another policy's setters have held long enough.
        #[serde(default)]
        pub promote: Option<Spanned<PromoteWire>>,
        /// Only tags whose image is signed.
        #[serde(default)]
        pub verify: Option<Spanned<VerifyWire>>,
        /// When changes may be committed.
        #[serde(default)]
        pub window: Option<Vec<Spanned<SpanWire>>>,
        #[serde(default)]
        pub filter_tags: Option<Spanned<FilterWire>>,
        #[serde(default)]
        pub exclusion_list: Option<Vec<Spanned<String>>>,
        #[serde(default)]
        pub digest_reflection_policy: Option<Spanned<String>>,
        #[serde(default)]
        pub platform: Option<Spanned<String>>,
        #[serde(default)]
        pub allow_downgrade: bool,
        #[serde(default)]
        pub targets: Vec<Spanned<TargetWire>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "window", deny_unknown_fields, rename_all = "camelCase")]
    pub struct SpanWire {
        #[serde(default)]
        pub days: Option<Vec<Spanned<String>>>,
        pub from: Spanned<String>,
        pub to: Spanned<String>,
        #[serde(default)]
        pub time_zone: Option<Spanned<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "verify", deny_unknown_fields, rename_all = "camelCase")]
    pub struct VerifyWire {
        pub provider: Spanned<String>,
        #[serde(default)]
        pub public_keys: Vec<Spanned<String>>,
        #[serde(default)]
        pub keyless: Vec<Spanned<KeylessWire>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "keyless", deny_unknown_fields)]
    pub struct KeylessWire {
        pub issuer: Spanned<String>,
        pub subject: Spanned<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "promote", deny_unknown_fields, rename_all = "camelCase")]
    pub struct PromoteWire {
        pub from: Spanned<String>,
        #[serde(default)]
        pub repository: Option<Spanned<String>>,
        #[serde(default)]
        pub soak: Option<Spanned<String>>,
        #[serde(default)]
        pub rollback: Option<Spanned<String>>,
        #[serde(default)]
        pub require_signed: Option<Spanned<bool>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "policy", deny_unknown_fields, rename_all = "camelCase")]
    pub struct RuleWire {
        #[serde(default)]
        pub semver: Option<Spanned<SemverWire>>,
        #[serde(default)]
        pub alphabetical: Option<Spanned<OrderWire>>,
        #[serde(default)]
        pub numerical: Option<Spanned<OrderWire>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "semver", deny_unknown_fields, rename_all = "camelCase")]
    pub struct SemverWire {
        pub range: Spanned<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "order", deny_unknown_fields, rename_all = "camelCase")]
    pub struct OrderWire {
        #[serde(default)]
        pub order: Option<Spanned<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "filterTags", deny_unknown_fields, rename_all = "camelCase")]
    pub struct FilterWire {
        pub pattern: Spanned<String>,
        #[serde(default)]
        pub extract: Option<Spanned<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "target", deny_unknown_fields, rename_all = "camelCase")]
    pub struct TargetWire {
        pub file: Spanned<String>,
        pub path: Spanned<String>,
        #[serde(default)]
        pub field: Option<Spanned<String>>,
    }
}

/// Parses every `crowsnest/v1` `ImagePolicy` of a policy file. `file`
/// names the file in messages (repository-relative). Other Kubernetes
/// objects (Flux's, which [`super::FluxObjects`] reads, and any other
/// `apiVersion`) are skipped, so a policies folder can be a folder of
/// cluster manifests; a document without `apiVersion`, or with a
/// `crowsnest` one that is not ours, is an error. Duplicate
/// `namespace:name` within the file is an error; across files, see
/// [`check_unique`]. Strict: the first problem fails the file (for
/// `crowsnest tags --policy`); [`read_policy_file`] keeps the good
/// documents of a file that has bad ones.
pub fn parse_policy_file(file: &str, text: &str) -> Result<Vec<Policy>, PolicyError> {
    let read = read_policy_file(file, text);
    if let Some(broken) = read.broken.into_iter().next() {
        return Err(broken.error);
    }
    check_unique(&read.policies)?;
    Ok(read.policies)
}

/// What [`read_policy_file`] made of a file: the policies that validate,
/// and each document that does not.
#[derive(Debug, Default)]
pub struct PolicyFile {
    pub policies: Vec<Policy>,
    pub broken: Vec<Broken>,
}

/// Reads every `crowsnest/v1` `ImagePolicy` of a policy file, each
/// document on its own, so one broken document holds back only the policy
/// it declares: a document that does not validate becomes a [`Broken`]
/// (with its `metadata` name when that can still be read) beside the
/// policies that do. A file that is not YAML at all is one `Broken`
/// without a name. Duplicates are left to the caller, which sees every file.
pub fn read_policy_file(file: &str, text: &str) -> PolicyFile {
    let validator = Validator { file, text };
    let broken = |declares, error| Broken { declares, error };
    let headers: Vec<Spanned<wire::HeaderWire>> = match yaml::from_str_multiple(file, text) {
        Ok(headers) => headers,
        Err(e) => {
            // One document that is not YAML must not hide the others:
            // read each `---`-separated part on its own.
            let parts = split_documents(text);
            if parts.len() <= 1 {
                return PolicyFile {
                    policies: Vec::new(),
                    broken: vec![broken(Declares::Unknown, e.into())],
                };
            }
            let mut read = PolicyFile::default();
            for part in parts {
                let part = read_policy_file(file, &part);
                read.policies.extend(part.policies);
                read.broken.extend(part.broken);
            }
            return read;
        }
    };
    let ours: Vec<Result<bool, PolicyError>> =
        headers.iter().map(|h| validator.header(h)).collect();
    // The common case, one parse of the whole stream: every document is
    // ours and valid.
    if ours.iter().all(|o| matches!(o, Ok(true))) {
        if let Ok(documents) = yaml::from_str_multiple::<Spanned<wire::DocumentWire>>(file, text) {
            let validated: Result<Vec<Policy>, PolicyError> =
                documents.iter().map(|d| validator.policy(d)).collect();
            if let Ok(policies) = validated {
                return PolicyFile {
                    policies,
                    broken: Vec::new(),
                };
            }
        }
    }
    let starts: Vec<u32> = headers
        .iter()
        .map(|h| yaml::position(&h.referenced).line)
        .collect();
    let mut read = PolicyFile::default();
    for (document, is_ours) in document_texts(text, &starts).iter().zip(ours) {
        let parsed = is_ours.and_then(|is_ours| {
            if !is_ours {
                return Ok(None);
            }
            let wire: Spanned<wire::DocumentWire> = yaml::from_str(file, document)?;
            validator.policy(&wire).map(Some)
        });
        match parsed {
            Ok(Some(policy)) => read.policies.push(policy),
            Ok(None) => {}
            Err(error) => read
                .broken
                .push(broken(declares_policy(file, document), error)),
        }
    }
    read
}

/// The documents of a stream split at its `---` lines, without parsing
/// (for a stream that does not parse as a whole): each part is padded
/// with blank lines so that line numbers stay those of the file. Inside a
/// block scalar content is indented, so a `---` at the start of a line
/// always separates documents.
pub(super) fn split_documents(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        let separator = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']));
        if separator {
            let lines = current.matches('\n').count() + 1;
            parts.push(std::mem::replace(&mut current, "\n".repeat(lines)));
        } else {
            current.push_str(line);
        }
    }
    parts.push(current);
    parts
}

/// The policy a broken document declares, if its name can be read.
fn declares_policy(file: &str, document: &str) -> Declares {
    declared_id(file, document, DEFAULT_NAMESPACE).map_or(Declares::Unknown, Declares::Policy)
}

/// The `namespace:name` a document declares, read as leniently as
/// possible (any other field may be wrong): for naming what a broken
/// document holds back.
pub(super) fn declared_id(file: &str, document: &str, default_namespace: &str) -> Option<PolicyId> {
    #[derive(serde::Deserialize)]
    struct Object {
        metadata: Option<Metadata>,
    }
    #[derive(serde::Deserialize)]
    struct Metadata {
        name: Option<String>,
        namespace: Option<String>,
    }
    let object: Object = yaml::from_str(file, document).ok()?;
    let metadata = object.metadata?;
    let name = metadata.name.filter(|n| valid_name(n))?;
    // A namespace that is there but invalid is not the default one: a
    // typo in `prod:app` must not disable a good `default:app`.
    let namespace = match metadata.namespace {
        None => default_namespace.to_owned(),
        Some(n) if valid_namespace(&n) => n,
        Some(_) => return None,
    };
    Some(PolicyId::new(namespace, name))
}

/// Each document of a stream on its own, for reading the documents of a
/// file one by one: document `i` runs from line `starts[i]` to the line
/// before the next document's `---` (or `...`), and is preceded by as many
/// blank lines as the stream has before it, so that line and column
/// numbers stay those of the file.
pub(super) fn document_texts(text: &str, starts: &[u32]) -> Vec<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut documents = Vec::with_capacity(starts.len());
    for (i, start) in starts.iter().enumerate() {
        let first = (*start as usize).saturating_sub(1).min(lines.len());
        let limit = starts
            .get(i + 1)
            .map_or(lines.len(), |n| (*n as usize).saturating_sub(1))
            .clamp(first, lines.len());
        let end = (first + 1..limit)
            .find(|&l| lines[l].starts_with("---") || lines[l].starts_with("..."))
            .unwrap_or(limit);
        let mut document = "\n".repeat(first);
        for line in &lines[first..end] {
            document.push_str(line);
        }
        documents.push(document);
    }
    documents
}

/// Fails on the second policy with a `namespace:name` already seen, naming
/// where the first one is. For checking across the files of a folder.
pub fn check_unique<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Result<(), PolicyError> {
    let mut seen: HashMap<&PolicyId, &Located> = HashMap::new();
    for policy in policies {
        if let Some(first) = seen.insert(&policy.id, &policy.declared_at) {
            return Err(PolicyError::Duplicate {
                at: policy.declared_at.clone(),
                id: policy.id.clone(),
                first: first.clone(),
            });
        }
    }
    Ok(())
}

/// A Kubernetes object name (DNS-1123 subdomain): what Flux accepts.
fn valid_name(name: &str) -> bool {
    valid_dns(name, 253, true)
}

/// A Kubernetes namespace (DNS-1123 label).
fn valid_namespace(namespace: &str) -> bool {
    valid_dns(namespace, 63, false)
}

fn valid_dns(text: &str, max: usize, dots: bool) -> bool {
    let b = text.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || (dots && c == b'.')
        })
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

pub(super) struct Validator<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Validator<'_> {
    pub(super) fn at<T>(&self, spanned: &Spanned<T>) -> Located {
        Located::new(self.file, yaml::position(&spanned.referenced))
    }

    pub(super) fn invalid<T>(
        &self,
        spanned: &Spanned<T>,
        message: impl Into<String>,
    ) -> PolicyError {
        PolicyError::Invalid {
            at: self.at(spanned),
            message: message.into(),
        }
    }

    /// The place of byte `offset` inside a string scalar: exact when the
    /// scalar is written plainly or quoted without escapes, else its start.
    fn inside(&self, scalar: &Spanned<String>, offset: usize) -> Located {
        let start = self.at(scalar);
        let span = scalar.referenced.span();
        let raw = span
            .byte_offset()
            .zip(span.byte_len())
            .and_then(|(o, l)| self.text.get(o as usize..(o + l) as usize));
        let value = &scalar.value;
        let Some(head) = value.get(..offset) else {
            return start;
        };
        let lead = match raw {
            Some(raw) if raw == value => 0,
            Some(raw)
                if raw.len() == value.len() + 2
                    && (raw.starts_with('\'') || raw.starts_with('"'))
                    && &raw[1..raw.len() - 1] == value =>
            {
                1
            }
            _ => return start,
        };
        if value.contains('\n') {
            return start;
        }
        let column = start.position.column + lead + head.chars().count() as u32;
        Located::new(self.file, Position::new(start.position.line, column))
    }

    pub(super) fn pattern_error(
        &self,
        scalar: &Spanned<String>,
        field: &str,
        error: SyntaxError,
    ) -> PolicyError {
        PolicyError::InvalidPattern {
            at: self.inside(scalar, error.offset),
            field: field.to_owned(),
            text: scalar.value.clone(),
            message: error.message,
        }
    }

    /// `true` for a `crowsnest/v1` `ImagePolicy`, `false` for another
    /// Kubernetes object (skipped); an error for anything else.
    fn header(&self, header: &Spanned<wire::HeaderWire>) -> Result<bool, PolicyError> {
        let Some(api_version) = &header.value.api_version else {
            return Err(self.invalid(
                header,
                format!(
                    "document has no apiVersion; policy files hold apiVersion: {API_VERSION}, kind: {KIND} (or Flux image objects)"
                ),
            ));
        };
        if !api_version.value.starts_with("crowsnest") {
            return Ok(false);
        }
        if api_version.value != API_VERSION {
            return Err(self.invalid(
                api_version,
                format!(
                    "apiVersion {:?} is not supported; policy files hold apiVersion: {API_VERSION}",
                    api_version.value
                ),
            ));
        }
        match &header.value.kind {
            None => Err(self.invalid(
                header,
                format!("document has no kind; expected kind: {KIND}"),
            )),
            Some(kind) if kind.value != KIND => Err(self.invalid(
                kind,
                format!(
                    "kind {:?} is not supported; expected kind: {KIND}",
                    kind.value
                ),
            )),
            Some(_) => Ok(true),
        }
    }

    fn policy(&self, document: &Spanned<wire::DocumentWire>) -> Result<Policy, PolicyError> {
        let metadata = &document.value.metadata.value;
        let spec = &document.value.spec.value;
        let name = &metadata.name;
        if !valid_name(&name.value) {
            return Err(self.invalid(
                name,
                format!(
                    "metadata.name {:?} is not a Kubernetes object name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)",
                    name.value
                ),
            ));
        }
        let namespace = match &metadata.namespace {
            Some(ns) if !valid_namespace(&ns.value) => {
                return Err(self.invalid(
                    ns,
                    format!(
                        "metadata.namespace {:?} is not a Kubernetes namespace (lowercase letters, digits and '-', at most 63)",
                        ns.value
                    ),
                ));
            }
            Some(ns) => ns.value.clone(),
            None => DEFAULT_NAMESPACE.to_owned(),
        };
        let image = ImageName::parse(&spec.image.value)
            .map_err(|e| self.invalid(&spec.image, format!("spec.image: {e}")))?;
        let interval = spec
            .interval
            .as_ref()
            .map(|i| {
                parse_interval(&i.value).map_err(|e| self.invalid(i, format!("spec.interval: {e}")))
            })
            .transpose()?;
        let (rule, promote) = match (&spec.policy, &spec.promote) {
            (Some(rule), None) => (self.rule(rule)?, None),
            (None, Some(promote)) => {
                let taken_as_is = [
                    ("filterTags", spec.filter_tags.is_some()),
                    ("exclusionList", spec.exclusion_list.is_some()),
                    (
                        "digestReflectionPolicy",
                        spec.digest_reflection_policy.is_some(),
                    ),
                    ("platform", spec.platform.is_some()),
                ];
                if let Some((key, _)) = taken_as_is.iter().find(|(_, set)| *set) {
                    return Err(self.invalid(
                        promote,
                        format!(
                            "spec.{key} does not apply to a promotion: the value is taken exactly as the source holds it, digest included"
                        ),
                    ));
                }
                // Values are ordered by the source policy's rule once the
                // pass has read it; by semver until then.
                let order = Range::parse("*")
                    .map(Rule::Semver)
                    .map_err(|e| self.invalid(promote, e.to_string()))?;
                (order, Some(self.promote(promote)?))
            }
            (Some(_), Some(promote)) => {
                return Err(self.invalid(
                    promote,
                    "give either spec.policy (choose from the registry) or spec.promote (take what another policy held), not both",
                ));
            }
            (None, None) => {
                return Err(self.invalid(
                    &document.value.spec,
                    "spec needs policy (semver, alphabetical or numerical) or promote",
                ));
            }
        };
        let filter = spec
            .filter_tags
            .as_ref()
            .map(|f| self.filter(f))
            .transpose()?;
        let exclusions = match &spec.exclusion_list {
            None => Exclusions::default(),
            Some(list) => {
                let texts: Vec<&str> = list.iter().map(|p| p.value.as_str()).collect();
                Exclusions::new(&texts).map_err(|(i, e)| {
                    self.pattern_error(&list[i], &format!("exclusionList[{i}] pattern"), e)
                })?
            }
        };
        let digest_reflection = match &spec.digest_reflection_policy {
            None => DigestReflection::Never,
            Some(d) => match d.value.as_str() {
                "Never" => DigestReflection::Never,
                "IfNotPresent" => DigestReflection::IfNotPresent,
                "Always" => DigestReflection::Always,
                other => {
                    return Err(self.invalid(
                        d,
                        format!(
                            "digestReflectionPolicy {other:?} is not one of: Never, IfNotPresent, Always"
                        ),
                    ));
                }
            },
        };
        let platform = spec
            .platform
            .as_ref()
            .map(|p| Platform::parse(&p.value).map_err(|e| self.invalid(p, e)))
            .transpose()?;
        let targets = spec
            .targets
            .iter()
            .map(|t| self.target(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            id: PolicyId::new(namespace, name.value.clone()),
            image,
            interval,
            rule,
            filter,
            exclusions,
            digest_reflection,
            platform,
            allow_downgrade: spec.allow_downgrade,
            insecure: false,
            targets,
            promote,
            verify: spec.verify.as_ref().map(|v| self.verify(v)).transpose()?,
            window: spec.window.as_ref().map(|w| self.window(w)).transpose()?,
            declared_at: self.at(document),
        })
    }

    fn window(&self, spans: &[Spanned<wire::SpanWire>]) -> Result<Window, PolicyError> {
        let mut out = Vec::with_capacity(spans.len());
        for spanned in spans {
            let wire = &spanned.value;
            let mut days = [wire.days.is_none(); 7];
            if let Some(list) = &wire.days {
                if list.is_empty() {
                    return Err(self.invalid(
                        spanned,
                        "window days must name at least one day (or be left out for every day)",
                    ));
                }
                for day in list {
                    let i = window::parse_day(&day.value).ok_or_else(|| {
                        self.invalid(
                            day,
                            format!(
                                "window day {:?} is not one of Mon, Tue, Wed, Thu, Fri, Sat, Sun",
                                day.value
                            ),
                        )
                    })?;
                    days[i] = true;
                }
            }
            let time = |t: &Spanned<String>, key: &str| {
                window::parse_time(&t.value).ok_or_else(|| {
                    self.invalid(
                        t,
                        format!(
                            "window {key} {:?} is not a time like 09:00 (24 hours)",
                            t.value
                        ),
                    )
                })
            };
            let (from, to) = (time(&wire.from, "from")?, time(&wire.to, "to")?);
            if from == to {
                return Err(self.invalid(&wire.to, "window to must differ from from (a span of no time, or of all day, is ambiguous: leave window out for always)"));
            }
            let zone_name = wire
                .time_zone
                .as_ref()
                .map_or_else(|| "UTC".to_owned(), |z| z.value.trim().to_owned());
            let zone = jiff::tz::TimeZone::get(&zone_name).map_err(|_| {
                let at = wire.time_zone.as_ref().expect("UTC is always known");
                self.invalid(at, format!("window timeZone {zone_name:?} is not an IANA time zone name like Europe/Berlin"))
            })?;
            out.push(window::Span {
                days,
                from,
                to,
                zone,
                zone_name,
            });
        }
        Ok(Window { spans: out })
    }

    fn verify(&self, spanned: &Spanned<wire::VerifyWire>) -> Result<Verify, PolicyError> {
        let wire = &spanned.value;
        if wire.provider.value != "cosign" {
            return Err(self.invalid(
                &wire.provider,
                format!(
                    "verify.provider {:?} is not supported; use cosign",
                    wire.provider.value
                ),
            ));
        }
        if wire.public_keys.is_empty() && wire.keyless.is_empty() {
            return Err(self.invalid(
                spanned,
                "verify needs publicKeys (PEM files in this repository) or keyless identities",
            ));
        }
        let mut keyless = Vec::new();
        for identity in &wire.keyless {
            let wire::KeylessWire { issuer, subject } = &identity.value;
            if issuer.value.is_empty() {
                return Err(self.invalid(issuer, "verify.keyless issuer must not be empty"));
            }
            if let Err(e) = regex::Regex::new(&subject.value) {
                return Err(self.invalid(
                    subject,
                    format!("verify.keyless subject is not a valid regular expression: {e}"),
                ));
            }
            keyless.push(Identity {
                issuer: issuer.value.clone(),
                subject: subject.value.clone(),
            });
        }
        let mut public_keys = Vec::new();
        for key in &wire.public_keys {
            let path = key.value.trim_start_matches("./");
            if path.is_empty() || path.starts_with('/') || path.split('/').any(|p| p == "..") {
                return Err(self.invalid(
                    key,
                    format!("verify.publicKeys entry {:?} must be a path inside the repository, from its root", key.value),
                ));
            }
            public_keys.push((path.to_owned(), self.at(key)));
        }
        Ok(Verify {
            public_keys,
            keyless,
        })
    }

    fn promote(&self, spanned: &Spanned<wire::PromoteWire>) -> Result<Promote, PolicyError> {
        let wire = &spanned.value;
        let from = match wire.from.value.split_once(':') {
            Some((ns, name)) if valid_namespace(ns) && valid_name(name) => PolicyId::new(ns, name),
            None if valid_name(&wire.from.value) => {
                PolicyId::new(DEFAULT_NAMESPACE, wire.from.value.clone())
            }
            _ => {
                return Err(self.invalid(
                    &wire.from,
                    format!(
                        "promote.from {:?} must name a policy as namespace:name (or name in the default namespace)",
                        wire.from.value
                    ),
                ));
            }
        };
        let soak = wire
            .soak
            .as_ref()
            .map(|s| {
                humantime::parse_duration(s.value.trim()).map_err(|e| {
                    self.invalid(
                        s,
                        format!(
                            "promote.soak {:?} is not a duration like 30m or 24h: {e}",
                            s.value
                        ),
                    )
                })
            })
            .transpose()?
            .unwrap_or(Duration::ZERO);
        let rollback_blocks = match wire.rollback.as_ref().map(|r| r.value.as_str()) {
            None | Some("block") => true,
            Some("allow") => false,
            Some(other) => {
                return Err(self.invalid(
                    wire.rollback.as_ref().expect("matched Some"),
                    format!("promote.rollback {other:?} is not one of: block, allow"),
                ));
            }
        };
        Ok(Promote {
            from,
            repository: wire.repository.as_ref().map(|r| r.value.clone()),
            soak,
            rollback_blocks,
            require_signed: wire.require_signed.as_ref().is_some_and(|r| r.value),
            from_at: self.at(&wire.from),
            repository_at: wire.repository.as_ref().map(|r| self.at(r)),
            require_signed_at: wire.require_signed.as_ref().map(|r| self.at(r)),
        })
    }

    pub(super) fn rule(&self, policy: &Spanned<wire::RuleWire>) -> Result<Rule, PolicyError> {
        let wire = &policy.value;
        let order = |o: &Spanned<wire::OrderWire>| match &o.value.order {
            None => Ok(Order::Asc),
            Some(word) => Order::parse(&word.value).ok_or_else(|| {
                self.invalid(word, format!("order {:?} is not asc or desc", word.value))
            }),
        };
        match (&wire.semver, &wire.alphabetical, &wire.numerical) {
            (Some(semver), None, None) => {
                let range = &semver.value.range;
                Range::parse(&range.value)
                    .map(Rule::Semver)
                    .map_err(|e| PolicyError::InvalidRange {
                        at: self.inside(range, e.offset),
                        range: range.value.clone(),
                        message: e.message,
                    })
            }
            (None, Some(a), None) => Ok(Rule::Alphabetical(order(a)?)),
            (None, None, Some(n)) => Ok(Rule::Numerical(order(n)?)),
            (None, None, None) => Err(self.invalid(
                policy,
                "spec.policy needs one of semver, alphabetical, numerical (e.g. `semver: {range: \"*\"}` or `alphabetical: {}`)",
            )),
            _ => Err(self.invalid(
                policy,
                "spec.policy must have exactly one of semver, alphabetical, numerical",
            )),
        }
    }

    pub(super) fn filter(
        &self,
        filter: &Spanned<wire::FilterWire>,
    ) -> Result<TagFilter, PolicyError> {
        let wire = &filter.value;
        let compiled = TagFilter::new(&wire.pattern.value)
            .map_err(|e| self.pattern_error(&wire.pattern, "filterTags.pattern", e))?;
        match &wire.extract {
            None => Ok(compiled),
            Some(extract) => compiled
                .with_extract(&extract.value)
                .map_err(|e| self.pattern_error(extract, "filterTags.extract", e)),
        }
    }

    fn target(&self, target: &Spanned<wire::TargetWire>) -> Result<Target, PolicyError> {
        let wire = &target.value;
        let file = self.repo_file(&wire.file)?;
        let path = TargetPath::parse(&wire.path.value)
            .map_err(|e| self.invalid(&wire.path, format!("targets[].path: {e}")))?;
        let field = match &wire.field {
            None => Field::Image,
            Some(f) => Field::from_word(&f.value).ok_or_else(|| {
                self.invalid(
                    f,
                    format!(
                        "targets[].field {:?} is not one of: image, tag, name, digest",
                        f.value
                    ),
                )
            })?,
        };
        Ok(Target {
            file,
            path,
            field,
            declared_at: self.at(target),
        })
    }

    /// A file inside the managed repository: relative, no `..`, `/`-separated.
    fn repo_file(&self, value: &Spanned<String>) -> Result<String, PolicyError> {
        let text = &value.value;
        if text.starts_with('/') || text.contains('\\') {
            return Err(self.invalid(
                value,
                format!(
                    "targets[].file {text:?} must be relative to the repository root, with '/' separators"
                ),
            ));
        }
        let mut parts = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(self.invalid(
                        value,
                        format!("targets[].file {text:?} must stay inside the repository"),
                    ));
                }
                p => parts.push(p),
            }
        }
        if parts.is_empty() {
            return Err(self.invalid(value, "targets[].file must name a file"));
        }
        Ok(parts.join("/"))
    }
}
