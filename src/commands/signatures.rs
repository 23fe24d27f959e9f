//! Signature verdicts in `tags --all` and `explain` for a policy with
//! `verify`: the candidates are checked from the pick downwards, as the
//! daemon does, until one is signed; each passed over shows `unsigned` or
//! `bad signature` with why, and the signed one is the pick.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::ImageName;
use crate::policy::Verify;
use crate::policy::{Decision, Selector, Verdict};
use crate::registry::{Registry, RegistryError};
use crate::verify::{self, Identity, Listing, PublicKey, Trust, TrustedRoot, Verdicts};

/// At most this many candidates are checked (as the daemon).
const MAX_PROBES: usize = 20;

/// Where a policy's key files are read.
pub(crate) enum Keys<'a> {
    /// A checkout: the repository root, found above the policy file.
    Checkout(&'a Path),
    /// A revision of a clone.
    Git {
        repo: &'a git2::Repository,
        rev: &'a str,
    },
}

/// The root of the checkout holding `file`: the nearest folder above it
/// with a `.git`, else the current folder.
pub(crate) fn checkout_root(file: &Path) -> PathBuf {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    absolute
        .ancestors()
        .skip(1)
        .find(|dir| dir.join(".git").exists())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The trust of `verify`: its key files, its keyless identities with the
/// trusted root (the config's `sigstore.trustedRoot`).
pub(crate) fn trust(
    verify: &Verify,
    keys: Keys<'_>,
    trusted_root: Option<&Path>,
) -> Result<Trust, String> {
    let mut loaded = Vec::new();
    for (path, at) in &verify.public_keys {
        let bytes = match &keys {
            Keys::Checkout(root) => checkout_file(root, path),
            Keys::Git { repo, rev } => read_blob(repo, rev, path),
        };
        loaded.push(
            bytes
                .and_then(|b| PublicKey::from_pem(&String::from_utf8_lossy(&b)))
                .map_err(|e| format!("{at}: verify.publicKeys {path}: {e}"))?,
        );
    }
    let root = match (verify.keyless.is_empty(), trusted_root) {
        (true, _) => None,
        (false, Some(path)) => Some(Arc::new(TrustedRoot::load(path)?)),
        (false, None) => {
            return Err(
                "verify.keyless needs a trusted root: pass --config with sigstore.trustedRoot"
                    .into(),
            );
        }
    };
    Ok(Trust::new(loaded, Identity::compile(&verify.keyless), root))
}

/// A key file of the checkout at `root`, never through a symbolic link.
pub(crate) fn checkout_file(root: &Path, path: &str) -> Result<Vec<u8>, String> {
    let file = root.join(path);
    if std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err("a symbolic link; crowsnest does not follow links".into());
    }
    std::fs::read(&file).map_err(|e| e.to_string())
}

fn read_blob(repo: &git2::Repository, rev: &str, path: &str) -> Result<Vec<u8>, String> {
    let tree = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_tree())
        .map_err(|e| e.message().to_owned())?;
    let entry = tree
        .get_path(Path::new(path))
        .map_err(|_| "no such file in the repository".to_owned())?;
    if entry.filemode() == 0o120000 {
        return Err("a symbolic link; crowsnest does not follow links".into());
    }
    let blob = repo
        .find_blob(entry.id())
        .map_err(|e| e.message().to_owned())?;
    Ok(blob.content().to_vec())
}

/// Checks `decision`'s candidates from its pick downwards under `trust`
/// until one is signed, and rewrites their verdicts: passed-over tags
/// `unsigned` or `bad signature` (with the digest and why), the signed one
/// selected (with who signed); none signed, no pick.
pub(crate) async fn check(
    decision: &mut Decision,
    selector: &Selector<'_>,
    image: &ImageName,
    trust: &Trust,
    registry: &Registry,
) -> Result<(), RegistryError> {
    let tags: Vec<String> = decision.candidates.iter().map(|c| c.tag.clone()).collect();
    let listing = Listing::new(&tags);
    let verdicts = Verdicts::default();
    let mut remaining: Vec<&str> = tags.iter().map(String::as_str).collect();
    let Some(first) = decision.selected_index() else {
        return Ok(());
    };
    let mut tag = tags[first].as_str();
    decision.selected = None;
    for _ in 0..MAX_PROBES {
        let digest = registry.inspect(image, tag, None).await?.digest;
        let verdict = verdicts
            .verdict(registry, image, &digest, trust, listing)
            .await?;
        let Some(candidate) = decision.candidates.iter_mut().find(|c| c.tag == tag) else {
            break;
        };
        match verdict {
            verify::Verdict::Signed { by } => {
                candidate.verdict = Verdict::Selected;
                candidate.detail = format!("{}; {digest} signed by {by}", candidate.detail);
                decision.selected = Some(tag.to_owned());
                return Ok(());
            }
            verify::Verdict::Unsigned => {
                candidate.verdict = Verdict::Unsigned;
                candidate.detail = format!("{digest} has no signature");
            }
            verify::Verdict::Bad(why) => {
                candidate.verdict = Verdict::BadSignature;
                candidate.detail = format!("{digest}: {why}");
            }
        }
        remaining.retain(|t| *t != tag);
        match selector.select(&remaining) {
            Some(next) => tag = remaining[next],
            None => break,
        }
    }
    Ok(())
}
