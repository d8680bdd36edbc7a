//! `peapod run`: the standalone supervisor in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{node_name, which, CliError, Global};
use crate::api::admit::AdmitConfig;
use crate::pod::events::LogRecorder;
use crate::pod::worker::Context;
use crate::runtime::etc::ClusterDns;
use crate::runtime::layout::RuntimeConfig;
use crate::standalone::{self, Options};

/// Arguments of `peapod run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Manifest file or directory (repeatable); multi-document YAML or JSON, kind PodGroup or v1 Pod.
    #[arg(
        short = 'f',
        long = "filename",
        env = "PEAPOD_FILENAME",
        required = true,
        value_delimiter = ','
    )]
    pub paths: Vec<PathBuf>,
    /// How often manifests are re-read, in seconds (at least 0.1).
    #[arg(long, env = "PEAPOD_POLL_INTERVAL", default_value_t = 1.0)]
    pub poll_interval: f64,
    /// How this node runs pods.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// How a node runs pods: flags shared by `peapod run` and `peapod agent`.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Registry short image names are pulled from (none: short names must be in the local store).
    #[arg(long, env = "PEAPOD_DEFAULT_REGISTRY")]
    pub default_registry: Option<String>,
    /// Registry (host[:port]) spoken to over plain HTTP (repeatable); loopback registries always are.
    #[arg(long, env = "PEAPOD_INSECURE_REGISTRY", value_delimiter = ',')]
    pub insecure_registry: Vec<String>,
    /// IP reported as status.hostIP [default: the address of the default-route interface].
    #[arg(long, env = "PEAPOD_NODE_IP")]
    pub node_ip: Option<String>,
    /// Cluster DNS server for dnsPolicy ClusterFirst (repeatable); without one, pods fall back to the node's.
    #[arg(long, env = "PEAPOD_CLUSTER_DNS", value_delimiter = ',')]
    pub cluster_dns: Vec<String>,
    /// Cluster domain.
    #[arg(long, env = "PEAPOD_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The node's resolv.conf, used for dnsPolicy Default.
    #[arg(long, env = "PEAPOD_RESOLV_CONF", default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// Parent cgroup of every pod.
    #[arg(long, env = "PEAPOD_CGROUP_PARENT", default_value = "/peapod")]
    pub cgroup_parent: String,
    /// Rotate a container's log above this many bytes.
    #[arg(long, env = "PEAPOD_CONTAINER_LOG_MAX_SIZE", default_value_t = 10 << 20)]
    pub container_log_max_size: u64,
    /// Log files kept per container, the live one included.
    #[arg(long, env = "PEAPOD_CONTAINER_LOG_MAX_FILES", default_value_t = 5)]
    pub container_log_max_files: usize,
    /// CNI network configuration directory; without a configuration there, sandboxes get loopback only.
    #[arg(long, env = "PEAPOD_CNI_CONF_DIR", default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// CNI plugin directory (repeatable).
    #[arg(long, env = "PEAPOD_CNI_BIN_DIR", value_delimiter = ',', default_values = ["/opt/cni/bin", "/usr/lib/cni"])]
    pub cni_bin_dir: Vec<PathBuf>,
    /// Most processes in one pod's cgroup, helpers included; -1 for unlimited (the kubelet's podPidsLimit).
    #[arg(long, env = "PEAPOD_POD_PIDS_LIMIT", default_value_t = -1, allow_negative_numbers = true)]
    pub pod_pids_limit: i64,
    /// Give containers without a seccompProfile the runtime's default profile (RuntimeDefault); false leaves
    /// them Unconfined, as the kubelet does without seccompDefault.
    #[arg(long, env = "PEAPOD_SECCOMP_DEFAULT", default_value_t = true, action = clap::ArgAction::Set)]
    pub seccomp_default: bool,
    /// Directory of Localhost seccomp profiles [default: <state-dir>/seccomp].
    #[arg(long, env = "PEAPOD_SECCOMP_PROFILE_ROOT")]
    pub seccomp_profile_root: Option<PathBuf>,
    /// Unsafe sysctls pods may set, by name or `prefix*` pattern (repeatable); only namespaced ones
    /// (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*).
    #[arg(long, env = "PEAPOD_ALLOWED_UNSAFE_SYSCTLS", value_delimiter = ',')]
    pub allowed_unsafe_sysctls: Vec<String>,
    /// Pod Security Standards level enforced on every pod (privileged, baseline, restricted); in cluster mode
    /// a namespace's pod-security.kubernetes.io/enforce label takes precedence.
    #[arg(long, env = "PEAPOD_POD_SECURITY_LEVEL", default_value = "baseline")]
    pub pod_security_level: crate::api::pss::Level,
    /// Registry credentials and CAs, image garbage collection.
    #[command(flatten)]
    pub images: super::image::NodeImageArgs,
}

/// Builds the runtime configuration shared by `run` (and later `agent`).
pub fn runtime_config(global: &Global, args: &NodeArgs) -> Result<RuntimeConfig, CliError> {
    let oci_runtime = which(&global.oci_runtime)
        .ok_or_else(|| CliError(format!("OCI runtime {:?} not found on PATH", global.oci_runtime)))?;
    let self_exe = std::env::current_exe().map_err(|e| CliError::context("find own executable", e))?;
    let mut cfg = RuntimeConfig::new(
        global.state_dir.clone(),
        global.run_dir.clone(),
        oci_runtime,
        self_exe,
    );
    cfg.node_name = node_name(global);
    cfg.node_ip = args.node_ip.clone().or_else(crate::network::node_ip);
    cfg.cgroup_parent = args.cgroup_parent.clone();
    cfg.log_max_size = args.container_log_max_size;
    cfg.log_max_files = args.container_log_max_files.max(1);
    cfg.resolv_conf = args.resolv_conf.clone();
    cfg.cluster_dns = ClusterDns {
        servers: args.cluster_dns.clone(),
        domain: args.cluster_domain.clone(),
    };
    cfg.cni_conf_dir = args.cni_conf_dir.clone();
    cfg.cni_bin_dirs = args.cni_bin_dir.clone();
    cfg.pod_pids_limit = args.pod_pids_limit;
    cfg.seccomp_default = args.seccomp_default;
    if let Some(root) = &args.seccomp_profile_root {
        cfg.seccomp_profile_root = root.clone();
    }
    crate::api::sysctl::check_allowlist(&args.allowed_unsafe_sysctls)
        .map_err(|e| CliError(format!("--allowed-unsafe-sysctls: {e}")))?;
    cfg.admission = AdmitConfig {
        level: args.pod_security_level,
        allowed_unsafe_sysctls: args.allowed_unsafe_sysctls.clone(),
    };
    Ok(cfg)
}

/// Prepares the state directories and takes the node lock (one supervisor per run dir).
pub fn prepare_node(cfg: &RuntimeConfig) -> Result<nix::fcntl::Flock<std::fs::File>, CliError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(CliError(
            "peapod run must run as root: it creates namespaces, mounts and cgroups".into(),
        ));
    }
    for (dir, mode) in [(&cfg.state_dir, 0o711), (&cfg.run_dir, 0o700)] {
        crate::sys::fs::create_dir_all_mode(dir, mode).map_err(|e| CliError::context(dir.display(), e))?;
    }
    let lock_path = cfg.run_dir.join("peapod.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| CliError::context(lock_path.display(), e))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        CliError(format!(
            "another peapod supervisor is running on this node ({} is locked: {e})",
            lock_path.display()
        ))
    })
}

/// `peapod run`.
pub fn run(global: &Global, args: RunArgs) -> Result<ExitCode, CliError> {
    let cfg = runtime_config(global, &args.node)?;
    let _lock = prepare_node(&cfg)?;
    // Orphans of our helpers come back to us while we live, so they are reaped.
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| CliError::context("become child subreaper", e))?;
    let (images, gc_policy) = super::image::node_images(&cfg, &args.node)?;
    let images = Arc::new(images);
    let ctx = Arc::new(Context {
        runtime: cfg,
        images: images.clone(),
        recorder: Arc::new(LogRecorder),
    });
    let opts = Options {
        paths: args.paths,
        poll: Duration::from_secs_f64(args.poll_interval.clamp(0.1, 3600.0)),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::context("start runtime", e))?;
    rt.block_on(async move {
        // Handlers first: a SIGINT during recovery stops gracefully instead of ending the process.
        let shutdown = shutdown_signal();
        super::image::spawn_image_gc(images, &ctx.runtime, gc_policy);
        tracing::info!(node = %ctx.runtime.node_name, node_ip = ?ctx.runtime.node_ip, "peapod run started");
        standalone::run(opts, ctx, shutdown).await;
    });
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called (inside the runtime), not
/// when the future is first polled, so a signal that comes while the supervisor recovers is not fatal.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
    async move {
        let (Ok(mut int), Ok(mut term)) = handlers else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    }
}
