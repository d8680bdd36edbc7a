//! Table tests for the pure plan and status functions, with the kubelet's scenarios (init containers,
//! restart policies, crash loops, sandbox loss, termination, sidecars, probes) and its exact reasons and
//! messages. This file holds the fixtures; the scenarios live in the submodules.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use super::plan::{self, Plan, PlanInput};
use super::status::{self, StatusInput, Waiting};
use super::view::{ContainerView, PodView, ProbeView, RunState, SandboxView};
use crate::api::{PodGroup, PodGroupSpec, PodGroupStatus};

mod lifecycle;
mod sidecars;

pub(super) fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).unwrap()
}

pub(super) fn pod(policy: &str, init: &[&str], app: &[&str]) -> PodGroup {
    let mk = |n: &&str| Container {
        name: n.to_string(),
        image: Some("img".into()),
        ..Default::default()
    };
    PodGroup {
        metadata: ObjectMeta {
            name: Some("p".into()),
            namespace: Some("default".into()),
            uid: Some("u".into()),
            ..Default::default()
        },
        spec: PodGroupSpec {
            pod: PodSpec {
                restart_policy: Some(policy.into()),
                init_containers: (!init.is_empty()).then(|| init.iter().map(mk).collect()),
                containers: app.iter().map(mk).collect(),
                ..Default::default()
            },
        },
        status: None,
    }
}

pub(super) fn c(name: &str, attempt: u32, state: RunState, exit: i32) -> ContainerView {
    ContainerView {
        name: name.into(),
        id: format!("{name}-{attempt}"),
        attempt,
        sandbox_id: "sb0".into(),
        spec_hash: "h".into(),
        image: "img".into(),
        image_id: "sha256:1".into(),
        state,
        created_at: ts(attempt as i64 * 10),
        started_at: Some(ts(attempt as i64 * 10 + 1)),
        finished_at: (state == RunState::Exited).then(|| ts(attempt as i64 * 10 + 2)),
        exit_code: exit,
        signal: None,
        reason: match (state, exit) {
            (RunState::Exited, 0) => "Completed".into(),
            (RunState::Exited, _) => "Error".into(),
            _ => String::new(),
        },
        message: String::new(),
    }
}

/// The first instance of `name`, running.
pub(super) fn running(name: &str) -> ContainerView {
    c(name, 0, RunState::Running, 0)
}

/// The first instance of `name`, exited with `code`.
pub(super) fn exited(name: &str, code: i32) -> ContainerView {
    c(name, 0, RunState::Exited, code)
}

/// A view of `cs` in sandbox `sb0`. Running instances are started and ready, as the worker reports
/// containers without probes; tests of probes take them out again.
pub(super) fn view(ready: bool, mut cs: Vec<ContainerView>) -> PodView {
    cs.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    let running: Vec<String> = cs
        .iter()
        .filter(|c| c.state == RunState::Running)
        .map(|c| c.id.clone())
        .collect();
    PodView {
        sandbox: Some(SandboxView {
            id: "sb0".into(),
            attempt: 0,
            ready,
        }),
        containers: cs,
        probes: ProbeView {
            started: running.iter().cloned().collect(),
            ready: running.into_iter().collect(),
            failed: HashMap::new(),
        },
    }
}

/// Makes the init containers named in `names` native sidecars (`restartPolicy: Always`).
pub(super) fn sidecars(mut p: PodGroup, names: &[&str]) -> PodGroup {
    for c in p.spec.pod.init_containers.iter_mut().flatten() {
        if names.contains(&c.name.as_str()) {
            c.restart_policy = Some("Always".into());
        }
    }
    p
}

/// The hash of every container's spec, as the worker computes it (init containers included).
pub(super) fn hashes(p: &PodGroup) -> HashMap<String, String> {
    let spec = &p.spec.pod;
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| (c.name.clone(), "h".to_string()))
        .collect()
}

/// The plan of `p` with view `v` and spec hashes `h`.
pub(super) fn plan_hashed(p: &PodGroup, v: &PodView, h: &HashMap<String, String>, stopping: bool) -> Plan {
    plan::compute(
        p,
        &PlanInput {
            view: v,
            hashes: h,
            stopping,
        },
    )
}

pub(super) fn plan_of(p: &PodGroup, v: &PodView) -> Plan {
    plan_hashed(p, v, &hashes(p), false)
}

/// The plan of a pod that is to stop (deleted or failed).
pub(super) fn stopping_plan_of(p: &PodGroup, v: &PodView) -> Plan {
    plan_hashed(p, v, &hashes(p), true)
}

pub(super) fn status_of(
    p: &PodGroup,
    v: &PodView,
    reasons: &HashMap<String, Waiting>,
    terminal: bool,
) -> PodGroupStatus {
    status::compute(
        p,
        &StatusInput {
            view: v,
            reasons,
            previous: None,
            now: ts(1000),
            start_time: Some(ts(0)),
            pod_ips: &[],
            host_ip: Some("192.0.2.1"),
            terminating: false,
            terminal,
            failure: None,
            qos_class: Some("BestEffort".into()),
        },
    )
}

/// The STATUS column of `p` with view `v` (no waiting reasons, not terminal).
pub(super) fn display(p: &PodGroup, v: &PodView) -> Option<String> {
    status_of(p, v, &HashMap::new(), false).display_status
}

pub(super) fn cond<'a>(s: &'a PodGroupStatus, t: &str) -> &'a k8s_openapi::api::core::v1::PodCondition {
    s.pod
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == t)
        .unwrap()
}
