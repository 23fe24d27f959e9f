//! The daemon config (`crowsnest.yaml`): no input may panic the reader or
//! the validator; every error names the file and a 1-based line and
//! column; every accepted config holds the invariants the rest of the
//! crate relies on (at least one repository, unique DNS-label names, and
//! for each: repository folders relative and without `..`, branch names
//! git accepts, an author without `<`, `>` or newlines).
#![no_main]

use std::path::Path;

use crowsnest::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "/etc/crowsnest/crowsnest.yaml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_str(Path::new(FILE), text) {
        Ok(config) => {
            assert!(
                !config.repositories.is_empty(),
                "a config without repositories"
            );
            let mut names = std::collections::BTreeSet::new();
            for entry in &config.repositories {
                assert!(
                    names.insert(&entry.name),
                    "repository name {:?} twice",
                    entry.name
                );
                assert!(
                    !entry.name.is_empty()
                        && entry
                            .name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                    "repository name {:?}",
                    entry.name
                );
                let git = &entry.git;
                for dir in [&git.path, &git.policies] {
                    assert!(!dir.starts_with('/'), "absolute repository folder {dir:?}");
                    assert!(
                        !dir.split('/')
                            .any(|p| p == ".." || p.is_empty() && !dir.is_empty()),
                        "repository folder {dir:?} escapes or is not normalized"
                    );
                }
                for branch in [&git.branch, &git.push_branch] {
                    assert!(!branch.is_empty(), "empty branch");
                    assert!(
                        !branch.contains([' ', '~', '^', ':', '?', '*', '[', '\\', '\n']),
                        "branch {branch:?} git would refuse"
                    );
                }
                for field in [&git.author.name, &git.author.email] {
                    assert!(!field.contains(['<', '>', '\n']), "author {field:?}");
                }
            }
            assert!(
                config.scan.interval >= std::time::Duration::from_secs(1),
                "an interval under a second"
            );
        }
        Err(ConfigError::Invalid(e)) => {
            assert_eq!(e.at.file, FILE, "the error names the file");
            assert!(
                e.at.position.line >= 1 && e.at.position.column >= 1,
                "1-based position: {e}"
            );
            assert!(!e.message.is_empty(), "an error says what is wrong");
        }
        Err(ConfigError::Read { .. }) => panic!("from_str never reads a file"),
    }
});
