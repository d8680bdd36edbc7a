//! Releasing what a container instance holds: its OCI runtime state, its rootfs mount and its directory,
//! both for an instance that is gone and for a start that failed part-way (the bundle no shim has seen, a
//! shim that went silent), and finding again a live shim whose pid record a crash prevented.

use std::path::Path;
use std::time::Duration;

use crate::runtime::host::Host;
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::process;
use crate::runtime::record::{ProcessId, EXITED};
use crate::sys;

/// How long a silent shim and what it started may take to die.
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// Removes what is left of an instance: the OCI runtime's state, the rootfs mount and the directory.
pub async fn remove_instance(cfg: &RuntimeConfig, id: &str, dir: &Path) -> std::io::Result<()> {
    delete_runtime_state(cfg, id).await;
    sys::mount::unmount_all_under(dir)?;
    sys::fs::remove_dir_atomic(dir)?;
    let _ = std::fs::remove_file(cfg.shim_record(id));
    Ok(())
}

/// `runc delete --force`: kills what is left of the container and drops the runtime's state and cgroup.
async fn delete_runtime_state(cfg: &RuntimeConfig, id: &str) {
    let _ = tokio::process::Command::new(&cfg.oci_runtime)
        .arg("--root")
        .arg(cfg.runtime_root())
        .args(["delete", "--force", id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
}

/// Removes a bundle no shim has seen: its mounts (the rootfs) and the directory.
pub(super) fn discard_bundle(host: &dyn Host, dir: &Path) {
    let result = host.unmount_all_under(dir).and_then(|()| host.remove_dir(dir));
    if let Err(e) = result {
        tracing::warn!(dir = %dir.display(), error = %e, "failed to remove the bundle of a failed container start");
    }
}

/// A shim that went silent (it died, or did not report before the deadline): it and everything in its
/// session are killed, the OCI runtime's state and the rootfs released, and the instance forgotten unless
/// the shim recorded an exit (which then stays, as any exited instance does).
pub(super) async fn abandon_shim(cfg: &RuntimeConfig, id: &str, dir: &Path, shim: &ProcessId) {
    process::kill_session(shim, KILL_DEADLINE).await;
    let result = if dir.join(EXITED).exists() {
        delete_runtime_state(cfg, id).await;
        let _ = std::fs::remove_file(cfg.shim_record(id));
        sys::mount::unmount_all_under(dir)
    } else {
        remove_instance(cfg, id, dir).await
    };
    if let Err(e) = result {
        tracing::warn!(container = %id, error = %e, "failed to clean up after a silent shim");
    }
}
