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

use super::cgroup::{self, PodCgroup};
use super::etc::{self, Resolv};
use super::layout::{random_id, RuntimeConfig};
use super::pause::PauseArgs;
use super::process::{self, ExitWatch};
use super::record::ProcessId;
use super::Error;
use crate::network::cni::{CniConfig, CniRuntime};
use crate::sys;
use undo::Made;

mod etc_files;
mod orphans;
mod undo;

pub use etc_files::MIN_ETC_CAPACITY;

/// File name of sandbox records.
const RECORD: &str = "sandbox.json";
/// How long the pause process may take to report ready.
const PAUSE_DEADLINE: Duration = Duration::from_secs(10);

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
    let mut made = Made::default();
    match build(cfg, req, &id, &mut made).await {
        Ok(record) => Ok(record),
        Err(e) => {
            made.release(cfg, &id).await;
            Err(e)
        }
    }
}

/// The namespaces the pause process creates, by their `/proc/self/ns` names.
fn sandbox_namespaces(spec: &PodSpec) -> Vec<String> {
    let host_pid = spec.host_pid.unwrap_or(false);
    let mut namespaces = Vec::new();
    if !spec.host_network.unwrap_or(false) {
        namespaces.extend(["net".to_string(), "uts".to_string()]);
    }
    if !spec.host_ipc.unwrap_or(false) {
        namespaces.push("ipc".to_string());
    }
    if spec.share_process_namespace.unwrap_or(false) && !host_pid {
        namespaces.push("pid".to_string());
    }
    namespaces
}

async fn build(
    cfg: &RuntimeConfig,
    req: &SandboxRequest<'_>,
    id: &str,
    made: &mut Made,
) -> Result<SandboxRecord, Error> {
    let spec = req.spec;
    let host_network = spec.host_network.unwrap_or(false);
    let dir = cfg.sandbox_run_dir(id);
    let ns_dir = dir.join("ns");
    made.dir(dir.clone());
    sys::fs::create_dir_all_mode(&ns_dir, 0o700).map_err(|source| Error::io("create", &ns_dir, source))?;
    // Durable before anything else is made: a crash from here on leaves a directory that says whose it is.
    orphans::write_intent(&dir, id, req.uid, req.attempt)?;

    let shm = if spec.host_ipc.unwrap_or(false) {
        None
    } else {
        let shm = dir.join("shm");
        sys::fs::create_dir_all_mode(&shm, 0o700).map_err(|source| Error::io("create", &shm, source))?;
        sys::mount::tmpfs(&shm, &format!("mode=1777,size={}", cfg.shm_size), true)
            .map_err(|source| Error::io("mount shm on", &shm, source))?;
        Some(shm)
    };

    let (hostname, fqdn) = if host_network {
        (
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            None,
        )
    } else {
        etc::hostname_and_fqdn(req.name, req.namespace, spec, &cfg.cluster_dns.domain)
    };
    let kernel_hostname = match (&fqdn, spec.set_hostname_as_fqdn.unwrap_or(false)) {
        (Some(f), true) => f.clone(),
        _ => hostname.clone(),
    };
    let namespaces = sandbox_namespaces(spec);
    let pause = start_pause(cfg, req, &dir, &kernel_hostname, &namespaces, made).await?;

    let has = |n: &str| namespaces.iter().any(|x| x == n);
    let pod_ips: Vec<String> = if host_network {
        cfg.node_ip.iter().cloned().collect()
    } else {
        setup_network(cfg, req, id, &ns_dir.join("net"), made).await?
    };
    let pod_dir = cfg.pod_dir(req.uid);
    sys::fs::create_dir_all_mode(&pod_dir, 0o700).map_err(|source| Error::io("create", &pod_dir, source))?;
    let etc = write_etc_files(
        cfg,
        req,
        &dir,
        &hostname,
        fqdn.as_deref(),
        &kernel_hostname,
        &pod_ips,
    )?;
    let record = SandboxRecord {
        id: id.to_string(),
        attempt: req.attempt,
        uid: req.uid.to_string(),
        created_at: Timestamp::now(),
        pause,
        net: has("net").then(|| ns_dir.join("net")),
        ipc: has("ipc").then(|| ns_dir.join("ipc")),
        uts: has("uts").then(|| ns_dir.join("uts")),
        pid: has("pid").then(|| ns_dir.join("pid")),
        host_pid: spec.host_pid.unwrap_or(false),
        shm,
        pod_ips,
        hostname,
        hosts_file: etc.hosts,
        hostname_file: etc.hostname,
        resolv_file: etc.resolv,
    };
    let rec_path = dir.join(RECORD);
    sys::fs::write_json_atomic(&rec_path, &record).map_err(|source| Error::io("write", &rec_path, source))?;
    // The pointer is written last: recovery and CNI DEL of this sandbox use the id recorded there.
    let ptr_path = pod_dir.join(RECORD);
    let ptr = SandboxPointer {
        id: id.to_string(),
        attempt: req.attempt,
    };
    sys::fs::write_json_atomic(&ptr_path, &ptr).map_err(|source| Error::io("write", &ptr_path, source))?;
    Ok(record)
}

/// Configures the pod cgroup and starts the pause process in it; returns the process that holds the
/// namespaces once it reported ready.
async fn start_pause(
    cfg: &RuntimeConfig,
    req: &SandboxRequest<'_>,
    dir: &Path,
    kernel_hostname: &str,
    namespaces: &[String],
    made: &mut Made,
) -> Result<ProcessId, Error> {
    // The pod cgroup gets its limits before its first process (the pause process) enters it.
    let pod_cgroup = PodCgroup::new(cfg, req.uid, req.spec);
    made.cgroup(&pod_cgroup.path);
    cgroup::configure_pod(&pod_cgroup)
        .map_err(|source| Error::io("configure cgroup", Path::new(&pod_cgroup.path), source))?;
    let args = PauseArgs {
        dir: dir.to_path_buf(),
        hostname: Some(kernel_hostname.to_string()),
        namespaces: namespaces.to_vec(),
        cgroup: Some(cfg.helper_cgroup(req.uid, pod_cgroup.qos)),
    };
    let mut argv = vec!["pause".to_string()];
    argv.extend(args.to_args());
    let spawned = process::spawn_helper(&cfg.self_exe, &argv, &dir.join("pause.log"), PAUSE_DEADLINE)
        .await
        .map_err(|source| Error::io("start pause process for", dir, source))?;
    made.pause(spawned.id);
    let mut child = spawned.child;
    let pid = match spawned.line.as_deref().and_then(|l| l.strip_prefix("ready ")) {
        Some(pid) => pid
            .trim()
            .parse::<i32>()
            .map_err(|_| Error::Pause(format!("bad ready line {pid:?}")))?,
        None => {
            let log = std::fs::read_to_string(dir.join("pause.log")).unwrap_or_default();
            return Err(Error::Pause(
                spawned
                    .line
                    .or_else(|| log.lines().last().map(String::from))
                    .unwrap_or_else(|| "no ready line".into()),
            ));
        }
    };
    let pause = process::identify(pid).ok_or_else(|| Error::Pause(format!("pause process {pid} is gone")))?;
    made.pause_holder(pause);
    if namespaces.iter().any(|n| n == "pid") {
        // The setup parent exits once the namespace init runs; reap it now.
        let _ = child.wait().await;
    } else {
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
    }
    Ok(pause)
}

/// Writes the pod's managed `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` on their own tmpfs in the
/// sandbox directory `dir` (see `etc_files`).
fn write_etc_files(
    cfg: &RuntimeConfig,
    req: &SandboxRequest<'_>,
    dir: &Path,
    hostname: &str,
    fqdn: Option<&str>,
    kernel_hostname: &str,
    pod_ips: &[String],
) -> Result<etc_files::EtcFiles, Error> {
    let spec = req.spec;
    let hosts = if spec.host_network.unwrap_or(false) {
        etc::host_network_hosts(spec, &std::fs::read_to_string("/etc/hosts").unwrap_or_default())
    } else {
        etc::hosts(spec, hostname, fqdn, pod_ips)
    };
    let host_resolv = Resolv::parse(&std::fs::read_to_string(&cfg.resolv_conf).unwrap_or_default());
    let resolv = etc::resolv_conf(spec, req.namespace, &cfg.cluster_dns, &host_resolv).render();
    etc_files::write(dir, &hosts, &format!("{kernel_hostname}\n"), &resolv)
}

fn cni_client(cfg: &RuntimeConfig) -> CniConfig {
    CniConfig::new(cfg.cni_bin_dirs.clone(), cfg.cni_cache_dir())
}

/// Attaches the sandbox to the node's CNI network; no CNI configuration means a loopback-only sandbox.
async fn setup_network(
    cfg: &RuntimeConfig,
    req: &SandboxRequest<'_>,
    id: &str,
    netns: &std::path::Path,
    made: &mut Made,
) -> Result<Vec<String>, Error> {
    let fail = |e: String| Error::Network(format!("failed to setup network for sandbox {id:?}: {e}"));
    let net = CniConfig::load(std::slice::from_ref(&cfg.cni_conf_dir), &cfg.cni_bin_dirs)
        .map_err(|e| fail(super::chain(&e)))?;
    let Some(net) = net else {
        return Ok(Vec::new());
    };
    let rt = CniRuntime::for_pod(id, netns, req.namespace, req.name, req.uid);
    // A failed ADD is undone (DEL) by the CNI client; a completed one is released with the sandbox.
    let result = cni_client(cfg)
        .add(&net, &rt)
        .await
        .map_err(|e| fail(super::chain(&e)))?;
    made.network(CniRuntime::for_sandbox(id, netns));
    let ips = result.pod_ips();
    if ips.is_empty() {
        return Err(Error::Network(format!(
            "failed to find network info for sandbox {id:?}"
        )));
    }
    Ok(ips)
}

/// Start-up garbage collection, before any pod worker runs: releases the sandboxes no pod adopts (creations
/// a crash interrupted), then the CNI attachments whose sandbox no longer exists (after a reboot, the leases
/// would leak).
pub async fn collect_garbage(cfg: &RuntimeConfig) {
    orphans::sweep(cfg).await;
    release_networks(cfg, |id| load(cfg, id).is_some()).await;
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
            .map_err(|e| {
                Error::Network(format!(
                    "failed to destroy network for sandbox {:?}: {}",
                    record.id,
                    super::chain(&e)
                ))
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
    sys::mount::unmount_all_under(dir).map_err(|source| Error::io("unmount under", dir, source))?;
    sys::fs::remove_dir_atomic(dir).map_err(|source| Error::io("remove", dir, source))
}
