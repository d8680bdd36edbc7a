//! Pod checkpoints: each worker writes its pod (spec and last reported status) to `<pod dir>/pod.json`,
//! atomically, so that a restarted agent runs what it ran before the API server answers, and `peapod get`
//! and `peapod logs` can read pods without a running supervisor. Nothing here decides what runs.

use crate::api::PodGroup;
use crate::runtime::layout::RuntimeConfig;

/// File name of a pod's checkpoint in its pod directory.
pub const POD_CHECKPOINT: &str = "pod.json";

/// Every pod checkpointed on this node (what a restarted agent adopts before it reaches the API).
pub fn checkpointed_pods(cfg: &RuntimeConfig) -> Vec<PodGroup> {
    checkpointed_pods_in(&cfg.pods_dir())
}

/// [`checkpointed_pods`] for a pods directory (`<state>/pods`).
pub fn checkpointed_pods_in(pods_dir: &std::path::Path) -> Vec<PodGroup> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(pods_dir) else {
        return out;
    };
    for entry in entries.flatten() {
        match crate::sys::fs::read_json::<PodGroup>(&entry.path().join(POD_CHECKPOINT)) {
            Ok(Some(pod)) if pod.metadata.uid.as_deref() == entry.file_name().to_str() => out.push(pod),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(dir = %entry.path().display(), error = %e, "skipping unreadable pod checkpoint")
            }
        }
    }
    out
}
