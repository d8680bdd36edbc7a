//! Root tests of start-up recovery after a supervisor was SIGKILLed mid-creation. Sandbox ids are random per
//! creation, so a sandbox it was creating is named by no pod's pointer: the restarted supervisor must find
//! it (by the intent every creation writes first), CNI DEL it while its network namespace is pinned, kill its
//! pause process, unmount its pins and `/dev/shm`, remove its directory, remove the pod cgroup of a pod left
//! with no sandbox at all, and leave the pod's adopted sandbox alone. A shim whose pid record the crash
//! prevented is found again and its container adopted. A graceful stop then leaves nothing.
//!
//! The crash points are made with the real creation code (`sandbox::create`, the same path the supervisor
//! runs, live `peapod pause` included), then the records it writes last are rolled back as a crash would
//! have left them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::Duration;

use common::builder::PodBuilder;
use common::host::{mounts_under, runtime_config, skip_without_bridge_plugins, BridgeNetwork};
use common::{cni, pod, reap_orphans, sleeper, st, wait_for, Node};
use peapod::api::PodGroup;
use peapod::runtime::layout::RuntimeConfig;
use peapod::runtime::process;
use peapod::runtime::record::ProcessId;
use peapod::runtime::sandbox::{self, SandboxRecord, SandboxRequest};

const T: Duration = Duration::from_secs(60);

/// The pod every test here keeps running: one container `c` in a shared PID namespace.
fn keeper() -> PodBuilder {
    pod("keeper")
        .grace(2)
        .restart_never()
        .share_process_namespace()
        .container(sleeper("c"))
}

/// Starts `node` with the keeper and returns it once its container runs.
fn run_keeper(node: &mut Node) -> PodGroup {
    node.apply("keeper.yaml", &keeper().manifest());
    node.start();
    node.wait_pod("keeper", "running", T, |p| st::running(p, "c"))
}

/// Creates a sandbox for `pod` through the supervisor's own code path.
fn create_sandbox(cfg: &RuntimeConfig, pod: &PodGroup, attempt: u32) -> SandboxRecord {
    let req = SandboxRequest {
        uid: pod.metadata.uid.as_deref().unwrap(),
        name: pod.metadata.name.as_deref().unwrap(),
        namespace: "default",
        spec: &pod.spec.pod,
        attempt,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(sandbox::create(cfg, &req)).expect("create sandbox")
}

fn sandbox_dir(node: &Node, record: &SandboxRecord) -> PathBuf {
    node.run.join("sandboxes").join(&record.id)
}

/// A supervisor killed after a sandbox's record but before its pointer, and another killed before even the
/// record: both orphans are released at the restart, the adopted sandbox keeps running.
#[test]
fn sandboxes_a_killed_supervisor_was_creating_are_released_at_restart() {
    let mut node = Node::new();
    let before = run_keeper(&mut node);
    let uid = before.metadata.uid.clone().unwrap();
    let container_id = st::container(&before, "c").container_id.clone();
    node.kill9();

    let cfg = runtime_config(&node);
    let adopted = sandbox::pointer(&cfg, &uid).expect("the running pod's pointer");
    let pointer_path = node.state.join("pods").join(&uid).join("sandbox.json");
    let pointer = fs::read(&pointer_path).unwrap();
    // Crash after the record, before the pointer: the pointer still names the adopted sandbox.
    let recorded = create_sandbox(&cfg, &before, adopted.attempt + 1);
    // Crash before the record: the pause process runs, the pins and shm are mounted, nothing says so.
    let unrecorded = create_sandbox(&cfg, &before, adopted.attempt + 2);
    fs::write(&pointer_path, &pointer).unwrap();
    fs::remove_file(sandbox_dir(&node, &unrecorded).join("sandbox.json")).unwrap();
    let orphans = [recorded, unrecorded];
    for o in &orphans {
        assert!(process::is_alive(&o.pause), "orphan pause {:?} runs", o.pause);
        assert!(!mounts_under(&sandbox_dir(&node, o)).is_empty());
    }

    node.start();
    wait_for("orphan sandboxes released", T, || {
        reap_orphans();
        let left: Vec<_> = orphans
            .iter()
            .filter(|o| process::is_alive(&o.pause) || sandbox_dir(&node, o).exists())
            .collect();
        left.is_empty().then_some(())
    });
    for o in &orphans {
        assert!(
            mounts_under(&sandbox_dir(&node, o)).is_empty(),
            "pins of {} left",
            o.id
        );
    }
    let after = node.wait_pod("keeper", "still running", T, |p| st::running(p, "c"));
    assert_eq!(
        st::container(&after, "c").container_id,
        container_id,
        "the adopted pod was not restarted"
    );
    assert_eq!(sandbox::pointer(&cfg, &uid), Some(adopted.clone()));
    assert!(sandbox::load(&cfg, &adopted.id).is_some_and(|r| sandbox::is_ready(&r)));
    node.finish(T);
}

/// Whether the cgroup `path` exists in any hierarchy of this host.
fn cgroup_exists(path: &str) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    peapod::runtime::cgroup::hierarchies(&info)
        .iter()
        .any(|h| h.mount.join(path.trim_start_matches('/')).exists())
}

/// A supervisor killed during a pod's first sandbox creation, after the pause process started and before
/// the pod directory existed (the pod is gone by the restart): the orphan and the pod cgroup it made are
/// released, and the other pod keeps running.
#[test]
fn a_first_sandbox_a_killed_supervisor_was_creating_leaves_no_pod_cgroup() {
    let mut node = Node::new();
    let keeper = run_keeper(&mut node);
    node.kill9();

    let cfg = runtime_config(&node);
    let mut gone = keeper.clone();
    gone.metadata.name = Some("gone".into());
    gone.metadata.uid = Some("0a1b2c3d-0000-4000-8000-00000000beef".into());
    let uid = gone.metadata.uid.clone().unwrap();
    let orphan = create_sandbox(&cfg, &gone, 0);
    // The pod directory (managed /etc files, pointer) is written after the pause process starts.
    fs::remove_dir_all(node.state.join("pods").join(&uid)).unwrap();
    let pod_cgroup = format!("{}/besteffort/pod{uid}", node.cgroup_parent);
    assert!(cgroup_exists(&pod_cgroup) && process::is_alive(&orphan.pause));

    node.start();
    wait_for("orphan sandbox and its pod cgroup released", T, || {
        reap_orphans();
        let released = !process::is_alive(&orphan.pause)
            && !sandbox_dir(&node, &orphan).exists()
            && !cgroup_exists(&pod_cgroup);
        released.then_some(())
    });
    assert!(mounts_under(&sandbox_dir(&node, &orphan)).is_empty());
    node.wait_pod("keeper", "still running", T, |p| st::running(p, "c"));
    node.finish(T);
}

/// A supervisor killed while a container started, after its shim was spawned and before the shim's pid
/// record was written (that window spans the whole `runc create`/`start`): the restart finds the live shim
/// by the identity it recorded itself and the lock it holds, records it again and adopts the running
/// container instead of killing it and reporting it lost.
#[test]
fn a_shim_a_crash_left_unrecorded_is_adopted_at_restart() {
    let mut node = Node::new();
    let before = run_keeper(&mut node);
    let container_id = st::container(&before, "c").container_id.clone().unwrap();
    let id = container_id.strip_prefix("peapod://").unwrap();
    node.kill9();

    let record = node.run.join("shims").join(format!("{id}.json"));
    let shim: ProcessId = serde_json::from_slice(&fs::read(&record).unwrap()).unwrap();
    fs::remove_file(&record).unwrap();

    node.start();
    let found = wait_for("the shim recorded again", T, || {
        serde_json::from_slice::<ProcessId>(&fs::read(&record).ok()?).ok()
    });
    assert_eq!(found, shim);
    let after = node.wait_pod("keeper", "running after the restart", T, |p| st::running(p, "c"));
    let c = st::container(&after, "c");
    assert_eq!(c.container_id.as_deref(), Some(container_id.as_str()));
    assert_eq!(c.restart_count, 0);
    assert!(process::is_alive(&shim));
    node.finish(T);
}

/// A recorded sandbox no pointer names (a crash between its record and its pointer) on a bridge network:
/// the restart releases its address (CNI DEL while its network namespace is still pinned) and keeps the
/// adopted sandbox's.
#[test]
fn an_orphan_sandbox_on_a_cni_network_releases_its_address_at_restart() {
    if skip_without_bridge_plugins() {
        return;
    }
    let mut node = Node::new();
    let network = BridgeNetwork::new(&node, "peapod-orphans", "po", 97);
    network.install(&node);
    let keeper = run_keeper(&mut node);
    let keeper_ip = keeper.status.as_ref().unwrap().pod.pod_ip.clone().unwrap();
    node.kill9();

    let cfg = runtime_config(&node);
    let pointer_path = node
        .state
        .join("pods")
        .join(keeper.metadata.uid.as_deref().unwrap())
        .join("sandbox.json");
    let pointer = fs::read(&pointer_path).unwrap();
    let orphan = create_sandbox(&cfg, &keeper, 1);
    fs::write(&pointer_path, &pointer).unwrap();
    let leases = network.leases();
    let orphan_ip = orphan
        .pod_ips
        .first()
        .cloned()
        .expect("the orphan has an address");
    assert!(leases.join(&orphan_ip).exists() && leases.join(&keeper_ip).exists());

    node.start();
    wait_for("the orphan's address released", T, || {
        reap_orphans();
        let released = !leases.join(&orphan_ip).exists()
            && !process::is_alive(&orphan.pause)
            && !sandbox_dir(&node, &orphan).exists();
        released.then_some(())
    });
    assert!(
        leases.join(&keeper_ip).exists(),
        "the adopted sandbox keeps its address"
    );
    node.wait_pod("keeper", "still running", T, |p| st::running(p, "c"));
    let stopped = node.stop(T);
    assert!(stopped.success(), "{stopped}: {}", node.supervisor_log());
    assert!(!leases.join(&keeper_ip).exists());
    node.assert_clean();
    drop(network);
}

/// A supervisor killed in the middle of a CNI ADD (`cni-added`: the bridge plugin has attached the sandbox
/// and host-local leased it an address, the attachment is not cached yet). Nothing recorded that address:
/// the restart must still release it (DEL with the node's network while the orphan's namespace is pinned),
/// and the pod runs on a new sandbox. Before, only cached attachments were released and the lease stayed
/// for good.
#[test]
fn a_crash_in_the_middle_of_a_cni_add_releases_the_address_at_restart() {
    let mut node = Node::new();
    let Some((bridge, leases)) = cni::bridge_network(&node, "peapod-mid-add") else {
        return;
    };
    node.apply("keeper.yaml", &keeper().manifest());
    node.start_env(&[("PEAPOD_CRASH_AT", "cni-added".as_ref())]);
    let status = node.wait_exit(T);
    assert_eq!(status.signal(), Some(9), "crashed mid-ADD: {status:?}");
    let orphaned = cni::leased(&leases);
    assert_eq!(
        orphaned.len(),
        1,
        "the killed ADD leased an address: {orphaned:?}"
    );

    node.start();
    let keeper = node.wait_pod("keeper", "running", T, |p| st::running(p, "c"));
    let keeper_ip = keeper.status.as_ref().unwrap().pod.pod_ip.clone().unwrap();
    wait_for("only the running sandbox's address leased", T, || {
        (cni::leased(&leases) == [keeper_ip.clone()]).then_some(())
    });
    let stopped = node.stop(T);
    assert!(stopped.success(), "{stopped}: {}", node.supervisor_log());
    assert_eq!(cni::leased(&leases), Vec::<String>::new());
    node.assert_clean();
    drop(bridge);
}

/// A chained CNI plugin for the test below: passes ADD's previous result on, and holds a DEL open while the
/// file `hold` names exists (after creating the file `held`).
const HOLD_DEL_PLUGIN: &str = r#"#!/usr/bin/env python3
import json, os, sys, time
conf = json.load(sys.stdin)
cmd = os.environ.get("CNI_COMMAND")
if cmd == "ADD":
    print(json.dumps(conf["prevResult"]))
elif cmd == "DEL":
    open(conf["held"], "a").close()
    while os.path.exists(conf["hold"]):
        time.sleep(0.05)
elif cmd == "VERSION":
    print(json.dumps({"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}))
"#;

/// A restart does not wait for the orphans a crash left before it runs pods: their release (here a CNI DEL
/// the test holds open) runs beside the workers, so a pod added while the supervisor was down starts, and
/// the orphan is still released, with its address, once its DEL returns. Before, every orphan was released
/// before any worker ran: nothing started (and no status was reported) while a DEL hung.
#[test]
fn a_restart_runs_pods_while_an_orphan_is_still_being_released() {
    use std::os::unix::fs::PermissionsExt;
    let mut node = Node::new();
    let Some((bridge, leases)) = cni::bridge_network(&node, "peapod-held-del") else {
        return;
    };
    let plugins = node.dir.path().join("plugins");
    fs::create_dir_all(&plugins).unwrap();
    fs::write(plugins.join("hold-del"), HOLD_DEL_PLUGIN).unwrap();
    fs::set_permissions(plugins.join("hold-del"), fs::Permissions::from_mode(0o755)).unwrap();
    let (hold, held) = (node.dir.path().join("hold"), node.dir.path().join("held"));
    let conflist = node.cni_conf.join("10-test.conflist");
    let mut net: serde_json::Value = serde_json::from_slice(&fs::read(&conflist).unwrap()).unwrap();
    net["plugins"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "hold-del", "hold": hold, "held": held}));
    fs::write(&conflist, net.to_string()).unwrap();
    let bin_dirs = format!("{},/usr/lib/cni,/opt/cni/bin", plugins.display());
    let flags = ["--cni-bin-dir", bin_dirs.as_str()];

    node.apply("keeper.yaml", &keeper().manifest());
    node.start_run(&flags, &[]);
    let keeper = node.wait_pod("keeper", "running", T, |p| st::running(p, "c"));
    node.kill9();
    let mut cfg = runtime_config(&node);
    cfg.cni_bin_dirs = vec![plugins.clone(), "/usr/lib/cni".into(), "/opt/cni/bin".into()];
    let pointer_path = cfg
        .pod_dir(keeper.metadata.uid.as_deref().unwrap())
        .join("sandbox.json");
    let pointer = fs::read(&pointer_path).unwrap();
    let orphan = create_sandbox(&cfg, &keeper, 1);
    fs::write(&pointer_path, &pointer).unwrap();
    node.apply(
        "late.yaml",
        &pod("late").grace(2).container(sleeper("c")).manifest(),
    );

    fs::write(&hold, "").unwrap();
    node.start_run(&flags, &[]);
    wait_for("the orphan's DEL to be held", T, || held.exists().then_some(()));
    node.wait_pod("late", "running while the orphan's DEL is held", T, |p| {
        st::running(p, "c")
    });
    assert!(
        hold.exists() && sandbox_dir(&node, &orphan).exists(),
        "the orphan is still being released"
    );

    fs::remove_file(&hold).unwrap();
    wait_for("the orphan released", T, || {
        reap_orphans();
        let ip = orphan.pod_ips.first().unwrap();
        let gone = !sandbox_dir(&node, &orphan).exists() && !leases.join(ip).exists();
        gone.then_some(())
    });
    node.wait_pod("keeper", "still running", T, |p| st::running(p, "c"));
    let stopped = node.stop(T);
    assert!(stopped.success(), "{stopped}: {}", node.supervisor_log());
    node.assert_clean();
    drop(bridge);
}
