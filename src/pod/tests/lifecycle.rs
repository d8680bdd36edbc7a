//! The kubelet's basic scenarios: fresh pods, restart policies, crash loops, init containers, sandbox
//! loss, spec changes and termination.

use std::collections::HashMap;

use super::*;

#[test]
fn fresh_pod_creates_sandbox_then_starts_all() {
    let p = pod("Always", &[], &["a", "b"]);
    let empty = PodView::default();
    let plan = plan_of(&p, &empty);
    assert_eq!(plan.create_sandbox, Some(0));
    assert_eq!(plan.start, vec!["a", "b"]);
    assert!(!plan.kill_pod);

    let s = status_of(&p, &empty, &HashMap::new(), false);
    assert_eq!(s.pod.phase.as_deref(), Some("Pending"));
    assert_eq!(s.display_status.as_deref(), Some("ContainerCreating"));
    assert_eq!(s.ready_containers.as_deref(), Some("0/2"));
    assert_eq!(cond(&s, "PodReadyToStartContainers").status, "False");
    assert_eq!(cond(&s, "Initialized").status, "True");
    let cr = cond(&s, "ContainersReady");
    assert_eq!(
        (cr.reason.as_deref(), cr.message.as_deref()),
        (
            Some("ContainersNotReady"),
            Some("containers with unready status: [a b]")
        )
    );
    assert_eq!(cond(&s, "Ready").message, cr.message);
}

#[test]
fn running_pod_is_ready_and_stable() {
    let p = pod("Always", &[], &["a", "b"]);
    let v = view(true, vec![running("a"), running("b")]);
    assert!(plan_of(&p, &v).is_empty());
    let s = status_of(&p, &v, &HashMap::new(), false);
    assert_eq!(s.pod.phase.as_deref(), Some("Running"));
    assert_eq!(s.display_status.as_deref(), Some("Running"));
    assert_eq!(s.ready_containers.as_deref(), Some("2/2"));
    assert_eq!(cond(&s, "Ready").status, "True");
    let names: Vec<_> = s
        .pod
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
}

#[test]
fn restart_policies_decide_restarts_and_phase() {
    // (policy, exit codes of a and b) -> (a restarted?, b restarted?, phase, display)
    // kubectl walks the statuses backwards, so the first container's reason is the one printed.
    let cases = [
        ("Always", 0, 1, true, true, "Running", "Completed"),
        ("Always", 1, 0, true, true, "Running", "Error"),
        ("OnFailure", 1, 0, true, false, "Running", "Error"),
        ("OnFailure", 0, 0, false, false, "Succeeded", "Completed"),
        ("Never", 1, 0, false, false, "Failed", "Error"),
        ("Never", 0, 0, false, false, "Succeeded", "Completed"),
    ];
    for (policy, ea, eb, ra, rb, phase, display) in cases {
        let p = pod(policy, &[], &["a", "b"]);
        let v = view(true, vec![exited("a", ea), exited("b", eb)]);
        let plan = plan_of(&p, &v);
        let want: Vec<&str> = [("a", ra), ("b", rb)]
            .iter()
            .filter(|x| x.1)
            .map(|x| x.0)
            .collect();
        assert_eq!(plan.start, want, "{policy} {ea} {eb}");
        assert_eq!(
            plan.kill_pod,
            want.is_empty(),
            "{policy}: a finished pod is torn down"
        );
        let s = status_of(&p, &v, &HashMap::new(), false);
        assert_eq!(s.pod.phase.as_deref(), Some(phase), "{policy} {ea} {eb}");
        assert_eq!(s.display_status.as_deref(), Some(display), "{policy} {ea} {eb}");
    }
}

#[test]
fn crash_loop_shows_waiting_reason_and_last_state() {
    let p = pod("Always", &[], &["a"]);
    let v = view(true, vec![exited("a", 1), c("a", 1, RunState::Exited, 2)]);
    let mut reasons = HashMap::new();
    let msg = "back-off 10s restarting failed container=a pod=p_default(u)";
    reasons.insert(
        "a".to_string(),
        Waiting {
            reason: "CrashLoopBackOff".into(),
            message: msg.into(),
        },
    );
    let s = status_of(&p, &v, &reasons, false);
    let cs = &s.pod.container_statuses.as_ref().unwrap()[0];
    let w = cs.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(
        (w.reason.as_deref(), w.message.as_deref()),
        (Some("CrashLoopBackOff"), Some(msg))
    );
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));
    assert_eq!(cs.restart_count, 1);
    assert_eq!(s.pod.phase.as_deref(), Some("Running"));
    assert_eq!(s.display_status.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(s.restarts, Some(1));
}

#[test]
fn init_containers_run_in_order() {
    let p = pod("Always", &["i1", "i2"], &["a"]);
    // Sandbox ready, nothing ran: start i1.
    let v0 = view(true, vec![]);
    assert_eq!(plan_of(&p, &v0).start_init.as_deref(), Some("i1"));
    let s = status_of(&p, &v0, &HashMap::new(), false);
    assert_eq!(s.display_status.as_deref(), Some("Init:0/2"));
    let app = &s.pod.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        app.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("PodInitializing")
    );
    let init = cond(&s, "Initialized");
    assert_eq!(
        init.message.as_deref(),
        Some("containers with incomplete status: [i1 i2]")
    );
    // i1 running: wait.
    let v1 = view(true, vec![running("i1")]);
    assert!(plan_of(&p, &v1).is_empty());
    // i1 done: start i2.
    let v2 = view(true, vec![exited("i1", 0)]);
    assert_eq!(plan_of(&p, &v2).start_init.as_deref(), Some("i2"));
    assert_eq!(display(&p, &v2).as_deref(), Some("Init:1/2"));
    // Both done: start the app.
    let v3 = view(true, vec![exited("i1", 0), exited("i2", 0)]);
    assert_eq!(plan_of(&p, &v3).start, vec!["a"]);
    let s3 = status_of(&p, &v3, &HashMap::new(), false);
    assert_eq!(cond(&s3, "Initialized").status, "True");
    assert!(s3
        .pod
        .init_container_statuses
        .as_ref()
        .unwrap()
        .iter()
        .all(|s| s.ready));
}

#[test]
fn failed_init_container_per_policy() {
    // Always: restart the failed init container; the pod stays Pending.
    let p = pod("Always", &["i1", "i2"], &["a"]);
    let v = view(true, vec![exited("i1", 1)]);
    assert_eq!(plan_of(&p, &v).start_init.as_deref(), Some("i1"));
    let mut reasons = HashMap::new();
    reasons.insert(
        "i1".to_string(),
        Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "x".into(),
        },
    );
    let s = status_of(&p, &v, &reasons, false);
    assert_eq!(s.pod.phase.as_deref(), Some("Pending"));
    assert_eq!(s.display_status.as_deref(), Some("Init:CrashLoopBackOff"));
    assert_eq!(
        cond(&s, "Initialized").message.as_deref(),
        Some("containers with incomplete status: [i1 i2]")
    );

    // Never: the pod fails; the second init container's failure is what Initialized names.
    let p = pod("Never", &["i1", "i2"], &["a"]);
    let v = view(true, vec![exited("i1", 0), exited("i2", 1)]);
    assert!(plan_of(&p, &v).kill_pod);
    let s = status_of(&p, &v, &HashMap::new(), false);
    assert_eq!(s.pod.phase.as_deref(), Some("Failed"));
    assert_eq!(
        cond(&s, "Initialized").message.as_deref(),
        Some("containers with incomplete status: [i2]")
    );
    assert_eq!(s.display_status.as_deref(), Some("Init:Error"));
    let app = &s.pod.container_statuses.as_ref().unwrap()[0];
    assert!(app.state.as_ref().unwrap().waiting.is_some());
}

#[test]
fn lost_sandbox_is_recreated_and_init_runs_again() {
    let p = pod("Always", &["i1"], &["a"]);
    let mut v = view(false, vec![exited("i1", 0), exited("a", 137)]);
    let plan = plan_of(&p, &v);
    assert!(plan.kill_pod);
    assert_eq!(plan.create_sandbox, Some(1));
    assert_eq!(plan.start_init.as_deref(), Some("i1"));
    // In the new sandbox the old init run does not count.
    v.sandbox = Some(SandboxView {
        id: "sb1".into(),
        attempt: 1,
        ready: true,
    });
    assert_eq!(plan_of(&p, &v).start_init.as_deref(), Some("i1"));
    // A Never pod that already ran gets no new sandbox.
    let p = pod("Never", &[], &["a"]);
    let v = view(false, vec![exited("a", 0)]);
    let plan = plan_of(&p, &v);
    assert_eq!(plan.create_sandbox, None);
}

#[test]
fn changed_spec_kills_and_restarts() {
    let p = pod("Never", &[], &["a"]);
    let v = view(true, vec![running("a")]);
    let mut h = hashes(&p);
    h.insert("a".into(), "new".into());
    let plan = plan_hashed(&p, &v, &h, false);
    assert_eq!(plan.kill.len(), 1);
    assert_eq!(
        plan.kill[0].message,
        "Container a definition changed, will be restarted"
    );
    assert_eq!(plan.start, vec!["a"]);
}

#[test]
fn stopping_kills_everything_and_terminal_phase_is_sticky() {
    let p = pod("Always", &[], &["a"]);
    let v = view(true, vec![running("a")]);
    let plan = stopping_plan_of(&p, &v);
    assert!(plan.kill_pod && plan.start.is_empty() && plan.create_sandbox.is_none());
    // Stopped for good: SIGTERM exit 143 makes the deleted pod Failed.
    let done = view(false, vec![exited("a", 143)]);
    let s = status_of(&p, &done, &HashMap::new(), true);
    assert_eq!(s.pod.phase.as_deref(), Some("Failed"));
    // A later observation cannot leave the terminal phase.
    let again = status::compute(
        &p,
        &StatusInput {
            view: &v,
            reasons: &HashMap::new(),
            previous: Some(&s),
            now: ts(2000),
            start_time: None,
            pod_ips: &[],
            host_ip: None,
            terminating: false,
            terminal: false,
            failure: None,
            qos_class: None,
        },
    );
    assert_eq!(again.pod.phase.as_deref(), Some("Failed"));
    // Unchanged conditions keep their transition time; changed ones get the new one.
    let sched = |st: &PodGroupStatus| cond(st, "PodScheduled").last_transition_time.clone();
    assert_eq!(sched(&again), sched(&s));
}

#[test]
fn deleting_pod_displays_terminating_and_is_not_ready() {
    let p = pod("Always", &[], &["a"]);
    let v = view(true, vec![running("a")]);
    let s = status::compute(
        &p,
        &StatusInput {
            view: &v,
            reasons: &HashMap::new(),
            previous: None,
            now: ts(5),
            start_time: None,
            pod_ips: &[],
            host_ip: None,
            terminating: true,
            terminal: false,
            failure: None,
            qos_class: None,
        },
    );
    assert_eq!(s.display_status.as_deref(), Some("Terminating"));
    assert_eq!(cond(&s, "Ready").status, "False");
}
