//! Watching a pod's status file closely, for conformance checks over every version the supervisor writes.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use peapod::api::PodGroup;

use super::Node;

impl Node {
    /// Watches the pod's status file closely (every millisecond) and returns every distinct version seen, oldest
    /// first, until `done` holds for the current one (`None`: the pod is gone) or `timeout` passes (panics).
    /// Conformance invariants are checked over this history, as upstream checks them over watch events.
    pub fn observe(
        &self,
        name: &str,
        timeout: Duration,
        done: impl Fn(Option<&PodGroup>) -> bool,
    ) -> Vec<PodGroup> {
        let mut seen: Vec<PodGroup> = Vec::new();
        let mut last = String::new();
        let deadline = Instant::now() + timeout;
        let mut files = std::collections::HashMap::new();
        loop {
            let now = self.peek(name, &mut files);
            if let Some(p) = &now {
                let json = serde_json::to_string(p).unwrap_or_default();
                if json != last {
                    last = json;
                    seen.push(p.clone());
                }
            }
            if done(now.as_ref()) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} observing pod {name}; last seen: {:#?}",
                seen.last()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `get`, cheap enough to run every millisecond: a status file is parsed only when its bytes changed.
    fn peek(
        &self,
        name: &str,
        files: &mut std::collections::HashMap<PathBuf, (Vec<u8>, Option<PodGroup>)>,
    ) -> Option<PodGroup> {
        let dir = self.state.join("standalone");
        let mut found: Vec<PodGroup> = Vec::new();
        let mut present = std::collections::HashSet::new();
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(bytes) = fs::read(&path) else { continue };
            present.insert(path.clone());
            let cached = files.entry(path).or_insert_with(|| (Vec::new(), None));
            if cached.0 != bytes {
                cached.1 = serde_json::from_slice(&bytes).ok();
                cached.0 = bytes;
            }
            if let Some(p) = &cached.1 {
                if p.metadata.name.as_deref() == Some(name)
                    && p.metadata.namespace.as_deref().unwrap_or("default") == "default"
                {
                    found.push(p.clone());
                }
            }
        }
        files.retain(|p, _| present.contains(p));
        // The live incarnation first, as `StatusStore::find` orders them.
        found.sort_by_key(|p| p.metadata.deletion_timestamp.is_some());
        found.into_iter().next()
    }
}
