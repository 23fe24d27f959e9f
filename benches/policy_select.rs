//! Tag selection over 100,000 tags, in process (issue 3's measurement).
//!
//! `scripts/bench-policy` runs this next to the whole-process comparison with
//! the Masterminds oracle and passes the same tag files in
//! `CROWSNEST_BENCH_TAGS` (issue 3's list) and `CROWSNEST_BENCH_MIXED_TAGS`
//! (issue 16's mixed list); without them the bench builds the same lists
//! itself (see `tag` and `mixed_tag`), so `cargo bench --bench policy_select`
//! works alone.

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

/// Tag `i` of the mixed list (issue 16); scripts/bench-policy writes the
/// same list with awk and says what the shares are. Per 20 tags: 4 `M.m.p`,
/// 3 `vM.m.p`, 3 prereleases, 3 two-part, 2 four-part, a word, a branch
/// build, a signature and 2 dates.
fn mixed_tag(i: usize) -> String {
    const WORDS: [&str; 5] = ["latest", "stable", "main", "edge", "nightly"];
    let (k, j) = (i % 20, i / 20);
    let (major, minor, patch) = (j % 10, (j / 10) % 100, k + 20 * (j / 1000));
    let date = (2020 + j % 6, 1 + j % 12, 1 + j % 28);
    match k {
        0..=3 => format!("{major}.{minor}.{patch}"),
        4..=6 => format!("v{major}.{minor}.{patch}"),
        7..=9 => {
            let v = if k == 9 { "v" } else { "" };
            let pre = if k == 7 { "rc" } else { "beta" };
            let build = if j % 3 == 0 {
                format!("+build.{}", j % 5)
            } else {
                String::new()
            };
            format!("{v}{major}.{minor}.{patch}-{pre}.{}{build}", j % 7)
        }
        10..=12 => format!("{}{major}.{minor}", if k == 12 { "v" } else { "" }),
        13..=14 => format!("{major}.{minor}.{patch}.{}", j % 100),
        15 => WORDS[j % 5].to_owned(),
        16 => format!("main-{:07x}", (j * 7919) % 268_435_456),
        17 => format!(
            "sha256-{}.sig",
            format!("{:08x}", (j * 2_654_435_761) % 4_294_967_296).repeat(8)
        ),
        18 => format!("{:04}-{:02}-{:02}", date.0, date.1, date.2),
        _ => format!("{:04}{:02}{:02}-{j}", date.0, date.1, date.2),
    }
}

/// The list `make` builds, read from the file in `var` when it is set (and
/// checked to be that list), and the list as file text.
fn tags_of(var: &str, make: fn(usize) -> String) -> (Vec<String>, String) {
    match std::env::var(var) {
        Ok(path) => {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {var}: {e}"));
            let list: Vec<String> = parse_tag_list(&text)
                .into_iter()
                .map(str::to_owned)
                .collect();
            assert!(
                list.iter().enumerate().all(|(i, t)| *t == make(i)) && list.len() == TAGS,
                "{path} is not the list this bench builds; scripts/bench-policy and the bench must agree"
            );
            (list, text)
        }
        Err(_) => {
            let list: Vec<String> = (0..TAGS).map(make).collect();
            let text = list.join("\n") + "\n";
            (list, text)
        }
    }
}

fn tags() -> (Vec<String>, String) {
    tags_of("CROWSNEST_BENCH_TAGS", tag)
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

    // Issue 16's list: half of it rejected before any version is built.
    let (mixed, mixed_text) = tags_of("CROWSNEST_BENCH_MIXED_TAGS", mixed_tag);
    let mut group = c.benchmark_group("select_100k_mixed");
    group.throughput(Throughput::Elements(mixed.len() as u64));
    group.bench_function("semver", |b| {
        let s = selector(&semver, None);
        b.iter(|| black_box(s.select(black_box(&mixed))))
    });
    group.finish();
    let mut group = c.benchmark_group("tags_command_100k_mixed");
    group.throughput(Throughput::Elements(mixed.len() as u64));
    group.bench_function("parse_list_and_summarize", |b| {
        let s = selector(&semver, None);
        b.iter(|| {
            let list = parse_tag_list(black_box(&mixed_text));
            black_box(s.summarize(&list, 10))
        })
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
