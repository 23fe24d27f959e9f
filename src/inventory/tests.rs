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
            "apps/typo.yaml:2:8: marker names policy default:nope, which no policy file declares"
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
            "apps/kustomization.yaml:3:13: a digest setter needs digestReflectionPolicy IfNotPresent or Always on policy default:app"
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
