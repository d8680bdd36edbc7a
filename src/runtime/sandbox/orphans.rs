//! Start-up sweep of sandboxes no pod adopts. Sandbox ids are random per creation, so a supervisor killed
//! while creating one leaves a run directory (with namespace pins, `/dev/shm`, maybe a live pause process and
//! a CNI attachment) that no pod's pointer names, and that no later attempt would ever reuse.
//!
//! Every creation writes its intent (id, pod uid, attempt) into the new directory before it makes anything
//! else, so each such directory says whose it was. At start-up, before any pod worker runs, every directory
//! under `<run>/sandboxes` that is not the pointed-to sandbox of some pod is found; then, beside the workers
//! (which report the state on disk at once), each is released as a failed creation is: CNI DEL while the
//! network namespace is still pinned, the pause process and its session killed, the pod cgroup removed when
//! the pod has no sandbox at all, then the mounts and the directory.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{load, pointer};
use crate::network::cni::{CniConfig, CniRuntime};
use crate::runtime::host::{self, Host};
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::leftovers::DELETING_PREFIX;
use crate::runtime::process;
use crate::runtime::record::ProcessId;
use crate::runtime::Error;
use crate::sys;

/// File name of the intent record, written before anything of the sandbox exists.
const INTENT: &str = "intent.json";
/// How long an orphan pause process and what it forked may take to die.
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// What a sandbox creation is about to make: enough to release it if the creation never completes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct Intent {
    /// Sandbox id.
    pub id: String,
    /// Pod uid.
    pub uid: String,
    /// Sandbox attempt.
    pub attempt: u32,
}

/// Writes the intent of a creation into its new directory `dir`, durably, before anything else is made.
pub(super) fn write_intent(
    host: &dyn Host,
    dir: &Path,
    id: &str,
    uid: &str,
    attempt: u32,
) -> Result<(), Error> {
    let intent = Intent {
        id: id.to_string(),
        uid: uid.to_string(),
        attempt,
    };
    let path = dir.join(INTENT);
    host::write_json(host, &path, &intent).map_err(|source| Error::io("write", &path, source))
}

/// The sandbox directories under the run dir that no pod's pointer names (see the module header). Call it
/// before any pod worker starts: a creation in flight looks exactly like an orphan. Their release
/// ([`release_all`]) may then run beside the workers.
pub(super) fn find(cfg: &RuntimeConfig) -> Vec<PathBuf> {
    let root = cfg.run_dir.join("sandboxes");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let adopted = adopted_ids(cfg);
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !adopted.contains(e.file_name().to_string_lossy().as_ref()))
        .map(|e| e.path())
        .collect()
}

/// Releases `orphans` (found by [`find`]). DEL first, while their network namespaces are still pinned;
/// the orphans are released side by side, since a supervisor killed while it created many sandboxes leaves
/// dozens.
pub(super) async fn release_all(cfg: &RuntimeConfig, orphans: &[PathBuf]) {
    if orphans.is_empty() {
        return;
    }
    release_orphan_networks(cfg, orphans).await;
    let mut pauses = pause_processes(cfg, orphans);
    let releases = orphans.iter().map(|dir| {
        let found = pauses.remove(dir).unwrap_or_default();
        release(cfg, dir, found)
    });
    futures::future::join_all(releases).await;
}

/// The pod uid an orphan was created for, from its record or else its intent; `None` when neither is
/// readable or the uid is not a plain path component.
pub(super) fn owner(cfg: &RuntimeConfig, dir: &Path) -> Option<String> {
    let name = dir_name(dir)?;
    let intent = || {
        sys::fs::read_json::<Intent>(&dir.join(INTENT))
            .ok()
            .flatten()
            .map(|i| i.uid)
    };
    load(cfg, &name)
        .map(|r| r.uid)
        .or_else(intent)
        .filter(|u| crate::runtime::layout::is_safe_component(u))
}

/// CNI DEL of every orphan whose network namespace is pinned: with its cached attachment when its ADD
/// completed, else with the node's current network, since a creation killed in the middle of its ADD may
/// hold an address (a host-local lease) that nothing recorded; DEL of what was never added does nothing.
/// Half-removed directories (`.deleting-<id>`) were detached before their removal began.
async fn release_orphan_networks(cfg: &RuntimeConfig, orphans: &[PathBuf]) {
    let net = CniConfig::load(std::slice::from_ref(&cfg.cni_conf_dir), &cfg.cni_bin_dirs)
        .unwrap_or_else(|e| {
            tracing::warn!(error = %crate::runtime::chain(&e), "cannot load the CNI network to release orphan sandboxes");
            None
        });
    let cni = super::cni_client(cfg);
    let attached = orphans.iter().filter_map(|dir| {
        let id = dir_name(dir).filter(|n| !n.starts_with(DELETING_PREFIX))?;
        let netns = dir.join("ns").join("net");
        netns.exists().then(|| CniRuntime::for_sandbox(&id, &netns))
    });
    let dels = attached.map(|rt| {
        let (cni, net) = (&cni, net.as_ref());
        async move {
            if let Err(e) = cni.del(net, &rt).await {
                tracing::warn!(sandbox = %rt.container_id, error = %crate::runtime::chain(&e), "failed to release the network of an orphan sandbox");
            }
        }
    });
    futures::future::join_all(dels).await;
}

/// The sandbox ids the pods' pointers name.
fn adopted_ids(cfg: &RuntimeConfig) -> BTreeSet<String> {
    let Ok(pods) = std::fs::read_dir(cfg.pods_dir()) else {
        return BTreeSet::new();
    };
    pods.flatten()
        .filter_map(|e| pointer(cfg, e.file_name().to_str()?))
        .map(|p| p.id)
        .collect()
}

fn dir_name(dir: &Path) -> Option<String> {
    dir.file_name()?.to_str().map(String::from)
}

/// Kills the orphan's pause processes (`pauses`, found by their command line, and those its records name),
/// removes its pod's cgroup if the pod has no sandbox, and removes the directory with its mounts.
async fn release(cfg: &RuntimeConfig, dir: &Path, mut pauses: Vec<ProcessId>) {
    let name = dir_name(dir).unwrap_or_default();
    let uid = owner(cfg, dir);
    tracing::info!(sandbox = %name, pod_uid = ?uid, "releasing a sandbox no pod adopts (interrupted creation)");
    pauses.extend(load(cfg, &name).map(|r| r.pause));
    // The PID-namespace init hides its command line: it is found by the identity its parent recorded.
    let holder: Option<ProcessId> = sys::fs::read_json(&dir.join(crate::runtime::pause::HOLDER))
        .ok()
        .flatten();
    pauses.extend(holder.filter(process::is_alive));
    for pause in &pauses {
        process::kill_session(pause, KILL_DEADLINE).await;
    }
    // The pod's worker creates no sandbox before this release is over (`super::gc`), so a pod without a
    // pointer has no cgroup in use.
    if let Some(uid) = uid {
        if pointer(cfg, &uid).is_none() {
            remove_pod_cgroup(cfg, &uid).await;
        }
    }
    let dir = dir.to_path_buf();
    let result = tokio::task::spawn_blocking(move || super::teardown_dir(&dir)).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(sandbox = %name, error = %crate::runtime::chain(&e), "failed to remove an orphan sandbox")
        }
        Err(e) => tracing::warn!(sandbox = %name, error = %e, "failed to remove an orphan sandbox"),
    }
}

/// Removes the pod's cgroup wherever its QoS class put it.
async fn remove_pod_cgroup(cfg: &RuntimeConfig, uid: &str) {
    for path in cfg.pod_cgroup_candidates(uid) {
        if let Err(e) = super::undo::remove_cgroup(&path).await {
            tracing::warn!(cgroup = %path, error = %e, "failed to remove the cgroup of an orphan sandbox");
        }
    }
}

/// The live `peapod pause --dir <dir>` processes of this binary for each of `dirs` (the setup parent and,
/// with a shared PID namespace, the namespace init it forked): found by command line and executable, in one
/// pass over `/proc` for all of them, so a creation killed before it recorded its pause process still has
/// it found. A pid that names another process by the time it is grouped is dropped; the kill goes by the
/// process identity (pid and start time) anyway.
fn pause_processes(cfg: &RuntimeConfig, dirs: &[PathBuf]) -> HashMap<PathBuf, Vec<ProcessId>> {
    let wanted: HashSet<&[u8]> = dirs.iter().map(|d| d.as_os_str().as_encoded_bytes()).collect();
    let found = process::find_helpers(&cfg.self_exe, |args| {
        args[0] == b"pause" && dir_arg(args).is_some_and(|d| wanted.contains(d))
    });
    let mut by_dir: HashMap<PathBuf, Vec<ProcessId>> = HashMap::new();
    for id in found {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", id.pid)).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).skip(1).collect();
        if let Some(dir) = dir_arg(&args).filter(|d| wanted.contains(d)) {
            let dir = PathBuf::from(std::ffi::OsStr::from_bytes(dir));
            by_dir.entry(dir).or_default().push(id);
        }
    }
    by_dir
}

/// The value of `--dir` in a helper's arguments.
fn dir_arg<'a>(args: &[&'a [u8]]) -> Option<&'a [u8]> {
    args.windows(2).find(|w| w[0] == b"--dir").map(|w| w[1])
}
