//! The standalone front end (`peapod run -f PATH`): manifests on disk feed the pod workers, status goes to
//! files that `peapod get` reads. Like the kubelet's static pods, a manifest's pod gets a uid derived from
//! its content and the node, so a restarted supervisor adopts what runs, and an edited manifest replaces
//! its pod (the old one is stopped gracefully, the new one started). A manifest that does not parse or
//! validate is reported once, with its file and field, and never disturbs the others.

mod manifests;
pub mod store;
mod update;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::mpsc;

use crate::api::admit::{self, AdmitConfig, REJECTION_REASONS};
use crate::api::PodGroup;
use crate::pod::admitted::{with_refusal, write_admitted};
use crate::pod::events::Event;
use crate::pod::refused::refused_status;
use crate::pod::worker::{Context, Update};
use crate::pod::workers::PodWorkers;
pub use manifests::{invalid_status, manifest_uid, scan, Scan};
use store::StatusStore;

/// How `peapod run` watches its manifests.
#[derive(Debug, Clone)]
pub struct Options {
    /// Manifest files or directories.
    pub paths: Vec<PathBuf>,
    /// How often they are re-read.
    pub poll: Duration,
}

/// Whether a stored status is a refusal (nothing of the pod ran).
fn is_refused(pod: &PodGroup) -> bool {
    let reason = pod.status.as_ref().and_then(|s| s.pod.reason.as_deref());
    reason.is_some_and(|r| REJECTION_REASONS.contains(&r))
}

/// Moves the pods that are not running yet and that the node does not admit (Pod Security Standards,
/// sysctls) from `found.pods` to `found.invalid`.
fn refuse_inadmissible(found: &mut Scan, admission: &AdmitConfig, running: impl Fn(&str) -> bool) {
    let uids: Vec<String> = found.pods.keys().filter(|u| !running(u)).cloned().collect();
    for uid in uids {
        let Some(pod) = found.pods.get(&uid) else { continue };
        let Err(r) = admit::admit(pod, admission.level, &admission.allowed_unsafe_sysctls) else {
            continue;
        };
        if let Some(pod) = found.pods.remove(&uid) {
            found
                .errors
                .insert(format!("PodGroup {}: {}: {}", pod.key(), r.reason, r.message));
            found.invalid.insert(uid, (pod, r.reason, r.status_message()));
        }
    }
}

/// Runs the standalone supervisor until `shutdown` resolves; then stops every pod gracefully.
pub async fn run(opts: Options, ctx: Arc<Context>, shutdown: impl Future<Output = ()>) {
    let node = ctx.runtime.node_name.clone();
    let store = StatusStore::new(&ctx.runtime.state_dir);
    let (tx, mut rx) = mpsc::unbounded_channel::<Update>();
    let mut workers = PodWorkers::new(ctx.clone(), tx);
    let mut desired: BTreeMap<String, PodGroup> = BTreeMap::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut terminating: BTreeSet<String> = BTreeSet::new();
    let mut refused: BTreeMap<String, String> = BTreeMap::new();

    recover(&ctx, &store, &mut workers).await;

    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(opts.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let paths = opts.paths.clone();
                let node = node.clone();
                let result = tokio::task::spawn_blocking(move || scan(&paths, &node)).await;
                let Ok(mut found) = result else { continue };
                refuse_inadmissible(&mut found, &ctx.runtime.admission, |uid| workers.contains(uid));
                show_problems(&found, &mut reported, &store, &ctx);
                desired = found.pods;
                reconcile(&mut workers, &desired, &mut terminating, &mut refused, &store, &ctx);
            }
            Some(update) = rx.recv() => {
                handle_update(&mut workers, &desired, &store, &ctx, &refused, update);
            }
            _ = &mut shutdown => break,
        }
    }
    stop_all(workers, rx, &store).await;
    // Orphans of a crashed predecessor may still be being released beside the workers.
    crate::runtime::sandbox::garbage_collected(&ctx.runtime).await;
}

/// Cleans up after an earlier supervisor, then adopts the pods this node ran before and still has state for
/// (if still wanted they run on, else they are stopped at the first scan); a finished earlier run's record
/// is dropped, so a new run starts that pod afresh.
async fn recover(ctx: &Context, store: &StatusStore, workers: &mut PodWorkers) {
    crate::runtime::sandbox::collect_garbage(&ctx.runtime).await;
    crate::runtime::leftovers::finish(&ctx.runtime).await;
    for pod in store.list() {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if ctx.runtime.pod_dir(&uid).exists() {
            workers.sync(pod);
        } else if pod.metadata.deletion_timestamp.is_none() && !is_refused(&pod) {
            store.remove(&uid);
        }
    }
}

/// Shows what a scan found wrong: duplicate pods as Events, manifest errors once, each refused pod's status
/// and Event (once per reason); refusals no longer found are forgotten.
fn show_problems(found: &Scan, reported: &mut BTreeSet<String>, store: &StatusStore, ctx: &Context) {
    for (line, (pod, message)) in &found.duplicates {
        if !reported.contains(line) {
            ctx.recorder
                .record(pod, Event::warning("FailedValidation", message.clone()));
        }
    }
    report_errors(reported, &found.errors);
    for (uid, (pod, reason, message)) in &found.invalid {
        if store
            .get(uid)
            .and_then(|p| p.status)
            .and_then(|s| s.pod.reason)
            .as_deref()
            != Some(*reason)
        {
            let mut p = pod.clone();
            p.status = Some(refused_status(pod, reason, message));
            let _ = store.write(&p);
            let shown = message.strip_prefix("Pod was rejected: ").unwrap_or(message);
            ctx.recorder
                .record(pod, Event::warning(reason, shown.to_string()));
        }
    }
    for pod in store.list() {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if is_refused(&pod) && !found.invalid.contains_key(&uid) {
            store.remove(&uid);
        }
    }
}

/// Stops every pod gracefully, recording each one's status until all have finished.
async fn stop_all(mut workers: PodWorkers, mut rx: mpsc::UnboundedReceiver<Update>, store: &StatusStore) {
    tracing::info!(pods = workers.len(), "stopping all pods");
    for uid in workers.uids() {
        mark_deleting(store, &uid, None);
        workers.terminate(&uid, None);
    }
    while !workers.is_empty() {
        match rx.recv().await {
            Some(update) => {
                let finished = update.finished;
                let uid = update.uid.clone();
                let mut pod = update.pod;
                pod.status = Some(update.status);
                let _ = store.write(&pod);
                if finished {
                    workers.finished(&uid);
                }
            }
            None => break,
        }
    }
}

fn report_errors(reported: &mut BTreeSet<String>, now: &BTreeSet<String>) {
    for e in now.difference(reported) {
        tracing::error!(problem = %e, "invalid manifest");
        eprintln!("error: {e}");
    }
    for e in reported.difference(now) {
        tracing::info!(problem = %e, "manifest problem resolved");
    }
    *reported = now.clone();
}

fn reconcile(
    workers: &mut PodWorkers,
    desired: &BTreeMap<String, PodGroup>,
    terminating: &mut BTreeSet<String>,
    refused: &mut BTreeMap<String, String>,
    store: &StatusStore,
    ctx: &Arc<Context>,
) {
    for (uid, pod) in desired {
        if workers.contains(uid) {
            if !terminating.contains(uid) {
                update::update_in_place(workers, store, ctx, pod, refused);
            }
            continue;
        }
        let mut pod = pod.clone();
        let fresh = !ctx.runtime.pod_dir(uid).exists();
        if fresh {
            // A new incarnation: forget the previous run's status and logs.
            pod.status = None;
            let ns = pod.namespace_or_default().to_string();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let _ = crate::sys::fs::remove_dir_atomic(&ctx.runtime.pod_log_dir(&ns, &name, uid));
        } else {
            pod.status = store.get(uid).and_then(|p| p.status);
        }
        pod.metadata
            .creation_timestamp
            .get_or_insert_with(|| Time(Timestamp::now()));
        if let Err(e) = write_admitted(&ctx.runtime, &pod) {
            tracing::warn!(pod = %pod.key(), error = %e, "pod not started");
            continue;
        }
        tracing::info!(pod = %pod.key(), uid = %uid, "starting pod");
        let _ = store.write(&pod);
        workers.sync(pod);
    }
    for uid in workers.uids() {
        if !desired.contains_key(&uid) && terminating.insert(uid.clone()) {
            tracing::info!(uid = %uid, "manifest gone or changed: stopping pod");
            mark_deleting(store, &uid, None);
            workers.terminate(&uid, None);
        }
    }
    terminating.retain(|u| workers.contains(u));
    refused.retain(|u, _| workers.contains(u));
}

fn mark_deleting(store: &StatusStore, uid: &str, grace: Option<i64>) {
    if let Some(mut pod) = store.get(uid) {
        if pod.metadata.deletion_timestamp.is_none() {
            pod.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
            pod.metadata.deletion_grace_period_seconds =
                grace.or(pod.spec.pod.termination_grace_period_seconds);
            let _ = store.write(&pod);
        }
    }
}

fn handle_update(
    workers: &mut PodWorkers,
    desired: &BTreeMap<String, PodGroup>,
    store: &StatusStore,
    ctx: &Arc<Context>,
    refused: &BTreeMap<String, String>,
    update: Update,
) {
    let uid = update.uid.clone();
    let previous = store.get(&uid);
    let mut pod = update.pod;
    if let Some(prev) = &previous {
        pod.metadata.creation_timestamp = prev.metadata.creation_timestamp.clone();
        pod.metadata.deletion_timestamp = prev.metadata.deletion_timestamp.clone();
        pod.metadata.deletion_grace_period_seconds = prev.metadata.deletion_grace_period_seconds;
    }
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let mut status = update.status;
    crate::pod::printer::fill_columns(&pod, &mut status, deleting && !update.finished);
    let refusal = refused.get(&uid).map(String::as_str);
    pod.status = Some(with_refusal(status, refusal));
    if update.finished {
        workers.finished(&uid);
        let ns = pod.namespace_or_default().to_string();
        let name = pod.metadata.name.clone().unwrap_or_default();
        if desired.contains_key(&uid) {
            let _ = store.write(&pod);
        } else {
            store.remove(&uid);
            let _ = crate::sys::fs::remove_dir_atomic(&ctx.runtime.pod_log_dir(&ns, &name, &uid));
        }
        tracing::info!(pod = %pod.key(), "pod stopped");
        return;
    }
    if let Err(e) = store.write(&pod) {
        tracing::warn!(pod = %pod.key(), error = %e, "failed to write status file");
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
