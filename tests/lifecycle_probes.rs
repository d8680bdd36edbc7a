//! Ports of test/e2e/common/node/container_probe.go ("Probing container") against `peapod run`, with real
//! runc and the busybox image. Timings are scaled down (initial delays of seconds, not 15 s) and the
//! upstream images replaced: agnhost's liveness server by busybox httpd with a CGI script.
//!
//! Each test is named after the upstream `It`. Upstream's "should *not* be restarted with a GRPC liveness
//! probe" needs a gRPC health server, which busybox lacks: the gRPC handler is tested in probe_handlers.rs.

mod common;

use std::time::{Duration, Instant};

use common::builder::{exec_probe, http_probe, tcp_probe, ContainerBuilder};
use common::{c, pod, st, wait_for, Node};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// A Pod with one container and a grace period of `grace` seconds.
fn probed(name: &str, grace: i64, container: ContainerBuilder) -> String {
    pod(name).grace(grace).container(container).manifest()
}

/// A container running `script` with `sh -c`.
fn container(name: &str, script: &str) -> ContainerBuilder {
    c(name).sh(script)
}

/// Whether the supervisor logged an event with `reason` whose line contains `fragment`.
fn has_event(node: &Node, reason: &str, fragment: &str) -> bool {
    node.supervisor_log()
        .lines()
        .any(|l| l.contains(&format!("reason={reason}")) && l.contains(fragment))
}

/// Asserts that the supervisor logged an event with `reason` whose line contains `fragment`.
fn assert_event(node: &Node, reason: &str, fragment: &str) {
    assert!(has_event(node, reason, fragment), "{}", node.supervisor_log());
}

/// Asserts that the supervisor logged no event with `reason` whose line contains `fragment`.
fn assert_no_event(node: &Node, reason: &str, fragment: &str) {
    assert!(!has_event(node, reason, fragment), "{}", node.supervisor_log());
}

fn ready(p: &peapod::api::PodGroup, c: &str) -> bool {
    st::try_container(p, c).is_some_and(|s| s.ready)
}

fn started(p: &peapod::api::PodGroup, c: &str) -> bool {
    st::try_container(p, c).and_then(|s| s.started) == Some(true)
}

/// Samples the pod for `d` and asserts `pred` held at every sample.
fn holds_for(
    node: &Node,
    name: &str,
    d: Duration,
    what: &str,
    pred: impl Fn(&peapod::api::PodGroup) -> bool,
) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        let p = node.get(name).expect("pod status");
        assert!(pred(&p), "{what}: {:?}", p.status);
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn finish(mut node: Node) {
    node.finish(T);
}

/// container_probe.go: "with readiness probe should not be ready before initial delay and never restart".
#[test]
fn with_readiness_probe_should_not_be_ready_before_initial_delay_and_never_restart() {
    let mut node = Node::new();
    node.apply(
        "r.yaml",
        &probed(
            "r",
            2,
            container("c", "exec sleep 600").readiness(exec_probe(["/bin/true"]).delay(5).period(1)),
        ),
    );
    node.start();
    let p = node.wait_pod("r", "running", T, |p| st::running(p, "c"));
    assert!(!ready(&p, "c"), "ready before the initial delay");
    assert_eq!(st::condition(&p, "Ready").unwrap().status, "False");
    let p = node.wait_pod("r", "ready", T, |p| ready(p, "c"));
    let started = st::container(&p, "c")
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .unwrap()
        .0;
    let became_ready = st::condition(&p, "Ready")
        .unwrap()
        .last_transition_time
        .as_ref()
        .unwrap()
        .0;
    assert!(
        became_ready.as_second() - started.as_second() >= 4,
        "ready at {became_ready}, started at {started}: the initial delay is 5 s"
    );
    assert_eq!(st::restarts(&p, "c"), 0);
    assert_eq!(
        p.status.as_ref().unwrap().ready_containers.as_deref(),
        Some("1/1")
    );
    finish(node);
}

/// container_probe.go: "with readiness probe that fails should never be ready and never restart".
#[test]
fn with_readiness_probe_that_fails_should_never_be_ready_and_never_restart() {
    let mut node = Node::new();
    node.apply(
        "nr.yaml",
        &probed(
            "nr",
            2,
            container("c", "exec sleep 600").readiness(exec_probe(["/bin/false"]).period(1)),
        ),
    );
    node.start();
    node.wait_pod("nr", "running", T, |p| st::running(p, "c"));
    holds_for(
        &node,
        "nr",
        Duration::from_secs(6),
        "never ready, never restarted",
        |p| !ready(p, "c") && st::restarts(p, "c") == 0 && st::phase(p) == "Running",
    );
    let p = node.get("nr").unwrap();
    let cond = st::condition(&p, "ContainersReady").unwrap();
    assert_eq!(cond.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(
        cond.message.as_deref(),
        Some("containers with unready status: [c]")
    );
    assert_event(&node, "Unhealthy", "Readiness probe failed");
    finish(node);
}

/// container_probe.go: "should be restarted with a exec \"cat /tmp/health\" liveness probe".
#[test]
fn should_be_restarted_with_a_exec_cat_tmp_health_liveness_probe() {
    let mut node = Node::new();
    let script = "echo ok >/tmp/health; sleep 3; rm -f /tmp/health; exec sleep 600";
    node.apply(
        "l.yaml",
        &probed(
            "l",
            2,
            container("busybox", script)
                .liveness(exec_probe(["cat", "/tmp/health"]).delay(1).period(1).failures(1)),
        ),
    );
    node.start();
    let p = node.wait_pod("l", "restarted once", T, |p| st::restarts(p, "busybox") >= 1);
    let last = st::container(&p, "busybox").last_state.as_ref().unwrap();
    let t = last.terminated.as_ref().expect("last state terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (137, Some("Error")));
    assert_event(
        &node,
        "Killing",
        "Container busybox failed liveness probe, will be restarted",
    );
    assert_event(
        &node,
        "Unhealthy",
        "Liveness probe failed: cat: can't open '/tmp/health'",
    );
    finish(node);
}

/// container_probe.go: "should *not* be restarted with a exec \"cat /tmp/health\" liveness probe".
#[test]
fn should_not_be_restarted_with_a_exec_cat_tmp_health_liveness_probe() {
    let mut node = Node::new();
    node.apply(
        "l.yaml",
        &probed(
            "l",
            2,
            container("busybox", "echo ok >/tmp/health; exec sleep 600")
                .liveness(exec_probe(["cat", "/tmp/health"]).delay(2).period(1).failures(1)),
        ),
    );
    node.start();
    node.wait_pod("l", "running", T, |p| st::running(p, "busybox"));
    holds_for(&node, "l", Duration::from_secs(5), "not restarted", |p| {
        st::restarts(p, "busybox") == 0 && ready(p, "busybox")
    });
    assert_no_event(&node, "Unhealthy", "Liveness");
    finish(node);
}

/// A busybox httpd on :8080 whose `/healthz` exists for `healthy_for` seconds, and a CGI redirect.
fn web_server(healthy_for: u32) -> String {
    format!(
        "mkdir -p /www/cgi-bin; echo ok > /www/healthz; \
printf \"#!/bin/sh\\necho Status: 302 Found\\necho Location: \\$QUERY_STRING\\necho\\n\" > /www/cgi-bin/redirect; \
chmod +x /www/cgi-bin/redirect; httpd -p 8080 -h /www; sleep {healthy_for}; rm /www/healthz; exec sleep 600"
    )
}

/// container_probe.go: "should be restarted with a /healthz http liveness probe".
#[test]
fn should_be_restarted_with_a_healthz_http_liveness_probe() {
    let mut node = Node::new();
    node.apply(
        "h.yaml",
        &probed(
            "h",
            2,
            container("web", &web_server(3))
                .liveness(http_probe("/healthz", 8080).delay(1).period(1).failures(1)),
        ),
    );
    node.start();
    node.wait_pod("h", "restarted", T, |p| st::restarts(p, "web") >= 1);
    assert_event(
        &node,
        "Unhealthy",
        "Liveness probe failed: HTTP probe failed with statuscode: 404",
    );
    finish(node);
}

/// container_probe.go: "should *not* be restarted with a tcp:8080 liveness probe".
#[test]
fn should_not_be_restarted_with_a_tcp_8080_liveness_probe() {
    let mut node = Node::new();
    // The HTTP answer is a 404 after the healthz file goes; the socket stays open.
    node.apply(
        "t.yaml",
        &probed(
            "t",
            2,
            container("web", &web_server(1))
                .liveness(tcp_probe(json!("web")).delay(2).period(1).failures(3))
                .set("ports", json!([{"name": "web", "containerPort": 8080}])),
        ),
    );
    node.start();
    node.wait_pod("t", "running", T, |p| st::running(p, "web"));
    holds_for(&node, "t", Duration::from_secs(8), "not restarted", |p| {
        st::restarts(p, "web") == 0
    });
    finish(node);
}

/// container_probe.go: "should be restarted with a local redirect http liveness probe".
#[test]
fn should_be_restarted_with_a_local_redirect_http_liveness_probe() {
    let mut node = Node::new();
    node.apply(
        "lr.yaml",
        &probed(
            "lr",
            2,
            container("web", &web_server(3)).liveness(
                http_probe("/cgi-bin/redirect?/healthz", 8080)
                    .delay(1)
                    .period(1)
                    .failures(1),
            ),
        ),
    );
    node.start();
    node.wait_pod("lr", "restarted", T, |p| st::restarts(p, "web") >= 1);
    finish(node);
}

/// container_probe.go: "should *not* be restarted with a non-local redirect http liveness probe".
#[test]
fn should_not_be_restarted_with_a_non_local_redirect_http_liveness_probe() {
    let mut node = Node::new();
    node.apply(
        "nl.yaml",
        &probed(
            "nl",
            2,
            container("web", &web_server(1)).liveness(
                http_probe("/cgi-bin/redirect?http://0.0.0.0/healthz", 8080)
                    .delay(2)
                    .period(1)
                    .failures(3),
            ),
        ),
    );
    node.start();
    node.wait_pod("nl", "running", T, |p| st::running(p, "web"));
    wait_for("ProbeWarning event", T, || {
        has_event(
            &node,
            "ProbeWarning",
            "Liveness probe warning: Probe terminated redirects",
        )
        .then_some(())
    });
    holds_for(&node, "nl", Duration::from_secs(5), "not restarted", |p| {
        st::restarts(p, "web") == 0
    });
    finish(node);
}

/// container_probe.go: "should be restarted with an exec liveness probe with timeout".
#[test]
fn should_be_restarted_with_an_exec_liveness_probe_with_timeout() {
    let mut node = Node::new();
    node.apply(
        "to.yaml",
        &probed(
            "to",
            2,
            container("c", "exec sleep 600").liveness(
                exec_probe(["sh", "-c", "sleep 10"])
                    .delay(1)
                    .timeout(1)
                    .period(1)
                    .failures(1),
            ),
        ),
    );
    node.start();
    node.wait_pod("to", "restarted", T, |p| st::restarts(p, "c") >= 1);
    assert_event(&node, "Unhealthy", "timed out");
    finish(node);
}

/// container_probe.go: "should not be ready with an exec readiness probe timeout".
#[test]
fn should_not_be_ready_with_an_exec_readiness_probe_timeout() {
    let mut node = Node::new();
    node.apply(
        "rt.yaml",
        &probed(
            "rt",
            2,
            container("c", "exec sleep 600")
                .readiness(exec_probe(["sh", "-c", "sleep 10"]).timeout(1).period(1)),
        ),
    );
    node.start();
    node.wait_pod("rt", "running", T, |p| st::running(p, "c"));
    holds_for(&node, "rt", Duration::from_secs(5), "never ready", |p| {
        !ready(p, "c") && st::restarts(p, "c") == 0
    });
    finish(node);
}

/// container_probe.go: "should be restarted startup probe fails".
#[test]
fn should_be_restarted_startup_probe_fails() {
    let mut node = Node::new();
    node.apply(
        "s.yaml",
        &probed(
            "s",
            2,
            container("c", "exec sleep 600")
                .startup(exec_probe(["/bin/false"]).period(1).failures(3))
                .liveness(exec_probe(["/bin/true"]).period(1)),
        ),
    );
    node.start();
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
    let mut node = Node::new();
    node.apply(
        "sd.yaml",
        &probed(
            "sd",
            2,
            container("c", "exec sleep 600")
                .startup(exec_probe(["/bin/false"]).period(1).failures(60))
                .liveness(exec_probe(["/bin/false"]).period(1).failures(1)),
        ),
    );
    node.start();
    node.wait_pod("sd", "running", T, |p| st::running(p, "c"));
    holds_for(
        &node,
        "sd",
        Duration::from_secs(5),
        "not restarted, not started",
        |p| st::restarts(p, "c") == 0 && st::container(p, "c").started == Some(false),
    );
    assert_no_event(&node, "Unhealthy", "Liveness probe");
    finish(node);
}

/// container_probe.go: "should be restarted by liveness probe after startup probe enables it".
#[test]
fn should_be_restarted_by_liveness_probe_after_startup_probe_enables_it() {
    let mut node = Node::new();
    node.apply(
        "se.yaml",
        &probed(
            "se",
            2,
            container("c", "sleep 3; echo ok > /tmp/startup; exec sleep 600")
                .startup(exec_probe(["cat", "/tmp/startup"]).period(1).failures(60))
                .liveness(exec_probe(["/bin/false"]).period(1).failures(1)),
        ),
    );
    node.start();
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

/// A Pod with a sidecar `sidecar` (with `sidecar_probes`) and an app container `app`, both running until
/// SIGTERM.
fn sidecar_pod(name: &str, sidecar_probes: impl FnOnce(ContainerBuilder) -> ContainerBuilder) -> String {
    let script = "trap \"exit 0\" TERM; while true; do sleep 1; done";
    pod(name)
        .grace(2)
        .sidecar(sidecar_probes(container("sidecar", script)))
        .container(c("app").sh(script))
        .manifest()
}

/// container_probe.go, "Probing restartable init container": "with readiness probe that fails should never
/// be ready and never restart".
#[test]
fn restartable_init_container_with_readiness_probe_that_fails_should_never_be_ready_and_never_restart() {
    let mut node = Node::new();
    node.apply(
        "sr.yaml",
        &sidecar_pod("sr", |c| c.readiness(exec_probe(["/bin/false"]).period(1))),
    );
    node.start();
    node.wait_pod("sr", "app running", T, |p| st::running(p, "app"));
    holds_for(&node, "sr", Duration::from_secs(5), "sidecar never ready", |p| {
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
    let mut node = Node::new();
    node.apply(
        "sl.yaml",
        &sidecar_pod("sl", |c| {
            c.liveness(exec_probe(["cat", "/tmp/health"]).delay(1).period(1).failures(1))
        }),
    );
    node.start();
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
    let mut node = Node::new();
    node.apply(
        "ss.yaml",
        &sidecar_pod("ss", |c| {
            c.startup(
                exec_probe([
                    "sh",
                    "-c",
                    "n=$(cat /tmp/n 2>/dev/null || echo 0); echo $((n+1)) > /tmp/n; test $n -ge 3",
                ])
                .period(1)
                .failures(30),
            )
        }),
    );
    node.start();
    let p = node.wait_pod("ss", "sidecar running", T, |p| st::running(p, "sidecar"));
    assert!(
        !st::running(&p, "app"),
        "the app must wait for the sidecar's startup probe"
    );
    let p = node.wait_pod("ss", "app running", T, |p| st::running(p, "app"));
    assert!(started(&p, "sidecar"));
    finish(node);
}
