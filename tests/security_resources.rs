//! Root integration tests of resource isolation (S12) on this host's cgroups (v1 here; v2 is covered by
//! the unit tests against a temporary cgroupfs): the kubelet's pod cgroup layout and settings, the
//! containers' oom_score_adj, a memory hog OOMKilled and restarted, a bounded fork loop stopped at the pids
//! limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod security_probe;

use std::fs;
use std::path::PathBuf;

use serde_json::{json, Value};

use common::{st, wait_for, Node};
use security_probe::{container, facts, oom_floor, pod, start, T};

/// The directory of cgroup `rel` in the hierarchy holding `controller`.
fn cgroup_dir(controller: &str, rel: &str) -> PathBuf {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let h = peapod::runtime::cgroup::hierarchies(&info)
        .into_iter()
        .find(|h| !h.unified && h.controllers.iter().any(|c| c == controller))
        .unwrap_or_else(|| panic!("no v1 {controller} hierarchy on this host"));
    h.mount.join(rel.trim_start_matches('/'))
}

fn read(controller: &str, rel: &str, file: &str) -> String {
    let path = cgroup_dir(controller, rel).join(file);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn resources(requests: Value, limits: Value) -> Value {
    json!({"resources": {"requests": requests, "limits": limits}})
}

fn uid(node: &Node, name: &str) -> String {
    node.get(name).unwrap().metadata.uid.unwrap()
}

/// The kubelet's Burstable oom_score_adj for a container requesting `request` bytes of memory.
fn burstable_oom_score_adj(request: i64) -> i32 {
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
    let capacity = peapod::runtime::resources::memory_capacity(&meminfo).unwrap() as i64;
    let adj = 1000 - 1000 * request / capacity;
    (adj.clamp(3, 999)) as i32
}

#[test]
fn pod_cgroups_follow_the_kubelet_layout_and_settings() {
    let mut node = Node::new();
    if !cgroup_dir("memory", "/").exists() {
        eprintln!("skipping: not a cgroup v1 host (v2 is covered by the unit tests)");
        return;
    }
    let script = "cat /proc/1/oom_score_adj | sed 's/^/OomScoreAdj: /'; \
        if echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; then echo 'Cgroup: writable'; \
        else echo 'Cgroup: read-only'; fi; sleep 300";
    let g = resources(
        json!({"cpu": "250m", "memory": "64Mi"}),
        json!({"cpu": "250m", "memory": "64Mi"}),
    );
    let b = resources(
        json!({"cpu": "100m", "memory": "16Mi"}),
        json!({"memory": "32Mi"}),
    );
    for (name, extra) in [("guaranteed", g), ("burstable", b), ("besteffort", json!({}))] {
        node.apply(
            &format!("{name}.yaml"),
            &pod(name, json!({"containers": [container("c", script, extra)]})),
        );
    }
    start(&mut node, "baseline", &["--pod-pids-limit", "64"]);
    for name in ["guaranteed", "burstable", "besteffort"] {
        node.wait_pod(name, "running", T, |p| st::running(p, "c"));
    }
    check_pod_cgroups(&node);
    check_oom_score_adj(&node);
    node.finish(T);
}

/// The pods' cgroups in the kubelet's layout with its settings (shares, quota, memory and pids limits), each
/// container's a child of its pod's with its own limits, the helpers beside it.
fn check_pod_cgroups(node: &Node) {
    let parent = node.cgroup_parent.clone();
    let g = format!("{parent}/pod{}", uid(node, "guaranteed"));
    assert_eq!(read("cpu", &g, "cpu.shares"), "256");
    assert_eq!(read("cpu", &g, "cpu.cfs_quota_us"), "25000");
    assert_eq!(read("cpu", &g, "cpu.cfs_period_us"), "100000");
    assert_eq!(
        read("memory", &g, "memory.limit_in_bytes"),
        (64 << 20).to_string()
    );
    assert_eq!(read("pids", &g, "pids.max"), "64");
    let b = format!("{parent}/burstable/pod{}", uid(node, "burstable"));
    assert_eq!(read("cpu", &b, "cpu.shares"), "102");
    assert_eq!(
        read("cpu", &b, "cpu.cfs_quota_us"),
        "-1",
        "not every container has a cpu limit"
    );
    assert_eq!(
        read("memory", &b, "memory.limit_in_bytes"),
        (32 << 20).to_string()
    );
    let e = format!("{parent}/besteffort/pod{}", uid(node, "besteffort"));
    assert_eq!(read("cpu", &e, "cpu.shares"), "2");
    assert_eq!(read("cpu", &format!("{parent}/besteffort"), "cpu.shares"), "2");
    assert_eq!(read("pids", &e, "pids.max"), "64");
    // Each container is a child of its pod's cgroup, with its own limits; the helpers live beside it.
    let pod_dir = cgroup_dir("memory", &g);
    let children: Vec<String> = fs::read_dir(&pod_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(children.contains(&"helpers".to_string()), "{children:?}");
    let container = children
        .iter()
        .find(|c| *c != "helpers")
        .expect("a container cgroup");
    assert_eq!(
        read("memory", &format!("{g}/{container}"), "memory.limit_in_bytes"),
        (64 << 20).to_string()
    );
}

/// oom_score_adj as the kubelet sets it per QoS class (within what this test process may set), and the
/// container's cgroup files read-only.
fn check_oom_score_adj(node: &Node) {
    let fact = |name: &str, key: &str| {
        let f = wait_for("the probe's facts", T, || {
            let out = node.peapod(&["logs", name, "-c", "c"]);
            let f = facts(&String::from_utf8_lossy(&out.stdout));
            f.contains_key("Cgroup").then_some(f)
        });
        f[key].clone()
    };
    let floor = oom_floor();
    assert_eq!(fact("guaranteed", "OomScoreAdj"), (-997).max(floor).to_string());
    assert_eq!(fact("besteffort", "OomScoreAdj"), "1000");
    assert_eq!(
        fact("burstable", "OomScoreAdj"),
        burstable_oom_score_adj(16 << 20).max(floor).to_string()
    );
    assert_eq!(fact("guaranteed", "Cgroup"), "read-only");
}

#[test]
fn a_memory_hog_is_oom_killed_and_restarted() {
    let mut node = Node::new();
    let limits = resources(json!({"memory": "16Mi"}), json!({"memory": "32Mi"}));
    // tail keeps everything after the last newline, and /dev/zero has none.
    let spec = json!({"containers": [container("hog", "tail /dev/zero", limits)]});
    node.apply("hog.yaml", &pod("hog", spec));
    start(&mut node, "baseline", &[]);
    let p = node.wait_pod("hog", "OOMKilled and restarted", T, |p| {
        st::restarts(p, "hog") >= 1
    });
    let last = st::container(&p, "hog")
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.clone())
        .expect("a last state");
    assert_eq!(
        (last.reason.as_deref(), last.exit_code),
        (Some("OOMKilled"), 137),
        "{last:?}"
    );
    node.finish(T);
}

#[test]
fn a_fork_loop_stops_at_the_pods_pids_limit() {
    let mut node = Node::new();
    // Bounded: at most 100 processes are asked for; the pod may have 32 (helpers included).
    let script = "for i in $(seq 1 100); do echo \"Forked: $i\"; sleep 600 & done; echo 'Finished: all'";
    let spec = json!({"restartPolicy": "Never", "containers": [container("forks", script, json!({}))]});
    node.apply("forks.yaml", &pod("forks", spec));
    start(&mut node, "baseline", &["--pod-pids-limit", "32"]);
    let p = node.wait_pod("forks", "stopped by the limit", T, |p| {
        st::terminated(p, "forks").is_some()
    });
    let out = String::from_utf8_lossy(&node.peapod(&["logs", "forks", "-c", "forks"]).stdout).into_owned();
    assert!(!out.contains("Finished: all"), "{out}");
    assert!(out.contains("can't fork"), "{out}");
    let forked: usize = out
        .lines()
        .filter_map(|l| l.strip_prefix("Forked: "))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0);
    assert!(
        (16..32).contains(&forked),
        "stopped near the limit of 32: {forked}\n{out}"
    );
    assert_ne!(st::terminated(&p, "forks").unwrap().exit_code, 0);
    let pod_cgroup = format!("{}/besteffort/pod{}", node.cgroup_parent, uid(&node, "forks"));
    assert_eq!(read("pids", &pod_cgroup, "pids.max"), "32");

    node.finish(T);
}
