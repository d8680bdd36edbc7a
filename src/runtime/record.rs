//! The records the runtime keeps on disk, and their file names.
//!
//! Each record is written whole and atomically (`sys::fs::write_json_atomic`) by exactly one process: the
//! supervisor writes the instance and shim config before starting a shim; the shim writes `started.json`
//! and `exited.json`. After a crash the supervisor rebuilds its view from these files alone.

use std::path::PathBuf;

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Shim configuration, in the instance directory.
pub const SHIM_CONFIG: &str = "shim.json";
/// What the supervisor decided for the instance, in the instance directory.
pub const INSTANCE: &str = "instance.json";
/// Locked by the supervisor before it spawns the shim and held by the shim for its whole life (`sys::lock`).
pub const SHIM_LOCK: &str = "shim.lock";
/// The shim's own identity ([`ProcessId`]), written by the shim before it does anything else.
pub const SHIM_PROCESS: &str = "shim-process.json";
/// Written by the shim once the container runs.
pub const STARTED: &str = "started.json";
/// Written by the shim once the container has exited or failed to start.
pub const EXITED: &str = "exited.json";

/// The current time, to the nanosecond.
pub fn now() -> Timestamp {
    Timestamp::now()
}

/// Everything a shim needs, written by the supervisor before it starts the shim.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ShimConfig {
    /// OCI runtime container id.
    pub id: String,
    /// Bundle directory holding `config.json`.
    pub bundle: PathBuf,
    /// OCI runtime binary.
    pub runtime: PathBuf,
    /// `--root` of the OCI runtime.
    pub runtime_root: PathBuf,
    /// CRI log file of this instance.
    pub log_path: PathBuf,
    /// Rotate the log above this size.
    pub log_max_size: u64,
    /// Keep at most this many log files, the live one included.
    pub log_max_files: usize,
    /// Overlay root filesystem to unmount after the container is gone.
    pub rootfs: Option<PathBuf>,
    /// Whether the container has a PID namespace of its own (its init's death then kills the rest).
    pub own_pid_namespace: bool,
    /// Memory cgroup events file (`memory.events` or v1 `memory.oom_control`) to detect OOM kills.
    pub oom_events: Option<PathBuf>,
    /// Where to read the termination message from.
    pub termination_message: Option<TerminationMessage>,
    /// Cgroup the shim moves itself into (its pod's), so it outlives whoever started it.
    #[serde(default)]
    pub helper_cgroup: Option<String>,
}

/// The host side of a container's terminationMessagePath.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TerminationMessage {
    /// Host file bind-mounted at terminationMessagePath.
    pub host_path: PathBuf,
    /// terminationMessagePolicy is FallbackToLogsOnError.
    pub fallback_to_logs: bool,
}

/// The supervisor's record of one container instance (one attempt of one container of a pod).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRecord {
    /// OCI runtime container id.
    pub id: String,
    /// Container name in the pod spec.
    pub name: String,
    /// Restart count this instance reports; also its log file name (`<attempt>.log`).
    pub attempt: u32,
    /// Sandbox the instance joined.
    pub sandbox_id: String,
    /// Hash of the container spec it was created from (a changed spec means a new backoff and a restart).
    pub spec_hash: String,
    /// Image reference as given in the spec.
    pub image: String,
    /// Image id (`sha256:<config digest>`).
    pub image_id: String,
    /// Repo digest when known.
    pub image_ref: Option<String>,
    /// When the instance was created.
    pub created_at: Timestamp,
}

/// Written by the shim when the container has started.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StartedRecord {
    /// Host pid of the container's init.
    pub pid: i32,
    /// When `runc start` returned.
    pub started_at: Timestamp,
}

/// Written by the shim when the container has exited (or could not start).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    /// Exit code; 128+n for a signal; 128 when the start failed.
    pub exit_code: i32,
    /// Terminating signal, if any.
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `OOMKilled` or `StartError`.
    pub reason: String,
    /// Termination message or start error.
    pub message: Option<String>,
    /// When it had started, if it did.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Timestamp,
}

/// A live helper process (pause or shim): pid plus start time, so a reused pid is never mistaken for it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessId {
    /// Host pid.
    pub pid: i32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}
