//! Root integration tests of native sidecars (init containers with `restartPolicy: Always`) with real
//! runc, ported from the kubelet's e2e scenarios (test/e2e_node/container_lifecycle_test.go "restartable
//! init containers", test/e2e/common/node): start order, restarts whatever the pod's restart policy,
//! completion of a pod whose regular containers are done, reverse termination order, and the status kubectl
//! shows (phase, READY, RESTARTS).
//!
//! Processes are observed across containers through `shareProcessNamespace`: each container runs a
//! shell whose `$0` is a marker, so `ps` in another container tells whether it runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::builder::{ContainerBuilder, PodBuilder};
use common::{c, pod, st, Node};
use peapod::api::PodGroup;

const T: Duration = Duration::from_secs(120);

/// A Pod whose containers see each other's processes.
fn shared_pod(name: &str, policy: &str, grace: i64) -> PodBuilder {
    pod(name).restart(policy).grace(grace).share_process_namespace()
}

/// A container running `script` in a shell whose `$0` is `<name>-marker`.
fn marked(name: &str, script: &str) -> ContainerBuilder {
    c(name).command(["sh", "-c", script, &format!("{name}-marker")])
}

/// `sh` test that succeeds when the container `name` has a live process in the pod. The bracket keeps
/// the pattern from matching the command line that contains it; it is left unquoted so that it can sit
/// inside a double-quoted `trap` (the working directory `/` has no file it could glob to).
fn alive(name: &str) -> String {
    let (first, rest) = name.split_at(1);
    format!("ps -o args | grep -q [{first}]{rest}-marker")
}

fn ready_column(p: &PodGroup) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.ready_containers.as_deref())
        .unwrap_or("")
}

fn started(p: &PodGroup, name: &str) -> bool {
    st::try_container(p, name).and_then(|c| c.started) == Some(true)
}

/// "should launch restartable init containers before the regular container": the sidecar runs before
/// the next init container and the app start, and keeps running.
#[test]
fn sidecar_starts_before_the_next_init_container_and_keeps_running() {
    let mut node = Node::new();
    let order = shared_pod("order", "Always", 2)
        .sidecar(marked("proxy", "while true; do sleep 1; done"))
        .init(marked("setup", &format!("{} && echo SAW-PROXY", alive("proxy"))))
        .container(marked(
            "app",
            &format!(
                "{} && echo SAW-PROXY; while true; do sleep 1; done",
                alive("proxy")
            ),
        ));
    node.apply("order.yaml", &order.manifest());
    node.start();
    let p = node.wait_pod("order", "app and sidecar running", T, |p| {
        st::running(p, "app") && st::running(p, "proxy") && ready_column(p) == "2/2"
    });
    let setup = st::terminated(&p, "setup").expect("setup ran to completion");
    assert_eq!(setup.exit_code, 0, "setup saw the sidecar running");
    assert_eq!(st::restarts(&p, "setup"), 0, "setup succeeded the first time");
    assert_eq!(st::restarts(&p, "proxy"), 0);
    assert!(started(&p, "proxy") && st::container(&p, "proxy").ready);
    assert_eq!(st::phase(&p), "Running");
    assert_eq!(st::display(&p), "Running");
    assert_eq!(st::condition(&p, "Initialized").unwrap().status, "True");
    assert_eq!(st::condition(&p, "Ready").unwrap().status, "True");
    let logs = node.peapod(&["logs", "order", "-c", "app"]);
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("SAW-PROXY"),
        "the app started after the sidecar"
    );
    node.finish(T);
}

/// "should restart a restartable init container after the regular container started" under
/// `restartPolicy: Never`: a sidecar is restarted on any exit; the app is untouched.
#[test]
fn sidecar_restarts_although_the_pod_policy_is_never() {
    let mut node = Node::new();
    let restart = shared_pod("restart", "Never", 2)
        .sidecar(marked("proxy", "sleep 4; exit 0"))
        .container(marked("app", "while true; do sleep 1; done"));
    node.apply("restart.yaml", &restart.manifest());
    node.start();
    let p = node.wait_pod("restart", "sidecar restarted", T, |p| {
        st::restarts(p, "proxy") >= 1 && st::running(p, "app")
    });
    assert_eq!(st::restarts(&p, "app"), 0);
    assert_eq!(st::phase(&p), "Running");
    let restarts = p.status.as_ref().and_then(|s| s.restarts);
    assert!(
        restarts >= Some(1),
        "RESTARTS counts the sidecar's restarts: {restarts:?}"
    );
    node.finish(T);
}

/// "should complete a Pod with restartable init container when regular container exited": the pod
/// succeeds once its regular container exits 0 although the sidecar never exits by itself.
#[test]
fn never_pod_with_a_sidecar_succeeds_when_the_app_exits() {
    let mut node = Node::new();
    let job = shared_pod("job", "Never", 2)
        .sidecar(marked("proxy", "while true; do sleep 1; done"))
        .container(marked("app", "sleep 2; exit 0"));
    node.apply("job.yaml", &job.manifest());
    node.start();
    let p = node.wait_pod("job", "Succeeded", T, |p| st::phase(p) == "Succeeded");
    assert_eq!(st::terminated(&p, "app").map(|t| t.exit_code), Some(0));
    assert!(st::terminated(&p, "proxy").is_some(), "the sidecar was stopped");
    assert_eq!(st::restarts(&p, "proxy"), 0, "a stopped sidecar is not restarted");
    assert_eq!(st::display(&p), "Completed");
    assert_eq!(ready_column(&p), "0/2");
    assert_eq!(
        st::condition(&p, "Ready").unwrap().reason.as_deref(),
        Some("PodCompleted")
    );
    node.finish(T);
}

/// "should terminate sidecars in reverse order after all main containers have exited": each sidecar
/// gets SIGTERM only once the regular containers and the sidecars after it have exited; it says what it
/// saw in its termination message.
#[test]
fn sidecars_stop_in_reverse_order_after_the_app() {
    let mut node = Node::new();
    let sidecar = |name: &str, after: &str| {
        let on_term = format!(
            "if {}; then echo -n EARLY > /dev/termination-log; else echo -n ORDERED > /dev/termination-log; fi; sleep 1; exit 0",
            alive(after)
        );
        marked(
            name,
            &format!("trap \"{on_term}\" TERM; while true; do sleep 0.2; done"),
        )
    };
    let order = shared_pod("stop-order", "Never", 10)
        .sidecar(sidecar("first", "second"))
        .sidecar(sidecar("second", "app"))
        .container(marked("app", "sleep 3; exit 0"));
    node.apply("order.yaml", &order.manifest());
    node.start();
    let p = node.wait_pod("stop-order", "Succeeded", T, |p| st::phase(p) == "Succeeded");
    for name in ["first", "second"] {
        let t = st::terminated(&p, name).expect("sidecar stopped");
        assert_eq!(
            (t.exit_code, t.message.as_deref()),
            (0, Some("ORDERED")),
            "{name} got SIGTERM after the containers that must stop before it"
        );
    }
    node.finish(T);
}
