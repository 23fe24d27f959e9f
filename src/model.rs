//! Plain types shared by every module: no IO, no async, no dependencies on
//! other crowsnest modules.

use std::fmt;

/// A policy's identity, `namespace:name`, as markers and trailers spell it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId {
    pub namespace: String,
    pub name: String,
}

impl PolicyId {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)
    }
}

/// Which part of an image reference a marker or a target sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Field {
    /// `name:tag` (or `name:tag@digest` when digest reflection is on).
    #[default]
    Image,
    /// The tag alone.
    Tag,
    /// The repository name alone, as the policy writes it.
    Name,
    /// The digest alone, `sha256:...`.
    Digest,
}

impl Field {
    /// The marker suffix (`tag`, `name`, `digest`), or `None` for the full image.
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            Field::Image => None,
            Field::Tag => Some("tag"),
            Field::Name => Some("name"),
            Field::Digest => Some("digest"),
        }
    }

    /// Parses the word used by markers and by a target's `field:`.
    pub fn from_word(word: &str) -> Option<Field> {
        match word {
            "image" => Some(Field::Image),
            "tag" => Some(Field::Tag),
            "name" => Some(Field::Name),
            "digest" => Some(Field::Digest),
            _ => None,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix().unwrap_or("image"))
    }
}

/// A 1-based line and column in a file, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    pub fn new(line: u32, column: u32) -> Self {
        Self { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A place in a file: `file:line:col`, the prefix of every user-facing
/// message about a file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Located {
    /// Path relative to the repository root, `/`-separated (or the path the
    /// user gave, for files outside a repository such as the daemon config).
    pub file: String,
    pub position: Position,
}

impl Located {
    pub fn new(file: impl Into<String>, position: Position) -> Self {
        Self {
            file: file.into(),
            position,
        }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.position)
    }
}

/// An image repository (no tag) as a policy names it, plus the registry host
/// and repository path it resolves to with Docker's rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageName {
    /// Exactly as written in the policy; this is what gets written into files.
    pub written: String,
    /// Registry host with optional port (`docker.io` for Docker Hub).
    pub registry: String,
    /// Repository path inside the registry (`library/nginx` for `nginx`).
    pub repository: String,
}

/// Why an image name could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageNameError {
    #[error("image name is empty")]
    Empty,
    #[error("image name {0:?} must not contain a tag or digest; put the repository only")]
    HasTagOrDigest(String),
    #[error("image name {0:?} is not a valid repository reference")]
    Invalid(String),
}

impl ImageName {
    /// Docker Hub's registry host as crowsnest names it.
    pub const DOCKER_HUB: &'static str = "docker.io";

    /// Parses a repository reference without tag or digest, with Docker's
    /// rules: the first component is a registry host when it contains `.`
    /// or `:` or is `localhost`; otherwise the registry is Docker Hub and a
    /// single-component name lives under `library/`.
    pub fn parse(text: &str) -> Result<Self, ImageNameError> {
        if text.is_empty() {
            return Err(ImageNameError::Empty);
        }
        if text.contains('@') {
            return Err(ImageNameError::HasTagOrDigest(text.to_owned()));
        }
        let (registry, path) = match text.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => (Self::DOCKER_HUB.to_owned(), text.to_owned()),
        };
        if path.contains(':') {
            return Err(ImageNameError::HasTagOrDigest(text.to_owned()));
        }
        let valid_component = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        };
        if registry.is_empty() || !path.split('/').all(valid_component) {
            return Err(ImageNameError::Invalid(text.to_owned()));
        }
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => Self::DOCKER_HUB.to_owned(),
            _ => registry,
        };
        let repository = if registry == Self::DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Ok(Self {
            written: text.to_owned(),
            registry,
            repository,
        })
    }

    /// `registry/repository`, the key one scan of a repository is shared under.
    pub fn canonical(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// What a policy picked for an image: the tag as the registry listed it and,
/// with digest reflection, the manifest digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Selection {
    pub tag: String,
    pub digest: Option<String>,
}

impl Selection {
    /// The text a marker or target of `field` gets for this selection.
    /// `None` when the field is `digest` and no digest was resolved.
    pub fn value(&self, image: &ImageName, field: Field) -> Option<String> {
        match field {
            Field::Image => Some(self.reference(image)),
            Field::Tag => Some(self.tag.clone()),
            Field::Name => Some(image.written.clone()),
            Field::Digest => self.digest.clone(),
        }
    }

    /// `image:tag` or `image:tag@digest`.
    pub fn reference(&self, image: &ImageName) -> String {
        match &self.digest {
            Some(d) => format!("{}:{}@{}", image.written, self.tag, d),
            None => format!("{}:{}", image.written, self.tag),
        }
    }
}

/// One scalar rewritten in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub policy: PolicyId,
    pub at: Located,
    pub field: Field,
    /// The scalar's value before (decoded, without quotes).
    pub old: String,
    /// The scalar's value after (decoded, without quotes).
    pub new: String,
}

/// One `Image-Update` trailer: `ns:name from -> to`, where `from` and `to`
/// are full references `image:tag[@digest]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageUpdate {
    pub policy: PolicyId,
    pub from: String,
    pub to: String,
}

impl fmt::Display for ImageUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.policy, self.from, self.to)
    }
}

/// When to resolve and write the manifest digest of the selected tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DigestReflection {
    /// Never write digests.
    #[default]
    Never,
    /// Resolve the digest once per tag and keep it (Flux's IfNotPresent).
    IfNotPresent,
    /// Resolve the digest on every scan (a moved tag gets its new digest).
    Always,
}

/// An `os/arch[/variant]` platform a tag must provide.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `linux/arm64` or `linux/arm/v7`.
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid =
            |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if [os, arch].iter().all(|p| valid(p)) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if [os, arch, variant].iter().all(|p| valid(p)) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(format!(
                "platform {text:?} is not os/arch or os/arch/variant"
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// One step of a target path (`spec.containers[name=app].image`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A mapping key.
    Key(String),
    /// A sequence item by 0-based index: `[2]`.
    Index(usize),
    /// The sequence item whose mapping has `key: value`: `[name=app]`.
    Match { key: String, value: String },
}

/// A parsed target path: dotted keys, `[n]` and `[key=value]` selectors.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TargetPath(pub Vec<PathSegment>);

impl TargetPath {
    /// Parses `a.b[0].c[name=app]`. Keys are split on `.`; a selector
    /// follows a key or another selector. Errors describe the problem and
    /// quote the offending text.
    pub fn parse(text: &str) -> Result<TargetPath, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        if rest.is_empty() {
            return Err("target path is empty".into());
        }
        loop {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let key = &rest[..end];
            if key.contains(']') {
                return Err(format!("unexpected ']' in target path {text:?}"));
            }
            if !key.is_empty() {
                segments.push(PathSegment::Key(key.to_owned()));
            } else if segments.is_empty() || !rest.starts_with('[') {
                return Err(format!("empty key in target path {text:?}"));
            }
            rest = &rest[end..];
            while let Some(inner) = rest.strip_prefix('[') {
                let close = inner
                    .find(']')
                    .ok_or_else(|| format!("unclosed '[' in target path {text:?}"))?;
                let selector = &inner[..close];
                segments.push(match selector.split_once('=') {
                    Some((k, v)) if !k.is_empty() => PathSegment::Match {
                        key: k.to_owned(),
                        value: v.to_owned(),
                    },
                    Some(_) => {
                        return Err(format!("empty key in selector [{selector}] of {text:?}"));
                    }
                    None => PathSegment::Index(selector.parse().map_err(|_| {
                        format!(
                            "selector [{selector}] in {text:?} is neither an index nor key=value"
                        )
                    })?),
                });
                rest = &inner[close + 1..];
            }
            match rest.strip_prefix('.') {
                Some(next) => rest = next,
                None if rest.is_empty() => break,
                None => return Err(format!("unexpected {rest:?} in target path {text:?}")),
            }
        }
        Ok(TargetPath(segments))
    }
}

impl fmt::Display for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(k) if i == 0 => write!(f, "{k}")?,
                PathSegment::Key(k) => write!(f, ".{k}")?,
                PathSegment::Index(n) => write!(f, "[{n}]")?,
                PathSegment::Match { key, value } => write!(f, "[{key}={value}]")?,
            }
        }
        Ok(())
    }
}

/// A field set without a marker, declared in a policy file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// Repository-relative file, `/`-separated.
    pub file: String,
    pub path: TargetPath,
    pub field: Field,
    /// Where the policy file declares it.
    pub declared_at: Located,
}

/// A secret read from a file (password, token, passphrase). Debug and
/// Display print `<redacted>`; only [`Secret::expose`] gives the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Reads a secret file; one trailing newline (as `echo` writes) is dropped.
    pub fn read_file(path: &std::path::Path) -> std::io::Result<Self> {
        let mut text = std::fs::read_to_string(path)?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(Self(text))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `--shard I/N`: this daemon takes the policies whose stable hash is `I`
/// modulo `N`. The hash is SHA-256 of `namespace:name`, so every shard,
/// build and machine assigns a policy the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let invalid = || format!("shard {text:?} is not I/N with 0 <= I < N, e.g. 0/2");
        let (index, count) = text.trim().split_once('/').ok_or_else(invalid)?;
        let index: u32 = index.trim().parse().map_err(|_| invalid())?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        if count == 0 || index >= count {
            return Err(invalid());
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard takes `policy`.
    pub fn owns(&self, policy: &PolicyId) -> bool {
        self.owns_key(&policy.to_string())
    }

    /// Whether this shard takes the repository entry `name` (with several
    /// entries, an entry and all its policies live on one shard).
    pub fn owns_repository(&self, name: &str) -> bool {
        self.owns_key(&format!("repository:{name}"))
    }

    fn owns_key(&self, key: &str) -> bool {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_resolve_with_dockers_rules() {
        let cases = [
            ("nginx", "docker.io", "library/nginx"),
            ("bitnami/nginx", "docker.io", "bitnami/nginx"),
            (
                "ghcr.io/stefanprodan/podinfo",
                "ghcr.io",
                "stefanprodan/podinfo",
            ),
            ("127.0.0.1:5000/demo/app", "127.0.0.1:5000", "demo/app"),
            ("localhost/app", "localhost", "app"),
            (
                "index.docker.io/library/redis",
                "docker.io",
                "library/redis",
            ),
        ];
        for (text, registry, repository) in cases {
            let name = ImageName::parse(text).unwrap();
            assert_eq!(
                (name.registry.as_str(), name.repository.as_str()),
                (registry, repository),
                "{text}"
            );
            assert_eq!(name.written, text);
        }
    }

    #[test]
    fn image_names_with_tags_or_bad_characters_are_refused() {
        for text in [
            "",
            "nginx:1.2",
            "ghcr.io/a/b:1",
            "a/b@sha256:00",
            "UPPER/case",
            "a//b",
        ] {
            assert!(ImageName::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn selection_values_per_field() {
        let image = ImageName::parse("ghcr.io/org/app").unwrap();
        let plain = Selection {
            tag: "1.2.3".into(),
            digest: None,
        };
        assert_eq!(
            plain.value(&image, Field::Image).unwrap(),
            "ghcr.io/org/app:1.2.3"
        );
        assert_eq!(plain.value(&image, Field::Tag).unwrap(), "1.2.3");
        assert_eq!(plain.value(&image, Field::Name).unwrap(), "ghcr.io/org/app");
        assert_eq!(plain.value(&image, Field::Digest), None);
        let pinned = Selection {
            digest: Some("sha256:ab".into()),
            ..plain
        };
        assert_eq!(
            pinned.value(&image, Field::Image).unwrap(),
            "ghcr.io/org/app:1.2.3@sha256:ab"
        );
    }

    #[test]
    fn target_paths_parse_and_print_back() {
        use PathSegment::*;
        let path = TargetPath::parse("spec.containers[name=app].image").unwrap();
        assert_eq!(
            path.0,
            vec![
                Key("spec".into()),
                Key("containers".into()),
                Match {
                    key: "name".into(),
                    value: "app".into()
                },
                Key("image".into()),
            ]
        );
        for text in ["image.tag", "images[0].newTag", "a[1][2].b", "x"] {
            assert_eq!(TargetPath::parse(text).unwrap().to_string(), text);
        }
        for bad in ["", ".a", "a..b", "a[", "a[x]", "a[=v]", "a]b", "a.", "[0]"] {
            assert!(TargetPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn platforms_parse() {
        assert_eq!(
            Platform::parse("linux/arm64").unwrap().to_string(),
            "linux/arm64"
        );
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(v7.variant.as_deref(), Some("v7"));
        for bad in ["linux", "linux/", "a/b/c/d", "linux/arm 64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "<redacted> <redacted>");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn shards_parse_and_split_policies_stably_and_disjointly() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        for bad in ["", "1", "3/3", "0/0", "-1/2", "a/b", "1/2/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        let mut counts = [0usize; 3];
        for n in 0..300 {
            let id = PolicyId::new("default", format!("app-{n}"));
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(&id)).collect();
            assert_eq!(owners.len(), 1, "{id} has exactly one owner");
            counts[owners[0]] += 1;
        }
        assert!(counts.iter().all(|&c| c > 60), "{counts:?}");
        // Stable across builds: pinned values of SHA-256("default:podinfo").
        let podinfo = PolicyId::new("default", "podinfo");
        let owner = (0..2).find(|&i| Shard { index: i, count: 2 }.owns(&podinfo));
        assert_eq!(owner, Some(0));
    }
}
