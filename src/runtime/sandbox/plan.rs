//! The pure part of a sandbox creation: which namespaces the pause process creates (and the containers
//! later join), what is mounted where in the sandbox directory, the hostnames, the content of the managed
//! `/etc` files and the record. No I/O: `build` carries the plan out through the host seam (`runtime::host`).

use std::path::PathBuf;

use k8s_openapi::jiff::Timestamp;

use super::{SandboxRecord, SandboxRequest};
use crate::runtime::etc::{self, Resolv};
use crate::runtime::host::HostMount;
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::record::ProcessId;

/// A namespace the pause process creates and pins for the pod's containers to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// Network (not with `hostNetwork`).
    Net,
    /// UTS, the pod's hostname (not with `hostNetwork`).
    Uts,
    /// IPC (not with `hostIPC`).
    Ipc,
    /// A PID namespace shared by the pod's containers (`shareProcessNamespace` without `hostPID`).
    Pid,
}

impl Namespace {
    /// Its name under `/proc/<pid>/ns`, as the pause process takes it.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::Net => "net",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Pid => "pid",
        }
    }
}

/// The managed `/etc` files' content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcContent {
    /// `/etc/hosts`.
    pub hosts: String,
    /// `/etc/hostname` (the kernel hostname and a newline).
    pub hostname: String,
    /// `/etc/resolv.conf`.
    pub resolv: String,
}

/// What a sandbox creation makes, decided before anything is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The sandbox's volatile directory.
    pub dir: PathBuf,
    /// Where the namespaces are pinned (`<dir>/ns/<name>`).
    pub ns_dir: PathBuf,
    /// The namespaces the pause process creates, in the order it gets them.
    pub namespaces: Vec<Namespace>,
    /// The sandbox's `/dev/shm` tmpfs (`None`: host IPC, the host's `/dev/shm`).
    pub shm: Option<HostMount>,
    /// The pod's hostname.
    pub hostname: String,
    /// Its fully qualified name, with `subdomain`.
    pub fqdn: Option<String>,
    /// The hostname the UTS namespace gets (the FQDN with `setHostnameAsFQDN`).
    pub kernel_hostname: String,
    /// The pod uses the node's network.
    pub host_network: bool,
    /// The pod's containers use the host's PID namespace.
    pub host_pid: bool,
}

impl Plan {
    /// The plan of sandbox `id` for `req`; `node_hostname` is the node's, used with `hostNetwork`.
    pub fn new(
        cfg: &RuntimeConfig,
        req: &SandboxRequest<'_>,
        id: &str,
        node_hostname: Option<String>,
    ) -> Plan {
        let spec = req.spec;
        let host_network = spec.host_network.unwrap_or(false);
        let dir = cfg.sandbox_run_dir(id);
        let shm = (!spec.host_ipc.unwrap_or(false)).then(|| HostMount::Tmpfs {
            target: dir.join("shm"),
            options: format!("mode=1777,size={}", cfg.shm_size),
            noexec: true,
        });
        let (hostname, fqdn) = if host_network {
            (node_hostname.unwrap_or_default(), None)
        } else {
            etc::hostname_and_fqdn(req.name, req.namespace, spec, &cfg.cluster_dns.domain)
        };
        let kernel_hostname = match (&fqdn, spec.set_hostname_as_fqdn.unwrap_or(false)) {
            (Some(f), true) => f.clone(),
            _ => hostname.clone(),
        };
        Plan {
            ns_dir: dir.join("ns"),
            dir,
            namespaces: namespaces(spec),
            shm,
            hostname,
            fqdn,
            kernel_hostname,
            host_network,
            host_pid: spec.host_pid.unwrap_or(false),
        }
    }

    /// The sandbox's `/dev/shm` directory, when it has its own.
    pub fn shm_dir(&self) -> Option<PathBuf> {
        match &self.shm {
            Some(HostMount::Tmpfs { target, .. }) => Some(target.clone()),
            _ => None,
        }
    }

    /// The pin of `ns`, when the pause process creates it.
    pub fn pin(&self, ns: Namespace) -> Option<PathBuf> {
        self.namespaces
            .contains(&ns)
            .then(|| self.ns_dir.join(ns.proc_name()))
    }

    /// The managed `/etc` files: the kubelet's `/etc/hosts` (the node's own plus aliases with
    /// `hostNetwork`), the kernel hostname, and the pod's resolv.conf built on the node's.
    pub fn etc(
        &self,
        cfg: &RuntimeConfig,
        req: &SandboxRequest<'_>,
        pod_ips: &[String],
        node_hosts: &str,
        node_resolv: &str,
    ) -> EtcContent {
        let spec = req.spec;
        let hosts = if self.host_network {
            etc::host_network_hosts(spec, node_hosts)
        } else {
            etc::hosts(spec, &self.hostname, self.fqdn.as_deref(), pod_ips)
        };
        let host_resolv = Resolv::parse(node_resolv);
        let resolv = etc::resolv_conf(spec, req.namespace, &cfg.cluster_dns, &host_resolv).render();
        EtcContent {
            hosts,
            hostname: format!("{}\n", self.kernel_hostname),
            resolv,
        }
    }

    /// The record of the sandbox once its pause process runs and its files are written.
    pub fn record(
        &self,
        id: &str,
        req: &SandboxRequest<'_>,
        pause: ProcessId,
        pod_ips: Vec<String>,
        etc: super::etc_files::EtcFiles,
    ) -> SandboxRecord {
        SandboxRecord {
            id: id.to_string(),
            attempt: req.attempt,
            uid: req.uid.to_string(),
            created_at: Timestamp::now(),
            pause,
            net: self.pin(Namespace::Net),
            ipc: self.pin(Namespace::Ipc),
            uts: self.pin(Namespace::Uts),
            pid: self.pin(Namespace::Pid),
            host_pid: self.host_pid,
            shm: self.shm_dir(),
            pod_ips,
            hostname: self.hostname.clone(),
            hosts_file: etc.hosts,
            hostname_file: etc.hostname,
            resolv_file: etc.resolv,
        }
    }
}

/// The namespaces the pause process creates: network and UTS unless `hostNetwork`, IPC unless `hostIPC`, a
/// shared PID namespace with `shareProcessNamespace` unless `hostPID`.
pub fn namespaces(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<Namespace> {
    let host_pid = spec.host_pid.unwrap_or(false);
    let mut namespaces = Vec::new();
    if !spec.host_network.unwrap_or(false) {
        namespaces.extend([Namespace::Net, Namespace::Uts]);
    }
    if !spec.host_ipc.unwrap_or(false) {
        namespaces.push(Namespace::Ipc);
    }
    if spec.share_process_namespace.unwrap_or(false) && !host_pid {
        namespaces.push(Namespace::Pid);
    }
    namespaces
}
