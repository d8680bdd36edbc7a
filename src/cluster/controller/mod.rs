//! The cluster front end (`peapod agent`): a kube-runtime Controller over the PodGroups labelled for this
//! node, feeding the same pod workers as `peapod run`. It recovers before it reconciles (pods checkpointed on
//! disk are adopted before the API is even asked), keeps running containers while the API server is away, and
//! writes status and Events back when it can. Only `cluster` holds a `kube::Client`.

pub mod events;
pub mod health;
pub mod pull_secrets;
pub mod reconcile;
pub mod status;
pub mod update;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::ListParams;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};
use tokio::sync::mpsc;

use crate::api::{PodGroup, PodGroupStatus, NODE_LABEL};
use crate::cluster::lease;
use crate::cluster::status::StatusUpdate;
use crate::pod::admitted::load_admitted;
use crate::pod::events::Recorder;
use crate::pod::worker::{checkpointed_pods, Context, Update};
use crate::pod::workers::PodWorkers;
use health::Metrics;

/// What the agent is told to do.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// This node.
    pub node: String,
    /// The agent's own namespace (leases).
    pub namespace: String,
    /// Where /healthz, /readyz and /metrics are served.
    pub metrics_addr: Option<SocketAddr>,
}

/// Shared state of the agent's reconciles.
pub struct Agent {
    /// The API client.
    pub client: Client,
    /// This node.
    pub node: String,
    /// The pod workers.
    pub workers: Mutex<PodWorkers>,
    /// The last admitted spec of each pod, by uid (updates are checked against it like Pod updates); the
    /// same as each pod's `admitted.json`, from which it is loaded at start.
    pub specs: Mutex<HashMap<String, PodGroup>>,
    /// The refusal of each pod whose current spec in the API was refused as an update (it runs on with its
    /// admitted spec), by uid: shown as its status message until the edit is reverted.
    pub refused: Mutex<HashMap<String, String>>,
    /// The last status each pod worker reported, by uid (what a refusal message is shown on).
    pub statuses: Mutex<HashMap<String, PodGroupStatus>>,
    /// Status updates to write.
    pub status: mpsc::UnboundedSender<StatusUpdate>,
    /// Events.
    pub recorder: Arc<dyn Recorder>,
    /// Metrics.
    pub metrics: Metrics,
    /// Recovered and watching.
    pub ready: AtomicBool,
    /// What this node admits where a namespace label does not decide.
    pub admission: crate::api::admit::AdmitConfig,
    /// Runtime settings (where each pod's admitted spec is recorded).
    pub runtime: crate::runtime::layout::RuntimeConfig,
}

/// Runs the agent until `shutdown` resolves. On shutdown every workload keeps running (the next agent
/// adopts it); nothing is stopped.
pub async fn run(
    ctx: Arc<Context>,
    client: Client,
    opts: AgentOptions,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (updates_tx, updates_rx) = mpsc::unbounded_channel::<Update>();
    let (status_tx, status_rx) = mpsc::unbounded_channel::<StatusUpdate>();
    let agent = Arc::new(Agent {
        client: client.clone(),
        node: opts.node.clone(),
        workers: Mutex::new(PodWorkers::new(ctx.clone(), updates_tx)),
        specs: Mutex::new(HashMap::new()),
        refused: Mutex::new(HashMap::new()),
        statuses: Mutex::new(HashMap::new()),
        status: status_tx,
        recorder: ctx.recorder.clone(),
        metrics: Metrics::default(),
        ready: AtomicBool::new(false),
        admission: ctx.runtime.admission.clone(),
        runtime: ctx.runtime.clone(),
    });

    // Recover before reconciling: adopt every pod checkpointed on this node, whatever the API says, with
    // the spec it was admitted with, against which every edit is judged.
    crate::runtime::sandbox::collect_garbage(&ctx.runtime).await;
    crate::runtime::leftovers::finish(&ctx.runtime).await;
    let adopted = adopt(&agent, &ctx);
    tracing::info!(pods = adopted.len(), node = %opts.node, "recovered pods from disk");

    tokio::spawn(status::writer(client.clone(), status_rx));
    tokio::spawn(forward_updates(agent.clone(), updates_rx));
    tokio::spawn(lease::heartbeat(
        client.clone(),
        opts.namespace.clone(),
        opts.node.clone(),
    ));
    tokio::spawn(stop_orphans(agent.clone(), adopted));
    if let Some(addr) = opts.metrics_addr {
        tokio::spawn(health::serve(addr, agent.clone()));
    }

    let api: Api<PodGroup> = Api::all(client);
    let selector = format!("{NODE_LABEL}={}", opts.node);
    agent.ready.store(true, Ordering::SeqCst);
    Controller::new(api, watcher::Config::default().labels(&selector))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, agent.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    if let Ok(mut w) = agent.workers.lock() {
        w.detach();
    }
    // Orphans of a crashed predecessor may still be being released beside the workers.
    crate::runtime::sandbox::garbage_collected(&ctx.runtime).await;
    tracing::info!("agent stopped; workloads keep running");
}

/// Adopts every pod checkpointed on this node: its worker, its admitted spec and its last status.
fn adopt(agent: &Agent, ctx: &Context) -> HashSet<String> {
    let mut uids = HashSet::new();
    for pod in checkpointed_pods(&ctx.runtime) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let admitted =
            load_admitted(&ctx.runtime, &uid).unwrap_or_else(|| crate::pod::admitted::admitted_part(&pod));
        if let Ok(mut s) = agent.specs.lock() {
            s.insert(uid.clone(), admitted);
        }
        if let (Some(status), Ok(mut s)) = (pod.status.clone(), agent.statuses.lock()) {
            s.insert(uid.clone(), status);
        }
        if let Ok(mut w) = agent.workers.lock() {
            w.sync(pod);
        }
        uids.insert(uid);
    }
    uids
}

/// Passes worker reports to the status writer; a finished pod also loses its worker and its finalizer.
async fn forward_updates(agent: Arc<Agent>, mut rx: mpsc::UnboundedReceiver<Update>) {
    while let Some(u) = rx.recv().await {
        if u.finished {
            if let Ok(mut w) = agent.workers.lock() {
                w.finished(&u.uid);
            }
            if let Ok(mut s) = agent.specs.lock() {
                s.remove(&u.uid);
            }
            if let Ok(mut s) = agent.refused.lock() {
                s.remove(&u.uid);
            }
            if let Ok(mut s) = agent.statuses.lock() {
                s.remove(&u.uid);
            }
        } else if let Ok(mut s) = agent.statuses.lock() {
            s.insert(u.uid.clone(), u.status.clone());
        }
        let refusal = agent.refused.lock().ok().and_then(|r| r.get(&u.uid).cloned());
        agent
            .metrics
            .pods
            .set(agent.workers.lock().map(|w| w.len() as i64).unwrap_or(0));
        let update = StatusUpdate {
            namespace: u.pod.namespace_or_default().to_string(),
            name: u.pod.metadata.name.clone().unwrap_or_default(),
            uid: u.uid,
            status: crate::pod::admitted::with_refusal(u.status, refusal.as_deref()),
            release: u.finished,
        };
        let _ = agent.status.send(update);
    }
}

/// Stops adopted pods whose PodGroup no longer exists (deleted, finalizer and all, while the agent was away).
async fn stop_orphans(agent: Arc<Agent>, adopted: HashSet<String>) {
    if adopted.is_empty() {
        return;
    }
    let api: Api<PodGroup> = Api::all(agent.client.clone());
    let lp = ListParams::default().labels(&format!("{NODE_LABEL}={}", agent.node));
    let mut wait = Duration::from_secs(1);
    let listed = loop {
        match api.list(&lp).await {
            Ok(list) => break list,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list PodGroups yet; adopted pods keep running");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    };
    let present: HashSet<String> = listed
        .items
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    for uid in adopted.difference(&present) {
        tracing::info!(uid = %uid, "PodGroup is gone from the API: stopping its pod");
        if let Ok(w) = agent.workers.lock() {
            w.terminate(uid, None);
        }
    }
}

#[cfg(test)]
mod tests;
