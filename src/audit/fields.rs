//! Managed fields — the scalars markers and policy targets set — of one
//! version of a file, and which of them a commit changed. This is how
//! `crowsnest history` finds manual edits: a commit without an
//! `Image-Update` trailer that changed a managed field's value.
//!
//! A field keeps its identity across versions by what names it, not by
//! where it is (lines move when someone edits above it): the n-th marker
//! of a policy and field in the file, or a policy target's path.

use crate::manifests::{self, Manifest};
use crate::model::{Field, PolicyId, Target};

/// What names a managed field, stable across edits elsewhere in the file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FieldKey {
    /// The `ordinal`-th (0-based) marker for this policy and field.
    Marker {
        policy: PolicyId,
        field: Field,
        ordinal: u32,
    },
    /// A policy target, by its path.
    Target {
        policy: PolicyId,
        field: Field,
        path: String,
    },
}

impl FieldKey {
    pub fn policy(&self) -> &PolicyId {
        match self {
            FieldKey::Marker { policy, .. } | FieldKey::Target { policy, .. } => policy,
        }
    }

    pub fn field(&self) -> Field {
        match self {
            FieldKey::Marker { field, .. } | FieldKey::Target { field, .. } => *field,
        }
    }
}

/// One managed field of one version of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedField {
    pub key: FieldKey,
    /// 1-based line of the scalar.
    pub line: u32,
    /// The decoded value.
    pub value: String,
}

/// A managed field whose value a commit changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub key: FieldKey,
    /// The line in the new version.
    pub line: u32,
    pub from: String,
    pub to: String,
}

/// The managed fields of `text`: its markers when `markers` is set (the
/// file is a manifest under the scanned path) and the `targets` that name
/// this file. A version that does not parse has none: there is nothing
/// to compare it with.
pub fn managed_fields(
    file: &str,
    text: &str,
    markers: bool,
    targets: &[(PolicyId, Target)],
) -> Vec<ManagedField> {
    let Ok(manifest) = Manifest::parse(file, text) else {
        return Vec::new();
    };
    let mut fields = Vec::new();
    if markers {
        let mut seen: Vec<(PolicyId, Field, u32)> = Vec::new();
        for setter in manifest.scan_markers().setters {
            let ordinal = match seen
                .iter_mut()
                .find(|(p, f, _)| *p == setter.policy && *f == setter.field)
            {
                Some((_, _, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    seen.push((setter.policy.clone(), setter.field, 0));
                    0
                }
            };
            fields.push(ManagedField {
                key: FieldKey::Marker {
                    policy: setter.policy,
                    field: setter.field,
                    ordinal,
                },
                line: setter.at.line,
                value: setter.value,
            });
        }
    }
    for (policy, target) in targets {
        if let Ok(setter) = manifest.resolve_target(policy, target) {
            fields.push(ManagedField {
                key: FieldKey::Target {
                    policy: policy.clone(),
                    field: target.field,
                    path: target.path.to_string(),
                },
                line: setter.at.line,
                value: setter.value,
            });
        }
    }
    fields
}

/// The fields present in both versions whose value differs, in the new
/// version's order. Fields added or removed (a marker written or deleted)
/// are not value changes.
pub fn changes(old: &[ManagedField], new: &[ManagedField]) -> Vec<FieldChange> {
    new.iter()
        .filter_map(|n| {
            let o = old.iter().find(|o| o.key == n.key)?;
            (o.value != n.value).then(|| FieldChange {
                key: n.key.clone(),
                line: n.line,
                from: o.value.clone(),
                to: n.value.clone(),
            })
        })
        .collect()
}

/// `false` when no line that differs between `old` and `new` mentions a
/// marker: then no marker and no marker's scalar changed, and neither
/// version needs parsing. (A marker sits on its scalar's line, so a
/// changed scalar is on a changed line, and that line holds the marker.)
/// The changed lines are the span between the longest common prefix and
/// suffix, widened to whole lines — one pass over the bytes, no diff.
pub fn may_change_markers(old: &[u8], new: &[u8]) -> bool {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let room = old.len().min(new.len()) - prefix;
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(room)
        .take_while(|(a, b)| a == b)
        .count();
    let changed = |text: &[u8]| {
        let start = text[..prefix]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = text.len() - suffix;
        let end = text[end..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| end + i);
        manifests::may_contain_markers(&text[start..end.max(start)])
    };
    changed(old) || changed(new)
}

/// The value `key` has in `fields`, if any.
pub fn value_of<'a>(fields: &'a [ManagedField], key: &FieldKey) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.key == *key)
        .map(|f| f.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Located, Position, TargetPath};

    const OLD: &str = r#"spec:
  containers:
    - image: ghcr.io/s/podinfo:6.0.0 # {"$imagepolicy": "default:podinfo"}
    - image: ghcr.io/s/podinfo:6.0.0 # {"$imagepolicy": "default:podinfo"}
  replicas: 2
values:
  tag: "1.0.0"
"#;

    fn target() -> (PolicyId, Target) {
        (
            PolicyId::new("default", "redis"),
            Target {
                file: "app.yaml".into(),
                path: TargetPath::parse("values.tag").unwrap(),
                field: Field::Tag,
                declared_at: Located::new("policies/p.yaml", Position::new(1, 1)),
            },
        )
    }

    #[test]
    fn markers_and_targets_are_fields_with_their_values() {
        let fields = managed_fields("app.yaml", OLD, true, &[target()]);
        let summary: Vec<(u32, &str)> = fields.iter().map(|f| (f.line, f.value.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                (3, "ghcr.io/s/podinfo:6.0.0"),
                (4, "ghcr.io/s/podinfo:6.0.0"),
                (7, "1.0.0")
            ]
        );
        assert!(managed_fields("app.yaml", OLD, false, &[]).is_empty());
        assert!(managed_fields("app.yaml", "a: [", true, &[target()]).is_empty());
    }

    #[test]
    fn a_value_change_is_found_even_when_lines_move() {
        let new = OLD
            .replace("spec:\n", "# a comment\n# another\nspec:\n")
            .replace(
                "    - image: ghcr.io/s/podinfo:6.0.0 # {\"$imagepolicy\": \"default:podinfo\"}\n  replicas",
                "    - image: ghcr.io/s/podinfo:6.1.0 # {\"$imagepolicy\": \"default:podinfo\"}\n  replicas",
            )
            .replace("tag: \"1.0.0\"", "tag: \"1.0.1\"");
        let old = managed_fields("app.yaml", OLD, true, &[target()]);
        let new = managed_fields("app.yaml", &new, true, &[target()]);
        let changed = changes(&old, &new);
        let found: Vec<(u32, &str, &str)> = changed
            .iter()
            .map(|c| (c.line, c.from.as_str(), c.to.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (6, "ghcr.io/s/podinfo:6.0.0", "ghcr.io/s/podinfo:6.1.0"),
                (9, "1.0.0", "1.0.1")
            ]
        );
    }

    #[test]
    fn only_edits_on_marker_lines_may_change_markers() {
        let old = OLD.as_bytes();
        let cases = [
            (OLD.replace("replicas: 2", "replicas: 3"), false),
            (OLD.replace("spec:\n", "# top\nspec:\n"), false),
            (format!("{OLD}extra: line\n"), false),
            (OLD.replace("tag: \"1.0.0\"", "tag: \"1.0.1\""), false),
            (OLD.to_owned(), false),
            (OLD.replacen("podinfo:6.0.0", "podinfo:6.0.1", 1), true),
            (OLD.replace("\"default:podinfo\"", "\"default:other\""), true),
            (OLD.replace("  replicas: 2\n", "  replicas: 2\n  x: y # {\"$imagepolicy\": \"a:b\"}\n"), true),
            (OLD.replacen("    - image: ghcr.io/s/podinfo:6.0.0 # {\"$imagepolicy\": \"default:podinfo\"}\n", "", 1), true),
            (String::new(), true),
        ];
        for (new, want) in cases {
            assert_eq!(may_change_markers(old, new.as_bytes()), want, "{new:?}");
            assert_eq!(
                may_change_markers(new.as_bytes(), old),
                want,
                "reversed: {new:?}"
            );
        }
        // A change at the very start or end of a marker line.
        let a = b"x: 1 # {\"$imagepolicy\": \"a:b\"}";
        let b = b"x: 1 # {\"$imagepolicy\": \"a:c\"}";
        assert!(may_change_markers(a, b));
        assert!(may_change_markers(
            b"y: 2\n",
            b"y: 2\nz: 1 # {\"$imagepolicy\": \"a:b\"}\n"
        ));
    }

    #[test]
    fn edits_outside_managed_fields_and_added_markers_are_not_changes() {
        let old = managed_fields("app.yaml", OLD, true, &[]);
        let replicas = managed_fields(
            "app.yaml",
            &OLD.replace("replicas: 2", "replicas: 3"),
            true,
            &[],
        );
        assert!(changes(&old, &replicas).is_empty());
        let added = OLD.replace(
            "  replicas: 2\n",
            "  replicas: 2\n  sidecar: busybox:1 # {\"$imagepolicy\": \"default:busybox\"}\n",
        );
        let added = managed_fields("app.yaml", &added, true, &[]);
        assert_eq!(added.len(), 3);
        assert!(changes(&old, &added).is_empty());
        assert_eq!(
            value_of(&added, &added[2].key),
            Some("busybox:1"),
            "{added:?}"
        );
    }
}
