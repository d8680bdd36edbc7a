//! Standalone status files: one JSON file per pod uid holding the whole PodGroup with its status, written
//! atomically by the supervisor and read by `peapod get` and `peapod logs` (which need no running daemon).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::api::PodGroup;
use crate::runtime::layout::is_safe_component;
use crate::sys;

/// The status files of a state directory.
#[derive(Debug, Clone)]
pub struct StatusStore {
    dir: PathBuf,
}

impl StatusStore {
    /// The store under `<state_dir>/standalone`.
    pub fn new(state_dir: &Path) -> Self {
        StatusStore {
            dir: state_dir.join("standalone"),
        }
    }

    fn path(&self, uid: &str) -> Option<PathBuf> {
        is_safe_component(uid).then(|| self.dir.join(format!("{uid}.json")))
    }

    /// Writes the pod (with its status) atomically.
    pub fn write(&self, pod: &PodGroup) -> io::Result<()> {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let path = self
            .path(uid)
            .ok_or_else(|| io::Error::other(format!("unsafe pod uid {uid:?}")))?;
        sys::fs::create_dir_all_mode(&self.dir, 0o700)?;
        sys::fs::write_json_atomic(&path, pod)
    }

    /// Removes a pod's file.
    pub fn remove(&self, uid: &str) {
        if let Some(p) = self.path(uid) {
            let _ = fs::remove_file(p);
        }
    }

    /// Reads one pod by uid.
    pub fn get(&self, uid: &str) -> Option<PodGroup> {
        sys::fs::read_json(&self.path(uid)?).ok().flatten()
    }

    /// Every pod, ordered by namespace and name, terminating incarnations after live ones.
    pub fn list(&self) -> Vec<PodGroup> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match sys::fs::read_json::<PodGroup>(&path) {
                Ok(Some(pod)) => out.push(pod),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable status file")
                }
            }
        }
        out.sort_by(|a, b| {
            let key = |p: &PodGroup| {
                (
                    p.metadata.namespace.clone(),
                    p.metadata.name.clone(),
                    p.metadata.deletion_timestamp.is_some(),
                )
            };
            key(a).cmp(&key(b))
        });
        out
    }

    /// The pod called `name` in `namespace`: the live incarnation if there is one.
    pub fn find(&self, namespace: &str, name: &str) -> Option<PodGroup> {
        self.list()
            .into_iter()
            .find(|p| p.metadata.name.as_deref() == Some(name) && p.namespace_or_default() == namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(uid: &str, name: &str) -> PodGroup {
        PodGroup {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Default::default(),
            status: None,
        }
    }

    #[test]
    fn write_list_find_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = StatusStore::new(dir.path());
        store.write(&pod("u2", "web")).unwrap();
        store.write(&pod("u1", "api")).unwrap();
        let names: Vec<_> = store
            .list()
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["api", "web"]);
        assert_eq!(
            store.find("default", "web").unwrap().metadata.uid.as_deref(),
            Some("u2")
        );
        assert!(store.find("other", "web").is_none());
        store.remove("u2");
        assert!(store.get("u2").is_none());
        assert!(store.write(&pod("../evil", "x")).is_err());
    }
}
