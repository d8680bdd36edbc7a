//! Start-up garbage collection of sandboxes, beside the pod workers. What to release is decided before any
//! worker runs (a creation in flight looks exactly like an orphan); the releasing (CNI DELs, killing pause
//! processes, unmounting) then runs in the background, so a restarted supervisor reports the state it finds
//! on disk at once instead of after dozens of orphans are gone.
//!
//! The one conflict left is the pod cgroup: an orphan's release removes its pod's cgroup when the pod has no
//! sandbox, so a pod with an orphan gets no new sandbox until the release is over ([`wait_for_pod`]). A
//! graceful stop waits for the whole release ([`wait_all`]), so it leaves nothing behind.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::orphans;
use crate::runtime::layout::RuntimeConfig;

/// The releases in progress, by run dir: the pod uids they may remove the cgroup of.
static PENDING: Mutex<Option<HashMap<PathBuf, BTreeSet<String>>>> = Mutex::new(None);
/// Woken when a release ends.
static ENDED: Notify = Notify::const_new();

fn pending() -> MutexGuard<'static, Option<HashMap<PathBuf, BTreeSet<String>>>> {
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Finds the sandboxes no pod adopts and the CNI attachments whose sandbox is gone (after a reboot their
/// leases would leak), then releases them in the background. Call it before any pod worker runs.
pub async fn collect_garbage(cfg: &RuntimeConfig) {
    let found = orphans::find(cfg);
    let names: BTreeSet<String> = found
        .iter()
        .filter_map(|d| Some(d.file_name()?.to_str()?.to_owned()))
        .collect();
    let stale: Vec<String> = super::cni_client(cfg)
        .cached_attachments()
        .unwrap_or_default()
        .into_iter()
        .map(|rt| rt.container_id)
        .filter(|id| !names.contains(id) && super::load(cfg, id).is_none())
        .collect();
    if found.is_empty() && stale.is_empty() {
        return;
    }
    let owners: BTreeSet<String> = found.iter().filter_map(|d| orphans::owner(cfg, d)).collect();
    pending()
        .get_or_insert_with(HashMap::new)
        .entry(cfg.run_dir.clone())
        .or_default()
        .extend(owners);
    let cfg = cfg.clone();
    tokio::spawn(async move {
        orphans::release_all(&cfg, &found).await;
        let stale: BTreeSet<String> = stale.into_iter().collect();
        super::release_networks(&cfg, |id| !stale.contains(id)).await;
        if let Some(map) = pending().as_mut() {
            map.remove(&cfg.run_dir);
        }
        ENDED.notify_waiters();
    });
}

/// Waits until no start-up release may still remove the cgroup of pod `uid`.
pub async fn wait_for_pod(cfg: &RuntimeConfig, uid: &str) {
    wait_until(&cfg.run_dir, |uids| !uids.contains(uid)).await;
}

/// Waits until the start-up release of `cfg`'s run dir is over (at once when there is none).
pub async fn wait_all(cfg: &RuntimeConfig) {
    wait_until(&cfg.run_dir, |_| false).await;
}

/// Waits until the release of `run_dir` has ended or `done` accepts the uids it may still touch.
async fn wait_until(run_dir: &Path, done: impl Fn(&BTreeSet<String>) -> bool) {
    loop {
        let mut ended = pin!(ENDED.notified());
        ended.as_mut().enable();
        match pending().as_ref().and_then(|m| m.get(run_dir)) {
            Some(uids) if !done(uids) => {}
            _ => return,
        }
        ended.await;
    }
}
