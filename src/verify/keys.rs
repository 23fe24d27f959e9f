//! Public keys: a policy's cosign keys (PEM), a Fulcio certificate's key,
//! a trusted root's CA and Rekor keys (DER SubjectPublicKeyInfo). The
//! cryptography is RustCrypto's, the crates sigstore-rs verifies with.

use sha2::{Digest as _, Sha256, Sha384};

use super::format::pem_blocks;

/// A public key, with a short fingerprint for logs and trailers
/// (`sha256:` of its DER SubjectPublicKeyInfo, 16 hex digits).
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
    Rsa(rsa::RsaPublicKey),
}

/// The hash a signature was made over (ECDSA and RSA; Ed25519 signs the
/// message itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
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
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `cosign
    /// generate-key-pair` writes it.
    pub fn from_pem(text: &str) -> Result<PublicKey, String> {
        let der = pem_blocks(text, "PUBLIC KEY")?
            .into_iter()
            .next()
            .ok_or("no -----BEGIN PUBLIC KEY----- block")?;
        PublicKey::from_der(&der)
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_der(der: &[u8]) -> Result<PublicKey, String> {
        use p256::pkcs8::DecodePublicKey as _;
        let fingerprint = format!("sha256:{}", &hex::encode(Sha256::digest(der))[..16]);
        let kind = if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            KeyKind::P256(key)
        } else if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
            KeyKind::P384(key)
        } else if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            KeyKind::Ed25519(key)
        } else if let Ok(key) = rsa::RsaPublicKey::from_public_key_der(der) {
            KeyKind::Rsa(key)
        } else {
            return Err(
                "not an ECDSA P-256/P-384, Ed25519 or RSA public key (PEM PUBLIC KEY)".into(),
            );
        };
        Ok(PublicKey { fingerprint, kind })
    }

    /// Whether `signature` is this key's over `message` as cosign signs:
    /// ECDSA (ASN.1 DER) and RSA (PKCS #1 v1.5) over its SHA-256, Ed25519
    /// over the message itself; a P-384 key also over SHA-384, the hash
    /// sigstore-go (cosign v3) pairs with that curve.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifies_with(Hash::Sha256, message, signature)
            || (matches!(self.kind, KeyKind::P384(_))
                && self.verifies_with(Hash::Sha384, message, signature))
    }

    /// Whether `signature` is this key's over `message` hashed with `hash`
    /// (a certificate's signature algorithm names it).
    pub fn verifies_with(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        let prehash = match hash {
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
        };
        match &self.kind {
            KeyKind::P256(key) => p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|s| key.verify_prehash(&prehash, &s).is_ok()),
            KeyKind::P384(key) => p384::ecdsa::Signature::from_der(signature)
                .is_ok_and(|s| key.verify_prehash(&prehash, &s).is_ok()),
            KeyKind::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify(message, &s).is_ok()),
            KeyKind::Rsa(key) => {
                let scheme = match hash {
                    Hash::Sha256 => rsa::Pkcs1v15Sign::new::<Sha256>(),
                    Hash::Sha384 => rsa::Pkcs1v15Sign::new::<Sha384>(),
                };
                key.verify(scheme, &prehash, signature).is_ok()
            }
        }
    }
}
