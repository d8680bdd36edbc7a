//! Edits of a pod this node already admitted. The new version is judged against the admitted one (kept in
//! the pod's `admitted.json`, so the judgement is the same after any restart): by the Pod update rules, and
//! for an update Pod Security Admission calls significant (a changed image, seccomp or AppArmor annotation)
//! by the Pod Security Standards too. A refused edit is a Warning Event `InvalidUpdate` and the pod's status
//! message, worded like the API server's refusal of a Pod update; the pod runs on with its admitted spec
//! until the edit is reverted (or made acceptable).

use kube::ResourceExt;

use super::Agent;
use crate::api::{PodGroup, PodGroupStatus};
use crate::cluster::status::StatusUpdate;
use crate::pod::admitted::{admitted_part, same_admission, with_refusal, write_admitted, AdmittedError};
use crate::pod::events::Event;

/// The Event reason of a refused edit.
pub const INVALID_UPDATE: &str = "InvalidUpdate";

/// Records `pod` as admitted (on disk first, then in memory) unless it already is.
pub fn record_admitted(agent: &Agent, uid: &str, pod: &PodGroup) -> Result<(), AdmittedError> {
    let known = agent
        .specs
        .lock()
        .ok()
        .and_then(|s| s.get(uid).map(|old| same_admission(old, pod)))
        .unwrap_or(false);
    if known {
        return Ok(());
    }
    write_admitted(&agent.runtime, pod)?;
    if let Ok(mut s) = agent.specs.lock() {
        s.insert(uid.to_string(), admitted_part(pod));
    }
    Ok(())
}

/// Shows a refused edit: a Warning Event once per refusal (and once after a restart), and the status
/// message while it lasts.
pub fn refuse(agent: &Agent, pod: &PodGroup, uid: &str, message: &str) {
    let new = agent
        .refused
        .lock()
        .map(|mut r| r.insert(uid.to_string(), message.to_string()).as_deref() != Some(message))
        .unwrap_or(true);
    if new {
        tracing::warn!(pod = %pod.key(), error = %message, "edit refused; the pod runs on with its admitted spec");
        agent
            .recorder
            .record(pod, Event::warning(INVALID_UPDATE, message.to_string()));
    }
    if let Some(status) = last_status(agent, pod, uid) {
        show(agent, pod, uid, with_refusal(status, Some(message)));
    }
}

/// Clears a refusal once the spec in the API is acceptable again: the status goes back to what the worker
/// reported (also after a restart, when the refusal is only left in the API's status).
pub fn accept(agent: &Agent, pod: &PodGroup, uid: &str) {
    if let Ok(mut r) = agent.refused.lock() {
        r.remove(uid);
    }
    let shown = pod.status.as_ref().and_then(|s| s.pod.message.as_deref());
    let Some(status) = agent.statuses.lock().ok().and_then(|s| s.get(uid).cloned()) else {
        return;
    };
    if shown.is_some() && shown != status.pod.message.as_deref() {
        show(agent, pod, uid, status);
    }
}

/// The worker's last status, else the API's.
fn last_status(agent: &Agent, pod: &PodGroup, uid: &str) -> Option<PodGroupStatus> {
    let cached = agent.statuses.lock().ok().and_then(|s| s.get(uid).cloned());
    cached.or_else(|| pod.status.clone())
}

/// Writes `status` unless the API already shows its message.
fn show(agent: &Agent, pod: &PodGroup, uid: &str, status: PodGroupStatus) {
    let shown = pod.status.as_ref().and_then(|s| s.pod.message.as_deref());
    if shown == status.pod.message.as_deref() {
        return;
    }
    let _ = agent.status.send(StatusUpdate {
        namespace: pod.namespace_or_default().to_string(),
        name: pod.name_any(),
        uid: uid.to_string(),
        status,
        release: false,
    });
}
