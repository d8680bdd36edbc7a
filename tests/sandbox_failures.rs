//! Root tests of the failure paths of sandbox and container creation: a CNI plugin whose ADD fails leaves
//! no pause process behind across retries and gets a DEL for every ADD; two supervisors on one node run a
//! pod with the same uid on one bridge network (sandbox ids are unique per attempt, as containerd's are);
//! a shim that dies before reporting, and a start runc refuses, leave no rootfs mount or runtime state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{st, wait_for, Node, BUSYBOX};

const T: Duration = Duration::from_secs(60);

fn pod(name: &str, restart: &str, command: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 2\n  restartPolicy: {restart}\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    command: {command}\n"
    )
}

const SLEEPER: &str = "[sh, -c, 'trap \"exit 0\" TERM; while true; do sleep 0.2; done']";

/// Starts `peapod run` as `Node::start` does, with extra environment.
fn start_with_env(node: &mut Node, env: &[(&str, &OsStr)]) {
    let manifests = node.manifests.to_str().unwrap().to_string();
    let parent = node.cgroup_parent.clone();
    let args = [
        "run",
        "-f",
        &manifests,
        "--poll-interval",
        "0.2",
        "--cgroup-parent",
        &parent,
    ];
    node.start_with(&args, env);
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

/// Mounts below `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = dir.to_string_lossy().into_owned();
    peapod::sys::mount::mountinfo_targets(&info)
        .filter(|t| t.starts_with(&prefix))
        .collect()
}

#[test]
fn failed_cni_add_releases_the_pause_process_and_is_deleted_every_attempt() {
    failing_cni_add("restartPolicy: Always");
}

#[test]
fn failed_cni_add_with_a_shared_pid_namespace_releases_the_namespace_init() {
    // The pause process's setup parent exits; the PID-namespace init it forked holds the namespaces.
    failing_cni_add("shareProcessNamespace: true\n  restartPolicy: Always");
}

/// A pod whose CNI ADD always fails, with `spec_line` in its spec: across retries at most the attempt in
/// flight has a pause process, every ADD gets a DEL, each attempt has its own sandbox id, and a graceful
/// stop leaves nothing.
fn failing_cni_add(spec_line: &str) {
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
    node.apply(
        "stuck.yaml",
        &pod("stuck", "Always", SLEEPER).replace("restartPolicy: Always", spec_line),
    );
    start_with_env(&mut node, &[("PEAPOD_CNI_BIN_DIR", bin.as_os_str())]);

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

/// Removes the test's bridge even when the test fails.
struct Bridge(String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .output();
    }
}

fn bridge_plugins() -> Option<PathBuf> {
    ["/usr/lib/cni", "/opt/cni/bin"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("bridge").is_file() && d.join("host-local").is_file())
}

#[test]
fn two_supervisors_run_a_pod_with_the_same_uid_on_one_bridge_network() {
    if bridge_plugins().is_none() {
        eprintln!("skipping: the bridge and host-local CNI plugins are not installed");
        return;
    }
    let mut a = Node::new();
    let mut b = Node::new();
    let suffix = a.cgroup_parent.trim_start_matches("/peapod-test-").to_string();
    let bridge = Bridge(format!("pp{}", &suffix[..6]));
    let octet = u8::from_str_radix(&suffix[..2], 16).unwrap() % 200 + 20;
    // One node, one host-local store: both supervisors allocate from it.
    let ipam = a.dir.path().join("cni-ipam");
    let conflist = format!(
        r#"{{"cniVersion": "1.0.0", "name": "peapod-twins", "plugins": [{{"type": "bridge", "bridge": "{}", "isGateway": true, "ipMasq": false,
           "ipam": {{"type": "host-local", "dataDir": "{}", "ranges": [[{{"subnet": "10.98.{octet}.0/24"}}]]}}}}]}}"#,
        bridge.0,
        ipam.display()
    );
    for node in [&a, &b] {
        fs::write(node.cni_conf.join("10-twins.conflist"), &conflist).unwrap();
        node.apply("twin.yaml", &pod("twin", "Always", SLEEPER));
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
        assert!(i.starts_with(&format!("10.98.{octet}.")), "{i}");
    }
    // A failed ADD's DEL under a shared sandbox id would have released the other supervisor's lease.
    let leases = ipam.join("peapod-twins");
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
    node.apply("crash.yaml", &pod("crash", "Always", SLEEPER));
    start_with_env(&mut node, &[("PEAPOD_OCI_RUNTIME", runtime.as_os_str())]);
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
    assert!(node.stop(T).success());
    node.assert_clean();
}

#[test]
fn a_start_runc_refuses_is_recorded_with_its_rootfs_and_runtime_state_released() {
    let mut node = Node::new();
    node.apply("refused.yaml", &pod("refused", "Never", "[/no/such/binary]"));
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
    assert!(node.stop(T).success());
    node.assert_clean();
}
