//! Only signed images (PRODUCT.md §9): cosign signatures checked before a
//! tag is written. Called from `reconcile` only.
//!
//! What is read: cosign's tag scheme. The signatures of the image whose
//! manifest digest is `sha256:<hex>` are the layers of the manifest tagged
//! `sha256-<hex>.sig` in the same repository; each layer is a
//! simple-signing payload (JSON: `critical.image.docker-manifest-digest`,
//! `critical.identity.docker-reference`, `critical.type`) and its
//! annotation `dev.cosignproject.cosign/signature` holds the base64
//! signature over the payload's bytes. A signature counts when it verifies
//! with one of the policy's public keys **and** the payload names the very
//! digest being written and the image's repository; the verdict of a digest
//! is cached by digest and key set, so a steady-state pass asks the
//! registry nothing more.
//!
//! Keys are PEM public keys (`-----BEGIN PUBLIC KEY-----`, as `cosign
//! generate-key-pair` writes them): ECDSA P-256 and P-384 (ASN.1 DER
//! signatures over the SHA-256 of the payload, cosign's default hash),
//! Ed25519 (over the payload itself) and RSA (PKCS #1 v1.5, SHA-256).
//!
//! Why not the `sigstore` crate: its cosign support brings `oci-client`, a
//! second registry client, which this project keeps out (see
//! `src/registry/mod.rs`); the formats read here are small JSON documents,
//! and the cryptography is the RustCrypto crates sigstore-rs itself
//! verifies with. Not built yet: keyless identities (Fulcio certificates
//! and Rekor entries) and OCI 1.1 referrers / Sigstore bundles — a policy
//! naming `keyless` is refused by `check` and disabled by the pass, so an
//! image is never taken as verified by a rule crowsnest cannot check.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::model::ImageName;
use crate::registry::{Registry, RegistryError};

/// The annotation holding a layer's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The payload type cosign writes.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

/// A public key a policy trusts, with a short fingerprint for logs and
/// trailers (`sha256:` of its DER SubjectPublicKeyInfo, 16 hex digits).
#[derive(Clone)]
pub struct PublicKey {
    pub fingerprint: String,
    kind: KeyKind,
}

#[derive(Clone)]
enum KeyKind {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::pkcs1v15::VerifyingKey<Sha256>),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            KeyKind::P256(_) => "ecdsa-p256",
            KeyKind::P384(_) => "ecdsa-p384",
            KeyKind::Ed25519(_) => "ed25519",
            KeyKind::Rsa(_) => "rsa",
        };
        write!(f, "{kind} {}", self.fingerprint)
    }
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn from_pem(text: &str) -> Result<PublicKey, String> {
        use p256::pkcs8::DecodePublicKey as _;
        let der = pem_body(text)?;
        let fingerprint = format!("sha256:{}", &hex::encode(Sha256::digest(&der))[..16]);
        let kind = if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(&der) {
            KeyKind::P256(key)
        } else if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(&der) {
            KeyKind::P384(key)
        } else if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_der(&der) {
            KeyKind::Ed25519(key)
        } else if let Ok(key) = rsa::RsaPublicKey::from_public_key_der(&der) {
            KeyKind::Rsa(rsa::pkcs1v15::VerifyingKey::new(key))
        } else {
            return Err(
                "not an ECDSA P-256/P-384, Ed25519 or RSA public key (PEM PUBLIC KEY)".into(),
            );
        };
        Ok(PublicKey { fingerprint, kind })
    }

    /// Whether `signature` is this key's over `payload`.
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        match &self.kind {
            KeyKind::P256(key) => p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|s| key.verify(payload, &s).is_ok()),
            KeyKind::P384(key) => p384::ecdsa::Signature::from_der(signature)
                .is_ok_and(|s| key.verify_prehash(&Sha256::digest(payload), &s).is_ok()),
            KeyKind::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify(payload, &s).is_ok()),
            KeyKind::Rsa(key) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|s| key.verify(payload, &s).is_ok()),
        }
    }
}

/// The DER inside a single PEM `PUBLIC KEY` block.
fn pem_body(text: &str) -> Result<Vec<u8>, String> {
    let begin = "-----BEGIN PUBLIC KEY-----";
    let end = "-----END PUBLIC KEY-----";
    let start = text
        .find(begin)
        .ok_or("no -----BEGIN PUBLIC KEY----- block")?
        + begin.len();
    let stop = text[start..]
        .find(end)
        .ok_or("no -----END PUBLIC KEY----- line")?
        + start;
    let body: String = text[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("the PEM body is not base64: {e}"))
}

/// Why a digest is or is not taken as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Verified with the key of this fingerprint.
    Signed { key: String },
    /// No `sha256-<hex>.sig` manifest.
    Unsigned,
    /// Signatures exist, none valid: why the last one failed.
    Bad(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Signed { key } => write!(f, "signed by key {key}"),
            Verdict::Unsigned => write!(f, "no signature"),
            Verdict::Bad(why) => write!(f, "bad signature: {why}"),
        }
    }
}

#[derive(Deserialize)]
struct SigManifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    digest: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    identity: Identity,
    image: PayloadImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The tag cosign's scheme puts an image's signatures under.
pub fn signature_tag(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256-{hex}.sig"))
}

/// Checks one signature layer: the signature verifies with a key, and the
/// payload names `digest` in `image`'s repository. `Ok(key)` or why not.
pub fn check_layer(
    payload: &[u8],
    signature_b64: &str,
    keys: &[PublicKey],
    image: &ImageName,
    digest: &str,
) -> Result<String, String> {
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| "the signature annotation is not base64".to_owned())?;
    let key = keys
        .iter()
        .find(|k| k.verifies(payload, &signature))
        .ok_or_else(|| {
            "signed by none of the policy's keys, or the payload was changed".to_owned()
        })?;
    let parsed: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("the payload is not a simple-signing document: {e}"))?;
    if parsed.critical.kind != PAYLOAD_TYPE {
        return Err(format!(
            "payload type {:?} is not {PAYLOAD_TYPE:?}",
            parsed.critical.kind
        ));
    }
    if parsed.critical.image.docker_manifest_digest != digest {
        return Err(format!(
            "the signature is for {}, not {digest}",
            parsed.critical.image.docker_manifest_digest
        ));
    }
    let reference = &parsed.critical.identity.docker_reference;
    let named = ImageName::parse(reference.split('@').next().unwrap_or(reference))
        .map(|n| n.canonical())
        .unwrap_or_default();
    let named = named.split(':').next().unwrap_or(&named).to_owned();
    if named != image.canonical() && reference != &image.written {
        return Err(format!(
            "the signature is for {reference}, not {}",
            image.written
        ));
    }
    Ok(key.fingerprint.clone())
}

/// Signature verdicts by (digest, key set), shared by a reconciler's
/// passes, and the digest each verified candidate tag resolved to while
/// its image's tag list stays the same.
#[derive(Default)]
pub struct Verdicts(
    Mutex<HashMap<(String, String), Verdict>>,
    Mutex<HashMap<(String, String), (u64, String)>>,
);

impl Verdicts {
    /// The digest `tag` of `image` resolved to when the image's tags were
    /// `list` (a hash of them), if it was looked up since.
    pub fn known_digest(&self, image: &ImageName, tag: &str, list: u64) -> Option<String> {
        let digests = self.1.lock().ok()?;
        digests
            .get(&(image.canonical(), tag.to_owned()))
            .filter(|(hash, _)| *hash == list)
            .map(|(_, digest)| digest.clone())
    }

    /// Remembers what `tag` resolved to under tag list `list`.
    pub fn remember_digest(&self, image: &ImageName, tag: &str, list: u64, digest: &str) {
        if let Ok(mut digests) = self.1.lock() {
            if digests.len() >= 100_000 {
                digests.clear();
            }
            digests.insert(
                (image.canonical(), tag.to_owned()),
                (list, digest.to_owned()),
            );
        }
    }

    /// The verdict on `digest` of `image` under `keys`: cached, or read
    /// from the registry (the `.sig` manifest and its payload blobs).
    pub async fn verdict(
        &self,
        registry: &Registry,
        image: &ImageName,
        digest: &str,
        keys: &[PublicKey],
    ) -> Result<Verdict, RegistryError> {
        let set: Vec<&str> = keys.iter().map(|k| k.fingerprint.as_str()).collect();
        let cache_key = (format!("{}@{digest}", image.canonical()), set.join(","));
        if let Some(known) = self.0.lock().ok().and_then(|c| c.get(&cache_key).cloned()) {
            return Ok(known);
        }
        let verdict = read_verdict(registry, image, digest, keys).await?;
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert(cache_key, verdict.clone());
        }
        Ok(verdict)
    }
}

async fn read_verdict(
    registry: &Registry,
    image: &ImageName,
    digest: &str,
    keys: &[PublicKey],
) -> Result<Verdict, RegistryError> {
    let Some(tag) = signature_tag(digest) else {
        return Ok(Verdict::Bad(format!("{digest} is not a sha256 digest")));
    };
    let Some(manifest) = registry.manifest(image, &tag).await? else {
        return Ok(Verdict::Unsigned);
    };
    let parsed: SigManifest = match serde_json::from_slice(&manifest.body) {
        Ok(parsed) => parsed,
        Err(e) => return Ok(Verdict::Bad(format!("{tag} is not an image manifest: {e}"))),
    };
    let mut why = format!("{tag} has no signature layers");
    for layer in &parsed.layers {
        let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
            continue;
        };
        let payload = registry.blob(image, &layer.digest).await?;
        match check_layer(&payload, signature, keys, image, digest) {
            Ok(key) => return Ok(Verdict::Signed { key }),
            Err(reason) => why = reason,
        }
    }
    Ok(Verdict::Bad(why))
}

#[cfg(test)]
mod tests;
