//! The pod's five conditions as the kubelet generates them (pkg/kubelet/status/generate.go):
//! `PodReadyToStartContainers`, `Initialized`, `Ready` (readiness gates included), `ContainersReady` and
//! `PodScheduled`; conditions owned by others are kept, and transition times stay while a condition's
//! status does not change.

use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{any_regular_started, StatusInput};
use crate::api::PodGroup;
use crate::pod::plan::is_sidecar;

/// The conditions this module owns; others (readiness gates, `DisruptionTarget`) are kept as they were.
const OURS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

fn go_list(names: &[String]) -> String {
    format!("[{}]", names.join(" "))
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(String::from),
        message: message.filter(|m| !m.is_empty()),
        ..Default::default()
    }
}

/// Every condition of the pod, in the kubelet's order, with transition times.
pub(super) fn conditions(
    pod: &PodGroup,
    init: &[ContainerStatus],
    app: &[ContainerStatus],
    phase: &str,
    input: &StatusInput<'_>,
) -> Vec<PodCondition> {
    let spec = &pod.spec.pod;
    let sandbox_ready = input.view.sandbox.as_ref().is_some_and(|s| s.ready) && !input.terminal;
    let previous = input
        .previous
        .and_then(|p| p.pod.conditions.clone())
        .unwrap_or_default();
    let containers_ready = containers_ready(spec, init, app, phase);
    let mut out = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None),
        initialized(spec, init, app, phase),
        ready(spec, &containers_ready, &previous),
        containers_ready,
        condition("PodScheduled", true, None, None),
    ];
    out.extend(
        previous
            .iter()
            .filter(|c| !OURS.contains(&c.type_.as_str()))
            .cloned(),
    );
    for c in out.iter_mut() {
        let kept = previous
            .iter()
            .find(|p| p.type_ == c.type_ && p.status == c.status);
        c.last_transition_time = match kept {
            Some(p) if p.last_transition_time.is_some() => p.last_transition_time.clone(),
            _ => Some(Time(input.now)),
        };
        if c.last_probe_time.is_none() {
            c.last_probe_time = kept.and_then(|p| p.last_probe_time.clone());
        }
    }
    out
}

fn initialized(
    spec: &PodSpec,
    init: &[ContainerStatus],
    app: &[ContainerStatus],
    phase: &str,
) -> PodCondition {
    let mut incomplete = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        let s = init.iter().find(|s| s.name == c.name);
        let done = s.is_some_and(|s| {
            if is_sidecar(c) {
                s.started == Some(true)
            } else {
                s.ready
            }
        });
        if !done {
            incomplete.push(c.name.clone());
        }
    }
    if phase == "Succeeded" {
        condition("Initialized", true, Some("PodCompleted"), None)
    } else if incomplete.is_empty() || any_regular_started(app) {
        condition("Initialized", true, None, None)
    } else {
        let msg = format!("containers with incomplete status: {}", go_list(&incomplete));
        condition("Initialized", false, Some("ContainersNotInitialized"), Some(msg))
    }
}

fn containers_ready(
    spec: &PodSpec,
    init: &[ContainerStatus],
    app: &[ContainerStatus],
    phase: &str,
) -> PodCondition {
    let mut unready = Vec::new();
    for c in spec.init_containers.iter().flatten().filter(|c| is_sidecar(c)) {
        if !init.iter().any(|s| s.name == c.name && s.ready) {
            unready.push(c.name.clone());
        }
    }
    for c in &spec.containers {
        if !app.iter().any(|s| s.name == c.name && s.ready) {
            unready.push(c.name.clone());
        }
    }
    match phase {
        "Succeeded" => condition("ContainersReady", false, Some("PodCompleted"), None),
        "Failed" => condition("ContainersReady", false, Some("PodFailed"), None),
        _ if unready.is_empty() => condition("ContainersReady", true, None, None),
        _ => {
            let msg = format!("containers with unready status: {}", go_list(&unready));
            condition("ContainersReady", false, Some("ContainersNotReady"), Some(msg))
        }
    }
}

/// `Ready`: `ContainersReady`, then the readiness gates (conditions others set).
fn ready(spec: &PodSpec, containers_ready: &PodCondition, previous: &[PodCondition]) -> PodCondition {
    let ready = PodCondition {
        type_: "Ready".into(),
        ..containers_ready.clone()
    };
    if containers_ready.status != "True" {
        return ready;
    }
    let mut gates = Vec::new();
    for g in spec.readiness_gates.iter().flatten() {
        match previous.iter().find(|c| c.type_ == g.condition_type) {
            None => gates.push(format!(
                "corresponding condition of pod readiness gate {:?} does not exist.",
                g.condition_type
            )),
            Some(c) if c.status != "True" => gates.push(format!(
                "the status of pod readiness gate {:?} is not \"True\", but {}",
                g.condition_type, c.status
            )),
            Some(_) => {}
        }
    }
    if gates.is_empty() {
        return ready;
    }
    condition(
        "Ready",
        false,
        Some("ReadinessGatesNotReady"),
        Some(gates.join(", ")),
    )
}
