//! The attachment cache: after a successful ADD, the network config, runtime arguments and result are
//! written (atomically, mode 0600) to `<cache-dir>/<container-id>-<ifname>.json`, so that DEL and CHECK
//! after a restart of peapod still pass the `prevResult` the spec requires, with the config that was used.
//!
//! libcni keeps the same data under `/var/lib/cni/results`; this file format is peapod's own (the config
//! is stored as JSON, not base64) and is never shared with other runtimes.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::config::{read_bounded, NetworkConfig, MAX_CONF_BYTES};
use super::{CniRuntime, Error};
use crate::sys;

/// `kind` of a cache entry.
const KIND: &str = "peapodCniCacheV1";
/// An entry holds a config and a result, each bounded when it was made.
const MAX_ENTRY_BYTES: u64 = 4 * MAX_CONF_BYTES;

/// One cached attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Entry {
    pub kind: String,
    pub container_id: String,
    pub if_name: String,
    pub network_name: String,
    #[serde(default)]
    pub netns: String,
    #[serde(default)]
    pub cni_args: Vec<(String, String)>,
    #[serde(default)]
    pub capability_args: Map<String, Value>,
    pub config: Value,
    pub result: Value,
}

impl Entry {
    /// A new entry for an ADD of `net` with `rt` that produced `result`.
    pub fn new(net: &NetworkConfig, rt: &CniRuntime, result: &Value) -> Self {
        Entry {
            kind: KIND.to_string(),
            container_id: rt.container_id.clone(),
            if_name: rt.ifname.clone(),
            network_name: net.name().to_string(),
            netns: rt.netns_path.display().to_string(),
            cni_args: rt.args.clone(),
            capability_args: rt.capability_args.clone(),
            config: net.to_list_json(),
            result: result.clone(),
        }
    }

    /// The network config the ADD used.
    pub fn network(&self, path: &Path) -> Result<NetworkConfig, Error> {
        match &self.config {
            Value::Object(list) => NetworkConfig::from_list_value(list.clone(), path),
            _ => Err(Error::InvalidConf {
                path: path.to_path_buf(),
                reason: "cached config is not an object".into(),
            }),
        }
    }

    /// The runtime arguments of the ADD, for a DEL without a live sandbox record.
    pub fn runtime(&self) -> CniRuntime {
        CniRuntime {
            container_id: self.container_id.clone(),
            netns_path: PathBuf::from(&self.netns),
            ifname: self.if_name.clone(),
            args: self.cni_args.clone(),
            capability_args: self.capability_args.clone(),
        }
    }
}

/// The cache file of an attachment. `rt` must be validated (its id and ifname hold no `/`).
pub(super) fn path(dir: &Path, rt: &CniRuntime) -> PathBuf {
    dir.join(format!("{}-{}.json", rt.container_id, rt.ifname))
}

/// Writes an entry atomically.
pub(super) fn store(dir: &Path, rt: &CniRuntime, entry: &Entry) -> Result<(), Error> {
    let file = path(dir, rt);
    let write_error = |source| Error::WriteCache {
        path: file.clone(),
        source,
    };
    sys::fs::create_dir_all_mode(dir, 0o700).map_err(write_error)?;
    let data = serde_json::to_vec(entry).map_err(|e| write_error(io::Error::other(e)))?;
    sys::fs::write_atomic(&file, &data, 0o600).map_err(write_error)
}

/// Reads the entry of an attachment; `None` when there is none.
pub(super) fn load(dir: &Path, rt: &CniRuntime) -> Result<Option<Entry>, Error> {
    read(&path(dir, rt))
}

fn read(file: &Path) -> Result<Option<Entry>, Error> {
    if !file.exists() {
        return Ok(None);
    }
    let bytes = read_bounded(file, MAX_ENTRY_BYTES)?;
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|source| Error::ParseConf {
        path: file.to_path_buf(),
        source,
    })?;
    if entry.kind != KIND {
        return Err(Error::InvalidConf {
            path: file.to_path_buf(),
            reason: format!("unknown cache kind {:?}", entry.kind),
        });
    }
    Ok(Some(entry))
}

/// Removes the entry of an attachment; a missing entry is fine.
pub(super) fn remove(dir: &Path, rt: &CniRuntime) -> Result<(), Error> {
    let file = path(dir, rt);
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::WriteCache { path: file, source }),
    }
}

/// Every readable entry in the cache directory, sorted by file name. Unreadable files are skipped.
pub(super) fn list(dir: &Path) -> Result<Vec<Entry>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::ReadConfDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        match read(&file) {
            Ok(Some(entry)) => out.push(entry),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(
                    file = %file.display(),
                    error = %crate::sys::chain(&error),
                    "skipping unreadable CNI cache entry"
                )
            }
        }
    }
    Ok(out)
}
