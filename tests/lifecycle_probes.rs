//! Ports of test/e2e/common/node/container_probe.go ("Probing container") against `peapod run`, with real
//! runc and the busybox image. Timings are scaled down (initial delays of seconds, not 15 s) and the
//! upstream images replaced: agnhost's liveness server by busybox httpd with a CGI script.
//!
//! Each test is named after the upstream `It`. Upstream's "should *not* be restarted with a GRPC liveness
//! probe" needs a gRPC health server, which busybox lacks: the gRPC handler is tested in probe_handlers.rs.

mod common;

use std::time::{Duration, Instant};

use common::builder::ContainerBuilder;
use common::{c, pod, st, wait_for, Node};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

/// A Pod with one container and a grace period of `grace` seconds.
fn probed(name: &str, grace: i64, container: ContainerBuilder) -> String {
    pod(name).grace(grace).container(container).manifest()
}

/// A container running `script`, with the fields of `probes` (probes, ports, mounts) set.
fn container(name: &str, script: &str, probes: Value) -> ContainerBuilder {
    let Value::Object(fields) = probes else {
        panic!("probes must be an object: {probes}")
    };
    fields
        .into_iter()
        .fold(c(name).sh(script), |c, (k, v)| c.set(&k, v))
}

/// Whether the supervisor logged an event with `reason` whose line contains `fragment`.
fn has_event(node: &Node, reason: &str, fragment: &str) -> bool {
    node.supervisor_log()
        .lines()
        .any(|l| l.contains(&format!("reason={reason}")) && l.contains(fragment))
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
    assert!(node.stop(T).success());
    node.assert_clean();
}

/// container_probe.go: "with readiness probe should not be ready before initial delay and never restart".
#[test]
fn with_readiness_probe_should_not_be_ready_before_initial_delay_and_never_restart() {
    let mut node = Node::new();
    let probe = json!({
        "readinessProbe": {"exec": {"command": ["/bin/true"]}, "initialDelaySeconds": 5, "periodSeconds": 1}
    });
    node.apply("r.yaml", &probed("r", 2, container("c", "exec sleep 600", probe)));
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
    let probe = json!({"readinessProbe": {"exec": {"command": ["/bin/false"]}, "periodSeconds": 1}});
    node.apply(
        "nr.yaml",
        &probed("nr", 2, container("c", "exec sleep 600", probe)),
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
    assert!(
        has_event(&node, "Unhealthy", "Readiness probe failed"),
        "{}",
        node.supervisor_log()
    );
    finish(node);
}

/// container_probe.go: "should be restarted with a exec \"cat /tmp/health\" liveness probe".
#[test]
fn should_be_restarted_with_a_exec_cat_tmp_health_liveness_probe() {
    let mut node = Node::new();
    let probe = json!({
        "livenessProbe": {
            "exec": {"command": ["cat", "/tmp/health"]},
            "initialDelaySeconds": 1,
            "periodSeconds": 1,
            "failureThreshold": 1
        }
    });
    let script = "echo ok >/tmp/health; sleep 3; rm -f /tmp/health; exec sleep 600";
    node.apply("l.yaml", &probed("l", 2, container("busybox", script, probe)));
    node.start();
    let p = node.wait_pod("l", "restarted once", T, |p| st::restarts(p, "busybox") >= 1);
    let last = st::container(&p, "busybox").last_state.as_ref().unwrap();
    let t = last.terminated.as_ref().expect("last state terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (137, Some("Error")));
    assert!(
        has_event(
            &node,
            "Killing",
            "Container busybox failed liveness probe, will be restarted"
        ),
        "{}",
        node.supervisor_log()
    );
    assert!(
        has_event(
            &node,
            "Unhealthy",
            "Liveness probe failed: cat: can't open '/tmp/health'"
        ),
        "{}",
        node.supervisor_log()
    );
    finish(node);
}

/// container_probe.go: "should *not* be restarted with a exec \"cat /tmp/health\" liveness probe".
#[test]
fn should_not_be_restarted_with_a_exec_cat_tmp_health_liveness_probe() {
    let mut node = Node::new();
    let probe = json!({
        "livenessProbe": {
            "exec": {"command": ["cat", "/tmp/health"]},
            "initialDelaySeconds": 2,
            "periodSeconds": 1,
            "failureThreshold": 1
        }
    });
    node.apply(
        "l.yaml",
        &probed(
            "l",
            2,
            container("busybox", "echo ok >/tmp/health; exec sleep 600", probe),
        ),
    );
    node.start();
    node.wait_pod("l", "running", T, |p| st::running(p, "busybox"));
    holds_for(&node, "l", Duration::from_secs(5), "not restarted", |p| {
        st::restarts(p, "busybox") == 0 && ready(p, "busybox")
    });
    assert!(
        !has_event(&node, "Unhealthy", "Liveness"),
        "{}",
        node.supervisor_log()
    );
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
    let probe = json!({
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": 8080},
            "initialDelaySeconds": 1,
            "periodSeconds": 1,
            "failureThreshold": 1
        }
    });
    node.apply("h.yaml", &probed("h", 2, container("web", &web_server(3), probe)));
    node.start();
    node.wait_pod("h", "restarted", T, |p| st::restarts(p, "web") >= 1);
    assert!(
        has_event(
            &node,
            "Unhealthy",
            "Liveness probe failed: HTTP probe failed with statuscode: 404"
        ),
        "{}",
        node.supervisor_log()
    );
    finish(node);
}

/// container_probe.go: "should *not* be restarted with a tcp:8080 liveness probe".
#[test]
fn should_not_be_restarted_with_a_tcp_8080_liveness_probe() {
    let mut node = Node::new();
    let probe = json!({
        "livenessProbe": {
            "tcpSocket": {"port": "web"},
            "initialDelaySeconds": 2,
            "periodSeconds": 1,
            "failureThreshold": 3
        },
        "ports": [{"name": "web", "containerPort": 8080}]
    });
    // The HTTP answer is a 404 after the healthz file goes; the socket stays open.
    node.apply("t.yaml", &probed("t", 2, container("web", &web_server(1), probe)));
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
    let probe = json!({
        "livenessProbe": {
            "httpGet": {"path": "/cgi-bin/redirect?/healthz", "port": 8080},
            "initialDelaySeconds": 1,
            "periodSeconds": 1,
            "failureThreshold": 1
        }
    });
    node.apply(
        "lr.yaml",
        &probed("lr", 2, container("web", &web_server(3), probe)),
    );
    node.start();
    node.wait_pod("lr", "restarted", T, |p| st::restarts(p, "web") >= 1);
    finish(node);
}

/// container_probe.go: "should *not* be restarted with a non-local redirect http liveness probe".
#[test]
fn should_not_be_restarted_with_a_non_local_redirect_http_liveness_probe() {
    let mut node = Node::new();
    let probe = json!({
        "livenessProbe": {
            "httpGet": {"path": "/cgi-bin/redirect?http://0.0.0.0/healthz", "port": 8080},
            "initialDelaySeconds": 2,
            "periodSeconds": 1,
            "failureThreshold": 3
        }
    });
    node.apply(
        "nl.yaml",
        &probed("nl", 2, container("web", &web_server(1), probe)),
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
    let probe = json!({
        "livenessProbe": {
            "exec": {"command": ["sh", "-c", "sleep 10"]},
            "initialDelaySeconds": 1,
            "timeoutSeconds": 1,
            "periodSeconds": 1,
            "failureThreshold": 1
        }
    });
    node.apply(
        "to.yaml",
        &probed("to", 2, container("c", "exec sleep 600", probe)),
    );
    node.start();
    node.wait_pod("to", "restarted", T, |p| st::restarts(p, "c") >= 1);
    assert!(
        has_event(&node, "Unhealthy", "timed out"),
        "{}",
        node.supervisor_log()
    );
    finish(node);
}

/// container_probe.go: "should not be ready with an exec readiness probe timeout".
#[test]
fn should_not_be_ready_with_an_exec_readiness_probe_timeout() {
    let mut node = Node::new();
    let probe = json!({
        "readinessProbe": {"exec": {"command": ["sh", "-c", "sleep 10"]}, "timeoutSeconds": 1, "periodSeconds": 1}
    });
    node.apply(
        "rt.yaml",
        &probed("rt", 2, container("c", "exec sleep 600", probe)),
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
    let probes = json!({
        "startupProbe": {"exec": {"command": ["/bin/false"]}, "periodSeconds": 1, "failureThreshold": 3},
        "livenessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1}
    });
    node.apply(
        "s.yaml",
        &probed("s", 2, container("c", "exec sleep 600", probes)),
    );
    node.start();
    let p = node.wait_pod("s", "running", T, |p| st::running(p, "c"));
    assert_eq!(
        st::container(&p, "c").started,
        Some(false),
        "not started before the startup probe passes"
    );
    node.wait_pod("s", "restarted", T, |p| st::restarts(p, "c") >= 1);
    assert!(
        has_event(
            &node,
            "Killing",
            "Container c failed startup probe, will be restarted"
        ),
        "{}",
        node.supervisor_log()
    );
    finish(node);
}

/// container_probe.go: "should *not* be restarted by liveness probe because startup probe delays it".
#[test]
fn should_not_be_restarted_by_liveness_probe_because_startup_probe_delays_it() {
    let mut node = Node::new();
    let probes = json!({
        "startupProbe": {"exec": {"command": ["/bin/false"]}, "periodSeconds": 1, "failureThreshold": 60},
        "livenessProbe": {"exec": {"command": ["/bin/false"]}, "periodSeconds": 1, "failureThreshold": 1}
    });
    node.apply(
        "sd.yaml",
        &probed("sd", 2, container("c", "exec sleep 600", probes)),
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
    assert!(
        !has_event(&node, "Unhealthy", "Liveness probe"),
        "{}",
        node.supervisor_log()
    );
    finish(node);
}

/// container_probe.go: "should be restarted by liveness probe after startup probe enables it".
#[test]
fn should_be_restarted_by_liveness_probe_after_startup_probe_enables_it() {
    let mut node = Node::new();
    let probes = json!({
        "startupProbe": {"exec": {"command": ["cat", "/tmp/startup"]}, "periodSeconds": 1, "failureThreshold": 60},
        "livenessProbe": {"exec": {"command": ["/bin/false"]}, "periodSeconds": 1, "failureThreshold": 1}
    });
    node.apply(
        "se.yaml",
        &probed(
            "se",
            2,
            container("c", "sleep 3; echo ok > /tmp/startup; exec sleep 600", probes),
        ),
    );
    node.start();
    let p = node.wait_pod("se", "restarted", T, |p| st::restarts(p, "c") >= 1);
    assert_eq!(
        st::restarts(&p, "c"),
        1,
        "the new instance waits for its startup probe again"
    );
    assert!(
        has_event(
            &node,
            "Killing",
            "Container c failed liveness probe, will be restarted"
        ),
        "{}",
        node.supervisor_log()
    );
    finish(node);
}

/// container_probe.go: "should be ready immediately after startupProbe succeeds".
#[test]
fn should_be_ready_immediately_after_startup_probe_succeeds() {
    let mut node = Node::new();
    // The readiness period is long: ready soon after the startup probe passes means readiness was probed
    // at once, not a period later.
    let probes = json!({
        "startupProbe": {"exec": {"command": ["cat", "/tmp/startup"]}, "periodSeconds": 1, "failureThreshold": 60},
        "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 120}
    });
    node.apply(
        "ri.yaml",
        &probed(
            "ri",
            2,
            container("c", "sleep 2; echo ok > /tmp/startup; exec sleep 600", probes),
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
    let probe = json!({
        "livenessProbe": {
            "exec": {"command": ["sh", "-c", "test -e /data/again"]},
            "initialDelaySeconds": 1,
            "periodSeconds": 1,
            "failureThreshold": 1,
            "terminationGracePeriodSeconds": 2
        },
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
    });
    let script = "if [ -e /data/first ]; then touch /data/again; trap \"exit 0\" TERM; while true; do sleep 1; done; fi; touch /data/first; trap \"\" TERM; while true; do sleep 1; done";
    let spec = pod("g")
        .grace(500)
        .container(container("c", script, probe))
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
    let probes = json!({
        "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1},
        "livenessProbe": {
            "exec": {"command": ["cat", "/tmp/health"]},
            "initialDelaySeconds": 2,
            "periodSeconds": 1,
            "failureThreshold": 1
        }
    });
    let script = "touch /tmp/health; trap \"rm -f /tmp/health\" TERM; while true; do sleep 1; done";
    node.apply("term.yaml", &probed("term", 8, container("c", script, probes)));
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
fn sidecar_pod(name: &str, sidecar_probes: Value) -> String {
    let script = "trap \"exit 0\" TERM; while true; do sleep 1; done";
    pod(name)
        .grace(2)
        .sidecar(container("sidecar", script, sidecar_probes))
        .container(c("app").sh(script))
        .manifest()
}

/// container_probe.go, "Probing restartable init container": "with readiness probe that fails should never
/// be ready and never restart".
#[test]
fn restartable_init_container_with_readiness_probe_that_fails_should_never_be_ready_and_never_restart() {
    let mut node = Node::new();
    let probe = json!({"readinessProbe": {"exec": {"command": ["/bin/false"]}, "periodSeconds": 1}});
    node.apply("sr.yaml", &sidecar_pod("sr", probe));
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
    let probe = json!({
        "livenessProbe": {
            "exec": {"command": ["cat", "/tmp/health"]},
            "initialDelaySeconds": 1,
            "periodSeconds": 1,
            "failureThreshold": 1
        }
    });
    node.apply("sl.yaml", &sidecar_pod("sl", probe));
    node.start();
    node.wait_pod("sl", "sidecar restarted", T, |p| st::restarts(p, "sidecar") >= 1);
    let p = node.wait_pod("sl", "app still running", T, |p| st::running(p, "app"));
    assert_eq!(st::restarts(&p, "app"), 0, "the app container is not touched");
    assert!(
        has_event(&node, "Killing", "Init container sidecar failed liveness probe"),
        "{}",
        node.supervisor_log()
    );
    finish(node);
}

/// container_probe.go, "Probing restartable init container": a sidecar's startup probe holds the app
/// containers back until it succeeds.
#[test]
fn restartable_init_container_startup_probe_gates_the_app_containers() {
    let mut node = Node::new();
    let probe = json!({
        "startupProbe": {
            "exec": {
                "command": [
                    "sh",
                    "-c",
                    "n=$(cat /tmp/n 2>/dev/null || echo 0); echo $((n+1)) > /tmp/n; test $n -ge 3"
                ]
            },
            "periodSeconds": 1,
            "failureThreshold": 30
        }
    });
    node.apply("ss.yaml", &sidecar_pod("ss", probe));
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
