//! The bundle of one container, built through the recording host without root: what is mounted where,
//! which files are written, which namespaces the spec joins, and where a failure stops. The root suites
//! (`tests/containers.rs`, `tests/security*.rs`) prove the same bundles on the real host.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::super::*;
use super::bundle;
use crate::runtime::host::fake::{Call, Fake};
use crate::runtime::host::HostMount;

const ID: &str = "c1";

fn sandbox(ns: &Path) -> SandboxRecord {
    SandboxRecord {
        id: "sb1".into(),
        attempt: 0,
        uid: "u-1".into(),
        created_at: Timestamp::now(),
        pause: ProcessId {
            pid: 4242,
            start_time: 1,
        },
        net: Some(ns.join("net")),
        ipc: Some(ns.join("ipc")),
        uts: Some(ns.join("uts")),
        pid: None,
        host_pid: false,
        shm: Some(PathBuf::from("/sb/shm")),
        pod_ips: vec!["10.0.0.5".into()],
        hostname: "web".into(),
        hosts_file: PathBuf::from("/sb/etc/hosts"),
        hostname_file: PathBuf::from("/sb/etc/hostname"),
        resolv_file: PathBuf::from("/sb/etc/resolv.conf"),
    }
}

fn image() -> ImageInfo {
    ImageInfo {
        name: "busybox".into(),
        layers: vec![PathBuf::from("/layers/bottom"), PathBuf::from("/layers/top")],
        cmd: vec!["sh".into()],
        ..Default::default()
    }
}

fn pod(spec: PodSpec) -> PodGroup {
    PodGroup {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("prod".into()),
            uid: Some("u-1".into()),
            ..Default::default()
        },
        spec: crate::api::PodGroupSpec { pod: spec },
        status: None,
    }
}

/// What building a bundle did: the host's calls, the spec written, the instance directory.
struct Built {
    host: Fake,
    result: Result<InstanceRecord, StartError>,
    dir: PathBuf,
}

impl Built {
    fn spec(&self) -> Spec {
        let json = self
            .host
            .written(&self.dir.join("config.json"))
            .expect("config.json written");
        serde_json::from_str(&json).unwrap()
    }

    /// The spec's bind mounts, destination to source.
    fn binds(&self) -> Vec<(String, PathBuf)> {
        let spec = self.spec();
        spec.mounts()
            .iter()
            .flatten()
            .filter(|m| m.typ().as_deref() == Some("bind"))
            .map(|m| {
                let dest = m.destination().display().to_string();
                (dest, m.source().clone().unwrap_or_default())
            })
            .collect()
    }
}

async fn build(c: &Container, spec: PodSpec, sb: &SandboxRecord, image: &ImageInfo) -> Built {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = RuntimeConfig::under(tmp.path());
    let pod = pod(spec);
    let volumes = PodVolumes::default().with("data", PathBuf::from("/vol/data"));
    let req = ContainerRequest {
        pod: &pod,
        uid: "u-1",
        container: c,
        attempt: 0,
        spec_hash: "h",
        sandbox: sb,
        image,
        volumes: &volumes,
        host_ip: None,
    };
    let host = Fake::default();
    let dir = cfg.instance_dir("u-1", &c.name, 0);
    let result = bundle(&host, &cfg, &req, ID, &dir).await;
    Built { host, result, dir }
}

fn container(mounts: Vec<VolumeMount>, termination: Option<&str>) -> Container {
    Container {
        name: "app".into(),
        volume_mounts: Some(mounts),
        termination_message_path: termination.map(String::from),
        ..Default::default()
    }
}

fn mount_at(path: &str) -> VolumeMount {
    VolumeMount {
        name: "data".into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

/// One row: a container's mounts and where each destination must come from.
struct MountRow {
    name: &'static str,
    container: Container,
    /// (destination, source) of every bind mount, in the spec's order; `{dir}` is the instance dir.
    binds: Vec<(&'static str, &'static str)>,
}

#[tokio::test]
async fn what_is_mounted_where() {
    let managed = |term: &'static str| {
        vec![
            ("/dev/shm", "/sb/shm"),
            ("/etc/hosts", "/sb/etc/hosts"),
            ("/etc/hostname", "/sb/etc/hostname"),
            ("/etc/resolv.conf", "/sb/etc/resolv.conf"),
            (term, "{dir}/termination/termination-log"),
        ]
    };
    let sub_path = VolumeMount {
        sub_path: Some("logs".into()),
        ..mount_at("/var/log/app")
    };
    let rows = [
        MountRow {
            name: "no volumes",
            container: container(vec![], None),
            binds: managed("/dev/termination-log"),
        },
        MountRow {
            name: "a custom terminationMessagePath",
            container: container(vec![], Some("/tmp/msg")),
            binds: managed("/tmp/msg"),
        },
        MountRow {
            name: "a volume over /etc/hosts replaces the managed file",
            container: container(vec![mount_at("/etc/hosts")], None),
            binds: vec![
                ("/dev/shm", "/sb/shm"),
                ("/etc/hosts", "/vol/data"),
                ("/etc/hostname", "/sb/etc/hostname"),
                ("/etc/resolv.conf", "/sb/etc/resolv.conf"),
                ("/dev/termination-log", "{dir}/termination/termination-log"),
            ],
        },
        MountRow {
            name: "a subPath is mounted from its staging path",
            container: container(vec![sub_path], None),
            binds: vec![
                ("/dev/shm", "/sb/shm"),
                ("/etc/hosts", "/sb/etc/hosts"),
                ("/etc/hostname", "/sb/etc/hostname"),
                ("/etc/resolv.conf", "/sb/etc/resolv.conf"),
                // Parents before children: the spec sorts binds by depth.
                ("/dev/termination-log", "{dir}/termination/termination-log"),
                ("/var/log/app", "{pod}/volume-subpaths/data/app/0"),
            ],
        },
    ];
    let sb = sandbox(Path::new("/sb/ns"));
    for row in rows {
        let built = build(&row.container, PodSpec::default(), &sb, &image()).await;
        built.result.as_ref().unwrap();
        let dir = built.dir.display().to_string();
        let pod_dir = built.dir.ancestors().nth(3).unwrap().display().to_string();
        let want: Vec<(String, PathBuf)> = row
            .binds
            .iter()
            .map(|(d, s)| {
                (
                    d.to_string(),
                    PathBuf::from(s.replace("{dir}", &dir).replace("{pod}", &pod_dir)),
                )
            })
            .collect();
        assert_eq!(built.binds(), want, "{}", row.name);
        let staged: Vec<Call> = built
            .host
            .calls()
            .into_iter()
            .filter(|c| matches!(c, Call::StageSubPath { .. }))
            .collect();
        let subpaths = row
            .container
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| m.sub_path.is_some());
        assert_eq!(staged.len(), subpaths.count(), "{}: subPaths staged", row.name);
    }
}

#[tokio::test]
async fn the_root_filesystem_is_the_image_layers_top_first() {
    let built = build(
        &container(vec![], None),
        PodSpec::default(),
        &sandbox(Path::new("/ns")),
        &image(),
    )
    .await;
    built.result.as_ref().unwrap();
    let dir = &built.dir;
    assert_eq!(
        built.host.mounts(),
        vec![HostMount::Overlay {
            lower: vec![PathBuf::from("/layers/top"), PathBuf::from("/layers/bottom")],
            upper: dir.join("upper"),
            work: dir.join("work"),
            target: dir.join("rootfs"),
        }]
    );
    let spec = built.spec();
    assert_eq!(spec.root().as_ref().unwrap().path(), &dir.join("rootfs"));
    // config.json and the records are private to root.
    let private = |name: &str| {
        built
            .host
            .calls()
            .into_iter()
            .any(|c| matches!(c, Call::Write { path, mode: 0o600, .. } if path == dir.join(name)))
    };
    assert!(private("config.json") && private("instance.json") && private("shim.json"));
}

/// One row: the sandbox's namespaces and what the container's spec joins.
struct NamespaceRow {
    name: &'static str,
    sandbox: SandboxRecord,
    /// (type, joined path) in the spec's order; `None` creates a new one.
    joined: Vec<(LinuxNamespaceType, Option<&'static str>)>,
    own_pid_namespace: bool,
}

#[tokio::test]
async fn which_namespaces_the_container_joins() {
    use LinuxNamespaceType::{Cgroup, Ipc, Mount, Network, Pid, Uts};
    let base = sandbox(Path::new("/ns"));
    let rows = [
        NamespaceRow {
            name: "pod network, own pid namespace",
            sandbox: base.clone(),
            joined: vec![
                (Mount, None),
                (Cgroup, None),
                (Pid, None),
                (Network, Some("/ns/net")),
                (Ipc, Some("/ns/ipc")),
                (Uts, Some("/ns/uts")),
            ],
            own_pid_namespace: true,
        },
        NamespaceRow {
            name: "shareProcessNamespace",
            sandbox: SandboxRecord {
                pid: Some("/ns/pid".into()),
                ..base.clone()
            },
            joined: vec![
                (Mount, None),
                (Cgroup, None),
                (Pid, Some("/ns/pid")),
                (Network, Some("/ns/net")),
                (Ipc, Some("/ns/ipc")),
                (Uts, Some("/ns/uts")),
            ],
            own_pid_namespace: false,
        },
        NamespaceRow {
            name: "hostNetwork, hostIPC, hostPID",
            sandbox: SandboxRecord {
                net: None,
                uts: None,
                ipc: None,
                host_pid: true,
                ..base.clone()
            },
            joined: vec![(Mount, None), (Cgroup, None)],
            own_pid_namespace: false,
        },
    ];
    for row in rows {
        let built = build(
            &container(vec![], None),
            PodSpec::default(),
            &row.sandbox,
            &image(),
        )
        .await;
        built.result.as_ref().unwrap();
        let spec = built.spec();
        let got: Vec<(LinuxNamespaceType, Option<PathBuf>)> = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
            .iter()
            .map(|n| (n.typ(), n.path().clone()))
            .collect();
        let want: Vec<_> = row
            .joined
            .iter()
            .map(|(t, p)| (*t, p.map(PathBuf::from)))
            .collect();
        assert_eq!(got, want, "{}", row.name);
        let shim = built.host.written(&built.dir.join("shim.json")).unwrap();
        let shim: crate::runtime::record::ShimConfig = serde_json::from_str(&shim).unwrap();
        assert_eq!(shim.own_pid_namespace, row.own_pid_namespace, "{}", row.name);
    }
}

#[tokio::test]
async fn failures_keep_the_kubelet_reasons_and_stop_before_the_next_effect() {
    let sb = sandbox(Path::new("/ns"));
    let no_layers = ImageInfo {
        layers: vec![],
        ..image()
    };
    let built = build(&container(vec![], None), PodSpec::default(), &sb, &no_layers).await;
    let e = built.result.unwrap_err();
    assert_eq!(
        (e.reason(), e.to_string().as_str()),
        ("CreateContainerError", "image busybox has no layers")
    );
    assert!(
        built.host.mounts().is_empty(),
        "no root filesystem without layers"
    );

    let non_root = PodSpec {
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let root_image = ImageInfo {
        user: "0".into(),
        ..image()
    };
    let built = build(&container(vec![], None), non_root, &sb, &root_image).await;
    let e = built.result.unwrap_err();
    assert_eq!(e.reason(), "CreateContainerConfigError");
    assert_eq!(
        e.to_string(),
        "container has runAsNonRoot and image will run as root (pod: \"web_prod(u-1)\", container: app)"
    );
    assert!(built.host.written(&built.dir.join("config.json")).is_none());

    let nope = VolumeMount {
        name: "nope".into(),
        ..mount_at("/x")
    };
    let missing = container(vec![nope], None);
    let built = build(&missing, PodSpec::default(), &sb, &image()).await;
    let e = built.result.unwrap_err();
    assert_eq!(
        (e.reason(), e.to_string().as_str()),
        ("CreateContainerConfigError", "volume \"nope\" is not prepared")
    );
    assert!(built.host.mounts().is_empty());
}
