//! Ports of test/e2e/common/node/container_probe.go ("Probing container") against `peapod run`, with real
//! runc and the busybox image: readiness and liveness probes (exec, HTTP, TCP, timeouts). Timings are scaled
//! down (initial delays of seconds, not 15 s) and the upstream images replaced: agnhost's liveness server by
//! busybox httpd with a CGI script. Startup probes, terminating pods and sidecars: lifecycle_probes_startup.rs.
//!
//! Each test is named after the upstream `It`. Upstream's "should *not* be restarted with a GRPC liveness
//! probe" needs a gRPC health server, which busybox lacks: the gRPC handler is tested in probe_handlers.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::builder::{exec_probe, http_probe, tcp_probe};
use common::probing::{
    assert_event, assert_no_event, container, finish, has_event, holds_for, probed, ready, start_probed,
};
use common::{st, wait_for, Node};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// container_probe.go: "with readiness probe should not be ready before initial delay and never restart".
#[test]
fn with_readiness_probe_should_not_be_ready_before_initial_delay_and_never_restart() {
    let spec = container("c", "exec sleep 600").readiness(exec_probe(["/bin/true"]).delay(5).period(1));
    let node = start_probed("r", 2, spec);
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
    let spec = container("c", "exec sleep 600").readiness(exec_probe(["/bin/false"]).period(1));
    let node = start_probed("nr", 2, spec);
    node.wait_pod("nr", "running", T, |p| st::running(p, "c"));
    holds_for(&node, "nr", 6, "never ready, never restarted", |p| {
        !ready(p, "c") && st::restarts(p, "c") == 0 && st::phase(p) == "Running"
    });
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
    let spec = container("busybox", "echo ok >/tmp/health; exec sleep 600")
        .liveness(exec_probe(["cat", "/tmp/health"]).delay(2).period(1).failures(1));
    let node = start_probed("l", 2, spec);
    node.wait_pod("l", "running", T, |p| st::running(p, "busybox"));
    holds_for(&node, "l", 5, "not restarted", |p| {
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
    let spec = container("web", &web_server(3))
        .liveness(http_probe("/healthz", 8080).delay(1).period(1).failures(1));
    let node = start_probed("h", 2, spec);
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
    holds_for(&node, "t", 8, "not restarted", |p| st::restarts(p, "web") == 0);
    finish(node);
}

/// container_probe.go: "should be restarted with a local redirect http liveness probe".
#[test]
fn should_be_restarted_with_a_local_redirect_http_liveness_probe() {
    let probe = http_probe("/cgi-bin/redirect?/healthz", 8080)
        .delay(1)
        .period(1)
        .failures(1);
    let spec = container("web", &web_server(3)).liveness(probe);
    let node = start_probed("lr", 2, spec);
    node.wait_pod("lr", "restarted", T, |p| st::restarts(p, "web") >= 1);
    finish(node);
}

/// container_probe.go: "should *not* be restarted with a non-local redirect http liveness probe".
#[test]
fn should_not_be_restarted_with_a_non_local_redirect_http_liveness_probe() {
    let probe = http_probe("/cgi-bin/redirect?http://0.0.0.0/healthz", 8080)
        .delay(2)
        .period(1)
        .failures(3);
    let spec = container("web", &web_server(1)).liveness(probe);
    let node = start_probed("nl", 2, spec);
    node.wait_pod("nl", "running", T, |p| st::running(p, "web"));
    wait_for("ProbeWarning event", T, || {
        has_event(
            &node,
            "ProbeWarning",
            "Liveness probe warning: Probe terminated redirects",
        )
        .then_some(())
    });
    holds_for(&node, "nl", 5, "not restarted", |p| st::restarts(p, "web") == 0);
    finish(node);
}

/// container_probe.go: "should be restarted with an exec liveness probe with timeout".
#[test]
fn should_be_restarted_with_an_exec_liveness_probe_with_timeout() {
    let spec = container("c", "exec sleep 600").liveness(
        exec_probe(["sh", "-c", "sleep 10"])
            .delay(1)
            .timeout(1)
            .period(1)
            .failures(1),
    );
    let node = start_probed("to", 2, spec);
    node.wait_pod("to", "restarted", T, |p| st::restarts(p, "c") >= 1);
    assert_event(&node, "Unhealthy", "timed out");
    finish(node);
}

/// container_probe.go: "should not be ready with an exec readiness probe timeout".
#[test]
fn should_not_be_ready_with_an_exec_readiness_probe_timeout() {
    let spec =
        container("c", "exec sleep 600").readiness(exec_probe(["sh", "-c", "sleep 10"]).timeout(1).period(1));
    let node = start_probed("rt", 2, spec);
    node.wait_pod("rt", "running", T, |p| st::running(p, "c"));
    holds_for(&node, "rt", 5, "never ready", |p| {
        !ready(p, "c") && st::restarts(p, "c") == 0
    });
    finish(node);
}
