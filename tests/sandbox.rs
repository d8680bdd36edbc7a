//! Root integration tests of the sandbox: host namespaces, a shared PID namespace, and volumes (emptyDir on
//! tmpfs, hostPath type checks, subPath), each checked from inside the containers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::host::BridgeNetwork;
use common::{c, pod, sleeper, st, wait_for, Node};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

#[test]
fn host_network_pid_and_ipc_use_the_node_namespaces() {
    let host = pod("host")
        .grace(2)
        .set("hostNetwork", json!(true))
        .set("hostPID", json!(true))
        .set("hostIPC", json!(true))
        .container(sleeper("c"));
    let mut node = Node::new();
    node.apply("host.yaml", &host.manifest());
    node.start();
    let p = node.wait_pod("host", "running", T, |p| st::running(p, "c"));
    let ns = |n: &str| {
        std::fs::read_link(format!("/proc/self/ns/{n}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    for kind in ["net", "ipc", "uts", "pid"] {
        let inside = node.exec("host", "c", &["readlink", &format!("/proc/self/ns/{kind}")]);
        assert_eq!(inside.trim(), ns(kind), "{kind} namespace must be the node's");
    }
    let host_name = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(node.exec("host", "c", &["hostname"]).trim(), host_name);
    // hostNetwork pods report the node's IP as their own.
    let status = p.status.as_ref().unwrap();
    assert!(status.pod.host_ip.is_some());
    assert_eq!(status.pod.pod_ip, status.pod.host_ip);
    let hosts = node.exec("host", "c", &["head", "-1", "/etc/hosts"]);
    assert_eq!(hosts.trim(), "# Kubernetes-managed hosts file (host network).");
    node.finish(T);
}

#[test]
fn share_process_namespace_puts_every_container_under_the_pause_process() {
    let shared = pod("shared")
        .grace(2)
        .share_process_namespace()
        .container(sleeper("a"))
        .container(sleeper("b"));
    let mut node = Node::new();
    node.apply("shared.yaml", &shared.manifest());
    node.start();
    node.wait_pod("shared", "running", T, |p| {
        st::running(p, "a") && st::running(p, "b")
    });
    let pid_ns = |c: &str| node.exec("shared", c, &["readlink", "/proc/self/ns/pid"]);
    assert_eq!(pid_ns("a"), pid_ns("b"));
    let init = node.exec("shared", "a", &["cat", "/proc/1/cmdline"]);
    assert!(init.starts_with("/"), "PID 1 is the pause process: {init:?}");
    assert!(init.contains("pause"), "PID 1 is the pause process: {init:?}");
    // Each container sees the other's processes.
    let ps = node.exec("shared", "a", &["ps", "-o", "pid,args"]);
    assert!(ps.matches("while true").count() >= 2, "{ps}");
    node.finish(T);
}

#[test]
fn empty_dir_memory_is_a_sized_tmpfs_and_disk_is_world_writable() {
    let vols = pod("vols")
        .grace(2)
        .volume(
            "mem",
            json!({"emptyDir": {"medium": "Memory", "sizeLimit": "10Mi"}}),
        )
        .empty_dir("disk")
        .container(
            c("c")
                .command(["sleep", "3600"])
                .mount("mem", "/mem")
                .mount("disk", "/disk"),
        );
    let mut node = Node::new();
    node.apply("vols.yaml", &vols.manifest());
    node.start();
    node.wait_pod("vols", "running", T, |p| st::running(p, "c"));
    let df = node.exec("vols", "c", &["df", "-k", "/mem"]);
    assert!(
        df.lines().nth(1).unwrap().split_whitespace().nth(1) == Some("10240"),
        "10Mi tmpfs: {df}"
    );
    assert!(node
        .exec("vols", "c", &["grep", " /mem ", "/proc/mounts"])
        .starts_with("tmpfs "));
    assert_eq!(
        node.exec("vols", "c", &["stat", "-c", "%a", "/disk"]).trim(),
        "777"
    );
    node.finish(T);
}

#[test]
fn host_path_types_are_checked_and_sub_paths_stay_inside_their_volume() {
    let mut node = Node::new();
    let host = node.dir.path().join("host-data");
    std::fs::create_dir_all(&host).unwrap();
    // The volume's own symlink pointing at / must not lead the subPath out of the volume.
    std::os::unix::fs::symlink("/", host.join("escape")).unwrap();
    let missing = node.dir.path().join("nothing-here");
    let made = node.dir.path().join("made");
    let paths = pod("paths")
        .grace(2)
        .volume("data", json!({"hostPath": {"path": host, "type": "Directory"}}))
        .volume(
            "created",
            json!({"hostPath": {"path": made, "type": "DirectoryOrCreate"}}),
        )
        .container(
            c("c")
                .sh("echo sub > /sub/file; echo made > /made/file; sleep 3600")
                .set(
                    "env",
                    json!([{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
                )
                .set(
                    "volumeMounts",
                    json!([
                        {"name": "data", "mountPath": "/sub", "subPathExpr": "logs/$(POD)"},
                        {"name": "data", "mountPath": "/esc", "subPath": "escape/peapod-subpath-probe"},
                        {"name": "created", "mountPath": "/made"},
                    ]),
                ),
        );
    node.apply("paths.yaml", &paths.manifest());
    let bad = pod("badpath")
        .grace(2)
        .volume("v", json!({"hostPath": {"path": missing, "type": "Directory"}}))
        .container(sleeper("c"));
    node.apply("bad.yaml", &bad.manifest());
    node.start();
    node.wait_pod("paths", "running", T, |p| st::running(p, "c"));
    wait_for("files written through the mounts", T, || {
        host.join("logs/paths/file").exists().then_some(())
    });
    assert_eq!(
        std::fs::read_to_string(host.join("logs/paths/file")).unwrap(),
        "sub\n"
    );
    assert_eq!(
        std::fs::read_to_string(node.dir.path().join("made/file")).unwrap(),
        "made\n"
    );
    assert!(
        host.join("peapod-subpath-probe").is_dir(),
        "the escaping subPath was created inside the volume"
    );
    assert!(!std::path::Path::new("/peapod-subpath-probe").exists());
    // A hostPath of the wrong type: FailedMount with the kubelet's message; the pod waits.
    let log = wait_for("FailedMount event", T, || {
        let l = node.supervisor_log();
        l.contains("FailedMount").then_some(l)
    });
    assert!(
        log.contains(&format!(
            "hostPath type check failed: {} is not a directory",
            missing.display()
        )),
        "{log}"
    );
    let p = node.get("badpath").unwrap();
    assert_eq!(st::phase(&p), "Pending");
    assert_eq!(st::display(&p), "ContainerCreating");
    node.finish(T);
}

#[test]
fn cni_network_gives_the_pod_an_ip_reachable_from_the_node() {
    let mut node = Node::new();
    let network = BridgeNetwork::new(&node, "peapod-test", "pp", 99);
    network.install(&node);
    let net = pod("net").grace(2).container(
        c("web").sh("echo served by $(hostname) > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"),
    );
    node.apply("net.yaml", &net.manifest());
    node.start();
    let p = node.wait_pod("net", "running with an IP", T, |p| st::running(p, "web"));
    let ip = p.status.as_ref().unwrap().pod.pod_ip.clone().expect("podIP");
    assert!(ip.starts_with(&network.prefix()), "{ip}");
    let hosts = node.exec("net", "web", &["cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\tnet\n")), "{hosts}");
    assert!(node
        .exec("net", "web", &["ip", "-4", "addr", "show", "eth0"])
        .contains(&ip));
    // The node reaches the pod through the bridge.
    let body = wait_for("HTTP answer from the pod", T, || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect((ip.as_str(), 8080)).ok()?;
        s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    });
    assert!(body.ends_with("served by net\n"), "{body}");
    let lease = network.leases().join(&ip);
    assert!(lease.exists(), "host-local recorded the lease");
    assert!(node.stop(T).success());
    assert!(!lease.exists(), "the lease was released by CNI DEL");
    node.assert_clean();
}
