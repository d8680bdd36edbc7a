//! Root integration tests of container isolation (faults-and-security.md §4.4): every container runs the
//! probe and the test compares its facts with what the spec asked for. Capabilities, no_new_privs and
//! seccomp (S5-S7), the identity (S4), fds (S10), writes outside the rootfs (S2), host processes (S1), IPC
//! between sandboxes (S3), sysctls and fsGroup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod security_probe;

use std::os::unix::process::CommandExt;

use serde_json::json;

use common::{st, Node};
use security_probe::{container, facts, finished_log, pod, start, PROBE, T};

/// CRI-O's nine default capabilities: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
/// NET_BIND_SERVICE.
const DEFAULT_CAPS: &str = "00000000000005fb";

#[test]
fn containers_keep_exactly_the_asked_capabilities_with_no_new_privs_and_seccomp() {
    let mut node = Node::new();
    let cases = [
        ("defaults", json!({})),
        (
            "restricted",
            json!({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                   "allowPrivilegeEscalation": false, "seccompProfile": {"type": "RuntimeDefault"}}}),
        ),
        (
            "nonroot",
            json!({"securityContext": {"runAsUser": 1000, "runAsGroup": 1000}}),
        ),
        (
            "unconfined",
            json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}, "allowPrivilegeEscalation": true}}),
        ),
    ];
    for (name, extra) in &cases {
        let spec = json!({"restartPolicy": "Never", "containers": [container("c", PROBE, extra.clone())]});
        node.apply(&format!("{name}.yaml"), &pod(name, spec));
    }
    // Privileged: baseline would refuse the Unconfined profile (tests/security_policy.rs).
    start(&mut node, "privileged", &[]);
    let f = facts(&finished_log(&node, "defaults", "c"));
    assert_eq!(f["CapBnd"], DEFAULT_CAPS);
    assert_eq!(f["CapEff"], DEFAULT_CAPS, "root holds the bounding set");
    assert_eq!(
        (f["CapInh"].as_str(), f["CapAmb"].as_str()),
        ("0000000000000000", "0000000000000000"),
        "nothing inheritable or ambient (CVE-2022-29162)"
    );
    assert_eq!(f["NoNewPrivs"], "1", "peapod's default: no escalation");
    assert_eq!(f["Seccomp"], "2", "RuntimeDefault by default (--seccomp-default)");
    assert!(f["Id"].starts_with("uid=0(root) gid=0(root)"), "{f:?}");
    assert_eq!(
        f["Fds"].split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2"],
        "no fd leaks into the container"
    );

    let f = facts(&finished_log(&node, "restricted", "c"));
    assert_eq!(
        (f["CapBnd"].as_str(), f["CapEff"].as_str()),
        ("0000000000000400", "0000000000000400")
    );
    assert_eq!((f["NoNewPrivs"].as_str(), f["Seccomp"].as_str()), ("1", "2"));

    let f = facts(&finished_log(&node, "nonroot", "c"));
    assert!(f["Id"].starts_with("uid=1000(app) gid=1000"), "{f:?}");
    assert_eq!(
        f["CapEff"], "0000000000000000",
        "a non-root user holds no capabilities"
    );
    assert_eq!(f["CapPrm"], "0000000000000000");
    assert_eq!(f["CapBnd"], DEFAULT_CAPS);

    let f = facts(&finished_log(&node, "unconfined", "c"));
    assert_eq!((f["Seccomp"].as_str(), f["NoNewPrivs"].as_str()), ("0", "0"));
    node.finish(T);
}

#[test]
fn the_default_seccomp_profile_blocks_namespace_and_mount_syscalls() {
    let mut node = Node::new();
    // Root with the default capabilities. Creating a user namespace needs no capability at all, so only the
    // profile refuses `unshare -U`: the Unconfined container, with the same capabilities, is allowed it.
    // The others also need SYS_ADMIN; with it added, the profile opens the namespace and mount rules, as in
    // containerd's profile.
    let script = "for c in 'unshare -U true' 'unshare -n true' 'mount -t tmpfs none /tmp' 'hostname x'; do \
        if $c 2>/dev/null; then echo \"allowed: $c\"; else echo \"refused: $c\"; fi; done";
    let spec = |extra| json!({"restartPolicy": "Never", "containers": [container("c", script, extra)]});
    node.apply("plain.yaml", &pod("plain", spec(json!({}))));
    let admin = json!({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}});
    node.apply("admin.yaml", &pod("admin", spec(admin)));
    let unconfined = json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}});
    node.apply("unconfined.yaml", &pod("unconfined", spec(unconfined)));
    start(&mut node, "privileged", &[]);
    let out = finished_log(&node, "plain", "c");
    for c in [
        "unshare -U true",
        "unshare -n true",
        "mount -t tmpfs none /tmp",
        "hostname x",
    ] {
        assert!(out.contains(&format!("refused: {c}")), "{out}");
    }
    let out = finished_log(&node, "unconfined", "c");
    assert!(
        out.contains("allowed: unshare -U true"),
        "without the profile a user namespace is allowed, so the profile is what refused it: {out}"
    );
    assert!(
        out.contains("refused: unshare -n true") && out.contains("refused: hostname x"),
        "capabilities still refuse these: {out}"
    );
    let out = finished_log(&node, "admin", "c");
    assert!(
        out.contains("allowed: unshare -n true"),
        "SYS_ADMIN opens the namespace rules: {out}"
    );
    assert!(out.contains("allowed: mount -t tmpfs none /tmp"), "{out}");
    node.finish(T);
}

#[test]
fn containers_cannot_write_outside_their_rootfs_or_see_host_processes() {
    let mut node = Node::new();
    let marker = format!("peapod-sentinel-{}", std::process::id());
    let mut sentinel = std::process::Command::new("sleep")
        .arg0(&marker)
        .arg("300")
        .spawn()
        .unwrap();
    let host_pid = sentinel.id();
    let script = format!(
        "for f in /proc/sys/kernel/hostname /proc/sysrq-trigger /sys/kernel/profiling /sys/fs/cgroup/pids/pids.max; do \
           if echo x > $f 2>/dev/null; then echo \"wrote: $f\"; else echo \"refused: $f\"; fi; done; \
         if kill -0 {host_pid} 2>/dev/null; then echo 'sees: host pid'; fi; \
         grep -l 'peapod-sentinel-[0-9]' /proc/[0-9]*/cmdline 2>/dev/null | sed 's/^/sees: /'; \
         echo \"Pids: $(ls -d /proc/[0-9]* | wc -l)\"; \
         touch /rootfs-file && echo 'wrote: rootfs'"
    );
    let spec = json!({"restartPolicy": "Never", "containers": [container("c", &script, json!({}))]});
    node.apply("walls.yaml", &pod("walls", spec));
    let ro = json!({"restartPolicy": "Never", "containers": [container("c", "touch /x 2>&1; true",
        json!({"securityContext": {"readOnlyRootFilesystem": true}}))]});
    node.apply("ro.yaml", &pod("ro", ro));
    start(&mut node, "baseline", &[]);
    let out = finished_log(&node, "walls", "c");
    let _ = sentinel.kill();
    let _ = sentinel.wait();
    for f in [
        "/proc/sys/kernel/hostname",
        "/proc/sysrq-trigger",
        "/sys/kernel/profiling",
        "/sys/fs/cgroup/pids/pids.max",
    ] {
        assert!(out.contains(&format!("refused: {f}")), "{out}");
    }
    assert!(!out.contains("sees:"), "host processes are invisible: {out}");
    let pids: usize = facts(&out)["Pids"].parse().unwrap();
    assert!(pids <= 6, "only the container's own processes: {out}");
    assert!(out.contains("wrote: rootfs"), "its own rootfs is writable: {out}");
    assert!(finished_log(&node, "ro", "c").contains("Read-only file system"));
    node.finish(T);
}

#[test]
fn sandboxes_do_not_share_ipc_but_their_containers_do() {
    let mut node = Node::new();
    let writer = "touch /dev/mqueue/peapod-q /dev/shm/peapod-shm && echo written; sleep 300";
    let reader =
        "while [ ! -e /tmp/go ]; do sleep 0.2; done; ls /dev/mqueue /dev/shm; cat /proc/sysvipc/shm | wc -l";
    let a = json!({"restartPolicy": "Never",
        "containers": [container("writer", writer, json!({})), container("reader", reader, json!({}))]});
    node.apply("a.yaml", &pod("a", a));
    let b = json!({"restartPolicy": "Never", "containers": [container("reader", reader, json!({}))]});
    node.apply("b.yaml", &pod("b", b));
    start(&mut node, "baseline", &[]);
    node.wait_pod("a", "writer running", T, |p| {
        st::running(p, "writer") && st::running(p, "reader")
    });
    common::wait_for("the writer's files", T, || {
        let out = node.peapod(&["logs", "a", "-c", "writer"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("written")
            .then_some(())
    });
    node.wait_pod("b", "reader running", T, |p| st::running(p, "reader"));
    node.exec("a", "reader", &["touch", "/tmp/go"]);
    node.exec("b", "reader", &["touch", "/tmp/go"]);
    let same = finished_log(&node, "a", "reader");
    assert!(same.contains("peapod-q") && same.contains("peapod-shm"), "{same}");
    let other = finished_log(&node, "b", "reader");
    assert!(
        !other.contains("peapod-q") && !other.contains("peapod-shm"),
        "{other}"
    );
    assert!(
        other.trim_end().ends_with('1'),
        "no SysV segment: only the header line: {other}"
    );
    node.finish(T);
}

#[test]
fn sysctls_apply_in_the_sandbox_and_unsafe_ones_are_refused() {
    let mut node = Node::new();
    let script = "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/msgmax";
    let safe = json!({"restartPolicy": "Never",
        "securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"},
                                        {"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}]},
        "containers": [container("c", script, json!({}))]});
    node.apply("safe.yaml", &pod("safe", safe));
    let allowed = json!({"restartPolicy": "Never",
        "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "4242"}]},
        "containers": [container("c", script, json!({}))]});
    node.apply("allowed.yaml", &pod("allowed", allowed));
    let unsafe_ = json!({"securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
        "containers": [container("c", "true", json!({}))]});
    node.apply("unsafe.yaml", &pod("unsafe", unsafe_));
    let host_before = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
    start(
        &mut node,
        "privileged",
        &["--allowed-unsafe-sysctls", "kernel.msg*"],
    );
    let out = finished_log(&node, "safe", "c");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], &["1", "80"], "{out}");
    let out = finished_log(&node, "allowed", "c");
    assert_eq!(out.lines().nth(2), Some("4242"), "{out}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap(),
        host_before,
        "the host's IPC namespace is untouched"
    );
    let p = node.wait_pod("unsafe", "refused", T, |p| st::phase(p) == "Failed");
    let s = p.status.unwrap().pod;
    assert_eq!(s.reason.as_deref(), Some("SysctlForbidden"));
    assert_eq!(
        s.message.as_deref(),
        Some(r#"Pod was rejected: forbidden sysctl: "net.core.somaxconn" not allowlisted"#)
    );
    node.finish(T);
}

#[test]
fn fs_group_owns_empty_dirs_and_joins_the_containers_groups() {
    let mut node = Node::new();
    let script = "id -G; stat -c 'Mode: %a %g' /data; touch /data/f; stat -c 'File: %g' /data/f";
    let spec = json!({"restartPolicy": "Never",
        "securityContext": {"fsGroup": 2345, "runAsUser": 1000, "runAsGroup": 1000},
        "volumes": [{"name": "data", "emptyDir": {}}],
        "containers": [container("c", script, json!({"volumeMounts": [{"name": "data", "mountPath": "/data"}]}))]});
    node.apply("fsgroup.yaml", &pod("fsgroup", spec));
    start(&mut node, "baseline", &[]);
    let out = finished_log(&node, "fsgroup", "c");
    let f = facts(&out);
    assert!(
        out.lines().next().unwrap_or("").split(' ').any(|g| g == "2345"),
        "{out}"
    );
    assert_eq!(f["Mode"], "2777 2345", "setgid, group-rw, the fsGroup: {out}");
    assert_eq!(f["File"], "2345", "new files inherit the group: {out}");
    node.finish(T);
}
