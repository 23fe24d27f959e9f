//! The promotion figures of `scripts/bench-promote`, in process:
//!
//! `bench_promote REPO NS:NAME` reads the first-parent history of `main`
//! in REPO for the source policy NS:NAME (markers anywhere) three ways and
//! prints one JSON object:
//! - `first_ms`: a timeline from nothing (a daemon's first pass);
//! - `incremental_ms`: from the timeline at `main~10` to `main` (a pass
//!   after ten new commits on the source branch);
//! - `steady_us`: the median over 1,000 runs of what a pass with a
//!   promotion does beyond one without once nothing moved: the read at an
//!   unchanged tip plus the decision.

use std::time::{Duration, Instant};

use crowsnest::model::{Located, PolicyId, Position};
use crowsnest::policy::{Exclusions, Promote, Range, Rule, Selector};
use crowsnest::promote::{Timeline, decide};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo, policy] = &args[..] else {
        eprintln!("usage: bench_promote REPO NS:NAME");
        std::process::exit(2);
    };
    let (ns, name) = policy.split_once(':').expect("NS:NAME");
    let policy = PolicyId::new(ns, name);
    let repo = git2::Repository::open(repo).expect("a repository");
    let tip = repo.revparse_single("main").unwrap().id();
    let back = repo.revparse_single("main~10").unwrap().id();

    let started = Instant::now();
    let full = Timeline::default()
        .read(&repo, tip, &policy, "", &[])
        .unwrap();
    let first = started.elapsed();

    let earlier = Timeline::default()
        .read(&repo, back, &policy, "", &[])
        .unwrap();
    let started = Instant::now();
    let grown = earlier.read(&repo, tip, &policy, "", &[]).unwrap();
    let incremental = started.elapsed();
    assert_eq!(grown.commits_read, 10);
    assert_eq!(grown.holdings, full.holdings);

    let rule = Rule::Semver(Range::parse(">=1.0.0").unwrap());
    let exclusions = Exclusions::default();
    let selector = Selector {
        rule: &rule,
        filter: None,
        exclusions: &exclusions,
    };
    let promote = Promote {
        from: policy.clone(),
        repository: None,
        soak: Duration::from_secs(3600),
        rollback_blocks: true,
        require_signed: false,
        from_at: Located::new("policies/production.yaml", Position::new(9, 11)),
        repository_at: None,
        require_signed_at: None,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut timeline = full;
    let mut samples = Vec::with_capacity(1000);
    let mut picked = None;
    for _ in 0..1000 {
        let started = Instant::now();
        timeline = timeline.read(&repo, tip, &policy, "", &[]).unwrap();
        let decision = decide(&timeline, &promote, &selector, None, now);
        samples.push(started.elapsed());
        picked = decision.picked().map(|c| c.value.clone());
    }
    samples.sort();
    println!(
        "{{\"first_ms\": {:.1}, \"incremental_ms\": {:.3}, \"steady_us\": {:.1}, \"periods\": {}, \"picked\": {:?}}}",
        first.as_secs_f64() * 1000.0,
        incremental.as_secs_f64() * 1000.0,
        samples[samples.len() / 2].as_secs_f64() * 1e6,
        timeline.holdings.len(),
        picked.unwrap_or_default()
    );
}
