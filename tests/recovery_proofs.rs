//! Root integration tests of what recovery must prove before it adopts anything (faults-and-security.md
//! F3-F5): a shim that died while the supervisor was down leaves a `ContainerStatusUnknown` (137) container,
//! a shim record whose pid now names another process is not adopted, and a node reboot (everything killed,
//! unmounted, the run dir wiped) gets a new sandbox, runs the init containers again and carries the restart
//! counts on. And the image's STOPSIGNAL is the signal a container is stopped with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use common::builder::PodBuilder;
use common::{c, pod, reap_orphans, sleeper, st, test_images, wait_for, walkdir, Node};
use peapod::api::PodGroup;
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// What the kubelet says of a container it cannot find any more.
const UNKNOWN_MESSAGE: &str = "The container could not be located when the pod was terminated";

/// A Pod with a 30 s grace period and the host directory `dir` as the volume `host`.
fn pod_on_host(name: &str, policy: &str, dir: &Path) -> PodBuilder {
    pod(name)
        .restart(policy)
        .grace(30)
        .volume("host", json!({"hostPath": {"path": dir, "type": "Directory"}}))
}

/// The runtime id of a container (`peapod://<id>` in its status).
fn runtime_id(p: &PodGroup, container: &str) -> String {
    let id = st::container(p, container)
        .container_id
        .clone()
        .expect("a container id");
    id.strip_prefix("peapod://").expect("peapod:// id").to_string()
}

/// The shim record (`{"pid", "startTime"}`) of a container.
fn shim_record(node: &Node, id: &str) -> (PathBuf, Value) {
    let path = node.run.join("shims").join(format!("{id}.json"));
    let record = serde_json::from_slice(&fs::read(&path).expect("shim record")).expect("json");
    (path, record)
}

fn alive(pid: i32) -> bool {
    reap_orphans();
    kill(Pid::from_raw(pid), None).is_ok()
}

/// The host pid of a container's init, from the shim's `started.json`.
fn container_pid(node: &Node, p: &PodGroup, container: &str) -> i32 {
    let uid = p.metadata.uid.as_deref().expect("uid");
    let started = node
        .state
        .join("pods")
        .join(uid)
        .join("containers")
        .join(container)
        .join("0/started.json");
    let record: Value = serde_json::from_slice(&fs::read(started).expect("started.json")).expect("json");
    record["pid"].as_i64().expect("pid") as i32
}

/// Runs `pod` (restartPolicy Never, one looping container `c`) and kills the supervisor, then the shim of
/// `c`: the container itself keeps running, orphaned. Returns the pod, the shim record and the container pid.
fn orphan_a_container(node: &mut Node, name: &str) -> (PodGroup, PathBuf, Value, i32) {
    let looping = pod(name)
        .restart_never()
        .grace(30)
        .container(c("c").sh("while true; do sleep 0.2; done"));
    node.apply(&format!("{name}.yaml"), &looping.manifest());
    node.start();
    let before = node.wait_pod(name, "running", T, |p| st::running(p, "c"));
    let (path, record) = shim_record(node, &runtime_id(&before, "c"));
    let shim = record["pid"].as_i64().expect("pid") as i32;
    let workload = container_pid(node, &before, "c");
    node.kill9();
    kill(Pid::from_raw(shim), Signal::SIGKILL).unwrap();
    wait_for("the shim to die", T, || (!alive(shim)).then_some(()));
    assert!(alive(workload), "the container outlives its shim");
    (before, path, record, workload)
}

/// After restart, `c` is `ContainerStatusUnknown` with 137, never restarted, and its process is gone.
fn assert_abandoned(node: &Node, name: &str, workload: i32) {
    let after = node.wait_pod(name, "container status unknown", T, |p| {
        st::terminated(p, "c").is_some()
    });
    let t = st::terminated(&after, "c").unwrap();
    assert_eq!(
        (t.exit_code, t.reason.as_deref(), t.message.as_deref()),
        (137, Some("ContainerStatusUnknown"), Some(UNKNOWN_MESSAGE))
    );
    assert_eq!(st::restarts(&after, "c"), 0, "Never: nothing starts twice");
    assert_eq!(st::phase(&after), "Failed");
    wait_for("the orphaned container to be killed", T, || {
        (!alive(workload)).then_some(())
    });
}

#[test]
fn a_dead_shim_becomes_container_status_unknown_137() {
    let mut node = Node::new();
    let (_, _, _, workload) = orphan_a_container(&mut node, "orphan");
    node.start();
    assert_abandoned(&node, "orphan", workload);
    node.finish(T);
}

/// An unrelated process, killed and reaped when the test ends, passed or failed.
struct Stranger(std::process::Child);

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_shim_record_naming_a_reused_pid_is_not_adopted() {
    let mut node = Node::new();
    let (_, path, mut record, workload) = orphan_a_container(&mut node, "reused");
    // The kernel gave the shim's pid to an unrelated process: same pid, another start time.
    let mut stranger = Stranger(Command::new("sleep").arg("300").spawn().unwrap());
    let pid = stranger.0.id() as i32;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start_time: u64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(record["startTime"].as_u64(), Some(start_time));
    record["pid"] = pid.into();
    fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    node.start();
    assert_abandoned(&node, "reused", workload);
    assert!(
        stranger.0.try_wait().unwrap().is_none(),
        "the stranger was not signalled"
    );
    drop(stranger);
    node.finish(T);
}

/// What a reboot leaves of a node: the supervisor and every process it started killed, every mount gone,
/// the run dir (a tmpfs on a real node) empty, the cgroups gone; the state dir as it was.
fn reboot(node: &mut Node) {
    node.kill9();
    wait_for("every process of the node to die", T, || {
        reap_orphans();
        let pids: Vec<i32> = node
            .pids_in_cgroups()
            .into_iter()
            .chain(node.helper_pids())
            .collect();
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        pids.is_empty().then_some(())
    });
    peapod::sys::mount::unmount_all_under(node.dir.path()).unwrap();
    fs::remove_dir_all(&node.run).unwrap();
    for dir in node.cgroup_dirs() {
        for d in walkdir(&dir).into_iter().rev() {
            match fs::remove_dir(&d) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("rmdir {}: {e}", d.display()),
                _ => {}
            }
        }
    }
}

fn sandbox_pointer(node: &Node, uid: &str) -> Value {
    let path = node.state.join("pods").join(uid).join("sandbox.json");
    serde_json::from_slice(&fs::read(path).expect("sandbox pointer")).expect("json")
}

#[test]
fn a_reboot_recreates_the_sandbox_reruns_init_and_carries_restart_counts_on() {
    let mut node = Node::new();
    let host = node.dir.path().join("host");
    fs::create_dir(&host).unwrap();
    let boot = pod_on_host("boot", "Always", &host)
        .init(c("init").sh("echo ran >> /host/init").mount("host", "/host"))
        .container(sleeper("app"));
    node.apply("boot.yaml", &boot.manifest());
    node.start();
    let before = node.wait_pod("boot", "running", T, |p| st::running(p, "app"));
    let uid = before.metadata.uid.clone().unwrap();
    let first = sandbox_pointer(&node, &uid);
    assert_eq!(fs::read_to_string(host.join("init")).unwrap(), "ran\n");

    reboot(&mut node);
    node.start();
    let after = node.wait_pod("boot", "running again", T, |p| {
        st::running(p, "app") && st::restarts(p, "app") >= 1
    });
    assert_eq!(after.metadata.uid.as_deref(), Some(uid.as_str()), "the same pod");
    assert_eq!(st::restarts(&after, "app"), 1, "the count carries on");
    let last = st::last_terminated(&after, "app").expect("the instance lost in the reboot");
    assert_eq!(
        (last.exit_code, last.reason.as_deref()),
        (137, Some("ContainerStatusUnknown"))
    );
    assert_ne!(runtime_id(&after, "app"), runtime_id(&before, "app"));
    let second = sandbox_pointer(&node, &uid);
    assert_ne!(second["id"], first["id"], "a new sandbox");
    assert_eq!(
        second["attempt"].as_u64(),
        first["attempt"].as_u64().map(|a| a + 1)
    );
    assert_eq!(
        fs::read_to_string(host.join("init")).unwrap(),
        "ran\nran\n",
        "init containers run again in a new sandbox"
    );
    node.finish(T);
}

/// The busybox image with `STOPSIGNAL SIGUSR1`, imported into the node as `localhost/busybox:stopsignal`.
fn import_stopsignal_image(node: &Node) -> &'static str {
    let dir = node.dir.path().join("image");
    let layout = dir.join("layout");
    let archive = dir.join("stop.oci.tar");
    fs::create_dir(&dir).unwrap();
    let base = test_images().join("busybox.oci.tar");
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let at = |p: &Path, tag: &str| format!("{}:{tag}", p.display());
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}", base.display()),
            &format!("oci:{}", at(&layout, "base")),
        ],
    );
    run(
        "umoci",
        &[
            "config",
            "--image",
            &at(&layout, "base"),
            "--tag",
            "stop",
            "--config.stopsignal",
            "SIGUSR1",
        ],
    );
    let name = "localhost/busybox:stopsignal";
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}", at(&layout, "stop")),
            &format!("oci-archive:{}:{name}", archive.display()),
        ],
    );
    node.import(&archive);
    name
}

#[test]
fn the_images_stopsignal_is_sent_on_stop() {
    let mut node = Node::new();
    let image = import_stopsignal_image(&node);
    let host = node.dir.path().join("signals");
    fs::create_dir(&host).unwrap();
    // Each container records the first of SIGUSR1/SIGTERM it gets and exits; the grace period is 30 s, so
    // the pod going well before that means it stopped on the signal it was sent, not SIGKILL.
    let script = |name: &str| {
        format!("trap \"echo USR1 > /host/{name}; exit 0\" USR1; trap \"echo TERM > /host/{name}; exit 0\" TERM; while true; do sleep 0.1; done")
    };
    let stop = pod_on_host("stop", "Always", &host)
        .container(
            c("custom")
                .image(image)
                .sh(&script("custom"))
                .mount("host", "/host"),
        )
        .container(c("plain").sh(&script("plain")).mount("host", "/host"));
    node.apply("stop.yaml", &stop.manifest());
    node.start();
    node.wait_pod("stop", "running", T, |p| {
        st::running(p, "custom") && st::running(p, "plain")
    });
    node.delete("stop.yaml");
    wait_for(
        "the pod gone well before its 30 s grace period",
        Duration::from_secs(20),
        || node.get("stop").is_none().then_some(()),
    );
    let got = |name: &str| fs::read_to_string(host.join(name)).unwrap_or_default();
    assert_eq!(got("custom"), "USR1\n", "STOPSIGNAL SIGUSR1 from the image");
    assert_eq!(got("plain"), "TERM\n", "SIGTERM without a STOPSIGNAL");
    node.finish(T);
}
