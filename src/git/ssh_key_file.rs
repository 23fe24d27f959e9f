//! OpenSSH private key files (`-----BEGIN OPENSSH PRIVATE KEY-----`), read
//! with `ssh-key`, and decrypted with it when protected by a passphrase.
//!
//! One kind of valid key `ssh-key` 0.6 refuses, so it is read here by hand:
//! OpenSSH writes an ECDSA private scalar as an SSH `mpint`, which drops
//! leading zero bytes, while `ssh-key` accepts only the curve's full width
//! ("length invalid"). A scalar whose first byte is zero and whose second
//! is below 0x80 comes out a byte short: one P-256 or P-384 key in 512 that
//! `ssh-keygen` makes, and one P-521 key in four. Its fix lives in `ssh-key`
//! 0.7, still a release candidate on the next RustCrypto generation. When
//! `ssh-key` refuses a key, [`read`] reads the file's private section itself
//! (decrypting it with `ssh-key`'s own KDF and cipher), pads the scalar, and
//! builds the key from it with the curve crate, which derives the public
//! point; a point that differs from the one in the file is refused.
//! Whatever the reread cannot take, `ssh-key`'s first error is reported.

use ssh_encoding::{Decode, Reader, pem};
use ssh_key::private::{EcdsaKeypair, KeypairData};
use ssh_key::{Cipher, Error, Kdf, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::model::Secret;

/// Why a key file cannot be used. The texts never hold the passphrase.
#[derive(Debug)]
pub(super) enum KeyFileError {
    /// Not an OpenSSH private key file, or a damaged one.
    NotOpenSsh(String),
    /// Protected by a passphrase, and none was given.
    NeedsPassphrase,
    /// The passphrase given does not decrypt it.
    CannotDecrypt(String),
}

/// The key in `bytes`, decrypted with `passphrase` when it is protected.
pub(super) fn read(bytes: &[u8], passphrase: Option<&Secret>) -> Result<PrivateKey, KeyFileError> {
    let key = match PrivateKey::from_openssh(bytes) {
        Ok(key) => key,
        Err(first) if short_scalar(&first) => {
            return reread(bytes, None).map_err(|_| KeyFileError::NotOpenSsh(first.to_string()));
        }
        Err(first) => return Err(KeyFileError::NotOpenSsh(first.to_string())),
    };
    if !key.is_encrypted() {
        return Ok(key);
    }
    let passphrase = passphrase.ok_or(KeyFileError::NeedsPassphrase)?;
    key.decrypt(passphrase.expose()).or_else(|first| {
        let passphrase = passphrase.expose().as_bytes();
        short_scalar(&first)
            .then(|| reread(bytes, Some(passphrase)).ok())
            .flatten()
            .ok_or_else(|| KeyFileError::CannotDecrypt(first.to_string()))
    })
}

/// The error `ssh-key` gives for a scalar a byte short (a wrong
/// passphrase, or a damaged file, gives others: no second reading then).
fn short_scalar(error: &Error) -> bool {
    matches!(error, Error::Encoding(ssh_encoding::Error::Length))
}

const MAGIC: &[u8] = b"openssh-key-v1\0";
const OPENSSH_LINE_WIDTH: usize = 70;

/// The ECDSA key in an OpenSSH key file, read field by field (PROTOCOL.key
/// in OpenSSH's sources): magic, cipher, KDF, one public key, then the
/// private section — two equal check words, the key type, the curve, the
/// public point, the scalar, the comment, padding.
fn reread(bytes: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey, Error> {
    let mut outer = pem::Decoder::new_wrapped(bytes, OPENSSH_LINE_WIDTH)?;
    let mut magic = [0u8; MAGIC.len()];
    outer.read(&mut magic)?;
    if outer.type_label() != "OPENSSH PRIVATE KEY" || magic != MAGIC {
        return Err(Error::FormatEncoding);
    }
    let cipher = Cipher::new(&String::decode(&mut outer)?)?;
    let kdf = Kdf::decode(&mut outer)?;
    if u32::decode(&mut outer)? != 1 {
        return Err(Error::FormatEncoding);
    }
    let public = PublicKey::from_bytes(&Vec::<u8>::decode(&mut outer)?)?;
    let mut private = Zeroizing::new(Vec::<u8>::decode(&mut outer)?);
    if cipher.is_some() {
        let mut tag = [0u8; 16];
        let tag = if cipher.has_tag() {
            outer.read(&mut tag)?;
            Some(tag)
        } else {
            None
        };
        let (key, iv) = kdf.derive_key_and_iv(cipher, passphrase.ok_or(Error::Encrypted)?)?;
        cipher.decrypt(&key, &iv, &mut private, tag)?;
    }

    let mut section = private.as_slice();
    if u32::decode(&mut section)? != u32::decode(&mut section)? {
        return Err(Error::Crypto);
    }
    let algorithm = String::decode(&mut section)?;
    let curve = String::decode(&mut section)?;
    if algorithm.strip_prefix("ecdsa-sha2-") != Some(curve.as_str()) {
        return Err(Error::FormatEncoding);
    }
    let point = Vec::<u8>::decode(&mut section)?;
    let scalar = Zeroizing::new(Vec::<u8>::decode(&mut section)?);
    let comment = String::decode(&mut section)?;
    // The key from the scalar at the curve's width; the curve crate
    // derives the public point.
    macro_rules! keypair {
        ($curve:ident, $variant:ident, $width:literal) => {{
            let secret = $curve::SecretKey::from_slice(&*padded::<$width>(&scalar)?)
                .map_err(|_| Error::Crypto)?;
            EcdsaKeypair::$variant {
                public: secret.public_key().into(),
                private: secret.into(),
            }
        }};
    }
    let keypair = match algorithm.as_str() {
        "ecdsa-sha2-nistp256" => keypair!(p256, NistP256, 32),
        "ecdsa-sha2-nistp384" => keypair!(p384, NistP384, 48),
        "ecdsa-sha2-nistp521" => keypair!(p521, NistP521, 66),
        _ => return Err(Error::AlgorithmUnknown),
    };
    if keypair.public_key_bytes() != point.as_slice() {
        return Err(Error::Crypto);
    }
    let key = PrivateKey::new(KeypairData::Ecdsa(keypair), comment)?;
    if key.public_key().key_data() != public.key_data() {
        return Err(Error::Crypto);
    }
    Ok(key)
}

/// An `mpint` scalar at the curve's full width: its sign byte dropped,
/// the zero bytes OpenSSH left out put back in front.
fn padded<const SIZE: usize>(mpint: &[u8]) -> Result<Zeroizing<[u8; SIZE]>, Error> {
    let digits = match mpint {
        [0, rest @ ..] => rest,
        [first, ..] if first & 0x80 != 0 => return Err(Error::FormatEncoding),
        all => all,
    };
    if digits.len() > SIZE {
        return Err(Error::FormatEncoding);
    }
    let mut full = Zeroizing::new([0u8; SIZE]);
    full[SIZE - digits.len()..].copy_from_slice(digits);
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    use ssh_key::rand_core::OsRng;
    use ssh_key::{Algorithm, EcdsaCurve, LineEnding};

    /// The hand reading agrees with ssh-key's on the keys both read,
    /// plain and protected; a wrong passphrase reads nothing.
    #[test]
    fn the_reread_gives_the_key_ssh_key_reads() {
        for curve in [
            EcdsaCurve::NistP256,
            EcdsaCurve::NistP384,
            EcdsaCurve::NistP521,
        ] {
            let key = PrivateKey::random(&mut OsRng, Algorithm::Ecdsa { curve }).unwrap();
            let plain = key.to_openssh(LineEnding::LF).unwrap();
            assert_eq!(reread(plain.as_bytes(), None).unwrap(), key, "{curve}");
            let protected = key.encrypt(&mut OsRng, "pass phrase").unwrap();
            let protected = protected.to_openssh(LineEnding::LF).unwrap();
            let read = reread(protected.as_bytes(), Some(b"pass phrase")).unwrap();
            assert_eq!(read, key, "{curve}");
            assert!(
                reread(protected.as_bytes(), Some(b"wrong")).is_err(),
                "{curve}"
            );
            assert!(reread(protected.as_bytes(), None).is_err(), "{curve}");
            // The AEAD ciphers, whose tag follows the private section.
            for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
                let sealed = key.encrypt_with_cipher(&mut OsRng, cipher, "pw").unwrap();
                let sealed = sealed.to_openssh(LineEnding::LF).unwrap();
                let read = reread(sealed.as_bytes(), Some(b"pw")).unwrap();
                assert_eq!(read, key, "{curve} {cipher}");
                assert!(
                    reread(sealed.as_bytes(), Some(b"wrong")).is_err(),
                    "{cipher}"
                );
            }
        }
        let ed25519 = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let text = ed25519.to_openssh(LineEnding::LF).unwrap();
        assert!(reread(text.as_bytes(), None).is_err());
    }

    #[test]
    fn a_scalar_is_padded_to_the_curve_width_and_its_sign_byte_dropped() {
        assert_eq!(*padded::<4>(&[1, 2, 3]).unwrap(), [0, 1, 2, 3]);
        assert_eq!(*padded::<4>(&[0, 0x81, 2, 3, 4]).unwrap(), [0x81, 2, 3, 4]);
        assert_eq!(*padded::<4>(&[0x11, 2, 3, 4]).unwrap(), [0x11, 2, 3, 4]);
        // Too wide, or a negative mpint.
        assert!(padded::<4>(&[1, 2, 3, 4, 5]).is_err());
        assert!(padded::<4>(&[0x81, 2, 3]).is_err());
    }
}
