//! Every common image shape, one fixture each (tests/fixtures/manifests):
//! the markers found, the patch's diff (snapshot), and that the diff
//! touches exactly the marked lines.

mod manifests_common;

use crowsnest::manifests::{self, Edit, Setter};
use crowsnest::model::{Field, Located, PolicyId, Position, Target, TargetPath};
use manifests_common::*;

/// Finds the markers of fixture `name`, checks they are `want`, patches
/// every one to its next value and returns the unified diff.
fn shape(name: &str, want: &[(&str, Field, &str)]) -> String {
    let text = read_fixture(name);
    assert!(manifests::is_manifest_path(name), "{name}");
    assert!(manifests::may_contain_markers(text.as_bytes()), "{name}");
    let setters = manifests::find_markers(name, &text).unwrap();
    let got: Vec<(String, Field, String)> = setters
        .iter()
        .map(|s| (s.policy.to_string(), s.field, s.value.clone()))
        .collect();
    let want: Vec<(String, Field, String)> = want
        .iter()
        .map(|(p, f, v)| (p.to_string(), *f, v.to_string()))
        .collect();
    assert_eq!(got, want, "markers of {name}");
    patched_diff(name, &text, &setters, &edits_for(&setters))
}

/// Patches, checks the guarantees and that exactly the setters' lines
/// changed, and that patching again is a no-op.
fn patched_diff(name: &str, text: &str, setters: &[Setter], edits: &[Edit]) -> String {
    let out = manifests::patch(name, text, edits).unwrap();
    check_guarantees(name, text, edits, &out).unwrap();
    let mut lines: Vec<usize> = setters
        .iter()
        .zip(edits)
        .filter(|(s, e)| s.value != e.value)
        .map(|(s, _)| s.at.line as usize)
        .collect();
    lines.dedup();
    assert_eq!(changed_lines(text, &out), lines, "changed lines of {name}");
    assert_eq!(
        manifests::patch(name, &out, &retarget(&out, edits)).unwrap(),
        out
    );
    similar::TextDiff::from_lines(text, &out)
        .unified_diff()
        .context_radius(1)
        .header(name, name)
        .to_string()
        .replace('\r', "\u{240d}")
}

/// The same edits against the patched text (spans moved by earlier edits).
fn retarget(out: &str, edits: &[Edit]) -> Vec<Edit> {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| e.span.start);
    let scalars = manifests::scalars("x", out).unwrap();
    let mut shift: isize = 0;
    let mut result = Vec::new();
    for edit in sorted {
        let start = edit.span.start.checked_add_signed(shift).unwrap();
        let scalar = scalars.iter().find(|s| s.span.start == start).unwrap();
        shift += scalar.span.len() as isize - edit.span.len() as isize;
        result.push(Edit {
            span: scalar.span.clone(),
            value: edit.value.clone(),
        });
    }
    result
}

const PODINFO: &str = "ghcr.io/stefanprodan/podinfo:6.1.0";
const NGINX: &str = "docker.io/library/nginx:1.25.3";

#[test]
fn deployment_containers_and_init_containers() {
    let p = ("apps:podinfo", Field::Image, PODINFO);
    let diff = shape(
        "deployment.yaml",
        &[p, p, ("apps:nginx", Field::Image, NGINX)],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn statefulset_containers_and_init_containers() {
    let diff = shape(
        "statefulset.yaml",
        &[
            (
                "data:busybox",
                Field::Image,
                "docker.io/library/busybox:1.36.0",
            ),
            ("data:redis", Field::Image, "docker.io/library/redis:7.2.3"),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn daemonset_containers_and_init_containers() {
    let diff = shape(
        "daemonset.yaml",
        &[
            (
                "data:busybox",
                Field::Image,
                "docker.io/library/busybox:1.36.0",
            ),
            (
                "monitoring:node-exporter",
                Field::Image,
                "quay.io/prometheus/node-exporter:v1.7.0",
            ),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn job_containers_and_init_containers() {
    let diff = shape(
        "job.yaml",
        &[("apps:busybox", Field::Image, "busybox:1.36.0")],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn cronjob_containers_and_init_containers() {
    let diff = shape(
        "cronjob.yaml",
        &[
            ("batch:fetcher", Field::Image, "ghcr.io/acme/fetcher:0.9.1"),
            ("batch:report", Field::Image, "ghcr.io/acme/report:1.4.2"),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn pod_with_a_flow_mapping_init_container() {
    let a = ("tools:alpine", Field::Image, "alpine:3.18.4");
    let diff = shape("pod.yaml", &[a, a]);
    insta::assert_snapshot!(diff);
}

#[test]
fn kustomization_images_new_name_new_tag_digest() {
    let diff = shape(
        "kustomization.yaml",
        &[
            ("apps:podinfo", Field::Name, "ghcr.io/stefanprodan/podinfo"),
            ("apps:podinfo", Field::Tag, "6.1.0"),
            ("apps:nginx", Field::Tag, "1.25.3"),
            (
                "apps:nginx",
                Field::Digest,
                "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn file_named_kustomization() {
    let diff = shape("Kustomization", &[("apps:podinfo", Field::Tag, "6.1.0")]);
    insta::assert_snapshot!(diff);
}

#[test]
fn helm_values_repository_and_tag() {
    let diff = shape(
        "values-repository-tag.yaml",
        &[
            ("apps:podinfo", Field::Name, "ghcr.io/stefanprodan/podinfo"),
            ("apps:podinfo", Field::Tag, "6.1.0"),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn helm_values_registry_repository_and_tag() {
    let diff = shape(
        "values-registry-repository-tag.yaml",
        &[
            ("data:bitnami-redis", Field::Tag, "7.2.3-debian-11-r0"),
            ("data:bitnami-sentinel", Field::Tag, "7.2.3-debian-11-r0"),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn helmrelease_spec_values() {
    let diff = shape(
        "helmrelease.yaml",
        &[
            ("apps:podinfo", Field::Name, "ghcr.io/stefanprodan/podinfo"),
            ("apps:podinfo", Field::Tag, "6.1.0"),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn argocd_application_helm_parameters() {
    let diff = shape(
        "argocd-application.yaml",
        &[
            ("apps:podinfo", Field::Name, "ghcr.io/stefanprodan/podinfo"),
            ("apps:podinfo", Field::Tag, "6.1.0"),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn plain_image_lists_block_and_flow() {
    let p = ("apps:podinfo", Field::Image, PODINFO);
    let diff = shape(
        "image-list.yaml",
        &[p, ("apps:nginx", Field::Image, NGINX), p],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn flow_mappings() {
    let diff = shape(
        "flow-mappings.yaml",
        &[
            ("apps:podinfo", Field::Image, PODINFO),
            ("apps:nginx", Field::Image, NGINX),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn every_document_of_a_multi_document_file() {
    let n = ("apps:nginx", Field::Image, NGINX);
    let diff = shape("multi-document.yaml", &[n, n]);
    insta::assert_snapshot!(diff);
}

#[test]
fn kyaml_long_ref_markers() {
    let diff = shape(
        "long-ref.yaml",
        &[
            ("apps:podinfo", Field::Image, PODINFO),
            ("apps:podinfo", Field::Tag, "6.1.0"),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn quoting_styles_and_values_yaml_would_misread() {
    let diff = shape(
        "quoting.yaml",
        &[
            ("q:plain", Field::Tag, "1.0.0"),
            ("q:single", Field::Tag, "1.0.0"),
            ("q:double", Field::Tag, "1.0.0"),
            ("q:tagged", Field::Tag, "1.0.0"),
            ("q:escaped", Field::Tag, "caf\u{e9}\t1"),
            ("q:anchored", Field::Tag, "1.0.0"),
        ],
    );
    insta::assert_snapshot!(diff);
}

#[test]
fn crlf_bom_tabs_unicode_and_no_final_newline() {
    let text = read_fixture("crlf-bom.yaml");
    assert!(text.starts_with('\u{feff}') && text.contains("\r\n") && !text.ends_with('\n'));
    let diff = shape(
        "crlf-bom.yaml",
        &[
            ("apps:podinfo", Field::Image, PODINFO),
            ("apps:nginx", Field::Image, NGINX),
        ],
    );
    insta::assert_snapshot!(diff);
}

fn target(file: &str, path: &str, field: Field) -> Target {
    Target {
        file: file.into(),
        path: TargetPath::parse(path).unwrap(),
        field,
        declared_at: Located::new("policies/p.yaml", Position::new(1, 1)),
    }
}

/// Marker-less targets name the same scalars the markers sit on.
#[test]
fn targets_resolve_to_the_marked_scalars() {
    let cases = [
        ("values-repository-tag.yaml", "image.tag", Field::Tag),
        (
            "values-repository-tag.yaml",
            "image.repository",
            Field::Name,
        ),
        (
            "values-registry-repository-tag.yaml",
            "sentinel.image.tag",
            Field::Tag,
        ),
        (
            "kustomization.yaml",
            "images[name=podinfo].newTag",
            Field::Tag,
        ),
        ("kustomization.yaml", "images[1].digest", Field::Digest),
        ("helmrelease.yaml", "spec.values.image.tag", Field::Tag),
        (
            "argocd-application.yaml",
            "spec.source.helm.parameters[name=image.tag].value",
            Field::Tag,
        ),
        (
            "deployment.yaml",
            "spec.template.spec.containers[name=sidecar].image",
            Field::Image,
        ),
        (
            "deployment.yaml",
            "spec.template.spec.initContainers[0].image",
            Field::Image,
        ),
        (
            "statefulset.yaml",
            "spec.template.spec.containers[name=redis].image",
            Field::Image,
        ),
        (
            "cronjob.yaml",
            "spec.jobTemplate.spec.template.spec.containers[0].image",
            Field::Image,
        ),
        (
            "flow-mappings.yaml",
            "spec.containers[name=proxy].image",
            Field::Image,
        ),
        ("image-list.yaml", "prepull[1]", Field::Image),
        (
            "crlf-bom.yaml",
            "spec.template.spec.containers[name=side].image",
            Field::Image,
        ),
    ];
    for (file, path, field) in cases {
        let text = read_fixture(file);
        let markers = manifests::find_markers(file, &text).unwrap();
        let marked = markers.iter().find(|m| m.field == field);
        let policy = PolicyId::new("t", "t");
        let got = manifests::resolve_target(file, &text, &policy, &target(file, path, field))
            .unwrap_or_else(|e| panic!("{file} {path}: {e}"));
        assert!(
            markers.iter().any(|m| m.span == got.span),
            "{file} {path} resolved to {:?}, not a marked scalar (first marked: {marked:?})",
            &text[got.span.clone()]
        );
        assert_eq!((got.policy, got.field), (policy, field));
    }
}

/// A target on an unmarked scalar: the Job's migrator container and the
/// Deployment in a multi-document file.
#[test]
fn targets_patch_unmarked_scalars() {
    let cases = [
        (
            "job.yaml",
            "spec.template.spec.containers[name=migrate].image",
            "ghcr.io/acme/migrator:2024.02.01-1",
        ),
        (
            "multi-document.yaml",
            "spec.template.spec.containers[0].image",
            "docker.io/library/nginx:1.26.0",
        ),
        (
            "daemonset.yaml",
            "spec.template.spec.containers[1].image",
            "quay.io/brancz/kube-rbac-proxy:v0.16.0",
        ),
    ];
    for (file, path, value) in cases {
        let text = read_fixture(file);
        let setter = manifests::resolve_target(
            file,
            &text,
            &PolicyId::new("t", "t"),
            &target(file, path, Field::Image),
        )
        .unwrap_or_else(|e| panic!("{file} {path}: {e}"));
        let edits = [Edit {
            span: setter.span.clone(),
            value: value.into(),
        }];
        patched_diff(file, &text, std::slice::from_ref(&setter), &edits);
    }
}

/// Every fixture has markers and passes the fast path; with the marker
/// keys renamed, none passes it and a full scan finds nothing either.
#[test]
fn fast_path_agrees_with_the_full_scan() {
    for name in fixture_names() {
        let text = read_fixture(&name);
        assert!(manifests::may_contain_markers(text.as_bytes()), "{name}");
        assert!(
            !manifests::find_markers(&name, &text).unwrap().is_empty(),
            "{name}"
        );
        let renamed = text
            .replace("\"$imagepolicy\"", "\"$otherpolicy\"")
            .replace("io.k8s.cli.setters.", "io.k8s.cli.other.");
        assert!(
            !manifests::may_contain_markers(renamed.as_bytes()),
            "{name}"
        );
        assert_eq!(
            manifests::find_markers(&name, &renamed).unwrap(),
            vec![],
            "{name}"
        );
    }
}
