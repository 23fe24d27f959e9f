//! Reading crowsnest's own YAML files (daemon config, policy files) with
//! serde-saphyr: bounded against hostile input (alias bombs, deep nesting,
//! huge documents) and with every error as `file:line:col: message`.

use serde::de::DeserializeOwned;

use crate::model::{Located, Position};

/// The largest YAML file crowsnest parses into structures, in bytes.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// A YAML error at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct YamlError {
    pub at: Located,
    pub message: String,
}

impl YamlError {
    pub fn new(at: Located, message: impl Into<String>) -> Self {
        Self {
            at,
            message: message.into(),
        }
    }
}

/// Where a serde-saphyr span points, as a crowsnest position.
pub fn position(location: &serde_saphyr::Location) -> Position {
    Position::new(
        location.line().max(1) as u32,
        location.column().max(1) as u32,
    )
}

/// The budget every crowsnest YAML read runs under: far above any real
/// config or policy file, far below what an alias bomb expands to.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 1_000_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_depth: 64,
            max_documents: 10_000,
            max_nodes: 1_000_000,
            max_total_scalar_bytes: MAX_FILE_BYTES,
        },
    }
}

fn located_error(file: &str, error: &serde_saphyr::Error) -> YamlError {
    let position = error
        .location()
        .map(|l| position(&l))
        .unwrap_or(Position::new(1, 1));
    let mut message = error.render_with_options(serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
        formatter: &serde_saphyr::UserMessageFormatter,
    });
    // The rendered message ends with " at line L, column C"; the position
    // moves to the front, where editors and `file:line:col` tools look.
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    YamlError::new(Located::new(file, position), message)
}

fn check_size(file: &str, text: &str) -> Result<(), YamlError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(YamlError::new(
            Located::new(file, Position::new(1, 1)),
            format!(
                "file is {} bytes; crowsnest reads YAML files up to {} bytes",
                text.len(),
                MAX_FILE_BYTES
            ),
        ));
    }
    Ok(())
}

/// Deserializes one document.
pub fn from_str<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, YamlError> {
    check_size(file, text)?;
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| located_error(file, &e))
}

/// Deserializes every document of a `---` separated stream.
pub fn from_str_multiple<T: DeserializeOwned>(file: &str, text: &str) -> Result<Vec<T>, YamlError> {
    check_size(file, text)?;
    serde_saphyr::from_str_multiple_with_options(text, options())
        .map_err(|e| located_error(file, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Small {
        a: u32,
    }

    #[test]
    fn errors_put_file_line_and_column_first() {
        let err = from_str::<Small>("conf.yaml", "a: 1\nb: 2\n").unwrap_err();
        assert_eq!(err.at.to_string(), "conf.yaml:2:1");
        assert!(err.message.contains("unknown field `b`"), "{}", err.message);
        assert!(!err.message.contains("at line"), "{}", err.message);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = from_str::<serde_json::Value>("bomb.yaml", &bomb).unwrap_err();
        assert_eq!(err.at.file, "bomb.yaml");
    }
}
