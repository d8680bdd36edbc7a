//! Pod status as a pure function of the spec and what was observed, computed the way the kubelet computes
//! it: container statuses (`convertToAPIContainerStatuses`), phase (`getPhase`) and the five conditions
//! (pkg/kubelet/status/generate.go), with terminal phases sticky and condition transition times kept while
//! a condition's status does not change. `started` and `ready` of regular containers and sidecars come
//! from the probe results in the view (the prober manager's `UpdatePodStatus`).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::state::Failure;
use super::view::{ContainerView, PodView, RunState};
use crate::api::{PodGroup, PodGroupStatus};

mod conditions;
mod phase;

use conditions::conditions;
pub use phase::phase;

/// A waiting reason remembered from the last failed start of a container (the kubelet's reason cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// `ErrImagePull`, `CrashLoopBackOff`, `CreateContainerConfigError`, ...
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
}

/// Inputs of [`compute`] besides the pod.
#[derive(Debug, Clone)]
pub struct StatusInput<'a> {
    /// Observed runtime state.
    pub view: &'a PodView,
    /// Last start failures, by container name.
    pub reasons: &'a HashMap<String, Waiting>,
    /// The status reported before (for sticky phases and transition times).
    pub previous: Option<&'a PodGroupStatus>,
    /// Now.
    pub now: Timestamp,
    /// When the pod was first seen by this node.
    pub start_time: Option<Timestamp>,
    /// Pod IPs.
    pub pod_ips: &'a [String],
    /// Node IP.
    pub host_ip: Option<&'a str>,
    /// Deletion requested: readiness goes false, nothing restarts.
    pub terminating: bool,
    /// The pod has been stopped for good (all its containers are done and will not run again).
    pub terminal: bool,
    /// A pod-level failure (`DeadlineExceeded`) with its message.
    pub failure: Option<&'a Failure>,
    /// The pod's QoS class.
    pub qos_class: Option<String>,
}

/// Computes the full status of `pod`.
pub fn compute(pod: &PodGroup, input: &StatusInput<'_>) -> PodGroupStatus {
    let spec = &pod.spec.pod;
    let init_specs = spec.init_containers.as_deref().unwrap_or_default();
    let has_init = !init_specs.is_empty();
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let init = statuses(init_specs, true, has_init, restart_policy, input);
    let app = statuses(&spec.containers, false, has_init, restart_policy, input);

    let previous_phase = input.previous.and_then(|p| p.pod.phase.clone());
    let has_initialized = any_regular_started(&app);
    let mut phase = phase(spec, &init, &app, input.terminal, has_initialized).to_string();
    let (mut reason, mut message) = (None, None);
    if let Some(f) = input.failure {
        phase = "Failed".to_string();
        reason = Some(f.reason.clone());
        message = Some(f.message.clone());
    }
    if let Some(prev) = previous_phase
        .as_deref()
        .filter(|p| matches!(*p, "Succeeded" | "Failed"))
    {
        // A terminal phase never changes again ("Pod attempted illegal phase transition").
        if phase != prev {
            phase = prev.to_string();
        }
        reason = reason.or_else(|| input.previous.and_then(|p| p.pod.reason.clone()));
        message = message.or_else(|| input.previous.and_then(|p| p.pod.message.clone()));
    }

    let conditions = conditions(pod, &init, &app, &phase, input);
    let mut status = PodStatus {
        phase: Some(phase),
        reason,
        message,
        conditions: Some(conditions),
        host_ip: input.host_ip.map(String::from),
        host_ips: input.host_ip.map(|ip| vec![HostIP { ip: ip.to_string() }]),
        pod_ip: input.pod_ips.first().cloned(),
        pod_ips: (!input.pod_ips.is_empty())
            .then(|| input.pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: input.start_time.map(Time),
        qos_class: input.qos_class.clone(),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(app),
        observed_generation: pod.metadata.generation,
        ..Default::default()
    };
    if status.init_container_statuses.is_none() && has_init {
        status.init_container_statuses = Some(Vec::new());
    }
    let mut out = PodGroupStatus {
        pod: status,
        ..Default::default()
    };
    super::printer::fill_columns(pod, &mut out, input.terminating);
    out
}

fn time(t: Option<Timestamp>) -> Option<Time> {
    t.map(Time)
}

fn terminated(c: &ContainerView) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: c.exit_code,
        signal: c.signal,
        reason: (!c.reason.is_empty()).then(|| c.reason.clone()),
        message: (!c.message.is_empty()).then(|| c.message.clone()),
        started_at: time(c.started_at),
        finished_at: time(c.finished_at),
        container_id: Some(container_id(c)),
    }
}

fn container_id(c: &ContainerView) -> String {
    format!("peapod://{}", c.id)
}

fn state_of(c: &ContainerView) -> ContainerState {
    match c.state {
        RunState::Running => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time(c.started_at),
            }),
            ..Default::default()
        },
        RunState::Exited => ContainerState {
            terminated: Some(terminated(c)),
            ..Default::default()
        },
        RunState::Created => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ContainerCreating".into()),
                message: None,
            }),
            ..Default::default()
        },
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: message.filter(|m| !m.is_empty()).map(String::from),
        }),
        ..Default::default()
    }
}

/// The kubelet's `ShouldContainerBeRestarted` for the status side.
fn should_restart(c: &Container, view: &PodView, restart_policy: &str, terminating: bool) -> bool {
    if terminating {
        return false;
    }
    match view.latest(&c.name) {
        None => true,
        Some(s) if s.state == RunState::Running => false,
        Some(s) if s.state == RunState::Created => true,
        Some(_) if restart_policy == "Never" => false,
        Some(s) if restart_policy == "OnFailure" && s.exit_code == 0 => false,
        Some(_) => true,
    }
}

fn statuses(
    containers: &[Container],
    is_init: bool,
    has_init: bool,
    restart_policy: &str,
    input: &StatusInput<'_>,
) -> Vec<ContainerStatus> {
    let default_reason = if has_init {
        "PodInitializing"
    } else {
        "ContainerCreating"
    };
    containers
        .iter()
        .map(|c| {
            let mut instances = input.view.containers.iter().filter(|v| v.name == c.name);
            let newest = instances.next();
            let previous = instances.next();
            let mut status = ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                state: Some(waiting(default_reason, None)),
                ..Default::default()
            };
            if let Some(n) = newest {
                status.restart_count = i32::try_from(n.attempt).unwrap_or(i32::MAX);
                status.image_id = n.image_id.clone();
                status.container_id = Some(container_id(n));
                status.state = Some(state_of(n));
                if let Some(p) = previous {
                    status.last_state = Some(state_of(p));
                }
            }
            let sidecar = is_init && super::plan::is_sidecar(c);
            let succeeded_init = is_init
                && !sidecar
                && newest.is_some_and(|n| n.state == RunState::Exited && n.exit_code == 0);
            if !succeeded_init
                && should_restart(
                    c,
                    input.view,
                    if sidecar { "Always" } else { restart_policy },
                    input.terminating,
                )
            {
                if let Some(w) = input.reasons.get(&c.name) {
                    if status.state.as_ref().is_some_and(|s| s.terminated.is_some()) {
                        status.last_state = status.state.take();
                    }
                    status.state = Some(waiting(&w.reason, Some(&w.message)));
                }
            }
            let running = status.state.as_ref().is_some_and(|s| s.running.is_some());
            if is_init && !sidecar {
                status.started = Some(running);
                status.ready = succeeded_init;
            } else {
                // The prober manager's `UpdatePodStatus`: started once the startup probe (if any)
                // succeeded, ready once started and the readiness probe (if any) succeeded.
                let probes = &input.view.probes;
                let id = newest.map(|n| n.id.as_str()).unwrap_or_default();
                let started = running && probes.started.contains(id);
                status.started = Some(started);
                status.ready = started && probes.ready.contains(id) && !input.terminating;
            }
            status
        })
        .collect()
}

fn any_regular_started(app: &[ContainerStatus]) -> bool {
    app.iter().any(|s| {
        let st = s.state.as_ref();
        st.is_some_and(|st| st.running.is_some() || st.terminated.is_some())
            || s.last_state.as_ref().is_some_and(|l| l.terminated.is_some())
    })
}
