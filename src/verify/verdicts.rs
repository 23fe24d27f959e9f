//! The door: a digest's verdict under a policy's trust, cached, read from
//! the registry when not known (see the module doc of `verify`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use super::format::{self, SignatureLayer};
use super::keyless::{Identity, Signed, TrustedRoot};
use super::keys::PublicKey;
use crate::model::ImageName;
use crate::registry::{Registry, RegistryError};

/// What a policy's `verify` trusts: its keys, its keyless identities and
/// the trusted root those are checked against.
pub struct Trust {
    pub keys: Vec<PublicKey>,
    pub identities: Vec<Identity>,
    pub root: Option<Arc<TrustedRoot>>,
    /// Names the trust in the verdict cache.
    id: String,
}

impl Trust {
    pub fn new(
        keys: Vec<PublicKey>,
        identities: Vec<Identity>,
        root: Option<Arc<TrustedRoot>>,
    ) -> Trust {
        let mut id: Vec<String> = keys.iter().map(|k| k.fingerprint.clone()).collect();
        id.extend(
            identities
                .iter()
                .map(|i| format!("{} {}", i.issuer, i.subject.as_str())),
        );
        // Keyless verdicts hold only under the root they were checked with.
        if let (Some(root), false) = (&root, identities.is_empty()) {
            id.push(root.fingerprint.clone());
        }
        Trust {
            keys,
            identities,
            root,
            id: id.join("\n"),
        }
    }
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("keys", &self.keys)
            .field("identities", &self.identities.len())
            .finish()
    }
}

/// An image's tag list as a pass read it, with a hash naming it.
#[derive(Clone, Copy)]
pub struct Listing<'a> {
    pub tags: &'a [String],
    pub hash: u64,
}

impl<'a> Listing<'a> {
    pub fn new(tags: &'a [String]) -> Listing<'a> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        tags.hash(&mut hasher);
        Listing {
            tags,
            hash: hasher.finish(),
        }
    }

    fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// Why a digest is or is not taken as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Verified: `by` is the key's fingerprint (`sha256:…`) or the
    /// keyless identity (`subject (issuer)`).
    Signed { by: String },
    /// No signature found.
    Unsigned,
    /// Signatures exist, none valid: why the last one failed.
    Bad(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Signed { by } => write!(f, "signed by {by}"),
            Verdict::Unsigned => write!(f, "unsigned"),
            Verdict::Bad(why) => write!(f, "bad signature: {why}"),
        }
    }
}

/// Signature verdicts by (digest, trust), shared by a reconciler's passes;
/// the digest each verified candidate tag resolved to while its image's
/// tag list stays the same; and the registries known to lack the
/// referrers API.
#[derive(Default)]
pub struct Verdicts {
    verdicts: Mutex<HashMap<(String, String), (Verdict, u64)>>,
    digests: Mutex<HashMap<(String, String), (u64, String)>>,
    no_referrers_api: Mutex<HashSet<String>>,
}

impl Verdicts {
    /// The digest `tag` of `image` resolved to under the tag list `list`
    /// (its hash), if it was looked up since.
    pub fn known_digest(&self, image: &ImageName, tag: &str, list: u64) -> Option<String> {
        let digests = self.digests.lock().ok()?;
        digests
            .get(&(image.canonical(), tag.to_owned()))
            .filter(|(hash, _)| *hash == list)
            .map(|(_, digest)| digest.clone())
    }

    /// Remembers what `tag` resolved to under tag list `list`.
    pub fn remember_digest(&self, image: &ImageName, tag: &str, list: u64, digest: &str) {
        if let Ok(mut digests) = self.digests.lock() {
            if digests.len() >= 100_000 {
                digests.clear();
            }
            digests.insert(
                (image.canonical(), tag.to_owned()),
                (list, digest.to_owned()),
            );
        }
    }

    /// The verdict on `digest` of `image` under `trust`: cached, or read
    /// from the registry.
    pub async fn verdict(
        &self,
        registry: &Registry,
        image: &ImageName,
        digest: &str,
        trust: &Trust,
        listing: Listing<'_>,
    ) -> Result<Verdict, RegistryError> {
        let key = (format!("{}@{digest}", image.canonical()), trust.id.clone());
        let cached = self.verdicts.lock().ok().and_then(|c| c.get(&key).cloned());
        if let Some((verdict, list)) = cached
            && (matches!(verdict, Verdict::Signed { .. }) || list == listing.hash)
        {
            return Ok(verdict);
        }
        let verdict = self.read(registry, image, digest, trust, listing).await?;
        if let Ok(mut cache) = self.verdicts.lock() {
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert(key, (verdict.clone(), listing.hash));
        }
        Ok(verdict)
    }

    async fn read(
        &self,
        registry: &Registry,
        image: &ImageName,
        digest: &str,
        trust: &Trust,
        listing: Listing<'_>,
    ) -> Result<Verdict, RegistryError> {
        let (Some(sig_tag), Some(fallback_tag)) =
            (format::signature_tag(digest), format::referrers_tag(digest))
        else {
            return Ok(Verdict::Bad(format!("{digest} is not a sha256 digest")));
        };
        let mut why = None;
        if listing.has(&sig_tag)
            && let Some(manifest) = registry.manifest(image, &sig_tag).await?
        {
            match format::signature_layers(&manifest.body) {
                Err(e) => why = Some(format!("{sig_tag} is {e}")),
                Ok(layers) => {
                    for layer in layers {
                        let checked = match layer {
                            Ok(layer) => {
                                let payload = self.payload(registry, image, digest, &layer).await?;
                                check_simple_signing(&layer, &payload, trust, image, digest)
                            }
                            Err(e) => Err(e),
                        };
                        match checked {
                            Ok(by) => return Ok(Verdict::Signed { by }),
                            Err(e) => why = Some(e),
                        }
                    }
                    why.get_or_insert_with(|| format!("{sig_tag} has no signature layers"));
                }
            }
        }
        for manifest in self
            .bundle_referrers(registry, image, digest, &fallback_tag, listing)
            .await?
        {
            let Some(fetched) = registry.manifest(image, &manifest).await? else {
                continue;
            };
            let checked = match format::bundle_manifest(&fetched.body) {
                Ok((_, Some(subject))) if subject != digest => Err(format!(
                    "the bundle {manifest} is attached to {subject}, not {digest}"
                )),
                Ok((blob, _)) => {
                    let json = registry.blob(image, &blob).await?;
                    format::bundle(&json)
                        .and_then(|bundle| check_bundle(&bundle, trust, image, digest))
                }
                Err(e) => Err(e),
            };
            match checked {
                Ok(by) => return Ok(Verdict::Signed { by }),
                Err(e) => why = Some(e),
            }
        }
        Ok(why.map_or(Verdict::Unsigned, Verdict::Bad))
    }

    /// A `.sig` layer's payload: the bytes cosign writes for this image
    /// and digest when they hash to the layer's digest (no request), else
    /// the blob.
    async fn payload(
        &self,
        registry: &Registry,
        image: &ImageName,
        digest: &str,
        layer: &SignatureLayer,
    ) -> Result<Vec<u8>, RegistryError> {
        for reference in references(image) {
            let payload = format::simple_signing_payload(&reference, digest);
            if format!("sha256:{}", hex::encode(Sha256::digest(&payload))) == layer.digest {
                return Ok(payload);
            }
        }
        registry.blob(image, &layer.digest).await
    }

    /// The manifest digests of the Sigstore bundles attached to `digest`:
    /// from the referrers API, or the fallback tag's index when the
    /// registry has no API and the tag is listed.
    async fn bundle_referrers(
        &self,
        registry: &Registry,
        image: &ImageName,
        digest: &str,
        fallback_tag: &str,
        listing: Listing<'_>,
    ) -> Result<Vec<String>, RegistryError> {
        let no_api = self
            .no_referrers_api
            .lock()
            .is_ok_and(|hosts| hosts.contains(&image.registry));
        if !no_api {
            match registry
                .referrers(image, digest, format::BUNDLE_ARTIFACT_TYPE)
                .await?
            {
                Some(index) => return Ok(format::bundle_referrers(&index).unwrap_or_default()),
                None => {
                    tracing::info!(registry = %image.registry, "no OCI referrers API: using the sha256-<hex> fallback tag");
                    if let Ok(mut hosts) = self.no_referrers_api.lock() {
                        hosts.insert(image.registry.clone());
                    }
                }
            }
        }
        if !listing.has(fallback_tag) {
            return Ok(Vec::new());
        }
        Ok(match registry.manifest(image, fallback_tag).await? {
            Some(index) => format::bundle_referrers(&index.body).unwrap_or_default(),
            None => Vec::new(),
        })
    }
}

/// How cosign may have spelled `image`'s repository in a payload.
fn references(image: &ImageName) -> Vec<String> {
    let mut out = vec![image.canonical()];
    if image.registry == ImageName::DOCKER_HUB {
        out.push(format!("index.docker.io/{}", image.repository));
    }
    let written = image.written.clone();
    if !out.contains(&written) {
        out.push(written);
    }
    out
}

/// Whether `reference` (a repository, maybe with tag or digest) names
/// `image`'s repository.
fn names_image(reference: &str, image: &ImageName) -> bool {
    let repository = reference.split('@').next().unwrap_or(reference);
    let repository = match repository.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => repository,
    };
    let repository = repository
        .strip_prefix("index.docker.io/")
        .map(|rest| format!("docker.io/{rest}"))
        .unwrap_or_else(|| repository.to_owned());
    ImageName::parse(&repository).is_ok_and(|named| named.canonical() == image.canonical())
}

/// One `.sig` layer: signed by a key or a trusted identity, over a payload
/// naming `digest` in `image`'s repository. Who signed, or why not.
pub(super) fn check_simple_signing(
    layer: &SignatureLayer,
    payload: &[u8],
    trust: &Trust,
    image: &ImageName,
    digest: &str,
) -> Result<String, String> {
    let by = signer(
        trust,
        payload,
        &layer.signature,
        layer.certificate.as_deref(),
        layer.rekor.as_ref(),
        payload,
    )?;
    let named = format::simple_signing(payload)?;
    if named.digest != digest {
        return Err(format!(
            "the signature is for {}, not {digest}",
            named.digest
        ));
    }
    if !names_image(&named.reference, image) {
        return Err(format!(
            "the signature is for {}, not {}",
            named.reference, image.written
        ));
    }
    Ok(by)
}

/// A Sigstore bundle: its DSSE envelope signed by a key or a trusted
/// identity, over an in-toto statement naming `digest` in `image`.
pub(super) fn check_bundle(
    bundle: &format::Bundle,
    trust: &Trust,
    image: &ImageName,
    digest: &str,
) -> Result<String, String> {
    if bundle.payload_type != format::IN_TOTO_PAYLOAD_TYPE {
        return Err(format!(
            "the bundle's payload type {:?} is not an in-toto statement",
            bundle.payload_type
        ));
    }
    let message = format::pae(&bundle.payload_type, &bundle.payload);
    let by = signer(
        trust,
        &message,
        &bundle.signature,
        bundle.certificate.as_deref(),
        bundle.rekor.as_ref(),
        &bundle.payload,
    )?;
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let statement = format::in_toto_statement(&bundle.payload)?;
    if statement.predicate_type != format::COSIGN_SIGN_PREDICATE {
        return Err(format!(
            "the bundle is an attestation ({:?}), not an image signature ({})",
            statement.predicate_type,
            format::COSIGN_SIGN_PREDICATE
        ));
    }
    let Some((name, _)) = statement.subjects.iter().find(|(_, sha)| sha == hex) else {
        return Err(format!("the bundle's statement does not name {digest}"));
    };
    if !name.is_empty() && !names_image(name, image) {
        return Err(format!("the bundle is for {name}, not {}", image.written));
    }
    Ok(by)
}

/// Who made `signature` over `message`: a policy key, or the keyless
/// certificate's identity (with `logged` the payload its Rekor entry
/// hashes).
fn signer(
    trust: &Trust,
    message: &[u8],
    signature: &[u8],
    certificate: Option<&[u8]>,
    rekor: Option<&format::RekorEntry>,
    logged: &[u8],
) -> Result<String, String> {
    if let Some(key) = trust.keys.iter().find(|k| k.verifies(message, signature)) {
        return Ok(key.fingerprint.clone());
    }
    match (certificate, &trust.root) {
        (Some(certificate), Some(root)) if !trust.identities.is_empty() => root.check(
            &Signed {
                certificate,
                signature,
                message,
                payload_sha256: hex::encode(Sha256::digest(logged)),
                rekor,
            },
            &trust.identities,
        ),
        (Some(_), None) if !trust.identities.is_empty() => {
            Err("keyless signature, but the daemon config names no sigstore.trustedRoot".into())
        }
        _ => Err("signed by none of the policy's keys, or the payload was changed".into()),
    }
}
