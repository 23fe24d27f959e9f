//! What `crowsnest history` lists: one [`Entry`] per `Image-Update`
//! trailer (an automated update) and per managed field a commit without
//! trailers changed (a manual change); the filters the command line
//! offers; and the two renderings, an aligned table and JSON lines.
//!
//! The JSON shape is the documented schema (README, `crowsnest history`);
//! [`Entry`]'s serde attributes are that schema, field for field.

use serde::{Serialize, Serializer};

use super::time::{Seconds, format_time};
use crate::model::{Field, ImageName, PolicyId};

/// An automated update (a trailer) or a manual change (no trailer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Update,
    Manual,
    /// An update whose value was promoted from another policy's history
    /// (a `Promoted-From` trailer names the source).
    Promotion,
}

/// A commit's author.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Person {
    pub name: String,
    pub email: String,
}

/// How a commit's signature checked out, as `git verify-commit` would
/// decide: only `Good` is a signature git accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// Verifies with a key from the keyring or allowed-signers file.
    Good,
    /// Made by a known key but does not verify (the commit was altered
    /// after signing), or the key may not sign it (expired, revoked, or
    /// not allowed for namespace `git` or at the commit's time).
    Bad,
    /// No signature at all.
    Unsigned,
    /// Signed with a key the given files do not hold.
    UnknownKey,
}

impl SignatureStatus {
    pub fn label(self) -> &'static str {
        match self {
            SignatureStatus::Good => "Good",
            SignatureStatus::Bad => "Bad",
            SignatureStatus::Unsigned => "Unsigned",
            SignatureStatus::UnknownKey => "Unknown key",
        }
    }
}

/// Which kind of signature a commit carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureFormat {
    OpenPgp,
    Ssh,
    X509,
}

/// The verdict on one commit's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SignatureReport {
    pub status: SignatureStatus,
    /// `None` when unsigned.
    pub format: Option<SignatureFormat>,
    /// OpenPGP fingerprint (or issuer key id when the key is unknown), or
    /// SSH `SHA256:` fingerprint.
    pub key: Option<String>,
    /// The key's first user id, or the allowed-signers principals.
    pub signer: Option<String>,
    /// Why the status is not `Good`, in words.
    pub reason: Option<String>,
}

impl SignatureReport {
    pub fn unsigned() -> Self {
        SignatureReport {
            status: SignatureStatus::Unsigned,
            format: None,
            key: None,
            signer: None,
            reason: None,
        }
    }
}

/// One line of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub kind: Kind,
    /// The commit's committer time.
    #[serde(serialize_with = "rfc3339")]
    pub time: Seconds,
    /// Full commit id.
    pub commit: String,
    pub author: Person,
    #[serde(serialize_with = "display")]
    pub policy: PolicyId,
    /// The image repository: from the trailer's new reference, or for a
    /// manual change from the policy (when the commit's policy files
    /// declare it).
    pub image: Option<String>,
    /// Manual changes only: which part of the reference the field holds.
    #[serde(serialize_with = "display_opt")]
    pub field: Option<Field>,
    /// Manual changes only: the file and 1-based line of the field.
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Updates: full references `image:tag[@digest]`; manual changes:
    /// the field's values.
    pub from: String,
    pub to: String,
    /// `None` unless signatures were verified.
    pub signature: Option<SignatureReport>,
    /// Promotions only: `<source ns>:<name> <source commit>`.
    #[serde(rename = "promotedFrom", skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
}

fn rfc3339<S: Serializer>(time: &Seconds, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(*time))
}

fn display<S: Serializer, T: std::fmt::Display>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn display_opt<S: Serializer, T: std::fmt::Display>(
    value: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// The repository part of a reference: `image:tag@digest` -> `image`.
/// A port (`host:5000/app`) is not a tag.
pub fn image_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

/// What to keep. Every condition must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub policy: Option<PolicyId>,
    /// An image repository; compared by canonical name (`nginx` is
    /// `docker.io/library/nginx`).
    pub image: Option<String>,
    /// Commits at or after.
    pub since: Option<Seconds>,
    /// Commits strictly before.
    pub until: Option<Seconds>,
}

impl Filter {
    pub fn keeps_time(&self, time: Seconds) -> bool {
        self.since.is_none_or(|s| time >= s) && self.until.is_none_or(|u| time < u)
    }

    pub fn keeps_policy(&self, policy: &PolicyId) -> bool {
        self.policy.as_ref().is_none_or(|p| p == policy)
    }

    pub fn keeps_image(&self, image: Option<&str>) -> bool {
        match (&self.image, image) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(want), Some(have)) => same_image(want, have),
        }
    }

    pub fn keeps(&self, entry: &Entry) -> bool {
        self.keeps_time(entry.time)
            && self.keeps_policy(&entry.policy)
            && self.keeps_image(entry.image.as_deref())
    }
}

fn same_image(a: &str, b: &str) -> bool {
    match (ImageName::parse(a), ImageName::parse(b)) {
        (Ok(a), Ok(b)) => a.canonical() == b.canonical(),
        _ => a == b,
    }
}

/// `ns:name`, or `name` alone for the `default` namespace.
pub fn parse_policy_id(text: &str) -> Result<PolicyId, String> {
    let (namespace, name) = text.split_once(':').unwrap_or(("default", text));
    let valid = |s: &str| !s.is_empty() && !s.contains([':', ' ']);
    if valid(namespace) && valid(name) {
        Ok(PolicyId::new(namespace, name))
    } else {
        Err(format!(
            "{text:?} is not a policy; write <namespace>:<name> (for example default:podinfo)"
        ))
    }
}

/// One JSON object per line, newest first.
pub fn render_json_lines(entries: &[Entry]) -> String {
    let mut out = String::new();
    for entry in entries {
        out.push_str(&serde_json::to_string(entry).expect("entries always serialize"));
        out.push('\n');
    }
    out
}

/// The table for terminals: a header, one row per entry, columns padded
/// to the widest cell. `SIGNATURE` only when signatures were verified.
pub fn render_table(entries: &[Entry], signatures: bool) -> String {
    let mut header = vec!["TIME", "COMMIT", "KIND", "POLICY", "FROM", "TO", "AUTHOR"];
    if signatures {
        header.push("SIGNATURE");
    }
    header.push("WHERE");
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for e in entries {
        let mut row = vec![
            format_time(e.time),
            e.commit.chars().take(12).collect(),
            match e.kind {
                Kind::Update => "update".to_owned(),
                Kind::Manual => "manual".to_owned(),
                Kind::Promotion => "promotion".to_owned(),
            },
            e.policy.to_string(),
            e.from.clone(),
            e.to.clone(),
            format!("{} <{}>", e.author.name, e.author.email),
        ];
        if signatures {
            row.push(
                e.signature
                    .as_ref()
                    .map(|s| s.status.label())
                    .unwrap_or("-")
                    .to_owned(),
            );
        }
        row.push(match (&e.file, e.line, e.field, &e.promoted_from) {
            (Some(file), Some(line), Some(field), _) => format!("{file}:{line} ({field})"),
            (_, _, _, Some(source)) => format!("from {source}"),
            _ => String::new(),
        });
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < columns {
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, time: Seconds, policy: &str, from: &str, to: &str) -> Entry {
        Entry {
            kind,
            time,
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            author: Person {
                name: "crowsnest".into(),
                email: "crowsnest@localhost".into(),
            },
            policy: parse_policy_id(policy).unwrap(),
            image: Some(image_of(to).to_owned()),
            field: None,
            file: None,
            line: None,
            promoted_from: None,
            from: from.into(),
            to: to.into(),
            signature: None,
        }
    }

    #[test]
    fn image_of_strips_tag_and_digest_but_not_a_port() {
        let cases = [
            ("ghcr.io/s/podinfo:6.1.0", "ghcr.io/s/podinfo"),
            ("ghcr.io/s/podinfo:6.1.0@sha256:abc", "ghcr.io/s/podinfo"),
            ("127.0.0.1:5000/demo/app:1.0", "127.0.0.1:5000/demo/app"),
            ("127.0.0.1:5000/demo/app", "127.0.0.1:5000/demo/app"),
            ("nginx", "nginx"),
        ];
        for (reference, image) in cases {
            assert_eq!(image_of(reference), image, "{reference}");
        }
    }

    #[test]
    fn filters_combine_and_compare_images_by_canonical_name() {
        let e = entry(Kind::Update, 100, "default:web", "nginx:1.0", "nginx:1.1");
        assert!(Filter::default().keeps(&e));
        let by_image = Filter {
            image: Some("docker.io/library/nginx".into()),
            ..Filter::default()
        };
        assert!(by_image.keeps(&e));
        let other = Filter {
            image: Some("ghcr.io/x/nginx".into()),
            ..Filter::default()
        };
        assert!(!other.keeps(&e));
        let window = Filter {
            since: Some(100),
            until: Some(101),
            policy: Some(PolicyId::new("default", "web")),
            ..Filter::default()
        };
        assert!(window.keeps(&e));
        assert!(
            !Filter {
                until: Some(100),
                ..Filter::default()
            }
            .keeps(&e)
        );
        assert!(
            !Filter {
                policy: Some(PolicyId::new("prod", "web")),
                ..Filter::default()
            }
            .keeps(&e)
        );
    }

    #[test]
    fn policy_ids_default_their_namespace() {
        assert_eq!(
            parse_policy_id("podinfo").unwrap(),
            PolicyId::new("default", "podinfo")
        );
        assert_eq!(
            parse_policy_id("apps:podinfo").unwrap(),
            PolicyId::new("apps", "podinfo")
        );
        for bad in ["", ":x", "x:", "a:b:c", "a b"] {
            assert!(parse_policy_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_lines_follow_the_documented_schema() {
        let mut manual = entry(Kind::Manual, 0, "default:web", "1.0", "1.1");
        manual.field = Some(Field::Tag);
        manual.file = Some("apps/web/values.yaml".into());
        manual.line = Some(3);
        manual.image = None;
        manual.signature = Some(SignatureReport::unsigned());
        let text = render_json_lines(&[manual]);
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "kind": "manual",
                "time": "1970-01-01T00:00:00Z",
                "commit": "0123456789abcdef0123456789abcdef01234567",
                "author": {"name": "crowsnest", "email": "crowsnest@localhost"},
                "policy": "default:web",
                "image": null,
                "field": "tag",
                "file": "apps/web/values.yaml",
                "line": 3,
                "from": "1.0",
                "to": "1.1",
                "signature": {"status": "unsigned", "format": null, "key": null, "signer": null, "reason": null}
            })
        );
    }

    #[test]
    fn the_table_aligns_columns_and_trims_line_ends() {
        let entries = [
            entry(Kind::Update, 0, "default:web", "nginx:1.0", "nginx:1.10"),
            entry(
                Kind::Update,
                3600,
                "apps:api",
                "ghcr.io/a/api:2",
                "ghcr.io/a/api:3",
            ),
        ];
        let table = render_table(&entries, false);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        let to_column = lines[0].find("TO").unwrap();
        assert_eq!(lines[1].find("nginx:1.10"), Some(to_column));
        assert_eq!(lines[2].find("ghcr.io/a/api:3"), Some(to_column));
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }
}
