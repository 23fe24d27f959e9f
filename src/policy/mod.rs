//! Tag policies: policy files -> [`Policy`]; a list of tags -> the pick, and
//! why every other tag lost. Pure: no IO, no async, no logging (callers log
//! and count what [`Pick`] and [`Decision`] report).
//!
//! - [`semver`]: Masterminds/semver v3 constraints and Flux's tag rules.
//! - [`TagFilter`], [`Exclusions`]: `filterTags` and `exclusionList`.
//! - [`Selector`]: selection ([`Selector::select`], the hot path),
//!   explanation ([`Decision`], [`Summary`]) and the downgrade guard.
//! - [`read_policy_file`] (each document on its own: a broken one is a
//!   [`Broken`] beside the good ones), [`parse_policy_file`] (strict),
//!   [`check_unique`]: the `crowsnest/v1` `ImagePolicy` format (PRODUCT.md §1).
//! - [`FluxObjects`]: Flux's `ImageRepository`, `ImagePolicy` and
//!   `ImageUpdateAutomation` objects, resolved into [`Policy`]s and an
//!   [`Automation`]; [`template_data`] is Flux's commit template data.
//!
//! Semantics follow Flux's image-reflector-controller. Deliberate differences,
//! each documented where it is implemented:
//!
//! - Ties go to the first tag listed, for every rule. Flux keeps the first
//!   for semver, the last for numerical, and with `extract` keeps the last
//!   tag per extracted value (and iterates a Go map, so equal-ranking values
//!   of different text come out in random order).
//! - A numerical policy skips tags that are not numbers ([`Pick::not_numeric`]
//!   counts them for a warning and a metric); Flux fails the whole policy.
//! - `extract` referring to a group the pattern lacks is an error at load
//!   time; Flux silently expands it to nothing.

mod file;
mod filter;
pub mod flux;
mod select;
pub mod semver;
pub mod window;

use std::time::Duration;

use crate::model::{DigestReflection, ImageName, Located, Platform, PolicyId, Target};
use crate::yaml::YamlError;

pub use file::{PolicyFile, check_unique, parse_policy_file, read_policy_file};
pub use filter::{Exclusions, TagFilter};
pub use flux::{
    Automation, FluxChange, FluxMessage, FluxObjects, ObjectId, Resolved, Warning,
    may_contain_flux_objects, object_at, object_ids, sample_changes, template_data,
};
pub use select::{Candidate, Decision, Order, Pick, Rule, Selector, Summary, Verdict};
pub use semver::{Dialect, Range, SyntaxError};

/// A policy file problem, always with its place: `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not YAML, or YAML of the wrong shape (unknown field, wrong type).
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// `spec.policy.semver.range` does not parse.
    #[error("{at}: invalid semver range {range:?}: {message}")]
    InvalidRange {
        at: Located,
        range: String,
        message: String,
    },
    /// A `filterTags` or `exclusionList` pattern, or an `extract` template,
    /// does not parse.
    #[error("{at}: invalid {field} {text:?}: {message}")]
    InvalidPattern {
        at: Located,
        field: String,
        text: String,
        message: String,
    },
    /// Any other value that does not validate.
    #[error("{at}: {message}")]
    Invalid { at: Located, message: String },
    /// The same `namespace:name` twice.
    #[error("{at}: policy {id} is declared twice; the first declaration is at {first}")]
    Duplicate {
        at: Located,
        id: PolicyId,
        first: Located,
    },
}

impl PolicyError {
    /// A stable label for the `errors_total{kind=...}` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyError::Yaml(_) => "policy_yaml",
            PolicyError::InvalidRange { .. } => "policy_range",
            PolicyError::InvalidPattern { .. } => "policy_pattern",
            PolicyError::Invalid { .. } => "policy_invalid",
            PolicyError::Duplicate { .. } => "policy_duplicate",
        }
    }

    /// Where the problem is.
    pub fn at(&self) -> &Located {
        match self {
            PolicyError::Yaml(e) => &e.at,
            PolicyError::InvalidRange { at, .. }
            | PolicyError::InvalidPattern { at, .. }
            | PolicyError::Invalid { at, .. }
            | PolicyError::Duplicate { at, .. } => at,
        }
    }
}

/// A policy document that could not be read: the error, and the policy it
/// declares when its name could still be read. A broken policy disables
/// only itself: markers naming it are held back with a pointer to this
/// error instead of being reported as naming an unknown policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub declares: Declares,
    pub error: PolicyError,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// What a broken document declares, as far as it can still be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declares {
    /// Not readable (not YAML, no name) or not a policy (an `ImageRepository`).
    Unknown,
    /// This policy, which is disabled.
    Policy(PolicyId),
    /// A Flux `ImageUpdateAutomation`, which may name the branches and
    /// author of every commit.
    Automation,
}

/// One validated `ImagePolicy`.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub id: PolicyId,
    /// The repository to watch, as written (that text goes into files).
    pub image: ImageName,
    /// `None`: the daemon's `scan.interval`.
    pub interval: Option<Duration>,
    pub rule: Rule,
    pub filter: Option<TagFilter>,
    /// `exclusionList`, or [`Exclusions::DEFAULT`] when the file has none.
    pub exclusions: Exclusions,
    pub digest_reflection: DigestReflection,
    pub platform: Option<Platform>,
    pub allow_downgrade: bool,
    /// Plain http to the image's registry (a Flux `ImageRepository` with
    /// `insecure: true`); `false` for crowsnest policies, whose hosts are
    /// set in the daemon config.
    pub insecure: bool,
    pub targets: Vec<Target>,
    /// `spec.promote`: values come from another policy's setters, not
    /// from the registry.
    pub promote: Option<Promote>,
    /// `spec.verify`: only tags whose image is signed by these keys.
    pub verify: Option<Verify>,
    /// `spec.window`: changes wait until it is open.
    pub window: Option<window::Window>,
    /// Where the document starts.
    pub declared_at: Located,
}

/// `spec.verify` (PRODUCT.md §9): cosign public keys, as files of the
/// managed repository (so a key change is itself an audited commit), and
/// keyless signer identities (Fulcio certificates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    /// Repository-relative paths of PEM public keys, and where each is named.
    pub public_keys: Vec<(String, Located)>,
    /// Keyless identities: any one of them may sign.
    pub keyless: Vec<Identity>,
}

/// A keyless signer: the certificate's OIDC issuer, exactly, and its
/// subject (SAN URI or email) matching a regular expression (checked valid
/// when the policy is read; not anchored unless it says `^…$`, as cosign's
/// `--certificate-identity-regexp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
}

/// `spec.promote` (PRODUCT.md §8): take the values `from`'s setters held
/// on its branch or folder once they held long enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promote {
    /// The source policy.
    pub from: PolicyId,
    /// The `repositories` entry where `from` lives; `None`: this one.
    pub repository: Option<String>,
    /// How long a value must have held there, unreplaced.
    pub soak: Duration,
    /// `rollback: block` (the default): a value once replaced by a lower
    /// one is never promoted.
    pub rollback_blocks: bool,
    /// Count only time that began with a Good-signed commit.
    pub require_signed: bool,
    /// Where `from`, `repository` and `requireSigned` are written (what a
    /// finding about them names).
    pub from_at: Located,
    pub repository_at: Option<Located>,
    pub require_signed_at: Option<Located>,
}

impl Policy {
    /// The part of the policy that chooses among tags.
    pub fn selector(&self) -> Selector<'_> {
        Selector {
            rule: &self.rule,
            filter: self.filter.as_ref(),
            exclusions: &self.exclusions,
        }
    }

    /// Index (into `tags`) of the tag the policy picks, or `None`.
    /// Allocates nothing per tag unless `filterTags.extract` is set.
    pub fn select(&self, tags: &[String]) -> Option<usize> {
        self.selector().select(tags)
    }

    /// [`Policy::select`] plus how many tags a numerical policy skipped.
    pub fn pick(&self, tags: &[String]) -> Pick {
        self.selector().pick(tags)
    }

    /// Every tag with its verdict; the pick is the one [`Policy::select`] makes.
    pub fn explain(&self, tags: &[String]) -> Decision {
        self.selector().explain(tags)
    }

    /// May `current` (a tag now in a file) be replaced by `candidate`? Not
    /// when the policy orders `candidate` strictly below `current` and
    /// `allowDowngrade` is off. A `current` the policy cannot order
    /// (`latest`, a tag the filter rejects) may always be replaced. The
    /// order ignores the range and exclusions: a value above the range is
    /// still above.
    pub fn permits(&self, current: &str, candidate: &str) -> bool {
        self.allow_downgrade || !self.selector().ranks_below(candidate, current)
    }
}

#[cfg(test)]
mod tests;
