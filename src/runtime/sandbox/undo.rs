//! What a sandbox creation has made so far, so that a failed creation releases all of it before the next
//! attempt, newest first, as containerd's `RunPodSandbox` does with its deferred cleanups: the CNI
//! attachment (DEL while the network namespace is still pinned), the pause process and everything in its
//! session, the pod cgroup when this attempt created it, and the volatile directory with its mounts
//! (namespace pins, `/dev/shm`, the tmpfs of the managed `/etc` files).
//!
//! Each release step is best effort: a failure is logged and the remaining steps still run.

use std::path::PathBuf;
use std::time::Duration;

use crate::network::cni::CniRuntime;
use crate::runtime::cgroup;
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::process;
use crate::runtime::record::ProcessId;

/// How long the pause process and what it forked may take to die.
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// One thing a sandbox creation made.
#[derive(Debug)]
enum Step {
    /// The sandbox's volatile directory: namespace pins, shm, the managed `/etc` files' tmpfs, the pause log.
    Dir(PathBuf),
    /// The pod cgroup, created by this attempt (it did not exist before).
    Cgroup(String),
    /// The pause process as started (the session leader) and, once it reported, the process that holds
    /// the namespaces (the PID-namespace init with `shareProcessNamespace`).
    Pause {
        leader: ProcessId,
        holder: Option<ProcessId>,
    },
    /// A completed CNI ADD (a failed ADD is undone by the CNI client itself).
    Network(CniRuntime),
}

/// The undo stack of one sandbox creation.
#[derive(Debug, Default)]
pub(super) struct Made {
    steps: Vec<Step>,
}

impl Made {
    /// The volatile directory exists.
    pub(super) fn dir(&mut self, dir: PathBuf) {
        self.steps.push(Step::Dir(dir));
    }

    /// The pod cgroup `path` is about to be configured; it is released only if it does not exist yet.
    pub(super) fn cgroup(&mut self, path: &str) {
        if !cgroup_exists(path) {
            self.steps.push(Step::Cgroup(path.to_string()));
        }
    }

    /// The pause process was started.
    pub(super) fn pause(&mut self, leader: ProcessId) {
        self.steps.push(Step::Pause { leader, holder: None });
    }

    /// The pause process reported the process that holds the namespaces.
    pub(super) fn pause_holder(&mut self, id: ProcessId) {
        for step in self.steps.iter_mut().rev() {
            if let Step::Pause { holder, .. } = step {
                *holder = Some(id);
                return;
            }
        }
    }

    /// The sandbox is attached to the CNI network.
    pub(super) fn network(&mut self, rt: CniRuntime) {
        self.steps.push(Step::Network(rt));
    }

    /// Releases everything, newest first.
    pub(super) async fn release(mut self, cfg: &RuntimeConfig, id: &str) {
        while let Some(step) = self.steps.pop() {
            if let Err(e) = release_step(cfg, step).await {
                let error = crate::runtime::chain(&e);
                tracing::warn!(sandbox = %id, %error, "failed to release part of a failed sandbox");
            }
        }
    }
}

/// Why one release step failed (logged; the remaining steps still run).
#[derive(Debug, thiserror::Error)]
enum ReleaseError {
    /// CNI DEL of the attachment failed.
    #[error("CNI DEL")]
    CniDel(#[source] crate::network::cni::Error),
    /// The pod cgroup could not be removed.
    #[error("remove cgroup {path}")]
    RemoveCgroup {
        /// The cgroup.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The directory or its mounts could not be removed.
    #[error(transparent)]
    Dir(crate::runtime::Error),
    /// The removal task did not finish.
    #[error(transparent)]
    Join(tokio::task::JoinError),
}

async fn release_step(cfg: &RuntimeConfig, step: Step) -> Result<(), ReleaseError> {
    match step {
        Step::Network(rt) => super::cni_client(cfg)
            .del(None, &rt)
            .await
            .map_err(ReleaseError::CniDel),
        Step::Pause { leader, holder } => {
            if let Some(holder) = holder {
                process::kill_session(&holder, KILL_DEADLINE).await;
            }
            process::kill_session(&leader, KILL_DEADLINE).await;
            Ok(())
        }
        Step::Cgroup(path) => remove_cgroup(&path)
            .await
            .map_err(|source| ReleaseError::RemoveCgroup { path, source }),
        Step::Dir(dir) => tokio::task::spawn_blocking(move || super::teardown_dir(&dir))
            .await
            .map_err(ReleaseError::Join)?
            .map_err(ReleaseError::Dir),
    }
}

/// Removes the cgroup `path`; its last process (the pause process) has just died, so an emptied cgroup
/// may take a moment to accept rmdir.
pub(super) async fn remove_cgroup(path: &str) -> std::io::Result<()> {
    let mut result = cgroup::remove(path);
    for _ in 0..50 {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        result = cgroup::remove(path);
    }
    result
}

/// Whether the cgroup `path` exists in any hierarchy of this host.
fn cgroup_exists(path: &str) -> bool {
    let rel = path.trim_start_matches('/');
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|info| {
            cgroup::hierarchies(&info)
                .iter()
                .any(|h| h.mount.join(rel).is_dir())
        })
        .unwrap_or(false)
}
