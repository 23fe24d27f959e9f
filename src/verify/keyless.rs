//! Keyless signatures, checked offline against a Sigstore trusted root
//! (`sigstore.trustedRoot` in the daemon config): the signing certificate
//! was issued by one of the root's Fulcio CAs, the Rekor log promised the
//! entry (its signed entry timestamp verifies under the log's key) at a
//! time the certificate was valid, the entry records this very signature
//! and payload, and the certificate names an identity the policy trusts
//! (OIDC issuer exactly, subject by regular expression).
//!
//! The trusted root is read with `sigstore_protobuf_specs` and the
//! certificates with `x509-cert` (both what sigstore-rs uses). The chain
//! check is written here because sigstore-rs keeps its own private and
//! needs its networked features around it: one signature from a CA the
//! root lists to the leaf, with validity at the log's time — Fulcio issues
//! leaves directly under the CA chains a trusted root lists.

use std::time::Duration;

use sha2::{Digest as _, Sha256};
use sigstore_protobuf_specs::dev::sigstore::common::v1::TimeRange;
use sigstore_protobuf_specs::dev::sigstore::trustroot::v1::TrustedRoot as TrustedRootProto;
use x509_cert::Certificate;
use x509_cert::der::{self, Decode as _, Encode as _, Reader as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};

use super::format::{self, RekorEntry};
use super::keys::{Hash, PublicKey};

/// Fulcio's OIDC issuer extension (a DER UTF8String).
const ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
/// Fulcio's first issuer extension (the raw string).
const ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const RSA_SHA256: &str = "1.2.840.113549.1.1.11";
const RSA_SHA384: &str = "1.2.840.113549.1.1.12";
const ED25519: &str = "1.3.101.112";
/// Extended key usage: code signing (what Fulcio issues).
const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";

/// The trust a keyless signature is checked against.
pub struct TrustedRoot {
    /// `sha256:` of the JSON, 16 hex digits: names this root in caches.
    pub fingerprint: String,
    cas: Vec<Authority>,
    logs: Vec<Log>,
}

struct Authority {
    /// DER of the certificate's subject name.
    subject: Vec<u8>,
    key: PublicKey,
    valid: Valid,
}

struct Log {
    key_id: Vec<u8>,
    key: PublicKey,
    valid: Valid,
}

impl Log {
    /// A bundle's inclusion proof: the audit path leads from the entry to
    /// the root the log signed in the checkpoint.
    fn check_inclusion(&self, proof: &format::InclusionProof, body: &[u8]) -> Result<(), String> {
        if proof.root_from(body).as_deref() != Some(proof.root_hash.as_slice()) {
            return Err("the Rekor inclusion proof does not lead to its root hash".into());
        }
        let checkpoint = proof.checkpoint_parts()?;
        if checkpoint.size != proof.tree_size || checkpoint.root != proof.root_hash {
            return Err("the Rekor checkpoint is for another tree than the inclusion proof".into());
        }
        let hint = self.key_id.get(..4).unwrap_or_default();
        checkpoint
            .signatures
            .iter()
            .any(|(h, signature)| h == hint && self.key.verifies(&checkpoint.signed, signature))
            .then_some(())
            .ok_or_else(|| "the Rekor checkpoint is not signed by the log's key".to_owned())
    }
}

/// A time range in Unix seconds; either end may be open.
#[derive(Clone, Copy)]
struct Valid(Option<i64>, Option<i64>);

impl Valid {
    fn from(range: Option<&TimeRange>) -> Valid {
        match range {
            Some(range) => Valid(
                range.start.as_ref().map(|t| t.seconds),
                range.end.as_ref().map(|t| t.seconds),
            ),
            None => Valid(None, None),
        }
    }

    fn contains(self, time: i64) -> bool {
        self.0.is_none_or(|start| start <= time) && self.1.is_none_or(|end| time <= end)
    }
}

/// A keyless signature to check.
pub struct Signed<'a> {
    /// DER of the leaf certificate.
    pub certificate: &'a [u8],
    pub signature: &'a [u8],
    /// The bytes the signature is over.
    pub message: &'a [u8],
    /// sha256 (hex) of the payload the Rekor entry records.
    pub payload_sha256: String,
    pub rekor: Option<&'a RekorEntry>,
}

/// An identity a policy trusts: the issuer exactly, the subject by regex.
pub struct Identity {
    pub issuer: String,
    pub subject: regex::Regex,
}

impl Identity {
    /// A policy's identities; subjects were checked to compile when the
    /// policy was read (one that does not is left out, trusting nobody).
    pub fn compile(identities: &[crate::policy::Identity]) -> Vec<Identity> {
        identities
            .iter()
            .filter_map(|i| {
                Some(Identity {
                    issuer: i.issuer.clone(),
                    subject: regex::Regex::new(&i.subject).ok()?,
                })
            })
            .collect()
    }
}

impl TrustedRoot {
    /// Reads the `trusted_root.json` at `path` (the daemon config's
    /// `sigstore.trustedRoot`).
    pub fn load(path: &std::path::Path) -> Result<TrustedRoot, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("sigstore.trustedRoot {}: {e}", path.display()))?;
        TrustedRoot::from_json(&bytes)
            .map_err(|e| format!("sigstore.trustedRoot {}: {e}", path.display()))
    }

    /// Reads a `trusted_root.json`.
    pub fn from_json(json: &[u8]) -> Result<TrustedRoot, String> {
        let proto: TrustedRootProto = serde_json::from_slice(json)
            .map_err(|e| format!("not a Sigstore trusted root: {e}"))?;
        let mut cas = Vec::new();
        for ca in &proto.certificate_authorities {
            let valid = Valid::from(ca.valid_for.as_ref());
            for cert in ca.cert_chain.iter().flat_map(|c| &c.certificates) {
                let parsed = Certificate::from_der(&cert.raw_bytes)
                    .map_err(|e| format!("a certificate authority's certificate: {e}"))?;
                cas.push(Authority {
                    subject: parsed
                        .tbs_certificate
                        .subject
                        .to_der()
                        .map_err(|e| e.to_string())?,
                    key: spki_key(&parsed)?,
                    valid,
                });
            }
        }
        let mut logs = Vec::new();
        for log in &proto.tlogs {
            let Some(key) = &log.public_key else { continue };
            let Some(raw) = &key.raw_bytes else { continue };
            logs.push(Log {
                key_id: log
                    .log_id
                    .as_ref()
                    .map(|id| id.key_id.clone())
                    .unwrap_or_else(|| Sha256::digest(raw).to_vec()),
                key: PublicKey::from_der(raw).map_err(|e| format!("a Rekor key: {e}"))?,
                valid: Valid::from(key.valid_for.as_ref()),
            });
        }
        if cas.is_empty() {
            return Err("the trusted root lists no certificate authority".into());
        }
        if logs.is_empty() {
            return Err("the trusted root lists no Rekor log key".into());
        }
        Ok(TrustedRoot {
            fingerprint: format!("sha256:{}", &hex::encode(Sha256::digest(json))[..16]),
            cas,
            logs,
        })
    }

    /// Checks `signed` and returns who signed (`subject (issuer)`), or why
    /// it does not count.
    pub fn check(&self, signed: &Signed<'_>, identities: &[Identity]) -> Result<String, String> {
        let leaf = Certificate::from_der(signed.certificate)
            .map_err(|e| format!("the signing certificate is not X.509: {e}"))?;
        let rekor = signed
            .rekor
            .ok_or("keyless signature without a Rekor entry (no signed entry timestamp)")?;
        let log = self
            .logs
            .iter()
            .find(|l| l.key_id == rekor.log_id)
            .ok_or("the Rekor entry is from a log the trusted root does not list")?;
        if !log.key.verifies(&rekor.signed_payload(), &rekor.set) {
            return Err("the Rekor signed entry timestamp does not verify".into());
        }
        if let Some(proof) = &rekor.proof {
            log.check_inclusion(proof, &rekor.body)?;
        }
        let time = rekor.integrated_time;
        if !log.valid.contains(time) {
            return Err("the Rekor entry is outside its log key's validity".into());
        }
        let validity = &leaf.tbs_certificate.validity;
        let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        if time < seconds(validity.not_before.to_unix_duration())
            || time > seconds(validity.not_after.to_unix_duration())
        {
            return Err("the certificate was not valid when Rekor logged the signature".into());
        }
        self.issued(&leaf, signed.certificate, time)?;
        let key = spki_key(&leaf)?;
        if !key.verifies(signed.message, signed.signature) {
            return Err("the signature does not verify with the certificate's key, or the payload was changed".into());
        }
        let logged = format::rekor_body(&rekor.body)?;
        if logged.payload_sha256 != signed.payload_sha256
            || !logged.signatures.iter().any(|s| s == signed.signature)
        {
            return Err("the Rekor entry records another signature or payload".into());
        }
        for verifier in &logged.verifiers {
            let text = String::from_utf8_lossy(verifier);
            let ders = format::pem_blocks(&text, "CERTIFICATE")?;
            if !ders.iter().any(|d| d == signed.certificate) {
                return Err("the Rekor entry records another certificate".into());
            }
        }
        let (issuer, subject) = identity(&leaf)?;
        let printable = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect()
        };
        let (shown_issuer, shown_subject) = (printable(&issuer), printable(&subject));
        identities
            .iter()
            .find(|i| i.issuer == issuer && i.subject.is_match(&subject))
            .map(|_| format!("{shown_subject} ({shown_issuer})"))
            .ok_or_else(|| {
                format!(
                    "signed by {shown_subject} ({shown_issuer}), not an identity the policy trusts"
                )
            })
    }

    /// The leaf's signature verifies under a CA the root lists, valid at
    /// `time`.
    fn issued(&self, leaf: &Certificate, der: &[u8], time: i64) -> Result<(), String> {
        let issuer = leaf
            .tbs_certificate
            .issuer
            .to_der()
            .map_err(|e| e.to_string())?;
        let hash = match leaf.signature_algorithm.oid.to_string().as_str() {
            ECDSA_SHA256 | RSA_SHA256 | ED25519 => Hash::Sha256,
            ECDSA_SHA384 | RSA_SHA384 => Hash::Sha384,
            other => {
                return Err(format!(
                    "certificate signature algorithm {other} is not supported"
                ));
            }
        };
        let tbs = tbs_bytes(der)?;
        let signature = leaf
            .signature
            .as_bytes()
            .ok_or("the certificate's signature is not whole bytes")?;
        self.cas
            .iter()
            .filter(|ca| ca.subject == issuer && ca.valid.contains(time))
            .find(|ca| ca.key.verifies_with(hash, tbs, signature))
            .map(|_| ())
            .ok_or_else(|| {
                "the certificate was not issued by a certificate authority of the trusted root"
                    .to_owned()
            })
    }
}

/// The DER of a certificate's `tbsCertificate`, exactly as signed (not
/// re-encoded).
fn tbs_bytes(der: &[u8]) -> Result<&[u8], String> {
    let mut reader = der::SliceReader::new(der).map_err(|e| e.to_string())?;
    der::Header::decode(&mut reader).map_err(|e| e.to_string())?;
    reader.tlv_bytes().map_err(|e| e.to_string())
}

fn spki_key(cert: &Certificate) -> Result<PublicKey, String> {
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    PublicKey::from_der(&spki)
}

/// The certificate's OIDC issuer and subject (SAN URI or email).
fn identity(cert: &Certificate) -> Result<(String, String), String> {
    let mut issuer = None;
    let mut subject = None;
    let mut code_signing = false;
    for extension in cert.tbs_certificate.extensions.iter().flatten() {
        let value = extension.extn_value.as_bytes();
        match extension.extn_id.to_string().as_str() {
            "2.5.29.37" => {
                code_signing = ExtendedKeyUsage::from_der(value)
                    .is_ok_and(|usage| usage.0.iter().any(|oid| oid.to_string() == CODE_SIGNING));
            }
            ISSUER_V2 => {
                issuer = der::asn1::Utf8StringRef::from_der(value)
                    .ok()
                    .map(|s| s.as_str().to_owned())
            }
            ISSUER_V1 if issuer.is_none() => {
                issuer = std::str::from_utf8(value).ok().map(str::to_owned)
            }
            "2.5.29.17" => {
                let names = SubjectAltName::from_der(value)
                    .map_err(|e| format!("the certificate's subject alternative name: {e}"))?;
                subject = names.0.iter().find_map(|name| match name {
                    GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
                    GeneralName::Rfc822Name(email) => Some(email.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    if !code_signing {
        return Err("the certificate is not for code signing (extended key usage)".into());
    }
    Ok((
        issuer.ok_or("the certificate names no OIDC issuer (Fulcio extension)")?,
        subject.ok_or("the certificate names no subject (SAN URI or email)")?,
    ))
}
