//! The signature formats, read without I/O or cryptography (so the fuzz
//! target `signatures` can take them apart on any bytes):
//!
//! - cosign's tag scheme: the `sha256-<hex>.sig` manifest, whose layers
//!   carry a payload digest and the annotations `…cosign/signature`,
//!   `…cosign/certificate`, `…cosign/chain` and `…cosign/bundle` (the Rekor
//!   entry with its signed entry timestamp);
//! - the simple-signing payload those layers sign;
//! - OCI 1.1 referrers: the image index listing an image's referrers (from
//!   the referrers API or the `sha256-<hex>` fallback tag) and the
//!   artifact manifest holding a Sigstore bundle;
//! - the Sigstore bundle itself (`sigstore_protobuf_specs`, the Sigstore
//!   project's types), its DSSE envelope and in-toto statement, and the
//!   Rekor entry bodies (`hashedrekord`, `dsse`) a signed entry timestamp
//!   covers.
//!
//! What the Sigstore crates lack and is written here: cosign's annotation
//! layout and its Rekor-bundle JSON, the simple-signing payload, the
//! canonical JSON a signed entry timestamp signs, and DSSE's
//! pre-authentication encoding — each a few lines of a published format.

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;
use sigstore_protobuf_specs::dev::sigstore::bundle::v1::{
    Bundle as BundleProto, bundle, verification_material,
};

/// The annotation holding a layer's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// A keyless signature's leaf certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// A keyless signature's intermediate and root certificates (PEM).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// The Rekor entry of a signature (cosign's JSON, with the signed entry
/// timestamp).
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// The payload type cosign writes.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";
/// The artifact type of a Sigstore bundle stored as an OCI referrer (every
/// bundle version starts so).
pub const BUNDLE_ARTIFACT_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// The artifact type newer cosign writes and the referrers API is asked for.
pub const BUNDLE_ARTIFACT_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The predicate type of the statement `cosign sign` puts in a bundle: an
/// image signature. Attestations (SBOMs, provenance, scans) made by the
/// same key or identity sit beside it as referrers with other predicate
/// types, and none of them says "this image may be deployed".
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The tag cosign's scheme puts an image's signatures under.
pub fn signature_tag(digest: &str) -> Option<String> {
    referrers_tag(digest).map(|tag| format!("{tag}.sig"))
}

/// The OCI 1.1 referrers fallback tag of an image (`sha256-<hex>`).
pub fn referrers_tag(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| format!("sha256-{hex}"))
}

/// One signature layer of a `.sig` manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// The digest of the payload blob.
    pub digest: String,
    pub signature: Vec<u8>,
    /// DER of the leaf certificate (keyless).
    pub certificate: Option<Vec<u8>>,
    /// DER of the chain certificates (keyless), leaf's issuer first.
    pub chain: Vec<Vec<u8>>,
    /// The Rekor entry (keyless).
    pub rekor: Option<RekorEntry>,
}

#[derive(Deserialize)]
struct ManifestWire {
    #[serde(default)]
    layers: Vec<LayerWire>,
}

#[derive(Deserialize)]
struct LayerWire {
    digest: String,
    #[serde(default, rename = "mediaType")]
    media_type: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// The signature layers of a `.sig` manifest, each read or why not (one
/// malformed layer does not hide another's good signature). Layers
/// without a signature annotation are left out.
pub fn signature_layers(manifest: &[u8]) -> Result<Vec<Result<SignatureLayer, String>>, String> {
    let parsed: ManifestWire =
        serde_json::from_slice(manifest).map_err(|e| format!("not an image manifest: {e}"))?;
    Ok(parsed
        .layers
        .into_iter()
        .filter_map(|layer| {
            let signature = layer.annotations.get(SIGNATURE_ANNOTATION)?;
            Some(read_layer(&layer, signature))
        })
        .collect())
}

fn read_layer(layer: &LayerWire, signature: &str) -> Result<SignatureLayer, String> {
    if !is_sha256_digest(&layer.digest) {
        return Err(format!(
            "layer digest {:?} is not a sha256 digest",
            layer.digest
        ));
    }
    let signature = base64_standard(signature.trim())
        .map_err(|_| "the signature annotation is not base64".to_owned())?;
    let certificate = match layer.annotations.get(CERTIFICATE_ANNOTATION) {
        Some(pem) if !pem.trim().is_empty() => Some(
            pem_blocks(pem, "CERTIFICATE")?
                .into_iter()
                .next()
                .ok_or("the certificate annotation holds no PEM CERTIFICATE")?,
        ),
        _ => None,
    };
    let chain = match layer.annotations.get(CHAIN_ANNOTATION) {
        Some(pem) => pem_blocks(pem, "CERTIFICATE")?,
        None => Vec::new(),
    };
    let rekor = layer
        .annotations
        .get(BUNDLE_ANNOTATION)
        .map(|json| rekor_bundle(json.as_bytes()))
        .transpose()?;
    Ok(SignatureLayer {
        digest: layer.digest.clone(),
        signature,
        certificate,
        chain,
        rekor,
    })
}

/// Whether `digest` is `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(digest: &str) -> bool {
    referrers_tag(digest).is_some()
}

/// The DER of every PEM block labelled `label` in `text`, in order.
pub fn pem_blocks(text: &str, label: &str) -> Result<Vec<Vec<u8>>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let body = &rest[start + begin.len()..];
        let stop = body.find(&end).ok_or_else(|| format!("no {end} line"))?;
        let base64: String = body[..stop].split_whitespace().collect();
        out.push(
            base64_standard(&base64)
                .map_err(|e| format!("a PEM {label} body is not base64: {e}"))?,
        );
        rest = &body[stop + end.len()..];
    }
    Ok(out)
}

/// What a simple-signing payload names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference`.
    pub reference: String,
    /// `critical.image.docker-manifest-digest`.
    pub digest: String,
}

#[derive(Deserialize)]
struct PayloadWire {
    critical: CriticalWire,
}

#[derive(Deserialize)]
struct CriticalWire {
    identity: IdentityWire,
    image: ImageWire,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct IdentityWire {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct ImageWire {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Reads a simple-signing payload of cosign's type.
pub fn simple_signing(payload: &[u8]) -> Result<SimpleSigning, String> {
    let parsed: PayloadWire = serde_json::from_slice(payload)
        .map_err(|e| format!("the payload is not a simple-signing document: {e}"))?;
    if parsed.critical.kind != PAYLOAD_TYPE {
        return Err(format!(
            "payload type {:?} is not {PAYLOAD_TYPE:?}",
            parsed.critical.kind
        ));
    }
    Ok(SimpleSigning {
        reference: parsed.critical.identity.docker_reference,
        digest: parsed.critical.image.docker_manifest_digest,
    })
}

/// The payload `cosign sign` writes for `reference` at `digest`, byte for
/// byte (Go's encoding/json of its struct, no annotations). When its
/// sha256 is a layer's digest, these are the layer's bytes and the blob
/// need not be fetched.
pub fn simple_signing_payload(reference: &str, digest: &str) -> Vec<u8> {
    let reference = serde_json::to_string(reference).unwrap_or_default();
    let digest = serde_json::to_string(digest).unwrap_or_default();
    format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":{reference}}},\"image\":{{\"docker-manifest-digest\":{digest}}},\"type\":\"{PAYLOAD_TYPE}\"}},\"optional\":null}}"
    )
    .into_bytes()
}

/// A Rekor transparency log entry with its signed entry timestamp (the
/// log's promise of inclusion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekorEntry {
    /// The canonicalized entry body (JSON).
    pub body: Vec<u8>,
    pub integrated_time: i64,
    pub log_index: i64,
    /// The log's key id (sha256 of its DER public key).
    pub log_id: Vec<u8>,
    /// The signed entry timestamp: the log key's signature over
    /// [`RekorEntry::signed_payload`].
    pub set: Vec<u8>,
    /// The inclusion proof a bundle may carry beside the promise.
    pub proof: Option<InclusionProof>,
}

/// A Merkle audit path (RFC 9162) from the entry to a tree head, and the
/// log's signed checkpoint for that head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry's index in the tree the proof is for.
    pub index: i64,
    pub tree_size: i64,
    pub root_hash: Vec<u8>,
    pub hashes: Vec<Vec<u8>>,
    /// The signed note: `origin\nsize\nbase64(root)\n…\n\n— name sig\n`.
    pub checkpoint: String,
}

impl InclusionProof {
    /// The root the audit path leads to from the entry `body`, or `None`
    /// when the path does not fit the index and size.
    pub fn root_from(&self, body: &[u8]) -> Option<Vec<u8>> {
        use sha2::{Digest as _, Sha256};
        let node = |left: &[u8], right: &[u8]| {
            let mut hasher = Sha256::new();
            hasher.update([1u8]);
            hasher.update(left);
            hasher.update(right);
            hasher.finalize().to_vec()
        };
        let (Ok(index), Ok(size)) = (u64::try_from(self.index), u64::try_from(self.tree_size))
        else {
            return None;
        };
        if index >= size {
            return None;
        }
        let mut hasher = Sha256::new();
        hasher.update([0u8]);
        hasher.update(body);
        let mut root = hasher.finalize().to_vec();
        let (mut f, mut last) = (index, size - 1);
        for sibling in &self.hashes {
            if last == 0 || sibling.len() != 32 {
                return None;
            }
            if f & 1 == 1 || f == last {
                root = node(sibling, &root);
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    last >>= 1;
                }
            } else {
                root = node(&root, sibling);
            }
            f >>= 1;
            last >>= 1;
        }
        (last == 0).then_some(root)
    }

    /// The checkpoint's signed text, tree size, root hash and signatures
    /// (each: key hint, signature), or why it is not a signed note.
    pub fn checkpoint_parts(&self) -> Result<Checkpoint, String> {
        let (text, signatures) = self
            .checkpoint
            .split_once("\n\n")
            .ok_or("the checkpoint is not a signed note (no blank line)")?;
        let mut lines = text.lines();
        let _origin = lines.next().ok_or("the checkpoint is empty")?;
        let size: i64 = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or("the checkpoint names no tree size")?;
        let root = lines
            .next()
            .and_then(|l| base64_standard(l).ok())
            .ok_or("the checkpoint names no root hash")?;
        let signatures = signatures
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("\u{2014} ")?;
                let (_name, signature) = rest.rsplit_once(' ')?;
                let bytes = base64_standard(signature).ok()?;
                (bytes.len() > 4).then(|| (bytes[..4].to_vec(), bytes[4..].to_vec()))
            })
            .collect();
        Ok(Checkpoint {
            signed: format!("{text}\n").into_bytes(),
            size,
            root,
            signatures,
        })
    }
}

/// A checkpoint taken apart: the signed text, tree size, root, and each
/// signature with its 4-byte key hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub signed: Vec<u8>,
    pub size: i64,
    pub root: Vec<u8>,
    pub signatures: Vec<(Vec<u8>, Vec<u8>)>,
}

impl RekorEntry {
    /// The bytes a signed entry timestamp signs: the canonical JSON (keys
    /// sorted, no spaces) of body (base64), integratedTime, logID (hex)
    /// and logIndex.
    pub fn signed_payload(&self) -> Vec<u8> {
        let body = base64::engine::general_purpose::STANDARD.encode(&self.body);
        format!(
            "{{\"body\":\"{body}\",\"integratedTime\":{},\"logID\":\"{}\",\"logIndex\":{}}}",
            self.integrated_time,
            hex::encode(&self.log_id),
            self.log_index
        )
        .into_bytes()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RekorBundleWire {
    signed_entry_timestamp: String,
    payload: RekorPayloadWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayloadWire {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// Reads cosign's `…cosign/bundle` annotation.
pub fn rekor_bundle(json: &[u8]) -> Result<RekorEntry, String> {
    let wire: RekorBundleWire = serde_json::from_slice(json)
        .map_err(|e| format!("the Rekor bundle annotation is not cosign's JSON: {e}"))?;
    Ok(RekorEntry {
        body: base64_standard(&wire.payload.body)
            .map_err(|_| "the Rekor entry body is not base64".to_owned())?,
        integrated_time: wire.payload.integrated_time,
        log_index: wire.payload.log_index,
        log_id: hex::decode(&wire.payload.log_id)
            .map_err(|_| "the Rekor log id is not hex".to_owned())?,
        set: base64_standard(&wire.signed_entry_timestamp)
            .map_err(|_| "the signed entry timestamp is not base64".to_owned())?,
        proof: None,
    })
}

/// What a Rekor entry body records: the hash of what was signed, the
/// signatures, and the signer's certificate or key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedSignature {
    /// sha256 (hex) of the signed payload: the simple-signing payload for
    /// `hashedrekord`, the DSSE payload for `dsse`.
    pub payload_sha256: String,
    pub signatures: Vec<Vec<u8>>,
    /// PEM of the certificate (or key) each signature was logged with.
    pub verifiers: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
struct EntryWire {
    kind: String,
    spec: serde_json::Value,
}

/// Reads a `hashedrekord` or `dsse` entry body.
pub fn rekor_body(body: &[u8]) -> Result<LoggedSignature, String> {
    let entry: EntryWire = serde_json::from_slice(body)
        .map_err(|e| format!("the Rekor entry body is not JSON: {e}"))?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let decoded = |v: &serde_json::Value| text(v).and_then(|t| base64_standard(&t).ok());
    let spec = &entry.spec;
    let sha256 = |hash: &serde_json::Value| {
        (hash["algorithm"] == "sha256")
            .then(|| text(&hash["value"]))
            .flatten()
            .unwrap_or_default()
    };
    let logged = match entry.kind.as_str() {
        "hashedrekord" => LoggedSignature {
            payload_sha256: sha256(&spec["data"]["hash"]),
            signatures: decoded(&spec["signature"]["content"]).into_iter().collect(),
            verifiers: decoded(&spec["signature"]["publicKey"]["content"])
                .into_iter()
                .collect(),
        }
        .complete()?,
        "dsse" => {
            let signatures = spec["signatures"].as_array().cloned().unwrap_or_default();
            LoggedSignature {
                payload_sha256: sha256(&spec["payloadHash"]),
                signatures: signatures
                    .iter()
                    .filter_map(|s| decoded(&s["signature"]))
                    .collect(),
                verifiers: signatures
                    .iter()
                    .filter_map(|s| decoded(&s["verifier"]))
                    .collect(),
            }
            .complete()?
        }
        other => {
            return Err(format!(
                "Rekor entry kind {other:?} is not hashedrekord or dsse"
            ));
        }
    };
    Ok(logged)
}

impl LoggedSignature {
    fn complete(self) -> Result<LoggedSignature, String> {
        if self.payload_sha256.is_empty() || self.signatures.is_empty() {
            return Err("the Rekor entry body names no sha256 hash or no signature".into());
        }
        Ok(self)
    }
}

/// The referrers an image index lists whose artifact type is a Sigstore
/// bundle: their manifest digests.
pub fn bundle_referrers(index: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct IndexWire {
        #[serde(default)]
        manifests: Vec<DescriptorWire>,
    }
    #[derive(Deserialize)]
    struct DescriptorWire {
        digest: String,
        #[serde(default, rename = "artifactType")]
        artifact_type: String,
    }
    let index: IndexWire =
        serde_json::from_slice(index).map_err(|e| format!("not an image index: {e}"))?;
    Ok(index
        .manifests
        .into_iter()
        .filter(|m| {
            m.artifact_type.starts_with(BUNDLE_ARTIFACT_PREFIX) && is_sha256_digest(&m.digest)
        })
        .map(|m| m.digest)
        .collect())
}

/// The blob digest of the Sigstore bundle an artifact manifest holds, and
/// the digest its `subject` names.
pub fn bundle_manifest(manifest: &[u8]) -> Result<(String, Option<String>), String> {
    #[derive(Deserialize)]
    struct ArtifactWire {
        #[serde(default)]
        layers: Vec<LayerWire>,
        #[serde(default)]
        subject: Option<SubjectWire>,
    }
    #[derive(Deserialize)]
    struct SubjectWire {
        digest: String,
    }
    let parsed: ArtifactWire =
        serde_json::from_slice(manifest).map_err(|e| format!("not an artifact manifest: {e}"))?;
    let layer = parsed
        .layers
        .iter()
        .find(|l| l.media_type.starts_with(BUNDLE_ARTIFACT_PREFIX) && is_sha256_digest(&l.digest))
        .ok_or("the artifact manifest has no Sigstore bundle layer")?;
    Ok((layer.digest.clone(), parsed.subject.map(|s| s.digest)))
}

/// A Sigstore bundle, as far as image signatures use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// DER of the signing certificate (keyless), or `None` for a key.
    pub certificate: Option<Vec<u8>>,
    /// The first Rekor entry with a signed entry timestamp.
    pub rekor: Option<RekorEntry>,
    /// The DSSE envelope's payload type, payload and one signature.
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Reads a Sigstore bundle (JSON, v0.1 to v0.3) that signs with a DSSE
/// envelope, as cosign does for images.
pub fn bundle(json: &[u8]) -> Result<Bundle, String> {
    let proto: BundleProto =
        serde_json::from_slice(json).map_err(|e| format!("not a Sigstore bundle: {e}"))?;
    if !proto.media_type.starts_with(BUNDLE_ARTIFACT_PREFIX) {
        return Err(format!(
            "bundle media type {:?} is not a Sigstore bundle",
            proto.media_type
        ));
    }
    let material = proto
        .verification_material
        .ok_or("the bundle has no verification material")?;
    let certificate = match material.content {
        Some(verification_material::Content::Certificate(cert)) => Some(cert.raw_bytes),
        Some(verification_material::Content::X509CertificateChain(chain)) => Some(
            chain
                .certificates
                .into_iter()
                .next()
                .ok_or("the bundle's certificate chain is empty")?
                .raw_bytes,
        ),
        Some(verification_material::Content::PublicKey(_)) => None,
        None => return Err("the bundle names no certificate or key".into()),
    };
    let rekor = material.tlog_entries.into_iter().find_map(|entry| {
        let set = entry.inclusion_promise?.signed_entry_timestamp;
        let proof = entry.inclusion_proof.map(|p| InclusionProof {
            index: p.log_index,
            tree_size: p.tree_size,
            root_hash: p.root_hash,
            hashes: p.hashes,
            checkpoint: p.checkpoint.map(|c| c.envelope).unwrap_or_default(),
        });
        Some(RekorEntry {
            body: entry.canonicalized_body,
            integrated_time: entry.integrated_time,
            log_index: entry.log_index,
            log_id: entry.log_id?.key_id,
            set,
            proof,
        })
    });
    let Some(bundle::Content::DsseEnvelope(envelope)) = proto.content else {
        return Err(
            "the bundle signs a message digest, not a DSSE envelope (an image signature is one)"
                .into(),
        );
    };
    let [signature] = envelope.signatures.as_slice() else {
        return Err(format!(
            "the bundle's DSSE envelope has {} signatures, not one",
            envelope.signatures.len()
        ));
    };
    Ok(Bundle {
        certificate,
        rekor,
        payload_type: envelope.payload_type,
        signature: signature.sig.clone(),
        payload: envelope.payload,
    })
}

/// DSSE's pre-authentication encoding: what an envelope's signature signs.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// An in-toto statement: its predicate type and its subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub predicate_type: String,
    /// Name and sha256 (hex) of each subject that has a sha256.
    pub subjects: Vec<(String, String)>,
}

/// An in-toto statement's predicate type and subjects.
pub fn in_toto_statement(payload: &[u8]) -> Result<Statement, String> {
    #[derive(Deserialize)]
    struct StatementWire {
        #[serde(rename = "_type")]
        kind: String,
        #[serde(default, rename = "predicateType")]
        predicate_type: String,
        #[serde(default)]
        subject: Vec<SubjectWire>,
    }
    #[derive(Deserialize)]
    struct SubjectWire {
        #[serde(default)]
        name: String,
        #[serde(default)]
        digest: HashMap<String, String>,
    }
    let statement: StatementWire = serde_json::from_slice(payload)
        .map_err(|e| format!("the DSSE payload is not an in-toto statement: {e}"))?;
    if !statement.kind.starts_with("https://in-toto.io/Statement/") {
        return Err(format!(
            "statement type {:?} is not in-toto's",
            statement.kind
        ));
    }
    Ok(Statement {
        predicate_type: statement.predicate_type,
        subjects: statement
            .subject
            .into_iter()
            .filter_map(|s| Some((s.name, s.digest.get("sha256")?.clone())))
            .collect(),
    })
}

fn base64_standard(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}
