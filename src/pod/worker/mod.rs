//! One pod's worker: a task that owns the pod's runtime state. It recovers what exists on disk, then loops:
//! sync (observe, plan, act, report status), wait for a message or a timer. Messages are spec updates,
//! termination requests and exits seen through pidfds. The front end never waits on it.
//!
//! The pod's lifecycle is a [`Lifecycle`] (`state.rs`); this file holds the worker's fields and the few
//! methods that change them. The submodules carry out the plan (`act`, `pull`), clean up (`cleanup`),
//! recover after a restart (`recover`), run hooks and probes (`hooks`) and report (`sync`, `report`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;

use super::backoff::{Backoff, PullBackoff};
pub use super::checkpoint::{checkpointed_pods, checkpointed_pods_in, POD_CHECKPOINT};
use super::events::{Event, Recorder};
use super::images::Images;
pub use super::instances::spec_hash;
pub(super) use super::instances::Instance;
use super::instances::Instances;
use super::probes::{Kind, ProbeResult, Probes};
use super::state::{Lifecycle, Transition};
use super::status::Waiting;
use crate::api::{PodGroup, PodGroupStatus};
use crate::runtime::container::ImageInfo;
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::sandbox::{SandboxPointer, SandboxRecord};
use crate::volume::PodVolumes;

mod act;
mod cleanup;
mod hooks;
mod pull;
mod recover;
mod report;
mod sync;

/// How often a worker syncs when nothing happens.
const RESYNC: Duration = Duration::from_secs(30);
/// How long to wait before retrying a start that failed without an exit (config errors, mount errors).
const RETRY: Duration = Duration::from_secs(10);

/// What every worker shares.
pub struct Context {
    /// Runtime settings.
    pub runtime: RuntimeConfig,
    /// Image source.
    pub images: Arc<dyn Images>,
    /// Event sink.
    pub recorder: Arc<dyn Recorder>,
}

/// A message to a worker.
#[derive(Debug)]
pub enum Msg {
    /// A new version of the pod (same uid).
    Update(Box<PodGroup>),
    /// Stop the pod for good, with this grace period (seconds) or the spec's.
    Terminate {
        /// Grace period override.
        grace: Option<i64>,
    },
    /// The shim of container instance `id` exited.
    Exited {
        /// OCI runtime id.
        id: String,
    },
    /// The sandbox's pause process exited.
    SandboxExited,
    /// A probe's result changed.
    Probe {
        /// OCI runtime id of the instance.
        id: String,
        /// Which probe.
        kind: Kind,
        /// The new result.
        result: ProbeResult,
    },
}

/// A status report from a worker.
#[derive(Debug, Clone)]
pub struct Update {
    /// Pod uid.
    pub uid: String,
    /// The pod as the worker knows it.
    pub pod: PodGroup,
    /// Its status.
    pub status: PodGroupStatus,
    /// The pod has been terminated and cleaned up; the worker is gone.
    pub finished: bool,
}

/// The pod's sandbox as the worker knows it.
#[derive(Debug, Default)]
struct Sandbox {
    /// The running (or adopted) sandbox.
    record: Option<SandboxRecord>,
    /// The latest sandbox made, even once stopped (its id and attempt).
    pointer: Option<SandboxPointer>,
    /// Pause process alive and namespaces in place.
    ready: bool,
}

/// The worker of one pod.
pub struct Worker {
    ctx: Arc<Context>,
    uid: String,
    pod: PodGroup,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Messages that arrived while a start or a postStart hook ran.
    deferred: Vec<Msg>,
    probes: Probes,
    updates: mpsc::UnboundedSender<Update>,
    sandbox: Sandbox,
    volumes: Option<PodVolumes>,
    instances: Instances,
    /// The image of each container's newest instance (its stop signal).
    images: HashMap<String, ImageInfo>,
    /// Why each container waits (the kubelet's reason cache).
    reasons: HashMap<String, Waiting>,
    /// Crash-loop backoff, by container and spec hash.
    backoff: Backoff,
    pull_backoff: PullBackoff,
    /// When to sync again after a failure nothing else will report.
    retry_at: Option<Timestamp>,
    start_time: Option<Timestamp>,
    previous: Option<PodGroupStatus>,
    lifecycle: Lifecycle,
}

impl Worker {
    /// A worker for `pod` (already defaulted and validated; `metadata.uid` set).
    pub fn new(
        ctx: Arc<Context>,
        pod: PodGroup,
        updates: mpsc::UnboundedSender<Update>,
    ) -> (Self, mpsc::UnboundedSender<Msg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let previous = pod.status.clone();
        let start_time = previous
            .as_ref()
            .and_then(|s| s.pod.start_time.as_ref())
            .map(|t| t.0);
        let worker = Worker {
            ctx,
            uid,
            pod,
            tx: tx.clone(),
            rx,
            deferred: Vec::new(),
            probes: Probes::default(),
            updates,
            sandbox: Sandbox::default(),
            volumes: None,
            instances: Instances::default(),
            images: HashMap::new(),
            reasons: HashMap::new(),
            backoff: Backoff::default(),
            pull_backoff: PullBackoff::default(),
            retry_at: None,
            start_time,
            previous,
            lifecycle: Lifecycle::Syncing,
        };
        (worker, tx)
    }

    /// Runs until the pod is terminated and cleaned up, or the task is aborted (which leaves everything
    /// running for the next supervisor to adopt).
    pub async fn run(mut self) {
        self.recover().await;
        self.checkpoint();
        loop {
            let again = self.sync().await;
            if self.lifecycle.finished() {
                self.cleanup().await;
                self.report(true);
                return;
            }
            if !self.deferred.is_empty() {
                for m in std::mem::take(&mut self.deferred) {
                    self.handle(m).await;
                }
                continue;
            }
            if self.lifecycle.terminating() {
                self.probes.stop_liveness();
            }
            if again {
                continue;
            }
            let wait = self.next_wakeup();
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(m) => self.handle(m).await,
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {}
            }
            while let Ok(m) = self.rx.try_recv() {
                self.handle(m).await;
            }
            for m in std::mem::take(&mut self.deferred) {
                self.handle(m).await;
            }
        }
    }

    async fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Update(pod) => {
                let status = self.pod.status.take();
                self.pod = *pod;
                self.pod.status = status;
            }
            Msg::Terminate { grace } => {
                self.transition(Transition::Terminate { grace });
                self.probes.stop_liveness();
            }
            Msg::Exited { id } => self.on_exit(&id).await,
            Msg::SandboxExited => self.sandbox.ready = false,
            Msg::Probe { id, kind, result } => {
                self.probes.apply(&id, kind, result);
            }
        }
    }

    /// Moves the pod's lifecycle on; the only writer of it. Returns whether the state changed.
    fn transition(&mut self, t: Transition) -> bool {
        let before = self.lifecycle.clone();
        self.lifecycle = std::mem::take(&mut self.lifecycle).on(t);
        before != self.lifecycle
    }

    /// Sync again after [`RETRY`]: a failure that no exit or probe will report.
    fn retry_later(&mut self) {
        self.retry_at = Timestamp::now()
            .checked_add(SignedDuration::from_secs(RETRY.as_secs() as i64))
            .ok();
    }

    /// Records why container `name` waits (`None`: it runs); returns whether the message changed.
    fn set_waiting(&mut self, name: &str, waiting: Option<Waiting>) -> bool {
        match waiting {
            Some(w) => {
                let message = w.message.clone();
                let old = self.reasons.insert(name.to_string(), w);
                old.is_none_or(|old| old.message != message)
            }
            None => self.reasons.remove(name).is_some(),
        }
    }

    /// A sandbox was created (or adopted ready): watch its pause process.
    fn sandbox_up(&mut self, record: SandboxRecord) {
        self.watch_sandbox(&record);
        self.sandbox.pointer = Some(SandboxPointer {
            id: record.id.clone(),
            attempt: record.attempt,
        });
        self.sandbox.record = Some(record);
        self.sandbox.ready = true;
    }

    /// The sandbox was stopped; its pointer stays for the next attempt number.
    fn sandbox_down(&mut self) {
        if let Some(sb) = self.sandbox.record.take() {
            self.sandbox.pointer = Some(SandboxPointer {
                id: sb.id,
                attempt: sb.attempt,
            });
        }
        self.sandbox.ready = false;
    }

    /// The sandbox found on disk at recovery: `record` when it still exists, watched when ready.
    fn sandbox_adopted(&mut self, pointer: Option<SandboxPointer>, record: Option<SandboxRecord>) {
        self.sandbox.pointer = pointer;
        if let Some(record) = record {
            self.sandbox.ready = crate::runtime::sandbox::is_ready(&record);
            if self.sandbox.ready {
                self.watch_sandbox(&record);
            }
            self.sandbox.record = Some(record);
        }
    }

    /// A new instance was made (started, or failed with an exit record): watch its shim, if any.
    fn instance_added(&mut self, inst: Instance) {
        self.watch_instance(&inst);
        self.instances.push(inst);
    }

    /// A shim exited: collect the instance's exit, then drop instances older than state and lastState.
    async fn on_exit(&mut self, id: &str) {
        if self.instances.find(id).is_none_or(|i| i.exited.is_some()) {
            return;
        }
        crate::sys::crash::point("exit-seen");
        self.collect_exit(id).await;
        self.gc_instances().await;
    }

    /// Reads the exit of instance `id` into the worker's state (`ContainerStatusUnknown` when its shim left
    /// none), stops its probes and forgets its shim.
    async fn collect_exit(&mut self, id: &str) {
        let cfg = self.ctx.runtime.clone();
        let Some(mut inst) = self.instances.find(id).cloned() else {
            return;
        };
        self.probes.stop(id);
        if inst.exited.is_none() {
            let r = &inst.record;
            inst.exited = crate::runtime::container::read_exit(&cfg, &self.uid, &r.name, r.attempt);
            if inst.exited.is_none() {
                self.abandon(&mut inst, UNKNOWN_EXIT).await;
            }
        }
        inst.shim = None;
        let _ = std::fs::remove_file(cfg.shim_record(id));
        self.instances.replace(inst);
    }

    /// Every container of the spec, init containers first.
    fn all_containers(&self) -> impl Iterator<Item = &Container> {
        self.pod
            .spec
            .pod
            .init_containers
            .iter()
            .flatten()
            .chain(self.pod.spec.pod.containers.iter())
    }

    /// Hash of each container's spec.
    fn hashes(&self) -> HashMap<String, String> {
        self.all_containers()
            .map(|c| (c.name.clone(), spec_hash(c)))
            .collect()
    }

    fn record(&self, event: Event) {
        self.ctx.recorder.record(&self.pod, event);
    }
}

/// The exit recorded for an instance whose shim is gone without one.
const UNKNOWN_EXIT: &str = "The container could not be located when the pod was terminated";
