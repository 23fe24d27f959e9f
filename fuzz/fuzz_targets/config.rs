//! The daemon config (`crowsnest.yaml`): no input may panic the reader or
//! the validator; every error names the file and a 1-based line and
//! column; every accepted config holds the invariants the rest of the
//! crate relies on (repository folders relative and without `..`, branch
//! names git accepts, an author without `<`, `>` or newlines).
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
            let git = &config.git;
            for dir in [&git.path, &git.policies] {
                assert!(!dir.starts_with('/'), "absolute repository folder {dir:?}");
                assert!(
                    !dir.split('/').any(|p| p == ".." || p.is_empty() && !dir.is_empty()),
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
