//! Pod sandboxes: creating one (pause process, pinned namespaces, `/dev/shm`, managed `/etc` files), telling
//! whether it is still ready, and tearing it down idempotently.
//!
//! The volatile record (`<run>/sandboxes/<id>/sandbox.json`) describes a live sandbox; the persistent pointer
//! (`<state>/pods/<uid>/sandbox.json`) only remembers the last id and attempt, so that after a reboot the
//! next sandbox gets the next attempt and the pod's init containers run again, as with the kubelet.
//! Sandbox ids are random per creation (containerd's rule), so they are only ever read back from these
//! records; a failed creation releases what it made (see `undo`) before the next attempt, and one a crash
//! interrupted is found by the intent it wrote first and released at the next start-up (see `orphans`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::host::{Host, Linux};
use super::layout::{random_id, RuntimeConfig};
use super::process::{self, ExitWatch};
use super::record::ProcessId;
use super::Error;
use crate::network::cni::{CniConfig, CniRuntime};
use crate::sys;
use undo::Made;

mod build;
mod etc_files;
mod gc;
mod orphans;
mod plan;
#[cfg(test)]
mod tests;
mod undo;

pub use etc_files::MIN_ETC_CAPACITY;
pub use gc::{collect_garbage, wait_all as garbage_collected};
pub use plan::Namespace;

/// File name of sandbox records.
const RECORD: &str = "sandbox.json";

/// A live sandbox.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SandboxRecord {
    /// Sandbox id.
    pub id: String,
    /// Sandbox attempt for this pod (0 for the first).
    pub attempt: u32,
    /// Pod uid.
    pub uid: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// The pause process.
    pub pause: ProcessId,
    /// Pinned network namespace (`None`: host network).
    pub net: Option<PathBuf>,
    /// Pinned IPC namespace (`None`: host IPC).
    pub ipc: Option<PathBuf>,
    /// Pinned UTS namespace (`None`: host UTS).
    pub uts: Option<PathBuf>,
    /// Pinned shared PID namespace, with `shareProcessNamespace`.
    pub pid: Option<PathBuf>,
    /// Containers use the host PID namespace.
    pub host_pid: bool,
    /// The sandbox's `/dev/shm` (`None`: host IPC, the host's `/dev/shm`).
    pub shm: Option<PathBuf>,
    /// Pod IPs.
    pub pod_ips: Vec<String>,
    /// Pod hostname.
    pub hostname: String,
    /// Managed `/etc/hosts` (on the sandbox's small tmpfs, see `etc_files`).
    pub hosts_file: PathBuf,
    /// Managed `/etc/hostname` (same tmpfs).
    pub hostname_file: PathBuf,
    /// Managed `/etc/resolv.conf` (same tmpfs).
    pub resolv_file: PathBuf,
}

/// The persistent pointer to a pod's latest sandbox.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SandboxPointer {
    /// Sandbox id.
    pub id: String,
    /// Its attempt.
    pub attempt: u32,
}

/// What a new sandbox is for.
#[derive(Debug, Clone)]
pub struct SandboxRequest<'a> {
    /// Pod uid.
    pub uid: &'a str,
    /// Pod name.
    pub name: &'a str,
    /// Pod namespace.
    pub namespace: &'a str,
    /// Pod spec.
    pub spec: &'a PodSpec,
    /// Attempt number.
    pub attempt: u32,
}

/// Reads the pod's sandbox pointer, if any.
pub fn pointer(cfg: &RuntimeConfig, uid: &str) -> Option<SandboxPointer> {
    sys::fs::read_json(&cfg.pod_dir(uid).join(RECORD)).ok().flatten()
}

/// Loads a sandbox's volatile record; `None` after a reboot or teardown.
pub fn load(cfg: &RuntimeConfig, id: &str) -> Option<SandboxRecord> {
    sys::fs::read_json(&cfg.sandbox_run_dir(id).join(RECORD))
        .ok()
        .flatten()
}

/// Whether the sandbox's pause process still runs.
pub fn is_ready(record: &SandboxRecord) -> bool {
    process::is_alive(&record.pause)
}

/// Creates a sandbox under a fresh random id (unique per attempt and per runtime on the node, as
/// containerd's are). On failure everything made so far is released, newest first, before the error is
/// returned: nothing of a failed attempt survives into the next one.
pub async fn create(cfg: &RuntimeConfig, req: &SandboxRequest<'_>) -> Result<SandboxRecord, Error> {
    let id = random_id()
        .map_err(|source| Error::io("read random bytes from", Path::new("/dev/urandom"), source))?;
    gc::wait_for_pod(cfg, req.uid).await;
    let mut made = Made::default();
    match build::build(&Linux::default(), cfg, req, &id, &mut made).await {
        Ok(record) => Ok(record),
        Err(e) => {
            made.release(cfg, &id).await;
            Err(e)
        }
    }
}

fn cni_client(cfg: &RuntimeConfig) -> CniConfig {
    CniConfig::new(cfg.cni_bin_dirs.clone(), cfg.cni_cache_dir())
}

/// Releases every cached CNI attachment except those whose sandbox id `keep` accepts.
pub async fn release_networks(cfg: &RuntimeConfig, keep: impl Fn(&str) -> bool) {
    let cni = cni_client(cfg);
    let Ok(attachments) = cni.cached_attachments() else {
        return;
    };
    for rt in attachments {
        if keep(&rt.container_id) {
            continue;
        }
        if let Err(e) = cni.del(None, &rt).await {
            tracing::warn!(sandbox = %rt.container_id, error = %super::chain(&e), "failed to release a stale CNI attachment");
        }
    }
}

/// Stops a sandbox: detaches it from the CNI network, kills the pause process (which ends a shared PID
/// namespace and everything in it), unpins the namespaces and removes the volatile directory. Safe to repeat;
/// a failed network teardown leaves the sandbox in place to be retried, as containerd does.
pub async fn stop(cfg: &RuntimeConfig, record: &SandboxRecord) -> Result<(), Error> {
    if let Some(netns) = &record.net {
        cni_client(cfg)
            .del(None, &CniRuntime::for_sandbox(&record.id, netns))
            .await
            .map_err(|source| Error::DestroyNetwork {
                id: record.id.clone(),
                source,
            })?;
    }
    if let Ok(Some(watch)) = ExitWatch::open(&record.pause) {
        let _ = watch.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = tokio::time::timeout(Duration::from_secs(10), watch.exited()).await;
    }
    teardown_dir(&cfg.sandbox_run_dir(&record.id))
}

/// Removes a sandbox directory and every mount under it (pins, shm, the managed `/etc` files).
pub fn teardown_dir(dir: &std::path::Path) -> Result<(), Error> {
    teardown_dir_on(&Linux::default(), dir)
}

/// [`teardown_dir`] on `host`.
fn teardown_dir_on(host: &dyn Host, dir: &std::path::Path) -> Result<(), Error> {
    host.unmount_all_under(dir)
        .map_err(|source| Error::io("unmount under", dir, source))?;
    host.remove_dir(dir)
        .map_err(|source| Error::io("remove", dir, source))
}
