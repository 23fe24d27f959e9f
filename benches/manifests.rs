//! Micro-benchmarks of the manifests module on the fixture corpus: the
//! fast path, the marker scan, target resolution and the verified patch.
//! The whole-repository comparison with grep is `benches/manifests_tree.rs`
//! (run by `scripts/bench-manifests`).

#[path = "../tests/manifests_common/mod.rs"]
mod manifests_common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crowsnest::manifests;
use crowsnest::model::{Field, Located, PolicyId, Position, Target, TargetPath};
use manifests_common::{edits_for, read_fixture};

fn benches(c: &mut Criterion) {
    let deployment = read_fixture("deployment.yaml");
    let values = read_fixture("values-repository-tag.yaml");
    let unmarked = deployment.replace("\"$imagepolicy\"", "\"$other\"");

    let mut group = c.benchmark_group("manifests");
    group.throughput(Throughput::Bytes(deployment.len() as u64));
    group.bench_function("may_contain_markers/unmarked deployment", |b| {
        b.iter(|| manifests::may_contain_markers(black_box(unmarked.as_bytes())))
    });
    group.bench_function("find_markers/deployment", |b| {
        b.iter(|| manifests::find_markers("deployment.yaml", black_box(&deployment)))
    });
    let setters = manifests::find_markers("deployment.yaml", &deployment).expect("fixture");
    let edits = edits_for(&setters);
    group.bench_function("patch/deployment, 3 edits", |b| {
        b.iter(|| manifests::patch("deployment.yaml", black_box(&deployment), &edits))
    });
    let target = Target {
        file: "values.yaml".into(),
        path: TargetPath::parse("image.tag").expect("path"),
        field: Field::Tag,
        declared_at: Located::new("p.yaml", Position::new(1, 1)),
    };
    let policy = PolicyId::new("apps", "podinfo");
    group.bench_function("resolve_target/values image.tag", |b| {
        b.iter(|| manifests::resolve_target("values.yaml", black_box(&values), &policy, &target))
    });
    group.finish();
}

criterion_group!(manifests_benches, benches);
criterion_main!(manifests_benches);
