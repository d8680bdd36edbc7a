#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Ports of test/e2e/common/node/container_probe.go ("Probing container", "Probing restartable init
//! container") against `peapod run`: startup probes, probes of a terminating pod, and probes of sidecars.
//! Each test is named after the upstream `It`; readiness and liveness probes are in lifecycle_probes.rs.

mod common;

use std::time::{Duration, Instant};

use common::builder::{exec_probe, ContainerBuilder};
use common::probing::{
    assert_event, assert_no_event, container, finish, has_event, holds_for, probed, ready, start_probed,
    started,
};
use common::{c, pod, st, wait_for, Node};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// container_probe.go: "should be restarted startup probe fails".
#[test]
fn should_be_restarted_startup_probe_fails() {
    let spec = container("c", "exec sleep 600")
        .startup(exec_probe(["/bin/false"]).period(1).failures(3))
        .liveness(exec_probe(["/bin/true"]).period(1));
    let node = start_probed("s", 2, spec);
    let p = node.wait_pod("s", "running", T, |p| st::running(p, "c"));
    assert_eq!(
        st::container(&p, "c").started,
        Some(false),
        "not started before the startup probe passes"
    );
    node.wait_pod("s", "restarted", T, |p| st::restarts(p, "c") >= 1);
    assert_event(
        &node,
        "Killing",
        "Container c failed startup probe, will be restarted",
    );
    finish(node);
}

/// container_probe.go: "should *not* be restarted by liveness probe because startup probe delays it".
#[test]
fn should_not_be_restarted_by_liveness_probe_because_startup_probe_delays_it() {
    let spec = container("c", "exec sleep 600")
        .startup(exec_probe(["/bin/false"]).period(1).failures(60))
        .liveness(exec_probe(["/bin/false"]).period(1).failures(1));
    let node = start_probed("sd", 2, spec);
    node.wait_pod("sd", "running", T, |p| st::running(p, "c"));
    holds_for(&node, "sd", 5, "not restarted, not started", |p| {
        st::restarts(p, "c") == 0 && st::container(p, "c").started == Some(false)
    });
    assert_no_event(&node, "Unhealthy", "Liveness probe");
    finish(node);
}

/// container_probe.go: "should be restarted by liveness probe after startup probe enables it".
#[test]
fn should_be_restarted_by_liveness_probe_after_startup_probe_enables_it() {
    let spec = container("c", "sleep 3; echo ok > /tmp/startup; exec sleep 600")
        .startup(exec_probe(["cat", "/tmp/startup"]).period(1).failures(60))
        .liveness(exec_probe(["/bin/false"]).period(1).failures(1));
    let node = start_probed("se", 2, spec);
    let p = node.wait_pod("se", "restarted", T, |p| st::restarts(p, "c") >= 1);
    assert_eq!(
        st::restarts(&p, "c"),
        1,
        "the new instance waits for its startup probe again"
    );
    assert_event(
        &node,
        "Killing",
        "Container c failed liveness probe, will be restarted",
    );
    finish(node);
}

/// container_probe.go: "should be ready immediately after startupProbe succeeds".
#[test]
fn should_be_ready_immediately_after_startup_probe_succeeds() {
    let mut node = Node::new();
    // The readiness period is long: ready soon after the startup probe passes means readiness was probed
    // at once, not a period later.
    node.apply(
        "ri.yaml",
        &probed(
            "ri",
            2,
            container("c", "sleep 2; echo ok > /tmp/startup; exec sleep 600")
                .startup(exec_probe(["cat", "/tmp/startup"]).period(1).failures(60))
                .readiness(exec_probe(["/bin/true"]).period(120)),
        ),
    );
    node.start();
    let p = node.wait_pod("ri", "running", T, |p| st::running(p, "c"));
    assert!(
        !started(&p, "c") && !ready(&p, "c"),
        "neither started nor ready before the startup probe"
    );
    node.wait_pod("ri", "started", T, |p| started(p, "c"));
    node.wait_pod("ri", "ready", Duration::from_secs(30), |p| ready(p, "c"));
    finish(node);
}

/// container_probe.go: "should override timeoutGracePeriodSeconds when LivenessProbe field is set".
#[test]
fn should_override_timeout_grace_period_seconds_when_liveness_probe_field_is_set() {
    let mut node = Node::new();
    // The first instance ignores SIGTERM: only SIGKILL ends it, after the probe's 2 s, not the pod's 500 s.
    // Later instances (the volume remembers) pass the probe and stop on SIGTERM, so the test ends quickly.
    let script = "if [ -e /data/first ]; then touch /data/again; trap \"exit 0\" TERM; while true; do sleep 1; done; fi; touch /data/first; trap \"\" TERM; while true; do sleep 1; done";
    let spec = pod("g")
        .grace(500)
        .container(
            container("c", script)
                .liveness(
                    exec_probe(["sh", "-c", "test -e /data/again"])
                        .delay(1)
                        .period(1)
                        .failures(1)
                        .set("terminationGracePeriodSeconds", json!(2)),
                )
                .mount("data", "/data"),
        )
        .empty_dir("data");
    node.apply("g.yaml", &spec.manifest());
    node.start();
    let p = node.wait_pod("g", "restarted", T, |p| st::restarts(p, "c") >= 1);
    let t = st::container(&p, "c")
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .clone()
        .unwrap();
    assert_eq!(t.exit_code, 137, "killed at the probe's deadline");
    finish(node);
}

/// container_probe.go: "should mark readiness on pods to false and disable liveness probes while pod is in
/// progress of terminating".
#[test]
fn should_mark_readiness_on_pods_to_false_and_disable_liveness_probes_while_pod_is_in_progress_of_terminating(
) {
    let mut node = Node::new();
    // On SIGTERM the health file goes, the container keeps running for the rest of the grace period.
    let script = "touch /tmp/health; trap \"rm -f /tmp/health\" TERM; while true; do sleep 1; done";
    node.apply(
        "term.yaml",
        &probed(
            "term",
            8,
            container("c", script)
                .readiness(exec_probe(["/bin/true"]).period(1))
                .liveness(exec_probe(["cat", "/tmp/health"]).delay(2).period(1).failures(1)),
        ),
    );
    node.start();
    node.wait_pod("term", "ready", T, |p| ready(p, "c"));
    let deleted = Instant::now();
    node.delete("term.yaml");
    node.wait_pod("term", "not ready while terminating", T, |p| !ready(p, "c"));
    wait_for("the pod to go", T, || node.get("term").is_none().then_some(()));
    assert!(
        deleted.elapsed() >= Duration::from_secs(6),
        "stopped before the grace period"
    );
    assert!(
        !has_event(&node, "Killing", "failed liveness probe"),
        "liveness must be off while terminating: {}",
        node.supervisor_log()
    );
    finish(node);
}

/// A new node running a Pod with a sidecar `sidecar` (with `sidecar_probes`) and an app container `app`,
/// both running until SIGTERM.
fn start_sidecar_pod(name: &str, sidecar_probes: impl FnOnce(ContainerBuilder) -> ContainerBuilder) -> Node {
    let script = "trap \"exit 0\" TERM; while true; do sleep 1; done";
    let spec = pod(name)
        .grace(2)
        .sidecar(sidecar_probes(container("sidecar", script)))
        .container(c("app").sh(script));
    let mut node = Node::new();
    node.apply(&format!("{name}.yaml"), &spec.manifest());
    node.start();
    node
}

/// container_probe.go, "Probing restartable init container": "with readiness probe that fails should never
/// be ready and never restart".
#[test]
fn restartable_init_container_with_readiness_probe_that_fails_should_never_be_ready_and_never_restart() {
    let node = start_sidecar_pod("sr", |c| c.readiness(exec_probe(["/bin/false"]).period(1)));
    node.wait_pod("sr", "app running", T, |p| st::running(p, "app"));
    holds_for(&node, "sr", 5, "sidecar never ready", |p| {
        !ready(p, "sidecar") && st::restarts(p, "sidecar") == 0 && ready(p, "app")
    });
    let p = node.get("sr").unwrap();
    assert_eq!(st::condition(&p, "Ready").unwrap().status, "False");
    assert_eq!(
        st::condition(&p, "ContainersReady").unwrap().message.as_deref(),
        Some("containers with unready status: [sidecar]")
    );
    finish(node);
}

/// container_probe.go, "Probing restartable init container": "should be restarted with a exec \"cat
/// /tmp/health\" liveness probe" — only the sidecar restarts.
#[test]
fn restartable_init_container_should_be_restarted_with_a_exec_cat_tmp_health_liveness_probe() {
    let node = start_sidecar_pod("sl", |c| {
        c.liveness(exec_probe(["cat", "/tmp/health"]).delay(1).period(1).failures(1))
    });
    node.wait_pod("sl", "sidecar restarted", T, |p| st::restarts(p, "sidecar") >= 1);
    let p = node.wait_pod("sl", "app still running", T, |p| st::running(p, "app"));
    assert_eq!(st::restarts(&p, "app"), 0, "the app container is not touched");
    assert_event(&node, "Killing", "Init container sidecar failed liveness probe");
    finish(node);
}

/// container_probe.go, "Probing restartable init container": a sidecar's startup probe holds the app
/// containers back until it succeeds.
#[test]
fn restartable_init_container_startup_probe_gates_the_app_containers() {
    let node = start_sidecar_pod("ss", |c| {
        c.startup(
            exec_probe([
                "sh",
                "-c",
                "n=$(cat /tmp/n 2>/dev/null || echo 0); echo $((n+1)) > /tmp/n; test $n -ge 3",
            ])
            .period(1)
            .failures(30),
        )
    });
    let p = node.wait_pod("ss", "sidecar running", T, |p| st::running(p, "sidecar"));
    assert!(
        !st::running(&p, "app"),
        "the app must wait for the sidecar's startup probe"
    );
    let p = node.wait_pod("ss", "app running", T, |p| st::running(p, "app"));
    assert!(started(&p, "sidecar"));
    finish(node);
}
