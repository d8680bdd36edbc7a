//! OCI runtime spec (`config.json`) generation for one container: a pure function of the container spec,
//! the pod's security settings and what the runtime has resolved (process args, env, user, mounts,
//! sandbox namespaces).
//!
//! Defaults are the secure ones runc's own template and CRI-O use: a small capability set (CRI-O's nine;
//! nothing inheritable or ambient, nothing effective for non-root users), `no_new_privs` unless privilege
//! escalation is explicitly allowed, masked and read-only `/proc` and `/sys` paths, a read-only `/sys`, the
//! seccomp profile the caller resolved (none for privileged containers), the pod's namespaced sysctls, an
//! explicit `oomScoreAdj`, and no rlimits of our own (the process inherits the node's, which a VM without
//! CAP_SYS_RESOURCE cannot raise).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext};
use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxNamespace, LinuxNamespaceType, Mount, Process, Root, Spec, User,
};

use super::seccomp::{self, Profile};
use super::user::ResolvedUser;
use crate::api::validation::{masked_paths, KNOWN_CAPABILITIES};

/// Capabilities a container gets unless it adds or drops some: CRI-O's default set.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "KILL",
];

/// The sandbox namespaces a container joins. `None` means the host's namespace (`hostNetwork` etc.), except
/// for `pid`, where `None` means a new namespace of the container's own unless `host_pid` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxNamespaces {
    /// Pinned network namespace.
    pub net: Option<PathBuf>,
    /// Pinned IPC namespace.
    pub ipc: Option<PathBuf>,
    /// Pinned UTS namespace.
    pub uts: Option<PathBuf>,
    /// Pinned shared PID namespace (`shareProcessNamespace`).
    pub pid: Option<PathBuf>,
    /// Use the host PID namespace.
    pub host_pid: bool,
}

pub use crate::volume::BindMount;

/// Everything [`build`] needs besides the container spec.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    /// The pod spec (security context, host namespaces).
    pub pod: &'a PodSpec,
    /// The container.
    pub container: &'a Container,
    /// argv.
    pub args: Vec<String>,
    /// `K=V` environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// Identity.
    pub user: ResolvedUser,
    /// Mounted root filesystem.
    pub rootfs: PathBuf,
    /// Sandbox namespaces to join.
    pub namespaces: SandboxNamespaces,
    /// The sandbox's `/dev/shm`, or `None` to use the host's (`hostIPC`).
    pub shm: Option<PathBuf>,
    /// Bind mounts: managed `/etc` files, termination log, volumes.
    pub mounts: Vec<BindMount>,
    /// `linux.cgroupsPath`.
    pub cgroups_path: String,
    /// Container-level resources, already converted.
    pub resources: Option<oci_spec::runtime::LinuxResources>,
    /// `process.oomScoreAdj` (always set: the container must not inherit its shim's).
    pub oom_score_adj: i32,
    /// The seccomp profile (ignored for privileged containers, which run unconfined as with containerd).
    pub seccomp: Profile,
    /// `linux.sysctl`: the pod's sysctls, admitted and checked, written by the OCI runtime inside the
    /// sandbox's namespaces.
    pub sysctls: HashMap<String, String>,
}

/// Why a container's OCI spec cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A capability name in `add` or `drop` that is not a Linux capability.
    #[error("unknown capability {name:?}")]
    UnknownCapability {
        /// The name as written.
        name: String,
    },
    /// The device cgroup rule could not be built. Not a `source`: the text shown is the builder's own line,
    /// without its cause.
    #[error("{0}")]
    Devices(oci_spec::OciSpecError),
}

/// Builds the OCI spec for one container.
pub fn build(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let sc = input.container.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged.unwrap_or(false);
    let caps = capabilities(&sc, privileged)?;
    let seccomp = match (&input.seccomp, privileged) {
        (_, true) | (Profile::Unconfined, _) => None,
        (Profile::RuntimeDefault, false) => Some(seccomp::default_profile(&caps)),
        (Profile::Localhost(p), false) => Some((**p).clone()),
    };
    let mut spec = Spec::default();
    spec.set_hostname(None);
    spec.set_annotations(None);
    spec.set_process(Some(process(input, &sc, privileged, caps)));
    let mut root = Root::default();
    root.set_path(input.rootfs.clone());
    root.set_readonly(Some(sc.read_only_root_filesystem.unwrap_or(false)));
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts(input, privileged)));
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    linux.set_namespaces(Some(namespaces(&input.namespaces)));
    linux.set_cgroups_path(Some(PathBuf::from(&input.cgroups_path)));
    linux.set_seccomp(seccomp);
    linux.set_sysctl((!input.sysctls.is_empty()).then(|| input.sysctls.clone()));
    if privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    } else {
        linux.set_masked_paths(Some(masked_paths()));
    }
    let mut resources = input.resources.clone().unwrap_or_default();
    // Every device for a privileged container, none otherwise (runc adds its default allow-list).
    resources.set_devices(Some(vec![oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
        .allow(privileged)
        .access("rwm")
        .build()
        .map_err(SpecError::Devices)?]));
    linux.set_resources(Some(resources));
    Ok(spec)
}

fn process(
    input: &SpecInput<'_>,
    sc: &SecurityContext,
    privileged: bool,
    caps: HashSet<Capability>,
) -> Process {
    let mut p = Process::default();
    p.set_terminal(Some(false));
    p.set_args(Some(input.args.clone()));
    p.set_env(Some(input.env.clone()));
    p.set_cwd(PathBuf::from(&input.cwd));
    p.set_rlimits(None);
    p.set_oom_score_adj(Some(input.oom_score_adj));
    let mut user = User::default();
    user.set_uid(input.user.uid);
    user.set_gid(input.user.gid);
    user.set_additional_gids(
        (!input.user.additional_gids.is_empty()).then(|| input.user.additional_gids.clone()),
    );
    p.set_user(user);
    let has_sys_admin = caps.contains(&Capability::SysAdmin);
    p.set_capabilities(Some(capability_sets(caps, input.user.uid)));
    // Escalation is allowed only when asked for, or implied as Kubernetes defines it (privileged or
    // CAP_SYS_ADMIN); unlike the kubelet, an unset field means no escalation.
    let escalate = sc.allow_privilege_escalation.unwrap_or(false) || privileged || has_sys_admin;
    p.set_no_new_privileges(Some(!escalate));
    p
}

/// The capability set: default (or all when privileged), minus `drop`, plus `add`; `ALL` works in both.
pub fn capabilities(sc: &SecurityContext, privileged: bool) -> Result<HashSet<Capability>, SpecError> {
    let parse = |name: &str| -> Result<Capability, SpecError> {
        let bare = name.strip_prefix("CAP_").unwrap_or(name);
        Capability::from_str(bare).map_err(|_| SpecError::UnknownCapability {
            name: name.to_string(),
        })
    };
    let all = || -> Result<HashSet<Capability>, SpecError> {
        KNOWN_CAPABILITIES.iter().map(|c| parse(c)).collect()
    };
    if privileged {
        return all();
    }
    let mut caps: HashSet<Capability> = DEFAULT_CAPABILITIES
        .iter()
        .map(|c| parse(c))
        .collect::<Result<_, _>>()?;
    let requested = sc.capabilities.clone().unwrap_or_default();
    for name in requested.drop.iter().flatten() {
        if name == "ALL" {
            caps.clear();
        } else {
            caps.remove(&parse(name)?);
        }
    }
    for name in requested.add.iter().flatten() {
        if name == "ALL" {
            caps.extend(all()?);
        } else {
            caps.insert(parse(name)?);
        }
    }
    Ok(caps)
}

/// Bounding gets the set; effective and permitted too, but only for uid 0 (a non-root process holds no
/// capabilities, as with CRI-O); inheritable and ambient stay empty (CVE-2022-29162).
fn capability_sets(caps: HashSet<Capability>, uid: u32) -> LinuxCapabilities {
    let mut sets = LinuxCapabilities::default();
    let active = if uid == 0 { caps.clone() } else { HashSet::new() };
    sets.set_bounding(Some(caps));
    sets.set_effective(Some(active.clone()));
    sets.set_permitted(Some(active));
    sets.set_inheritable(Some(HashSet::new()));
    sets.set_ambient(Some(HashSet::new()));
    sets
}

fn namespaces(ns: &SandboxNamespaces) -> Vec<LinuxNamespace> {
    let mut out = Vec::new();
    let mut add = |typ: LinuxNamespaceType, path: Option<&Path>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(typ);
        n.set_path(path.map(Path::to_path_buf));
        out.push(n);
    };
    add(LinuxNamespaceType::Mount, None);
    add(LinuxNamespaceType::Cgroup, None);
    if !ns.host_pid {
        add(LinuxNamespaceType::Pid, ns.pid.as_deref());
    }
    if let Some(p) = &ns.net {
        add(LinuxNamespaceType::Network, Some(p));
    }
    if let Some(p) = &ns.ipc {
        add(LinuxNamespaceType::Ipc, Some(p));
    }
    if let Some(p) = &ns.uts {
        add(LinuxNamespaceType::Uts, Some(p));
    }
    out
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

fn bind(destination: &str, source: &Path, readonly: bool) -> Mount {
    let options: &[&str] = if readonly {
        &["rbind", "rprivate", "ro"]
    } else {
        &["rbind", "rprivate"]
    };
    let mut m = mount(destination, "bind", "", options);
    m.set_source(Some(source.to_path_buf()));
    m
}

fn mounts(input: &SpecInput<'_>, privileged: bool) -> Vec<Mount> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", sys_mode]),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        ),
    ];
    match &input.shm {
        Some(shm) => out.push(bind("/dev/shm", shm, false)),
        None => out.push(bind("/dev/shm", Path::new("/dev/shm"), false)),
    }
    // Parents before children, whatever order the spec listed them in (containerd sortMounts).
    let mut binds: Vec<&BindMount> = input.mounts.iter().collect();
    binds.sort_by_key(|m| Path::new(&m.destination).components().count());
    for m in binds {
        out.push(bind(&m.destination, &m.source, m.readonly));
    }
    out
}

/// The kubelet's container resources (pkg/kubelet/cm/helpers_linux.go): cpu shares from the request
/// (`max(2, milli*1024/1000)`), a CFS quota from the limit over a 100 ms period (at least 1 ms), and the
/// memory limit in bytes.
pub fn resources(container: &Container) -> oci_spec::runtime::LinuxResources {
    use crate::api::quantity::parse_quantity;
    const PERIOD: u64 = 100_000;
    let res = container.resources.clone().unwrap_or_default();
    let get = |map: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               k: &str| {
        map.as_ref()
            .and_then(|m| m.get(k))
            .and_then(|q| parse_quantity(&q.0))
    };
    let mut out = oci_spec::runtime::LinuxResources::default();
    let mut cpu = oci_spec::runtime::LinuxCpu::default();
    let milli_request = get(&res.requests, "cpu")
        .or_else(|| get(&res.limits, "cpu"))
        .map(|q| q.milli_value())
        .unwrap_or(0);
    let shares = (milli_request.max(0) * 1024 / 1000).max(2);
    cpu.set_shares(Some(u64::try_from(shares).unwrap_or(u64::MAX)));
    if let Some(limit) = get(&res.limits, "cpu")
        .map(|q| q.milli_value())
        .filter(|m| *m > 0)
    {
        let quota = (limit * PERIOD as i128 / 1000).max(1000);
        cpu.set_quota(Some(i64::try_from(quota).unwrap_or(i64::MAX)));
        cpu.set_period(Some(PERIOD));
    }
    out.set_cpu(Some(cpu));
    if let Some(bytes) = get(&res.limits, "memory").map(|q| q.value()).filter(|b| *b > 0) {
        let mut mem = oci_spec::runtime::LinuxMemory::default();
        mem.set_limit(Some(i64::try_from(bytes).unwrap_or(i64::MAX)));
        out.set_memory(Some(mem));
    }
    out
}

#[cfg(test)]
mod tests;
