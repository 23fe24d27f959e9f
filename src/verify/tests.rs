//! Signature checks against keys and signatures made by the `openssl`
//! command line, as a signer without cosign would make them.

use std::path::Path;
use std::process::Command;

use super::*;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key pair of `kind` in `dir`: (private key file, public PEM text).
fn key(dir: &Path, kind: &str) -> (String, String) {
    let private = format!("{kind}.key");
    match kind {
        "p256" => openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &private,
            ],
        ),
        "p384" => openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "secp384r1",
                "-genkey",
                "-noout",
                "-out",
                &private,
            ],
        ),
        "ed25519" => openssl(dir, &["genpkey", "-algorithm", "ed25519", "-out", &private]),
        "rsa" => openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "rsa",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &private,
            ],
        ),
        other => panic!("{other}"),
    }
    let public = format!("{kind}.pub");
    openssl(dir, &["pkey", "-in", &private, "-pubout", "-out", &public]);
    (private, std::fs::read_to_string(dir.join(public)).unwrap())
}

fn sign(dir: &Path, kind: &str, private: &str, payload: &[u8]) -> String {
    std::fs::write(dir.join("payload.json"), payload).unwrap();
    if kind == "ed25519" {
        openssl(
            dir,
            &[
                "pkeyutl",
                "-sign",
                "-rawin",
                "-inkey",
                private,
                "-in",
                "payload.json",
                "-out",
                "sig",
            ],
        );
    } else {
        openssl(
            dir,
            &[
                "dgst",
                "-sha256",
                "-sign",
                private,
                "-out",
                "sig",
                "payload.json",
            ],
        );
    }
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join("sig")).unwrap())
}

fn payload(reference: &str, digest: &str) -> Vec<u8> {
    format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"{reference}\"}},\"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
    )
    .into_bytes()
}

#[test]
fn every_key_kind_verifies_its_own_signature_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let image = ImageName::parse("registry.example.com/team/app").unwrap();
    let good = payload("registry.example.com/team/app", DIGEST);
    let kinds = ["p256", "p384", "ed25519", "rsa"];
    let pairs: Vec<(String, String)> = kinds.iter().map(|k| key(dir.path(), k)).collect();
    let keys: Vec<PublicKey> = pairs
        .iter()
        .map(|(_, pem)| PublicKey::from_pem(pem).unwrap())
        .collect();
    for (i, kind) in kinds.iter().enumerate() {
        let signature = sign(dir.path(), kind, &pairs[i].0, &good);
        assert_eq!(
            check_layer(&good, &signature, &keys[i..=i], &image, DIGEST),
            Ok(keys[i].fingerprint.clone()),
            "{kind}"
        );
        // Another key does not verify it.
        let other = &keys[(i + 1) % kinds.len()..=(i + 1) % kinds.len()];
        assert!(
            check_layer(&good, &signature, other, &image, DIGEST).is_err(),
            "{kind}"
        );
        // A changed payload does not verify.
        let mut tampered = good.clone();
        let at = tampered.iter().position(|b| *b == b'0').unwrap();
        tampered[at] = b'1';
        assert!(
            check_layer(&tampered, &signature, &keys, &image, DIGEST).is_err(),
            "{kind}"
        );
    }
    // A valid signature over another digest or another repository is refused.
    let (p256_key, _) = &pairs[0];
    let other_digest = payload("registry.example.com/team/app", &DIGEST.replace('0', "f"));
    let signature = sign(dir.path(), "p256", p256_key, &other_digest);
    let why = check_layer(&other_digest, &signature, &keys, &image, DIGEST).unwrap_err();
    assert!(why.contains("the signature is for sha256:f"), "{why}");
    let other_repo = payload("registry.example.com/team/other", DIGEST);
    let signature = sign(dir.path(), "p256", p256_key, &other_repo);
    let why = check_layer(&other_repo, &signature, &keys, &image, DIGEST).unwrap_err();
    assert!(why.contains("team/other"), "{why}");
}

#[test]
fn keys_and_tags_are_checked_before_use() {
    assert!(PublicKey::from_pem("nonsense").is_err());
    assert!(
        PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
            .is_err()
    );
    assert_eq!(
        signature_tag(DIGEST).unwrap(),
        "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig"
    );
    assert!(signature_tag("sha512:00").is_none());
}
