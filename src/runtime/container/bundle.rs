//! Carrying out a container's plan through the host seam: the instance directory and its record, the
//! staged subPaths, the termination-message file, the overlay root filesystem, `config.json`, the log
//! directory and the shim's configuration; then spawning the shim. What is decided lives in `plan`.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::error::{ConfigError, CreateError, StartError};
use super::plan::{self, Draft, Facts};
use super::ContainerRequest;
use crate::runtime::host::{self, Helper, Host, Spawned};
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::record::{InstanceRecord, INSTANCE, SHIM_CONFIG, SHIM_LOCK};
use crate::runtime::resources;
use crate::runtime::user::AccountDb;
use crate::sys;
use crate::volume;

#[cfg(test)]
mod tests;

/// How long a shim may take to report that its container started.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// The node's memory when `/proc/meminfo` is unreadable: 1 TiB.
const UNKNOWN_MEMORY: u64 = 1 << 40;

/// The instance directory with its record, overlay root filesystem, `config.json` and shim config.
/// A failure leaves what was made for the caller to discard.
pub(super) async fn bundle(
    host: &dyn Host,
    cfg: &RuntimeConfig,
    req: &ContainerRequest<'_>,
    id: &str,
    dir: &Path,
) -> Result<InstanceRecord, StartError> {
    // The overlay's root directory takes its owner and mode from the upper dir: 0755 like an image's /, or
    // a non-root container user could not even traverse `/`.
    for (d, mode) in [
        (dir.to_path_buf(), 0o700),
        (dir.join("rootfs"), 0o755),
        (dir.join("upper"), 0o755),
        (dir.join("work"), 0o700),
    ] {
        host.create_dir(&d, mode)
            .and_then(|()| host.set_mode(&d, mode))
            .map_err(|source| CreateError::CreateDir { path: d, source })?;
    }
    let instance = InstanceRecord {
        id: id.to_string(),
        name: req.container.name.clone(),
        attempt: req.attempt,
        sandbox_id: req.sandbox.id.clone(),
        spec_hash: req.spec_hash.to_string(),
        image: req.image.name.clone(),
        image_id: req.image.id.clone(),
        image_ref: req.image.repo_digest.clone(),
        created_at: Timestamp::now(),
    };
    host::write_json(host, &dir.join(INSTANCE), &instance).map_err(CreateError::Write)?;
    sys::crash::point("instance-recorded");
    // Everything between an empty instance dir and a runnable bundle.
    let draft = Draft::new(cfg, req, dir)?;
    let facts = mount(host, req, &draft).await?;
    let bundle = plan::finish(cfg, req, id, &draft, &facts)?;
    let json = serde_json::to_vec_pretty(&bundle.spec).map_err(CreateError::EncodeSpec)?;
    host.write_file(&dir.join("config.json"), &json, 0o600)
        .map_err(CreateError::Write)?;
    host.create_dir(&bundle.log_dir, 0o755)
        .map_err(CreateError::Write)?;
    host::write_json(host, &dir.join(SHIM_CONFIG), &bundle.shim).map_err(CreateError::Write)?;
    sys::crash::point("shim-config-written");
    Ok(instance)
}

/// Stages the subPaths, prepares the termination-message file and mounts the root filesystem; returns
/// what the spec needs from the host.
async fn mount(host: &dyn Host, req: &ContainerRequest<'_>, draft: &Draft) -> Result<Facts, StartError> {
    for stage in draft.volumes.iter().filter_map(|v| v.stage.as_ref()) {
        host.stage_sub_path(&stage.root, &stage.sub, &stage.staging)
            .map_err(|source| {
                ConfigError::Volume(volume::Error::StageSubPath {
                    volume: stage.volume.clone(),
                    container: req.container.name.clone(),
                    source,
                })
            })?;
    }
    let termination =
        host.prepare_termination(&draft.dir)
            .map_err(|source| CreateError::PrepareTermination {
                dir: draft.dir.clone(),
                source,
            })?;
    let rootfs = draft.rootfs_mount(&req.image.name)?;
    host.mount(&rootfs).map_err(|source| CreateError::MountRootfs {
        path: draft.rootfs(),
        source,
    })?;
    let root = draft.rootfs();
    let accounts = tokio::task::spawn_blocking(move || AccountDb::read(&root))
        .await
        .unwrap_or_default();
    let memory = host
        .read_file(&host.paths().meminfo)
        .ok()
        .and_then(|m| resources::memory_capacity(&m))
        .unwrap_or(UNKNOWN_MEMORY);
    Ok(Facts {
        accounts,
        memory,
        termination,
    })
}

/// Spawns the shim of instance `id` holding the instance's liveness lock, records its identity, and waits
/// for its status line. From the spawn on, a restarted supervisor can prove from disk whether it runs.
pub(super) async fn spawn_shim(
    host: &dyn Host,
    cfg: &RuntimeConfig,
    id: &str,
    dir: &Path,
) -> Result<Spawned, StartError> {
    let lock_path = dir.join(SHIM_LOCK);
    let lock = sys::lock::take(&lock_path).map_err(|source| CreateError::LockShim {
        path: lock_path.clone(),
        source,
    })?;
    let log = dir.join("shim.log");
    let helper = Helper {
        exe: &cfg.self_exe,
        args: vec!["shim".to_string(), dir.display().to_string()],
        log: &log,
        lock: Some(lock),
        deadline: START_DEADLINE,
    };
    let record = |shim: &crate::runtime::record::ProcessId| {
        sys::crash::point("shim-forked");
        let _ = host.create_dir(&cfg.run_dir.join("shims"), 0o700);
        let _ = host::write_json(host, &cfg.shim_record(id), shim);
        sys::crash::point("shim-spawned");
    };
    Ok(host
        .spawn(helper, &record)
        .await
        .map_err(CreateError::StartShim)?)
}
