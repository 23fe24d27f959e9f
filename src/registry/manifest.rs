//! Just enough of the OCI and Docker manifest formats to tell which
//! platforms a tag provides: an index (or Docker manifest list) names them
//! per entry; a single image names its platform in its config blob.

use serde::Deserialize;

use crate::model::Platform;

/// Media types crowsnest asks for, most specific first. Asking for all of
/// them makes the registry answer with the manifest as pushed, so the
/// digest is the one `docker pull` would resolve.
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    media_type: Option<String>,
    manifests: Option<Vec<Entry>>,
    config: Option<Descriptor>,
    /// Docker schema 1 names the architecture at the top.
    architecture: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    platform: Option<PlatformDoc>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

#[derive(Deserialize)]
struct PlatformDoc {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl PlatformDoc {
    fn into_platform(self) -> Platform {
        Platform {
            os: self.os,
            architecture: self.architecture,
            variant: self.variant.filter(|v| !v.is_empty()),
        }
    }
}

/// What a manifest says about platforms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// An index or manifest list: the platforms of its entries (attestation
    /// entries, `unknown/unknown`, are left out).
    Index {
        media_type: String,
        platforms: Vec<Platform>,
    },
    /// A single image: its platform is in the config blob `config`.
    Image { media_type: String, config: String },
    /// A schema-1 manifest, which carries the architecture itself.
    Schema1 { platform: Platform },
}

/// Parses a manifest body; `content_type` is the response header, used when
/// the body does not carry `mediaType`.
pub(crate) fn parse(body: &[u8], content_type: Option<&str>) -> Result<Parsed, String> {
    let doc: Document = serde_json::from_slice(body)
        .map_err(|e| format!("the manifest is not the JSON crowsnest expects: {e}"))?;
    let media_type = doc
        .media_type
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_owned()))
        .unwrap_or_default();
    if let Some(entries) = doc.manifests {
        let platforms = entries
            .into_iter()
            .filter_map(|e| e.platform)
            .map(PlatformDoc::into_platform)
            .filter(|p| p.os != "unknown" && p.architecture != "unknown")
            .collect();
        return Ok(Parsed::Index {
            media_type,
            platforms,
        });
    }
    if let Some(config) = doc.config {
        return Ok(Parsed::Image {
            media_type,
            config: config.digest,
        });
    }
    if let Some(architecture) = doc.architecture {
        return Ok(Parsed::Schema1 {
            platform: Platform {
                os: "linux".into(),
                architecture,
                variant: None,
            },
        });
    }
    Err("the manifest has neither `manifests` nor `config`".into())
}

/// The platform an image config blob declares.
pub(crate) fn config_platform(body: &[u8]) -> Result<Platform, String> {
    let doc: PlatformDoc = serde_json::from_slice(body)
        .map_err(|e| format!("the image config has no os/architecture: {e}"))?;
    Ok(doc.into_platform())
}

/// Whether `offered` satisfies `wanted`, with containerd's normalisation:
/// `arm64` without a variant is `arm64/v8`, `arm` without one is `arm/v7`,
/// and a wanted platform without a variant accepts any variant.
pub(crate) fn provides(offered: &Platform, wanted: &Platform) -> bool {
    if !offered.os.eq_ignore_ascii_case(&wanted.os)
        || normal_arch(&offered.architecture) != normal_arch(&wanted.architecture)
    {
        return false;
    }
    let Some(want) = &wanted.variant else {
        return true;
    };
    let default = default_variant(&normal_arch(&offered.architecture));
    let have = offered.variant.as_deref().or(default);
    have.is_some_and(|have| have.eq_ignore_ascii_case(want))
}

fn normal_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "aarch64" => "arm64".into(),
        "x86_64" | "x86-64" => "amd64".into(),
        "i386" => "386".into(),
        "armhf" | "armel" => "arm".into(),
        other => other.into(),
    }
}

fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Platform {
        Platform::parse(text).unwrap()
    }

    #[test]
    fn platform_matching_follows_containerd() {
        let cases = [
            ("linux/amd64", "linux/amd64", true),
            ("linux/amd64", "linux/arm64", false),
            ("windows/amd64", "linux/amd64", false),
            ("linux/arm64", "linux/arm64/v8", true),
            ("linux/arm64/v8", "linux/arm64", true),
            ("linux/arm/v6", "linux/arm/v7", false),
            ("linux/arm", "linux/arm/v7", true),
            ("linux/arm/v6", "linux/arm", true),
            ("linux/x86_64", "linux/amd64", true),
        ];
        for (offered, wanted, expected) in cases {
            assert_eq!(
                provides(&p(offered), &p(wanted)),
                expected,
                "{offered} provides {wanted}"
            );
        }
    }

    #[test]
    fn indexes_list_platforms_without_attestations() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[
              {"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}},
              {"digest":"sha256:b","platform":{"os":"linux","architecture":"arm","variant":"v7"}},
              {"digest":"sha256:c","platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        assert_eq!(
            parse(body, None).unwrap(),
            Parsed::Index {
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                platforms: vec![p("linux/amd64"), p("linux/arm/v7")],
            }
        );
    }

    #[test]
    fn images_point_at_their_config_and_take_the_header_media_type() {
        let body = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:c","size":2},"layers":[]}"#;
        assert_eq!(
            parse(
                body,
                Some("application/vnd.docker.distribution.manifest.v2+json")
            )
            .unwrap(),
            Parsed::Image {
                media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
                config: "sha256:c".into(),
            }
        );
        assert_eq!(
            config_platform(br#"{"architecture":"arm64","os":"linux","rootfs":{}}"#).unwrap(),
            p("linux/arm64")
        );
        assert!(parse(b"{}", None).is_err());
        assert!(parse(b"<html>", None).is_err());
    }
}
