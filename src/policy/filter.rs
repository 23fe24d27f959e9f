//! `filterTags` (pattern and extract) and `exclusionList`.
//!
//! Patterns are unanchored regexes, as in Flux (Go's RE2 syntax and the
//! `regex` crate's agree on everything OCI tags can contain; tags are ASCII,
//! so the crate's Unicode-aware `\d`, `\w`, `\s` match what Go's ASCII ones do).
//!
//! `extract` is a template with Go's `Regexp.Expand` rules, which
//! `regex::Captures::expand` shares: `$name`, `${name}`, `$1`, `$$` for a
//! literal `$`; a name is the longest run of letters, digits and `_` (`$1x`
//! is the group named `1x`); a `$` not followed by a valid name is literal.
//! It is parsed once here (so the hot path expands from capture positions
//! without allocating a `Captures` per tag) and differs from
//! `Captures::expand` in one Go detail the latter does not share: a number
//! with a leading zero (`$01`) is a name, not an index.
//!
//! One deliberate difference from Flux: a reference to a group the pattern
//! does not have (`$ts` without `(?P<ts>...)`, `$3` with two groups) is an
//! error when the policy is loaded. Flux expands it to nothing, so every tag
//! extracts the same empty value and the policy silently picks nothing or
//! anything.

use regex::{CaptureLocations, Regex, RegexSet};

use super::semver::SyntaxError;

/// Compiles an unanchored pattern; errors carry the offset of the
/// offending part of the pattern when the regex parser knows it.
pub(crate) fn compile(pattern: &str) -> Result<Regex, SyntaxError> {
    Regex::new(pattern).map_err(|error| {
        match regex_syntax::Parser::new().parse(pattern) {
            Err(regex_syntax::Error::Parse(e)) => {
                SyntaxError::new(e.span().start.offset, e.kind().to_string())
            }
            Err(regex_syntax::Error::Translate(e)) => {
                SyntaxError::new(e.span().start.offset, e.kind().to_string())
            }
            // The syntax is fine (the compiled regex is too big, say), or a
            // future error kind: the regex crate's message, on one line.
            _ => SyntaxError::new(
                0,
                error
                    .to_string()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        }
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
}

/// A parsed `extract` template.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    text: String,
    pieces: Vec<Piece>,
}

/// Go's `extract`: a name after `$` (or inside `${}`), and what follows.
/// `None` when there is no valid name: the `$` is then literal.
fn name_after_dollar(rest: &str) -> Option<(&str, &str)> {
    let (braced, body) = match rest.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, rest),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if braced {
        body[end..].strip_prefix('}').map(|after| (name, after))
    } else {
        Some((name, &body[end..]))
    }
}

/// A group index as Go reads one: digits only, no leading zero, below 1e8.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit())
        || name.len() > 8
        || (name.len() > 1 && name.starts_with('0'))
    {
        return None;
    }
    name.parse().ok()
}

impl Template {
    pub(crate) fn parse(text: &str, regex: &Regex) -> Result<Template, SyntaxError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            literal.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            if let Some(after) = after.strip_prefix('$') {
                literal.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = name_after_dollar(after) else {
                literal.push('$');
                rest = after;
                continue;
            };
            let offset = text.len() - rest.len() + dollar;
            let index = match group_number(name) {
                Some(i) if i < regex.captures_len() => i,
                Some(i) => {
                    return Err(SyntaxError::new(
                        offset,
                        format!(
                            "extract refers to group {i} but the pattern has {} group{}",
                            regex.captures_len() - 1,
                            if regex.captures_len() == 2 { "" } else { "s" }
                        ),
                    ));
                }
                None => regex
                    .capture_names()
                    .position(|n| n == Some(name))
                    .ok_or_else(|| {
                        SyntaxError::new(
                            offset,
                            format!(
                                "extract refers to ${{{name}}} but the pattern has no group named {name:?}"
                            ),
                        )
                    })?,
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Group(index));
            rest = after;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template {
            text: text.to_owned(),
            pieces,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Writes the expansion for `haystack` matched with `locations` into `out`.
    fn expand(&self, haystack: &str, locations: &CaptureLocations, out: &mut String) {
        out.clear();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Group(i) => {
                    if let Some((start, end)) = locations.get(*i) {
                        out.push_str(&haystack[start..end]);
                    }
                }
            }
        }
    }
}

/// `filterTags`: tags must match `pattern`; with `extract`, the policy orders
/// the expanded value instead of the tag (the tag is still what is written).
#[derive(Clone, Debug)]
pub struct TagFilter {
    pattern: Regex,
    extract: Option<Template>,
}

impl PartialEq for TagFilter {
    fn eq(&self, other: &Self) -> bool {
        self.pattern() == other.pattern() && self.extract() == other.extract()
    }
}

/// Per-call buffers of the hot path, so no tag allocates.
pub(crate) struct Scratch {
    locations: Option<CaptureLocations>,
    value: String,
}

impl Scratch {
    pub(crate) fn new(filter: Option<&TagFilter>) -> Scratch {
        Scratch {
            locations: filter.map(|f| f.pattern.capture_locations()),
            value: String::new(),
        }
    }
}

impl TagFilter {
    /// A filter without extraction.
    pub fn new(pattern: &str) -> Result<TagFilter, SyntaxError> {
        Ok(TagFilter {
            pattern: compile(pattern)?,
            extract: None,
        })
    }

    /// Adds an `extract` template; an empty one means none (as in Flux).
    pub fn with_extract(mut self, template: &str) -> Result<TagFilter, SyntaxError> {
        self.extract = if template.is_empty() {
            None
        } else {
            Some(Template::parse(template, &self.pattern)?)
        };
        Ok(self)
    }

    pub fn pattern(&self) -> &str {
        self.pattern.as_str()
    }

    pub fn extract(&self) -> Option<&str> {
        self.extract.as_ref().map(Template::as_str)
    }

    /// Does `tag` match the pattern?
    pub(crate) fn matches(&self, tag: &str) -> bool {
        self.pattern.is_match(tag)
    }

    /// The value the policy orders `tag` by, or `None` when the tag does not
    /// match the pattern. Borrows `tag` without extract, `scratch` with it.
    pub(crate) fn apply<'a>(&self, tag: &'a str, scratch: &'a mut Scratch) -> Option<&'a str> {
        match &self.extract {
            None => self.pattern.is_match(tag).then_some(tag),
            Some(template) => {
                let locations = scratch
                    .locations
                    .get_or_insert_with(|| self.pattern.capture_locations());
                self.pattern.captures_read(locations, tag)?;
                template.expand(tag, locations, &mut scratch.value);
                Some(scratch.value.as_str())
            }
        }
    }

    /// [`TagFilter::apply`] with an owned result, off the hot path.
    pub fn value_of(&self, tag: &str) -> Option<String> {
        let mut scratch = Scratch::new(Some(self));
        self.apply(tag, &mut scratch).map(str::to_owned)
    }
}

/// How one exclusion pattern is tested.
#[derive(Clone, Debug)]
enum Test {
    /// `^.*LITERAL$` (the shape of the defaults): exactly "ends with
    /// LITERAL, and no newline before it" (none at all with `(?s)`), tested
    /// without the regex engine. Exclusions run on every tag of every scan.
    Suffix { literal: String, dotall: bool },
    /// Anything else; tested through `Exclusions::set`.
    Regex,
}

impl Test {
    /// Recognises `^.*LITERAL$` from the parsed pattern.
    fn of(pattern: &str) -> Test {
        use regex_syntax::hir::{Dot, Hir, HirKind, Look};
        let Ok(hir) = regex_syntax::Parser::new().parse(pattern) else {
            return Test::Regex;
        };
        let HirKind::Concat(parts) = hir.kind() else {
            return Test::Regex;
        };
        let [start, any, literal, end] = parts.as_slice() else {
            return Test::Regex;
        };
        let (HirKind::Look(Look::Start), HirKind::Look(Look::End)) = (start.kind(), end.kind())
        else {
            return Test::Regex;
        };
        let (HirKind::Repetition(repeat), HirKind::Literal(literal)) = (any.kind(), literal.kind())
        else {
            return Test::Regex;
        };
        if repeat.min != 0 || repeat.max.is_some() {
            return Test::Regex;
        }
        let dotall = if *repeat.sub == Hir::dot(Dot::AnyChar) {
            true
        } else if *repeat.sub == Hir::dot(Dot::AnyCharExceptLF) {
            false
        } else {
            return Test::Regex;
        };
        match String::from_utf8(literal.0.to_vec()) {
            Ok(literal) => Test::Suffix { literal, dotall },
            Err(_) => Test::Regex,
        }
    }

    fn suffix_matches(literal: &str, dotall: bool, tag: &str) -> bool {
        // Most tags end in a digit, not in the literal's last byte: that
        // one comparison rejects them without a call to memcmp.
        if literal.as_bytes().last() != tag.as_bytes().last() && !literal.is_empty() {
            return false;
        }
        tag.strip_suffix(literal)
            .is_some_and(|head| dotall || !head.contains('\n'))
    }
}

/// `exclusionList`: tags matching any pattern are never considered.
#[derive(Clone, Debug)]
pub struct Exclusions {
    patterns: Vec<(String, Test)>,
    /// The patterns that are not suffix tests, in order, all at once.
    set: Option<RegexSet>,
    /// For each member of `set`, its index in `patterns`.
    in_set: Vec<usize>,
}

impl PartialEq for Exclusions {
    fn eq(&self, other: &Self) -> bool {
        self.patterns().eq(other.patterns())
    }
}

impl Default for Exclusions {
    fn default() -> Self {
        Exclusions::new(Exclusions::DEFAULT).expect("the default exclusion patterns compile")
    }
}

impl Exclusions {
    /// Signatures, attestations and SBOMs that tools push as tags.
    pub const DEFAULT: &'static [&'static str] = &[r"^.*\.sig$", r"^.*\.att$", r"^.*\.sbom$"];

    /// Compiles a list (which replaces the default). The error names the
    /// index of the pattern that does not compile.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Exclusions, (usize, SyntaxError)> {
        let mut list = Vec::with_capacity(patterns.len());
        let mut regexes = Vec::new();
        let mut in_set = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            let test = Test::of(pattern);
            if let Test::Regex = test {
                regexes.push(compile(pattern).map_err(|e| (i, e))?);
                in_set.push(i);
            }
            list.push((pattern.to_owned(), test));
        }
        let set = if regexes.is_empty() {
            None
        } else {
            Some(
                RegexSet::new(regexes.iter().map(Regex::as_str)).map_err(|e| {
                    (
                        in_set[0],
                        SyntaxError::new(0, e.to_string().lines().collect::<Vec<_>>().join(" ")),
                    )
                })?,
            )
        };
        Ok(Exclusions {
            patterns: list,
            set,
            in_set,
        })
    }

    /// No exclusions at all (`exclusionList: []`).
    pub fn none() -> Exclusions {
        Exclusions::new::<&str>(&[]).expect("an empty list compiles")
    }

    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|(p, _)| p.as_str())
    }

    pub(crate) fn is_excluded(&self, tag: &str) -> bool {
        self.patterns.iter().any(|(_, test)| match test {
            Test::Suffix { literal, dotall } => Test::suffix_matches(literal, *dotall, tag),
            Test::Regex => false,
        }) || self.set.as_ref().is_some_and(|set| set.is_match(tag))
    }

    /// The first pattern that excludes `tag`.
    pub fn matching(&self, tag: &str) -> Option<&str> {
        if !self.is_excluded(tag) {
            return None;
        }
        let in_set: Vec<usize> = match &self.set {
            Some(set) => set.matches(tag).iter().map(|m| self.in_set[m]).collect(),
            None => Vec::new(),
        };
        self.patterns
            .iter()
            .enumerate()
            .find(|(i, (_, test))| match test {
                Test::Suffix { literal, dotall } => Test::suffix_matches(literal, *dotall, tag),
                Test::Regex => in_set.contains(i),
            })
            .map(|(_, (pattern, _))| pattern.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(pattern: &str, template: &str, tag: &str) -> Option<String> {
        TagFilter::new(pattern)
            .unwrap()
            .with_extract(template)
            .unwrap()
            .value_of(tag)
    }

    #[test]
    fn templates_expand_like_go() {
        let p = r"^(?P<branch>[a-z]+)-(?P<sha>[a-f0-9]+)-(?P<ts>[0-9]+)$";
        let tag = "main-abc123-1700000000";
        let cases = [
            ("$ts", "1700000000"),
            ("${ts}", "1700000000"),
            ("$3", "1700000000"),
            ("${branch}.$ts", "main.1700000000"),
            ("$$ts", "$ts"),
            ("v$", "v$"),
            ("a${ts", "a${ts"),
            ("${}x", "${}x"),
            ("$-", "$-"),
            ("plain", "plain"),
        ];
        for (template, expected) in cases {
            assert_eq!(
                extract(p, template, tag).as_deref(),
                Some(expected),
                "{template}"
            );
        }
    }

    #[test]
    fn templates_agree_with_captures_expand() {
        let regex = Regex::new(r"^(?P<a>\w)(?P<b_1>\d+)?(x)?").unwrap();
        let templates = [
            "$a", "${a}b", "$a$b_1", "$1$2$3", "$$1", "${b_1}z", "z$", "$b_1x",
        ];
        for hay in ["q42x", "q", "z9"] {
            let caps = regex.captures(hay).unwrap();
            for template in templates {
                let mut expected = String::new();
                caps.expand(template, &mut expected);
                let parsed = Template::parse(template, &regex);
                let ours = parsed.map(|t| {
                    let mut locations = regex.capture_locations();
                    regex.captures_read(&mut locations, hay);
                    let mut out = String::new();
                    t.expand(hay, &locations, &mut out);
                    out
                });
                match ours {
                    Ok(out) => assert_eq!(out, expected, "{template} on {hay}"),
                    // Only unknown names are refused, and they expand to "".
                    Err(e) => assert!(e.message.contains("b_1x"), "{template}: {e}"),
                }
            }
        }
    }

    #[test]
    fn unknown_groups_are_refused_at_load() {
        let filter = TagFilter::new("^main-([0-9]+)$").unwrap();
        let err = filter.clone().with_extract("$ts").unwrap_err();
        assert!(err.message.contains("no group named \"ts\""), "{err}");
        let err = filter.clone().with_extract("x$2").unwrap_err();
        assert_eq!(err.offset, 1);
        assert!(err.message.contains("has 1 group"), "{err}");
        // Go reads `$01` as a name, not as group 1.
        assert!(filter.clone().with_extract("$01").is_err());
        assert!(filter.with_extract("").unwrap().extract().is_none());
    }

    #[test]
    fn bad_patterns_say_where() {
        let err = compile("^main-(").unwrap_err();
        assert_eq!(err.offset, 6);
        assert!(err.message.contains("unclosed group"), "{}", err.message);
        let err = compile(r"a\q").unwrap_err();
        assert_eq!(err.offset, 1);
    }

    #[test]
    fn default_exclusions_skip_signatures() {
        let exclusions = Exclusions::default();
        assert_eq!(exclusions.matching("sha256-abc.sig"), Some(r"^.*\.sig$"));
        assert_eq!(exclusions.matching("sha256-abc.sbom"), Some(r"^.*\.sbom$"));
        assert_eq!(exclusions.matching("1.2.3"), None);
        assert_eq!(Exclusions::none().matching("x.sig"), None);
        let (index, _) = Exclusions::new(&["ok", "("]).unwrap_err();
        assert_eq!(index, 1);
        let mixed = Exclusions::new(&["^latest$", r"^.*\.sig$", "rc"]).unwrap();
        assert_eq!(mixed.matching("1.0.0-rc.1"), Some("rc"));
        assert_eq!(mixed.matching("latest"), Some("^latest$"));
        assert_eq!(mixed.matching("rc.sig"), Some(r"^.*\.sig$"));
    }

    /// The suffix shortcut must answer exactly what the regex answers.
    #[test]
    fn suffix_shortcut_agrees_with_the_regex() {
        let patterns = [
            r"^.*\.sig$",
            r"(?s)^.*\.att$",
            r"^.*?-dirty$",
            r"^.*$",
            r"^.*ab$",
            r"^.+\.sig$",
            r"^.*\.sig",
            r"^.*[.]sbom$",
            r"(?i)^.*\.SIG$",
        ];
        let tags = [
            "x.sig",
            ".sig",
            "sig",
            "a\nb.sig",
            "x.att",
            "a\n.att",
            "1.0-dirty",
            "",
            "ab",
            "xab",
            "a.sig.bak",
            "x.sbom",
            "X.SIG",
            "x.Sig",
            "é.sig",
        ];
        for pattern in patterns {
            let regex = Regex::new(pattern).unwrap();
            let exclusions = Exclusions::new(&[pattern]).unwrap();
            for tag in tags {
                assert_eq!(
                    exclusions.matching(tag).is_some(),
                    regex.is_match(tag),
                    "{pattern} on {tag:?}"
                );
            }
        }
        assert!(
            matches!(Test::of(r"^.*\.sig$"), Test::Suffix { ref literal, dotall: false } if literal == ".sig")
        );
        assert!(matches!(Test::of(r"^.+\.sig$"), Test::Regex));
    }
}
