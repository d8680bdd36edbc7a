//! Container instances: preparing the bundle (overlay root filesystem, `config.json`), starting the shim
//! that runs it, stopping it with its stop signal and a grace period, and reading back what the shim
//! recorded.
//!
//! Failures map to the kubelet's reasons: preparing the configuration (env, user, mounts) fails with
//! `CreateContainerConfigError`, building the bundle with `CreateContainerError`, and the OCI runtime's
//! create/start with `RunContainerError` (the instance is then recorded as exited, `StartError`, 128).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::Timestamp;
use nix::sys::signal::Signal;

use super::host::{Host, Linux};
use super::layout::{derive_id, RuntimeConfig};
use super::process::{self, ExitWatch};
use super::record::{
    ExitRecord, InstanceRecord, ProcessId, StartedRecord, EXITED, INSTANCE, SHIM_LOCK, SHIM_PROCESS, STARTED,
};
use super::sandbox::SandboxRecord;
use crate::api::PodGroup;
use crate::sys;
use crate::volume::PodVolumes;

mod bundle;
mod error;
mod fields;
pub mod plan;
mod release;
#[cfg(test)]
mod tests;

pub use error::{ConfigError, CreateError, RunError, StartError};
pub use fields::field_value;
pub use release::remove_instance;
use release::{abandon_shim, discard_bundle};

/// What the runtime needs to know about an image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageInfo {
    /// Reference as written in the spec.
    pub name: String,
    /// `sha256:<config digest>`.
    pub id: String,
    /// `repo@sha256:<manifest digest>` when known.
    pub repo_digest: Option<String>,
    /// Unpacked layer directories, bottom to top.
    pub layers: Vec<PathBuf>,
    /// ENTRYPOINT.
    pub entrypoint: Vec<String>,
    /// CMD.
    pub cmd: Vec<String>,
    /// ENV.
    pub env: Vec<String>,
    /// WORKDIR.
    pub working_dir: String,
    /// USER.
    pub user: String,
    /// STOPSIGNAL.
    pub stop_signal: Option<String>,
}

/// One container instance to start.
pub struct ContainerRequest<'a> {
    /// The pod.
    pub pod: &'a PodGroup,
    /// Pod uid.
    pub uid: &'a str,
    /// The container.
    pub container: &'a Container,
    /// Restart count of this instance.
    pub attempt: u32,
    /// Hash of the container spec.
    pub spec_hash: &'a str,
    /// Sandbox to join.
    pub sandbox: &'a SandboxRecord,
    /// Its image.
    pub image: &'a ImageInfo,
    /// The pod's prepared volumes.
    pub volumes: &'a PodVolumes,
    /// Node IP for `status.hostIP` references.
    pub host_ip: Option<&'a str>,
}

/// A started container instance.
#[derive(Debug)]
pub struct Started {
    /// Its record.
    pub instance: InstanceRecord,
    /// What the shim reported.
    pub started: StartedRecord,
    /// The shim.
    pub shim: ProcessId,
}

/// The OCI runtime container id of an instance.
pub fn container_id(uid: &str, name: &str, attempt: u32) -> String {
    derive_id(&[uid, name, &attempt.to_string()])
}

/// Prepares and starts one container instance. A failure before the shim reports leaves nothing behind
/// (mounts, OCI runtime state, the instance directory); a start the OCI runtime refused stays recorded as
/// an exited instance (`StartError`, as containerd keeps it), its mounts and runtime state already gone.
pub async fn start(cfg: &RuntimeConfig, req: &ContainerRequest<'_>) -> Result<Started, StartError> {
    start_on(&Linux::default(), cfg, req).await
}

/// [`start`] on `host`.
pub async fn start_on(
    host: &dyn Host,
    cfg: &RuntimeConfig,
    req: &ContainerRequest<'_>,
) -> Result<Started, StartError> {
    let name = &req.container.name;
    let id = container_id(req.uid, name, req.attempt);
    let dir = cfg.instance_dir(req.uid, name, req.attempt);
    // Only a start interrupted by a crash leaves something behind (the directory comes before runc's state).
    if dir.exists() {
        remove_instance(cfg, &id, &dir)
            .await
            .map_err(CreateError::RemoveStale)?;
    }
    let instance = match bundle::bundle(host, cfg, req, &id, &dir).await {
        Ok(instance) => instance,
        Err(e) => {
            discard_bundle(host, &dir);
            return Err(e);
        }
    };
    let spawned = match bundle::spawn_shim(host, cfg, &id, &dir).await {
        Ok(spawned) => spawned,
        Err(e) => {
            discard_bundle(host, &dir);
            return Err(e);
        }
    };
    let shim = spawned.id;
    if let Some(mut child) = spawned.child {
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
    }
    match spawned.line.as_deref() {
        Some(l) if l.starts_with("started ") => {
            let started: StartedRecord = sys::fs::read_json(&dir.join(STARTED))
                .ok()
                .flatten()
                .ok_or(RunError::NoStartRecord)?;
            sys::crash::point("container-started");
            Ok(Started {
                instance,
                started,
                shim,
            })
        }
        // With an exit record, the shim released the rootfs and the runtime's state before saying so.
        Some(l) => {
            if !dir.join(EXITED).exists() {
                abandon_shim(cfg, &id, &dir, &shim).await;
            }
            Err(RunError::Failed(l.strip_prefix("failed ").unwrap_or(l).to_string()).into())
        }
        None => {
            abandon_shim(cfg, &id, &dir, &shim).await;
            Err(RunError::NoReport.into())
        }
    }
}

/// What is known on disk about one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The supervisor's record.
    pub instance: InstanceRecord,
    /// The shim's start record.
    pub started: Option<StartedRecord>,
    /// The shim's exit record.
    pub exited: Option<ExitRecord>,
    /// The shim, if it still runs and its identity is recorded.
    pub shim: Option<ProcessId>,
    /// A shim holds the instance's liveness lock: it runs (or is about to exec), recorded or not.
    pub shim_alive: bool,
}

/// Reads every recorded instance of a container, oldest first. A live shim whose pid record a crash
/// prevented is still found, by the identity it records itself and the liveness lock it holds.
pub fn observe(cfg: &RuntimeConfig, uid: &str, container: &str) -> Vec<Observed> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(cfg.container_dir(uid, container)) else {
        return out;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let Ok(Some(instance)) = sys::fs::read_json::<InstanceRecord>(&dir.join(INSTANCE)) else {
            continue;
        };
        // The lock first: a shim that releases it has written its exit record before.
        let shim_alive = sys::lock::is_held(&dir.join(SHIM_LOCK)).unwrap_or(false);
        out.push(Observed {
            started: sys::fs::read_json(&dir.join(STARTED)).ok().flatten(),
            exited: sys::fs::read_json(&dir.join(EXITED)).ok().flatten(),
            shim: shim_identity(cfg, &instance.id, &dir),
            shim_alive,
            instance,
        });
    }
    out.sort_by_key(|o| o.instance.attempt);
    out
}

/// The live shim of instance `id`: the supervisor's record, else the one the shim wrote itself.
pub fn shim_identity(cfg: &RuntimeConfig, id: &str, dir: &Path) -> Option<ProcessId> {
    let record = cfg.shim_record(id);
    if let Some(shim) = sys::fs::read_json::<ProcessId>(&record)
        .ok()
        .flatten()
        .filter(process::is_alive)
    {
        return Some(shim);
    }
    // The supervisor died before recording the shim: the identity the shim wrote itself is recorded again,
    // so whatever stops or abandons it later finds it where it looks.
    let shim = sys::fs::read_json::<ProcessId>(&dir.join(SHIM_PROCESS))
        .ok()
        .flatten()
        .filter(process::is_alive)?;
    let recorded = record
        .parent()
        .map_or(Ok(()), |d| sys::fs::create_dir_all_mode(d, 0o700))
        .and_then(|()| sys::fs::write_json_atomic(&record, &shim));
    if let Err(e) = recorded {
        tracing::warn!(container = %id, error = %e, "failed to record a shim found by its own identity");
    }
    Some(shim)
}

/// Re-reads the exit record of an instance.
pub fn read_exit(cfg: &RuntimeConfig, uid: &str, name: &str, attempt: u32) -> Option<ExitRecord> {
    sys::fs::read_json(&cfg.instance_dir(uid, name, attempt).join(EXITED))
        .ok()
        .flatten()
}

/// Records an exit the shim could not record (it died): `ContainerStatusUnknown`, 137.
pub fn record_unknown_exit(
    cfg: &RuntimeConfig,
    uid: &str,
    name: &str,
    attempt: u32,
    message: &str,
) -> Option<ExitRecord> {
    let dir = cfg.instance_dir(uid, name, attempt);
    let started: Option<StartedRecord> = sys::fs::read_json(&dir.join(STARTED)).ok().flatten();
    let record = ExitRecord {
        exit_code: 137,
        signal: None,
        reason: "ContainerStatusUnknown".to_string(),
        message: Some(message.to_string()),
        started_at: started.map(|s| s.started_at),
        finished_at: Timestamp::now(),
    };
    sys::fs::write_json_atomic(&dir.join(EXITED), &record).ok()?;
    Some(record)
}

/// Sends `signal` to the container through the OCI runtime (never by pid: the runtime knows whether the
/// container still exists).
pub async fn kill(cfg: &RuntimeConfig, id: &str, signal: Signal, all: bool) -> bool {
    let mut cmd = tokio::process::Command::new(&cfg.oci_runtime);
    cmd.arg("--root").arg(cfg.runtime_root()).arg("kill");
    if all {
        cmd.arg("--all");
    }
    cmd.arg(id).arg(signal.as_str().trim_start_matches("SIG"));
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    matches!(cmd.status().await, Ok(s) if s.success())
}

/// The image's STOPSIGNAL as a signal (SIGTERM when unset or unknown).
pub fn stop_signal(image: &ImageInfo) -> Signal {
    image
        .stop_signal
        .as_deref()
        .and_then(|s| {
            let upper = s.trim().to_ascii_uppercase();
            if let Ok(n) = upper.parse::<i32>() {
                return Signal::try_from(n).ok();
            }
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            Signal::from_str(&name).ok()
        })
        .unwrap_or(Signal::SIGTERM)
}

/// Stops a running instance: the stop signal, then SIGKILL once `grace` has passed. Returns when the shim
/// has exited (or after a bounded wait if it cannot be watched).
pub async fn stop(cfg: &RuntimeConfig, id: &str, shim: &ProcessId, signal: Signal, grace: Duration) {
    let watch = ExitWatch::open(shim).ok().flatten();
    let Some(watch) = watch else {
        return;
    };
    kill(cfg, id, signal, false).await;
    if tokio::time::timeout(grace, watch.exited()).await.is_ok() {
        return;
    }
    kill(cfg, id, Signal::SIGKILL, true).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), watch.exited()).await;
}
