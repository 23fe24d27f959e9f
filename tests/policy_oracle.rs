//! Differential test: crowsnest's Masterminds/semver engine against the Go
//! library itself (`tests/oracle/masterminds-semver`, Debian's 3.2.0 driven
//! the way Flux drives it).
//!
//! Hundreds of ranges, hand-picked and generated, each against a random tag
//! set with `v` prefixes, prereleases (`rc9`/`rc10`, `rc.9`/`rc.10`), two- and
//! four-part versions, leading zeros, build metadata and huge numbers. For
//! every range the oracle runs twice (the selection, and `-each`: every tag's
//! parse-and-Check result) and a third mode compares random version pairs.
//!
//! Two claims are checked:
//!
//! 1. With `Dialect::Masterminds3_2` crowsnest agrees with the oracle on
//!    every range's validity, every tag's verdict, every selection and every
//!    comparison. No exceptions.
//! 2. With `Dialect::Flux` (Masterminds 3.4, what crowsnest uses) every
//!    disagreement with the oracle falls under [`DELIBERATE`], and the
//!    hand-picked ranges make each of them actually occur.
//!
//! Set `CROWSNEST_ORACLE_SEED` to replay another random draw.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use crowsnest::policy::semver::{self, Dialect, Range};
use crowsnest::policy::{Exclusions, Rule, Selector};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// Where crowsnest (Flux's Masterminds 3.4) and the oracle (Debian's 3.2.0)
/// disagree on purpose: name and reason.
const DELIBERATE: &[(&str, &str)] = &[
    (
        "prerelease-and-group",
        "Masterminds 3.4.0 (#267) admits a prerelease version when any comparator of its \
         AND-group names a prerelease (`>=1.0.0-0 <2.0.0` admits 1.5.0-rc.1), and applies \
         that rule to `!=` too; 3.2.0 asks each comparator separately and lets a plain `!=` \
         pass every prerelease. PRODUCT.md asks for the per-group rule, as Flux has it.",
    ),
    (
        "hyphen-range-space",
        "Masterminds 3.2.1 (#199) writes a space after a rewritten hyphen range, so \
         `1 - 2 <3` is `>= 1, <= 2 <3`; 3.2.0 produces `>= 1, <= 2<3` and refuses the \
         range, or glues a bare version on (`0 - 0 2` is `>= 0, <= 02` there).",
    ),
];

const DEFAULT_SEED: u64 = 0x00c0_ffee_2024;

/// Hand-picked: the documented forms, every operator spelling, the partial
/// version rules, Masterminds' quirks, and ranges aimed at each deliberate
/// difference.
const HAND_PICKED: &[&str] = &[
    // Documented forms (Masterminds README, PRODUCT.md, Flux docs).
    ">=6.0.0 <7.0.0",
    ">= 1.2, < 3.0.0 || >= 4.2.3",
    "1.2 - 1.4.5",
    "2.3.4 - 4.5",
    "1.2.x",
    "*",
    ">= 1.2.x",
    "<= 2.x",
    "~1.2.3",
    "~1",
    "~2.3",
    "~1.x",
    "^1.2.3",
    "^1.2.x",
    "^2.3",
    "^2.x",
    "^0.2.3",
    "^0.2",
    "^0.0.3",
    "^0.0",
    "^0",
    ">= 1.2.3-beta.1",
    ">=1.2.3-0",
    ">=0.0.0-0",
    ">=0.0.0",
    "<1.2.3-beta.2",
    // Every operator spelling.
    "=1.2.3",
    "1.2.3",
    "v1.2.3",
    "!=1.2.3",
    ">1.2.3",
    "<1.2.3",
    ">=1.2.3",
    "=>1.2.3",
    "<=1.2.3",
    "=<1.2.3",
    "~1.2.3",
    "~>1.2.3",
    "^1.2.3",
    "= 1.2.3",
    ">= 1.2.3",
    "~> 1.2",
    // Partial versions: `>11` is `>=12`, `<=2.x` is `<3`, bare `1.2` is `~1.2`.
    ">11",
    ">11.1",
    ">1.x",
    ">1.2.x",
    "<11",
    "<1.2",
    "<=11",
    "<=1.2",
    "1",
    "1.2",
    "=1",
    "=1.x",
    "!=1",
    "!=1.2",
    "!=1.x",
    "!=1.2.x",
    "!=*",
    "x",
    "X",
    "x.x.x",
    "1.x.x",
    "1.X",
    "1.*",
    "v1.x",
    "~*",
    "^*",
    ">*",
    "<*",
    ">=*",
    "<=*",
    "x.5.6",
    "1.x.5x",
    // Commas, spaces, ORs, hyphens.
    ">=1.0.0,<2.0.0",
    ">=1.0.0, <2.0.0",
    ">=1.0.0 ,<2.0.0",
    "  >=1.0.0   <2.0.0  ",
    ">=1.0.0 <2.0.0 || >=3.0.0 <3.1.0",
    "<1.0.0||>2.0.0",
    "1.0.0 - 2.0.0",
    "1 - 2",
    "v1.0.0 - v2.0.0",
    "1.0.0-alpha - 1.0.0",
    "1.0.0 - 2.0.0 || 3.0.0 - 4.0.0",
    "1 - 2||3 - 4",
    "1 - 1 - 1 - 1",
    // Prereleases, build metadata, leading zeros, huge numbers.
    ">=1.0.0-rc.9",
    ">=1.0.0-rc9",
    "<1.0.0-rc.10",
    "<1.0.0-rc10",
    "=1.0.0-rc.1",
    "1.0.0+build.5",
    ">=1.0.0+build",
    ">=01.02.03",
    "=01.2.3",
    ">=18446744073709551615.0.0",
    ">=18446744073709551616.0.0",
    ">=1.0.0-99999999999999999999",
    "~1.2.3-beta",
    "^1.2.3-beta",
    "^0.0.1-rc.1",
    "1.x-beta",
    "x-beta",
    "!=1.2.x-beta",
    "!=1.2.3-beta",
    // Aimed at the deliberate differences (and "!=1.2.3" above).
    ">=1.0.0-0 <2.0.0",
    ">=1.0.0-rc.1, <=1.0.0",
    "<2.0.0 >=0.0.0-0",
    "!=1.0.0 >=1.0.0-0",
    "1 - 2 <3",
    "0 - 0 2",
    "1.0.0 - 1.5.0 !=1.2.3",
    "1.0.0 - 2.0.0 >=1.0.0-0",
    // Invalid.
    "",
    " ",
    "||",
    ">=1.0.0 ||",
    "1.2.3.4",
    ">>1",
    "=>=1",
    "abc",
    "1.x.y",
    "1 | 2",
    "1.2.3-01",
    ">=1.0.0 <2.x.y",
    "1.2.3-",
    "1.2.3+",
    ">= ",
    "v",
    "1..2",
    ">=1.0.0,,<2",
    "~>",
    "^^1",
];

/// A tag pool that hits every parser rule.
fn random_tag(rng: &mut StdRng) -> String {
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "1",
        "2",
        "2",
        "3",
        "5",
        "6",
        "9",
        "10",
        "11",
        "99",
        "1",
        "2",
        "3",
        "4",
        "5",
        "10",
        "12",
        "00",
        "01",
        "007",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999",
    ];
    const PRERELEASES: &[&str] = &[
        "rc9",
        "rc10",
        "rc.9",
        "rc.10",
        "rc.1",
        "alpha",
        "alpha.1",
        "alpha.beta",
        "beta",
        "beta.2",
        "beta.11",
        "0",
        "1",
        "01",
        "x-y",
        "-",
        "rc.1.2",
        "99999999999999999999",
        "18446744073709551616",
        "100000000000000000000",
        "A",
        "a",
    ];
    const BUILDS: &[&str] = &["build.5", "001", "sha.abc", "x"];
    const ODD: &[&str] = &[
        "latest",
        "main",
        "1.2",
        "v1.2",
        "sha-abcdef0",
        "V1.2.3",
        "1.2.3.sig",
        "1..2",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-rc..1",
        "v",
        "1.2.3_4",
        "-1.2.3",
        "1.2.x",
        "main-abc-123",
    ];
    if rng.random_ratio(1, 12) {
        return ODD.choose(rng).expect("non-empty").to_string();
    }
    let mut tag = String::new();
    if rng.random_ratio(1, 4) {
        tag.push('v');
    }
    let parts = match rng.random_range(0..20) {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 3,
    };
    for i in 0..parts {
        if i > 0 {
            tag.push('.');
        }
        tag.push_str(NUMBERS.choose(rng).expect("non-empty"));
    }
    if rng.random_ratio(1, 3) {
        tag.push('-');
        tag.push_str(PRERELEASES.choose(rng).expect("non-empty"));
        if rng.random_ratio(1, 4) {
            tag.push('.');
            tag.push_str(PRERELEASES.choose(rng).expect("non-empty"));
        }
    }
    if rng.random_ratio(1, 6) {
        tag.push('+');
        tag.push_str(BUILDS.choose(rng).expect("non-empty"));
    }
    tag
}

/// A generated range: mostly valid, with the versions near the tag pool.
fn random_range(rng: &mut StdRng) -> String {
    const OPS: &[&str] = &[
        "", "=", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^",
    ];
    const NUMBERS: &[&str] = &["0", "1", "2", "3", "5", "10", "01", "x", "X", "*"];
    const PRERELEASES: &[&str] = &["0", "rc.1", "rc9", "rc.10", "alpha", "beta.2"];
    const BAD: &[&str] = &[
        "1.2.3.4", ">>1", "abc", "1.x.y", "|", "1.2.3-01", "=", "1,,2",
    ];
    let version = |rng: &mut StdRng| {
        let mut v = String::new();
        if rng.random_ratio(1, 8) {
            v.push('v');
        }
        let parts = rng.random_range(1..=3);
        for i in 0..parts {
            if i > 0 {
                v.push('.');
            }
            v.push_str(NUMBERS.choose(rng).expect("non-empty"));
        }
        if rng.random_ratio(1, 4) {
            v.push('-');
            v.push_str(PRERELEASES.choose(rng).expect("non-empty"));
        }
        if rng.random_ratio(1, 10) {
            v.push_str("+b1");
        }
        v
    };
    let mut groups = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        let mut items = Vec::new();
        for _ in 0..rng.random_range(1..=3) {
            let item = match rng.random_range(0..60) {
                0 => BAD.choose(rng).expect("non-empty").to_string(),
                1 | 2 => format!("{} - {}", version(rng), version(rng)),
                _ => {
                    let op = OPS.choose(rng).expect("non-empty");
                    let space = if rng.random_ratio(1, 5) { " " } else { "" };
                    format!("{op}{space}{}", version(rng))
                }
            };
            items.push(item);
        }
        let mut group = String::new();
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                group.push_str([" ", ", ", ",", "  "].choose(rng).expect("non-empty"));
            }
            group.push_str(item);
        }
        groups.push(group);
    }
    groups.join([" || ", "||", " ||"].choose(rng).expect("non-empty"))
}

fn oracle() -> &'static Path {
    static ORACLE: OnceLock<PathBuf> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let harness = root.join("tests/oracle/masterminds-semver");
        let out = root.join("target/mm-oracle");
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let stale = match modified(&out) {
            None => true,
            Some(built) => ["main.go", "build.sh"]
                .iter()
                .any(|f| modified(&harness.join(f)).is_none_or(|m| m > built)),
        };
        if stale {
            // Built under a temporary name and renamed, so concurrent test
            // binaries never run a half-written file.
            let tmp = root.join(format!("target/mm-oracle.tmp{}", std::process::id()));
            let status = Command::new("bash")
                .arg(harness.join("build.sh"))
                .arg(&tmp)
                .status()
                .expect("run tests/oracle/masterminds-semver/build.sh (needs bash)");
            assert!(
                status.success(),
                "building the oracle failed; it needs golang-go and golang-github-masterminds-semver-dev \
                 (apt-get install -y golang-go golang-github-masterminds-semver-dev)"
            );
            std::fs::rename(&tmp, &out).expect("move the oracle into place");
        }
        out
    })
}

/// Runs the oracle with `args`, feeding `input`; returns stdout lines.
fn run_oracle(args: &[&str], input: &str) -> Vec<String> {
    let mut child = Command::new(oracle())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the oracle");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("oracle output");
    match writer.join().expect("writer thread") {
        // The oracle exits without reading its input when the range is invalid.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.expect("write tags to the oracle"),
    }
    String::from_utf8(output.stdout)
        .expect("utf-8 from the oracle")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What crowsnest makes of a range against tags, in one dialect.
struct Ours {
    error: bool,
    each: Vec<String>,
    selected: String,
}

fn ours(range: &str, tags: &[String], dialect: Dialect) -> Ours {
    let Ok(parsed) = Range::parse_dialect(range, dialect) else {
        return Ours {
            error: true,
            each: Vec::new(),
            selected: String::new(),
        };
    };
    let each = tags
        .iter()
        .map(|t| match semver::parse_tag(t) {
            Err(_) => "invalid".to_owned(),
            Ok(v) => parsed.matches(&v).to_string(),
        })
        .collect();
    let rule = Rule::Semver(parsed);
    let none = Exclusions::none();
    let selector = Selector {
        rule: &rule,
        filter: None,
        exclusions: &none,
    };
    let selected = selector
        .select(tags)
        .map(|i| tags[i].clone())
        .unwrap_or_default();
    Ours {
        error: false,
        each,
        selected,
    }
}

#[derive(Default)]
struct Report {
    ranges: usize,
    invalid: usize,
    tag_checks: usize,
    flux_differences: Vec<String>,
    categories: [usize; 2],
}

fn differential(range: &str, tags: &[String], report: &mut Report) {
    let input = tags.join("\n") + "\n";
    let selection = run_oracle(&[range], &input);
    let each = run_oracle(&["-each", range], &input);
    let oracle_error = selection.first().is_some_and(|l| l.starts_with("ERR "));
    assert_eq!(
        oracle_error,
        each.first().is_some_and(|l| l.starts_with("ERR ")),
        "{range:?}: the oracle's modes disagree"
    );
    report.ranges += 1;
    report.invalid += usize::from(oracle_error);

    // Claim 1: the 3.2 dialect is the oracle.
    let old = ours(range, tags, Dialect::Masterminds3_2);
    assert_eq!(
        old.error, oracle_error,
        "range {range:?}: oracle says {selection:?}, crowsnest(3.2) error={}",
        old.error
    );
    if !oracle_error {
        assert_eq!(each.len(), tags.len(), "{range:?}: one oracle line per tag");
        for ((tag, theirs), mine) in tags.iter().zip(&each).zip(&old.each) {
            assert_eq!(theirs, mine, "range {range:?}, tag {tag:?}");
        }
        report.tag_checks += tags.len();
        let oracle_pick = selection.first().cloned().unwrap_or_default();
        assert_eq!(
            oracle_pick, old.selected,
            "range {range:?}: oracle picks {oracle_pick:?}, crowsnest(3.2) {:?}",
            old.selected
        );
    }

    // Claim 2: the Flux dialect differs only where DELIBERATE says.
    let flux = ours(range, tags, Dialect::Flux);
    if flux.error != oracle_error {
        assert!(
            oracle_error && range.contains(" - ") && !flux.error,
            "range {range:?}: validity differs without a hyphen range (oracle error={oracle_error})"
        );
        report.categories[1] += 1;
        report
            .flux_differences
            .push(format!("{}: {range:?} parses", DELIBERATE[1].0));
        return;
    }
    if flux.error {
        return;
    }
    // A hyphen range followed by more text is rewritten differently; any
    // other difference must be about a prerelease version.
    let hyphen = range.contains(" - ");
    let mut differs = false;
    for ((tag, theirs), mine) in tags.iter().zip(&each).zip(&flux.each) {
        if theirs != mine {
            let version = semver::parse_tag(tag).expect("a verdict other than invalid");
            assert!(
                hyphen || !version.pre.is_empty(),
                "range {range:?}, tag {tag:?}: a release version differs (oracle {theirs}, flux {mine})"
            );
            differs = true;
        }
    }
    let oracle_pick = selection.first().cloned().unwrap_or_default();
    if oracle_pick != flux.selected || differs {
        assert!(
            differs,
            "range {range:?}: picks differ ({oracle_pick:?} vs {:?}) with identical verdicts",
            flux.selected
        );
        let category = if hyphen && !has_prerelease_verdict_difference(tags, &each, &flux.each) {
            1
        } else {
            0
        };
        report.categories[category] += 1;
        report.flux_differences.push(format!(
            "{}: {range:?} (oracle picks {oracle_pick:?}, crowsnest {:?})",
            DELIBERATE[category].0, flux.selected
        ));
    }
}

/// Whether the verdicts differ on some prerelease tag.
fn has_prerelease_verdict_difference(tags: &[String], theirs: &[String], ours: &[String]) -> bool {
    tags.iter()
        .zip(theirs.iter().zip(ours))
        .any(|(tag, (a, b))| a != b && semver::parse_tag(tag).is_ok_and(|v| !v.pre.is_empty()))
}

#[test]
fn masterminds_semver_agrees_with_the_go_library() {
    let started = Instant::now();
    let seed = std::env::var("CROWSNEST_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let mut rng = StdRng::seed_from_u64(seed);
    let generated: Vec<String> = (0..260).map(|_| random_range(&mut rng)).collect();
    let mut report = Report::default();
    let ranges = HAND_PICKED.iter().map(|r| r.to_string()).chain(generated);
    for range in ranges {
        let mut tags: Vec<String> = (0..160).map(|_| random_tag(&mut rng)).collect();
        // Versions the hand-picked ranges talk about, so they decide something.
        for fixed in [
            "1.2.3",
            "1.2.4-beta",
            "1.5.0-rc.1",
            "2.0.0",
            "0.0.0",
            "0.0.3",
            "11.1.0",
        ] {
            tags.push(fixed.to_owned());
        }
        differential(&range, &tags, &mut report);
    }
    eprintln!(
        "seed {seed}: {} ranges ({} invalid), {} tag checks, {} Flux-vs-3.2.0 differences in {:.1?}",
        report.ranges,
        report.invalid,
        report.tag_checks,
        report.flux_differences.len(),
        started.elapsed()
    );
    for (name, _) in DELIBERATE {
        let mut lines = report
            .flux_differences
            .iter()
            .filter(|l| l.starts_with(name));
        for line in lines.by_ref().take(4) {
            eprintln!("  deliberate: {line}");
        }
        let more = lines.count();
        if more > 0 {
            eprintln!("  deliberate: {name}: {more} more");
        }
    }
    assert!(report.ranges >= 300, "at least 300 ranges");
    for (count, (name, reason)) in report.categories.iter().zip(DELIBERATE) {
        assert!(
            *count > 0,
            "the deliberate difference {name} never occurred; the ranges no longer exercise it ({reason})"
        );
    }
}

#[test]
fn version_precedence_agrees_with_the_go_library() {
    let mut rng = StdRng::seed_from_u64(DEFAULT_SEED ^ 1);
    let pairs: Vec<(String, String)> = (0..4000)
        .map(|_| (random_tag(&mut rng), random_tag(&mut rng)))
        .collect();
    let input: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    let answers = run_oracle(&["-compare"], &input);
    assert_eq!(answers.len(), pairs.len());
    let mut compared = 0;
    for ((a, b), theirs) in pairs.iter().zip(&answers) {
        let mine = match (semver::parse_tag(a), semver::parse_tag(b)) {
            (Ok(x), Ok(y)) => {
                compared += 1;
                (semver::compare(&x, &y) as i8).to_string()
            }
            _ => "invalid".to_owned(),
        };
        assert_eq!(theirs, &mine, "{a} vs {b}");
    }
    assert!(compared > 1000, "enough valid pairs ({compared})");
}
