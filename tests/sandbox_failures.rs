//! Root tests of the failure paths of sandbox and container creation: a CNI plugin whose ADD fails leaves
//! no pause process behind across retries and gets a DEL for every ADD; two supervisors on one node run a
//! pod with the same uid on one bridge network (sandbox ids are unique per attempt, as containerd's are);
//! a shim that dies before reporting, and a start runc refuses, leave no rootfs mount or runtime state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::builder::PodBuilder;
use common::host::{mounts_under, skip_without_bridge_plugins, BridgeNetwork};
use common::{c, pod, sleeper, st, wait_for, Node};

const T: Duration = Duration::from_secs(60);

/// A `restartPolicy: Always` pod whose container `c` runs until SIGTERM.
fn sleeping(name: &str) -> PodBuilder {
    pod(name).grace(2).restart_always().container(sleeper("c"))
}

fn write_script(path: &Path, body: &str) {
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Live pause processes of this node's sandboxes (a zombie has an empty command line).
fn pause_pids(node: &Node) -> Vec<i32> {
    let marker = node.run.join("sandboxes").to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.get(1).map(String::as_str) == Some("pause") && args.iter().any(|a| a.starts_with(&marker)) {
            pids.push(pid);
        }
    }
    pids
}

/// The container ids the fake plugin saw for `command`, in order.
fn plugin_calls(log: &Path, command: &str) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix(command)?.strip_prefix(' ').map(String::from))
        .collect()
}

#[test]
fn failed_cni_add_releases_the_pause_process_and_is_deleted_every_attempt() {
    failing_cni_add(sleeping("stuck"));
}

#[test]
fn failed_cni_add_with_a_shared_pid_namespace_releases_the_namespace_init() {
    // The pause process's setup parent exits; the PID-namespace init it forked holds the namespaces.
    failing_cni_add(sleeping("stuck").share_process_namespace());
}

/// The pod `stuck`, whose CNI ADD always fails: across retries at most the attempt in flight has a pause
/// process, every ADD gets a DEL, each attempt has its own sandbox id, and a graceful stop leaves nothing.
fn failing_cni_add(stuck: PodBuilder) {
    let mut node = Node::new();
    let bin = node.dir.path().join("cni-bin");
    fs::create_dir(&bin).unwrap();
    let log = node.dir.path().join("plugin.log");
    write_script(
        &bin.join("refuse-add"),
        &format!(
            "#!/bin/sh\necho \"$CNI_COMMAND $CNI_CONTAINERID\" >> {}\nif [ \"$CNI_COMMAND\" = ADD ]; then\n  echo '{{\"cniVersion\": \"1.0.0\", \"code\": 11, \"msg\": \"test plugin refuses ADD\"}}'\n  exit 1\nfi\n",
            log.display()
        ),
    );
    fs::write(
        node.cni_conf.join("10-refuse.conflist"),
        r#"{"cniVersion": "1.0.0", "name": "refuse", "plugins": [{"type": "refuse-add"}]}"#,
    )
    .unwrap();
    node.apply("stuck.yaml", &stuck.manifest());
    node.start_env(&[("PEAPOD_CNI_BIN_DIR", bin.as_os_str())]);

    // The first attempt and two retries (10 s apart), each ADD answered by a DEL of the same sandbox.
    let adds = wait_for("three failed ADDs, each deleted", Duration::from_secs(90), || {
        let adds = plugin_calls(&log, "ADD");
        let dels = plugin_calls(&log, "DEL");
        (adds.len() >= 3 && adds.iter().all(|a| dels.contains(a))).then_some(adds)
    });
    let pauses = pause_pids(&node);
    assert!(
        pauses.len() <= 1,
        "failed attempts left pause processes: {pauses:?}"
    );
    let distinct: BTreeSet<&String> = adds.iter().collect();
    assert_eq!(
        distinct.len(),
        adds.len(),
        "a fresh sandbox id per attempt: {adds:?}"
    );
    assert!(adds.iter().all(|id| id.len() == 64), "{adds:?}");
    let events = node.events("stuck");
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "FailedCreatePodSandBox" && m.contains("test plugin refuses ADD")),
        "{events:?}"
    );

    assert!(node.stop(T).success());
    assert_eq!(
        pause_pids(&node),
        Vec::<i32>::new(),
        "a graceful stop leaves no pause process"
    );
    let (adds, dels) = (plugin_calls(&log, "ADD"), plugin_calls(&log, "DEL"));
    for id in &adds {
        assert!(dels.contains(id), "ADD of {id} was never deleted: {dels:?}");
    }
    node.assert_clean();
}

#[test]
fn two_supervisors_run_a_pod_with_the_same_uid_on_one_bridge_network() {
    if skip_without_bridge_plugins() {
        return;
    }
    let mut a = Node::new();
    let mut b = Node::new();
    // One node, one host-local store (in a's directory): both supervisors allocate from it.
    let network = BridgeNetwork::new(&a, "peapod-twins", "pp", 98);
    for node in [&a, &b] {
        network.install(node);
        node.apply("twin.yaml", &sleeping("twin").manifest());
    }
    a.start();
    b.start();
    let pa = a.wait_pod("twin", "running on supervisor a", T, |p| st::running(p, "c"));
    let pb = b.wait_pod("twin", "running on supervisor b", T, |p| st::running(p, "c"));
    for (node, name) in [(&a, "a"), (&b, "b")] {
        let failed: Vec<_> = node
            .events("twin")
            .into_iter()
            .filter(|(reason, _)| reason == "FailedCreatePodSandBox")
            .collect();
        assert!(failed.is_empty(), "supervisor {name}: {failed:?}");
    }
    assert_eq!(
        pa.metadata.uid, pb.metadata.uid,
        "same manifest and node name: same pod uid"
    );
    let ip = |p: &peapod::api::PodGroup| p.status.as_ref().unwrap().pod.pod_ip.clone().expect("podIP");
    let (ia, ib) = (ip(&pa), ip(&pb));
    assert_ne!(ia, ib);
    for i in [&ia, &ib] {
        assert!(i.starts_with(&network.prefix()), "{i}");
    }
    // A failed ADD's DEL under a shared sandbox id would have released the other supervisor's lease.
    let leases = network.leases();
    assert!(
        leases.join(&ia).exists() && leases.join(&ib).exists(),
        "both leases are held"
    );
    assert!(a.stop(T).success());
    assert!(b.stop(T).success());
    assert!(
        !leases.join(&ia).exists() && !leases.join(&ib).exists(),
        "CNI DEL released both leases"
    );
    a.assert_clean();
    b.assert_clean();
}

fn runc_path() -> PathBuf {
    [
        "/usr/sbin/runc",
        "/usr/bin/runc",
        "/usr/local/sbin/runc",
        "/usr/local/bin/runc",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .expect("runc is installed")
}

#[test]
fn a_shim_that_dies_before_reporting_leaves_no_rootfs_mount_or_bundle() {
    let mut node = Node::new();
    // The first `create` kills the shim that runs it, as a crash would; later calls are runc's.
    let runtime = node.dir.path().join("crashing-runtime");
    let marker = node.dir.path().join("crashed-once");
    write_script(
        &runtime,
        &format!(
            "#!/bin/sh\ncase \" $* \" in *\" create \"*)\n  if [ ! -e {m} ]; then : > {m}; kill -9 $PPID; exit 1; fi;;\nesac\nexec {runc} \"$@\"\n",
            m = marker.display(),
            runc = runc_path().display()
        ),
    );
    node.apply("crash.yaml", &sleeping("crash").manifest());
    node.start_env(&[("PEAPOD_OCI_RUNTIME", runtime.as_os_str())]);
    let silent = "the container shim exited before reporting a start";
    wait_for("the failed start's event", T, || {
        node.events("crash")
            .iter()
            .any(|(r, m)| r == "Failed" && m.contains(silent))
            .then_some(())
    });
    // The event is recorded after the failed start was cleaned up (the retry comes 10 s later).
    let uid = node.get("crash").unwrap().metadata.uid.unwrap();
    let instance = node.state.join("pods").join(&uid).join("containers/c/0");
    assert_eq!(mounts_under(&node.state.join("pods")), Vec::<String>::new());
    assert!(!instance.exists(), "bundle {} left behind", instance.display());
    // The retry runs the container.
    node.wait_pod("crash", "running after the retry", T, |p| st::running(p, "c"));
    node.finish(T);
}

#[test]
fn a_start_runc_refuses_is_recorded_with_its_rootfs_and_runtime_state_released() {
    let refused = pod("refused")
        .grace(2)
        .restart_never()
        .container(c("c").command(["/no/such/binary"]));
    let mut node = Node::new();
    node.apply("refused.yaml", &refused.manifest());
    node.start();
    let p = node.wait_pod("refused", "start error", T, |p| st::terminated(p, "c").is_some());
    let t = st::terminated(&p, "c").unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (128, Some("StartError")));
    // The shim released the rootfs and runc's state before reporting the failure.
    let uid = p.metadata.uid.unwrap();
    let instance = node.state.join("pods").join(&uid).join("containers/c/0");
    assert_eq!(mounts_under(&node.state.join("pods")), Vec::<String>::new());
    let runc_state: Vec<_> = fs::read_dir(node.run.join("runc"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(runc_state.is_empty(), "runc state left: {runc_state:?}");
    assert!(
        instance.join("exited.json").exists(),
        "the failed start stays recorded"
    );
    node.finish(T);
}
