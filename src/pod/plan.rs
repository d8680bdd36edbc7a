//! What to do next for a pod: a pure function of the spec and what runs, ported from the kubelet's
//! `computePodActions` (pkg/kubelet/kuberuntime/kuberuntime_manager.go). The worker executes the plan.
//!
//! Init progress is read from the current sandbox only, so a recreated sandbox runs every init container
//! again (the kubelet's rule, without its stale-status bugs). Crash-loop backoff is applied when a start is
//! attempted, as the kubelet's `doBackOff` does, not here.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Container;

use super::view::{ContainerView, PodView, RunState};
use crate::api::PodGroup;

/// A container to kill, and why (the `Killing` event message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    /// Container name.
    pub name: String,
    /// OCI runtime id of the instance.
    pub id: String,
    /// Message for the event.
    pub message: String,
    /// Grace period override in seconds (a probe's `terminationGracePeriodSeconds`).
    pub grace: Option<i64>,
}

/// The actions of one sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Stop every container and the sandbox.
    pub kill_pod: bool,
    /// Create a sandbox with this attempt number (after `kill_pod` when one exists).
    pub create_sandbox: Option<u32>,
    /// Containers to kill without killing the pod.
    pub kill: Vec<Kill>,
    /// The init container to start next.
    pub start_init: Option<String>,
    /// Regular containers to start.
    pub start: Vec<String>,
}

impl Plan {
    /// Whether the plan does nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

/// Inputs of [`compute`] besides the pod.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// What runs.
    pub view: &'a PodView,
    /// Hash of each container's current spec, by name.
    pub hashes: &'a HashMap<String, String>,
    /// Deletion requested, or the pod failed (deadline exceeded): stop everything, start nothing.
    pub stopping: bool,
}

fn restart_policy(pod: &PodGroup) -> &str {
    pod.spec.pod.restart_policy.as_deref().unwrap_or("Always")
}

/// The kubelet's `ShouldContainerBeRestarted` (a Created instance is a start in progress here: not restarted).
pub fn should_restart(latest: Option<&ContainerView>, policy: &str) -> bool {
    match latest {
        None => true,
        Some(s) if s.state != RunState::Exited => false,
        Some(_) if policy == "Never" => false,
        Some(s) if policy == "OnFailure" && s.exit_code == 0 => false,
        Some(_) => true,
    }
}

fn init_failed(s: &ContainerView) -> bool {
    s.state == RunState::Exited && (s.exit_code != 0 || s.reason == "OOMKilled")
}

/// The kubelet's `findNextInitContainerToRun`, over the current sandbox: the last failed init container's
/// status, the init container to run next, and whether initialization is done.
pub fn next_init<'a>(
    init: &'a [Container],
    app: &[Container],
    view: &'a PodView,
) -> (Option<&'a ContainerView>, Option<&'a Container>, bool) {
    if init.is_empty() {
        return (None, None, true);
    }
    if app.iter().any(|c| {
        view.latest_in_sandbox(&c.name)
            .is_some_and(|s| s.state == RunState::Running)
    }) {
        return (None, None, true);
    }
    for c in init.iter().rev() {
        if let Some(s) = view.latest_in_sandbox(&c.name).filter(|s| init_failed(s)) {
            return (Some(s), Some(c), false);
        }
    }
    for (i, c) in init.iter().enumerate().rev() {
        let Some(s) = view.latest_in_sandbox(&c.name) else {
            continue;
        };
        if s.state != RunState::Exited {
            return (None, None, false);
        }
        return match init.get(i + 1) {
            None => (None, None, true),
            Some(next) => (None, Some(next), false),
        };
    }
    (None, init.first(), false)
}

/// Computes the next actions for `pod`.
pub fn compute(pod: &PodGroup, input: &PlanInput<'_>) -> Plan {
    let spec = &pod.spec.pod;
    let view = input.view;
    let policy = restart_policy(pod);
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let mut plan = Plan::default();
    if input.stopping {
        plan.kill_pod = view.live().next().is_some() || view.sandbox.as_ref().is_some_and(|s| s.ready);
        return plan;
    }

    let sandbox_change = match &view.sandbox {
        None => Some(0),
        Some(s) if !s.ready => Some(s.attempt + 1),
        Some(_) => None,
    };
    if let Some(attempt) = sandbox_change {
        plan.kill_pod = view.sandbox.is_some();
        if policy == "Never" && attempt != 0 && !view.containers.is_empty() {
            // The pod has run and must not run again: do not make a sandbox just to tear it down.
            return plan;
        }
        let to_start: Vec<String> = spec
            .containers
            .iter()
            .filter(|c| {
                !(policy == "OnFailure"
                    && view
                        .latest(&c.name)
                        .is_some_and(|s| s.state == RunState::Exited && s.exit_code == 0))
            })
            .map(|c| c.name.clone())
            .collect();
        let initialized = spec.containers.iter().any(|c| view.latest(&c.name).is_some());
        if to_start.is_empty() && initialized {
            return plan;
        }
        plan.create_sandbox = Some(attempt);
        match init.first() {
            Some(first) => plan.start_init = Some(first.name.clone()),
            None => plan.start = to_start,
        }
        return plan;
    }

    let (last_failed, next, done) = next_init(init, &spec.containers, view);
    if !done {
        if let Some(next) = next {
            if last_failed.is_some() && policy == "Never" {
                plan.kill_pod = true;
            } else {
                plan.start_init = Some(next.name.clone());
            }
        }
        return plan;
    }

    let mut keep = 0;
    for c in &spec.containers {
        let latest = view.latest(&c.name);
        match latest {
            Some(s) if s.state != RunState::Exited => {
                let current = input.hashes.get(&c.name);
                if current.is_some_and(|h| *h != s.spec_hash) {
                    plan.kill.push(Kill {
                        name: c.name.clone(),
                        id: s.id.clone(),
                        message: format!("Container {} definition changed, will be restarted", c.name),
                        grace: None,
                    });
                    plan.start.push(c.name.clone());
                } else {
                    keep += 1;
                }
            }
            _ => {
                if should_restart(latest, policy) {
                    plan.start.push(c.name.clone());
                }
            }
        }
    }
    if keep == 0 && plan.start.is_empty() {
        plan.kill_pod = view.live().next().is_some() || view.sandbox.as_ref().is_some_and(|s| s.ready);
    }
    plan
}
