//! Signature formats from a registry (src/verify/format.rs): the first
//! byte picks the reader, the rest is what a registry could answer. No
//! input may panic; what is read is consistent with what was checked.
#![no_main]

use crowsnest::verify::format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        // A `.sig` manifest: every layer read has a sha256 payload digest.
        0 => {
            if let Ok(layers) = format::signature_layers(body) {
                for layer in layers.into_iter().flatten() {
                    assert!(format::is_sha256_digest(&layer.digest));
                    if let Some(rekor) = layer.rekor {
                        let _ = rekor.signed_payload();
                    }
                }
            }
        }
        // cosign's Rekor bundle annotation and a Rekor entry body.
        1 => {
            if let Ok(entry) = format::rekor_bundle(body) {
                let signed = entry.signed_payload();
                assert!(signed.starts_with(b"{\"body\":\""));
                let _ = format::rekor_body(&entry.body);
            }
        }
        2 => {
            if let Ok(logged) = format::rekor_body(body) {
                assert!(!logged.payload_sha256.is_empty() && !logged.signatures.is_empty());
            }
        }
        // A Sigstore bundle, its statement and what its signature covers.
        3 => {
            if let Ok(bundle) = format::bundle(body) {
                let pae = format::pae(&bundle.payload_type, &bundle.payload);
                assert!(pae.ends_with(&bundle.payload));
                let _ = format::in_toto_statement(&bundle.payload);
                if let Some(rekor) = &bundle.rekor
                    && let Some(proof) = &rekor.proof
                {
                    if let Some(root) = proof.root_from(&rekor.body) {
                        assert_eq!(root.len(), 32);
                    }
                    let _ = proof.checkpoint_parts();
                }
            }
        }
        // The referrers index and the bundle's artifact manifest.
        4 => {
            if let Ok(digests) = format::bundle_referrers(body) {
                assert!(digests.iter().all(|d| format::is_sha256_digest(d)));
            }
        }
        5 => {
            if let Ok((blob, _)) = format::bundle_manifest(body) {
                assert!(format::is_sha256_digest(&blob));
            }
        }
        // A simple-signing payload, and the one cosign writes reads back.
        6 => {
            if let Ok(named) = format::simple_signing(body) {
                let rebuilt = format::simple_signing_payload(&named.reference, &named.digest);
                assert_eq!(format::simple_signing(&rebuilt), Ok(named));
            }
        }
        // PEM blocks of any text.
        _ => {
            let _ = format::pem_blocks(&String::from_utf8_lossy(body), "CERTIFICATE");
        }
    }
});
