//! Only signed images (PRODUCT.md §9): cosign signatures checked before a
//! tag is written. Called from `reconcile` (and `explain`, `tags`) only,
//! through [`Verdicts::verdict`].
//!
//! Where signatures are found, for the image whose manifest digest is
//! `sha256:<hex>`:
//! - cosign's tag scheme: the layers of the manifest tagged
//!   `sha256-<hex>.sig`, each a simple-signing payload signed in its
//!   `dev.cosignproject.cosign/signature` annotation (keyless: with the
//!   certificate, chain and Rekor bundle annotations);
//! - OCI 1.1 referrers: Sigstore bundles (DSSE envelope over an in-toto
//!   statement naming the image) attached as artifacts whose `subject` is
//!   the image, listed by the referrers API, or, on a registry without it
//!   (its route answers 404; remembered per host), by the image index
//!   tagged `sha256-<hex>`.
//!
//! The image's tag list (already fetched to choose a tag) says whether
//! either tag exists, so a digest without them costs no request, and a
//! `.sig` layer holding the payload cosign writes for this image and
//! digest is recognised by its digest without fetching the blob.
//!
//! A signature counts when it verifies under one of the policy's public
//! keys, or under a keyless certificate checked against the trusted root
//! with an identity the policy names ([`keyless`]), **and** what it signs
//! names the very digest being written in the image's repository. Verdicts
//! are cached by digest and trust; an unsigned or bad verdict is read again
//! when the image's tag list changes (a signature pushed later adds a tag).
//!
//! Formats are read in [`format`] (no I/O, fuzzed), keys in [`keys`].
//! Why not all of sigstore-rs: its cosign support brings `oci-client`, a
//! second registry client this project keeps out (see
//! `src/registry/mod.rs`), and its bundle verifier needs its networked
//! Fulcio/Rekor/TUF features; the parts used are its own types crate
//! (`sigstore_protobuf_specs`), `x509-cert` and the RustCrypto crates it
//! verifies with.

pub mod format;
#[cfg(feature = "runtime")]
mod keyless;
#[cfg(feature = "runtime")]
mod keys;
#[cfg(feature = "runtime")]
mod verdicts;

#[cfg(feature = "runtime")]
pub use keyless::{Identity, TrustedRoot};
#[cfg(feature = "runtime")]
pub use keys::PublicKey;
#[cfg(feature = "runtime")]
pub use verdicts::{Listing, Trust, Verdict, Verdicts};

#[cfg(all(test, feature = "runtime"))]
mod tests;
