//! The ref index: stored image names and what they point to, in `<root>/refs.json`.
//!
//! Readers load the file without locking (it is only ever replaced whole by rename); writers take
//! `refs.lock` exclusively around load-modify-write, write a temporary, fsync it and rename it over the
//! index. Entries carry what `list` shows and what a later prune needs (`added`), so listing reads no blobs.
//! This module must not resolve names (see lookup.rs) or touch blobs.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;

use serde::{Deserialize, Serialize};

use super::error::{read_err, Error};
use super::lock;
use super::store::{sync_dir, unique_name, ImageStore, REFS_TEMP_PREFIX};

const VERSION: u32 = 1;

/// The whole index.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct RefIndex {
    pub version: u32,
    /// Stored name (`localhost/busybox:latest`) to entry.
    pub images: BTreeMap<String, RefEntry>,
}

/// What one name points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefEntry {
    /// Manifest digest (`sha256:...`).
    pub manifest: String,
    /// Config digest, the image ID.
    pub config: String,
    /// `repository@digest` for pulled images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_digest: Option<String>,
    /// Config plus layer blob sizes.
    pub size: u64,
    /// The config's `created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Unix seconds when this name was stored.
    pub added: u64,
}

impl ImageStore {
    /// Loads the index; a missing file is an empty index.
    pub(crate) fn load_refs(&self) -> Result<RefIndex, Error> {
        let path = self.refs_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(RefIndex {
                    version: VERSION,
                    ..RefIndex::default()
                })
            }
            Err(e) => return Err(read_err(path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| Error::ParseJson {
            what: path.display().to_string(),
            source,
        })
    }

    /// Applies `change` to the index under `refs.lock` and writes it back atomically.
    pub(crate) fn update_refs<T>(&self, change: impl FnOnce(&mut RefIndex) -> T) -> Result<T, Error> {
        let _exclusive = lock::lock(&self.refs_lock_path(), lock::Mode::Exclusive)?;
        let mut index = self.load_refs()?;
        let result = change(&mut index);
        index.version = VERSION;
        self.write_refs(&index)?;
        Ok(result)
    }

    fn write_refs(&self, index: &RefIndex) -> Result<(), Error> {
        let path = self.refs_path();
        let temp = self.root().join(unique_name(REFS_TEMP_PREFIX));
        let write = || -> io::Result<()> {
            let bytes = serde_json::to_vec_pretty(index).map_err(io::Error::other)?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        };
        if let Err(source) = write() {
            let _ = fs::remove_file(&temp);
            return Err(Error::WriteRefs { path, source });
        }
        sync_dir(self.root())
    }
}

/// Seconds since the Unix epoch, for `RefEntry::added`.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manifest: &str) -> RefEntry {
        RefEntry {
            manifest: manifest.into(),
            config: "sha256:c".into(),
            repo_digest: None,
            size: 1,
            created: None,
            added: 0,
        }
    }

    #[test]
    fn updates_are_persisted_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(dir.path()).expect("open");
        assert!(store.load_refs().expect("empty").images.is_empty());
        store
            .update_refs(|index| index.images.insert("a:1".into(), entry("sha256:m")))
            .expect("update");
        let reopened = ImageStore::open(dir.path()).expect("reopen");
        assert_eq!(
            reopened.load_refs().expect("load").images.get("a:1"),
            Some(&entry("sha256:m"))
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("read_dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(REFS_TEMP_PREFIX))
            .collect();
        assert!(leftovers.is_empty());
        assert!(store.refs_path().is_file());
    }
}
