//! Runtime configuration and the on-disk layout.
//!
//! Volatile state lives under the run dir (a tmpfs on real nodes, emptied by a reboot): namespace pins, shm,
//! helper pids, the OCI runtime's own state. Persistent state lives under the state dir: images, pods
//! (container instances, emptyDir volumes, managed `/etc` files), logs. That split is how a restart of
//! peapod is told from a reboot of the node. Every path here is derived from the two roots, so tests run
//! against temporary directories. Every name joined in (uid, namespace, pod and container names, ids)
//! goes through [`component`], so no value, validated or not, yields a path or cgroup outside its root.

#[cfg(test)]
pub(crate) mod proptests;

use std::path::PathBuf;

pub use crate::api::component::{component, derive_id, is_plain, is_safe_component, join_component};

use super::etc::ClusterDns;
use super::resources::QosClass;
use crate::api::admit::AdmitConfig;

/// Settings of the node runtime, from the command line.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Persistent state (`--state-dir`).
    pub state_dir: PathBuf,
    /// Volatile state (`--run-dir`).
    pub run_dir: PathBuf,
    /// OCI runtime binary (`--oci-runtime`).
    pub oci_runtime: PathBuf,
    /// This binary, re-executed as `peapod pause` and `peapod shim`.
    pub self_exe: PathBuf,
    /// Node name (`--node-name`).
    pub node_name: String,
    /// Node IP reported as `status.hostIP`.
    pub node_ip: Option<String>,
    /// Parent cgroup of every pod (`--cgroup-parent`), e.g. `/peapod`.
    pub cgroup_parent: String,
    /// Rotate container logs above this size.
    pub log_max_size: u64,
    /// Keep at most this many files per container log.
    pub log_max_files: usize,
    /// The node's resolv.conf for `dnsPolicy: Default`.
    pub resolv_conf: PathBuf,
    /// Cluster DNS for `dnsPolicy: ClusterFirst`.
    pub cluster_dns: ClusterDns,
    /// Size of each sandbox's `/dev/shm`.
    pub shm_size: String,
    /// CNI configuration directory (`--cni-conf-dir`).
    pub cni_conf_dir: PathBuf,
    /// CNI plugin directories (`--cni-bin-dir`).
    pub cni_bin_dirs: Vec<PathBuf>,
    /// Most processes per pod (`--pod-pids-limit`; -1 for unlimited, like the kubelet's `podPidsLimit`).
    pub pod_pids_limit: i64,
    /// Containers without a seccompProfile get RuntimeDefault (`--seccomp-default`), else Unconfined.
    pub seccomp_default: bool,
    /// Where `Localhost` seccomp profiles are read from (`--seccomp-profile-root`).
    pub seccomp_profile_root: PathBuf,
    /// What pods are admitted (`--pod-security-level`, `--allowed-unsafe-sysctls`).
    pub admission: AdmitConfig,
}

impl RuntimeConfig {
    /// For unit tests: `state` and `run` under `dir`, a runtime and a helper binary that are never run.
    #[cfg(test)]
    pub fn under(dir: &std::path::Path) -> Self {
        RuntimeConfig::new(
            dir.join("state"),
            dir.join("run"),
            "/bin/false".into(),
            "/usr/bin/peapod".into(),
        )
    }

    /// A configuration rooted at `state_dir` and `run_dir` with defaults for everything else.
    pub fn new(state_dir: PathBuf, run_dir: PathBuf, oci_runtime: PathBuf, self_exe: PathBuf) -> Self {
        RuntimeConfig {
            seccomp_profile_root: state_dir.join("seccomp"),
            state_dir,
            run_dir,
            oci_runtime,
            self_exe,
            node_name: "localhost".to_string(),
            node_ip: None,
            cgroup_parent: "/peapod".to_string(),
            log_max_size: 10 << 20,
            log_max_files: 5,
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            cluster_dns: ClusterDns {
                servers: Vec::new(),
                domain: "cluster.local".to_string(),
            },
            shm_size: "65536k".to_string(),
            cni_conf_dir: PathBuf::from(crate::network::cni::DEFAULT_CONF_DIR),
            cni_bin_dirs: crate::network::cni::DEFAULT_BIN_DIRS
                .iter()
                .map(PathBuf::from)
                .collect(),
            pod_pids_limit: -1,
            seccomp_default: true,
            admission: AdmitConfig::default(),
        }
    }

    /// Image store root.
    pub fn images_dir(&self) -> PathBuf {
        self.state_dir.join("images")
    }

    /// Directory of all pods.
    pub fn pods_dir(&self) -> PathBuf {
        self.state_dir.join("pods")
    }

    /// Persistent directory of one pod.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.pods_dir().join(&*component(uid))
    }

    /// Directory of all instances of one container.
    pub fn container_dir(&self, uid: &str, container: &str) -> PathBuf {
        self.pod_dir(uid).join("containers").join(&*component(container))
    }

    /// Directory (and OCI bundle) of one container instance.
    pub fn instance_dir(&self, uid: &str, container: &str, attempt: u32) -> PathBuf {
        self.container_dir(uid, container).join(attempt.to_string())
    }

    /// Log directory of one container (kubelet: `/var/log/pods/<ns>_<name>_<uid>/<container>`).
    pub fn container_log_dir(&self, namespace: &str, name: &str, uid: &str, container: &str) -> PathBuf {
        self.pod_log_dir(namespace, name, uid)
            .join(&*component(container))
    }

    /// Log directory of one pod: `<ns>_<name>_<uid>`, unambiguous because no component contains `_`.
    pub fn pod_log_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        let (ns, name, uid) = (component(namespace), component(name), component(uid));
        self.state_dir.join("logs").join(format!("{ns}_{name}_{uid}"))
    }

    /// Volatile directory of one sandbox.
    pub fn sandbox_run_dir(&self, sandbox_id: &str) -> PathBuf {
        self.run_dir.join("sandboxes").join(&*component(sandbox_id))
    }

    /// Where CNI ADD results are cached for DEL (persistent: leases outlive a reboot).
    pub fn cni_cache_dir(&self) -> PathBuf {
        self.state_dir.join("cni").join("results")
    }

    /// `--root` of the OCI runtime.
    pub fn runtime_root(&self) -> PathBuf {
        self.run_dir.join("runc")
    }

    /// Pid record of a running shim.
    pub fn shim_record(&self, container_id: &str) -> PathBuf {
        self.run_dir
            .join("shims")
            .join(format!("{}.json", component(container_id)))
    }

    /// `linux.cgroupsPath` of a container: a child of its pod's cgroup.
    pub fn cgroups_path(&self, uid: &str, qos: QosClass, container_id: &str) -> String {
        format!("{}/{}", self.pod_cgroup(uid, qos), component(container_id))
    }

    /// The cgroup of a pod's helper processes (pause and shims): inside the pod's, beside its containers.
    pub fn helper_cgroup(&self, uid: &str, qos: QosClass) -> String {
        format!("{}/helpers", self.pod_cgroup(uid, qos))
    }

    /// The pod's cgroup relative to each hierarchy's root, laid out like the kubelet's: Guaranteed pods
    /// directly under the cgroup parent, the others under its `burstable/` and `besteffort/` children.
    pub fn pod_cgroup(&self, uid: &str, qos: QosClass) -> String {
        let uid = component(uid);
        match qos.cgroup_dir() {
            Some(dir) => format!("{}/pod{uid}", self.qos_cgroup(dir)),
            None => format!("{}/pod{uid}", self.cgroup_parent()),
        }
    }

    /// Every place a pod's cgroup may be, whatever its QoS class (for removal).
    pub fn pod_cgroup_candidates(&self, uid: &str) -> [String; 3] {
        [QosClass::Guaranteed, QosClass::Burstable, QosClass::BestEffort].map(|q| self.pod_cgroup(uid, q))
    }

    /// A QoS cgroup (`burstable`, `besteffort`) below the cgroup parent.
    pub fn qos_cgroup(&self, dir: &str) -> String {
        format!("{}/{dir}", self.cgroup_parent())
    }

    fn cgroup_parent(&self) -> &str {
        self.cgroup_parent.trim_end_matches('/')
    }
}

/// A fresh random id (32 bytes from the kernel's CSPRNG, 64 hex characters), as containerd gives each
/// sandbox: two attempts, or two runtimes on one node, never share one.
pub fn random_id() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_64_hex_and_distinct() {
        let a = random_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_id().unwrap());
    }

    #[test]
    fn pod_cgroups_are_laid_out_like_the_kubelets() {
        let cfg = RuntimeConfig::new("/s".into(), "/r".into(), "runc".into(), "peapod".into());
        assert_eq!(cfg.pod_cgroup("u1", QosClass::Guaranteed), "/peapod/podu1");
        assert_eq!(
            cfg.pod_cgroup("u1", QosClass::Burstable),
            "/peapod/burstable/podu1"
        );
        assert_eq!(
            cfg.cgroups_path("u1", QosClass::BestEffort, "c1"),
            "/peapod/besteffort/podu1/c1"
        );
        assert_eq!(
            cfg.helper_cgroup("u1", QosClass::Guaranteed),
            "/peapod/podu1/helpers"
        );
        assert_eq!(cfg.pod_cgroup_candidates("u1").len(), 3);
    }
}
