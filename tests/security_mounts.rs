//! Root integration tests of what a pod can do to the mounts the runtime sets up (issue 18, findings 2 and
//! 3): volumes over `/dev`, `/proc` and `/sys` that would undo runc's masks (CVE-2025-31133 class, which the
//! node's runc 1.1.5 is open to), and what a `shareProcessNamespace` container sees of its PID 1, the pause
//! process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod security_probe;

use serde_json::{json, Value};

use common::{st, Node};
use security_probe::{container, finished_log, pod, start, T};

/// The first line of `/proc/timer_list`, which the masks hide: seeing it means a mask was undone.
const TIMER_LIST: &str = "Timer List Version";

fn mounts(list: &[(&str, &str)]) -> Value {
    let mounts: Vec<Value> = list
        .iter()
        .map(|(name, path)| json!({"name": name, "mountPath": path}))
        .collect();
    json!({ "volumeMounts": mounts })
}

#[test]
fn volume_mounts_over_what_the_runtime_masks_are_refused_by_field() {
    let mut node = Node::new();
    // The issue's attack: an init container plants null -> /proc/timer_list, the app mounts that at /dev.
    let attack = json!({"restartPolicy": "Never", "volumes": [{"name": "v", "emptyDir": {}}],
        "initContainers": [container("plant", "ln -s /proc/timer_list /v/null", mounts(&[("v", "/v")]))],
        "containers": [container("app", "head -n 3 /proc/timer_list; echo end", mounts(&[("v", "/dev")]))]});
    node.apply("dev.yaml", &pod("dev", attack));
    let refused = [
        ("devnull", "/dev/null", "must not cover /dev/null"),
        ("sys", "/sys", "must not cover the masked path /sys/firmware"),
        (
            "powercap",
            "/sys/devices/./virtual",
            "must not cover the masked path /sys/devices/virtual/powercap",
        ),
        ("procsys", "/proc/sys", "must not be /proc or a path under it"),
        ("proc", "/tmp/../proc/", "must not be /proc or a path under it"),
    ];
    for (name, path, _) in refused {
        let spec = json!({"restartPolicy": "Never", "volumes": [{"name": "v", "emptyDir": {}}],
            "containers": [container("c", "echo ran", mounts(&[("v", path)]))]});
        node.apply(&format!("{name}.yaml"), &pod(name, spec));
    }
    // What stays allowed: a memory-backed /dev/shm. (A privileged container may mount /dev too, as the
    // unit tests show; this VM cannot run privileged containers.)
    let allowed = json!({"restartPolicy": "Never",
        "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
        "containers": [container("shm", "grep ' /dev/shm ' /proc/mounts | grep -q size=1024k && echo shm-ok",
            mounts(&[("shm", "/dev/shm")]))]});
    node.apply("allowed.yaml", &pod("allowed", allowed));
    start(&mut node, "privileged", &[]);

    let p = node.wait_pod("dev", "InvalidSpec", T, |p| st::display(p) == "InvalidSpec");
    assert_eq!(st::phase(&p), "Failed");
    let msg = p.status.unwrap().pod.message.unwrap_or_default();
    assert!(
        msg.contains(
            r#"spec.containers[0].volumeMounts[0].mountPath: Invalid value: "/dev": must not cover /dev/null, which the runtime masks paths with, unless the container is privileged"#
        ),
        "{msg}"
    );
    for (name, path, detail) in refused {
        let p = node.wait_pod(name, "InvalidSpec", T, |p| st::display(p) == "InvalidSpec");
        let msg = p.status.unwrap().pod.message.unwrap_or_default();
        let want =
            format!(r#"spec.containers[0].volumeMounts[0].mountPath: Invalid value: "{path}": {detail}"#);
        assert!(msg.contains(&want), "{name}: {msg}");
    }
    assert_eq!(finished_log(&node, "allowed", "shm").trim(), "shm-ok");
    let log = node.supervisor_log();
    assert!(!log.contains("panicked"), "{log}");
    node.finish(T);
}

#[test]
fn a_volume_redirected_onto_dev_through_a_symlink_cannot_undo_the_masks() {
    let mut node = Node::new();
    // Validation cannot see this one: /data/x is a symlink to ../dev inside the data volume, so runc mounts
    // the second volume (with null -> /proc/timer_list) over /dev, and its masks bind /proc/timer_list over
    // the masked files. The shim sees that in the created container's mount table and refuses to start it.
    let plant = "ln -s ../dev /data/x && ln -s /proc/timer_list /fake/null";
    let spec = json!({"restartPolicy": "Never",
        "volumes": [{"name": "data", "emptyDir": {}}, {"name": "dev", "emptyDir": {}}],
        "initContainers": [container("plant", plant, mounts(&[("data", "/data"), ("dev", "/fake")]))],
        "containers": [container("app", "head -n 3 /proc/timer_list > /data/out 2>&1",
            mounts(&[("data", "/data"), ("dev", "/data/x")]))]});
    node.apply("redirect.yaml", &pod("redirect", spec));
    start(&mut node, "baseline", &[]);
    let p = node.wait_pod("redirect", "app terminated", T, |p| {
        st::terminated(p, "app").is_some()
    });
    let t = st::terminated(&p, "app").unwrap();
    // What the app read, from its volume on the host (runc 1.1.5 lets it print the host's timer list).
    let uid = p.metadata.uid.unwrap();
    let out = node
        .state
        .join("pods")
        .join(&uid)
        .join("volumes/kubernetes.io~empty-dir/data/out");
    let out = std::fs::read_to_string(out).unwrap_or_default();
    assert!(!out.contains(TIMER_LIST), "the host's timer list leaked: {out}");
    assert_eq!(t.reason.as_deref(), Some("StartError"), "{t:?}");
    assert_eq!(t.exit_code, 128);
    let message = t.message.unwrap_or_default();
    assert!(
        message.contains("masked path /proc/") && message.contains("is not masked"),
        "{message}"
    );
    node.finish(T);
}

#[test]
fn the_pause_process_a_shared_pid_namespace_sees_shows_nothing_of_the_host() {
    let mut node = Node::new();
    // CAP_SYS_PTRACE lets the container read PID 1's root, cwd, environ and fds, which it could not
    // otherwise: the test must see them to show they are empty.
    let script = r#"echo "cmdline=$(tr '\0' ' ' < /proc/1/cmdline)"
echo "comm=$(cat /proc/1/comm)"
sed 's/^/mountinfo=/' /proc/1/mountinfo
echo "environ=$(tr -d '\0' < /proc/1/environ)"
echo "root=$(ls -A /proc/1/root/ | tr '\n' ' ')"
echo "cwd=$(ls -A /proc/1/cwd/ | tr '\n' ' ')"
for l in /proc/1/cwd /proc/1/root /proc/1/fd/*; do echo "link=$l $(readlink $l)"; done
echo end"#;
    // Without it, a root container may not even look, as before.
    let plain = "for l in exe root cwd; do readlink /proc/1/$l || echo denied; done; \
                 cat /proc/1/environ >/dev/null 2>&1 || echo denied";
    let spec = json!({"restartPolicy": "Never", "shareProcessNamespace": true,
        "containers": [container("c", script,
            json!({"securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}})),
            container("plain", plain, json!({}))]});
    node.apply("shared.yaml", &pod("shared", spec));
    let other = json!({"containers": [container("c", "sleep 300", json!({}))]});
    node.apply("other.yaml", &pod("other", other));
    start(&mut node, "privileged", &[]);
    node.wait_pod("other", "running", T, |p| st::running(p, "c"));
    let out = finished_log(&node, "shared", "c");
    assert!(out.contains("end"), "{out}");
    let other_uid = node.get("other").unwrap().metadata.uid.unwrap();
    for host_thing in [
        node.dir.path().to_str().unwrap(),
        node.state.to_str().unwrap(),
        node.run.to_str().unwrap(),
        other_uid.as_str(),
        "peapod",
    ] {
        assert!(!out.contains(host_thing), "{host_thing:?} is visible: {out}");
    }
    let value = |key: &str| -> Vec<&str> {
        out.lines()
            .filter_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .map(str::trim)
            .collect()
    };
    assert_eq!(value("cmdline"), ["/pause"], "{out}");
    assert_eq!(value("comm"), ["pause"], "{out}");
    assert_eq!(value("environ"), [""], "{out}");
    assert_eq!(value("root"), [""], "the root is empty: {out}");
    assert_eq!(value("cwd"), [""], "{out}");
    let mountinfo = value("mountinfo");
    assert_eq!(mountinfo.len(), 1, "one mount: {out}");
    assert!(
        mountinfo[0].contains(" / / ro,") && mountinfo[0].contains(" - tmpfs "),
        "{out}"
    );
    let plain = finished_log(&node, "shared", "plain");
    assert_eq!(plain.matches("denied").count(), 4, "{plain}");
    node.finish(T);
}
