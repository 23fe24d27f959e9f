use super::*;
use crate::policy::{Rule, parse_policy_file};

/// The objects `flux create image repository|policy|update --export` write
/// in Flux's image automation guide, in one file with a Deployment.
const GUIDE: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: default
spec:
  template:
    spec:
      containers:
        - name: podinfod
          image: ghcr.io/stefanprodan/podinfo:5.0.0 # {"$imagepolicy": "flux-system:podinfo"}
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  image: ghcr.io/stefanprodan/podinfo
  interval: 5m0s
  secretRef:
    name: regcred
  provider: aws
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: 5.0.x
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageUpdateAutomation
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 30m0s
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        email: fluxcdbot@users.noreply.github.com
        name: fluxcdbot
      messageTemplate: '{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}'
      signingKey:
        secretRef:
          name: signing
    push:
      branch: image-updates
  update:
    path: ./clusters/my-cluster
    strategy: Setters
"#;

fn read(text: &str) -> FluxObjects {
    let mut objects = FluxObjects::default();
    let broken = objects.read("clusters/my-cluster/podinfo.yaml", text);
    assert!(broken.is_empty(), "{broken:?}");
    objects
}

#[test]
fn the_guide_objects_resolve_into_a_policy_and_an_automation() {
    let objects = read(GUIDE);
    let resolved = objects.resolve();
    assert!(resolved.errors.is_empty(), "{:?}", resolved.errors);
    let [policy] = resolved.policies.as_slice() else {
        panic!("{:?}", resolved.policies)
    };
    assert_eq!(policy.id, PolicyId::new("flux-system", "podinfo"));
    assert_eq!(policy.image.written, "ghcr.io/stefanprodan/podinfo");
    assert_eq!(policy.interval, Some(std::time::Duration::from_secs(300)));
    assert!(matches!(policy.rule, Rule::Semver(_)));
    assert!(policy.allow_downgrade && !policy.insecure);
    assert_eq!(
        policy.declared_at.to_string(),
        "clusters/my-cluster/podinfo.yaml:25:1"
    );
    let tags: Vec<String> = ["5.0.0", "5.0.3", "5.1.0", "5.0.3.sig"]
        .map(String::from)
        .to_vec();
    assert_eq!(policy.select(&tags), Some(1));

    let automation = objects.automation(None).unwrap().unwrap();
    assert_eq!(automation.id, PolicyId::new("flux-system", "flux-system"));
    assert_eq!(automation.checkout_branch.as_deref(), Some("main"));
    assert_eq!(automation.push_branch.as_deref(), Some("image-updates"));
    assert_eq!(
        automation.author,
        Some((
            "fluxcdbot".into(),
            "fluxcdbot@users.noreply.github.com".into()
        ))
    );
    assert_eq!(
        automation.update_path.as_deref(),
        Some("clusters/my-cluster")
    );
    assert!(!automation.suspended);
    let message = automation.message.as_ref().unwrap();
    assert_eq!(
        message.render(&automation.id, &sample_changes()).unwrap(),
        "registry.example/app:1.0.0 -> registry.example/app:1.0.1\n1.0.0 -> 1.0.1\n"
    );

    let warnings: Vec<String> = objects
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.at, w.message))
        .collect();
    assert_eq!(
        warnings,
        [
            "clusters/my-cluster/podinfo.yaml:22:5: spec.secretRef needs a Kubernetes cluster and is ignored; set registries.hosts[].username and passwordFile, or registries.dockerConfig, in the crowsnest config",
            "clusters/my-cluster/podinfo.yaml:23:13: spec.provider: aws needs a Kubernetes cluster and is ignored; set registries.dockerConfig with the provider's credential helper (credHelpers) in the crowsnest config",
            "clusters/my-cluster/podinfo.yaml:57:9: git.commit.signingKey needs a Kubernetes cluster and is ignored; set git.signing (format, keyFile, passphraseFile) in the crowsnest config",
        ]
    );
    // crowsnest's own reader skips every one of these documents.
    assert!(
        parse_policy_file("clusters/my-cluster/podinfo.yaml", GUIDE)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn references_resolve_within_the_namespace_and_fail_at_the_reference() {
    let other_namespace = GUIDE.replace(
        "  name: podinfo\n  namespace: flux-system\nspec:\n  image:",
        "  name: podinfo\n  namespace: apps\nspec:\n  image:",
    );
    let resolved = read(&other_namespace).resolve();
    assert!(resolved.policies.is_empty());
    assert_eq!(
        resolved.errors[0].to_string(),
        "clusters/my-cluster/podinfo.yaml:32:5: imageRepositoryRef names ImageRepository flux-system/podinfo, which is not declared in the folders crowsnest reads Flux objects from"
    );
    let cross = other_namespace.replace(
        "    name: podinfo\n  policy:",
        "    name: podinfo\n    namespace: apps\n  policy:",
    );
    let resolved = read(&cross).resolve();
    assert!(resolved.errors.is_empty(), "{:?}", resolved.errors);
    assert_eq!(
        resolved.policies[0].id,
        PolicyId::new("flux-system", "podinfo")
    );
}

#[test]
fn insecure_exclusions_suspend_and_digest_reflection_are_mapped() {
    let text = GUIDE
        .replace(
            "  interval: 5m0s\n",
            "  interval: 5m0s\n  insecure: true\n  suspend: false\n  exclusionList: ['^dev-']\n",
        )
        .replace(
            "      range: 5.0.x\n",
            "      range: 5.0.x\n  digestReflectionPolicy: IfNotPresent\n",
        );
    let policy = &read(&text).resolve().policies[0];
    assert!(policy.insecure);
    assert_eq!(policy.digest_reflection, DigestReflection::IfNotPresent);
    let tags: Vec<String> = ["5.0.1", "dev-5.0.9", "5.0.3.sig"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        policy.select(&tags),
        Some(0),
        "the list replaces the default: .sig is no longer excluded, but it is no semver tag either"
    );
    let suspended = read(&GUIDE.replace(
        "      range: 5.0.x\n",
        "      range: 5.0.x\n  suspend: true\n",
    ))
    .resolve();
    assert!(suspended.policies.is_empty());
    assert_eq!(
        suspended.suspended[0].id,
        PolicyId::new("flux-system", "podinfo")
    );
}

#[test]
fn mistakes_are_errors_at_their_place() {
    let cases = [
        (
            GUIDE.replace(
                "image.toolkit.fluxcd.io/v1\nkind: ImagePolicy",
                "image.toolkit.fluxcd.io/v1beta1\nkind: ImagePolicy",
            ),
            "25:13: apiVersion image.toolkit.fluxcd.io/v1beta1 is not supported",
        ),
        (
            GUIDE.replace("kind: ImagePolicy", "kind: ImageThing"),
            "26:7: kind \"ImageThing\" of image.toolkit.fluxcd.io is not supported",
        ),
        (
            GUIDE.replace(
                "  interval: 5m0s\n",
                "  interval: 5m0s\n  scanEverything: true\n",
            ),
            "21:3: unknown field `scanEverything`",
        ),
        (
            GUIDE.replace("range: 5.0.x", "range: 5.0.x.y"),
            "35:19: invalid semver range \"5.0.x.y\"",
        ),
        (
            GUIDE.replace(
                "{{range .Changed.Changes}}",
                "{{range .Changed.Changes}}{{ title .Setter }}",
            ),
            "55:24: git.commit.messageTemplate: line 1, column 30: function \"title\" is not supported",
        ),
        (
            GUIDE.replace("{{print .OldValue}}", "{{print .Old}}"),
            "git.commit.messageTemplate: line 1, column 29: can't evaluate field Old in type update.Change (fields: OldValue, NewValue, Setter)",
        ),
        (
            GUIDE.replace("strategy: Setters", "strategy: Other"),
            "update.strategy \"Other\" is not supported",
        ),
        (
            GUIDE.replace(
                "push:\n      branch: image-updates",
                "push:\n      refspec: refs/heads/main:refs/heads/auto",
            ),
            "git.push.refspec is not supported",
        ),
    ];
    for (text, want) in cases {
        let mut objects = FluxObjects::default();
        let broken = objects.read("clusters/my-cluster/podinfo.yaml", &text);
        let err = broken.first().expect("an error").to_string();
        assert!(err.contains(want), "want {want:?}, got {err}");
    }
}

#[test]
fn several_automations_need_a_pick() {
    let second = GUIDE.replace(
        "  name: flux-system\n  namespace: flux-system\nspec:\n  interval",
        "  name: staging\n  namespace: flux-system\nspec:\n  interval",
    );
    let mut objects = read(GUIDE);
    assert!(objects.read("other.yaml", &second).is_empty());
    let err = objects.automation(None).unwrap_err();
    assert!(
        err.contains("2 ImageUpdateAutomation objects are declared"),
        "{err}"
    );
    assert!(err.contains("set flux.automation"), "{err}");
    let picked = objects
        .automation(Some(&PolicyId::new("flux-system", "staging")))
        .unwrap()
        .unwrap();
    assert_eq!(picked.declared_at.file, "other.yaml");
    assert!(objects.automation(Some(&PolicyId::new("x", "y"))).is_err());
}

#[test]
fn template_data_groups_changes_by_file_and_object() {
    let ids = object_ids(GUIDE);
    assert_eq!(
        object_at(&ids, Position::new(11, 18)),
        ObjectId {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "podinfo".into(),
            namespace: "default".into(),
        }
    );
    assert_eq!(object_at(&ids, Position::new(30, 1)).kind, "ImagePolicy");
    let template = Template::parse(
        "{{ .AutomationObject }} {{ .Values.env }}\n{{ range $f, $objects := .Changed.FileChanges }}{{ $f }}:{{ range $o, $cs := $objects }} {{ $o.Kind }}/{{ $o.Name }}={{ len $cs }}{{ end }}\n{{ end }}",
    )
    .unwrap();
    let message = FluxMessage {
        template,
        values: [("env".to_owned(), "prod".to_owned())].into(),
        at: Located::new("a.yaml", Position::new(1, 1)),
    };
    let mut changes = sample_changes();
    changes.push(changes[0].clone());
    assert_eq!(
        message
            .render(&PolicyId::new("flux-system", "auto"), &changes)
            .unwrap(),
        "flux-system/auto prod\napps/app.yaml: Deployment/app=2\napps/kustomization.yaml: /=1\n"
    );
    assert_eq!(
        FluxChange::setter_name(&PolicyId::new("a", "b"), Field::Tag),
        "a:b:tag"
    );
}

#[test]
fn export_style_separators_and_empty_documents_are_fine() {
    // `flux create ... --export` starts each object with `---`; files often
    // end with one too.
    let text = format!("---\n{}---\n", GUIDE.trim_start_matches("---\n"));
    let objects = read(&text);
    assert_eq!(objects.resolve().policies.len(), 1);
    assert!(parse_policy_file("a.yaml", &text).unwrap().is_empty());
}
