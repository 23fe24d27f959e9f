use super::*;
use crate::model::{Field, PathSegment};

const FULL: &str = r#"apiVersion: crowsnest/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: apps
  labels: {team: web}
spec:
  image: ghcr.io/stefanprodan/podinfo
  interval: 1m
  policy:
    semver:
      range: ">=6.0.0 <7.0.0"
  filterTags:
    pattern: '^v?(?P<version>[0-9.]+)$'
    extract: '$version'
  exclusionList: ['^.*\.sig$']
  digestReflectionPolicy: IfNotPresent
  platform: linux/arm64
  allowDowngrade: true
  targets:
    - file: ./apps/podinfo/values.yaml
      path: image.tag
      field: tag
    - file: apps/podinfo/deploy.yaml
      path: spec.template.spec.containers[name=app].image
"#;

fn parse(text: &str) -> Result<Vec<Policy>, PolicyError> {
    parse_policy_file("policies/app.yaml", text)
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn minimal(spec: &str) -> String {
    format!(
        "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n  image: ghcr.io/org/app\n{spec}"
    )
}

#[test]
fn every_field_of_the_format_is_read() {
    let policies = parse(FULL).unwrap();
    assert_eq!(policies.len(), 1);
    let p = &policies[0];
    assert_eq!(p.id.to_string(), "apps:podinfo");
    assert_eq!(p.image.written, "ghcr.io/stefanprodan/podinfo");
    assert_eq!(p.interval, Some(std::time::Duration::from_secs(60)));
    assert_eq!(p.rule.to_string(), r#"semver ">=6.0.0 <7.0.0""#);
    let filter = p.filter.as_ref().unwrap();
    assert_eq!(filter.pattern(), "^v?(?P<version>[0-9.]+)$");
    assert_eq!(filter.extract(), Some("$version"));
    assert_eq!(p.exclusions.patterns().collect::<Vec<_>>(), [r"^.*\.sig$"]);
    assert_eq!(
        p.digest_reflection,
        crate::model::DigestReflection::IfNotPresent
    );
    assert_eq!(p.platform.as_ref().unwrap().to_string(), "linux/arm64");
    assert!(p.allow_downgrade);
    assert_eq!(p.targets.len(), 2);
    assert_eq!(p.targets[0].file, "apps/podinfo/values.yaml");
    assert_eq!(p.targets[0].field, Field::Tag);
    assert_eq!(
        p.targets[0].declared_at.to_string(),
        "policies/app.yaml:21:7"
    );
    assert_eq!(p.targets[1].field, Field::Image);
    assert!(matches!(p.targets[1].path.0[4], PathSegment::Match { .. }));
    assert_eq!(p.declared_at.to_string(), "policies/app.yaml:1:1");
}

#[test]
fn defaults_apply() {
    let p = &parse(&minimal("  policy:\n    alphabetical: {}\n")).unwrap()[0];
    assert_eq!(p.id.to_string(), "default:app");
    assert_eq!(p.interval, None);
    assert_eq!(p.rule, Rule::Alphabetical(Order::Asc));
    assert!(p.filter.is_none());
    assert_eq!(
        p.exclusions.patterns().collect::<Vec<_>>(),
        Exclusions::DEFAULT
    );
    assert_eq!(p.digest_reflection, crate::model::DigestReflection::Never);
    assert!(p.platform.is_none());
    assert!(!p.allow_downgrade);
    assert!(p.targets.is_empty());
    // A given list replaces the default, even an empty one.
    let p = &parse(&minimal(
        "  policy:\n    numerical: {order: desc}\n  exclusionList: []\n",
    ))
    .unwrap()[0];
    assert_eq!(p.rule, Rule::Numerical(Order::Desc));
    assert_eq!(p.exclusions.patterns().count(), 0);
}

#[test]
fn several_documents_and_duplicates() {
    let second = minimal("  policy:\n    alphabetical: {}\n").replace("name: app", "name: other");
    let text = format!("{FULL}---\n{second}\n---\n");
    let policies = parse(&text).unwrap();
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[1].id.to_string(), "default:other");
    assert_eq!(
        policies[1].declared_at.to_string(),
        "policies/app.yaml:27:1"
    );
    let dup = format!("{second}---\n{second}");
    assert_eq!(
        error(&dup),
        "policies/app.yaml:10:1: policy default:other is declared twice; the first declaration is at policies/app.yaml:1:1"
    );
    // Across files, with the helper.
    let a = parse_policy_file("a.yaml", &second).unwrap();
    let b = parse_policy_file("b.yaml", &second).unwrap();
    let err = check_unique(a.iter().chain(&b)).unwrap_err();
    assert_eq!(err.kind(), "policy_duplicate");
    assert!(err.to_string().starts_with("b.yaml:1:1: "), "{err}");
}

#[test]
fn invalid_ranges_name_file_line_column_and_text() {
    let text = minimal("  policy:\n    semver:\n      range: '>=1.0.0 <2.x.y'\n");
    assert_eq!(
        error(&text),
        r#"policies/app.yaml:9:27: invalid semver range ">=1.0.0 <2.x.y": unexpected ".y" after version "2.x""#
    );
    let text = minimal("  policy:\n    semver:\n      range: \">= 1.0 || >=abc\"\n");
    assert_eq!(
        error(&text),
        r#"policies/app.yaml:9:27: invalid semver range ">= 1.0 || >=abc": expected a version after ">=", found "abc""#
    );
    // A block scalar cannot be pointed into: the scalar's start is given.
    let text = minimal("  policy:\n    semver:\n      range: |-\n        >=1 <x.y.q!\n");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.kind(), "policy_range");
    assert_eq!(err.at().to_string(), "policies/app.yaml:10:9", "{err}");
}

#[test]
fn invalid_patterns_name_the_field_and_place() {
    let text = minimal("  policy:\n    alphabetical: {}\n  filterTags:\n    pattern: ^main-(\n");
    assert_eq!(
        error(&text),
        r#"policies/app.yaml:10:20: invalid filterTags.pattern "^main-(": unclosed group"#
    );
    let text = minimal(
        "  policy:\n    alphabetical: {}\n  filterTags:\n    pattern: ^main-([0-9]+)$\n    extract: v$ts\n",
    );
    assert_eq!(
        error(&text),
        r#"policies/app.yaml:11:15: invalid filterTags.extract "v$ts": extract refers to ${ts} but the pattern has no group named "ts""#
    );
    let text = minimal("  policy:\n    alphabetical: {}\n  exclusionList: ['ok', 'a[']\n");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.kind(), "policy_pattern");
    assert!(
        err.to_string()
            .starts_with(r#"policies/app.yaml:9:27: invalid exclusionList[1] pattern "a[": "#),
        "{err}"
    );
}

#[test]
fn other_kubernetes_objects_are_skipped_and_ours_keep_their_positions() {
    let text = format!(
        "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\nmetadata:\n  name: podinfo\nspec:\n  image: ghcr.io/stefanprodan/podinfo\n  interval: 5m\n---\napiVersion: v1\nkind: ConfigMap\ndata: {{a: b}}\n---\n{FULL}"
    );
    let policies = parse(&text).unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(
        policies[0].declared_at.to_string(),
        "policies/app.yaml:13:1"
    );
    let broken = text.replace("range: \">=6.0.0 <7.0.0\"", "range: \">=6.0.0 <7.0.0 |\"");
    assert!(
        error(&broken).starts_with("policies/app.yaml:"),
        "{}",
        error(&broken)
    );
    let position = error(&text.replace(
        "  labels: {team: web}\n",
        "  labels: {team: web}\n  nope: 1\n",
    ));
    assert!(
        position.starts_with("policies/app.yaml:19:3: "),
        "{position}"
    );
}

#[test]
fn other_documents_are_refused() {
    let cases = [
        (
            "apiVersion: crowsnest/v2\nkind: ImagePolicy\n",
            "policies/app.yaml:1:13: apiVersion \"crowsnest/v2\" is not supported; policy files hold apiVersion: crowsnest/v1",
        ),
        (
            "apiVersion: crowsnest/v1\nkind: Policy\n",
            "policies/app.yaml:2:7: kind \"Policy\" is not supported; expected kind: ImagePolicy",
        ),
        (
            "kind: ImagePolicy\n",
            "policies/app.yaml:1:1: document has no apiVersion; policy files hold apiVersion: crowsnest/v1, kind: ImagePolicy (or Flux image objects)",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(text), expected);
    }
}

#[test]
fn bad_values_are_refused_where_they_are() {
    let cases = [
        (
            minimal("  policy:\n    semver: {range: '*'}\n  bogus: 1\n"),
            "9:3",
            "unknown field `bogus`",
        ),
        (minimal("  policy: {}\n"), "7:11", "needs one of semver"),
        (
            minimal("  policy:\n    semver: {range: '*'}\n    alphabetical: {}\n"),
            "8:5",
            "exactly one of",
        ),
        (
            minimal("  policy:\n    numerical: {order: up}\n"),
            "8:24",
            "order \"up\" is not asc or desc",
        ),
        (
            minimal("  interval: soon\n  policy:\n    alphabetical: {}\n"),
            "7:13",
            "spec.interval",
        ),
        (
            minimal("  policy:\n    alphabetical: {}\n  digestReflectionPolicy: Sometimes\n"),
            "9:27",
            "\"Sometimes\" is not one of",
        ),
        (
            minimal("  policy:\n    alphabetical: {}\n  platform: linux\n"),
            "9:13",
            "not os/arch",
        ),
        (
            minimal(
                "  policy:\n    alphabetical: {}\n  targets:\n    - {file: ../x.yaml, path: a}\n",
            ),
            "10:14",
            "must stay inside the repository",
        ),
        (
            minimal(
                "  policy:\n    alphabetical: {}\n  targets:\n    - {file: x.yaml, path: 'a..b'}\n",
            ),
            "10:28",
            "targets[].path",
        ),
        (
            minimal(
                "  policy:\n    alphabetical: {}\n  targets:\n    - {file: x.yaml, path: a, field: all}\n",
            ),
            "10:38",
            "\"all\" is not one of",
        ),
        (
            minimal("  policy:\n    alphabetical: {}\n")
                .replace("ghcr.io/org/app", "ghcr.io/org/app:1.0"),
            "6:10",
            "spec.image",
        ),
        (
            minimal("  policy:\n    alphabetical: {}\n").replace("name: app", "name: App_1"),
            "4:9",
            "not a Kubernetes object name",
        ),
        (
            minimal("  policy:\n    alphabetical: {}\n")
                .replace("name: app", "name: app\n  namespace: a.b"),
            "5:14",
            "not a Kubernetes namespace",
        ),
    ];
    for (text, place, needle) in cases {
        let message = error(&text);
        assert!(
            message.starts_with(&format!("policies/app.yaml:{place}: "))
                && message.contains(needle),
            "expected {place} and {needle:?}, got: {message}"
        );
    }
}

#[test]
fn empty_files_hold_no_policies() {
    assert!(parse("").unwrap().is_empty());
    assert!(parse("---\n# nothing\n").unwrap().is_empty());
}

#[test]
fn permits_guards_against_downgrades() {
    let text = minimal("  policy:\n    semver: {range: '>=1.0.0'}\n");
    let mut policy = parse(&text).unwrap().remove(0);
    assert!(policy.permits("1.2.0", "1.3.0"));
    assert!(!policy.permits("1.3.0", "1.2.0"));
    assert!(policy.permits("1.3.0", "1.3.0"));
    assert!(policy.permits("latest", "1.2.0"));
    assert!(!policy.permits("v1.3.0", "1.3.0-rc.1"));
    policy.allow_downgrade = true;
    assert!(policy.permits("1.3.0", "1.2.0"));
}
