//! Tag selection over 100,000 tags, in process (issue 3's measurement).
//!
//! `scripts/bench-policy` runs this next to the whole-process comparison with
//! the Masterminds oracle and passes the same tag file in
//! `CROWSNEST_BENCH_TAGS`; without it the bench builds the same list itself
//! (see `tag`), so `cargo bench --bench policy_select` works alone.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crowsnest::commands::tags::parse_tag_list;
use crowsnest::policy::{Exclusions, Order, Range, Rule, Selector, TagFilter};

/// The range the measurement uses (also in scripts/bench-policy).
const RANGE: &str = ">=5.0.0 <6.0.0";
const TAGS: usize = 100_000;

/// Tag `i` of the benchmark list; scripts/bench-policy writes the same list
/// with awk. All distinct versions `M.m.p`, some with a `v`, a prerelease or
/// build metadata, plus branch builds, signatures and two-part versions.
fn tag(i: usize) -> String {
    let (major, minor, patch) = (i % 10, (i / 10) % 100, i / 1000);
    if i % 29 == 0 {
        return format!("sha256-{i:x}.sig");
    }
    if i % 23 == 0 {
        return format!("main-{:07x}-{}", i * 7919, 1_700_000_000 + i);
    }
    if i % 31 == 0 {
        return format!("{major}.{minor}");
    }
    let mut t = String::new();
    if i % 7 == 0 {
        t.push('v');
    }
    t.push_str(&format!("{major}.{minor}.{patch}"));
    if i % 11 == 0 {
        t.push_str(&format!("-rc.{}", i % 13));
    }
    if i % 17 == 0 {
        t.push_str(&format!("+build.{}", i % 5));
    }
    t
}

fn tags() -> (Vec<String>, String) {
    match std::env::var("CROWSNEST_BENCH_TAGS") {
        Ok(path) => {
            let text = std::fs::read_to_string(&path).expect("read CROWSNEST_BENCH_TAGS");
            let list: Vec<String> = parse_tag_list(&text)
                .into_iter()
                .map(str::to_owned)
                .collect();
            assert!(
                list.iter().enumerate().all(|(i, t)| *t == tag(i)) && list.len() == TAGS,
                "{path} is not the list this bench builds; scripts/bench-policy and tag() must agree"
            );
            (list, text)
        }
        Err(_) => {
            let list: Vec<String> = (0..TAGS).map(tag).collect();
            let text = list.join("\n") + "\n";
            (list, text)
        }
    }
}

fn selection(c: &mut Criterion) {
    let (tags, text) = tags();
    let exclusions = Exclusions::default();
    let semver = Rule::Semver(Range::parse(RANGE).expect("the bench range parses"));
    let alphabetical = Rule::Alphabetical(Order::Asc);
    let numerical = Rule::Numerical(Order::Asc);
    let builds = TagFilter::new(r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$")
        .expect("pattern")
        .with_extract("$ts")
        .expect("template");
    let selector = |rule, filter| Selector {
        rule,
        filter,
        exclusions: &exclusions,
    };

    let mut group = c.benchmark_group("select_100k");
    group.throughput(Throughput::Elements(tags.len() as u64));
    group.bench_function("semver", |b| {
        let s = selector(&semver, None);
        b.iter(|| black_box(s.select(black_box(&tags))))
    });
    group.bench_function("alphabetical", |b| {
        let s = selector(&alphabetical, None);
        b.iter(|| black_box(s.select(black_box(&tags))))
    });
    group.bench_function("numerical_extract", |b| {
        let s = selector(&numerical, Some(&builds));
        b.iter(|| black_box(s.select(black_box(&tags))))
    });
    group.finish();

    let mut group = c.benchmark_group("tags_command_100k");
    group.throughput(Throughput::Elements(tags.len() as u64));
    // What `crowsnest tags --tags-from FILE --semver R` does after reading
    // the file: split it into tags, classify every tag, count verdicts.
    group.bench_function("parse_list_and_summarize", |b| {
        let s = selector(&semver, None);
        b.iter(|| {
            let list = parse_tag_list(black_box(&text));
            black_box(s.summarize(&list, 10))
        })
    });
    group.bench_function("explain_all", |b| {
        let s = selector(&semver, None);
        b.iter(|| black_box(s.explain(black_box(&tags))))
    });
    group.finish();
}

/// The parts of the semver hot path, to see where the time goes.
fn parts(c: &mut Criterion) {
    let (tags, _) = tags();
    let exclusions = Exclusions::default();
    let range = Range::parse(RANGE).expect("the bench range parses");
    let versions: Vec<_> = tags
        .iter()
        .filter_map(|t| crowsnest::policy::semver::parse_tag(t).ok())
        .collect();
    let mut group = c.benchmark_group("parts_100k");
    group.throughput(Throughput::Elements(tags.len() as u64));
    let (_, text) = self::tags();
    group.bench_function("parse_tag_list", |b| {
        b.iter(|| black_box(parse_tag_list(black_box(&text))))
    });
    group.bench_function("exclusions", |b| {
        b.iter(|| {
            black_box(&tags)
                .iter()
                .filter(|t| exclusions.matching(t).is_some())
                .count()
        })
    });
    group.bench_function("parse_tag", |b| {
        b.iter(|| {
            black_box(&tags)
                .iter()
                .filter(|t| crowsnest::policy::semver::parse_tag(t).is_ok())
                .count()
        })
    });
    group.bench_function("range_matches", |b| {
        b.iter(|| {
            black_box(&versions)
                .iter()
                .filter(|v| range.matches(v))
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, selection, parts);
criterion_main!(benches);
