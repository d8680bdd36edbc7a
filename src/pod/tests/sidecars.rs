//! Native sidecars (`computeInitContainerActions`) and probe results (liveness and startup kills,
//! `started` and `ready`), with the kubelet's `Killing` messages and kubectl's columns.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Probe;

use super::*;
use crate::pod::view::FailedProbe;

fn unstarted(mut v: PodView, id: &str) -> PodView {
    v.probes.started.remove(id);
    v.probes.ready.remove(id);
    v
}

fn failing(mut v: PodView, id: &str, failed: FailedProbe) -> PodView {
    v.probes.failed.insert(id.to_string(), failed);
    v
}

#[test]
fn sidecar_starts_first_and_gates_the_next_init_container() {
    let p = sidecars(pod("Always", &["s", "i"], &["a"]), &["s"]);
    // Nothing ran: the sidecar starts first.
    assert_eq!(plan_of(&p, &view(true, vec![])).start_init.as_deref(), Some("s"));
    // Running but not started (startup probe pending): wait.
    let waiting = unstarted(view(true, vec![running("s")]), "s-0");
    assert!(plan_of(&p, &waiting).is_empty());
    let st = status_of(&p, &waiting, &HashMap::new(), false);
    assert_eq!(st.pod.phase.as_deref(), Some("Pending"));
    let s = &st.pod.init_container_statuses.as_ref().unwrap()[0];
    assert_eq!((s.started, s.ready), (Some(false), false));
    assert_eq!(
        cond(&st, "Initialized").message.as_deref(),
        Some("containers with incomplete status: [s i]")
    );
    assert_eq!(st.display_status.as_deref(), Some("Init:0/2"));
    // Started: the next init container runs.
    let started = view(true, vec![running("s")]);
    let plan = plan_of(&p, &started);
    assert_eq!((plan.start_init.as_deref(), plan.start.len()), (Some("i"), 0));
    assert_eq!(display(&p, &started).as_deref(), Some("Init:1/2"));
    // The regular init container is done: the app starts, the sidecar keeps running.
    let done = view(true, vec![running("s"), exited("i", 0)]);
    let plan = plan_of(&p, &done);
    assert_eq!(plan.start, vec!["a"]);
    assert!(plan.restart_sidecars.is_empty() && plan.start_init.is_none() && plan.kill.is_empty());
    // All running.
    let all_running = view(true, vec![running("s"), exited("i", 0), running("a")]);
    assert!(plan_of(&p, &all_running).is_empty());
    let st = status_of(&p, &all_running, &HashMap::new(), false);
    assert_eq!(st.pod.phase.as_deref(), Some("Running"));
    assert_eq!(st.display_status.as_deref(), Some("Running"));
    assert_eq!(st.ready_containers.as_deref(), Some("2/2"));
    assert_eq!(cond(&st, "Initialized").status, "True");
    assert_eq!(cond(&st, "Ready").status, "True");
}

#[test]
fn sidecar_is_restarted_whatever_the_pod_policy() {
    for (policy, exit) in [("Never", 0), ("Never", 1), ("OnFailure", 0), ("Always", 137)] {
        let p = sidecars(pod(policy, &["s"], &["a"]), &["s"]);
        let v = view(true, vec![exited("s", exit), running("a")]);
        let plan = plan_of(&p, &v);
        assert_eq!(plan.restart_sidecars, vec!["s"], "{policy} {exit}");
        assert!(plan.start.is_empty() && !plan.kill_pod, "{policy} {exit}");
        // Before the app ran, an exited sidecar is restarted too, and the app waits for it.
        let v = view(true, vec![exited("s", exit)]);
        let plan = plan_of(&p, &v);
        assert_eq!(plan.restart_sidecars, vec!["s"], "{policy} {exit}");
        assert!(
            plan.start.is_empty() && plan.start_init.is_none(),
            "{policy} {exit}"
        );
    }
}

#[test]
fn sidecar_restarts_count_in_restarts_column() {
    let p = sidecars(pod("Always", &["s"], &["a"]), &["s"]);
    let v = view(
        true,
        vec![
            c("s", 1, RunState::Exited, 1),
            c("s", 2, RunState::Running, 0),
            running("a"),
        ],
    );
    let st = status_of(&p, &v, &HashMap::new(), false);
    assert_eq!(st.restarts, Some(2));
    assert_eq!(st.ready_containers.as_deref(), Some("2/2"));
    // A sidecar that is not ready is counted in the total only.
    let v = unstarted(v, "s-2");
    let st = status_of(&p, &v, &HashMap::new(), false);
    assert_eq!(st.ready_containers.as_deref(), Some("1/2"));
    assert_eq!(cond(&st, "Initialized").status, "True", "the app ran");
}

#[test]
fn pod_completes_when_regular_containers_are_done_while_sidecar_runs() {
    for policy in ["Never", "OnFailure"] {
        let p = sidecars(pod(policy, &["s"], &["a"]), &["s"]);
        let v = view(true, vec![running("s"), exited("a", 0)]);
        let plan = plan_of(&p, &v);
        assert!(plan.kill_pod, "{policy}: the pod is stopped, sidecar included");
        assert!(plan.restart_sidecars.is_empty() && plan.start.is_empty());
        // The sidecar still runs until the worker stops it.
        let st = status_of(&p, &v, &HashMap::new(), false);
        assert_eq!(st.pod.phase.as_deref(), Some("Running"), "{policy}");
        // Stopped: the sidecar's SIGTERM exit does not make the pod fail.
        let mut stopped = view(false, vec![exited("s", 143), exited("a", 0)]);
        let st = status_of(&p, &stopped, &HashMap::new(), true);
        assert_eq!(st.pod.phase.as_deref(), Some("Succeeded"), "{policy}");
        assert_eq!(st.display_status.as_deref(), Some("Completed"), "{policy}");
        // No new sandbox for a pod whose containers are all done.
        stopped.sandbox = Some(SandboxView {
            id: "sb0".into(),
            attempt: 0,
            ready: false,
        });
        assert_eq!(plan_of(&p, &stopped).create_sandbox, None, "{policy}");
    }
    // Under Always the app is restarted instead.
    let p = sidecars(pod("Always", &["s"], &["a"]), &["s"]);
    let v = view(true, vec![running("s"), exited("a", 0)]);
    let plan = plan_of(&p, &v);
    assert_eq!(
        (plan.kill_pod, plan.start.clone()),
        (false, vec!["a".to_string()])
    );
}

#[test]
fn regular_init_failure_after_a_sidecar_fails_a_never_pod() {
    let p = sidecars(pod("Never", &["s", "i"], &["a"]), &["s"]);
    let v = view(true, vec![running("s"), exited("i", 1)]);
    let plan = plan_of(&p, &v);
    assert!(plan.kill_pod && plan.start_init.is_none() && plan.restart_sidecars.is_empty());
    let p = sidecars(pod("Always", &["s", "i"], &["a"]), &["s"]);
    assert_eq!(plan_of(&p, &v).start_init.as_deref(), Some("i"));
}

#[test]
fn changed_sidecar_is_restarted_alone() {
    let p = sidecars(pod("Never", &["s"], &["a"]), &["s"]);
    let v = view(true, vec![running("s"), running("a")]);
    let mut h = hashes(&p);
    h.insert("s".into(), "new".into());
    let plan = plan_hashed(&p, &v, &h, false);
    assert_eq!(plan.kill.len(), 1);
    assert_eq!(
        (plan.kill[0].id.as_str(), plan.kill[0].message.as_str()),
        ("s-0", "Init container s definition changed")
    );
    assert_eq!(plan.restart_sidecars, vec!["s"]);
    assert!(plan.start.is_empty() && !plan.kill_pod);
}

fn with_probes(mut p: PodGroup, grace: Option<i64>) -> PodGroup {
    let probe = Probe {
        termination_grace_period_seconds: grace,
        ..Default::default()
    };
    let spec = &mut p.spec.pod;
    for c in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        c.liveness_probe = Some(probe.clone());
        c.startup_probe = Some(Probe::default());
    }
    p
}

#[test]
fn failed_probes_kill_and_restart_per_policy() {
    // (policy, restarted, message)
    let cases = [
        (
            "Always",
            true,
            "Container a failed liveness probe, will be restarted",
        ),
        (
            "OnFailure",
            true,
            "Container a failed liveness probe, will be restarted",
        ),
        ("Never", false, "Container a failed liveness probe"),
    ];
    for (policy, restarted, message) in cases {
        let p = with_probes(pod(policy, &[], &["a", "b"]), Some(5));
        let v = view(true, vec![running("a"), running("b")]);
        let plan = plan_of(&p, &failing(v, "a-0", FailedProbe::Liveness));
        let kill = &plan.kill[0];
        assert_eq!(
            (kill.id.as_str(), kill.message.as_str(), kill.grace),
            ("a-0", message, Some(5)),
            "{policy}"
        );
        assert_eq!(plan.start.contains(&"a".to_string()), restarted, "{policy}");
        assert!(!plan.kill_pod, "{policy}: b still runs");
    }
    // Never, and nothing else runs: the pod is stopped instead.
    let p = with_probes(pod("Never", &[], &["a"]), None);
    let v = view(true, vec![running("a")]);
    let plan = plan_of(&p, &failing(v, "a-0", FailedProbe::Liveness));
    assert!(plan.kill_pod && plan.kill.is_empty() && plan.start.is_empty());
    // A startup probe failure, without a probe grace period.
    let p = with_probes(pod("Always", &[], &["a"]), None);
    let v = unstarted(view(true, vec![running("a")]), "a-0");
    let message = "Container a failed startup probe, will be restarted";
    let plan = plan_of(&p, &failing(v, "a-0", FailedProbe::Startup));
    assert_eq!(
        (plan.kill[0].message.as_str(), plan.kill[0].grace),
        (message, None)
    );
    assert_eq!(plan.start, vec!["a"]);
}

#[test]
fn failed_sidecar_probes_restart_the_sidecar() {
    let p = with_probes(sidecars(pod("Never", &["s"], &["a"]), &["s"]), Some(7));
    let v = view(true, vec![running("s"), running("a")]);
    let plan = plan_of(&p, &failing(v, "s-0", FailedProbe::Liveness));
    assert_eq!(
        (plan.kill[0].message.as_str(), plan.kill[0].grace),
        ("Init container s failed liveness probe", Some(7))
    );
    assert_eq!(plan.restart_sidecars, vec!["s"]);
    assert!(plan.start.is_empty());
    // Startup probe failing during initialization: restart it, start nothing else.
    let v = unstarted(view(true, vec![running("s")]), "s-0");
    let plan = plan_of(&p, &failing(v, "s-0", FailedProbe::Startup));
    assert_eq!(plan.kill[0].message, "Init container s failed startup probe");
    assert_eq!(plan.restart_sidecars, vec!["s"]);
    assert!(plan.start_init.is_none() && plan.start.is_empty());
}

#[test]
fn started_and_ready_follow_the_probes() {
    let p = pod("Always", &[], &["a"]);
    let app_running = view(true, vec![running("a")]);
    // Started, readiness probe not yet successful.
    let mut v = app_running.clone();
    v.probes.ready.clear();
    let st = status_of(&p, &v, &HashMap::new(), false);
    let a = &st.pod.container_statuses.as_ref().unwrap()[0];
    assert_eq!((a.started, a.ready), (Some(true), false));
    assert_eq!(st.pod.phase.as_deref(), Some("Running"));
    assert_eq!(st.ready_containers.as_deref(), Some("0/1"));
    assert_eq!(
        cond(&st, "ContainersReady").message.as_deref(),
        Some("containers with unready status: [a]")
    );
    // Startup probe pending: neither started nor ready, even if a stale readiness result says so.
    let mut v = app_running.clone();
    v.probes.started.clear();
    let st = status_of(&p, &v, &HashMap::new(), false);
    let a = &st.pod.container_statuses.as_ref().unwrap()[0];
    assert_eq!((a.started, a.ready), (Some(false), false));
    // Both: ready.
    let st = status_of(&p, &app_running, &HashMap::new(), false);
    let a = &st.pod.container_statuses.as_ref().unwrap()[0];
    assert_eq!((a.started, a.ready), (Some(true), true));
    assert_eq!(cond(&st, "Ready").status, "True");
}

#[test]
fn sidecar_edge_cases() {
    let p = sidecars(pod("Always", &["s1", "s2", "i"], &["a"]), &["s1", "s2"]);
    // A new sandbox starts from the first init container, a sidecar here.
    let mut lost = view(false, vec![running("s1")]);
    lost.containers[0].state = RunState::Exited;
    let plan = plan_of(&p, &lost);
    assert_eq!(
        (plan.create_sandbox, plan.start_init.as_deref()),
        (Some(1), Some("s1"))
    );
    // A sidecar being created is waited for.
    assert!(plan_of(&p, &view(true, vec![c("s1", 0, RunState::Created, 0)])).is_empty());
    // Exited sidecars are restarted in spec order while a regular init container runs.
    let v = view(true, vec![exited("s1", 1), exited("s2", 0), running("i")]);
    let plan = plan_of(&p, &v);
    assert_eq!(plan.restart_sidecars, vec!["s1", "s2"]);
    assert!(plan.start_init.is_none() && plan.start.is_empty());
    // Once the app runs, regular init containers are not looked at again.
    let v = view(true, vec![running("s1"), running("s2"), running("a")]);
    assert!(plan_of(&p, &v).is_empty());
    // Stopping kills everything, sidecars included, and restarts nothing.
    let plan = stopping_plan_of(&p, &v);
    assert!(plan.kill_pod && plan.restart_sidecars.is_empty() && plan.start_init.is_none());
}
