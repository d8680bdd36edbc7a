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

use k8s_openapi::api::core::v1::{Container, EnvVar};
use k8s_openapi::jiff::Timestamp;
use nix::sys::signal::Signal;

use super::layout::{derive_id, RuntimeConfig};
use super::process::{self, ExitWatch};
use super::record::{
    ExitRecord, InstanceRecord, ProcessId, ShimConfig, StartedRecord, TerminationMessage, EXITED, INSTANCE,
    SHIM_CONFIG, SHIM_LOCK, SHIM_PROCESS, STARTED,
};
use super::resources::{self, QosClass};
use super::sandbox::SandboxRecord;
use super::seccomp;
use super::spec::{self, BindMount, SandboxNamespaces, SpecInput};
use super::user::{self, AccountDb};
use crate::api::env::{self, ValueSource};
use crate::api::sysctl;
use crate::api::PodGroup;
use crate::sys;
use crate::volume::{self, PodVolumes};

mod release;

pub use release::remove_instance;
use release::{abandon_shim, discard_bundle};

/// How long a shim may take to report that its container started.
const START_DEADLINE: Duration = Duration::from_secs(60);

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

/// Why a container could not be started, with the kubelet's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// `CreateContainerConfigError`.
    #[error("{0}")]
    Config(String),
    /// `CreateContainerError`.
    #[error("{0}")]
    Create(String),
    /// `RunContainerError`; the instance is recorded as exited with `StartError`.
    #[error("{0}")]
    Run(String),
}

impl StartError {
    /// The waiting reason the kubelet shows for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            StartError::Config(_) => "CreateContainerConfigError",
            StartError::Create(_) => "CreateContainerError",
            StartError::Run(_) => "RunContainerError",
        }
    }
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
    let name = &req.container.name;
    let id = container_id(req.uid, name, req.attempt);
    let dir = cfg.instance_dir(req.uid, name, req.attempt);
    // Only a start interrupted by a crash leaves something behind (the directory comes before runc's state).
    if dir.exists() {
        remove_instance(cfg, &id, &dir)
            .await
            .map_err(|e| StartError::Create(e.to_string()))?;
    }
    let instance = match bundle(cfg, req, &id, &dir).await {
        Ok(instance) => instance,
        Err(e) => {
            discard_bundle(&dir);
            return Err(e);
        }
    };
    let spawned = match spawn_shim(cfg, &id, &dir).await {
        Ok(spawned) => spawned,
        Err(e) => {
            discard_bundle(&dir);
            return Err(e);
        }
    };
    let shim = spawned.id;
    let mut child = spawned.child;
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    match spawned.line.as_deref() {
        Some(l) if l.starts_with("started ") => {
            let started: StartedRecord = sys::fs::read_json(&dir.join(STARTED))
                .ok()
                .flatten()
                .ok_or_else(|| StartError::Run("shim reported a start but wrote no record".to_string()))?;
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
            Err(StartError::Run(
                l.strip_prefix("failed ").unwrap_or(l).to_string(),
            ))
        }
        None => {
            abandon_shim(cfg, &id, &dir, &shim).await;
            Err(StartError::Run(
                "the container shim exited before reporting a start".to_string(),
            ))
        }
    }
}

/// The instance directory with its record, overlay root filesystem, `config.json` and shim config.
async fn bundle(
    cfg: &RuntimeConfig,
    req: &ContainerRequest<'_>,
    id: &str,
    dir: &Path,
) -> Result<InstanceRecord, StartError> {
    let rootfs = dir.join("rootfs");
    // The overlay's root directory takes its owner and mode from the upper dir: 0755 like an image's /, or
    // a non-root container user could not even traverse `/`.
    for (d, mode) in [
        (dir.to_path_buf(), 0o700),
        (rootfs.clone(), 0o755),
        (dir.join("upper"), 0o755),
        (dir.join("work"), 0o700),
    ] {
        sys::fs::create_dir_all_mode(&d, mode)
            .and_then(|()| set_mode(&d, mode))
            .map_err(|e| StartError::Create(format!("create {}: {e}", d.display())))?;
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
    sys::fs::write_json_atomic(&dir.join(INSTANCE), &instance)
        .map_err(|e| StartError::Create(e.to_string()))?;
    sys::crash::point("instance-recorded");
    let shim_config = prepare(cfg, req, dir, &rootfs, id).await?;
    sys::fs::write_json_atomic(&dir.join(SHIM_CONFIG), &shim_config)
        .map_err(|e| StartError::Create(e.to_string()))?;
    sys::crash::point("shim-config-written");
    Ok(instance)
}

/// Spawns the shim of instance `id` holding the instance's liveness lock, records its identity, and waits
/// for its status line. From the spawn on, a restarted supervisor can prove from disk whether it runs.
async fn spawn_shim(cfg: &RuntimeConfig, id: &str, dir: &Path) -> Result<process::Spawned, StartError> {
    let args = vec!["shim".to_string(), dir.display().to_string()];
    let lock_path = dir.join(SHIM_LOCK);
    let lock = sys::lock::take(&lock_path)
        .map_err(|e| StartError::Create(format!("lock {}: {e}", lock_path.display())))?;
    let pending = process::spawn(&cfg.self_exe, &args, &dir.join("shim.log"), Some(&lock))
        .map_err(|e| StartError::Create(format!("start shim: {e}")))?;
    // The shim's copy of the lock is now the only one that keeps it.
    drop(lock);
    sys::crash::point("shim-forked");
    let shims_dir = cfg.run_dir.join("shims");
    let _ = sys::fs::create_dir_all_mode(&shims_dir, 0o700);
    let _ = sys::fs::write_json_atomic(&cfg.shim_record(id), &pending.id);
    sys::crash::point("shim-spawned");
    Ok(pending.first_line(START_DEADLINE).await)
}

/// Everything between an empty instance dir and a runnable bundle.
async fn prepare(
    cfg: &RuntimeConfig,
    req: &ContainerRequest<'_>,
    dir: &Path,
    rootfs: &Path,
    id: &str,
) -> Result<ShimConfig, StartError> {
    let c = req.container;
    let pod_dir = cfg.pod_dir(req.uid);
    let fields = PodFields {
        pod: req.pod,
        host_ip: req.host_ip,
        pod_ips: &req.sandbox.pod_ips,
    };
    let k8s_env = env::container_env(c, &fields).map_err(StartError::Config)?;
    let args =
        env::process_args(c, &req.image.entrypoint, &req.image.cmd, &k8s_env).map_err(StartError::Create)?;
    let mut mounts = volume::container_mounts(&pod_dir, req.volumes, c, &k8s_env)
        .map_err(|e| StartError::Config(e.to_string()))?;
    let mounted = |p: &str| mounts.iter().any(|m| m.destination == p);
    let mut managed = Vec::new();
    if !mounted("/etc/hosts") {
        managed.push(BindMount {
            destination: "/etc/hosts".into(),
            source: req.sandbox.hosts_file.clone(),
            readonly: false,
        });
    }
    if !mounted("/etc/hostname") {
        managed.push(BindMount {
            destination: "/etc/hostname".into(),
            source: req.sandbox.hostname_file.clone(),
            readonly: false,
        });
    }
    if !mounted("/etc/resolv.conf") {
        managed.push(BindMount {
            destination: "/etc/resolv.conf".into(),
            source: req.sandbox.resolv_file.clone(),
            readonly: false,
        });
    }
    let termination_path = c
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    let host_termination = super::termination::prepare(dir)
        .map_err(|e| StartError::Create(format!("prepare the termination-message file: {e}")))?;
    managed.push(BindMount {
        destination: termination_path,
        source: host_termination.clone(),
        readonly: false,
    });
    mounts.extend(managed);

    let lower: Vec<&Path> = req.image.layers.iter().rev().map(PathBuf::as_path).collect();
    if lower.is_empty() {
        return Err(StartError::Create(format!(
            "image {} has no layers",
            req.image.name
        )));
    }
    sys::mount::overlay(&lower, &dir.join("upper"), &dir.join("work"), rootfs)
        .map_err(|e| StartError::Create(format!("mount rootfs: {e}")))?;

    let pod_sc = req.pod.spec.pod.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let run_as_user = sc.run_as_user.or(pod_sc.run_as_user);
    let run_as_group = sc.run_as_group.or(pod_sc.run_as_group);
    let non_root = sc.run_as_non_root.or(pod_sc.run_as_non_root).unwrap_or(false);
    let image_user = user::image_user(&req.image.user).map_err(StartError::Config)?;
    let pod_label = format!(
        "{}_{}({})",
        req.pod.metadata.name.as_deref().unwrap_or(""),
        req.pod.metadata.namespace.as_deref().unwrap_or("default"),
        req.uid
    );
    user::verify_run_as_non_root(non_root, run_as_user, &image_user, &pod_label, &c.name)
        .map_err(StartError::Config)?;
    // The kubelet adds fsGroup to every container's supplementary groups, after supplementalGroups.
    let mut supplemental = pod_sc.supplemental_groups.clone().unwrap_or_default();
    supplemental.extend(pod_sc.fs_group);
    let rootfs_owned = rootfs.to_path_buf();
    let db = tokio::task::spawn_blocking(move || AccountDb::read(&rootfs_owned))
        .await
        .unwrap_or_default();
    let resolved = db
        .resolve(&req.image.user, run_as_user, run_as_group, &supplemental)
        .map_err(StartError::Config)?;

    let cwd = c
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| Some(req.image.working_dir.clone()).filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    let sb = req.sandbox;
    let qos = QosClass::of(&req.pod.spec.pod);
    let seccomp = seccomp::resolve(
        &req.pod.spec.pod,
        c,
        cfg.seccomp_default,
        &cfg.seccomp_profile_root,
    )
    .map_err(StartError::Create)?;
    let sysctls = sysctl::to_oci(&req.pod.spec.pod).map_err(StartError::Create)?;
    let input = SpecInput {
        pod: &req.pod.spec.pod,
        container: c,
        args,
        env: env::merge_env(&sb.hostname, &req.image.env, &k8s_env),
        cwd,
        user: resolved,
        rootfs: rootfs.to_path_buf(),
        namespaces: SandboxNamespaces {
            net: sb.net.clone(),
            ipc: sb.ipc.clone(),
            uts: sb.uts.clone(),
            pid: sb.pid.clone(),
            host_pid: sb.host_pid,
        },
        shm: sb.shm.clone(),
        mounts,
        cgroups_path: cfg.cgroups_path(req.uid, qos, id),
        resources: Some(spec::resources(c)),
        oom_score_adj: resources::clamp_oom_score_adj(
            resources::oom_score_adj(&req.pod.spec.pod, c, memory_capacity()),
            resources::oom_score_adj_floor(),
        ),
        seccomp,
        sysctls,
    };
    let oci = spec::build(&input).map_err(StartError::Create)?;
    let config_path = dir.join("config.json");
    let json = serde_json::to_vec_pretty(&oci).map_err(|e| StartError::Create(e.to_string()))?;
    sys::fs::write_atomic(&config_path, &json, 0o600).map_err(|e| StartError::Create(e.to_string()))?;

    let log_dir = cfg.container_log_dir(
        req.pod.metadata.namespace.as_deref().unwrap_or("default"),
        req.pod.metadata.name.as_deref().unwrap_or(""),
        req.uid,
        &c.name,
    );
    sys::fs::create_dir_all_mode(&log_dir, 0o755).map_err(|e| StartError::Create(e.to_string()))?;
    Ok(ShimConfig {
        id: id.to_string(),
        bundle: dir.to_path_buf(),
        runtime: cfg.oci_runtime.clone(),
        runtime_root: cfg.runtime_root(),
        log_path: log_dir.join(format!("{}.log", req.attempt)),
        log_max_size: cfg.log_max_size,
        log_max_files: cfg.log_max_files,
        rootfs: Some(rootfs.to_path_buf()),
        own_pid_namespace: sb.pid.is_none() && !sb.host_pid,
        oom_events: super::cgroup::oom_events_path(&cfg.cgroups_path(req.uid, qos, id)),
        termination_message: Some(TerminationMessage {
            host_path: host_termination,
            fallback_to_logs: c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"),
        }),
        helper_cgroup: Some(cfg.helper_cgroup(req.uid, qos)),
    })
}

/// The node's memory (the kubelet's capacity for the Burstable OOM score); 1 TiB when unreadable.
fn memory_capacity() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| resources::memory_capacity(&m))
        .unwrap_or(1 << 40)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Resolves `fieldRef` environment variables from the pod.
struct PodFields<'a> {
    pod: &'a PodGroup,
    host_ip: Option<&'a str>,
    pod_ips: &'a [String],
}

impl ValueSource for PodFields<'_> {
    fn value_from(&self, var: &EnvVar) -> Result<String, String> {
        let from = var.value_from.as_ref().ok_or("no value source")?;
        if let Some(f) = &from.field_ref {
            return field_value(self.pod, &f.field_path, self.host_ip, self.pod_ips);
        }
        Err(format!(
            "env {}: only fieldRef value sources are supported",
            var.name
        ))
    }
}

/// The value of a downward API field path (k8s `podFieldSelectorRuntimeValue`).
pub fn field_value(
    pod: &PodGroup,
    path: &str,
    host_ip: Option<&str>,
    pod_ips: &[String],
) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = &pod.spec.pod;
    let subscript = |prefix: &str| -> Option<String> {
        path.strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")
            .map(String::from)
    };
    if let Some(key) = subscript("metadata.labels") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&key))
            .cloned()
            .unwrap_or_default());
    }
    if let Some(key) = subscript("metadata.annotations") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(&key))
            .cloned()
            .unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_else(|| "default".into()),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.node_name.clone().unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.clone().unwrap_or_default(),
        "status.hostIP" => host_ip.unwrap_or_default().to_string(),
        "status.hostIPs" => host_ip.unwrap_or_default().to_string(),
        "status.podIP" => pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => pod_ips.join(","),
        other => return Err(format!("unsupported fieldPath: {other}")),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn field_values_follow_the_downward_api() {
        let pod = PodGroup {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("prod".into()),
                uid: Some("u-1".into()),
                labels: Some([("app".to_string(), "x".to_string())].into()),
                ..Default::default()
            },
            spec: Default::default(),
            status: None,
        };
        let ips = vec!["10.0.0.5".to_string(), "fd00::5".to_string()];
        let v = |p: &str| field_value(&pod, p, Some("192.168.1.2"), &ips);
        assert_eq!(v("metadata.name").unwrap(), "web");
        assert_eq!(v("metadata.namespace").unwrap(), "prod");
        assert_eq!(v("metadata.labels['app']").unwrap(), "x");
        assert_eq!(v("metadata.labels['missing']").unwrap(), "");
        assert_eq!(v("status.podIP").unwrap(), "10.0.0.5");
        assert_eq!(v("status.podIPs").unwrap(), "10.0.0.5,fd00::5");
        assert_eq!(v("status.hostIP").unwrap(), "192.168.1.2");
        assert!(v("spec.containers").is_err());
    }

    #[test]
    fn stop_signal_parsing() {
        let img = |s: Option<&str>| ImageInfo {
            stop_signal: s.map(String::from),
            ..Default::default()
        };
        assert_eq!(stop_signal(&img(None)), Signal::SIGTERM);
        assert_eq!(stop_signal(&img(Some("SIGQUIT"))), Signal::SIGQUIT);
        assert_eq!(stop_signal(&img(Some("int"))), Signal::SIGINT);
        assert_eq!(stop_signal(&img(Some("9"))), Signal::SIGKILL);
        assert_eq!(stop_signal(&img(Some("bogus"))), Signal::SIGTERM);
    }
}
