//! Picking a tag, explaining the pick, and the downgrade guard.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;

use super::filter::{Exclusions, Scratch, TagFilter};
use super::semver::{self, NotAVersion, Range};

/// Which way an alphabetical or numerical policy picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Order {
    /// The greatest value (Flux's default).
    #[default]
    Asc,
    /// The least value.
    Desc,
}

impl Order {
    /// `asc` or `desc`, as policy files and Flux spell them.
    pub fn parse(word: &str) -> Option<Order> {
        match word {
            "asc" => Some(Order::Asc),
            "desc" => Some(Order::Desc),
            _ => None,
        }
    }

    fn apply(self, ordering: Ordering) -> Ordering {
        match self {
            Order::Asc => ordering,
            Order::Desc => ordering.reverse(),
        }
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        })
    }
}

/// How a policy orders the tags it considers.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// The highest version that satisfies a Masterminds/semver range.
    Semver(Range),
    /// Byte-wise string order.
    Alphabetical(Order),
    /// As 64-bit floats (as Flux's `strconv.ParseFloat`).
    Numerical(Order),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Semver(range) => write!(f, "semver {:?}", range.as_str()),
            Rule::Alphabetical(order) => write!(f, "alphabetical {order}"),
            Rule::Numerical(order) => write!(f, "numerical {order}"),
        }
    }
}

/// A tag's value as a number, if it is one: finite values Rust's float
/// parser accepts. (Flux's Go parser also takes hex floats and `NaN`, which
/// it then always picks; no tag means either.)
fn number(value: &str) -> Option<f64> {
    value.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// The verdict on one tag (the `verdict` of a [`Candidate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The pick.
    Selected,
    /// Matched an `exclusionList` pattern.
    Excluded,
    /// Did not match `filterTags.pattern`.
    FilteredOut,
    /// Semver policy: not a version under Flux's rules.
    NotAVersion,
    /// Semver policy: a version the range does not admit.
    OutsideRange,
    /// Semver policy: a prerelease the range would admit if its AND-group
    /// named a prerelease.
    PrereleaseNotAllowed,
    /// Numerical policy: not a number (skipped; Flux fails the whole policy).
    NotNumeric,
    /// Eligible, but ranks below the pick in the policy's order.
    LowerThanPick,
    /// Eligible and ranks equal to the pick, which is listed earlier.
    TiedWithPick,
    /// Eligible, but `verify` found no signature for its digest (set by
    /// the signature check after selection, never by the selector).
    Unsigned,
    /// Eligible, but no signature for its digest verified.
    BadSignature,
    /// The pick, but it ranks below the tag the files hold and
    /// `allowDowngrade` is off: the guard holds it (set by `explain`).
    LowerThanCurrent,
    /// The pick, written once the policy's `window` opens (set by `explain`).
    OutsideWindow,
}

impl Verdict {
    /// All verdicts, in the order summaries list them.
    pub const ALL: [Verdict; 13] = [
        Verdict::Selected,
        Verdict::OutsideWindow,
        Verdict::LowerThanCurrent,
        Verdict::Unsigned,
        Verdict::BadSignature,
        Verdict::LowerThanPick,
        Verdict::TiedWithPick,
        Verdict::OutsideRange,
        Verdict::PrereleaseNotAllowed,
        Verdict::NotAVersion,
        Verdict::NotNumeric,
        Verdict::FilteredOut,
        Verdict::Excluded,
    ];

    /// The JSON spelling (`lower_than_pick`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Selected => "selected",
            Verdict::Excluded => "excluded",
            Verdict::FilteredOut => "filtered_out",
            Verdict::NotAVersion => "not_a_version",
            Verdict::OutsideRange => "outside_range",
            Verdict::PrereleaseNotAllowed => "prerelease_not_allowed",
            Verdict::NotNumeric => "not_numeric",
            Verdict::LowerThanPick => "lower_than_pick",
            Verdict::TiedWithPick => "tied_with_pick",
            Verdict::Unsigned => "unsigned",
            Verdict::BadSignature => "bad_signature",
            Verdict::LowerThanCurrent => "lower_than_current",
            Verdict::OutsideWindow => "outside_window",
        }
    }

    /// Words for people (`lower than the pick`).
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Selected => "selected",
            Verdict::Excluded => "excluded",
            Verdict::FilteredOut => "filtered out",
            Verdict::NotAVersion => "not a version",
            Verdict::OutsideRange => "outside the range",
            Verdict::PrereleaseNotAllowed => "prerelease not allowed",
            Verdict::NotNumeric => "not numeric",
            Verdict::LowerThanPick => "lower than the pick",
            Verdict::TiedWithPick => "tied with the pick",
            Verdict::Unsigned => "unsigned",
            Verdict::BadSignature => "bad signature",
            Verdict::LowerThanCurrent => "lower than current",
            Verdict::OutsideWindow => "outside window",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// One tag and what the policy made of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    /// The tag as listed (what would be written).
    pub tag: String,
    /// The value the policy ordered, when `filterTags.extract` made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub verdict: Verdict,
    /// One sentence: why.
    pub detail: String,
}

/// Every tag with its verdict, and the pick.
///
/// Serialized (`crowsnest tags --json`) as
///
/// ```json
/// {
///   "selected": "6.2.0",
///   "candidates": [
///     {"tag": "6.2.0", "verdict": "selected", "detail": "the highest version in >=6.0.0 <7.0.0"},
///     {"tag": "6.3.0-rc.1", "verdict": "prerelease_not_allowed", "detail": "..."},
///     {"tag": "main-a1b2-17", "value": "17", "verdict": "lower_than_pick", "detail": "..."}
///   ]
/// }
/// ```
///
/// `selected` is the picked tag or `null`. `candidates` lists every tag in
/// the order given (the registry's listing order), each with `tag`, `value`
/// (only when `filterTags.extract` produced the value that was ordered),
/// `verdict` and a one-sentence `detail`. Verdicts: `selected`, `excluded`
/// (matched an `exclusionList` pattern), `filtered_out` (did not match
/// `filterTags.pattern`), `not_a_version` (semver: fewer than three
/// dot-separated parts or not a version), `outside_range`,
/// `prerelease_not_allowed` (a prerelease the range would admit if the
/// AND-group it satisfies named a prerelease, e.g. `>=1.0.0-0`),
/// `not_numeric` (numerical: skipped), `lower_than_pick` (eligible but
/// ranks below the pick in the policy's order), `tied_with_pick` (ranks
/// equal to the pick, which is listed first; ties go to the first listed).
/// `crowsnest explain` may also set `unsigned` and `bad_signature` (the
/// signature check), `lower_than_current` (the downgrade guard holds the
/// pick) and `outside_window` (the pick waits for the policy's window).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub selected: Option<String>,
    pub candidates: Vec<Candidate>,
}

impl Decision {
    /// Index of the pick in the tags (and in `candidates`).
    pub fn selected_index(&self) -> Option<usize> {
        self.candidates
            .iter()
            .position(|c| c.verdict == Verdict::Selected)
    }

    /// How many tags got `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.candidates
            .iter()
            .filter(|c| c.verdict == verdict)
            .count()
    }
}

/// The result of [`Selector::pick`]: the index of the pick and how many
/// tags a numerical policy skipped as not numeric (for a warning and a metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pick {
    pub index: Option<usize>,
    pub not_numeric: usize,
}

/// The part of a policy that chooses among tags.
#[derive(Clone, Copy, Debug)]
pub struct Selector<'p> {
    pub rule: &'p Rule,
    pub filter: Option<&'p TagFilter>,
    pub exclusions: &'p Exclusions,
}

/// What a tag is, before the pick is known.
enum Status<'a> {
    Excluded(&'a str),
    FilteredOut,
    NotAVersion(NotAVersion),
    OutsideRange(::semver::Version),
    PrereleaseNotAllowed(::semver::Version),
    NotNumeric,
    Eligible(Key<'a>),
}

impl Status<'_> {
    fn verdict(&self) -> Verdict {
        match self {
            Status::Excluded(_) => Verdict::Excluded,
            Status::FilteredOut => Verdict::FilteredOut,
            Status::NotAVersion(_) => Verdict::NotAVersion,
            Status::OutsideRange(_) => Verdict::OutsideRange,
            Status::PrereleaseNotAllowed(_) => Verdict::PrereleaseNotAllowed,
            Status::NotNumeric => Verdict::NotNumeric,
            // Decided against the pick.
            Status::Eligible(_) => Verdict::LowerThanPick,
        }
    }
}

/// What the policy ranks by.
enum Key<'a> {
    Version(::semver::Version),
    Text(Cow<'a, str>),
    Number(f64),
}

/// One tag's status and, with `extract`, the value it ranked by.
struct Classified<'a> {
    status: Status<'a>,
    value: Option<Cow<'a, str>>,
}

impl Classified<'_> {
    /// What an eligible tag ranks by.
    fn key(&self) -> Option<&Key<'_>> {
        match &self.status {
            Status::Eligible(key) => Some(key),
            _ => None,
        }
    }
}

/// Every tag classified, and the pick.
struct Classification<'a> {
    tags: Vec<Classified<'a>>,
    selected: Option<usize>,
}

impl Classification<'_> {
    fn verdict(&self, i: usize, rank: impl Fn(&Key<'_>, &Key<'_>) -> Ordering) -> Verdict {
        if Some(i) == self.selected {
            return Verdict::Selected;
        }
        match (&self.tags[i].status, self.selected) {
            (Status::Eligible(key), Some(s)) => match &self.tags[s].status {
                Status::Eligible(pick) if rank(key, pick) == Ordering::Equal => {
                    Verdict::TiedWithPick
                }
                _ => Verdict::LowerThanPick,
            },
            (status, _) => status.verdict(),
        }
    }
}

/// Counts per verdict and the rejected tags that rank above the pick: what
/// `crowsnest tags` prints without `--all`, at a fraction of [`Decision`]'s cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Index of the pick.
    pub selected: Option<usize>,
    /// The pick as a candidate (with its detail).
    pub pick: Option<Candidate>,
    /// How many tags got each verdict, in [`Verdict::ALL`] order.
    pub counts: Vec<(Verdict, usize)>,
    /// Up to the requested number of tags that rank above the pick but lost,
    /// in listing order, with details.
    pub above: Vec<Candidate>,
    /// How many tags rank above the pick but lost, in all.
    pub above_total: usize,
}

impl<'p> Selector<'p> {
    /// The value the policy orders `tag` by, or `None` when it is excluded
    /// or filtered out.
    fn admit<'a>(&self, tag: &'a str, scratch: &'a mut Scratch) -> Option<&'a str> {
        if self.exclusions.is_excluded(tag) {
            return None;
        }
        match self.filter {
            None => Some(tag),
            Some(filter) => filter.apply(tag, scratch),
        }
    }

    /// Index of the tag the policy picks. Ties go to the first listed.
    pub fn select<S: AsRef<str>>(&self, tags: &[S]) -> Option<usize> {
        self.pick(tags).index
    }

    /// [`Selector::select`] plus the count of tags skipped as not numeric.
    pub fn pick<S: AsRef<str>>(&self, tags: &[S]) -> Pick {
        let mut scratch = Scratch::new(self.filter);
        let mut pick = Pick::default();
        match self.rule {
            Rule::Semver(range) => {
                let mut best: Option<::semver::Version> = None;
                for (i, tag) in tags.iter().enumerate() {
                    let Some(value) = self.admit(tag.as_ref(), &mut scratch) else {
                        continue;
                    };
                    let Ok(version) = semver::parse_tag(value) else {
                        continue;
                    };
                    if range.matches(&version)
                        && best
                            .as_ref()
                            .is_none_or(|b| semver::compare(&version, b) == Ordering::Greater)
                    {
                        best = Some(version);
                        pick.index = Some(i);
                    }
                }
            }
            Rule::Alphabetical(order) => {
                let mut best = String::new();
                for (i, tag) in tags.iter().enumerate() {
                    let Some(value) = self.admit(tag.as_ref(), &mut scratch) else {
                        continue;
                    };
                    if pick.index.is_none()
                        || order.apply(value.as_bytes().cmp(best.as_bytes())) == Ordering::Greater
                    {
                        best.clear();
                        best.push_str(value);
                        pick.index = Some(i);
                    }
                }
            }
            Rule::Numerical(order) => {
                let mut best = 0.0;
                for (i, tag) in tags.iter().enumerate() {
                    let Some(value) = self.admit(tag.as_ref(), &mut scratch) else {
                        continue;
                    };
                    let Some(n) = number(value) else {
                        pick.not_numeric += 1;
                        continue;
                    };
                    if pick.index.is_none()
                        || order.apply(n.partial_cmp(&best).unwrap_or(Ordering::Equal))
                            == Ordering::Greater
                    {
                        best = n;
                        pick.index = Some(i);
                    }
                }
            }
        }
        pick
    }

    /// `a` against `b` in the policy's preference: `Greater` ranks higher.
    fn rank(&self, a: &Key<'_>, b: &Key<'_>) -> Ordering {
        match (self.rule, a, b) {
            (Rule::Semver(_), Key::Version(a), Key::Version(b)) => semver::compare(a, b),
            (Rule::Alphabetical(order), Key::Text(a), Key::Text(b)) => {
                order.apply(a.as_bytes().cmp(b.as_bytes()))
            }
            (Rule::Numerical(order), Key::Number(a), Key::Number(b)) => {
                order.apply(a.partial_cmp(b).unwrap_or(Ordering::Equal))
            }
            // Keys always come from the same rule.
            _ => Ordering::Equal,
        }
    }

    /// The status of one value (the tag, or what `extract` made of it).
    fn status_of<'a>(&self, value: Cow<'a, str>) -> Status<'a> {
        match self.rule {
            Rule::Semver(range) => match semver::parse_tag(&value) {
                Err(why) => Status::NotAVersion(why),
                Ok(v) if range.matches(&v) => Status::Eligible(Key::Version(v)),
                Ok(v) if !v.pre.is_empty() && range.matches_including_prereleases(&v) => {
                    Status::PrereleaseNotAllowed(v)
                }
                Ok(v) => Status::OutsideRange(v),
            },
            Rule::Alphabetical(_) => Status::Eligible(Key::Text(value)),
            Rule::Numerical(_) => match number(&value) {
                Some(n) => Status::Eligible(Key::Number(n)),
                None => Status::NotNumeric,
            },
        }
    }

    /// One tag's status, and with `extract` the value it ranks by.
    fn classify_one<'a>(
        &self,
        tag: &'a str,
        extracts: bool,
        scratch: &mut Scratch,
    ) -> Classified<'a>
    where
        'p: 'a,
    {
        let value: Option<Cow<'a, str>> = match self.filter {
            None => Some(Cow::Borrowed(tag)),
            Some(filter) if !extracts => filter.matches(tag).then_some(Cow::Borrowed(tag)),
            Some(filter) => filter.apply(tag, scratch).map(|v| Cow::Owned(v.to_owned())),
        };
        let status = if let Some(pattern) = self.exclusions.matching(tag) {
            Status::Excluded(pattern)
        } else {
            match &value {
                None => Status::FilteredOut,
                Some(v) => self.status_of(v.clone()),
            }
        };
        Classified {
            status,
            value: if extracts { value } else { None },
        }
    }

    /// Every tag's status without building any sentence, and the pick
    /// (the same one [`Selector::select`] makes).
    fn classify<'a, S: AsRef<str>>(&self, tags: &'a [S]) -> Classification<'a>
    where
        'p: 'a,
    {
        let extracts = self.filter.is_some_and(|f| f.extract().is_some());
        let mut scratch = Scratch::new(self.filter);
        let mut classified: Vec<Classified<'a>> = Vec::with_capacity(tags.len());
        let mut selected: Option<usize> = None;
        for (i, tag) in tags.iter().enumerate() {
            let entry = self.classify_one(tag.as_ref(), extracts, &mut scratch);
            if let Status::Eligible(key) = &entry.status {
                let better = match selected.map(|s| &classified[s]) {
                    Some(Classified {
                        status: Status::Eligible(best),
                        ..
                    }) => self.rank(key, best) == Ordering::Greater,
                    _ => true,
                };
                if better {
                    selected = Some(i);
                }
            }
            classified.push(entry);
        }
        Classification {
            tags: classified,
            selected,
        }
    }

    /// The candidate for tag `i` of a classification: verdict and detail.
    fn candidate<S: AsRef<str>>(&self, tags: &[S], c: &Classification<'_>, i: usize) -> Candidate {
        let verdict = c.verdict(i, |a, b| self.rank(a, b));
        let pick = c.selected.map(|s| {
            c.tags[s]
                .value
                .as_deref()
                .unwrap_or_else(|| tags[s].as_ref())
        });
        self.candidate_of(tags[i].as_ref(), &c.tags[i], verdict, pick)
    }

    /// The candidate for `tag`, classified as `entry`, given its verdict
    /// and the value of the pick.
    fn candidate_of(
        &self,
        tag: &str,
        entry: &Classified<'_>,
        verdict: Verdict,
        pick: Option<&str>,
    ) -> Candidate {
        let value = entry.value.as_deref().unwrap_or(tag);
        let range = match self.rule {
            Rule::Semver(range) => range.as_str(),
            _ => "",
        };
        let detail = match (&entry.status, verdict) {
            (_, Verdict::Selected) => self.selected_detail(),
            (Status::Excluded(pattern), _) => format!("matches exclusion pattern {pattern}"),
            (Status::FilteredOut, _) => format!(
                "does not match filterTags.pattern {}",
                self.filter.map_or("", TagFilter::pattern)
            ),
            (Status::NotAVersion(why), _) => format!("{value} {why}"),
            (Status::OutsideRange(_), _) => format!("{value} does not satisfy {range}"),
            (Status::PrereleaseNotAllowed(_), _) => format!(
                "{value} is a prerelease and the part of {range} it satisfies names no prerelease (a bound like -0 admits them)"
            ),
            (Status::NotNumeric, _) => {
                format!("{value:?} is not a number; skipped (Flux would fail the policy)")
            }
            (Status::Eligible(_), Verdict::TiedWithPick) => format!(
                "{value} ranks equal to the pick {}, which is listed first",
                pick.unwrap_or_default()
            ),
            (Status::Eligible(_), _) => self.lower_detail(value, pick.unwrap_or_default()),
        };
        Candidate {
            tag: tag.to_owned(),
            value: entry.value.as_ref().map(|v| v.to_string()),
            verdict,
            detail,
        }
    }

    /// Every tag with its verdict. Picks exactly what [`Selector::select`] picks.
    pub fn explain<S: AsRef<str>>(&self, tags: &[S]) -> Decision {
        let c = self.classify(tags);
        let candidates = (0..tags.len())
            .map(|i| self.candidate(tags, &c, i))
            .collect();
        Decision {
            selected: c.selected.map(|s| tags[s].as_ref().to_owned()),
            candidates,
        }
    }

    /// Does a tag rejected as `status` rank above `pick` in the policy's
    /// order (the tags a summary lists: "why wasn't my tag picked?")?
    fn rejected_above(&self, tag: &str, status: &Status<'_>, pick: &Key<'_>) -> bool {
        match (status, pick) {
            (Status::OutsideRange(v) | Status::PrereleaseNotAllowed(v), Key::Version(p)) => {
                semver::compare(v, p) == Ordering::Greater
            }
            (Status::Excluded(_), _) => self
                .order_key(tag)
                .is_some_and(|k| self.rank(&k, pick) == Ordering::Greater),
            _ => false,
        }
    }

    /// Counts per verdict, the pick, and up to `shown` tags that rank above
    /// the pick but lost (the usual "why wasn't my tag picked?"), with
    /// details. Builds sentences only for what it returns, and keeps no
    /// per-tag state: one pass counts and picks (keeping the indices of
    /// rejected tags that rank above the best so far, the only ones that
    /// can rank above the pick), a second classifies those again against
    /// the pick.
    pub fn summarize<S: AsRef<str>>(&self, tags: &[S], shown: usize) -> Summary {
        let extracts = self.filter.is_some_and(|f| f.extract().is_some());
        let mut scratch = Scratch::new(self.filter);
        let mut counts: Vec<(Verdict, usize)> = Verdict::ALL.iter().map(|v| (*v, 0)).collect();
        let add = |counts: &mut Vec<(Verdict, usize)>, verdict: Verdict, n: usize| {
            if let Some(slot) = counts.iter_mut().find(|(v, _)| *v == verdict) {
                slot.1 += n;
            }
        };
        let mut best: Option<(usize, Classified<'_>)> = None;
        let (mut eligible, mut tied) = (0usize, 0usize);
        let mut maybe_above: Vec<usize> = Vec::new();
        for (i, tag) in tags.iter().enumerate() {
            let tag = tag.as_ref();
            let entry = self.classify_one(tag, extracts, &mut scratch);
            let best_key = best.as_ref().and_then(|(_, b)| b.key());
            match (&entry.status, best_key) {
                (Status::Eligible(key), best_key) => {
                    eligible += 1;
                    match best_key.map(|b| self.rank(key, b)) {
                        None | Some(Ordering::Greater) => {
                            best = Some((i, entry));
                            tied = 0;
                        }
                        Some(Ordering::Equal) => tied += 1,
                        Some(Ordering::Less) => {}
                    }
                }
                (status, best_key) => {
                    add(&mut counts, status.verdict(), 1);
                    let may_rank_above = match best_key {
                        Some(best) => self.rejected_above(tag, status, best),
                        None => matches!(
                            status,
                            Status::OutsideRange(_)
                                | Status::PrereleaseNotAllowed(_)
                                | Status::Excluded(_)
                        ),
                    };
                    if may_rank_above {
                        maybe_above.push(i);
                    }
                }
            }
        }
        let Some((selected, pick)) = best else {
            return Summary {
                selected: None,
                pick: None,
                counts,
                above: Vec::new(),
                above_total: 0,
            };
        };
        add(&mut counts, Verdict::Selected, 1);
        add(&mut counts, Verdict::TiedWithPick, tied);
        add(&mut counts, Verdict::LowerThanPick, eligible - 1 - tied);
        let pick_value = pick.value.as_deref().unwrap_or(tags[selected].as_ref());
        let mut above = Vec::new();
        let mut above_total = 0;
        if let Some(pick_key) = pick.key() {
            for &i in &maybe_above {
                let tag = tags[i].as_ref();
                let entry = self.classify_one(tag, extracts, &mut scratch);
                if self.rejected_above(tag, &entry.status, pick_key) {
                    above_total += 1;
                    if above.len() < shown {
                        let verdict = entry.status.verdict();
                        above.push(self.candidate_of(tag, &entry, verdict, Some(pick_value)));
                    }
                }
            }
        }
        Summary {
            selected: Some(selected),
            pick: Some(self.candidate_of(
                tags[selected].as_ref(),
                &pick,
                Verdict::Selected,
                Some(pick_value),
            )),
            counts,
            above,
            above_total,
        }
    }

    fn selected_detail(&self) -> String {
        match self.rule {
            Rule::Semver(range) => format!("the highest version in {range}"),
            Rule::Alphabetical(Order::Asc) => "the greatest value, byte-wise".to_owned(),
            Rule::Alphabetical(Order::Desc) => "the least value, byte-wise (desc)".to_owned(),
            Rule::Numerical(Order::Asc) => "the greatest number".to_owned(),
            Rule::Numerical(Order::Desc) => "the least number (desc)".to_owned(),
        }
    }

    fn lower_detail(&self, value: &str, pick: &str) -> String {
        match self.rule {
            Rule::Semver(_) => format!("{value} is lower than the pick {pick}"),
            Rule::Alphabetical(Order::Asc) => format!("{value} sorts before the pick {pick}"),
            Rule::Alphabetical(Order::Desc) => {
                format!("{value} sorts after the pick {pick} (desc picks the least)")
            }
            Rule::Numerical(Order::Asc) => format!("{value} is less than the pick {pick}"),
            Rule::Numerical(Order::Desc) => {
                format!("{value} is greater than the pick {pick} (desc picks the least)")
            }
        }
    }

    /// The key `tag` ranks by, ignoring exclusions and the range: used to
    /// compare a value in a file with a candidate.
    fn order_key(&self, tag: &str) -> Option<Key<'static>> {
        let value = match self.filter {
            None => tag.to_owned(),
            Some(filter) => filter.value_of(tag)?,
        };
        match self.rule {
            Rule::Semver(_) => semver::parse_tag(&value).ok().map(Key::Version),
            Rule::Alphabetical(_) => Some(Key::Text(Cow::Owned(value))),
            Rule::Numerical(_) => number(&value).map(Key::Number),
        }
    }

    /// Whether the policy's order has a place for `tag` (`latest`, or a
    /// tag the filter rejects, has none). The range and exclusions are
    /// not asked, as for [`Selector::ranks_below`].
    pub fn orders(&self, tag: &str) -> bool {
        self.order_key(tag).is_some()
    }

    /// Does the policy's order put `candidate` strictly below `current`?
    /// False when either cannot be ordered (`latest`, a tag the filter
    /// rejects): the policy has nothing to say about them.
    pub fn ranks_below(&self, candidate: &str, current: &str) -> bool {
        match (self.order_key(candidate), self.order_key(current)) {
            (Some(candidate), Some(current)) => self.rank(&candidate, &current) == Ordering::Less,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    fn pick(rule: Rule, filter: Option<TagFilter>, list: &[&str]) -> Option<String> {
        let exclusions = Exclusions::default();
        let selector = Selector {
            rule: &rule,
            filter: filter.as_ref(),
            exclusions: &exclusions,
        };
        let list = tags(list);
        let index = selector.select(&list);
        assert_eq!(
            selector.explain(&list).selected_index(),
            index,
            "explain and select disagree"
        );
        index.map(|i| list[i].clone())
    }

    fn semver(range: &str) -> Rule {
        Rule::Semver(Range::parse(range).unwrap())
    }

    #[test]
    fn semver_picks_the_highest_in_range_and_keeps_the_tag_text() {
        let list = [
            "6.0.0",
            "v6.2.0",
            "6.1.9",
            "7.0.0",
            "6.3.0-rc.1",
            "latest",
            "6.2",
        ];
        assert_eq!(
            pick(semver(">=6.0.0 <7.0.0"), None, &list).unwrap(),
            "v6.2.0"
        );
        assert_eq!(pick(semver(">=8"), None, &list), None);
    }

    #[test]
    fn ties_go_to_the_first_listed() {
        let list = ["1.2.3+b", "v1.2.3", "1.2.3", "1.2.3+a"];
        assert_eq!(pick(semver("*"), None, &list).unwrap(), "1.2.3+b");
        assert_eq!(
            pick(Rule::Numerical(Order::Asc), None, &["1.0", "1", "0.5"]).unwrap(),
            "1.0"
        );
        let filter = TagFilter::new("^(?:a|b)-(?P<n>[0-9]+)$")
            .unwrap()
            .with_extract("$n")
            .unwrap();
        assert_eq!(
            pick(
                Rule::Alphabetical(Order::Asc),
                Some(filter),
                &["a-9", "b-9", "a-1"]
            )
            .unwrap(),
            "a-9"
        );
    }

    #[test]
    fn alphabetical_and_numerical_orders() {
        let list = ["b", "a", "c", "B"];
        assert_eq!(
            pick(Rule::Alphabetical(Order::Asc), None, &list).unwrap(),
            "c"
        );
        assert_eq!(
            pick(Rule::Alphabetical(Order::Desc), None, &list).unwrap(),
            "B"
        );
        let numbers = ["10", "9", "1e3", "-4", "abc", "2.5"];
        assert_eq!(
            pick(Rule::Numerical(Order::Asc), None, &numbers).unwrap(),
            "1e3"
        );
        assert_eq!(
            pick(Rule::Numerical(Order::Desc), None, &numbers).unwrap(),
            "-4"
        );
    }

    #[test]
    fn non_numeric_tags_are_counted_not_fatal() {
        let rule = Rule::Numerical(Order::Asc);
        let exclusions = Exclusions::default();
        let selector = Selector {
            rule: &rule,
            filter: None,
            exclusions: &exclusions,
        };
        let p = selector.pick(&tags(&["3", "latest", "NaN", "inf", "7", "x.sig"]));
        assert_eq!(p.index, Some(4));
        // `x.sig` is excluded before the number check.
        assert_eq!(p.not_numeric, 3);
    }

    #[test]
    fn filter_and_extract_order_by_the_extracted_value() {
        let filter = TagFilter::new(r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$")
            .unwrap()
            .with_extract("$ts")
            .unwrap();
        let list = [
            "main-abc-100",
            "main-def-99",
            "feature-x-500",
            "main-012-1000",
        ];
        assert_eq!(
            pick(Rule::Numerical(Order::Asc), Some(filter.clone()), &list).unwrap(),
            "main-012-1000"
        );
        // Alphabetical orders the extracted text: "99" > "1000".
        assert_eq!(
            pick(Rule::Alphabetical(Order::Asc), Some(filter), &list).unwrap(),
            "main-def-99"
        );
    }

    #[test]
    fn explain_gives_every_tag_a_verdict() {
        let rule = semver(">=1.0.0 <2.0.0");
        let exclusions = Exclusions::default();
        let selector = Selector {
            rule: &rule,
            filter: None,
            exclusions: &exclusions,
        };
        let list = tags(&[
            "1.0.0",
            "1.5.0",
            "2.0.0",
            "1.6.0-rc.1",
            "latest",
            "1.5.0.sig",
            "v1.5.0",
            "1.2",
        ]);
        let decision = selector.explain(&list);
        let verdicts: Vec<Verdict> = decision.candidates.iter().map(|c| c.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::LowerThanPick,
                Verdict::Selected,
                Verdict::OutsideRange,
                Verdict::PrereleaseNotAllowed,
                Verdict::NotAVersion,
                Verdict::Excluded,
                Verdict::TiedWithPick,
                Verdict::NotAVersion,
            ]
        );
        assert_eq!(decision.selected.as_deref(), Some("1.5.0"));
        assert_eq!(
            decision.candidates[7].detail,
            "1.2 has 2 dot-separated parts; semver tags need three (major.minor.patch)"
        );
        assert_eq!(
            decision.candidates[5].detail,
            r"matches exclusion pattern ^.*\.sig$"
        );
    }

    #[test]
    fn decision_json_shape() {
        let rule = Rule::Alphabetical(Order::Asc);
        let exclusions = Exclusions::default();
        let filter = TagFilter::new("^v-(.*)$")
            .unwrap()
            .with_extract("$1")
            .unwrap();
        let selector = Selector {
            rule: &rule,
            filter: Some(&filter),
            exclusions: &exclusions,
        };
        let json = serde_json::to_value(selector.explain(&tags(&["v-b", "v-a", "x"]))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "selected": "v-b",
                "candidates": [
                    {"tag": "v-b", "value": "b", "verdict": "selected", "detail": "the greatest value, byte-wise"},
                    {"tag": "v-a", "value": "a", "verdict": "lower_than_pick", "detail": "a sorts before the pick b"},
                    {"tag": "x", "verdict": "filtered_out", "detail": "does not match filterTags.pattern ^v-(.*)$"}
                ]
            })
        );
    }

    #[test]
    fn ranks_below_uses_the_policy_order_only() {
        let exclusions = Exclusions::default();
        let rule = semver(">=6.0.0 <7.0.0");
        let selector = Selector {
            rule: &rule,
            filter: None,
            exclusions: &exclusions,
        };
        assert!(selector.ranks_below("6.5.0", "7.0.0"));
        assert!(!selector.ranks_below("6.5.0", "6.4.0"));
        assert!(!selector.ranks_below("6.5.0", "latest"));
        assert!(selector.orders("7.0.0") && !selector.orders("latest"));
        assert!(selector.ranks_below("6.5.0-rc.1", "6.5.0"));
        let desc = Rule::Numerical(Order::Desc);
        let selector = Selector {
            rule: &desc,
            filter: None,
            exclusions: &exclusions,
        };
        assert!(selector.ranks_below("9", "3"));
        assert!(!selector.ranks_below("1", "3"));
    }
}
