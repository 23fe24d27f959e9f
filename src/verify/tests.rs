//! Signature checks against keys and signatures made by the `openssl`
//! command line, as a signer without cosign would make them.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;

use super::format::{self, SignatureLayer};
use super::verdicts::{check_bundle, check_simple_signing};
use super::*;
use crate::model::ImageName;

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
    sign_hashed(dir, kind, private, payload, "-sha256")
}

/// [`sign`], ECDSA and RSA over the hash `openssl dgst` names (`-sha384`).
fn sign_hashed(dir: &Path, kind: &str, private: &str, payload: &[u8], hash: &str) -> String {
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
                hash,
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

fn layer(signature_b64: &str) -> SignatureLayer {
    SignatureLayer {
        digest: String::new(),
        signature: base64::engine::general_purpose::STANDARD
            .decode(signature_b64)
            .unwrap(),
        certificate: None,
        chain: Vec::new(),
        rekor: None,
    }
}

fn keyed(keys: &[PublicKey]) -> Trust {
    Trust::new(keys.to_vec(), Vec::new(), None)
}

#[test]
fn every_key_kind_verifies_its_own_signature_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let image = ImageName::parse("registry.example.com/team/app").unwrap();
    let good = payload("registry.example.com/team/app", DIGEST);
    assert_eq!(
        format::simple_signing_payload("registry.example.com/team/app", DIGEST),
        good,
        "the payload cosign writes is rebuilt byte for byte"
    );
    let kinds = ["p256", "p384", "ed25519", "rsa"];
    let pairs: Vec<(String, String)> = kinds.iter().map(|k| key(dir.path(), k)).collect();
    let keys: Vec<PublicKey> = pairs
        .iter()
        .map(|(_, pem)| PublicKey::from_pem(pem).unwrap())
        .collect();
    for (i, kind) in kinds.iter().enumerate() {
        let signature = layer(&sign(dir.path(), kind, &pairs[i].0, &good));
        assert_eq!(
            check_simple_signing(&signature, &good, &keyed(&keys[i..=i]), &image, DIGEST),
            Ok(keys[i].fingerprint.clone()),
            "{kind}"
        );
        // Another key does not verify it.
        let other = &keys[(i + 1) % kinds.len()..=(i + 1) % kinds.len()];
        assert!(
            check_simple_signing(&signature, &good, &keyed(other), &image, DIGEST).is_err(),
            "{kind}"
        );
        // A changed payload does not verify.
        let mut tampered = good.clone();
        let at = tampered.iter().position(|b| *b == b'0').unwrap();
        tampered[at] = b'1';
        assert!(
            check_simple_signing(&signature, &tampered, &keyed(&keys), &image, DIGEST).is_err(),
            "{kind}"
        );
    }
    // sigstore-go signs with P-384 over SHA-384; that verifies too, and
    // SHA-384 is no way around a P-256 key.
    let sha384 = layer(&sign_hashed(
        dir.path(),
        "p384",
        &pairs[1].0,
        &good,
        "-sha384",
    ));
    assert_eq!(
        check_simple_signing(&sha384, &good, &keyed(&keys[1..=1]), &image, DIGEST),
        Ok(keys[1].fingerprint.clone())
    );
    let p256_sha384 = layer(&sign_hashed(
        dir.path(),
        "p256",
        &pairs[0].0,
        &good,
        "-sha384",
    ));
    assert!(
        check_simple_signing(&p256_sha384, &good, &keyed(&keys[0..=0]), &image, DIGEST).is_err()
    );
    // A valid signature over another digest or another repository is refused.
    let (p256_key, _) = &pairs[0];
    let other_digest = payload("registry.example.com/team/app", &DIGEST.replace('0', "f"));
    let signature = layer(&sign(dir.path(), "p256", p256_key, &other_digest));
    let why =
        check_simple_signing(&signature, &other_digest, &keyed(&keys), &image, DIGEST).unwrap_err();
    assert!(why.contains("the signature is for sha256:f"), "{why}");
    let other_repo = payload("registry.example.com/team/other", DIGEST);
    let signature = layer(&sign(dir.path(), "p256", p256_key, &other_repo));
    let why =
        check_simple_signing(&signature, &other_repo, &keyed(&keys), &image, DIGEST).unwrap_err();
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
        format::signature_tag(DIGEST).unwrap(),
        "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig"
    );
    assert!(format::signature_tag("sha512:00").is_none());
    assert!(format::referrers_tag(&DIGEST.to_uppercase().replace("SHA256", "sha256")).is_none());
    assert_eq!(
        format::pae("t", b"ab"),
        b"DSSEv1 1 t 2 ab".to_vec(),
        "DSSE's pre-authentication encoding"
    );
}

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const SUBJECT: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";

/// Runs tests/support/sigstore.sh (openssl standing in for cosign, Fulcio
/// and Rekor) and returns its output.
fn sigstore(args: &[&str]) -> Vec<u8> {
    sigstore_with(&[], args)
}

/// [`sigstore`] with environment variables set (e.g. `LEAF_EKU`).
fn sigstore_with(env: &[(&str, &str)], args: &[&str]) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sigstore.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "sigstore.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn identities(issuer: &str, subject: &str) -> Vec<Identity> {
    Identity::compile(&[crate::policy::Identity {
        issuer: issuer.into(),
        subject: subject.into(),
    }])
}

/// A throwaway "Fulcio" CA and "Rekor" key in a folder, its trusted root,
/// and a leaf `ci` for [`ISSUER`] and [`SUBJECT`].
fn ci_signer() -> (tempfile::TempDir, Arc<TrustedRoot>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    sigstore(&["root", d]);
    sigstore(&["leaf", d, "ci", ISSUER, SUBJECT]);
    let json = std::fs::read(dir.path().join("trusted_root.json")).unwrap();
    (dir, Arc::new(TrustedRoot::from_json(&json).unwrap()))
}

/// A `.sig` layer as cosign writes it for a keyless signature.
fn keyless_layer(dir: &Path, leaf: &str, payload: &[u8]) -> SignatureLayer {
    std::fs::write(dir.join("payload"), payload).unwrap();
    let annotations = sigstore(&[
        "keyless",
        dir.to_str().unwrap(),
        leaf,
        dir.join("payload").to_str().unwrap(),
    ]);
    let manifest = format!(
        r#"{{"layers":[{{"digest":"sha256:{}","annotations":{}}}]}}"#,
        "a".repeat(64),
        String::from_utf8(annotations).unwrap()
    );
    let mut layers = format::signature_layers(manifest.as_bytes()).unwrap();
    assert_eq!(layers.len(), 1);
    layers.remove(0).unwrap()
}

#[test]
fn keyless_signatures_are_checked_against_the_trusted_root_and_identity() {
    let (dir, root) = ci_signer();
    let d = dir.path().to_str().unwrap();
    let image = ImageName::parse("localhost:5000/team/app").unwrap();
    let good = payload("localhost:5000/team/app", DIGEST);
    let signed = keyless_layer(dir.path(), "ci", &good);
    let trust = |issuer: &str, subject: &str| {
        Trust::new(Vec::new(), identities(issuer, subject), Some(root.clone()))
    };
    let check = |layer: &SignatureLayer, trust: &Trust| {
        check_simple_signing(layer, &good, trust, &image, DIGEST)
    };
    assert_eq!(
        check(
            &signed,
            &trust(ISSUER, r"^https://github\.com/acme/.+@refs/tags/v.+$")
        ),
        Ok(format!("{SUBJECT} ({ISSUER})"))
    );
    // The issuer must match exactly, the subject by the regex.
    let why = check(&signed, &trust("https://accounts.google.com", ".*")).unwrap_err();
    assert!(why.contains("not an identity the policy trusts"), "{why}");
    let why = check(&signed, &trust(ISSUER, "^https://github\\.com/other/")).unwrap_err();
    assert!(why.contains("not an identity the policy trusts"), "{why}");
    // Without a trusted root, a keyless signature is not taken.
    let why = check(
        &signed,
        &Trust::new(Vec::new(), identities(ISSUER, ".*"), None),
    )
    .unwrap_err();
    assert!(why.contains("sigstore.trustedRoot"), "{why}");

    // A leaf from another CA (same names) is refused.
    let rogue = tempfile::tempdir().unwrap();
    let r = rogue.path().to_str().unwrap();
    sigstore(&["root", r]);
    std::fs::copy(rogue.path().join("ca.key"), dir.path().join("rogue.key")).unwrap();
    std::fs::copy(rogue.path().join("ca.pem"), dir.path().join("rogue.pem")).unwrap();
    let rogue_ca = dir.path().join("rogue");
    sigstore(&[
        "leaf",
        d,
        "mallory",
        ISSUER,
        SUBJECT,
        rogue_ca.to_str().unwrap(),
    ]);
    let forged = keyless_layer(dir.path(), "mallory", &good);
    let why = check(&forged, &trust(ISSUER, ".*")).unwrap_err();
    assert!(
        why.contains("not issued by a certificate authority"),
        "{why}"
    );

    // A certificate of the right CA and identity, but not for code signing.
    sigstore_with(
        &[("LEAF_EKU", "serverAuth")],
        &["leaf", d, "web", ISSUER, SUBJECT],
    );
    let web = keyless_layer(dir.path(), "web", &good);
    let why = check(&web, &trust(ISSUER, ".*")).unwrap_err();
    assert!(why.contains("not for code signing"), "{why}");

    // The log's promise must verify and record this signature.
    let mut no_log = signed.clone();
    no_log.rekor = None;
    assert!(
        check(&no_log, &trust(ISSUER, ".*"))
            .unwrap_err()
            .contains("Rekor")
    );
    let mut moved = signed.clone();
    moved.rekor.as_mut().unwrap().integrated_time += 1;
    let why = check(&moved, &trust(ISSUER, ".*")).unwrap_err();
    assert!(
        why.contains("signed entry timestamp does not verify"),
        "{why}"
    );
    let other = keyless_layer(
        dir.path(),
        "ci",
        &payload("localhost:5000/team/app", &DIGEST.replace('1', "2")),
    );
    let mut swapped = signed.clone();
    swapped.rekor = other.rekor.clone();
    let why = check(&swapped, &trust(ISSUER, ".*")).unwrap_err();
    assert!(why.contains("records another signature"), "{why}");
    // A tampered payload does not verify under the certificate.
    let mut tampered = good.clone();
    let at = tampered.iter().position(|b| *b == b'0').unwrap();
    tampered[at] = b'1';
    assert!(
        check_simple_signing(&signed, &tampered, &trust(ISSUER, ".*"), &image, DIGEST).is_err()
    );
}

#[test]
fn sigstore_bundles_sign_an_in_toto_statement_naming_the_image() {
    let (dir, root) = ci_signer();
    let d = dir.path().to_str().unwrap();
    let image = ImageName::parse("localhost:5000/team/app").unwrap();
    let statement = |name: &str, digest: &str| {
        format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"{name}","digest":{{"sha256":"{}"}}}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}}}"#,
            digest.trim_start_matches("sha256:")
        )
    };
    let bundle = |signer: &str, statement: String, kind: &str| {
        std::fs::write(dir.path().join("statement"), statement).unwrap();
        let json = sigstore(&[
            kind,
            d,
            signer,
            dir.path().join("statement").to_str().unwrap(),
        ]);
        format::bundle(&json).unwrap()
    };
    let keyless = Trust::new(Vec::new(), identities(ISSUER, ".*"), Some(root.clone()));
    let good = bundle("ci", statement("localhost:5000/team/app", DIGEST), "bundle");
    assert_eq!(
        check_bundle(&good, &keyless, &image, DIGEST),
        Ok(format!("{SUBJECT} ({ISSUER})"))
    );
    // Its inclusion proof leads to the checkpoint the log signed.
    let proof = good.rekor.as_ref().unwrap().proof.clone().expect("a proof");
    let mut off_path = good.clone();
    off_path
        .rekor
        .as_mut()
        .unwrap()
        .proof
        .as_mut()
        .unwrap()
        .hashes[0][0] ^= 1;
    let why = check_bundle(&off_path, &keyless, &image, DIGEST).unwrap_err();
    assert!(why.contains("inclusion proof does not lead"), "{why}");
    let mut unsigned_head = good.clone();
    let note = &mut unsigned_head
        .rekor
        .as_mut()
        .unwrap()
        .proof
        .as_mut()
        .unwrap()
        .checkpoint;
    *note = note.replacen("rekor.invalid - 1234", "rekor.invalid - 1235", 1);
    let why = check_bundle(&unsigned_head, &keyless, &image, DIGEST).unwrap_err();
    assert!(why.contains("checkpoint is not signed"), "{why}");
    assert_eq!(proof.tree_size, 2);
    let why = check_bundle(&good, &keyless, &image, &DIGEST.replace('1', "2")).unwrap_err();
    assert!(why.contains("does not name"), "{why}");
    let elsewhere = bundle(
        "ci",
        statement("localhost:5000/team/other", DIGEST),
        "bundle",
    );
    let why = check_bundle(&elsewhere, &keyless, &image, DIGEST).unwrap_err();
    assert!(why.contains("team/other"), "{why}");
    // An attestation by the same identity over the same image (here an
    // SBOM) is not a signature of it.
    let sbom = bundle(
        "ci",
        statement("localhost:5000/team/app", DIGEST).replace(
            "https://sigstore.dev/cosign/sign/v1",
            "https://cyclonedx.org/bom",
        ),
        "bundle",
    );
    let why = check_bundle(&sbom, &keyless, &image, DIGEST).unwrap_err();
    assert!(
        why.contains("attestation") && why.contains("cyclonedx"),
        "{why}"
    );

    // A key-based bundle (no certificate, no log entry).
    let (private, public) = key(dir.path(), "p256");
    let key = PublicKey::from_pem(&public).unwrap();
    let private = dir.path().join(private);
    let keyed_bundle = bundle(
        private.to_str().unwrap(),
        statement("localhost:5000/team/app", DIGEST),
        "bundle-key",
    );
    assert_eq!(
        check_bundle(
            &keyed_bundle,
            &keyed(std::slice::from_ref(&key)),
            &image,
            DIGEST
        ),
        Ok(key.fingerprint.clone())
    );
    assert!(check_bundle(&keyed_bundle, &keyless, &image, DIGEST).is_err());
}
