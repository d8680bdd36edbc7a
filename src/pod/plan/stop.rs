//! When a pod stops for good and in which order its containers stop: the active deadline
//! (`activeDeadlineSeconds`, the kubelet's `activeDeadlineHandler`), whether a sync left the pod finished,
//! the grace period of a stop and the kubelet's `terminationOrdering` (native sidecars stop after the
//! regular containers, in reverse order).
//!
//! Pure like its parent: time is a parameter, nothing reads the clock.

use std::time::Duration;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::jiff::Timestamp;

use super::{is_sidecar, pod_alive, Plan};
use crate::pod::state::Failure;
use crate::pod::view::PodView;

/// The message of the `DeadlineExceeded` failure and event (the kubelet's).
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// When the pod's active deadline passes, if it has one and has started.
pub fn deadline_at(spec: &PodSpec, start: Option<Timestamp>) -> Option<Timestamp> {
    let (deadline, start) = (spec.active_deadline_seconds?, start?);
    Timestamp::from_second(start.as_second().saturating_add(deadline)).ok()
}

/// The pod-level failure once the active deadline has passed at `now`.
pub fn deadline_exceeded(spec: &PodSpec, start: Option<Timestamp>, now: Timestamp) -> Option<Failure> {
    let (deadline, start) = (spec.active_deadline_seconds?, start?);
    (now.as_second() - start.as_second() >= deadline).then(|| Failure {
        reason: "DeadlineExceeded".into(),
        message: DEADLINE_MESSAGE.into(),
    })
}

/// Whether the plan does nothing but stop the pod: every container is done for good.
pub fn only_stops_pod(plan: &Plan) -> bool {
    plan.kill_pod
        && plan.create_sandbox.is_none()
        && plan.start_init.is_none()
        && plan.restart_sidecars.is_empty()
        && plan.start.is_empty()
        && plan.kill.is_empty()
}

/// Whether the pod has stopped for good after a sync that carried out `plan`: it was `stopping` (deleted
/// or failed) or the plan only stopped it, and `after` shows nothing running, sandbox included.
pub fn stopped_for_good(plan: &Plan, stopping: bool, after: &PodView) -> bool {
    (stopping || only_stops_pod(plan)) && !pod_alive(after)
}

/// The grace period of a pod stop: the deletion's override, else the spec's (30 seconds by default). The
/// 2-second floor applies to the stop signal, after the preStop hook.
pub fn grace(spec: &PodSpec, requested: Option<i64>) -> Duration {
    let secs = requested
        .unwrap_or(spec.termination_grace_period_seconds.unwrap_or(30))
        .max(0);
    Duration::from_secs(secs.unsigned_abs())
}

/// The grace period of a single kill: its own (a probe's `terminationGracePeriodSeconds`), else the pod's.
pub fn kill_grace(own: Option<i64>, pod: Duration) -> Duration {
    own.map_or(pod, |secs| Duration::from_secs(secs.max(0).unsigned_abs()))
}

/// Which of the `live` containers must be gone before `name` gets its stop signal: none for a regular
/// container; for a sidecar, every regular container and the sidecars after it (`terminationOrdering`).
pub fn stop_after(spec: &PodSpec, name: &str, live: &[String]) -> Vec<String> {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let Some(pos) = init.iter().position(|c| c.name == name && is_sidecar(c)) else {
        return Vec::new();
    };
    live.iter()
        .filter(|n| match init.iter().position(|c| &c.name == *n) {
            Some(i) => i > pos && init.get(i).is_some_and(is_sidecar),
            None => true,
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests;
