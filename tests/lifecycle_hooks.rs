//! Ports of test/e2e/common/node/lifecycle_hook.go ("Container Lifecycle Hook", "Lifecycle Sleep Hook")
//! against `peapod run`. Upstream's hook target is a netexec pod; here pods have only loopback (no CNI in
//! the harness), so the HTTP target is a busybox httpd container in the same pod whose CGI script appends
//! each request to a host directory, and exec hooks append to that directory themselves. HTTPS hooks need
//! a TLS server busybox lacks: the HTTPS handler is tested in probe_handlers.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::builder::{ContainerBuilder, PodBuilder};
use common::{c, pod, st, wait_for, Node};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// Stops on SIGTERM, writing `term` to the hook log first.
const MAIN: &str = "trap \"echo term >> /hooks/log; exit 0\" TERM; while true; do sleep 1; done";

/// A busybox httpd on :8080 whose `/cgi-bin/echo` appends its query string to the hook log; it keeps
/// serving for 3 s after SIGTERM, as a separate server pod would.
const SERVER: &str = "mkdir -p /www/cgi-bin; printf \"#!/bin/sh\\necho \\$QUERY_STRING >> /hooks/log\\necho Content-Type: text/plain\\necho\\necho ok\\n\" > /www/cgi-bin/echo; chmod +x /www/cgi-bin/echo; httpd -p 8080 -h /www; trap \"sleep 3; exit 0\" TERM; while true; do sleep 1; done";

struct HookPod {
    node: Node,
    hooks: PathBuf,
}

impl HookPod {
    /// Starts a node running pod `name` with `containers`, each with the hook directory mounted at /hooks.
    fn start(name: &str, grace: i64, policy: &str, containers: &[ContainerBuilder]) -> HookPod {
        let mut node = Node::new();
        let hooks = hook_dir(&node);
        let spec = containers.iter().cloned().fold(
            with_hooks(pod(name).restart(policy).grace(grace), &hooks),
            PodBuilder::container,
        );
        node.apply(&format!("{name}.yaml"), &spec.manifest());
        node.start();
        HookPod { node, hooks }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.hooks.join("log")).unwrap_or_default()
    }

    /// Deletes the pod; returns how long it took to go.
    fn delete(&self, name: &str) -> Duration {
        let begin = Instant::now();
        self.node.delete(&format!("{name}.yaml"));
        wait_for("the pod to go", T, || self.node.get(name).is_none().then_some(()));
        begin.elapsed()
    }

    fn has_event(&self, reason: &str, fragment: &str) -> bool {
        self.node
            .supervisor_log()
            .lines()
            .any(|l| l.contains(&format!("reason={reason}")) && l.contains(fragment))
    }

    fn finish(mut self) {
        self.node.finish(T);
    }
}

/// The node's hook directory (created), where the containers log what their hooks did.
fn hook_dir(node: &Node) -> PathBuf {
    let hooks = node.dir.path().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    hooks
}

/// `pod` with the hostPath volume `hooks` at `dir`.
fn with_hooks(pod: PodBuilder, dir: &Path) -> PodBuilder {
    pod.volume("hooks", json!({"hostPath": {"path": dir, "type": "Directory"}}))
}

/// A busybox container running `script` with `sh -c`, the hook directory at /hooks.
fn container(name: &str, script: &str) -> ContainerBuilder {
    c(name).sh(script).mount("hooks", "/hooks")
}

/// lifecycle_hook.go: "should execute poststart exec hook properly".
#[test]
fn should_execute_poststart_exec_hook_properly() {
    let hook =
        json!({"postStart": {"exec": {"command": ["sh", "-c", "sleep 1; echo poststart >> /hooks/log"]}}});
    let pod = HookPod::start("pse", 2, "Always", &[container("c", MAIN).set("lifecycle", hook)]);
    let p = pod.node.wait_pod("pse", "running", T, |p| st::running(p, "c"));
    // The container is reported Running only once its postStart hook has returned.
    assert_eq!(pod.log(), "poststart\n");
    assert!(st::try_container(&p, "c").unwrap().ready);
    pod.finish();
}

/// lifecycle_hook.go: "should execute prestop exec hook properly".
#[test]
fn should_execute_prestop_exec_hook_properly() {
    let hook = json!({"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /hooks/log"]}}});
    let c = container("c", MAIN).set("lifecycle", hook);
    let pod = HookPod::start("pre", 15, "Always", &[c]);
    pod.node.wait_pod("pre", "running", T, |p| st::running(p, "c"));
    pod.delete("pre");
    assert_eq!(
        pod.log(),
        "prestop\nterm\n",
        "the hook runs before the stop signal"
    );
    pod.finish();
}

/// Starts pod `name` whose container `c` has the HTTP `hook` served by its sibling container `server`.
fn http_hook_pod(name: &str, grace: i64, hook: serde_json::Value) -> HookPod {
    let c = container("c", MAIN).set("lifecycle", hook);
    HookPod::start(name, grace, "Always", &[container("server", SERVER), c])
}

/// lifecycle_hook.go: "should execute poststart http hook properly".
#[test]
fn should_execute_poststart_http_hook_properly() {
    let hook = json!({"postStart": {"httpGet": {"path": "/cgi-bin/echo?msg=poststart", "port": 8080}}});
    let pod = http_hook_pod("psh", 2, hook);
    pod.node.wait_pod("psh", "running", T, |p| st::running(p, "c"));
    assert_eq!(pod.log(), "msg=poststart\n");
    pod.finish();
}

/// lifecycle_hook.go: "should execute prestop http hook properly".
#[test]
fn should_execute_prestop_http_hook_properly() {
    let hook = json!({"preStop": {"httpGet": {"path": "/cgi-bin/echo?msg=prestop", "port": 8080}}});
    let pod = http_hook_pod("preh", 15, hook);
    pod.node.wait_pod("preh", "running", T, |p| {
        st::running(p, "c") && st::running(p, "server")
    });
    pod.delete("preh");
    let log = pod.log();
    assert!(log.starts_with("msg=prestop\n"), "{log}");
    pod.finish();
}

/// A failing postStart hook kills the container (kuberuntime_container.go `startContainer`).
#[test]
fn failing_poststart_hook_kills_and_restarts_the_container() {
    let hook = json!({"postStart": {"exec": {"command": ["sh", "-c", "echo secret-output; exit 3"]}}});
    let pod = HookPod::start("psf", 2, "Always", &[container("c", MAIN).set("lifecycle", hook)]);
    pod.node
        .wait_pod("psf", "restarted", T, |p| st::restarts(p, "c") >= 1);
    assert!(
        pod.has_event("FailedPostStartHook", "PostStartHook failed"),
        "{}",
        pod.node.supervisor_log()
    );
    assert!(pod.has_event("Killing", "FailedPostStartHook"));
    let log = pod.node.supervisor_log();
    let event_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reason=FailedPostStartHook"))
        .collect();
    assert!(
        event_lines.iter().all(|l| !l.contains("secret-output")),
        "the hook's output stays out of events: {event_lines:?}"
    );
    let p = pod.node.wait_pod("psf", "waiting with the hook's error", T, |p| {
        matches!(
            st::waiting_reason(p, "c").as_deref(),
            Some("PostStartHookError" | "CrashLoopBackOff")
        )
    });
    assert_eq!(st::phase(&p), "Running");
    pod.finish();
}

/// lifecycle_hook.go: "valid prestop hook using sleep action".
#[test]
fn valid_prestop_hook_using_sleep_action() {
    let hook = json!({"preStop": {"sleep": {"seconds": 4}}});
    let c = container("c", MAIN).set("lifecycle", hook);
    let pod = HookPod::start("sleep", 20, "Always", &[c]);
    pod.node.wait_pod("sleep", "running", T, |p| st::running(p, "c"));
    let took = pod.delete("sleep");
    assert!(
        took >= Duration::from_secs(4),
        "stopped after {took:?}, before the 4 s sleep"
    );
    assert!(
        took < Duration::from_secs(20),
        "stopped after {took:?}: the container exits on SIGTERM"
    );
    assert_eq!(pod.log(), "term\n");
    pod.finish();
}

/// lifecycle_hook.go: "ignore terminated container".
#[test]
fn ignore_terminated_container() {
    let hook = json!({"preStop": {"sleep": {"seconds": 20}}});
    let c = container("c", "exit 0").set("lifecycle", hook);
    let pod = HookPod::start("done", 30, "Never", &[c]);
    pod.node
        .wait_pod("done", "Succeeded", T, |p| st::phase(p) == "Succeeded");
    let took = pod.delete("done");
    assert!(
        took < Duration::from_secs(20),
        "a terminated container gets no preStop hook ({took:?})"
    );
    pod.finish();
}

/// A preStop hook that outlives the grace period is abandoned; the container still gets its stop signal
/// with the kubelet's 2-second minimum (pod-lifecycle.md, "Termination of Pods").
#[test]
fn prestop_hook_longer_than_the_grace_period_is_cut_short() {
    let hook =
        json!({"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /hooks/log; sleep 60"]}}});
    let c = container("c", MAIN).set("lifecycle", hook);
    let pod = HookPod::start("long", 3, "Always", &[c]);
    pod.node.wait_pod("long", "running", T, |p| st::running(p, "c"));
    let took = pod.delete("long");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(
        took < Duration::from_secs(30),
        "{took:?}: {}",
        pod.node.supervisor_log()
    );
    assert_eq!(
        pod.log(),
        "prestop\nterm\n",
        "SIGTERM after the grace period, with 2 s to act on it"
    );
    pod.finish();
}

/// lifecycle_hook.go, "Restartable Init Container Lifecycle Hook": "should execute poststart exec hook
/// properly" — the app container starts only after the sidecar's hook returned.
#[test]
fn restartable_init_container_should_execute_poststart_exec_hook_properly() {
    let mut node = Node::new();
    let hooks = hook_dir(&node);
    let post_start =
        json!({"postStart": {"exec": {"command": ["sh", "-c", "sleep 1; echo poststart >> /hooks/log"]}}});
    let sidecar = container("sidecar", "trap \"exit 0\" TERM; while true; do sleep 1; done");
    let app = container(
        "app",
        "cat /hooks/log > /hooks/seen-by-app; trap \"exit 0\" TERM; while true; do sleep 1; done",
    );
    let sc = with_hooks(pod("sc").grace(2), &hooks)
        .sidecar(sidecar.set("lifecycle", post_start))
        .container(app);
    node.apply("sc.yaml", &sc.manifest());
    node.start();
    node.wait_pod("sc", "app running", T, |p| st::running(p, "app"));
    let seen = wait_for("the app's copy of the log", T, || {
        std::fs::read_to_string(hooks.join("seen-by-app"))
            .ok()
            .filter(|s| !s.is_empty())
    });
    assert_eq!(
        seen, "poststart\n",
        "the app started after the sidecar's postStart hook"
    );
    node.finish(T);
}
