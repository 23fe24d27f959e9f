//! Checking commit signatures the way `git verify-commit` does, without
//! gpg or ssh-keygen: against an OpenPGP keyring file (what `gpg --export`
//! writes) and/or an SSH allowed-signers file (`gpg.ssh.allowedSignersFile`).
//!
//! The verdicts follow git's, case by case (`%G?` in brackets):
//!
//! - no `gpgsig` header: Unsigned (`N`);
//! - OpenPGP, the issuer is not in the keyring: Unknown key (`E`, gpg's
//!   `NO_PUBKEY`); the signature does not verify: Bad (`B`); the key has
//!   expired or is revoked, or the signature has expired: Bad (gpg's
//!   `EXPKEYSIG` / `REVKEYSIG` / `EXPSIG`, which git also refuses);
//! - SSH, no allowed-signers line holds the key, or none is valid at the
//!   commit's committer time (`valid-after` / `valid-before`): Unknown key
//!   (`U`, "No principal matched") if the signature verifies with the key
//!   it carries, else Bad (git's `check-novalidate`); a line holds it but
//!   its `namespaces` does not allow `git`, the signature's namespace is
//!   not `git`, or it does not verify: Bad (`B`);
//! - anything that verifies: Good (`G`), the only verdict git accepts.
//!
//! Differences, by design or for lack of a peer in Rust crates: SSH
//! certificates (`cert-authority` lines) are not supported — a certificate
//! signature is Bad, as an unreadable signature is; `valid-after` and
//! `valid-before` without a `Z` are read as UTC (ssh-keygen reads local
//! time; servers and containers run in UTC); gpg's trust model is not
//! applied: every key in the keyring is trusted, which is what git's
//! default `gpg.minTrustLevel` (undefined) amounts to. X.509 (gpgsm)
//! signatures are Unknown key.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Timestamp};
use ssh_key::{HashAlg, PublicKey, SshSig, public::KeyData};

use super::sign::{SSH_NAMESPACE, SignatureKind};
use crate::audit::record::{SignatureFormat, SignatureReport, SignatureStatus};

/// A keys file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path}: cannot read the keys file: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not an OpenPGP keyring: {message}")]
    Keyring { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    AllowedSigners {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl VerifyError {
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyError::Read { .. } => "verify_read",
            VerifyError::Keyring { .. } => "verify_keyring",
            VerifyError::AllowedSigners { .. } => "verify_allowed_signers",
        }
    }
}

/// One line of an allowed-signers file.
#[derive(Debug, Clone)]
struct AllowedSigner {
    principals: String,
    key: KeyData,
    cert_authority: bool,
    namespaces: Option<String>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
}

/// Public keys to check signatures against.
#[derive(Debug, Default)]
pub struct Verifier {
    keys: Vec<SignedPublicKey>,
    signers: Vec<AllowedSigner>,
}

impl Verifier {
    /// Reads each file as an OpenPGP keyring (armored or binary) or, when
    /// it is neither, as an SSH allowed-signers file.
    pub fn load(paths: &[PathBuf]) -> Result<Verifier, VerifyError> {
        let mut verifier = Verifier::default();
        for path in paths {
            let bytes = std::fs::read(path).map_err(|source| VerifyError::Read {
                path: path.clone(),
                source,
            })?;
            verifier.add(path, &bytes)?;
        }
        Ok(verifier)
    }

    fn add(&mut self, path: &Path, bytes: &[u8]) -> Result<(), VerifyError> {
        let keyring = |message: String| VerifyError::Keyring {
            path: path.to_owned(),
            message,
        };
        if bytes.len() >= 12 && &bytes[8..12] == b"KBXf" {
            return Err(keyring(
                "this is a GnuPG keybox (pubring.kbx); export the keys with `gpg --armor --export KEYID... > keyring.asc`"
                    .into(),
            ));
        }
        let text = String::from_utf8_lossy(bytes);
        if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            return Err(keyring(
                "the file holds a secret key; pass public keys (`gpg --armor --export KEYID`)"
                    .into(),
            ));
        }
        if text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            for block in text.split("-----BEGIN PGP PUBLIC KEY BLOCK-----").skip(1) {
                let armored = format!("-----BEGIN PGP PUBLIC KEY BLOCK-----{block}");
                let (keys, _) = SignedPublicKey::from_armor_many(Cursor::new(armored.as_bytes()))
                    .map_err(|e| keyring(e.to_string()))?;
                for key in keys {
                    self.keys.push(key.map_err(|e| keyring(e.to_string()))?);
                }
            }
            return Ok(());
        }
        if bytes.first().is_some_and(|b| b & 0x80 != 0) {
            let keys = SignedPublicKey::from_bytes_many(Cursor::new(bytes))
                .map_err(|e| keyring(e.to_string()))?;
            for key in keys {
                self.keys.push(key.map_err(|e| keyring(e.to_string()))?);
            }
            return Ok(());
        }
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let signer =
                parse_allowed_signer(line).map_err(|message| VerifyError::AllowedSigners {
                    path: path.to_owned(),
                    line: n + 1,
                    message,
                })?;
            self.signers.push(signer);
        }
        Ok(())
    }

    /// Number of OpenPGP keys and allowed-signers lines loaded.
    pub fn counts(&self) -> (usize, usize) {
        (self.keys.len(), self.signers.len())
    }

    /// The verdict on one commit: `signature` is the armored `gpgsig`
    /// value and the signed payload (`git2::Repository::extract_signature`),
    /// `None` when the commit has none; `commit_time` is the committer time.
    pub fn verify(&self, signature: Option<(&[u8], &[u8])>, commit_time: i64) -> SignatureReport {
        let Some((armored, payload)) = signature else {
            return SignatureReport::unsigned();
        };
        let armored = String::from_utf8_lossy(armored);
        match SignatureKind::of(&armored) {
            Some(SignatureKind::OpenPgp) => self.verify_openpgp(&armored, payload),
            Some(SignatureKind::Ssh) => self.verify_ssh(&armored, payload, commit_time),
            Some(SignatureKind::X509) => report(
                SignatureStatus::UnknownKey,
                Some(SignatureFormat::X509),
                None,
                None,
                Some("X.509 (gpgsm) signatures are not checked".into()),
            ),
            None => report(
                SignatureStatus::Bad,
                None,
                None,
                None,
                Some("the gpgsig header is not an OpenPGP or SSH signature".into()),
            ),
        }
    }

    fn verify_openpgp(&self, armored: &str, payload: &[u8]) -> SignatureReport {
        let format = Some(SignatureFormat::OpenPgp);
        let signature = match DetachedSignature::from_armor_single(Cursor::new(armored.as_bytes()))
        {
            Ok((s, _)) => s,
            Err(e) => {
                return report(
                    SignatureStatus::Bad,
                    format,
                    None,
                    None,
                    Some(format!("unreadable OpenPGP signature: {e}")),
                );
            }
        };
        let sig = &signature.signature;
        let fingerprints: Vec<Vec<u8>> = sig
            .issuer_fingerprint()
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .collect();
        let key_ids: Vec<Vec<u8>> = sig
            .issuer_key_id()
            .iter()
            .map(|k| k.as_ref().to_vec())
            .collect();
        let names = |fingerprint: &[u8], key_id: &[u8]| {
            if fingerprints.is_empty() {
                key_ids.iter().any(|k| k == key_id)
            } else {
                fingerprints.iter().any(|f| f == fingerprint)
            }
        };
        let now = Timestamp::now().as_secs() as i64;
        for key in &self.keys {
            let signer = key
                .details
                .users
                .first()
                .map(|u| String::from_utf8_lossy(u.id.id()).into_owned());
            let primary = &key.primary_key;
            let revoked = !key.details.revocation_signatures.is_empty();
            if names(
                primary.fingerprint().as_bytes(),
                primary.legacy_key_id().as_ref(),
            ) {
                let expires = newest(key.details.users.iter().flat_map(|u| &u.signatures))
                    .and_then(|s| s.key_expiration_time())
                    .filter(|d| d.as_secs() != 0)
                    .map(|d| primary.created_at().as_secs() as i64 + d.as_secs() as i64);
                let checked = signature.verify(primary, payload);
                return judge(
                    checked.map_err(|e| e.to_string()),
                    sig,
                    hex::encode_upper(primary.fingerprint().as_bytes()),
                    signer,
                    revoked,
                    expires,
                    now,
                );
            }
            for sub in &key.public_subkeys {
                if !names(
                    sub.key.fingerprint().as_bytes(),
                    sub.key.legacy_key_id().as_ref(),
                ) {
                    continue;
                }
                // gpg ignores a subkey whose binding does not verify.
                if sub.verify_bindings(primary).is_err() {
                    continue;
                }
                let sub_revoked = sub
                    .signatures
                    .iter()
                    .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
                let expires = newest(
                    sub.signatures
                        .iter()
                        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)),
                )
                .and_then(|s| s.key_expiration_time())
                .filter(|d| d.as_secs() != 0)
                .map(|d| sub.key.created_at().as_secs() as i64 + d.as_secs() as i64);
                let checked = signature.verify(&sub.key, payload);
                return judge(
                    checked.map_err(|e| e.to_string()),
                    sig,
                    hex::encode_upper(sub.key.fingerprint().as_bytes()),
                    signer,
                    revoked || sub_revoked,
                    expires,
                    now,
                );
            }
        }
        let issuer = fingerprints
            .first()
            .or(key_ids.first())
            .map(hex::encode_upper);
        let reason = if self.keys.is_empty() {
            "no OpenPGP keyring was given"
        } else {
            "the keyring has no key that made this signature"
        };
        report(
            SignatureStatus::UnknownKey,
            format,
            issuer,
            None,
            Some(reason.into()),
        )
    }

    fn verify_ssh(&self, armored: &str, payload: &[u8], commit_time: i64) -> SignatureReport {
        let format = Some(SignatureFormat::Ssh);
        let signature = match SshSig::from_pem(armored.as_bytes()) {
            Ok(s) => s,
            Err(e) => {
                return report(
                    SignatureStatus::Bad,
                    format,
                    None,
                    None,
                    Some(format!("unreadable SSH signature: {e}")),
                );
            }
        };
        let key = signature.public_key();
        let fingerprint = Some(key.fingerprint(HashAlg::Sha256).to_string());
        let holding: Vec<&AllowedSigner> = self
            .signers
            .iter()
            .filter(|s| !s.cert_authority && s.key == *key)
            .collect();
        let valid: Vec<&&AllowedSigner> = holding
            .iter()
            .filter(|s| {
                s.valid_after.is_none_or(|t| commit_time >= t)
                    && s.valid_before.is_none_or(|t| commit_time <= t)
            })
            .collect();
        if valid.is_empty() {
            // git then runs `ssh-keygen -Y check-novalidate`: the signature
            // is still checked against the key it carries, and one that
            // does not verify is Bad whoever made it.
            if let Err(e) = PublicKey::from(key.clone()).verify(SSH_NAMESPACE, payload, &signature)
            {
                return report(
                    SignatureStatus::Bad,
                    format,
                    fingerprint,
                    None,
                    Some(format!("the signature does not verify: {e}")),
                );
            }
            let reason = if holding.is_empty() {
                if self.signers.is_empty() {
                    "no SSH allowed-signers file was given"
                } else {
                    "no allowed-signers line holds this key"
                }
            } else {
                "the key's allowed-signers lines are not valid at the commit's time"
            };
            return report(
                SignatureStatus::UnknownKey,
                format,
                fingerprint,
                None,
                Some(reason.into()),
            );
        }
        let principals = valid
            .iter()
            .map(|s| s.principals.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let allowed = valid.iter().any(|s| {
            s.namespaces
                .as_deref()
                .is_none_or(|n| match_pattern_list(SSH_NAMESPACE, n))
        });
        let outcome = if !allowed {
            Err("the allowed-signers line does not allow namespace \"git\"".to_owned())
        } else {
            PublicKey::from(key.clone())
                .verify(SSH_NAMESPACE, payload, &signature)
                .map_err(|e| format!("the signature does not verify: {e}"))
        };
        match outcome {
            Ok(()) => report(
                SignatureStatus::Good,
                format,
                fingerprint,
                Some(principals),
                None,
            ),
            Err(reason) => report(
                SignatureStatus::Bad,
                format,
                fingerprint,
                Some(principals),
                Some(reason),
            ),
        }
    }
}

fn report(
    status: SignatureStatus,
    format: Option<SignatureFormat>,
    key: Option<String>,
    signer: Option<String>,
    reason: Option<String>,
) -> SignatureReport {
    SignatureReport {
        status,
        format,
        key,
        signer,
        reason,
    }
}

fn newest<'a>(signatures: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    signatures.max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
}

/// gpg's order: a signature that does not verify is BADSIG whatever the
/// key's state; a good one from a revoked or expired key, or one that has
/// itself expired, is refused too.
fn judge(
    checked: Result<(), String>,
    sig: &Signature,
    key: String,
    signer: Option<String>,
    revoked: bool,
    expires: Option<i64>,
    now: i64,
) -> SignatureReport {
    let format = Some(SignatureFormat::OpenPgp);
    let bad = |reason: String| {
        report(
            SignatureStatus::Bad,
            format,
            Some(key.clone()),
            signer.clone(),
            Some(reason),
        )
    };
    if let Err(e) = checked {
        return bad(format!("the signature does not verify: {e}"));
    }
    if revoked {
        return bad("the key is revoked".into());
    }
    if expires.is_some_and(|t| t <= now) {
        return bad("the key has expired".into());
    }
    let created = sig.created().map(|t| t.as_secs() as i64);
    if let (Some(created), Some(valid)) = (created, sig.signature_expiration_time()) {
        if valid.as_secs() != 0 && created + valid.as_secs() as i64 <= now {
            return bad("the signature has expired".into());
        }
    }
    report(SignatureStatus::Good, format, Some(key), signer, None)
}

/// `principals [options] keytype base64 [comment]` (ssh-keygen(1),
/// ALLOWED SIGNERS).
fn parse_allowed_signer(line: &str) -> Result<AllowedSigner, String> {
    let mut tokens = tokenize(line).into_iter();
    let principals = tokens
        .next()
        .ok_or("an allowed-signers line starts with the principals")?;
    let mut next = tokens
        .next()
        .ok_or("the line has no key; write `principals [options] keytype base64-key`")?;
    let mut cert_authority = false;
    let mut namespaces = None;
    let mut valid_after = None;
    let mut valid_before = None;
    if !is_key_type(&next) {
        for option in split_options(&next) {
            let (name, value) = match option.split_once('=') {
                Some((n, v)) => (n.to_ascii_lowercase(), Some(v.trim_matches('"').to_owned())),
                None => (option.to_ascii_lowercase(), None),
            };
            match (name.as_str(), value) {
                ("cert-authority", None) => cert_authority = true,
                ("namespaces", Some(v)) => namespaces = Some(v),
                ("valid-after", Some(v)) => valid_after = Some(parse_ssh_time(&v)?),
                ("valid-before", Some(v)) => valid_before = Some(parse_ssh_time(&v)?),
                (other, _) => return Err(format!("unknown or malformed option {other:?}")),
            }
        }
        next = tokens
            .next()
            .ok_or("the line has no key; write `principals [options] keytype base64-key`")?;
    }
    let base64 = tokens.next().ok_or("the key has no base64 part")?;
    let key = PublicKey::from_openssh(&format!("{next} {base64}"))
        .map_err(|e| format!("not an SSH public key ({e})"))?;
    Ok(AllowedSigner {
        principals: principals.trim_matches('"').to_owned(),
        key: key.key_data().clone(),
        cert_authority,
        namespaces,
        valid_after,
        valid_before,
    })
}

fn is_key_type(token: &str) -> bool {
    token.starts_with("ssh-") || token.starts_with("ecdsa-") || token.starts_with("sk-")
}

/// Whitespace-separated tokens; double quotes protect spaces.
fn tokenize(line: &str) -> Vec<String> {
    let mut tokens = split_outside_quotes(line, char::is_whitespace);
    tokens.retain(|t| !t.is_empty());
    tokens
}

/// Comma-separated options; commas inside quotes do not split.
fn split_options(text: &str) -> Vec<String> {
    split_outside_quotes(text, |c| c == ',')
}

/// Every piece of `text` between separators that are not inside double
/// quotes (the quotes are kept), empty pieces included.
fn split_outside_quotes(text: &str, is_separator: impl Fn(char) -> bool) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
            current.push(c);
        } else if is_separator(c) && !quoted {
            pieces.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    pieces.push(current);
    pieces
}

/// `YYYYMMDD[Z]` or `YYYYMMDDHHMM[SS][Z]`, read as UTC.
fn parse_ssh_time(text: &str) -> Result<i64, String> {
    let digits = text.trim_end_matches(['Z', 'z']);
    let fail = || format!("{text:?} is not a time; write YYYYMMDD or YYYYMMDDHHMM[SS]");
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(fail());
    }
    let iso = match digits.len() {
        8 => format!("{}-{}-{}", &digits[..4], &digits[4..6], &digits[6..8]),
        _ => format!(
            "{}-{}-{}T{}:{}:{}Z",
            &digits[..4],
            &digits[4..6],
            &digits[6..8],
            &digits[8..10],
            &digits[10..12],
            digits.get(12..14).unwrap_or("00")
        ),
    };
    crate::audit::time::parse_time(&iso)
        .map(|b| b.start)
        .map_err(|_| fail())
}

/// OpenSSH's `match_pattern_list`: comma-separated globs (`*`, `?`); a
/// `!` in front of a pattern that matches refuses outright.
fn match_pattern_list(text: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if glob(text.as_bytes(), pattern.as_bytes()) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

fn glob(text: &[u8], pattern: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(&text[i..], rest)),
        Some((b'?', rest)) => !text.is_empty() && glob(&text[1..], rest),
        Some((c, rest)) => text.first() == Some(c) && glob(&text[1..], rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGfTwVZPFmd+SN1sVNqgLpzBamF63SVPJbeRTVyhmyCt";

    #[test]
    fn allowed_signer_lines_with_and_without_options() {
        let plain = parse_allowed_signer(&format!("bot@example.com {KEY} a comment")).unwrap();
        assert_eq!(plain.principals, "bot@example.com");
        assert!(plain.namespaces.is_none() && !plain.cert_authority);
        let options = parse_allowed_signer(&format!(
            "\"a@x,b@x\" namespaces=\"git,file\",valid-after=\"20240101\",valid-before=\"20250102030405Z\" {KEY}"
        ))
        .unwrap();
        assert_eq!(options.principals, "a@x,b@x");
        assert_eq!(options.namespaces.as_deref(), Some("git,file"));
        assert_eq!(options.valid_after, Some(1_704_067_200));
        assert_eq!(options.valid_before, Some(1_735_787_045));
        assert_eq!(options.key, plain.key);
        let ca = parse_allowed_signer(&format!("*@x cert-authority {KEY}")).unwrap();
        assert!(ca.cert_authority);
    }

    #[test]
    fn broken_allowed_signer_lines_say_what_is_wrong() {
        let cases = [
            ("bot@example.com", "no key"),
            (
                &format!("bot@x bogus=1 {KEY}") as &str,
                "unknown or malformed option",
            ),
            ("bot@x ssh-ed25519 notbase64!", "not an SSH public key"),
            (
                &format!("bot@x valid-after=\"2024\" {KEY}") as &str,
                "is not a time",
            ),
        ];
        for (line, want) in cases {
            let err = parse_allowed_signer(line).err().unwrap();
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn namespace_patterns_match_like_openssh() {
        assert!(match_pattern_list("git", "git"));
        assert!(match_pattern_list("git", "file,g*"));
        assert!(match_pattern_list("git", "g?t"));
        assert!(!match_pattern_list("git", "file"));
        assert!(!match_pattern_list("git", "*,!git"));
    }

    #[test]
    fn an_unsigned_commit_and_unknown_formats() {
        let verifier = Verifier::default();
        assert_eq!(verifier.verify(None, 0).status, SignatureStatus::Unsigned);
        let x509 = verifier.verify(Some((b"-----BEGIN SIGNED MESSAGE-----\nx", b"p")), 0);
        assert_eq!(x509.status, SignatureStatus::UnknownKey);
        let junk = verifier.verify(Some((b"hello", b"p")), 0);
        assert_eq!(junk.status, SignatureStatus::Bad);
    }

    #[test]
    fn a_gnupg_keybox_is_refused_with_the_export_command() {
        let mut kbx = vec![0, 0, 0, 32, 1, 1, 0, 0];
        kbx.extend_from_slice(b"KBXf");
        kbx.resize(32, 0);
        let err = Verifier::default()
            .add(Path::new("pubring.kbx"), &kbx)
            .err()
            .unwrap();
        assert!(err.to_string().contains("gpg --armor --export"), "{err}");
    }
}
