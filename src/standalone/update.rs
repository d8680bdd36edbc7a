//! Edits of a running static pod (a manifest that keeps its `metadata.uid`): judged against the spec the
//! pod was admitted with (the pod's `admitted.json`, so the same after a restart) by the Pod update rules
//! and Pod Security; an accepted edit updates the pod in place, a refused one is a Warning Event
//! `InvalidUpdate` and the pod's status message until the manifest is reverted.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::store::StatusStore;
use crate::api::pss::{self, Level};
use crate::api::PodGroup;
use crate::pod::admitted::{
    admitted_part, forbidden_message, invalid_message, load_admitted, same_admission, significant,
    with_refusal, write_admitted,
};
use crate::pod::worker::Context;
use crate::pod::workers::PodWorkers;

/// An edited manifest that keeps its `metadata.uid` (a static pod's identity) updates the running pod, as
/// the kubelet's `checkAndUpdatePod` does, within the Pod update rules; a refused edit is an
/// `InvalidUpdate` event and the pod runs on unchanged. (Without a uid in the manifest, an edit is a new
/// pod: the uid is derived from the manifest.)
pub(super) fn update_in_place(
    workers: &mut PodWorkers,
    store: &StatusStore,
    ctx: &Arc<Context>,
    pod: &PodGroup,
    refused: &mut BTreeMap<String, String>,
) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let Some(stored) = store.get(&uid) else {
        return;
    };
    // Judged against what was admitted (recorded in the pod's directory), not against what a report of
    // the worker last wrote.
    let admitted = load_admitted(&ctx.runtime, &uid).unwrap_or_else(|| admitted_part(&stored));
    if same_admission(pod, &admitted) {
        clear_refusal(store, &uid, refused);
        return;
    }
    if let Err(message) = judge_update(&admitted, pod, ctx.runtime.admission.level) {
        if refused.get(&uid) != Some(&message) {
            refused.insert(uid.clone(), message.clone());
            tracing::warn!(pod = %pod.key(), error = %message, "manifest edit refused");
            ctx.recorder.record(
                pod,
                crate::pod::events::Event::warning("InvalidUpdate", message.clone()),
            );
        }
        let shown = stored.status.clone().map(|s| with_refusal(s, Some(&message)));
        if shown.is_some() && shown != stored.status {
            let mut stored = stored;
            stored.status = shown;
            let _ = store.write(&stored);
        }
        return;
    }
    if let Err(e) = write_admitted(&ctx.runtime, pod) {
        tracing::warn!(pod = %pod.key(), error = %e, "edit not applied");
        return;
    }
    clear_refusal(store, &uid, refused);
    let mut pod = pod.clone();
    pod.metadata.creation_timestamp = stored.metadata.creation_timestamp.clone();
    pod.status = store.get(&uid).and_then(|p| p.status);
    tracing::info!(pod = %pod.key(), uid = %uid, "updating pod");
    let _ = store.write(&pod);
    workers.sync(pod);
}

/// The Pod update rules, then (for an update Pod Security Admission re-evaluates) the node's Pod Security
/// level; `Err` is the refusal's message.
fn judge_update(admitted: &PodGroup, pod: &PodGroup, level: Level) -> Result<(), String> {
    if let Err(errs) = crate::api::validation::validate_update(admitted, pod) {
        return Err(invalid_message(pod, &errs));
    }
    if !significant(admitted, pod) {
        return Ok(());
    }
    pss::evaluate(level, &pod.metadata, &pod.spec.pod).map_err(|v| forbidden_message(pod, &v))
}

/// Forgets a refused edit and takes its message off the stored status.
fn clear_refusal(store: &StatusStore, uid: &str, refused: &mut BTreeMap<String, String>) {
    let Some(message) = refused.remove(uid) else {
        return;
    };
    if let Some(mut stored) = store.get(uid) {
        if let Some(status) = stored.status.as_mut() {
            if status.pod.message.as_deref() == Some(message.as_str()) {
                status.pod.message = None;
                let _ = store.write(&stored);
            }
        }
    }
}
