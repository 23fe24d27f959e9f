use std::collections::BTreeMap;

use super::*;

/// Files in memory; a path ending in `@` is a symlink (never read).
struct Mem(BTreeMap<String, Vec<u8>>);

impl Mem {
    fn new(files: &[(&str, &str)]) -> Mem {
        Mem(files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect())
    }
}

impl FileSource for Mem {
    fn list(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        Ok(self
            .0
            .keys()
            .filter(|p| p.starts_with(&prefix))
            .cloned()
            .collect())
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.0.get(path).cloned())
    }
}

const POLICY: &str = "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n  image: ghcr.io/org/app\n  policy:\n    semver:\n      range: '>=1.0.0'\n";

fn build(files: &[(&str, &str)]) -> (Inventory, Vec<String>) {
    let (inventory, findings) = Inventory::build(&Mem::new(files), "policies", "").unwrap();
    (inventory, findings.iter().map(|f| f.to_string()).collect())
}

#[test]
fn markers_and_targets_are_collected_per_file() {
    let policy_with_target = format!(
        "{POLICY}  targets:\n    - file: charts/values.yaml\n      path: image.tag\n      field: tag\n"
    );
    let (inventory, findings) = build(&[
        ("policies/app.yaml", &policy_with_target),
        (
            "apps/deploy.yaml",
            "image: ghcr.io/org/app:1.0.0 # {\"$imagepolicy\": \"default:app\"}\n",
        ),
        ("apps/plain.yaml", "image: ghcr.io/org/other:1.0.0\n"),
        ("charts/values.yaml", "image:\n  tag: 1.0.0\n"),
    ]);
    assert_eq!(findings, Vec::<String>::new());
    assert_eq!(inventory.files.len(), 2);
    assert_eq!(inventory.files["apps/deploy.yaml"].setters.len(), 1);
    assert_eq!(
        inventory.files["charts/values.yaml"].setters[0].value,
        "1.0.0"
    );
    assert_eq!(inventory.used_policies().len(), 1);
}

#[test]
fn every_problem_is_a_finding_with_its_place() {
    let (_, findings) = build(&[
        ("policies/app.yaml", POLICY),
        ("policies/again.yaml", POLICY),
        (
            "policies/broken.yaml",
            "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata: {name: x}\nspec:\n  image: ghcr.io/org/x\n  policy: {semver: {range: '>=>1'}}\n",
        ),
        (
            "apps/typo.yaml",
            "a: 1\nimage: x:1 # {\"$imagepolicy\": \"default:nope\"}\n",
        ),
        (
            "apps/binary.yaml",
            "\u{0}# {\"$imagepolicy\": \"default:app\"}\n",
        ),
    ]);
    let joined = findings.join("\n");
    assert!(
        joined.contains(
            "policies/app.yaml:1:1: policy default:app is already declared at policies/again.yaml:1:1"
        ),
        "{joined}"
    );
    assert!(joined.contains("policies/broken.yaml:6:"), "{joined}");
    assert!(
        joined.contains(
            "apps/typo.yaml:2:8: marker names policy default:nope, which no policy file declares; the value is left as it is"
        ),
        "{joined}"
    );
    assert!(joined.contains("apps/binary.yaml:"), "{joined}");
}

#[test]
fn targets_that_resolve_to_nothing_are_findings() {
    let policy = format!(
        "{POLICY}  targets:\n    - file: missing.yaml\n      path: image\n    - file: values.yaml\n      path: image.nope\n"
    );
    let outside = POLICY.replace("name: app", "name: out")
        + "  targets:\n    - file: ../outside.yaml\n      path: image\n";
    let (_, findings) = build(&[
        ("policies/app.yaml", &policy),
        ("policies/out.yaml", &outside),
        ("values.yaml", "image:\n  tag: 1\n"),
    ]);
    let joined = findings.join("\n");
    assert!(
        joined.contains("target file missing.yaml does not exist"),
        "{joined}"
    );
    assert!(
        joined.contains("target image.nope in values.yaml"),
        "{joined}"
    );
    assert!(
        joined.contains(
            "policies/out.yaml:11:13: targets[].file \"../outside.yaml\" must stay inside the repository"
        ),
        "{joined}"
    );
}

#[test]
fn dir_source_never_follows_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("apps")).unwrap();
    std::fs::write(root.join("apps/real.yaml"), "a: 1\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("apps/passwd.yaml")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/config.yaml"), "x: 1\n").unwrap();
    let source = DirSource::new(root);
    assert_eq!(source.list("").unwrap(), ["apps/real.yaml"]);
    assert_eq!(source.read("apps/passwd.yaml").unwrap(), None);
    assert_eq!(source.read("etc/passwd").unwrap(), None);
    assert_eq!(source.read("../etc/passwd").unwrap(), None);
    assert_eq!(
        source.read("apps/real.yaml").unwrap(),
        Some(b"a: 1\n".to_vec())
    );
}

#[test]
fn dir_source_stops_one_byte_past_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("huge.yaml")).unwrap();
    // Sparse: a 1 GiB file costs no disk.
    file.set_len(1 << 30).unwrap();
    std::fs::write(
        dir.path().join("limit.yaml"),
        vec![b'#'; MAX_MANIFEST_BYTES],
    )
    .unwrap();
    let source = DirSource::new(dir.path());
    let huge = source.read("huge.yaml").unwrap().unwrap();
    assert_eq!(huge.len(), MAX_MANIFEST_BYTES + 1);
    let mut findings = Vec::new();
    assert_eq!(
        text_of("huge.yaml", huge, &mut findings, FindingKind::Manifest),
        None
    );
    assert_eq!(findings.len(), 1);
    let limit = source.read("limit.yaml").unwrap().unwrap();
    assert!(text_of("limit.yaml", limit, &mut findings, FindingKind::Manifest).is_some());
    assert_eq!(findings.len(), 1);
}

#[test]
fn digest_setters_need_digest_reflection() {
    let (_, findings) = build(&[
        ("policies/app.yaml", POLICY),
        (
            "apps/kustomization.yaml",
            "images:\n  - name: app\n    digest: sha256:00 # {\"$imagepolicy\": \"default:app:digest\"}\n",
        ),
    ]);
    assert_eq!(
        findings,
        [
            "apps/kustomization.yaml:3:13: a digest setter needs digestReflectionPolicy IfNotPresent or Always on policy default:app; the value is left as it is"
        ]
    );
    let pinned = format!("{POLICY}  digestReflectionPolicy: IfNotPresent\n");
    let (inventory, findings) = build(&[
        ("policies/app.yaml", &pinned),
        (
            "apps/kustomization.yaml",
            "images:\n  - name: app\n    digest: sha256:00 # {\"$imagepolicy\": \"default:app:digest\"}\n",
        ),
    ]);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(inventory.files["apps/kustomization.yaml"].setters.len(), 1);
}

const FLUX_REPOSITORY: &str = "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\nmetadata:\n  name: podinfo\n  namespace: flux-system\nspec:\n  image: ghcr.io/stefanprodan/podinfo\n  interval: 5m\n  secretRef:\n    name: regcred\n";
const FLUX_POLICY: &str = "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo\n  namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: podinfo\n  policy:\n    semver:\n      range: 5.0.x\n";
const FLUX_AUTOMATION: &str = "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageUpdateAutomation\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 30m\n  update:\n    path: ./clusters/my-cluster\n";
const FLUX_DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n  template:\n    spec:\n      containers:\n        - image: ghcr.io/stefanprodan/podinfo:5.0.0 # {\"$imagepolicy\": \"flux-system:podinfo\"}\n";

#[test]
fn flux_objects_next_to_the_manifests_are_policies_and_the_automation_sets_the_path() {
    let files = [
        ("clusters/my-cluster/podinfo-registry.yaml", FLUX_REPOSITORY),
        ("clusters/my-cluster/podinfo-policy.yaml", FLUX_POLICY),
        (
            "clusters/my-cluster/flux-system-automation.yaml",
            FLUX_AUTOMATION,
        ),
        (
            "clusters/my-cluster/podinfo-deployment.yaml",
            FLUX_DEPLOYMENT,
        ),
        (
            "other/stale.yaml",
            "image: x:1 # {\"$imagepolicy\": \"flux-system:gone\"}\n",
        ),
    ];
    let source = Mem::new(&files);
    let options = Options {
        policies_dir: "clusters/my-cluster",
        scan_dir: "",
        automation_path: true,
        ..Options::default()
    };
    let (inventory, findings) = Inventory::build_with(&source, &options).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(inventory.scan_dir, "clusters/my-cluster");
    let id = PolicyId::new("flux-system", "podinfo");
    assert_eq!(
        inventory.policies[&id].image.written,
        "ghcr.io/stefanprodan/podinfo"
    );
    assert_eq!(
        inventory.files["clusters/my-cluster/podinfo-deployment.yaml"].setters[0].policy,
        id
    );
    assert_eq!(
        inventory
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>(),
        [
            "clusters/my-cluster/podinfo-registry.yaml:10:5: spec.secretRef needs a Kubernetes cluster and is ignored; set registries.hosts[].username and passwordFile, or registries.dockerConfig, in the crowsnest config"
        ]
    );

    // With git.path set in the config, the automation's path is not used
    // and the stale marker outside it is found.
    let (_, findings) = Inventory::build_with(
        &source,
        &Options {
            automation_path: false,
            ..options
        },
    )
    .unwrap();
    assert_eq!(
        findings.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        [
            "other/stale.yaml:1:8: marker names policy flux-system:gone, which no policy file declares; the value is left as it is"
        ]
    );
}

#[test]
fn flux_objects_are_read_from_the_scan_path_only_when_asked() {
    let files = [
        ("policies/keep.yaml", POLICY),
        ("apps/registry.yaml", FLUX_REPOSITORY),
        ("apps/policy.yaml", FLUX_POLICY),
        ("apps/deployment.yaml", FLUX_DEPLOYMENT),
    ];
    let source = Mem::new(&files);
    let mut options = Options {
        policies_dir: "policies",
        scan_dir: "apps",
        ..Options::default()
    };
    let (_, findings) = Inventory::build_with(&source, &options).unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0]
            .message
            .contains("flux-system:podinfo, which no policy file declares")
    );
    options.flux_in_scan_dir = true;
    let (inventory, findings) = Inventory::build_with(&source, &options).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(inventory.policies.len(), 2);
    assert_eq!(inventory.files.len(), 1);
}

#[test]
fn suspended_flux_objects_leave_their_markers_alone() {
    let suspended_policy = format!("{FLUX_POLICY}  suspend: true\n");
    let files = [
        ("policies/registry.yaml", FLUX_REPOSITORY),
        ("policies/policy.yaml", suspended_policy.as_str()),
        ("apps/deployment.yaml", FLUX_DEPLOYMENT),
    ];
    let (inventory, findings) = Inventory::build(&Mem::new(&files), "policies", "").unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    assert!(inventory.files.is_empty());
    assert!(inventory.warnings.iter().any(|w| {
        w.message
            .contains("ImagePolicy flux-system:podinfo is suspended")
    }));

    let suspended_automation =
        FLUX_AUTOMATION.replace("  interval: 30m\n", "  interval: 30m\n  suspend: true\n");
    let files = [
        ("policies/registry.yaml", FLUX_REPOSITORY),
        ("policies/policy.yaml", FLUX_POLICY),
        ("policies/automation.yaml", suspended_automation.as_str()),
        ("apps/deployment.yaml", FLUX_DEPLOYMENT),
    ];
    let (inventory, findings) = Inventory::build(&Mem::new(&files), "policies", "").unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    assert!(inventory.files.is_empty());
    assert!(inventory.warnings.iter().any(|w| {
        w.message
            .contains("is suspended (spec.suspend: true): crowsnest changes nothing")
    }));
}

#[test]
fn markers_found_on_several_threads_come_back_in_file_order() {
    // Enough files for the parallel path (64 per thread), some broken.
    let files: Vec<(String, String)> = (0..300)
        .map(|i| {
            let path = format!("apps/app-{i:03}.yaml");
            let text = if i % 37 == 0 {
                "image: [unclosed # {\"$imagepolicy\": \"default:app\"}\n".to_owned()
            } else {
                format!(
                    "a: 1\nimage: r.example/app{i}:1.0.{i} # {{\"$imagepolicy\": \"default:app{i}\"}}\n"
                )
            };
            (path, text)
        })
        .collect();
    let sequential: Vec<_> = files
        .iter()
        .map(|(path, text)| manifests::scan_markers(path, text))
        .collect();
    let parallel = scan_markers_in_parallel(&files);
    assert_eq!(parallel, sequential);
    assert_eq!(parallel.iter().filter(|r| r.is_err()).count(), 9);
    assert_eq!(
        parallel[1].as_ref().unwrap().setters[0].policy.to_string(),
        "default:app1"
    );
}

/// Issue 15: one broken policy, marker or file froze the whole
/// repository. Each problem now holds back only what it touches, and is
/// reported with its place and what it holds back.
#[test]
fn r15_each_problem_holds_back_only_what_it_touches() {
    let good = POLICY;
    let bad_range = POLICY
        .replace("name: app", "name: broken")
        .replace(">=1.0.0", ">=1.0.0 <");
    let second_good = POLICY.replace("name: app", "name: other");
    let bad_regex = format!(
        "{}  filterTags:\n    pattern: '^(unclosed'\n",
        POLICY.replace("name: app", "name: regex")
    );
    let bad_extract = format!(
        "{}  filterTags:\n    pattern: '^v(?P<version>.*)$'\n    extract: '$nope'\n",
        POLICY.replace("name: app", "name: extract")
    );
    // A typo in another namespace must not disable `default:app`.
    let bad_namespace = POLICY.replace("name: app\n", "name: app\n  namespace: Prod!\n");
    let marker = |policy: &str| format!("# {{\"$imagepolicy\": \"default:{policy}\"}}");
    let files: [(&str, &str); 5] = [
        // One file: a good policy, one with a bad range, another good one.
        (
            "policies/apps.yaml",
            &format!("{good}---\n{bad_range}---\n{second_good}"),
        ),
        // Beside a good one: an invalid regex, a bad extract template, an
        // invalid namespace.
        (
            "policies/filters.yaml",
            &format!("{bad_regex}---\n{bad_extract}---\n{bad_namespace}"),
        ),
        ("policies/notes.yaml", "this: is: not: yaml\n"),
        (
            "apps/deploy.yaml",
            &format!(
                "# How to: write `image: x:1 {}` after a value.\nimage: ghcr.io/org/app:1.0.0 {}\nbroken: ghcr.io/org/app:1.0.0 {}\nmissing: ghcr.io/org/app:1.0.0 {}\nmalformed: ghcr.io/org/app:1.0.0 # {{\"$imagepolicy\": \"default:app\"\nother: ghcr.io/org/app:1.0.0 {}\nplain: ghcr.io/org/app:1.0.0 # $imagepolicy: default:other\nregex: ghcr.io/org/app:1.0.0 {}\nextract: ghcr.io/org/app:1.0.0 {}\n",
                marker("app"),
                marker("app"),
                marker("broken"),
                marker("missing"),
                marker("other"),
                marker("regex"),
                marker("extract")
            ),
        ),
        (
            "apps/not-yaml.yaml",
            &format!("image: [unclosed {}\n", marker("app")),
        ),
    ];
    let (inventory, findings) = Inventory::build(&Mem::new(&files), "policies", "").unwrap();
    let ids: Vec<String> = inventory.policies.keys().map(|p| p.to_string()).collect();
    assert_eq!(ids, ["default:app", "default:other"]);
    assert_eq!(
        inventory
            .disabled
            .keys()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
        ["default:broken", "default:extract", "default:regex"]
    );
    let setters: Vec<(String, u32)> = inventory.files["apps/deploy.yaml"]
        .setters
        .iter()
        .map(|s| (s.policy.to_string(), s.at.line))
        .collect();
    assert_eq!(
        setters,
        [("default:app".into(), 2), ("default:other".into(), 6)]
    );
    assert!(!inventory.files.contains_key("apps/not-yaml.yaml"));
    // Each with what it holds back: a file that is not YAML and a
    // malformed marker hold back the policies their text names.
    let expected: [(&str, &[&str]); 12] = [
        (
            "apps/deploy.yaml:3:9: marker names policy default:broken, which is disabled by the problem at policies/apps.yaml:19:14",
            &["default:broken"],
        ),
        (
            "apps/deploy.yaml:4:10: marker names policy default:missing, which no policy file declares (it may be in policies/filters.yaml, policies/notes.yaml, which cannot be read); the value is left as it is",
            &["default:missing"],
        ),
        (
            "apps/deploy.yaml:5:34: marker comment is not a JSON object",
            &["default:app"],
        ),
        (
            "apps/deploy.yaml:7:30: marker comment is not a JSON object",
            &["default:other"],
        ),
        (
            "apps/deploy.yaml:8:8: marker names policy default:regex, which is disabled by the problem at policies/filters.yaml:11:16",
            &["default:regex"],
        ),
        (
            "apps/deploy.yaml:9:10: marker names policy default:extract, which is disabled by the problem at policies/filters.yaml:24:14",
            &["default:extract"],
        ),
        ("apps/not-yaml.yaml:1:8: not valid YAML", &["default:app"]),
        (
            "policies/apps.yaml:19:14: invalid semver range",
            &["default:broken"],
        ),
        (
            "policies/filters.yaml:11:16: invalid filterTags.pattern \"^(unclosed\"",
            &["default:regex"],
        ),
        (
            "policies/filters.yaml:24:14: invalid filterTags.extract \"$nope\"",
            &["default:extract"],
        ),
        (
            "policies/filters.yaml:30:14: metadata.namespace \"Prod!\" is not a Kubernetes namespace",
            &[],
        ),
        ("policies/notes.yaml:1:", &[]),
    ];
    assert_eq!(findings.len(), expected.len(), "{findings:#?}");
    for (finding, (want, policies)) in findings.iter().zip(expected) {
        let text = finding.to_string();
        assert!(
            text.starts_with(want),
            "{text:?} should start with {want:?}"
        );
        let about: Vec<String> = finding.policies.iter().map(|p| p.to_string()).collect();
        assert_eq!(about, policies, "{text}");
    }
    assert!(
        findings[7]
            .to_string()
            .contains("(policy default:broken is disabled until this is fixed)")
    );
}

#[test]
fn a_policy_declared_twice_is_disabled_in_both_places() {
    let (inventory, findings) = build(&[
        ("policies/a.yaml", POLICY),
        ("policies/b.yaml", POLICY),
        (
            "apps/deploy.yaml",
            "image: ghcr.io/org/app:1.0.0 # {\"$imagepolicy\": \"default:app\"}\n",
        ),
    ]);
    assert!(inventory.policies.is_empty());
    assert!(inventory.files.is_empty());
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert!(findings[0].contains("marker names policy default:app, which is disabled"));
    assert!(findings[1].starts_with(
        "policies/b.yaml:1:1: policy default:app is already declared at policies/a.yaml:1:1; both are disabled"
    ));
}

#[test]
fn a_policy_document_that_is_not_yaml_keeps_its_neighbours() {
    let broken = "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: [unclosed\n";
    let (inventory, findings) = build(&[("policies/apps.yaml", &format!("{broken}---\n{POLICY}"))]);
    assert_eq!(inventory.policies.len(), 1);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(
        findings[0].starts_with("policies/apps.yaml:4:"),
        "{findings:?}"
    );
    let (inventory, _) = build(&[("policies/apps.yaml", &format!("{POLICY}---\n{broken}"))]);
    assert_eq!(inventory.policies.len(), 1);
}

/// A promotion policy `name` (default namespace) with `promote` keys.
fn promotion(name: &str, promote: &str) -> String {
    format!(
        "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: {name}\nspec:\n  image: ghcr.io/org/app\n  promote:\n{promote}"
    )
}

#[test]
fn promotions_that_cannot_read_their_source_are_findings_at_the_key() {
    let files = [
        ("policies/app.yaml", POLICY.to_owned()),
        ("policies/good.yaml", promotion("good", "    from: app\n")),
        // Promotes good, which promotes app: a chain, fine.
        ("policies/later.yaml", promotion("later", "    from: good\n")),
        ("policies/nowhere.yaml", promotion("nowhere", "    from: gone\n")),
        ("policies/itself.yaml", promotion("itself", "    from: itself\n")),
        ("policies/ping.yaml", promotion("ping", "    from: pong\n")),
        ("policies/pong.yaml", promotion("pong", "    from: ping\n")),
        // Its source is disabled, so it is too.
        ("policies/after.yaml", promotion("after", "    from: ping\n")),
        (
            "policies/elsewhere.yaml",
            promotion("elsewhere", "    from: app\n    repository: prod\n"),
        ),
        (
            "policies/other.yaml",
            promotion("other", "    from: x\n    repository: staging\n"),
        ),
        (
            "policies/signed.yaml",
            promotion("signed", "    from: app\n    requireSigned: true\n"),
        ),
        (
            "apps/deploy.yaml",
            "a: ghcr.io/org/app:1 # {\"$imagepolicy\": \"default:good\"}\nb: ghcr.io/org/app:1 # {\"$imagepolicy\": \"default:nowhere\"}\n".to_owned(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let source = Mem::new(&files);
    let entries = ["main", "staging"];
    let options = Options {
        policies_dir: "policies",
        sources: Some(Sources {
            entry: "main",
            entries: &entries,
            verify_keys: false,
        }),
        ..Options::default()
    };
    let (inventory, findings) = Inventory::build_with(&source, &options).unwrap();
    let findings: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        findings,
        [
            "apps/deploy.yaml:2:4: marker names policy default:nowhere, which is disabled by the problem at policies/nowhere.yaml:8:11; the value is left as it is",
            "policies/after.yaml:8:11: promote.from names policy default:ping, which is disabled by the problem at policies/ping.yaml:8:11 (policy default:after is disabled until this is fixed)",
            "policies/elsewhere.yaml:9:17: promote.repository \"prod\" is not an entry of the daemon config (it has: main, staging) (policy default:elsewhere is disabled until this is fixed)",
            "policies/itself.yaml:8:11: promote.from names default:itself itself: a policy cannot promote its own values (policy default:itself is disabled until this is fixed)",
            "policies/nowhere.yaml:8:11: promote.from names policy default:gone, which no policy file here declares (add promote.repository when it lives in another repositories entry) (policy default:nowhere is disabled until this is fixed)",
            "policies/ping.yaml:8:11: promote.from makes a cycle (default:ping -> default:pong -> default:ping): no policy in it chooses from the registry, so none has values to promote (policy default:ping is disabled until this is fixed)",
            "policies/pong.yaml:8:11: promote.from makes a cycle (default:pong -> default:ping -> default:pong): no policy in it chooses from the registry, so none has values to promote (policy default:pong is disabled until this is fixed)",
            "policies/signed.yaml:9:20: promote.requireSigned needs verifyKeys in the daemon config (the keys whose signatures count as Good) (policy default:signed is disabled until this is fixed)",
        ]
    );
    // The rest proceeds: the chain and the source in another entry.
    let kept: Vec<String> = inventory.policies.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        kept,
        [
            "default:app",
            "default:good",
            "default:later",
            "default:other"
        ]
    );
    assert_eq!(inventory.used_policies().len(), 1);
    // Without a config, only what the checkout itself shows is checked.
    let (_, findings) = Inventory::build_with(
        &source,
        &Options {
            sources: None,
            ..options
        },
    )
    .unwrap();
    assert_eq!(findings.len(), 6, "{findings:?}");
}

/// Review of issues 15 and 16: with `--shard`, every shard reported every
/// finding, so `crowsnest_findings` summed over shards counted each one N
/// times. A shard reports what holds back its own policies (repository
/// findings on shard 0); exactly one shard counts each finding.
#[test]
fn r16_shards_report_their_own_findings_and_count_each_once() {
    let names = ["a", "b", "c", "d", "e", "f"];
    let mut files: Vec<(String, String)> = names
        .iter()
        .map(|n| {
            (
                format!("apps/{n}.yaml"),
                format!("image: [unclosed # {{\"$imagepolicy\": \"default:{n}\"}}\n"),
            )
        })
        .collect();
    files.push((
        "apps/two.yaml".into(),
        "a: [x # {\"$imagepolicy\": \"default:a\"}\nb: y # {\"$imagepolicy\": \"default:f\"}\n"
            .into(),
    ));
    files.push(("policies/notes.yaml".into(), "not: [yaml\n".into()));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let (_, findings) = Inventory::build(&Mem::new(&files), "policies", "").unwrap();
    assert_eq!(findings.len(), 8, "{findings:#?}");
    let shards = [Shard { index: 0, count: 2 }, Shard { index: 1, count: 2 }];
    for finding in &findings {
        let counted = shards.iter().filter(|s| finding.counted_by(**s)).count();
        assert_eq!(counted, 1, "{finding}");
        for shard in shards {
            let owns_one = finding.policies.iter().any(|p| shard.owns(p));
            let expected = if finding.policies.is_empty() {
                shard.index == 0
            } else {
                owns_one
            };
            assert_eq!(finding.concerns(shard), expected, "{finding} on {shard}");
            assert!(!finding.counted_by(shard) || finding.concerns(shard));
        }
    }
    // The split is real: each shard drops some findings.
    for shard in shards {
        let kept = findings.iter().filter(|f| f.concerns(shard)).count();
        assert!(kept > 0 && kept < findings.len(), "{shard}: {kept}");
    }
    // A problem naming policies of both shards is reported on both.
    let two = findings
        .iter()
        .find(|f| f.at.file == "apps/two.yaml")
        .unwrap();
    let owners: Vec<u32> = two
        .policies
        .iter()
        .map(|p| shards.iter().find(|s| s.owns(p)).unwrap().index)
        .collect();
    assert_eq!(
        owners,
        [1, 0],
        "default:a and default:f are on different shards"
    );
    assert!(shards.iter().all(|s| two.concerns(*s)));
}
