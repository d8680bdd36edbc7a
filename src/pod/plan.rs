//! What to do next for a pod: a pure function of the spec and what runs, ported from the kubelet's
//! `computePodActions` and `computeInitContainerActions` (pkg/kubelet/kuberuntime). The worker executes
//! the plan.
//!
//! Init progress is read from the current sandbox only, so a recreated sandbox runs every init container
//! again (the kubelet's rule, without its stale-status bugs). Native sidecars (init containers with
//! `restartPolicy: Always`) count as done once started (`view.probes.started`) and are kept running for
//! the life of the pod whatever its restart policy. Crash-loop backoff is applied when a start is
//! attempted, as the kubelet's `doBackOff` does, not here. Probe results are read from `view.probes`;
//! this module never probes.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Container;

use super::view::{ContainerView, FailedProbe, PodView, RunState};
use crate::api::PodGroup;

mod init;
mod stop;

pub use stop::{
    deadline_at, deadline_exceeded, grace, kill_grace, only_stops_pod, stop_after, stopped_for_good,
    DEADLINE_MESSAGE,
};

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

/// The actions of one sync, executed in this order: kill the pod, kill containers, create the sandbox,
/// restart sidecars, start the next init container, start regular containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Stop every container and the sandbox.
    pub kill_pod: bool,
    /// Create a sandbox with this attempt number (after `kill_pod` when one exists).
    pub create_sandbox: Option<u32>,
    /// Containers to kill without killing the pod.
    pub kill: Vec<Kill>,
    /// Sidecars to start again, in spec order: exited ones, and those killed above for a failed probe
    /// or a changed spec. Started before `start_init`.
    pub restart_sidecars: Vec<String>,
    /// The init container (regular or sidecar) to start next.
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

impl PlanInput<'_> {
    /// Whether the running instance `s` was made from another spec than the current one.
    fn changed(&self, s: &ContainerView) -> bool {
        self.hashes.get(&s.name).is_some_and(|h| *h != s.spec_hash)
    }
}

fn restart_policy(pod: &PodGroup) -> &str {
    pod.spec.pod.restart_policy.as_deref().unwrap_or("Always")
}

pub use crate::api::is_sidecar;

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

impl FailedProbe {
    fn name(self) -> &'static str {
        match self {
            Self::Liveness => "liveness",
            Self::Startup => "startup",
        }
    }

    /// The probe's own `terminationGracePeriodSeconds`, which overrides the pod's for this kill.
    fn grace(self, c: &Container) -> Option<i64> {
        let probe = match self {
            Self::Liveness => c.liveness_probe.as_ref(),
            Self::Startup => c.startup_probe.as_ref(),
        };
        probe.and_then(|p| p.termination_grace_period_seconds)
    }
}

/// The kill of instance `s` of `c` for the probe that failed, with the kubelet's message:
/// `Container web failed liveness probe[, will be restarted]` for regular containers,
/// `Init container proxy failed startup probe` for sidecars.
fn probe_kill(c: &Container, s: &ContainerView, failed: FailedProbe, sidecar: bool, restart: bool) -> Kill {
    let what = failed.name();
    let message = match (sidecar, restart) {
        (true, _) => format!("Init container {} failed {what} probe", c.name),
        (false, true) => format!("Container {} failed {what} probe, will be restarted", c.name),
        (false, false) => format!("Container {} failed {what} probe", c.name),
    };
    Kill {
        name: c.name.clone(),
        id: s.id.clone(),
        message,
        grace: failed.grace(c),
    }
}

/// The kill of instance `s` of `c` because its spec changed.
fn changed_kill(c: &Container, s: &ContainerView, message: String) -> Kill {
    Kill {
        name: c.name.clone(),
        id: s.id.clone(),
        message,
        grace: None,
    }
}

fn pod_alive(view: &PodView) -> bool {
    view.live().next().is_some() || view.sandbox.as_ref().is_some_and(|s| s.ready)
}

/// Computes the next actions for `pod`.
pub fn compute(pod: &PodGroup, input: &PlanInput<'_>) -> Plan {
    let spec = &pod.spec.pod;
    let view = input.view;
    let policy = restart_policy(pod);
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let mut plan = Plan::default();
    if input.stopping {
        plan.kill_pod = pod_alive(view);
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

    let initialized = init::actions(pod, input, &mut plan);
    if plan.kill_pod || !initialized {
        return plan;
    }

    let mut keep = 0;
    for c in &spec.containers {
        let latest = view.latest(&c.name);
        let Some(s) = latest.filter(|s| s.state != RunState::Exited) else {
            if should_restart(latest, policy) {
                plan.start.push(c.name.clone());
            }
            continue;
        };
        if input.changed(s) {
            // Restarted whatever the restart policy: the spec changed.
            let message = format!("Container {} definition changed, will be restarted", c.name);
            plan.kill.push(changed_kill(c, s, message));
            plan.start.push(c.name.clone());
        } else if let Some(failed) = view.probes.failed.get(&s.id) {
            let restart = policy != "Never";
            plan.kill.push(probe_kill(c, s, *failed, false, restart));
            if restart {
                plan.start.push(c.name.clone());
            }
        } else {
            keep += 1;
        }
    }
    if keep == 0 && plan.start.is_empty() {
        // Every regular container is done for good: stop the pod, sidecars included, and restart
        // nothing (sidecars must not keep the pod alive). The pod kill replaces single kills.
        plan.kill_pod = pod_alive(view);
        plan.kill.clear();
        plan.restart_sidecars.clear();
    }
    plan
}
