//! The pure part of preparing a container's bundle: its environment and command line, the bind mounts it
//! gets (volumes, the sandbox's managed `/etc` files unless a volume covers them, the termination-message
//! file), its overlay root filesystem, and then, once the root filesystem's account database is read, the
//! OCI spec and the shim's configuration. `bundle` carries it out through the host seam (`runtime::host`).
//!
//! The one read besides its inputs is a `Localhost` seccomp profile, under the configured profile root.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;
use oci_spec::runtime::Spec;

use super::error::{ConfigError, CreateError, StartError};
use super::fields::PodFields;
use super::ContainerRequest;
use crate::api::{env, sysctl};
use crate::runtime::host::HostMount;
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::record::{ShimConfig, TerminationMessage};
use crate::runtime::resources::{self, QosClass};
use crate::runtime::seccomp;
use crate::runtime::spec::{self, BindMount, SandboxNamespaces, SpecInput};
use crate::runtime::user::{self, AccountDb};
use crate::volume::{self, PlannedMount};

/// The managed `/etc` files every container gets from its sandbox, unless one of its volumes is mounted there.
const MANAGED: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// The first half of a bundle: what the container needs mounted, decided before anything is mounted.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The container's Kubernetes environment, resolved.
    pub env: Vec<(String, String)>,
    /// The process's argv.
    pub args: Vec<String>,
    /// Its volume mounts, with the subPaths to stage.
    pub volumes: Vec<PlannedMount>,
    /// The sandbox's managed `/etc` files it gets.
    pub managed: Vec<BindMount>,
    /// Where the termination message is written in the container.
    pub termination_path: String,
    /// The image's layers, top first, as the overlay takes them.
    pub lower: Vec<PathBuf>,
    /// The instance directory.
    pub dir: PathBuf,
}

impl Draft {
    /// The mounts of `req`'s container in the instance directory `dir`.
    pub fn new(cfg: &RuntimeConfig, req: &ContainerRequest<'_>, dir: &Path) -> Result<Draft, StartError> {
        let c = req.container;
        let fields = PodFields {
            pod: req.pod,
            host_ip: req.host_ip,
            pod_ips: &req.sandbox.pod_ips,
        };
        let k8s_env = env::container_env(c, &fields).map_err(ConfigError::Env)?;
        let args = env::process_args(c, &req.image.entrypoint, &req.image.cmd, &k8s_env)
            .map_err(CreateError::Args)?;
        let volumes = volume::plan_mounts(&cfg.pod_dir(req.uid), req.volumes, c, &k8s_env)
            .map_err(ConfigError::Volume)?;
        let sb = req.sandbox;
        let managed = MANAGED
            .into_iter()
            .zip([&sb.hosts_file, &sb.hostname_file, &sb.resolv_file])
            .filter(|(dest, _)| !volumes.iter().any(|v| v.mount.destination == *dest))
            .map(|(dest, source)| BindMount {
                destination: dest.into(),
                source: source.clone(),
                readonly: false,
            })
            .collect();
        Ok(Draft {
            env: k8s_env,
            args,
            volumes,
            managed,
            termination_path: c
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
            lower: req.image.layers.iter().rev().cloned().collect(),
            dir: dir.to_path_buf(),
        })
    }

    /// The container's root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The overlay root filesystem; an image without layers has none.
    pub fn rootfs_mount(&self, image: &str) -> Result<HostMount, CreateError> {
        if self.lower.is_empty() {
            return Err(CreateError::NoLayers {
                image: image.to_string(),
            });
        }
        Ok(HostMount::Overlay {
            lower: self.lower.clone(),
            upper: self.dir.join("upper"),
            work: self.dir.join("work"),
            target: self.rootfs(),
        })
    }

    /// Every bind mount, in the order the spec lists them: volumes, managed files, the termination file
    /// (its host side at `termination`).
    pub fn binds(&self, termination: &Path) -> Vec<BindMount> {
        let mut out: Vec<BindMount> = self.volumes.iter().map(|v| v.mount.clone()).collect();
        out.extend(self.managed.iter().cloned());
        out.push(BindMount {
            destination: self.termination_path.clone(),
            source: termination.to_path_buf(),
            readonly: false,
        });
        out
    }
}

/// What the host says, read once the root filesystem is mounted.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The root filesystem's `/etc/passwd` and `/etc/group`.
    pub accounts: AccountDb,
    /// The node's memory in bytes.
    pub memory: u64,
    /// The host side of the termination-message file.
    pub termination: PathBuf,
}

/// The second half: the OCI spec, where the log goes, and the shim's configuration.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// `config.json`.
    pub spec: Spec,
    /// The container's log directory.
    pub log_dir: PathBuf,
    /// The shim's configuration.
    pub shim: ShimConfig,
}

/// The bundle of instance `id` from its draft and the facts read on the host.
pub fn finish(
    cfg: &RuntimeConfig,
    req: &ContainerRequest<'_>,
    id: &str,
    draft: &Draft,
    facts: &Facts,
) -> Result<Bundle, StartError> {
    let c = req.container;
    let pod = &req.pod.spec.pod;
    let sb = req.sandbox;
    let qos = QosClass::of(pod);
    let input = SpecInput {
        pod,
        container: c,
        args: draft.args.clone(),
        env: env::merge_env(&sb.hostname, &req.image.env, &draft.env),
        cwd: working_dir(c, &req.image.working_dir),
        user: resolve_user(req, &facts.accounts)?,
        rootfs: draft.rootfs(),
        namespaces: SandboxNamespaces {
            net: sb.net.clone(),
            ipc: sb.ipc.clone(),
            uts: sb.uts.clone(),
            pid: sb.pid.clone(),
            host_pid: sb.host_pid,
        },
        shm: sb.shm.clone(),
        mounts: draft.binds(&facts.termination),
        cgroups_path: cfg.cgroups_path(req.uid, qos, id),
        resources: Some(spec::resources(c)),
        oom_score_adj: resources::clamp_oom_score_adj(
            resources::oom_score_adj(pod, c, facts.memory),
            resources::oom_score_adj_floor(),
        ),
        seccomp: seccomp::resolve(pod, c, cfg.seccomp_default, &cfg.seccomp_profile_root)
            .map_err(CreateError::Seccomp)?,
        sysctls: sysctl::to_oci(pod).map_err(CreateError::Sysctl)?,
    };
    let spec = spec::build(&input).map_err(CreateError::Spec)?;
    let log_dir = cfg.container_log_dir(
        req.pod.namespace_or_default(),
        req.pod.metadata.name.as_deref().unwrap_or(""),
        req.uid,
        &c.name,
    );
    let shim = ShimConfig {
        id: id.to_string(),
        bundle: draft.dir.clone(),
        runtime: cfg.oci_runtime.clone(),
        runtime_root: cfg.runtime_root(),
        log_path: log_dir.join(format!("{}.log", req.attempt)),
        log_max_size: cfg.log_max_size,
        log_max_files: cfg.log_max_files,
        rootfs: Some(draft.rootfs()),
        own_pid_namespace: sb.pid.is_none() && !sb.host_pid,
        oom_events: crate::runtime::cgroup::oom_events_path(&cfg.cgroups_path(req.uid, qos, id)),
        termination_message: Some(TerminationMessage {
            host_path: facts.termination.clone(),
            fallback_to_logs: c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"),
        }),
        helper_cgroup: Some(cfg.helper_cgroup(req.uid, qos)),
    };
    Ok(Bundle { spec, log_dir, shim })
}

/// The user the container runs as: `runAsNonRoot` checked as the kubelet does, then the image's user or
/// `runAsUser`/`runAsGroup` resolved in the root filesystem's accounts, with `supplementalGroups` and
/// `fsGroup` (after them, as the kubelet adds it).
fn resolve_user(req: &ContainerRequest<'_>, accounts: &AccountDb) -> Result<user::ResolvedUser, ConfigError> {
    let c = req.container;
    let pod_sc = req.pod.spec.pod.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let run_as_user = sc.run_as_user.or(pod_sc.run_as_user);
    let run_as_group = sc.run_as_group.or(pod_sc.run_as_group);
    let non_root = sc.run_as_non_root.or(pod_sc.run_as_non_root).unwrap_or(false);
    let image_user = user::image_user(&req.image.user)?;
    let pod_label = req.pod.format_pod(req.uid);
    user::verify_run_as_non_root(non_root, run_as_user, &image_user, &pod_label, &c.name)?;
    let mut supplemental = pod_sc.supplemental_groups.clone().unwrap_or_default();
    supplemental.extend(pod_sc.fs_group);
    accounts
        .resolve(&req.image.user, run_as_user, run_as_group, &supplemental)
        .map_err(ConfigError::User)
}

/// The container's `workingDir`, else the image's, else `/`.
fn working_dir(c: &Container, image_dir: &str) -> String {
    c.working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| Some(image_dir.to_string()).filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string())
}
