//! Probes, lifecycle hooks and native sidecars as a cluster user sees them: a real kube-apiserver, one fake
//! node and its `peapod agent`, everything checked through `kubectl` (status, conditions, printer columns,
//! core/v1 Events). Where a scenario depends on a moment (a readiness probe starting to pass, an app
//! finishing), the test makes that moment happen itself by creating a file in a hostPath directory the
//! probe or container polls, so no assertion depends on the timing of the agent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::builder::{exec_probe, ContainerBuilder, PodBuilder};
use common::cluster::{deletion_versions, has_event, raw_container, OneNode};
use common::{c, pod, st, wait_for};
use peapod::api::PodGroup;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(90);
const NS: &str = "default";

/// Runs until SIGTERM, then exits 0 at once.
const SLEEPER: &str = "trap \"exit 0\" TERM; while true; do sleep 0.2; done";

/// A PodGroup in `default` with a 3 s grace period and the hostPath volume `host` at `dir`.
fn podgroup(name: &str, dir: &Path) -> PodBuilder {
    pod(name)
        .namespace(NS)
        .grace(3)
        .volume("host", json!({"hostPath": {"path": dir, "type": "Directory"}}))
}

/// One busybox container `name` running `script` with `sh -c`, the hostPath volume at `/host`.
fn container(name: &str, script: &str) -> ContainerBuilder {
    c(name).sh(script).mount("host", "/host")
}

/// An exec handler running `script` with `sh -c`.
fn exec(script: &str) -> Value {
    json!({"command": ["sh", "-c", script]})
}

/// One node running the PodGroup `name` that `spec` makes of `podgroup(name, dir)`, `dir` a fresh directory.
fn up_with(name: &str, spec: impl FnOnce(PodBuilder) -> PodBuilder) -> (OneNode, tempfile::TempDir) {
    let c = OneNode::up();
    let dir = hostdir();
    c.cp.apply(&spec(podgroup(name, dir.path())).podgroup_manifest());
    (c, dir)
}

fn ready_column(p: &PodGroup) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.ready_containers.clone())
        .unwrap_or_default()
}

/// The `(status, reason, message)` of a pod condition.
fn cond(p: &PodGroup, t: &str) -> (String, Option<String>, Option<String>) {
    let c = st::condition(p, t).unwrap_or_else(|| panic!("no {t} condition"));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

/// The READY column of `kubectl get pg NAME`.
fn kubectl_ready(c: &OneNode, name: &str) -> String {
    let table = c.cp.kubectl_ok(&["get", "pg", name, "-n", NS, "--no-headers"]);
    table.split_whitespace().nth(1).unwrap_or_default().to_string()
}

fn touch(dir: &Path, file: &str) {
    std::fs::write(dir.join(file), b"").unwrap();
}

/// Waits for the `Unhealthy` Event of a failed `kind` probe (`Readiness`, `Startup`) of container `c` (whose
/// probe prints `not yet`), and returns the Events about the pod.
fn wait_for_probe_failure(c: &OneNode, name: &str, kind: &str) -> Vec<Value> {
    // The kubelet puts the exec probe's whole output, newline included, in the message.
    let message = format!("{kind} probe failed: not yet\n");
    let events = wait_for(&format!("{kind} probe failing"), T, || {
        let e = c.cp.events_about(NS, name);
        e.iter()
            .any(|e| {
                e["reason"] == "Unhealthy" && e["message"].as_str().is_some_and(|m| m.starts_with(&message))
            })
            .then_some(e)
    });
    let e = events.iter().find(|e| e["reason"] == "Unhealthy").unwrap();
    assert_eq!(e["type"], "Warning");
    assert_eq!(e["involvedObject"]["fieldPath"], "spec.containers{c}");
    events
}

fn hostdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("peapod-cl-probes-")
        .tempdir()
        .unwrap()
}

/// A readiness probe keeps Ready and ContainersReady False (ContainersNotReady, listing the container) and
/// READY at 0/1 while it fails; once it passes both conditions turn True and READY shows 1/1.
#[test]
fn readiness_probe_gates_ready_conditions_and_column() {
    let probe = exec_probe(["sh", "-c", "test -e /host/ready || { echo not yet; exit 1; }"]).period(1);
    let (c, dir) = up_with("ready", |pg| {
        pg.container(container("c", SLEEPER).readiness(probe))
    });
    let cp = &c.cp;

    let not_ready = (
        "False".to_string(),
        Some("ContainersNotReady".to_string()),
        Some("containers with unready status: [c]".to_string()),
    );
    // Running, and the probe has run and failed (its Unhealthy event is out).
    let p = cp.wait_pg(NS, "ready", "running, not ready", T, |p| {
        st::running(p, "c") && st::condition(p, "Ready").is_some_and(|c| c.status == "False")
    });
    let events = wait_for_probe_failure(&c, "ready", "Readiness");
    let p2 = cp.get(NS, "ready").unwrap();
    for p in [&p, &p2] {
        assert!(st::running(p, "c"));
        assert!(!st::container(p, "c").ready);
        assert_eq!(cond(p, "Ready"), not_ready);
        assert_eq!(cond(p, "ContainersReady"), not_ready);
        assert_eq!(ready_column(p), "0/1");
    }
    assert_eq!(kubectl_ready(&c, "ready"), "0/1");
    assert!(
        !has_event(&events, "Killing", None),
        "readiness never kills: {events:#?}"
    );

    touch(dir.path(), "ready");
    let p = cp.wait_pg(NS, "ready", "Ready", T, |p| st::container(p, "c").ready);
    for t in ["Ready", "ContainersReady"] {
        assert_eq!(cond(&p, t), ("True".to_string(), None, None), "{t}");
    }
    assert_eq!(ready_column(&p), "1/1");
    assert_eq!(kubectl_ready(&c, "ready"), "1/1");
    assert_eq!(st::restarts(&p, "c"), 0, "readiness never restarts");
    c.finish_with_status_writes_ok();
}

/// A failing liveness probe: `Unhealthy` ("Liveness probe failed: <output>") and `Killing` ("Container c
/// failed liveness probe, will be restarted") Events on `spec.containers{c}`, the container killed (it ignores
/// SIGTERM: 137 after the grace period) and restarted.
#[test]
fn liveness_failure_kills_and_restarts_with_events() {
    let stubborn = "trap \"\" TERM; while true; do sleep 0.2; done";
    let probe = exec_probe(["sh", "-c", "echo not alive; exit 1"])
        .period(1)
        .failures(2);
    let (c, _dir) = up_with("live", |pg| {
        pg.container(container("c", stubborn).liveness(probe))
    });
    let cp = &c.cp;

    let p = cp.wait_pg(NS, "live", "restarted", T, |p| st::restarts(p, "c") >= 1);
    assert_eq!(st::phase(&p), "Running");
    let last = st::container(&p, "c")
        .last_state
        .clone()
        .and_then(|s| s.terminated)
        .expect("lastState.terminated");
    assert_eq!((last.exit_code, last.reason.as_deref()), (137, Some("Error")));
    let raw = cp.get_json(NS, "live").unwrap();
    assert_eq!(
        raw_container(&raw, "c")["lastState"]["terminated"]["exitCode"],
        137
    );

    let events = wait_for("Unhealthy and Killing events", T, || {
        let e = cp.events_about(NS, "live");
        (has_event(&e, "Unhealthy", None) && has_event(&e, "Killing", None)).then_some(e)
    });
    let find = |reason: &str| -> &Value { events.iter().find(|e| e["reason"] == reason).unwrap() };
    let unhealthy = find("Unhealthy");
    assert_eq!(unhealthy["type"], "Warning");
    assert_eq!(unhealthy["involvedObject"]["fieldPath"], "spec.containers{c}");
    assert_eq!(unhealthy["message"], "Liveness probe failed: not alive\n");
    let killing = find("Killing");
    assert_eq!(killing["type"], "Normal");
    assert_eq!(killing["involvedObject"]["fieldPath"], "spec.containers{c}");
    assert_eq!(
        killing["message"],
        "Container c failed liveness probe, will be restarted"
    );
    c.finish_with_status_writes_ok();
}

/// A startup probe: `started` stays false (and the container unready) while it fails, turns true once it
/// passes; the container is never restarted meanwhile.
#[test]
fn startup_probe_gates_started() {
    let probe = exec_probe(["sh", "-c", "test -e /host/started || { echo not yet; exit 1; }"])
        .period(1)
        .failures(60);
    let (c, dir) = up_with("startup", |pg| {
        pg.container(container("c", SLEEPER).startup(probe))
    });
    let cp = &c.cp;

    cp.wait_pg(NS, "startup", "running", T, |p| st::running(p, "c"));
    wait_for_probe_failure(&c, "startup", "Startup");
    let p = cp.get(NS, "startup").unwrap();
    assert!(st::running(&p, "c"));
    assert_eq!(st::container(&p, "c").started, Some(false));
    assert!(!st::container(&p, "c").ready);
    let raw = cp.get_json(NS, "startup").unwrap();
    assert_eq!(raw_container(&raw, "c")["started"], false);

    touch(dir.path(), "started");
    let p = cp.wait_pg(NS, "startup", "started", T, |p| {
        st::container(p, "c").started == Some(true)
    });
    assert_eq!(st::restarts(&p, "c"), 0);
    // No readiness probe: ready as soon as started.
    let p = cp.wait_pg(NS, "startup", "ready", T, |p| st::container(p, "c").ready);
    assert_eq!(ready_column(&p), "1/1");
    c.finish_with_status_writes_ok();
}

/// A failing postStart hook: a `FailedPostStartHook` Warning with the fixed message "PostStartHook failed" (the
/// hook's output never reaches an Event, it may hold secrets) and the container is killed (`Killing` with the
/// message "FailedPostStartHook") and restarted.
#[test]
fn post_start_failure_restarts_without_leaking_output() {
    let hook = json!({"postStart": {"exec": exec("echo hook-secret-output; exit 1")}});
    let (c, _dir) = up_with("poststart", |pg| {
        pg.container(container("c", SLEEPER).set("lifecycle", hook))
    });
    let cp = &c.cp;

    cp.wait_pg(NS, "poststart", "restarted", T, |p| st::restarts(p, "c") >= 1);
    let events = wait_for("FailedPostStartHook event", T, || {
        let e = cp.events_about(NS, "poststart");
        has_event(&e, "FailedPostStartHook", Some("spec.containers{c}")).then_some(e)
    });
    let e = events
        .iter()
        .find(|e| e["reason"] == "FailedPostStartHook")
        .unwrap();
    assert_eq!(e["type"], "Warning");
    assert_eq!(e["message"], "PostStartHook failed");
    // The kubelet kills the container with the message "FailedPostStartHook" (killContainer's Killing event).
    let killing = events
        .iter()
        .find(|e| e["reason"] == "Killing")
        .unwrap_or_else(|| panic!("no Killing event: {events:#?}"));
    assert_eq!(killing["message"], "FailedPostStartHook");
    assert_eq!(killing["involvedObject"]["fieldPath"], "spec.containers{c}");
    let all = cp.items("events", NS);
    for e in &all {
        let text = e.to_string();
        assert!(
            !text.contains("hook-secret-output"),
            "hook output in an Event: {e:#}"
        );
    }
    c.finish_with_status_writes_ok();
}

/// `kubectl delete` of a pod with a preStop hook: the hook runs to completion before the container gets
/// SIGTERM (both append to a hostPath file), the container is still running while the deletion is under
/// way, and once terminal the status stays terminal on every later version, the DELETED one included.
#[test]
fn pre_stop_runs_before_sigterm_on_delete() {
    let script = "trap \"echo term >> /host/log; exit 0\" TERM; while true; do sleep 0.2; done";
    let pre_stop = exec("echo prestop-begin >> /host/log; sleep 1; echo prestop-end >> /host/log");
    let (c, dir) = up_with("prestop", |pg| {
        pg.container(container("c", script).set("lifecycle", json!({"preStop": {"exec": pre_stop}})))
    });
    let cp = &c.cp;
    cp.wait_pg(NS, "prestop", "running", T, |p| st::running(p, "c"));

    let seen = cp.watch_until_deleted(NS, "prestop", T, || {
        cp.kubectl_ok(&["delete", "podgroup", "prestop", "-n", NS, "--wait=false"]);
    });
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
    assert_eq!(log, "prestop-begin\nprestop-end\nterm\n", "hook, then SIGTERM");

    let (versions, deleting) = deletion_versions(seen);
    assert!(st::running(&deleting, "c"), "deletion is graceful");
    let first_terminal = versions
        .iter()
        .position(|(_, p)| st::phase(p) == "Succeeded")
        .expect("a Succeeded version before removal");
    for (kind, p) in &versions[first_terminal..] {
        assert_eq!(st::phase(p), "Succeeded", "{kind}: terminal status kept");
        let t = st::terminated(p, "c").expect("c terminated");
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    }
    assert_eq!(versions.last().unwrap().0, "DELETED");
    let events = cp.events_about(NS, "prestop");
    assert!(
        !has_event(&events, "FailedPreStopHook", None),
        "the hook succeeded: {events:#?}"
    );
    c.finish_with_status_writes_ok();
}

/// A native sidecar (initContainers[0] with restartPolicy Always) in a restartPolicy Never pod: it runs beside
/// the app, is reported in initContainerStatuses and counted in READY as kubectl counts it (2/2), and the pod
/// reaches Succeeded once the app exits 0, the sidecar stopped.
#[test]
fn native_sidecar_runs_beside_the_app_until_it_succeeds() {
    let app = container("app", "while [ ! -e /host/done ]; do sleep 0.2; done; exit 0");
    let (c, dir) = up_with("sidecar", |pg| {
        pg.restart_never()
            .sidecar(container("side", SLEEPER))
            .container(app)
    });
    let cp = &c.cp;

    let p = cp.wait_pg(NS, "sidecar", "both running and ready", T, |p| {
        st::running(p, "side") && st::running(p, "app") && ready_column(p) == "2/2"
    });
    assert_eq!(st::phase(&p), "Running");
    let raw = cp.get_json(NS, "sidecar").unwrap();
    let side = raw["status"]["initContainerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "side"))
        .unwrap_or_else(|| panic!("side not in initContainerStatuses: {}", raw["status"]));
    assert_eq!(
        (&side["started"], &side["ready"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    assert!(side["state"]["running"].is_object(), "{side}");
    assert!(
        !raw["status"]["containerStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "side"),
        "a sidecar is not an app container"
    );
    assert_eq!(cond(&p, "Initialized").0, "True");
    assert_eq!(kubectl_ready(&c, "sidecar"), "2/2");

    touch(dir.path(), "done");
    let p = cp.wait_pg(NS, "sidecar", "Succeeded", T, |p| {
        st::phase(p) == "Succeeded" && st::terminated(p, "side").is_some()
    });
    let app = st::terminated(&p, "app").expect("app terminated");
    assert_eq!((app.exit_code, app.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(st::restarts(&p, "side"), 0);
    // The sidecar is stopped once the app is done: SIGTERM, on which it exits 0.
    let side = st::terminated(&p, "side").unwrap();
    assert_eq!((side.exit_code, side.reason.as_deref()), (0, Some("Completed")));
    let events = wait_for("Killing event of the sidecar", T, || {
        let e = cp.events_about(NS, "sidecar");
        has_event(&e, "Killing", Some("spec.initContainers{side}")).then_some(e)
    });
    let killing = events.iter().find(|e| e["reason"] == "Killing").unwrap();
    assert_eq!(killing["message"], "Stopping container side");
    assert!(
        !has_event(&events, "Killing", Some("spec.containers{app}")),
        "the app exited by itself: {events:#?}"
    );
    assert_eq!(ready_column(&p), "0/2");
    assert_eq!(kubectl_ready(&c, "sidecar"), "0/2");
    c.finish_with_status_writes_ok();
}
