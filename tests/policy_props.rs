//! Property tests for the policy engine: the parsers never panic, versions
//! print and parse back, precedence is a total order, and the pick is
//! always the first of the highest-ranked eligible tags (and the same in
//! `select` and `explain`).

use std::cmp::Ordering;

use crowsnest::policy::semver::{self, Dialect, Range};
use crowsnest::policy::{Exclusions, Order, Rule, Selector, Verdict, parse_policy_file};
use proptest::prelude::*;

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..12).prop_map(|n| n.to_string()),
        1 => Just("01".to_owned()),
        1 => Just("18446744073709551615".to_owned()),
        1 => Just("18446744073709551616".to_owned()),
    ]
}

fn identifier() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("rc".to_owned()),
        Just("rc9".to_owned()),
        Just("rc10".to_owned()),
        Just("alpha".to_owned()),
        Just("0".to_owned()),
        Just("01".to_owned()),
        (0u64..20).prop_map(|n| n.to_string()),
        "[a-zA-Z0-9-]{1,4}",
        Just("99999999999999999999".to_owned()),
    ]
}

/// Tags shaped like versions (often valid, sometimes not) plus noise.
fn tag() -> impl Strategy<Value = String> {
    let versionish = (
        any::<bool>(),
        prop::collection::vec(number(), 1..5),
        prop::option::of(prop::collection::vec(identifier(), 1..3)),
        prop::option::of("[a-z0-9]{1,3}"),
    )
        .prop_map(|(v, parts, pre, build)| {
            let mut t = if v { "v".to_owned() } else { String::new() };
            t.push_str(&parts.join("."));
            if let Some(pre) = pre {
                t.push('-');
                t.push_str(&pre.join("."));
            }
            if let Some(build) = build {
                t.push('+');
                t.push_str(&build);
            }
            t
        });
    prop_oneof![8 => versionish, 1 => "[ -~]{0,12}", 1 => "[0-9.a-z+-]{0,10}"]
}

/// Ranges from the constraint grammar, with occasional junk.
fn range_text() -> impl Strategy<Value = String> {
    let op = prop::sample::select(vec![
        "", "=", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^",
    ]);
    let part = prop_oneof![
        4 => (0u64..6).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec!["x", "X", "*", "01"]).prop_map(str::to_owned),
    ];
    let version = (
        any::<bool>(),
        prop::collection::vec(part, 1..4),
        prop::option::of(identifier()),
    )
        .prop_map(|(v, parts, pre)| {
            let mut t = if v { "v".to_owned() } else { String::new() };
            t.push_str(&parts.join("."));
            if let Some(pre) = pre {
                t.push('-');
                t.push_str(&pre);
            }
            t
        })
        .boxed();
    let comparator = prop_oneof![
        6 => (op, prop::bool::ANY, version.clone()).prop_map(|(op, space, v)| {
            format!("{op}{}{v}", if space { " " } else { "" })
        }),
        1 => (version.clone(), version).prop_map(|(a, b)| format!("{a} - {b}")),
        1 => "[ -~]{1,5}",
    ];
    let group = prop::collection::vec(comparator, 1..4).prop_map(|items| items.join(" "));
    prop::collection::vec(group, 1..3).prop_map(|groups| groups.join(" || "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn range_parser_never_panics(text in "[ -~]{0,40}") {
        let _ = Range::parse(&text);
        let _ = Range::parse_dialect(&text, Dialect::Masterminds3_2);
    }

    #[test]
    fn range_parser_never_panics_on_near_misses(text in "[0-9xX*|.v<>=!~^, +a-z-]{0,30}") {
        if let Ok(range) = Range::parse(&text) {
            prop_assert_eq!(range.as_str(), text.as_str());
        }
    }

    #[test]
    fn tags_print_and_parse_back(text in tag()) {
        if let Ok(v) = semver::parse_tag(&text) {
            let again = semver::parse_tag(&v.to_string()).expect("a printed version parses");
            prop_assert_eq!(semver::compare(&v, &again), Ordering::Equal);
            prop_assert_eq!(&v, &again);
        }
    }

    #[test]
    fn precedence_is_a_total_order(a in tag(), b in tag(), c in tag()) {
        let (Ok(a), Ok(b), Ok(c)) = (semver::parse_tag(&a), semver::parse_tag(&b), semver::parse_tag(&c)) else {
            return Ok(());
        };
        prop_assert_eq!(semver::compare(&a, &a), Ordering::Equal);
        prop_assert_eq!(semver::compare(&a, &b), semver::compare(&b, &a).reverse());
        if semver::compare(&a, &b) != Ordering::Greater && semver::compare(&b, &c) != Ordering::Greater {
            prop_assert_ne!(semver::compare(&a, &c), Ordering::Greater);
        }
    }

    #[test]
    fn prerelease_rule_only_narrows(range in range_text(), tags in prop::collection::vec(tag(), 0..20)) {
        let Ok(parsed) = Range::parse(&range) else { return Ok(()) };
        for t in &tags {
            let Ok(v) = semver::parse_tag(t) else { continue };
            if parsed.matches(&v) {
                prop_assert!(parsed.matches_including_prereleases(&v), "{range} {t}");
            }
            if v.pre.is_empty() {
                prop_assert_eq!(parsed.matches(&v), parsed.matches_including_prereleases(&v));
            }
        }
    }

    /// The deliberate differences from 3.2.0 only ever concern prereleases,
    /// and hyphen ranges followed by more comparators (3.2.0 glues the next
    /// one to the upper bound: `0 - 0 2` becomes `>= 0, <= 02`).
    #[test]
    fn dialects_agree_on_releases(range in range_text(), tags in prop::collection::vec(tag(), 0..20)) {
        if range.contains(" - ") {
            return Ok(());
        }
        let (Ok(flux), Ok(old)) = (Range::parse(&range), Range::parse_dialect(&range, Dialect::Masterminds3_2)) else {
            return Ok(());
        };
        for t in &tags {
            let Ok(v) = semver::parse_tag(t) else { continue };
            if v.pre.is_empty() {
                prop_assert_eq!(flux.matches(&v), old.matches(&v), "{} {}", range, t);
            }
        }
    }

    #[test]
    fn semver_pick_is_the_first_highest_match(
        range in range_text(),
        tags in prop::collection::vec(tag(), 0..40),
        exclude_versions in any::<bool>(),
    ) {
        let Ok(parsed) = Range::parse(&range) else { return Ok(()) };
        let rule = Rule::Semver(parsed.clone());
        // Exclusions that hit versions too, so excluded tags rank above picks.
        let exclusions = if exclude_versions {
            Exclusions::new(&["^v", r"^.*\.sig$", "-rc"]).unwrap()
        } else {
            Exclusions::default()
        };
        let selector = Selector { rule: &rule, filter: None, exclusions: &exclusions };
        let picked = selector.select(&tags);
        let decision = selector.explain(&tags);
        prop_assert_eq!(decision.selected_index(), picked);
        prop_assert_eq!(decision.candidates.len(), tags.len());
        let summary = selector.summarize(&tags, usize::MAX);
        prop_assert_eq!(summary.selected, picked);
        for (verdict, n) in &summary.counts {
            prop_assert_eq!(*n, decision.count(*verdict), "{:?}", verdict);
        }
        prop_assert_eq!(summary.above.len(), summary.above_total);
        // The summary's two passes list exactly the rejected tags that the
        // policy ranks above the pick, in listing order, as explain words them.
        let expected: Vec<_> = match picked {
            None => Vec::new(),
            Some(p) => decision
                .candidates
                .iter()
                .enumerate()
                .filter(|(_, c)| matches!(c.verdict, Verdict::OutsideRange | Verdict::PrereleaseNotAllowed | Verdict::Excluded))
                .filter(|(i, _)| selector.ranks_below(&tags[p], &tags[*i]))
                .map(|(_, c)| c.clone())
                .collect(),
        };
        prop_assert_eq!(&summary.above, &expected);
        prop_assert_eq!(summary.pick.as_ref(), picked.map(|p| &decision.candidates[p]));
        let eligible: Vec<(usize, _)> = tags
            .iter()
            .enumerate()
            .filter(|(_, t)| exclusions.matching(t).is_none())
            .filter_map(|(i, t)| semver::parse_tag(t).ok().filter(|v| parsed.matches(v)).map(|v| (i, v)))
            .collect();
        match picked {
            None => prop_assert!(eligible.is_empty()),
            Some(p) => {
                let best = semver::parse_tag(&tags[p]).expect("the pick is a version");
                prop_assert!(parsed.matches(&best));
                for (i, v) in &eligible {
                    let order = semver::compare(v, &best);
                    prop_assert_ne!(order, Ordering::Greater, "{} beats the pick {}", &tags[*i], &tags[p]);
                    if order == Ordering::Equal {
                        prop_assert!(*i >= p, "an equal tag listed earlier: {}", &tags[*i]);
                    }
                }
            }
        }
        for (c, t) in decision.candidates.iter().zip(&tags) {
            prop_assert_eq!(&c.tag, t);
            prop_assert!(!c.detail.is_empty());
            if c.verdict == Verdict::PrereleaseNotAllowed {
                prop_assert!(semver::parse_tag(t).is_ok_and(|v| !v.pre.is_empty()));
            }
        }
    }

    #[test]
    fn ordered_picks_are_the_first_extreme(
        tags in prop::collection::vec("[a-c0-9.]{0,4}", 0..30),
        desc in any::<bool>(),
        numerical in any::<bool>(),
    ) {
        let order = if desc { Order::Desc } else { Order::Asc };
        let rule = if numerical { Rule::Numerical(order) } else { Rule::Alphabetical(order) };
        let exclusions = Exclusions::none();
        let selector = Selector { rule: &rule, filter: None, exclusions: &exclusions };
        let picked = selector.select(&tags);
        let decision = selector.explain(&tags);
        prop_assert_eq!(decision.selected_index(), picked);
        let summary = selector.summarize(&tags, 3);
        prop_assert_eq!(summary.selected, picked);
        for (verdict, n) in &summary.counts {
            prop_assert_eq!(*n, decision.count(*verdict), "{:?}", verdict);
        }
        // Brute force: the first tag no other tag beats.
        let key = |t: &str| -> Option<f64> { t.parse::<f64>().ok().filter(|n| n.is_finite()) };
        let beats = |a: &str, b: &str| -> bool {
            let o = if numerical {
                key(a).unwrap_or(0.0).partial_cmp(&key(b).unwrap_or(0.0)).unwrap_or(Ordering::Equal)
            } else {
                a.as_bytes().cmp(b.as_bytes())
            };
            (if desc { o.reverse() } else { o }) == Ordering::Greater
        };
        let eligible: Vec<usize> = (0..tags.len()).filter(|&i| !numerical || key(&tags[i]).is_some()).collect();
        let expected = eligible.iter().copied().find(|&i| eligible.iter().all(|&j| !beats(&tags[j], &tags[i])));
        prop_assert_eq!(picked, expected);
    }

    #[test]
    fn policy_file_parser_never_panics(text in "[ -~\n]{0,200}") {
        let _ = parse_policy_file("p.yaml", &text);
    }

    #[test]
    fn policy_file_parser_never_panics_on_edited_documents(
        range in range_text(),
        pattern in "[ -~]{0,12}",
        extract in "[$a-z0-9{}]{0,6}",
        order in "[a-z]{0,5}",
    ) {
        let text = format!(
            "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: a\nspec:\n  image: x/y\n  policy:\n    semver:\n      range: {range:?}\n  filterTags:\n    pattern: {pattern:?}\n    extract: {extract:?}\n---\napiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: b\nspec:\n  image: x/z\n  policy:\n    alphabetical: {{order: {order:?}}}\n"
        );
        match parse_policy_file("p.yaml", &text) {
            Ok(policies) => prop_assert_eq!(policies.len(), 2),
            Err(e) => prop_assert!(e.to_string().starts_with("p.yaml:"), "{}", e),
        }
    }
}
