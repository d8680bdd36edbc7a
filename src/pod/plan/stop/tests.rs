//! Table tests of the stop decisions: deadline, finished, grace periods, termination order.

use k8s_openapi::api::core::v1::{Container, PodSpec};

use super::*;
use crate::pod::plan::Kill;
use crate::pod::view::{ContainerView, RunState, SandboxView};

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).unwrap_or_default()
}

struct DeadlineRow {
    deadline: Option<i64>,
    start: Option<i64>,
    now: i64,
    exceeded: bool,
    wake_at: Option<i64>,
}

#[test]
fn active_deadline() {
    let rows = [
        DeadlineRow {
            deadline: None,
            start: Some(0),
            now: 1000,
            exceeded: false,
            wake_at: None,
        },
        DeadlineRow {
            deadline: Some(10),
            start: None,
            now: 1000,
            exceeded: false,
            wake_at: None,
        },
        DeadlineRow {
            deadline: Some(10),
            start: Some(0),
            now: 9,
            exceeded: false,
            wake_at: Some(10),
        },
        DeadlineRow {
            deadline: Some(10),
            start: Some(0),
            now: 10,
            exceeded: true,
            wake_at: Some(10),
        },
        DeadlineRow {
            deadline: Some(0),
            start: Some(5),
            now: 5,
            exceeded: true,
            wake_at: Some(5),
        },
    ];
    for row in rows {
        let spec = PodSpec {
            active_deadline_seconds: row.deadline,
            ..Default::default()
        };
        let start = row.start.map(ts);
        let failure = deadline_exceeded(&spec, start, ts(row.now));
        assert_eq!(
            failure.is_some(),
            row.exceeded,
            "deadline {:?} now {}",
            row.deadline,
            row.now
        );
        if let Some(f) = failure {
            assert_eq!(f.reason, "DeadlineExceeded");
            assert_eq!(f.message, DEADLINE_MESSAGE);
        }
        assert_eq!(deadline_at(&spec, start), row.wake_at.map(ts));
    }
}

fn instance(name: &str, state: RunState) -> ContainerView {
    ContainerView {
        name: name.into(),
        id: format!("{name}-0"),
        attempt: 0,
        sandbox_id: "sb0".into(),
        spec_hash: "h".into(),
        image: "img".into(),
        image_id: "sha256:1".into(),
        state,
        created_at: ts(0),
        started_at: None,
        finished_at: None,
        exit_code: 0,
        signal: None,
        reason: String::new(),
        message: String::new(),
    }
}

struct FinishedRow {
    what: &'static str,
    plan: Plan,
    stopping: bool,
    running: bool,
    sandbox_ready: bool,
    finished: bool,
}

#[test]
fn finished_after_sync() {
    let stop_pod = Plan {
        kill_pod: true,
        ..Default::default()
    };
    let kill_one = Plan {
        kill_pod: true,
        kill: vec![Kill {
            name: "a".into(),
            id: "a-0".into(),
            message: String::new(),
            grace: None,
        }],
        ..Default::default()
    };
    #[rustfmt::skip]
    let rows = [
        FinishedRow { what: "nothing to do, not stopping", plan: Plan::default(), stopping: false, running: false, sandbox_ready: false, finished: false },
        FinishedRow { what: "plan only stops the pod, all gone", plan: stop_pod.clone(), stopping: false, running: false, sandbox_ready: false, finished: true },
        FinishedRow { what: "plan only stops the pod, sandbox still up", plan: stop_pod.clone(), stopping: false, running: false, sandbox_ready: true, finished: false },
        FinishedRow { what: "plan does more than stop the pod", plan: kill_one, stopping: false, running: false, sandbox_ready: false, finished: false },
        FinishedRow { what: "stopping, all gone", plan: Plan::default(), stopping: true, running: false, sandbox_ready: false, finished: true },
        FinishedRow { what: "stopping, sandbox still up", plan: Plan::default(), stopping: true, running: false, sandbox_ready: true, finished: false },
        FinishedRow { what: "stopping, a container still runs", plan: stop_pod, stopping: true, running: true, sandbox_ready: false, finished: false },
    ];
    for row in rows {
        let after = PodView {
            sandbox: Some(SandboxView {
                id: "sb0".into(),
                attempt: 0,
                ready: row.sandbox_ready,
            }),
            containers: vec![instance(
                "a",
                if row.running {
                    RunState::Running
                } else {
                    RunState::Exited
                },
            )],
            ..Default::default()
        };
        assert_eq!(
            stopped_for_good(&row.plan, row.stopping, &after),
            row.finished,
            "{}",
            row.what
        );
    }
}

struct GraceRow {
    spec: Option<i64>,
    requested: Option<i64>,
    own: Option<i64>,
    pod_secs: u64,
    kill_secs: u64,
}

#[test]
fn grace_periods() {
    let rows = [
        GraceRow {
            spec: None,
            requested: None,
            own: None,
            pod_secs: 30,
            kill_secs: 30,
        },
        GraceRow {
            spec: Some(5),
            requested: None,
            own: Some(1),
            pod_secs: 5,
            kill_secs: 1,
        },
        GraceRow {
            spec: Some(5),
            requested: Some(0),
            own: None,
            pod_secs: 0,
            kill_secs: 0,
        },
        GraceRow {
            spec: Some(-3),
            requested: None,
            own: Some(-1),
            pod_secs: 0,
            kill_secs: 0,
        },
    ];
    for row in rows {
        let spec = PodSpec {
            termination_grace_period_seconds: row.spec,
            ..Default::default()
        };
        let pod = grace(&spec, row.requested);
        assert_eq!(
            pod,
            Duration::from_secs(row.pod_secs),
            "{:?}/{:?}",
            row.spec,
            row.requested
        );
        assert_eq!(kill_grace(row.own, pod), Duration::from_secs(row.kill_secs));
    }
}

struct OrderRow {
    name: &'static str,
    after: &'static [&'static str],
}

#[test]
fn sidecars_stop_after_regular_containers_in_reverse_order() {
    let c = |name: &str, sidecar: bool| Container {
        name: name.into(),
        restart_policy: sidecar.then(|| "Always".into()),
        ..Default::default()
    };
    let spec = PodSpec {
        init_containers: Some(vec![c("s1", true), c("init", false), c("s2", true)]),
        containers: vec![c("app", false), c("web", false)],
        ..Default::default()
    };
    let live: Vec<String> = ["s1", "s2", "app", "web"].map(String::from).to_vec();
    let rows = [
        OrderRow {
            name: "app",
            after: &[],
        },
        OrderRow {
            name: "s2",
            after: &["app", "web"],
        },
        OrderRow {
            name: "s1",
            after: &["s2", "app", "web"],
        },
        OrderRow {
            name: "init",
            after: &[],
        },
    ];
    for row in rows {
        assert_eq!(stop_after(&spec, row.name, &live), row.after, "{}", row.name);
    }
}
