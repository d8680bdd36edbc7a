//! Ports of the Kubernetes node conformance tests in test/e2e/common/node/init_container.go ("InitContainer
//! [NodeConformance]") to `peapod run`. Upstream records watch events and checks invariants over them; here
//! every distinct status the supervisor writes is observed (`Node::observe`) and checked the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::builder::{ContainerBuilder, PodBuilder};
use common::{c, pod, st, Node};
use peapod::api::PodGroup;
use serde_json::json;

const T: Duration = Duration::from_secs(90);

/// The upstream test's pod `pod-init` (label `name: foo`): init containers `init1` and `init2` running
/// `init1` and `init2` (one binary each), then the app container `run1`.
fn pod_init(policy: &str, [init1, init2]: [&str; 2], run1: ContainerBuilder) -> PodBuilder {
    pod("pod-init")
        .label("name", "foo")
        .restart(policy)
        .grace(2)
        .init(c("init1").command([init1]))
        .init(c("init2").command([init2]))
        .container(run1)
}

/// `run1` running `argv`, with upstream's `cpu: 100m` limit.
fn limited<const N: usize>(argv: [&str; N]) -> ContainerBuilder {
    c("run1")
        .command(argv)
        .set("resources", json!({"limits": {"cpu": "100m"}}))
}

/// The app container upstream runs with the pause image: it runs until stopped.
fn pause() -> ContainerBuilder {
    limited(["sleep", "3600"])
}

/// Upstream `initialized`: whether every init container completed, whether one failed, and an error when
/// a container after an unfinished one is not waiting or a completed one is not ready.
fn initialized(p: &PodGroup) -> Result<(bool, bool), String> {
    let mut all_init = true;
    let mut failed = false;
    let statuses = p
        .status
        .as_ref()
        .and_then(|s| s.pod.init_container_statuses.clone())
        .unwrap_or_default();
    for s in &statuses {
        let state = s.state.clone().unwrap_or_default();
        // A container after a failed or unfinished one must still be waiting.
        if (failed || !all_init) && state.waiting.is_none() {
            return Err(format!(
                "container {} is after an unfinished container but isn't waiting",
                s.name
            ));
        }
        match &state.terminated {
            None => all_init = false,
            Some(t) if t.exit_code != 0 => {
                all_init = false;
                failed = true;
            }
            Some(_) if !s.ready => {
                return Err(format!(
                    "container {} initialized but isn't marked as ready",
                    s.name
                ))
            }
            Some(_) => {}
        }
    }
    Ok((all_init && !statuses.is_empty(), failed))
}

/// Upstream `initContainersInvariants` on one status, and `containerInitInvariant` between two.
fn check_invariants(history: &[PodGroup]) {
    let mut was_initialized = false;
    for p in history {
        if p.status.is_none() {
            continue;
        }
        let (all_init, failed) = initialized(p).unwrap_or_else(|e| panic!("{e}: {p:#?}"));
        if !all_init || failed {
            for s in p.status.as_ref().unwrap().pod.container_statuses.iter().flatten() {
                let waiting = s.state.as_ref().and_then(|s| s.waiting.as_ref());
                assert!(
                    waiting.is_some() && s.restart_count == 0,
                    "container {} is not waiting but initialization not complete: {p:#?}",
                    s.name
                );
                assert_eq!(
                    waiting.unwrap().reason.as_deref(),
                    Some("PodInitializing"),
                    "container {}",
                    s.name
                );
            }
        }
        let Some(c) = st::condition(p, "Initialized") else {
            // The kubelet's first status already carries it; peapod's pre-sync status may not.
            assert!(
                p.status.as_ref().unwrap().pod.phase.is_none(),
                "pod does not have initialized condition: {p:#?}"
            );
            continue;
        };
        assert!(
            c.last_transition_time.is_some(),
            "PodInitialized condition should always have a transition time"
        );
        assert_ne!(
            c.status, "Unknown",
            "PodInitialized condition should never be Unknown"
        );
        if c.status == "True" {
            assert!(
                all_init && !failed,
                "PodInitialized condition was True but not all containers initialized: {p:#?}"
            );
            was_initialized = true;
        } else {
            assert!(
                !all_init || failed,
                "PodInitialized condition was False but all containers initialized: {p:#?}"
            );
            assert!(
                !was_initialized,
                "pod cannot be initialized and then regress to not being initialized"
            );
        }
    }
}

fn init_statuses(p: &PodGroup) -> Vec<k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()
        .and_then(|s| s.pod.init_container_statuses.clone())
        .unwrap_or_default()
}

/// The checks upstream makes when the init containers succeed: the invariants over `history`, the pod
/// ends in `phase`, Initialized True, both init statuses ready and terminated with exit code 0.
fn check_initialized(history: &[PodGroup], phase: &str) {
    check_invariants(history);
    let end = history.last().unwrap();
    assert_eq!(st::phase(end), phase);
    assert_eq!(st::condition(end, "Initialized").unwrap().status, "True");
    let init = init_statuses(end);
    assert_eq!(init.len(), 2);
    for s in &init {
        assert!(s.ready, "init container {} should be in Ready status", s.name);
        let t = s.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(t.exit_code, 0);
    }
}

/// Upstream's check on every event while initialization fails: each app container waits with
/// PodInitializing.
fn assert_apps_initializing(p: &PodGroup) {
    for s in p.status.as_ref().unwrap().pod.container_statuses.iter().flatten() {
        assert_eq!(
            s.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("PodInitializing"),
            "container {} should be waiting with PodInitializing: {s:#?}",
            s.name
        );
    }
}

/// The checks upstream makes at the end when an init container fails: the pod ends in `phase` with
/// Initialized False, ContainersNotInitialized and `message`, and both init statuses.
fn check_not_initialized(history: &[PodGroup], phase: &str, message: &str) {
    check_invariants(history);
    let end = history.last().unwrap();
    assert_eq!(st::phase(end), phase);
    let init = st::condition(end, "Initialized").unwrap();
    assert_eq!(init.status, "False");
    assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));
    assert_eq!(init.message.as_deref(), Some(message));
    assert_eq!(init_statuses(end).len(), 2);
}

fn finish(mut node: Node, file: &str, name: &str) {
    node.delete(file);
    common::wait_for("pod gone", T, || node.get(name).is_none().then_some(()));
    node.finish(T);
}

/// test/e2e/common/node/init_container.go, "InitContainer [NodeConformance] should invoke init containers on
/// a RestartNever pod": both init containers and the app run to completion; the pod Succeeded, Initialized
/// True, both init statuses ready and terminated with exit code 0.
#[test]
fn should_invoke_init_containers_on_a_restart_never_pod() {
    let mut node = Node::new();
    let init = pod_init(
        "Never",
        ["/bin/true", "/bin/true"],
        c("run1").command(["/bin/true"]),
    );
    node.apply("p.yaml", &init.manifest());
    node.start();
    let history = node.observe("pod-init", T, |p| p.is_some_and(|p| st::phase(p) == "Succeeded"));
    check_initialized(&history, "Succeeded");
    finish(node, "p.yaml", "pod-init");
}

/// test/e2e/common/node/init_container.go, "InitContainer [NodeConformance] should invoke init containers on
/// a RestartAlways pod": the init containers complete and the app runs; the pod is Running, Initialized
/// True, both init statuses ready and terminated with exit code 0.
#[test]
fn should_invoke_init_containers_on_a_restart_always_pod() {
    let mut node = Node::new();
    let init = pod_init("Always", ["/bin/true", "/bin/true"], pause());
    node.apply("p.yaml", &init.manifest());
    node.start();
    let history = node.observe("pod-init", T, |p| p.is_some_and(|p| st::phase(p) == "Running"));
    check_initialized(&history, "Running");
    finish(node, "p.yaml", "pod-init");
}

/// test/e2e/common/node/init_container.go, "InitContainer [NodeConformance] should not start app containers
/// if init containers fail on a RestartAlways pod": init1 fails and is restarted with back-off (restartCount
/// reaches 3) while init2 and the app wait with PodInitializing; the pod stays Pending with Initialized
/// False, ContainersNotInitialized, "containers with incomplete status: [init1 init2]".
#[test]
fn should_not_start_app_containers_if_init_containers_fail_on_a_restart_always_pod() {
    let mut node = Node::new();
    let init = pod_init("Always", ["/bin/false", "/bin/true"], pause());
    node.apply("p.yaml", &init.manifest());
    node.start();
    // Back-off 0 s, 10 s, 20 s before the fourth run.
    let history = node.observe("pod-init", Duration::from_secs(100), |p| {
        p.is_some_and(|p| st::restarts(p, "init1") >= 3)
    });
    // The conditions upstream checks on every event until then.
    let mut restarted = false;
    for p in history.iter().filter(|p| p.status.is_some()) {
        assert_apps_initializing(p);
        let init = init_statuses(p);
        if init.len() != 2 {
            continue;
        }
        assert_eq!(
            st::waiting_reason(p, "init2").as_deref(),
            Some("PodInitializing"),
            "second init container should be waiting with PodInitializing: {:#?}",
            init[1]
        );
        if let Some(t) = st::terminated(p, "init1") {
            assert_ne!(t.exit_code, 0, "first init container should have exitCode != 0");
        }
        restarted |= st::last_terminated(p, "init1").is_some();
    }
    assert!(restarted, "an attempt to restart init1 was seen");
    check_not_initialized(
        &history,
        "Pending",
        "containers with incomplete status: [init1 init2]",
    );
    finish(node, "p.yaml", "pod-init");
}

/// test/e2e/common/node/init_container.go, "InitContainer [NodeConformance] should not start app containers
/// and fail the pod if init containers fail on a RestartNever pod": init1 succeeds, init2 fails once; the
/// app never leaves Waiting/PodInitializing; the pod is Failed with Initialized False,
/// ContainersNotInitialized, "containers with incomplete status: [init2]".
#[test]
fn should_not_start_app_containers_and_fail_the_pod_if_init_containers_fail_on_a_restart_never_pod() {
    let mut node = Node::new();
    let init = pod_init("Never", ["/bin/true", "/bin/false"], limited(["/bin/true"]));
    node.apply("p.yaml", &init.manifest());
    node.start();
    let history = node.observe("pod-init", T, |p| {
        p.is_some_and(|p| matches!(st::phase(p), "Succeeded" | "Failed"))
    });
    let mut init2_failed = false;
    for p in history.iter().filter(|p| p.status.is_some()) {
        assert_apps_initializing(p);
        if init_statuses(p).len() != 2 {
            continue;
        }
        match st::terminated(p, "init1") {
            None => {
                if let Some(r) = st::waiting_reason(p, "init1") {
                    assert_eq!(r, "PodInitializing");
                }
                continue;
            }
            Some(t) => assert_eq!(t.exit_code, 0, "first init container should succeed"),
        }
        if let Some(t) = st::terminated(p, "init2") {
            assert_ne!(t.exit_code, 0, "second init container should have failed");
            init2_failed = true;
        }
    }
    assert!(init2_failed, "init2 was seen failing");
    check_not_initialized(&history, "Failed", "containers with incomplete status: [init2]");
    assert!(
        st::waiting_reason(history.last().unwrap(), "run1").is_some(),
        "the app container never left Waiting"
    );
    finish(node, "p.yaml", "pod-init");
}
