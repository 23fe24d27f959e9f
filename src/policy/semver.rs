//! Masterminds/semver v3 constraints and Flux's tag rules, on [`semver::Version`].
//!
//! Flux's image-reflector-controller selects semver tags with the Go library
//! Masterminds/semver v3. Users moving from Flux must get the same tag from the
//! same range, so this module reproduces that library's behaviour, quirks
//! included. The parser is written by hand because the `semver` crate's
//! `VersionReq` is Cargo's language, a different one: a bare `1.2.3` means
//! `^1.2.3` to Cargo and `=1.2.3` here; `>11` means `>=12.0.0` here; `||`,
//! hyphen ranges, `!=`, `=>`, `=<` and `~>` are not Cargo syntax; and the
//! prerelease rule differs. Only the version type is shared.
//!
//! # The constraint language (what Masterminds does, and so what we do)
//!
//! 1. Hyphen ranges are rewritten first, over the whole text: every
//!    `A - B` (whitespace on both sides of the `-`) becomes `>= A, <= B `.
//! 2. The text is split on `||` into OR-groups.
//! 3. Each group must be a list of comparators `OP VERSION`, separated by
//!    whitespace or a comma. `OP` is one of `= != > < >= => <= =< ~ ~> ^` or
//!    nothing (which means `=`). `VERSION` is `v?N(.N)?(.N)?(-PRE)?(+BUILD)?`
//!    where each `N` is digits or a wildcard `x`, `X`, `*`.
//! 4. A version with a wildcard or missing part is "partial": `1` and `1.x`
//!    stand for `1.0.0` with a wildcard minor, `1.2` and `1.2.x` for `1.2.0`
//!    with a wildcard patch, `x` (and anything starting with a wildcard major)
//!    for `0.0.0` with everything wild. Partial versions change what the
//!    operators mean: `>11` is `>=12.0.0`, `<=2.x` is `<3.0.0`, a bare or `=`
//!    partial behaves like `~`.
//! 5. Build metadata is ignored when comparing. Prerelease identifiers compare
//!    numerically when both parse as a u64, else bytewise; a number sorts
//!    before text (an identifier too large for a u64 counts as text).
//! 6. A prerelease version only satisfies an AND-group that has a comparator
//!    with a prerelease (`>=1.2.0-0 <2.0.0` admits `1.5.0-rc.1`; `>=1.2.0`
//!    does not).
//!
//! # Versions: Masterminds 3.4 (Flux) and 3.2 (Debian, the test oracle)
//!
//! [`Dialect::Flux`] is Masterminds/semver 3.4.0, the 3.x Flux builds with
//! and the first to apply the prerelease rule per AND-group (#267) and, from
//! 3.2.1 on, to keep a space after a rewritten hyphen range (#199). The
//! differential test runs against the 3.2.0 library Debian ships; with
//! [`Dialect::Masterminds3_2`] the same parser reproduces that version, so
//! the test proves both the shared core and that the differences are exactly
//! these (each listed in `tests/policy_oracle.rs`):
//!
//! - 3.2.0 applies the prerelease rule per comparator: `>=1.0.0-0 <2.0.0`
//!   rejects `1.5.0-rc.1` there because `<2.0.0` names no prerelease.
//! - 3.2.0 lets a non-partial `!=` accept any prerelease (`!=1.2.3` alone
//!   matches `1.3.0-rc.1`); 3.4 applies the group rule to `!=` as well.
//! - 3.2.0 rewrites `1 - 2 <3` to `>= 1, <= 2<3`, which does not parse;
//!   3.2.1+ writes `>= 1, <= 2 <3`.
//!
//! Masterminds 3.3.1 briefly refused leading zeros (`01.2.3`); 3.4.0 restored
//! them (#266) and Flux pinned 3.3.0 in between, so leading zeros are accepted
//! in every version Flux shipped with and here.
//!
//! # Tags
//!
//! Flux parses a tag as a version only if it has at least two `.` (the
//! "three parts" check, which counts the dots of a prerelease too: `1-rc.1.2`
//! passes it) and then with Masterminds' lenient parser: a leading `v`,
//! leading zeros, a missing minor or patch. Numbers must fit in a u64.
//! [`parse_tag`] does both.

use std::cmp::Ordering;
use std::fmt;

use semver::{BuildMetadata, Prerelease, Version};

/// Which Masterminds/semver behaviour to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// Masterminds/semver 3.4.0, as Flux builds with: the one crowsnest uses.
    #[default]
    Flux,
    /// Masterminds/semver 3.2.0, as Debian ships it (the differential-test oracle).
    Masterminds3_2,
}

/// A range or pattern that does not parse: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// Byte offset into the text of the offending part (0 when the error
    /// concerns the whole text).
    pub offset: usize,
    pub message: String,
}

impl SyntaxError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        Self {
            offset,
            message: message.into(),
        }
    }
}

/// Why a tag is not a semver version under Flux's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAVersion {
    /// Fewer than two `.`: Flux wants three dot-separated parts.
    TooFewParts(usize),
    /// Not of the form `v?N(.N)?(.N)?(-PRE)?(+BUILD)?`.
    Syntax,
    /// A number does not fit in 64 bits.
    TooLarge,
    /// A numeric prerelease identifier with a leading zero (`1.2.3-rc.01`).
    LeadingZero,
}

impl fmt::Display for NotAVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotAVersion::TooFewParts(n) => write!(
                f,
                "has {n} dot-separated part{}; semver tags need three (major.minor.patch)",
                if *n == 1 { "" } else { "s" }
            ),
            NotAVersion::Syntax => f.write_str("is not a semantic version"),
            NotAVersion::TooLarge => {
                write!(f, "has a number larger than {}", u64::MAX)
            }
            NotAVersion::LeadingZero => {
                f.write_str("has a numeric prerelease identifier with a leading zero")
            }
        }
    }
}

/// Whitespace as Go's regexp `\s` knows it.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

/// A character of a constraint's version number: digits, wildcards, and `|`
/// (Masterminds' character class `[0-9|x|X|\*]` contains it).
fn is_number_char(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'x' | b'X' | b'*' | b'|')
}

/// A character of a prerelease or build identifier.
fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn is_op_char(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'>' | b'<' | b'~' | b'^')
}

fn is_wildcard(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

/// Skips `[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*` from `start`; returns the end.
/// `start` must be at an identifier character.
fn scan_identifiers(b: &[u8], start: usize) -> usize {
    let mut p = start;
    loop {
        while p < b.len() && is_ident_char(b[p]) {
            p += 1;
        }
        if p + 1 < b.len() && b[p] == b'.' && is_ident_char(b[p + 1]) {
            p += 1;
        } else {
            return p;
        }
    }
}

/// The parts of a version as Masterminds' regex splits it (each without its
/// leading `.`, `-` or `+`).
#[derive(Debug, Clone, Copy)]
struct Parts<'a> {
    major: &'a str,
    minor: Option<&'a str>,
    patch: Option<&'a str>,
    pre: Option<&'a str>,
    build: Option<&'a str>,
}

/// Matches `v?N(\.N)?(\.N)?(-P)?(\+P)?` at `start`, greedily, where `N` is a
/// run of characters accepted by `number`. Returns the parts and the end.
fn scan_version(text: &str, start: usize, number: fn(u8) -> bool) -> Option<(Parts<'_>, usize)> {
    let b = text.as_bytes();
    let mut p = start;
    if b.get(p) == Some(&b'v') && b.get(p + 1).is_some_and(|&c| number(c)) {
        p += 1;
    }
    let run = |from: usize| {
        let mut end = from;
        while end < b.len() && number(b[end]) {
            end += 1;
        }
        end
    };
    let end = run(p);
    if end == p {
        return None;
    }
    let major = &text[p..end];
    p = end;
    let mut numbers = [None, None];
    for slot in &mut numbers {
        if b.get(p) == Some(&b'.') && b.get(p + 1).is_some_and(|&c| number(c)) {
            let end = run(p + 1);
            *slot = Some(&text[p + 1..end]);
            p = end;
        }
    }
    let mut extras = [None, None];
    for (slot, lead) in extras.iter_mut().zip([b'-', b'+']) {
        if b.get(p) == Some(&lead) && b.get(p + 1).is_some_and(|&c| is_ident_char(c)) {
            let end = scan_identifiers(b, p + 1);
            *slot = Some(&text[p + 1..end]);
            p = end;
        }
    }
    Some((
        Parts {
            major,
            minor: numbers[0],
            patch: numbers[1],
            pre: extras[0],
            build: extras[1],
        },
        p,
    ))
}

fn parse_number(digits: &str) -> Result<u64, NotAVersion> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NotAVersion::Syntax);
    }
    digits.parse().map_err(|_| NotAVersion::TooLarge)
}

fn prerelease(text: Option<&str>) -> Result<Prerelease, NotAVersion> {
    match text {
        None => Ok(Prerelease::EMPTY),
        // The scanner only lets identifier characters through, so the one
        // thing `semver` can still refuse is a leading zero, which
        // Masterminds refuses too.
        Some(text) => Prerelease::new(text).map_err(|_| NotAVersion::LeadingZero),
    }
}

fn build_metadata(text: Option<&str>) -> Result<BuildMetadata, NotAVersion> {
    match text {
        None => Ok(BuildMetadata::EMPTY),
        Some(text) => BuildMetadata::new(text).map_err(|_| NotAVersion::Syntax),
    }
}

/// Masterminds' lenient `NewVersion`: `v?N(.N)?(.N)?(-PRE)?(+BUILD)?`,
/// leading zeros allowed, missing parts are 0.
pub fn parse_lenient(text: &str) -> Result<Version, NotAVersion> {
    let (parts, end) = scan_version(text, 0, |b| b.is_ascii_digit()).ok_or(NotAVersion::Syntax)?;
    if end != text.len() {
        return Err(NotAVersion::Syntax);
    }
    Ok(Version {
        major: parse_number(parts.major)?,
        minor: parts.minor.map_or(Ok(0), parse_number)?,
        patch: parts.patch.map_or(Ok(0), parse_number)?,
        pre: prerelease(parts.pre)?,
        build: build_metadata(parts.build)?,
    })
}

/// A tag as Flux reads it: at least three dot-separated parts, then
/// [`parse_lenient`]. The caller keeps the tag text; it is what gets written.
pub fn parse_tag(tag: &str) -> Result<Version, NotAVersion> {
    let mut dots = tag.bytes().filter(|&b| b == b'.');
    if dots.next().is_none() {
        return Err(NotAVersion::TooFewParts(1));
    }
    if dots.next().is_none() {
        return Err(NotAVersion::TooFewParts(2));
    }
    parse_lenient(tag)
}

/// One prerelease identifier against another, as Masterminds compares them.
fn compare_identifier(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    let number = |t: &str| -> Option<u64> {
        if t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    match (number(s), number(o)) {
        (None, None) => s.as_bytes().cmp(o.as_bytes()),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(a), Some(b)) => a.cmp(&b),
    }
}

/// Two non-empty prereleases, identifier by identifier; a missing identifier
/// sorts first.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (l, r) => match compare_identifier(l.unwrap_or(""), r.unwrap_or("")) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

/// Version precedence as Masterminds computes it: build metadata ignored, a
/// release above its prereleases, prerelease identifiers per
/// [`compare_identifier`]. (`semver::Version`'s own `Ord` orders build
/// metadata and numbers beyond u64 differently.)
pub fn compare(a: &Version, b: &Version) -> Ordering {
    a.major
        .cmp(&b.major)
        .then(a.minor.cmp(&b.minor))
        .then(a.patch.cmp(&b.patch))
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => compare_prerelease(a.pre.as_str(), b.pre.as_str()),
        })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// `=` or no operator.
    Equal,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    /// `~` or `~>`.
    Tilde,
    Caret,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "" | "=" => Op::Equal,
            "!=" => Op::NotEqual,
            ">" => Op::Greater,
            "<" => Op::Less,
            ">=" | "=>" => Op::GreaterEqual,
            "<=" | "=<" => Op::LessEqual,
            "~" | "~>" => Op::Tilde,
            "^" => Op::Caret,
            _ => return None,
        })
    }
}

/// Where a partial version becomes a wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wild {
    /// `1.2.3`: exact.
    None,
    /// `x`, `*`, `x.y.z`: everything (Masterminds' `dirty` alone).
    Major,
    /// `1`, `1.x`: the minor and patch (`minorDirty`).
    Minor,
    /// `1.2`, `1.2.x`: the patch (`patchDirty`).
    Patch,
}

#[derive(Clone, Debug)]
struct Comparator {
    op: Op,
    version: Version,
    wild: Wild,
}

impl Comparator {
    /// Builds a comparator the way Masterminds' `parseConstraint` does:
    /// a partial version becomes `M.0.0` / `M.m.0` / `0.0.0` plus the
    /// prerelease (build metadata dropped), and must then parse.
    fn new(op: Op, parts: Parts<'_>) -> Result<Comparator, NotAVersion> {
        let (major, minor, patch, wild) = if is_wildcard(parts.major) {
            (0, 0, 0, Wild::Major)
        } else if parts.minor.is_none_or(is_wildcard) {
            (parse_number(parts.major)?, 0, 0, Wild::Minor)
        } else if parts.patch.is_none_or(is_wildcard) {
            let minor = parts.minor.map_or(Ok(0), parse_number)?;
            (parse_number(parts.major)?, minor, 0, Wild::Patch)
        } else {
            (
                parse_number(parts.major)?,
                parts.minor.map_or(Ok(0), parse_number)?,
                parts.patch.map_or(Ok(0), parse_number)?,
                Wild::None,
            )
        };
        let build = match wild {
            Wild::None => build_metadata(parts.build)?,
            _ => BuildMetadata::EMPTY,
        };
        Ok(Comparator {
            op,
            version: Version {
                major,
                minor,
                patch,
                pre: prerelease(parts.pre)?,
                build,
            },
            wild,
        })
    }

    /// Does `v` satisfy this comparator? `include_pre` says whether a
    /// prerelease `v` is considered at all.
    fn matches(&self, v: &Version, include_pre: bool, dialect: Dialect) -> bool {
        let c = &self.version;
        let blocked = !v.pre.is_empty() && !include_pre;
        match self.op {
            Op::NotEqual => {
                if blocked && (dialect == Dialect::Flux || self.wild != Wild::None) {
                    return false;
                }
                if self.wild != Wild::None {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && self.wild != Wild::Minor {
                        return true;
                    } else if self.wild == Wild::Minor {
                        return false;
                    } else if c.patch != v.patch && self.wild != Wild::Patch {
                        return true;
                    } else if self.wild == Wild::Patch {
                        if !v.pre.is_empty() || !c.pre.is_empty() {
                            return compare_prerelease(v.pre.as_str(), c.pre.as_str())
                                != Ordering::Equal;
                        }
                        return false;
                    }
                }
                compare(v, c) != Ordering::Equal
            }
            _ if blocked => false,
            Op::Equal if self.wild != Wild::None => self.tilde(v),
            Op::Equal => compare(v, c) == Ordering::Equal,
            Op::Greater if self.wild == Wild::None => compare(v, c) == Ordering::Greater,
            Op::Greater if v.major != c.major => v.major > c.major,
            Op::Greater => match self.wild {
                // `>11` wants 12 or more, `>11.1` wants 11.2 or more.
                Wild::Minor => false,
                Wild::Patch => v.minor > c.minor,
                _ => compare(v, c) == Ordering::Greater,
            },
            Op::Less => compare(v, c) == Ordering::Less,
            Op::GreaterEqual => compare(v, c) != Ordering::Less,
            Op::LessEqual => match self.wild {
                Wild::None => compare(v, c) != Ordering::Greater,
                _ => {
                    !(v.major > c.major
                        || (v.major == c.major && v.minor > c.minor && self.wild != Wild::Minor))
                }
            },
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    /// `~1.2.3` is `>=1.2.3 <1.3.0`; `~1` is `>=1.0.0 <2.0.0`; `~0.0.0` is anything.
    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if compare(v, c) == Ordering::Less {
            return false;
        }
        if c.major == 0
            && c.minor == 0
            && c.patch == 0
            && !matches!(self.wild, Wild::Minor | Wild::Patch)
        {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.wild == Wild::Minor)
    }

    /// `^1.2.3` is `>=1.2.3 <2.0.0`; `^0.2.3` is `>=0.2.3 <0.3.0`; `^0.0.3` is `=0.0.3`.
    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if compare(v, c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.wild == Wild::Minor {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.wild == Wild::Patch {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        c.patch == v.patch
    }
}

#[derive(Clone, Debug)]
struct Group {
    comparators: Vec<Comparator>,
    /// Some comparator names a prerelease: prerelease versions are considered.
    has_prerelease: bool,
}

/// A parsed Masterminds/semver constraint: OR-groups of AND-ed comparators.
#[derive(Clone, Debug)]
pub struct Range {
    text: String,
    groups: Vec<Group>,
    dialect: Dialect,
}

impl PartialEq for Range {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.dialect == other.dialect
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A hyphen range found in the text: the whole match and its two versions.
struct Hyphen<'a> {
    matched: &'a str,
    low: &'a str,
    high: &'a str,
}

/// Masterminds' `\s*(V)\s+-\s+(V)\s*` at `start`, if it matches there.
fn hyphen_at(text: &str, start: usize) -> Option<(Hyphen<'_>, usize)> {
    let b = text.as_bytes();
    let skip = |mut p: usize| {
        while p < b.len() && is_space(b[p]) {
            p += 1;
        }
        p
    };
    let low_start = skip(start);
    let (_, low_end) = scan_version(text, low_start, is_number_char)?;
    let dash = skip(low_end);
    if dash == low_end || b.get(dash) != Some(&b'-') {
        return None;
    }
    let high_start = skip(dash + 1);
    if high_start == dash + 1 {
        return None;
    }
    let (_, high_end) = scan_version(text, high_start, is_number_char)?;
    let end = skip(high_end);
    Some((
        Hyphen {
            matched: &text[start..end],
            low: &text[low_start..low_end],
            high: &text[high_start..high_end],
        },
        end,
    ))
}

/// Rewrites every hyphen range `A - B` into `>= A, <= B ` as Masterminds
/// does: find all (leftmost, non-overlapping) matches in the original text,
/// then replace the first occurrence of each matched text in turn.
fn rewrite_hyphens(text: &str, dialect: Dialect) -> Option<String> {
    let mut found = Vec::new();
    let mut start = 0;
    while start < text.len() {
        match hyphen_at(text, start) {
            Some((hyphen, end)) => {
                found.push(hyphen);
                start = end;
            }
            None => start += 1,
        }
    }
    if found.is_empty() {
        return None;
    }
    let space = match dialect {
        Dialect::Flux => " ",
        Dialect::Masterminds3_2 => "",
    };
    let mut out = text.to_owned();
    for hyphen in found {
        let with = format!(">= {}, <= {}{space}", hyphen.low, hyphen.high);
        out = out.replacen(hyphen.matched, &with, 1);
    }
    Some(out)
}

/// Parses one OR-group: `OP VERSION` items separated by whitespace or a
/// comma. `base` is the group's offset in the text, for error offsets.
fn parse_group(group: &str, base: usize) -> Result<Group, SyntaxError> {
    let b = group.as_bytes();
    let err = |at: usize, message: String| SyntaxError::new(base + at, message);
    let skip = |mut p: usize| {
        while p < b.len() && is_space(b[p]) {
            p += 1;
        }
        p
    };
    let mut comparators = Vec::new();
    let mut p = skip(0);
    loop {
        let op_start = p;
        while p < b.len() && is_op_char(b[p]) {
            p += 1;
        }
        let op_text = &group[op_start..p];
        let op = Op::parse(op_text)
            .ok_or_else(|| err(op_start, format!("unknown operator {op_text:?}")))?;
        p = skip(p);
        let Some((parts, end)) = scan_version(group, p, is_number_char) else {
            let found = group[p..].split(is_space_char).next().unwrap_or("");
            let what = if found.is_empty() {
                "nothing".to_owned()
            } else {
                format!("{found:?}")
            };
            let after = if op_text.is_empty() {
                String::new()
            } else {
                format!(" after {op_text:?}")
            };
            return Err(err(p, format!("expected a version{after}, found {what}")));
        };
        let version_text = &group[p..end];
        let comparator = Comparator::new(op, parts).map_err(|why| {
            err(
                p,
                match why {
                    NotAVersion::TooLarge => {
                        format!("{version_text:?} has a number larger than {}", u64::MAX)
                    }
                    NotAVersion::LeadingZero => format!(
                        "{version_text:?} has a numeric prerelease identifier with a leading zero"
                    ),
                    _ => format!("{version_text:?} is not a version"),
                },
            )
        })?;
        comparators.push(comparator);
        p = end;
        let after_space = skip(p);
        let had_space = after_space > p;
        p = after_space;
        if p == b.len() {
            break;
        }
        if b[p] == b',' {
            p = skip(p + 1);
        } else if !had_space {
            let rest = group[p..].split(is_space_char).next().unwrap_or("");
            return Err(err(
                p,
                format!("unexpected {rest:?} after version {version_text:?}"),
            ));
        }
    }
    let has_prerelease = comparators.iter().any(|c| !c.version.pre.is_empty());
    Ok(Group {
        comparators,
        has_prerelease,
    })
}

fn is_space_char(c: char) -> bool {
    c.is_ascii() && is_space(c as u8)
}

impl Range {
    /// Parses a constraint with Flux's (Masterminds 3.4's) behaviour.
    pub fn parse(text: &str) -> Result<Range, SyntaxError> {
        Self::parse_dialect(text, Dialect::Flux)
    }

    /// Parses a constraint with the behaviour of the given library version.
    pub fn parse_dialect(text: &str, dialect: Dialect) -> Result<Range, SyntaxError> {
        let rewritten = rewrite_hyphens(text, dialect);
        // Offsets point into the user's text only when nothing was rewritten.
        let exact = rewritten.is_none();
        let work = rewritten.as_deref().unwrap_or(text);
        let mut groups = Vec::new();
        let mut base = 0;
        for group in work.split("||") {
            let parsed = parse_group(group, base).map_err(|mut e| {
                if !exact {
                    e.offset = 0;
                }
                if group.trim_matches(is_space_char).is_empty() {
                    e.message = if work.contains("||") {
                        "an empty alternative between `||`".to_owned()
                    } else {
                        "the range is empty (use `*` for any release)".to_owned()
                    };
                }
                e
            })?;
            groups.push(parsed);
            base += group.len() + 2;
        }
        Ok(Range {
            text: text.to_owned(),
            groups,
            dialect,
        })
    }

    /// The range as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Does the version satisfy the range (Masterminds' `Check`)?
    pub fn matches(&self, v: &Version) -> bool {
        self.check(v, false)
    }

    /// Would the version satisfy the range if prereleases were considered
    /// everywhere (Masterminds' `IncludePrerelease`)? Explains "prerelease
    /// not allowed" apart from "outside the range".
    pub fn matches_including_prereleases(&self, v: &Version) -> bool {
        self.check(v, true)
    }

    /// Whether some AND-group names a prerelease.
    pub fn admits_prereleases(&self) -> bool {
        self.groups.iter().any(|g| g.has_prerelease)
    }

    fn check(&self, v: &Version, include_all: bool) -> bool {
        self.groups.iter().any(|group| {
            group.comparators.iter().all(|c| {
                let include_pre = include_all
                    || match self.dialect {
                        Dialect::Flux => group.has_prerelease,
                        Dialect::Masterminds3_2 => !c.version.pre.is_empty(),
                    };
                c.matches(v, include_pre, self.dialect)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        parse_lenient(text).unwrap()
    }

    fn check(range: &str, version: &str) -> bool {
        Range::parse(range)
            .unwrap_or_else(|e| panic!("{range:?}: {e}"))
            .matches(&v(version))
    }

    #[test]
    fn partial_versions_have_masterminds_meaning() {
        let cases = [
            // `>11` is `>=12.0.0`.
            (">11", "11.9.9", false),
            (">11", "12.0.0", true),
            (">11.1", "11.1.9", false),
            (">11.1", "11.2.0", true),
            // `<=2.x` is `<3.0.0`; `<=2.1` is `<2.2.0`.
            ("<=2.x", "2.99.0", true),
            ("<=2.x", "3.0.0", false),
            ("<=2.1", "2.1.99", true),
            ("<=2.1", "2.2.0", false),
            // A bare or `=` partial version is a tilde.
            ("1.2", "1.2.9", true),
            ("1.2", "1.3.0", false),
            ("=1", "1.9.0", true),
            ("1.2.3", "1.2.4", false),
            ("1.2.3", "1.2.3", true),
            // `<` takes the partial version as written: `<1.2` is `<1.2.0`.
            ("<1.2", "1.1.9", true),
            ("<1.2", "1.2.0", false),
            // Wildcards.
            ("*", "0.0.1", true),
            ("x", "9.9.9", true),
            ("1.x", "1.0.0", true),
            ("1.x", "2.0.0", false),
            ("1.2.x", "1.2.7", true),
            ("1.2.x", "1.3.0", false),
            // Anything after a wildcard major is ignored.
            ("x.5.6", "1.0.0", true),
        ];
        for (range, version, expected) in cases {
            assert_eq!(check(range, version), expected, "{range} vs {version}");
        }
    }

    #[test]
    fn tilde_and_caret() {
        let cases = [
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.3.0", false),
            ("~>1.2", "1.2.0", true),
            ("~1", "1.9.9", true),
            ("~1", "2.0.0", false),
            ("~0.0.0", "5.0.0", true),
            ("^1.2.3", "1.9.0", true),
            ("^1.2.3", "2.0.0", false),
            ("^1.2.3", "1.2.2", false),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("^0.0.3", "0.0.3", true),
            ("^0.0.3", "0.0.4", false),
            ("^0.0", "0.0.9", true),
            ("^0.0", "0.1.0", false),
            ("^0", "0.9.0", true),
            ("^0", "1.0.0", false),
            // Masterminds' `^*` falls through to "equal to 0.0.0".
            ("^*", "0.0.0", true),
            ("^*", "1.0.0", false),
        ];
        for (range, version, expected) in cases {
            assert_eq!(check(range, version), expected, "{range} vs {version}");
        }
    }

    #[test]
    fn operators_and_spellings() {
        let cases = [
            ("=>1.0.0", "1.0.0", true),
            ("=<1.0.0", "1.0.0", true),
            ("!=1.2.3", "1.2.3", false),
            ("!=1.2.3", "1.2.4", true),
            ("!=1.x", "1.5.0", false),
            ("!=1.x", "2.0.0", true),
            (">=1.0.0, <2.0.0", "1.5.0", true),
            (">=1.0.0,<2.0.0", "2.0.0", false),
            (">= 1.0.0 < 2.0.0", "1.9.0", true),
            ("<1.0.0 || >=2.0.0", "1.5.0", false),
            ("<1.0.0 || >=2.0.0", "2.5.0", true),
            ("1.0.0 - 2.0.0", "2.0.0", true),
            ("1.0.0 - 2.0.0", "2.0.1", false),
            ("1 - 2", "2.9.9", true),
            ("v1.2.3", "1.2.3", true),
            (">=01.02.03", "1.2.3", true),
        ];
        for (range, version, expected) in cases {
            assert_eq!(check(range, version), expected, "{range} vs {version}");
        }
    }

    #[test]
    fn build_metadata_is_ignored() {
        assert!(check("=1.2.3+abc", "1.2.3+def"));
        assert!(check("1.2.3", "1.2.3+build.5"));
        assert_eq!(compare(&v("1.2.3+a"), &v("1.2.3+b")), Ordering::Equal);
    }

    #[test]
    fn prerelease_rule_is_per_and_group() {
        // Flux (Masterminds 3.4): one prerelease comparator opens the group.
        assert!(check(">=1.0.0-0 <2.0.0", "1.5.0-rc.1"));
        assert!(!check(">=1.0.0 <2.0.0", "1.5.0-rc.1"));
        // ... but not the other alternatives of an `||`.
        assert!(!check("<1.0.0-0 || >3", "4.0.0-rc.1"));
        assert!(check("<1.0.0-0 || >3", "0.9.0-rc.1"));
        // `!=` follows the group rule in 3.4.
        assert!(!check("!=1.2.3", "1.3.0-rc.1"));
    }

    #[test]
    fn masterminds_3_2_differs_exactly_where_documented() {
        let old = |range: &str, version: &str| {
            Range::parse_dialect(range, Dialect::Masterminds3_2)
                .unwrap()
                .matches(&v(version))
        };
        assert!(!old(">=1.0.0-0 <2.0.0", "1.5.0-rc.1"));
        assert!(old("!=1.2.3", "1.3.0-rc.1"));
        assert!(Range::parse_dialect("1 - 2 <3", Dialect::Masterminds3_2).is_err());
        assert!(Range::parse("1 - 2 <3").is_ok());
    }

    #[test]
    fn prerelease_identifiers_compare_like_masterminds() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(
                compare(&v(pair[0]), &v(pair[1])),
                Ordering::Less,
                "{pair:?}"
            );
        }
        // rc9 vs rc10 are text: bytewise, "rc10" < "rc9".
        assert_eq!(compare(&v("1.0.0-rc10"), &v("1.0.0-rc9")), Ordering::Less);
        assert_eq!(
            compare(&v("1.0.0-rc.10"), &v("1.0.0-rc.9")),
            Ordering::Greater
        );
        // A number beyond u64 is text for Masterminds: above any number,
        // bytewise against text.
        let huge = "1.0.0-99999999999999999999";
        assert_eq!(compare(&v(huge), &v("1.0.0-5")), Ordering::Greater);
        assert_eq!(
            compare(&v(huge), &v("1.0.0-100000000000000000000")),
            Ordering::Greater
        );
    }

    #[test]
    fn tags_follow_flux_rules() {
        assert_eq!(parse_tag("1.2"), Err(NotAVersion::TooFewParts(2)));
        assert_eq!(parse_tag("latest"), Err(NotAVersion::TooFewParts(1)));
        assert_eq!(parse_tag("1.2.3.4"), Err(NotAVersion::Syntax));
        assert_eq!(parse_tag("V1.2.3"), Err(NotAVersion::Syntax));
        assert_eq!(parse_tag("1.2.3-rc.01"), Err(NotAVersion::LeadingZero));
        assert_eq!(
            parse_tag("99999999999999999999.0.0"),
            Err(NotAVersion::TooLarge)
        );
        assert_eq!(parse_tag("v1.2.3").unwrap(), Version::new(1, 2, 3));
        assert_eq!(parse_tag("01.002.03").unwrap(), Version::new(1, 2, 3));
        // The dots of a prerelease count towards the three parts.
        let odd = parse_tag("1-rc.1.2").unwrap();
        assert_eq!((odd.major, odd.minor, odd.pre.as_str()), (1, 0, "rc.1.2"));
        assert_eq!(parse_tag("1.2-rc.1").unwrap().to_string(), "1.2.0-rc.1");
    }

    #[test]
    fn invalid_ranges_say_where() {
        let cases = [
            ("", 0, "empty"),
            (
                ">=1.0.0 <2.x.y",
                12,
                "unexpected \".y\" after version \"2.x\"",
            ),
            (">=1.0.0 ==2", 8, "unknown operator \"==\""),
            (
                ">= abc",
                3,
                "expected a version after \">=\", found \"abc\"",
            ),
            (">=1.0.0 || ", 11, "empty alternative"),
            ("1.2.3-01", 0, "leading zero"),
            ("99999999999999999999", 0, "larger than"),
            ("1x.2", 0, "\"1x.2\" is not a version"),
            ("1 | 2", 2, "\"|\" is not a version"),
        ];
        for (range, offset, needle) in cases {
            let err = Range::parse(range).unwrap_err();
            assert!(err.message.contains(needle), "{range:?}: {}", err.message);
            assert_eq!(err.offset, offset, "{range:?}: {}", err.message);
        }
    }

    /// Regression: the rewrite replaces the first occurrence of each matched
    /// text in the evolving string, not the match's own position, so
    /// overlapping-looking hyphen chains produce Masterminds' odd result.
    #[test]
    fn chained_hyphens_rewrite_like_masterminds() {
        assert_eq!(
            rewrite_hyphens("1 - 1 - 1 - 1", Dialect::Masterminds3_2).unwrap(),
            ">= 1, <= 1->= 1, <= 1"
        );
        assert!(Range::parse("1 - 1 - 1 - 1").is_err());
    }
}
