//! The daemon's tag cache: the tags each image repository had at its last
//! scan, kept in memory compactly and persisted in `stateDir/tags/`, one
//! JSON file per repository, written atomically (temp file + rename).
//!
//! A restarted daemon plans its first pass from the cache instead of
//! rescanning every repository at once, and schedules each repository's
//! next scan from the time the cache says it was last scanned.
//!
//! A repository with 1,000 tags is one string plus 1,000 offsets, not
//! 1,000 `String`s: the daemon holds a million tags in about 12 MiB.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tracing::warn;

/// A repository's tags in the registry's order, in one allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagList {
    text: Box<str>,
    /// End offset of each tag in `text`.
    ends: Box<[u32]>,
}

impl TagList {
    pub fn new(tags: &[String]) -> TagList {
        let mut text = String::with_capacity(tags.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(tags.len());
        for tag in tags {
            text.push_str(tag);
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        TagList {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&end| {
            let end = end as usize;
            let tag = &self.text[start..end];
            start = end;
            tag
        })
    }

    /// The tags as the policy engine takes them.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

/// One repository's entry.
#[derive(Debug)]
pub struct Cached {
    pub tags: TagList,
    pub scanned_at: SystemTime,
}

/// A cache failure; the daemon logs it and goes on with memory only.
#[derive(Debug, thiserror::Error)]
#[error("tag cache {path}: {source}")]
pub struct CacheError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Tags by repository (`registry/repository`, [`crate::model::ImageName::canonical`]).
#[derive(Debug, Default)]
pub struct TagCache {
    /// `None`: memory only.
    dir: Option<PathBuf>,
    entries: Mutex<HashMap<String, Arc<Cached>>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileWire {
    repository: String,
    /// Seconds since the Unix epoch.
    scanned_at: u64,
    tags: Vec<String>,
}

impl TagCache {
    /// A cache that persists nothing.
    pub fn in_memory() -> TagCache {
        TagCache::default()
    }

    /// Opens (creating) `dir` and loads every entry in it. Unreadable or
    /// corrupt entries are skipped with a warning: the repository is
    /// simply scanned again.
    pub fn open(dir: &Path) -> Result<TagCache, CacheError> {
        let error = |source| CacheError {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(error)?;
        let mut entries = HashMap::new();
        for entry in std::fs::read_dir(dir).map_err(error)? {
            let path = entry.map_err(error)?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<FileWire>(&bytes).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(wire) => {
                    entries.insert(
                        wire.repository,
                        Arc::new(Cached {
                            tags: TagList::new(&wire.tags),
                            scanned_at: UNIX_EPOCH + Duration::from_secs(wire.scanned_at),
                        }),
                    );
                }
                Err(e) => {
                    warn!(file = %path.display(), error = %e, "skipping an unreadable tag cache entry")
                }
            }
        }
        Ok(TagCache {
            dir: Some(dir.to_owned()),
            entries: Mutex::new(entries),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Cached>>> {
        // The map is consistent between statements; a panic elsewhere
        // does not make it unusable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, repository: &str) -> Option<Arc<Cached>> {
        self.lock().get(repository).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Records a scan. Returns whether the tags differ from the cached ones
    /// (true for a repository not cached before).
    pub fn store(
        &self,
        repository: &str,
        tags: &[String],
        scanned_at: SystemTime,
    ) -> Result<bool, CacheError> {
        let list = TagList::new(tags);
        let changed = self.get(repository).is_none_or(|c| c.tags != list);
        self.lock().insert(
            repository.to_owned(),
            Arc::new(Cached {
                tags: list,
                scanned_at,
            }),
        );
        if let Some(dir) = &self.dir {
            let wire = FileWire {
                repository: repository.to_owned(),
                scanned_at: scanned_at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                tags: tags.to_vec(),
            };
            write_atomically(&dir.join(file_name(repository)), &wire)?;
        }
        Ok(changed)
    }
}

/// A file name for a repository that is safe on any filesystem.
fn file_name(repository: &str) -> String {
    let digest = Sha256::digest(repository.as_bytes());
    format!("{}.json", hex::encode(&digest[..16]))
}

fn write_atomically(path: &Path, wire: &FileWire) -> Result<(), CacheError> {
    let error = |source| CacheError {
        path: path.display().to_string(),
        source,
    };
    let bytes = serde_json::to_vec(wire).map_err(|e| error(std::io::Error::other(e)))?;
    let temp = path.with_extension("json.tmp");
    std::fs::write(&temp, bytes).map_err(error)?;
    std::fs::rename(&temp, path).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn tag_lists_keep_order_and_content() {
        let list = TagList::new(&tags(&["1.0.0", "", "latest", "1.0.0"]));
        assert_eq!(list.len(), 4);
        assert_eq!(list.to_vec(), tags(&["1.0.0", "", "latest", "1.0.0"]));
        assert!(TagList::new(&[]).is_empty());
    }

    #[test]
    fn entries_survive_a_reopen_and_report_changes() {
        let dir = tempfile::tempdir().unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cache = TagCache::open(dir.path()).unwrap();
        assert!(cache.store("r/a", &tags(&["1", "2"]), at).unwrap());
        assert!(!cache.store("r/a", &tags(&["1", "2"]), at).unwrap());
        assert!(cache.store("r/a", &tags(&["1", "2", "3"]), at).unwrap());
        std::fs::write(dir.path().join("junk.json"), "{not json").unwrap();

        let reopened = TagCache::open(dir.path()).unwrap();
        assert_eq!(reopened.len(), 1);
        let entry = reopened.get("r/a").unwrap();
        assert_eq!(entry.tags.to_vec(), tags(&["1", "2", "3"]));
        assert_eq!(entry.scanned_at, at);
        assert!(reopened.get("r/b").is_none());
    }
}
