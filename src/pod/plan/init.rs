//! The init-container half of the plan, ported from the kubelet's `computeInitContainerActions`
//! (pkg/kubelet/kuberuntime/kuberuntime_container.go): start init containers one by one, restart a
//! failed regular one per the pod's restart policy, and keep native sidecars running.
//!
//! Pure like its parent: it reads the view and writes only into the plan.

use super::{changed_kill, is_sidecar, probe_kill, restart_policy, Plan, PlanInput};
use crate::api::PodGroup;
use crate::pod::view::{ContainerView, RunState};

fn failed(s: &ContainerView) -> bool {
    s.state == RunState::Exited && (s.exit_code != 0 || s.reason == "OOMKilled")
}

/// Adds the init-container actions to `plan` and says whether the pod is initialized (regular
/// containers may run). Sets `plan.kill_pod` when a regular init container failed under `Never`.
///
/// The init containers are walked backwards from the last one that ran in the current sandbox: the
/// first one met decides what starts next; sidecars before it are restarted when they exited, failed a
/// probe or changed. Once a regular container runs, only sidecars are looked at.
pub(super) fn actions(pod: &PodGroup, input: &PlanInput<'_>, plan: &mut Plan) -> bool {
    let spec = &pod.spec.pod;
    let init = spec.init_containers.as_deref().unwrap_or_default();
    if init.is_empty() {
        return true;
    }
    let view = input.view;
    let policy = restart_policy(pod);
    let last = init.len() - 1;
    let mut initialized = spec.containers.iter().any(|c| {
        view.latest_in_sandbox(&c.name)
            .is_some_and(|s| s.state != RunState::Exited)
    });
    let mut seen = initialized;
    let mut next = None;
    let mut restarts = Vec::new();

    for (i, c) in init.iter().enumerate().rev() {
        let sidecar = is_sidecar(c);
        let Some(s) = view.latest_in_sandbox(&c.name) else {
            if seen && sidecar {
                restarts.push(i);
            }
            continue;
        };
        if seen && !sidecar {
            // After initialization only sidecars need to be kept running.
            continue;
        }
        match s.state {
            // A start in progress: wait for it.
            RunState::Created => {}
            RunState::Running if !sidecar => {}
            RunState::Running => {
                let reported = view.probes.failed.get(&s.id);
                if !view.probes.started.contains(&s.id) {
                    // Not started yet: wait for its startup probe, restart it when that failed.
                    if let Some(reported) = reported {
                        plan.kill.push(probe_kill(c, s, *reported, true, true));
                        restarts.push(i);
                    }
                } else {
                    if i == last {
                        initialized = true;
                    } else if !seen {
                        next = Some(i + 1);
                    }
                    if input.changed(s) {
                        let message = format!("Init container {} definition changed", c.name);
                        plan.kill.push(changed_kill(c, s, message));
                        restarts.push(i);
                    } else if let Some(reported) = reported {
                        plan.kill.push(probe_kill(c, s, *reported, true, true));
                        restarts.push(i);
                    }
                }
            }
            RunState::Exited if sidecar => restarts.push(i),
            RunState::Exited if failed(s) => {
                if policy == "Never" {
                    plan.kill_pod = true;
                    plan.kill.clear();
                    return false;
                }
                next = Some(i);
            }
            RunState::Exited if i == last => initialized = true,
            RunState::Exited => next = Some(i + 1),
        }
        seen = true;
    }
    if !seen {
        next = Some(0);
    }
    restarts.sort_unstable();
    let name = |i: usize| init.get(i).map(|c| c.name.clone());
    plan.restart_sidecars = restarts.into_iter().filter_map(name).collect();
    plan.start_init = next.and_then(name);
    initialized
}
