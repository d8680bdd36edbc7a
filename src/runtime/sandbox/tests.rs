//! Sandbox creation run through the recording host, without root: which namespaces the pause process
//! creates and the containers join for each host setting, what is mounted where in the sandbox directory,
//! and which files are written with which content. The root suites (`tests/sandbox.rs`,
//! `tests/sandbox_failures.rs`) prove the same creation on the real host.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{HostAlias, PodSpec};

use super::build::build;
use super::plan::{namespaces, Namespace};
use super::undo::Made;
use super::*;
use crate::runtime::host::fake::{Call, Fake};
use crate::runtime::host::HostMount;

const ID: &str = "sb1";
const UID: &str = "u-1";

fn config(dir: &Path) -> RuntimeConfig {
    let mut cfg = RuntimeConfig::under(dir);
    // No CNI configuration: a loopback-only sandbox, no network call.
    cfg.cni_conf_dir = dir.join("cni");
    cfg.node_ip = Some("192.168.1.2".into());
    cfg.resolv_conf = PathBuf::from("/fake/etc/resolv.conf");
    cfg
}

fn fake() -> Fake {
    Fake::default()
        .with_file(
            "/fake/etc/resolv.conf",
            "nameserver 10.0.0.2\nsearch corp.example\n",
        )
        .with_file("/fake/etc/hosts", "127.0.0.1\tlocalhost\n10.0.0.1\tnode-1")
}

/// Creates sandbox [`ID`] for a pod `web` in `prod` with `spec` on `host`.
async fn create_on(host: &Fake, cfg: &RuntimeConfig, spec: &PodSpec) -> Result<SandboxRecord, Error> {
    let req = SandboxRequest {
        uid: UID,
        name: "web",
        namespace: "prod",
        spec,
        attempt: 0,
    };
    build(host, cfg, &req, ID, &mut Made::default()).await
}

/// One row: a pod's host settings and the namespaces its sandbox creates.
struct NamespaceRow {
    name: &'static str,
    host_network: bool,
    host_ipc: bool,
    host_pid: bool,
    share_process_namespace: bool,
    created: &'static [Namespace],
}

/// The rows of [`namespaces_follow_the_host_settings`].
fn namespace_rows() -> [NamespaceRow; 7] {
    use Namespace::{Ipc, Net, Pid, Uts};
    [
        NamespaceRow {
            name: "default",
            host_network: false,
            host_ipc: false,
            host_pid: false,
            share_process_namespace: false,
            created: &[Net, Uts, Ipc],
        },
        NamespaceRow {
            name: "hostNetwork",
            host_network: true,
            host_ipc: false,
            host_pid: false,
            share_process_namespace: false,
            created: &[Ipc],
        },
        NamespaceRow {
            name: "hostIPC",
            host_network: false,
            host_ipc: true,
            host_pid: false,
            share_process_namespace: false,
            created: &[Net, Uts],
        },
        NamespaceRow {
            name: "hostPID",
            host_network: false,
            host_ipc: false,
            host_pid: true,
            share_process_namespace: false,
            created: &[Net, Uts, Ipc],
        },
        NamespaceRow {
            name: "shareProcessNamespace",
            host_network: false,
            host_ipc: false,
            host_pid: false,
            share_process_namespace: true,
            created: &[Net, Uts, Ipc, Pid],
        },
        NamespaceRow {
            name: "shareProcessNamespace with hostPID",
            host_network: false,
            host_ipc: false,
            host_pid: true,
            share_process_namespace: true,
            created: &[Net, Uts, Ipc],
        },
        NamespaceRow {
            name: "every host namespace",
            host_network: true,
            host_ipc: true,
            host_pid: true,
            share_process_namespace: true,
            created: &[],
        },
    ]
}

#[tokio::test]
async fn namespaces_follow_the_host_settings() {
    use Namespace::{Ipc, Net, Pid, Uts};
    for row in namespace_rows() {
        let spec = PodSpec {
            host_network: Some(row.host_network),
            host_ipc: Some(row.host_ipc),
            host_pid: Some(row.host_pid),
            share_process_namespace: Some(row.share_process_namespace),
            ..Default::default()
        };
        assert_eq!(namespaces(&spec), row.created, "{}", row.name);
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(tmp.path());
        let host = fake();
        let record = create_on(&host, &cfg, &spec).await.unwrap();
        let ns_dir = cfg.sandbox_run_dir(ID).join("ns");
        let pin = |ns: Namespace| row.created.contains(&ns).then(|| ns_dir.join(ns.proc_name()));
        assert_eq!(
            (&record.net, &record.uts, &record.ipc, &record.pid),
            (&pin(Net), &pin(Uts), &pin(Ipc), &pin(Pid)),
            "{}: the namespaces containers join",
            row.name
        );
        assert_eq!(record.host_pid, row.host_pid, "{}", row.name);
        let names: Vec<&str> = row.created.iter().map(|n| n.proc_name()).collect();
        let pause = host.calls().into_iter().find_map(|c| match c {
            Call::Spawn(args) => Some(args),
            _ => None,
        });
        let pause = pause.unwrap_or_default();
        let ns_arg = pause.windows(2).find(|w| w[0] == "--ns").map(|w| w[1].clone());
        assert_eq!(
            ns_arg,
            Some(names.join(",")),
            "{}: the pause process's --ns",
            row.name
        );
        assert_eq!(record.shm.is_some(), !row.host_ipc, "{}: own /dev/shm", row.name);
    }
}

#[tokio::test]
async fn mounts_and_files_of_a_pod_network_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let host = fake();
    let spec = PodSpec {
        subdomain: Some("sub".into()),
        host_aliases: Some(vec![HostAlias {
            ip: "10.1.2.3".into(),
            hostnames: Some(vec!["foo.remote".into()]),
        }]),
        ..Default::default()
    };
    let record = create_on(&host, &cfg, &spec).await.unwrap();
    let dir = cfg.sandbox_run_dir(ID);
    let etc = dir.join("etc");
    assert_eq!(
        host.mounts(),
        vec![
            HostMount::Tmpfs {
                target: dir.join("shm"),
                options: "mode=1777,size=65536k".into(),
                noexec: true,
            },
            HostMount::Tmpfs {
                target: etc.clone(),
                options: format!("size={MIN_ETC_CAPACITY},nr_inodes=8,mode=0700"),
                noexec: true,
            },
        ]
    );
    // No CNI network on this node: no pod IP, so no line for the pod in /etc/hosts.
    assert!(record.pod_ips.is_empty());
    let hosts = host.written(&etc.join("hosts")).unwrap();
    assert!(hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
    assert!(hosts.ends_with("\n# Entries added by HostAliases.\n10.1.2.3\tfoo.remote\n"));
    assert_eq!(host.written(&etc.join("hostname")).as_deref(), Some("web\n"));
    // No cluster DNS: ClusterFirst falls back to the node's resolv.conf, as the kubelet does.
    assert_eq!(
        host.written(&etc.join("resolv.conf")).as_deref(),
        Some("search corp.example\nnameserver 10.0.0.2\n")
    );
    assert_eq!(
        (&record.hosts_file, &record.hostname_file, &record.resolv_file),
        (
            &etc.join("hosts"),
            &etc.join("hostname"),
            &etc.join("resolv.conf")
        )
    );
    assert_eq!(record.pause.pid, 4242, "the process the ready line names");
    // The intent first, the record next, the pod's pointer last.
    let writes: Vec<PathBuf> = host
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Write {
                path, mode: 0o600, ..
            } => Some(path),
            _ => None,
        })
        .collect();
    assert_eq!(
        writes,
        vec![
            dir.join("intent.json"),
            dir.join(RECORD),
            cfg.pod_dir(UID).join(RECORD)
        ]
    );
}

#[tokio::test]
async fn host_network_copies_the_node_hosts_file_and_hostname() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let host = fake();
    let spec = PodSpec {
        host_network: Some(true),
        host_ipc: Some(true),
        subdomain: Some("ignored".into()),
        set_hostname_as_fqdn: Some(true),
        ..Default::default()
    };
    let record = create_on(&host, &cfg, &spec).await.unwrap();
    let etc = cfg.sandbox_run_dir(ID).join("etc");
    assert_eq!(record.pod_ips, vec!["192.168.1.2"], "the node's IP");
    assert_eq!(record.hostname, "node-1");
    assert_eq!(
        host.written(&etc.join("hosts")).as_deref(),
        Some("# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n10.0.0.1\tnode-1\n")
    );
    assert_eq!(host.written(&etc.join("hostname")).as_deref(), Some("node-1\n"));
    // hostIPC: the host's /dev/shm, only the /etc tmpfs is mounted.
    assert_eq!(host.mounts().len(), 1);
    assert_eq!(record.shm, None);
}

#[tokio::test]
async fn a_pause_process_without_a_ready_line_fails_with_its_last_log_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let mut host = fake().with_file(
        cfg.sandbox_run_dir(ID).join("pause.log"),
        "starting\npause: cannot create namespaces\n",
    );
    host.line = None;
    let err = create_on(&host, &cfg, &PodSpec::default()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "pause process failed: pause: cannot create namespaces"
    );
    host.line = Some("ready x".into());
    let err = create_on(&host, &cfg, &PodSpec::default()).await.unwrap_err();
    assert_eq!(err.to_string(), "pause process failed: bad ready line \"x\"");
    // Nothing after the pause process was attempted: no /etc files, no record.
    assert!(!host
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Write { path, .. } if path.ends_with(RECORD))));
}

#[test]
fn teardown_unmounts_everything_under_the_directory_before_removing_it() {
    let host = fake();
    let dir = Path::new("/run/peapod/sandboxes/sb1");
    super::teardown_dir_on(&host, dir).unwrap();
    assert_eq!(
        host.calls(),
        vec![
            Call::UnmountAllUnder(dir.to_path_buf()),
            Call::RemoveDir(dir.to_path_buf())
        ]
    );
}
