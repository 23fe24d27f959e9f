//! `crowsnest check [DIR] [--config FILE]`: offline lint of a checkout
//! (policy files, markers, targets) and/or of a daemon config. Prints each
//! problem as `file:line:col: message`; exit 0 clean, 1 findings.

use crate::cli::{CheckArgs, Exit};
use crate::commands::report;
use crate::config::Config;
use crate::inventory::{DirSource, Inventory, Options, Sources};

pub async fn run(args: CheckArgs) -> Exit {
    let mut problems = 0usize;
    let mut config = None;
    if let Some(path) = &args.config {
        match Config::load(path) {
            Ok(c) => {
                if let Some(root) = &c.trusted_root
                    && let Err(e) = crate::verify::TrustedRoot::load(root)
                {
                    println!("{}: {e}", path.display());
                    problems += 1;
                }
                config = Some(c);
            }
            Err(e) => {
                println!("{e}");
                problems += 1;
            }
        }
    }
    // With only --config, the config is all there is to check.
    let dir = match (&args.dir, &args.config) {
        (Some(dir), _) => Some(dir.clone()),
        (None, None) => Some(".".into()),
        (None, Some(_)) => None,
    };
    if let Some(dir) = dir {
        let entry = match config
            .as_ref()
            .map(|c| c.repository(args.repository.as_deref()))
        {
            Some(Err(message)) => {
                eprintln!("error: {message}");
                return Exit::Usage;
            }
            Some(Ok(entry)) => Some(entry),
            None => None,
        };
        let names: Vec<&str> = config
            .iter()
            .flat_map(|c| &c.repositories)
            .map(|r| r.name.as_str())
            .collect();
        let options = match (&config, entry) {
            (Some(c), Some(entry)) => Options {
                sources: Some(Sources {
                    entry: &entry.name,
                    entries: &names,
                    verify_keys: !c.verify_keys.is_empty(),
                }),
                ..crate::reconcile::inventory_options(c, entry)
            },
            _ => Options {
                policies_dir: "policies",
                scan_dir: "",
                automation_path: true,
                ..Options::default()
            },
        };
        for link in symlinks(&dir) {
            eprintln!(
                "note: {link} is a symbolic link; crowsnest never follows links, so it is skipped (and never written)"
            );
        }
        let source = DirSource::new(&dir);
        match Inventory::build_with(&source, &options) {
            Ok((inventory, findings)) => {
                for finding in &findings {
                    println!("{finding}");
                }
                for warning in &inventory.warnings {
                    eprintln!("warning: {warning}");
                }
                problems += findings.len();
                let trusted_root = config.as_ref().map(|c| c.trusted_root.is_some());
                for problem in verify_keys(&dir, &inventory, trusted_root) {
                    println!("{problem}");
                    problems += 1;
                }
                if findings.is_empty() {
                    let setters: usize = inventory.files.values().map(|f| f.setters.len()).sum();
                    eprintln!(
                        "{}: {} policies, {} setters in {} files: no problems",
                        dir.display(),
                        inventory.policies.len(),
                        setters,
                        inventory.files.len()
                    );
                }
            }
            Err(e) => {
                report(&e);
                problems += 1;
            }
        }
    }
    if problems == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

/// Every `verify.publicKeys` file exists in the checkout and is a public
/// key crowsnest can verify with; keyless identities have a trusted root
/// when a config is checked too (`trusted_root`: whether it names one).
fn verify_keys(
    dir: &std::path::Path,
    inventory: &Inventory,
    trusted_root: Option<bool>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for policy in inventory.policies.values() {
        let Some(verify) = &policy.verify else {
            continue;
        };
        if !verify.keyless.is_empty() && trusted_root == Some(false) {
            problems.push(format!(
                "{}: verify.keyless needs sigstore.trustedRoot in the daemon config",
                policy.declared_at
            ));
        }
        for (path, at) in &verify.public_keys {
            let read = super::signatures::checkout_file(dir, path).and_then(|bytes| {
                crate::verify::PublicKey::from_pem(&String::from_utf8_lossy(&bytes))
            });
            if let Err(e) = read {
                problems.push(format!("{at}: verify.publicKeys {path}: {e}"));
            }
        }
    }
    problems
}

/// Symbolic links in the checkout (not under `.git`), repository-relative,
/// so `check` can say why a file behind one is not read.
fn symlinks(dir: &std::path::Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .filter_map(Result::ok)
        .filter(|e| e.path_is_symlink())
        .filter_map(|e| {
            e.path()
                .strip_prefix(dir)
                .ok()
                .map(|p| p.display().to_string())
        })
        .collect()
}
