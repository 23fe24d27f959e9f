//! Commit signatures in the forms git itself writes, so `git verify-commit`
//! accepts them: an OpenPGP detached binary signature (what `gpg -bsau`
//! makes) or an SSH signature in namespace `git` (what `ssh-keygen -Y sign
//! -n git` makes), ASCII-armored, stored in the commit's `gpgsig` header.
//!
//! The payload signed is the commit object exactly as it will be stored,
//! without the `gpgsig` header (`git2::Repository::commit_create_buffer`).
//! Verifying is the reverse: `git2::Repository::extract_signature` gives
//! the armored signature and that payload back; [`SignatureKind::of`] tells
//! which verifier applies.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
use pgp::packet::{SecretSubkey, SignatureType};
use pgp::types::{KeyDetails, Password, SecretParams, SigningKey, Timestamp};
use ssh_key::{HashAlg, LineEnding, PrivateKey};

use super::GitError;
use super::ssh_key_file::{self, KeyFileError};
use crate::config::{Signing, SigningFormat};
use crate::model::Secret;

/// The SSH signature namespace git uses for commits and tags.
pub const SSH_NAMESPACE: &str = "git";

/// The commit header that holds a signature, for every format.
pub const SIGNATURE_HEADER: &str = "gpgsig";

/// Which kind of signature an armored block is, by its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// `-----BEGIN PGP SIGNATURE-----`: check with a GnuPG keyring.
    OpenPgp,
    /// `-----BEGIN SSH SIGNATURE-----`: check with an allowed-signers file.
    Ssh,
    /// `-----BEGIN SIGNED MESSAGE-----` (gpgsm).
    X509,
}

impl SignatureKind {
    pub fn of(armored: &str) -> Option<SignatureKind> {
        let first = armored.trim_start().lines().next()?;
        match first.trim_end() {
            "-----BEGIN PGP SIGNATURE-----" | "-----BEGIN PGP MESSAGE-----" => {
                Some(SignatureKind::OpenPgp)
            }
            "-----BEGIN SSH SIGNATURE-----" => Some(SignatureKind::Ssh),
            "-----BEGIN SIGNED MESSAGE-----" => Some(SignatureKind::X509),
            _ => None,
        }
    }
}

/// A loaded signing key. Loading checks that the key can sign (it signs a
/// probe), so a wrong passphrase or an unusable key fails at startup.
pub struct Signer {
    key_file: PathBuf,
    inner: Inner,
}

enum Inner {
    OpenPgp {
        key: Box<SignedSecretKey>,
        /// Index into `secret_subkeys`, or `None` for the primary key.
        subkey: Option<usize>,
        passphrase: Option<Secret>,
    },
    Ssh(Box<PrivateKey>),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_file", &self.key_file)
            .field("key", &self.describe())
            .finish()
    }
}

impl Signer {
    /// Reads the key (and passphrase) the config names.
    pub fn load(signing: &Signing) -> Result<Signer, GitError> {
        let bytes = std::fs::read(&signing.key_file).map_err(|source| GitError::ReadSecret {
            what: "the signing key (git.signing.keyFile)",
            path: signing.key_file.clone(),
            source,
        })?;
        let passphrase = signing
            .passphrase_file
            .as_deref()
            .map(|path| {
                Secret::read_file(path).map_err(|source| GitError::ReadSecret {
                    what: "the signing key passphrase (git.signing.passphraseFile)",
                    path: path.to_owned(),
                    source,
                })
            })
            .transpose()?;
        let fail = |message: String| GitError::Signing {
            key_file: signing.key_file.clone(),
            message,
        };
        let inner = match signing.format {
            SigningFormat::OpenPgp => load_openpgp(&bytes, passphrase).map_err(fail)?,
            SigningFormat::Ssh => load_ssh(&bytes, passphrase).map_err(fail)?,
        };
        let signer = Signer {
            key_file: signing.key_file.clone(),
            inner,
        };
        signer.sign(b"crowsnest: signing key check\n")?;
        Ok(signer)
    }

    /// The key file this signer was loaded from.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// `OpenPGP key <fingerprint>` or `SSH key SHA256:...`, for logs.
    pub fn describe(&self) -> String {
        match &self.inner {
            Inner::OpenPgp { key, subkey, .. } => {
                let fingerprint = match subkey {
                    Some(i) => key.secret_subkeys[*i].key.fingerprint(),
                    None => key.primary_key.fingerprint(),
                };
                format!("OpenPGP key {fingerprint:X}")
            }
            Inner::Ssh(key) => format!(
                "SSH {} key {}",
                key.algorithm(),
                key.fingerprint(HashAlg::Sha256)
            ),
        }
    }

    /// Signs `payload` (a commit buffer) and returns the armored signature
    /// without its trailing newline: libgit2 writes the header value as
    /// given, and git's own headers have no trailing blank line.
    pub fn sign(&self, payload: &[u8]) -> Result<String, GitError> {
        let fail = |message: String| GitError::Signing {
            key_file: self.key_file.clone(),
            message,
        };
        let armored = match &self.inner {
            Inner::OpenPgp {
                key,
                subkey,
                passphrase,
            } => {
                let password = match passphrase {
                    Some(p) => Password::from(p.expose()),
                    None => Password::empty(),
                };
                let signature = match subkey {
                    Some(i) => sign_pgp(&key.secret_subkeys[*i].key, &password, payload),
                    None => sign_pgp(&key.primary_key, &password, payload),
                }
                .map_err(|e| {
                    fail(format!(
                        "cannot unlock or use the key: {e}; check git.signing.passphraseFile"
                    ))
                })?;
                signature
                    .to_armored_string(ArmorOptions::default())
                    .map_err(|e| fail(format!("cannot armor the signature: {e}")))?
            }
            Inner::Ssh(key) => key
                .sign(SSH_NAMESPACE, HashAlg::Sha512, payload)
                .and_then(|sig| sig.to_pem(LineEnding::LF))
                .map_err(|e| fail(format!("cannot sign: {e}")))?,
        };
        Ok(armored.trim_end_matches(['\n', '\r']).to_owned())
    }
}

fn sign_pgp(
    key: &impl SigningKey,
    password: &Password,
    payload: &[u8],
) -> pgp::errors::Result<DetachedSignature> {
    DetachedSignature::sign_binary_data(
        ssh_key::rand_core::OsRng,
        key,
        password,
        key.hash_alg(),
        payload,
    )
}

fn load_openpgp(bytes: &[u8], passphrase: Option<Secret>) -> Result<Inner, String> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        return Err(
            "the file holds a public key; export the secret key with `gpg --armor --export-secret-keys KEYID`"
                .into(),
        );
    }
    let parsed = if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
        SignedSecretKey::from_armor_single(Cursor::new(bytes)).map(|(key, _)| key)
    } else {
        SignedSecretKey::from_bytes(Cursor::new(bytes))
    };
    let key = parsed.map_err(|e| {
        format!("not an OpenPGP secret key ({e}); export one with `gpg --armor --export-secret-keys KEYID`")
    })?;
    let subkey = signing_subkey(&key);
    if subkey.is_none() && !primary_can_sign(&key) {
        return Err("the key has no signing-capable (sub)key".into());
    }
    let encrypted = match subkey {
        Some(i) => is_encrypted(key.secret_subkeys[i].key.secret_params()),
        None => is_encrypted(key.primary_key.secret_params()),
    };
    if encrypted && passphrase.is_none() {
        return Err("the key is protected by a passphrase; set git.signing.passphraseFile".into());
    }
    Ok(Inner::OpenPgp {
        key: Box::new(key),
        subkey,
        passphrase,
    })
}

fn is_encrypted(params: &SecretParams) -> bool {
    params.is_encrypted()
}

/// The newest subkey whose binding signature allows signing and that has
/// neither expired nor been revoked, as gpg picks it.
fn signing_subkey(key: &SignedSecretKey) -> Option<usize> {
    let now = Timestamp::now();
    key.secret_subkeys
        .iter()
        .enumerate()
        .filter(|(_, sub)| {
            let revoked = sub
                .signatures
                .iter()
                .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
            let binding = sub
                .signatures
                .iter()
                .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
                .max_by_key(|s| s.created());
            let usable = binding.is_some_and(|s| {
                let expired = s.key_expiration_time().is_some_and(|valid| {
                    valid.as_secs() != 0
                        && subkey_created(&sub.key).as_secs() as u64 + valid.as_secs() as u64
                            <= now.as_secs() as u64
                });
                s.key_flags().sign() && !expired
            });
            usable && !revoked
        })
        .max_by_key(|(_, sub)| subkey_created(&sub.key))
        .map(|(i, _)| i)
}

fn subkey_created(key: &SecretSubkey) -> Timestamp {
    key.created_at()
}

/// Whether the primary key may sign: its self-signatures say so, or (old
/// keys) they carry no key flags at all.
fn primary_can_sign(key: &SignedSecretKey) -> bool {
    let self_signatures: Vec<_> = key
        .details
        .users
        .iter()
        .flat_map(|u| &u.signatures)
        .chain(&key.details.direct_signatures)
        .collect();
    let flagged: Vec<_> = self_signatures
        .iter()
        .filter(|s| s.key_flags() != Default::default())
        .collect();
    flagged.is_empty() || flagged.iter().any(|s| s.key_flags().sign())
}

fn load_ssh(bytes: &[u8], passphrase: Option<Secret>) -> Result<Inner, String> {
    let key = ssh_key_file::read(bytes, passphrase.as_ref()).map_err(|e| match e {
        KeyFileError::NotOpenSsh(e) => {
            format!("not an OpenSSH private key ({e}); make one with `ssh-keygen -t ed25519`")
        }
        KeyFileError::NeedsPassphrase => {
            "the key is protected by a passphrase; set git.signing.passphraseFile".to_owned()
        }
        KeyFileError::CannotDecrypt(e) => {
            format!("cannot decrypt the key ({e}); check git.signing.passphraseFile")
        }
    })?;
    Ok(Inner::Ssh(Box::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_kinds_are_told_apart_by_their_armor() {
        let cases = [
            (
                "-----BEGIN PGP SIGNATURE-----\n\nabc",
                Some(SignatureKind::OpenPgp),
            ),
            (
                "-----BEGIN SSH SIGNATURE-----\nabc",
                Some(SignatureKind::Ssh),
            ),
            (
                "-----BEGIN SIGNED MESSAGE-----\nabc",
                Some(SignatureKind::X509),
            ),
            ("hello", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(SignatureKind::of(text), want, "{text:?}");
        }
    }

    #[test]
    fn a_public_key_in_key_file_is_refused_with_what_to_do() {
        let err = load_openpgp(
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n",
            None,
        )
        .err()
        .unwrap();
        assert!(err.contains("--export-secret-keys"), "{err}");
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(load_openpgp(b"hello", None).is_err());
        let err = load_ssh(b"hello", None).err().unwrap();
        assert!(err.contains("not an OpenSSH private key"), "{err}");
    }
}
