//! The constraint parser and matcher: the first line is a range, every
//! other line a tag. No input may panic; a tag the range admits must also
//! be admitted when prereleases are included; the pick must satisfy the range.
#![no_main]

use crowsnest::policy::semver::{self, Dialect, Range};
use crowsnest::policy::{Exclusions, Rule, Selector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let range_text = lines.next().unwrap_or("");
    let tags: Vec<String> = lines.map(str::to_owned).collect();
    for tag in &tags {
        let _ = semver::parse_tag(tag);
    }
    let _ = Range::parse_dialect(range_text, Dialect::Masterminds3_2);
    let Ok(range) = Range::parse(range_text) else {
        return;
    };
    for tag in &tags {
        if let Ok(v) = semver::parse_tag(tag) {
            if range.matches(&v) {
                assert!(range.matches_including_prereleases(&v));
            }
        }
    }
    let rule = Rule::Semver(range.clone());
    let exclusions = Exclusions::default();
    let selector = Selector {
        rule: &rule,
        filter: None,
        exclusions: &exclusions,
    };
    let picked = selector.select(&tags);
    assert_eq!(selector.explain(&tags).selected_index(), picked);
    if let Some(i) = picked {
        let v = semver::parse_tag(&tags[i]).expect("the pick is a version");
        assert!(range.matches(&v));
    }
});
