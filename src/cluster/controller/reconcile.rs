//! Reconciling one PodGroup bound to this node: keep the finalizer, default and validate the spec, admit it
//! (Pod Security Standards at its namespace's level, sysctls) before it first runs here, judge every later
//! edit against the admitted spec recorded on disk (`crate::pod::admitted`, `update`), hand it to its pod worker, and on deletion
//! run the graceful stop. A reconcile never waits on a workload; the worker
//! reports back and the status writer patches.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{update, Agent};
use crate::cluster::status::{remove_finalizer, StatusUpdate};
use crate::pod::admitted;
use k8s_openapi::api::core::v1::Namespace;

use crate::api::admit;
use crate::api::pss::{self, Level};
use crate::api::{defaults, validation, PodGroup, FINALIZER};
use crate::pod::admitted::AdmittedError;
use crate::pod::events::Event;

/// Errors of a reconcile; the variant name is the metric label and event reason category.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{action} podgroup {name}: {source}")]
    Api {
        /// What was being done.
        action: &'static str,
        /// namespace/name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// The object has no uid (never from a real API server).
    #[error("podgroup {0} has no uid")]
    MissingUid(String),
    /// The admitted spec could not be recorded on disk (nothing new runs until it is).
    #[error(transparent)]
    Admitted(#[from] AdmittedError),
}

impl Error {
    /// Short category, used as metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Api { .. } => "api",
            Error::MissingUid(_) => "invalid",
            Error::Admitted(_) => "checkpoint",
        }
    }
}

/// Whether the PodGroup carries peapod's finalizer.
pub fn has_finalizer(pg: &PodGroup) -> bool {
    pg.finalizers().iter().any(|f| f == FINALIZER)
}

/// Reconciles one PodGroup.
pub async fn reconcile(pg: Arc<PodGroup>, agent: Arc<Agent>) -> Result<Action, Error> {
    let key = pg.key();
    let uid = pg
        .metadata
        .uid
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::MissingUid(key.clone()))?;
    let ns = pg.namespace_or_default().to_string();
    agent.metrics.reconciles.inc();
    if pg.spec.pod.node_name.as_deref() != Some(agent.node.as_str()) {
        // Labelled for this node but bound elsewhere (the scheduler fixes the label): not ours to run.
        return Ok(Action::await_change());
    }
    if pg.metadata.deletion_timestamp.is_some() {
        deleted(&agent, &pg, &uid).await?;
        return Ok(Action::await_change());
    }
    if !has_finalizer(&pg) {
        add_finalizer(&agent, &pg).await.map_err(|source| Error::Api {
            action: "add finalizer to",
            name: key,
            source,
        })?;
        return Ok(Action::await_change());
    }

    let mut pod = (*pg).clone();
    defaults::apply_defaults(&mut pod);
    let previous = agent.specs.lock().ok().and_then(|s| s.get(&uid).cloned());
    match &previous {
        // Already admitted here: an edit, judged against what was admitted (also after a restart).
        Some(old) => {
            if let Err(message) = judge_update(&agent, old, &pod, &ns).await? {
                update::refuse(&agent, &pod, &uid, &message);
                return Ok(Action::await_change());
            }
            update::accept(&agent, &pod, &uid);
        }
        None => {
            if !admit_new(&agent, &pod, &ns).await? {
                return Ok(Action::await_change());
            }
        }
    }
    update::record_admitted(&agent, &uid, &pod)?;
    if let Ok(mut w) = agent.workers.lock() {
        w.sync(pod);
    }
    Ok(Action::requeue(Duration::from_secs(600)))
}

/// A deleted PodGroup: a running pod is stopped with its grace period; where nothing runs (never started
/// here, or already cleaned up), the finalizer is released so the deletion can proceed.
async fn deleted(agent: &Agent, pg: &PodGroup, uid: &str) -> Result<(), Error> {
    let running = agent.workers.lock().map(|w| w.contains(uid)).unwrap_or(false);
    if running {
        // Custom resources have no graceful deletion: the API server records 0 for any delete. The grace
        // period comes from the spec, unless the deletion asked for a shorter, non-zero one.
        let spec_grace = pg.spec.pod.termination_grace_period_seconds.unwrap_or(30);
        let grace = Some(match pg.metadata.deletion_grace_period_seconds {
            Some(g) if g > 0 => g.min(spec_grace),
            _ => spec_grace,
        });
        tracing::info!(pod = %pg.key(), grace = ?grace, "pod deleted: stopping it");
        if let Ok(w) = agent.workers.lock() {
            w.terminate(uid, grace);
        }
    } else if has_finalizer(pg) {
        // Nothing runs (never started here, or already cleaned up): let the deletion proceed.
        remove_finalizer(&agent.client, pg.namespace_or_default(), &pg.name_any(), uid)
            .await
            .map_err(|source| Error::Api {
                action: "remove finalizer of",
                name: pg.key(),
                source,
            })?;
    }
    Ok(())
}

/// Judges a pod before it first runs here: validation, then admission (Pod Security at the namespace's level,
/// like Pod Security Admission at creation; sysctls). `Ok(false)`: refused, and shown so.
async fn admit_new(agent: &Agent, pod: &PodGroup, ns: &str) -> Result<bool, Error> {
    if let Err(errs) = validation::validate(pod) {
        let message = errs.to_string();
        refuse(agent, pod, "InvalidSpec", &message, &message);
        return Ok(false);
    }
    let level = namespace_level(agent, ns).await.map_err(|source| Error::Api {
        action: "read the namespace of",
        name: pod.key(),
        source,
    })?;
    let allowed = &agent.admission.allowed_unsafe_sysctls;
    if let Err(r) = admit::admit(pod, level, allowed) {
        tracing::info!(pod = %pod.key(), reason = r.reason, "pod refused");
        refuse(agent, pod, r.reason, &r.status_message(), &r.message);
        return Ok(false);
    }
    Ok(true)
}

/// Judges an edit of an admitted pod: the Pod update rules, then Pod Security for a significant update.
/// `Ok(Err(message))` is a refusal.
async fn judge_update(
    agent: &Agent,
    old: &PodGroup,
    new: &PodGroup,
    ns: &str,
) -> Result<Result<(), String>, Error> {
    if let Err(errs) = validation::validate_update(old, new) {
        return Ok(Err(admitted::invalid_message(new, &errs)));
    }
    if !admitted::significant(old, new) {
        return Ok(Ok(()));
    }
    let level = namespace_level(agent, ns).await.map_err(|source| Error::Api {
        action: "read the namespace of",
        name: new.key(),
        source,
    })?;
    Ok(pss::evaluate(level, &new.metadata, &new.spec.pod)
        .map_err(|violation| admitted::forbidden_message(new, &violation)))
}

/// Shows a pod that will not run: a Warning Event and a Failed status, once per message.
fn refuse(agent: &Agent, pod: &PodGroup, reason: &str, status_message: &str, event_message: &str) {
    let shown = pod.status.as_ref().and_then(|s| s.pod.message.as_deref()) == Some(status_message);
    if shown {
        return;
    }
    agent
        .recorder
        .record(pod, Event::warning(reason, event_message.to_string()));
    let _ = agent.status.send(StatusUpdate {
        namespace: pod.namespace_or_default().to_string(),
        name: pod.name_any(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        status: crate::pod::refused::refused_status(pod, reason, status_message),
        release: false,
    });
}

/// The Pod Security Standards level of namespace `ns`: its `pod-security.kubernetes.io/enforce` label, else
/// the agent's `--pod-security-level`.
async fn namespace_level(agent: &Agent, ns: &str) -> Result<Level, kube::Error> {
    let api: Api<Namespace> = Api::all(agent.client.clone());
    let labels = api.get_opt(ns).await?.and_then(|n| n.metadata.labels);
    Ok(Level::for_namespace(labels.as_ref(), agent.admission.level))
}

async fn add_finalizer(agent: &Agent, pg: &PodGroup) -> Result<(), kube::Error> {
    let api: Api<PodGroup> = Api::namespaced(agent.client.clone(), pg.namespace_or_default());
    let patch = if pg.metadata.finalizers.is_none() {
        json!([
            { "op": "test", "path": "/metadata/uid", "value": pg.metadata.uid },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
        ])
    } else {
        json!([
            { "op": "test", "path": "/metadata/uid", "value": pg.metadata.uid },
            { "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER },
        ])
    };
    let patch: json_patch::Patch = serde_json::from_value(patch).map_err(kube::Error::SerdeError)?;
    api.patch(&pg.name_any(), &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .map(|_| ())
}

/// What to do after a failed reconcile: try again in a few seconds.
pub fn error_policy(pg: Arc<PodGroup>, error: &Error, agent: Arc<Agent>) -> Action {
    tracing::warn!(pod = %pg.key(), error = %crate::sys::chain(error), category = error.category(), "reconcile failed");
    agent.metrics.reconcile_errors.inc();
    Action::requeue(Duration::from_secs(5))
}
