//! Carrying out a sandbox [`Plan`] through the host seam: the directory and its intent, `/dev/shm`, the pod
//! cgroup and the pause process, the CNI network, the managed `/etc` files, then the record and the pod's
//! pointer. Everything made is noted in `made` as it is made, so a failure releases it (see `undo`).

use std::path::Path;
use std::time::Duration;

use super::plan::{Namespace, Plan};
use super::undo::Made;
use super::{etc_files, orphans, SandboxPointer, SandboxRecord, SandboxRequest, RECORD};
use crate::network::cni::{CniConfig, CniRuntime};
use crate::runtime::cgroup::PodCgroup;
use crate::runtime::host::{self, Helper, Host};
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::pause::PauseArgs;
use crate::runtime::record::ProcessId;
use crate::runtime::Error;

/// How long the pause process may take to report ready.
const PAUSE_DEADLINE: Duration = Duration::from_secs(10);

/// Creates sandbox `id` on `host`, noting in `made` what it made.
pub(super) async fn build(
    host: &dyn Host,
    cfg: &RuntimeConfig,
    req: &SandboxRequest<'_>,
    id: &str,
    made: &mut Made,
) -> Result<SandboxRecord, Error> {
    let node_hostname = req
        .spec
        .host_network
        .unwrap_or(false)
        .then(|| host.hostname())
        .flatten();
    let plan = Plan::new(cfg, req, id, node_hostname);
    made.dir(plan.dir.clone());
    host.create_dir(&plan.ns_dir, 0o700)
        .map_err(|source| Error::io("create", &plan.ns_dir, source))?;
    // Durable before anything else is made: a crash from here on leaves a directory that says whose it is.
    orphans::write_intent(host, &plan.dir, id, req.uid, req.attempt)?;
    if let (Some(shm), Some(dir)) = (&plan.shm, plan.shm_dir()) {
        host.create_dir(&dir, 0o700)
            .map_err(|source| Error::io("create", &dir, source))?;
        host.mount(shm)
            .map_err(|source| Error::io("mount shm on", &dir, source))?;
    }
    let pause = start_pause(host, cfg, req, &plan, made).await?;
    let pod_ips: Vec<String> = if plan.host_network {
        cfg.node_ip.iter().cloned().collect()
    } else {
        setup_network(cfg, req, id, &plan.ns_dir.join("net"), made).await?
    };
    let pod_dir = cfg.pod_dir(req.uid);
    host.create_dir(&pod_dir, 0o700)
        .map_err(|source| Error::io("create", &pod_dir, source))?;
    let node_hosts = if plan.host_network {
        host.read_file(&host.paths().hosts).unwrap_or_default()
    } else {
        String::new()
    };
    let node_resolv = host.read_file(&cfg.resolv_conf).unwrap_or_default();
    let content = plan.etc(cfg, req, &pod_ips, &node_hosts, &node_resolv);
    let etc = etc_files::write(host, &plan.dir, &content)?;
    let record = plan.record(id, req, pause, pod_ips, etc);
    let rec_path = plan.dir.join(RECORD);
    host::write_json(host, &rec_path, &record).map_err(|source| Error::io("write", &rec_path, source))?;
    // The pointer is written last: recovery and CNI DEL of this sandbox use the id recorded there.
    let ptr_path = pod_dir.join(RECORD);
    let ptr = SandboxPointer {
        id: id.to_string(),
        attempt: req.attempt,
    };
    host::write_json(host, &ptr_path, &ptr).map_err(|source| Error::io("write", &ptr_path, source))?;
    Ok(record)
}

/// Configures the pod cgroup and starts the pause process in it; returns the process that holds the
/// namespaces once it reported ready.
async fn start_pause(
    host: &dyn Host,
    cfg: &RuntimeConfig,
    req: &SandboxRequest<'_>,
    plan: &Plan,
    made: &mut Made,
) -> Result<ProcessId, Error> {
    let dir = plan.dir.as_path();
    // The pod cgroup gets its limits before its first process (the pause process) enters it.
    let pod_cgroup = PodCgroup::new(cfg, req.uid, req.spec);
    made.cgroup(&pod_cgroup.path);
    host.configure_cgroup(&pod_cgroup)
        .map_err(|source| Error::io("configure cgroup", Path::new(&pod_cgroup.path), source))?;
    let args = PauseArgs {
        dir: dir.to_path_buf(),
        hostname: Some(plan.kernel_hostname.clone()),
        namespaces: plan
            .namespaces
            .iter()
            .map(|n| n.proc_name().to_string())
            .collect(),
        cgroup: Some(cfg.helper_cgroup(req.uid, pod_cgroup.qos)),
    };
    let mut argv = vec!["pause".to_string()];
    argv.extend(args.to_args());
    let log = dir.join("pause.log");
    let helper = Helper {
        exe: &cfg.self_exe,
        args: argv,
        log: &log,
        lock: None,
        deadline: PAUSE_DEADLINE,
    };
    let spawned = host
        .spawn(helper, &|_| {})
        .await
        .map_err(|source| Error::io("start pause process for", dir, source))?;
    made.pause(spawned.id);
    let pid = match spawned.line.as_deref().and_then(|l| l.strip_prefix("ready ")) {
        Some(pid) => pid
            .trim()
            .parse::<i32>()
            .map_err(|_| Error::PauseReadyLine { pid: pid.to_string() })?,
        None => {
            let log = host.read_file(&log).unwrap_or_default();
            let message = spawned
                .line
                .or_else(|| log.lines().last().map(String::from))
                .unwrap_or_else(|| "no ready line".into());
            return Err(Error::PauseNotReady { message });
        }
    };
    let pause = host.identify(pid).ok_or(Error::PauseGone { pid })?;
    made.pause_holder(pause);
    if let Some(mut child) = spawned.child {
        if plan.namespaces.contains(&Namespace::Pid) {
            // The setup parent exits once the namespace init runs; reap it now.
            let _ = child.wait().await;
        } else {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
    }
    Ok(pause)
}

/// Attaches the sandbox to the node's CNI network; no CNI configuration means a loopback-only sandbox.
async fn setup_network(
    cfg: &RuntimeConfig,
    req: &SandboxRequest<'_>,
    id: &str,
    netns: &Path,
    made: &mut Made,
) -> Result<Vec<String>, Error> {
    let fail = |source| Error::SetupNetwork {
        id: id.to_string(),
        source,
    };
    let net = CniConfig::load(std::slice::from_ref(&cfg.cni_conf_dir), &cfg.cni_bin_dirs).map_err(fail)?;
    let Some(net) = net else {
        return Ok(Vec::new());
    };
    let rt = CniRuntime::for_pod(id, netns, req.namespace, req.name, req.uid);
    // A failed ADD is undone (DEL) by the CNI client; a completed one is released with the sandbox.
    let result = super::cni_client(cfg).add(&net, &rt).await.map_err(fail)?;
    made.network(CniRuntime::for_sandbox(id, netns));
    let ips = result.pod_ips();
    if ips.is_empty() {
        return Err(Error::NoPodIps { id: id.to_string() });
    }
    Ok(ips)
}
