//! One pod's worker: a task that owns the pod's runtime state. It recovers what exists on disk, then loops:
//! sync (observe, plan, act, report status), wait for a message or a timer. Messages are spec updates,
//! termination requests and exits seen through pidfds. The front end never waits on it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::sync::mpsc;

use super::backoff::Backoff;
pub use super::checkpoint::{checkpointed_pods, checkpointed_pods_in, POD_CHECKPOINT};
use super::events::Recorder;
use super::images::Images;
use super::plan::{self, PlanInput};
use super::probes::{Kind, ProbeResult, Probes};
use super::status::{self, StatusInput, Waiting};
use super::view::{ContainerView, PodView, RunState, SandboxView};
use crate::api::{PodGroup, PodGroupStatus};
use crate::runtime::container::{self, ImageInfo};
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::process::ExitWatch;
use crate::runtime::record::{ExitRecord, InstanceRecord, ProcessId, StartedRecord};
use crate::runtime::sandbox::{SandboxPointer, SandboxRecord};
use crate::volume::PodVolumes;

/// How often a worker syncs when nothing happens.
const RESYNC: Duration = Duration::from_secs(30);
/// How long to wait before retrying a start that failed without an exit (config errors, mount errors).
pub(super) const RETRY: Duration = Duration::from_secs(10);

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

/// One container instance as the worker tracks it.
#[derive(Debug, Clone)]
pub(super) struct Instance {
    pub record: InstanceRecord,
    pub started: Option<StartedRecord>,
    pub exited: Option<ExitRecord>,
    pub shim: Option<ProcessId>,
}

/// The worker of one pod.
pub struct Worker {
    pub(super) ctx: Arc<Context>,
    pub(super) uid: String,
    pub(super) pod: PodGroup,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
    pub(super) rx: mpsc::UnboundedReceiver<Msg>,
    /// Messages that arrived while a postStart hook ran.
    pub(super) deferred: Vec<Msg>,
    pub(super) probes: Probes,
    updates: mpsc::UnboundedSender<Update>,
    pub(super) sandbox: Option<SandboxRecord>,
    pub(super) sandbox_pointer: Option<SandboxPointer>,
    pub(super) sandbox_ready: bool,
    pub(super) volumes: Option<PodVolumes>,
    pub(super) instances: HashMap<String, Vec<Instance>>,
    pub(super) images: HashMap<String, ImageInfo>,
    pub(super) reasons: HashMap<String, Waiting>,
    pub(super) backoff: Backoff,
    pub(super) pull_backoff: Backoff,
    pub(super) pull_failures: HashMap<String, Timestamp>,
    pub(super) start_time: Option<Timestamp>,
    pub(super) previous: Option<PodGroupStatus>,
    #[allow(clippy::option_option)] // until the worker's lifecycle enum replaces it (issue 11)
    pub(super) terminating: Option<Option<i64>>,
    pub(super) failure: Option<(String, String)>,
    pub(super) terminal: bool,
    pub(super) retry_at: Option<Timestamp>,
    /// Sync again without waiting.
    resync_now: bool,
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
            sandbox: None,
            sandbox_pointer: None,
            sandbox_ready: false,
            volumes: None,
            instances: HashMap::new(),
            images: HashMap::new(),
            reasons: HashMap::new(),
            backoff: Backoff::default(),
            pull_backoff: Backoff::default(),
            pull_failures: HashMap::new(),
            start_time,
            previous,
            terminating: None,
            failure: None,
            terminal: false,
            retry_at: None,
            resync_now: false,
        };
        (worker, tx)
    }

    /// Runs until the pod is terminated and cleaned up, or the task is aborted (which leaves everything
    /// running for the next supervisor to adopt).
    pub async fn run(mut self) {
        self.recover().await;
        self.checkpoint();
        loop {
            self.sync().await;
            if self.terminating.is_some() && self.terminal {
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
            if self.terminating.is_some() {
                self.probes.stop_liveness();
            }
            if std::mem::take(&mut self.resync_now) {
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
                if self.terminating.is_none() {
                    self.terminating = Some(grace);
                }
                self.probes.stop_liveness();
            }
            Msg::Exited { id } => self.on_exit(&id).await,
            Msg::SandboxExited => self.sandbox_ready = false,
            Msg::Probe { id, kind, result } => {
                self.probes.apply(&id, kind, result);
            }
        }
    }

    pub(super) fn watch_instance(&self, inst: &Instance) {
        let Some(shim) = inst.shim else {
            return;
        };
        let tx = self.tx.clone();
        let id = inst.record.id.clone();
        tokio::spawn(async move {
            if let Ok(Some(watch)) = ExitWatch::open(&shim) {
                watch.exited().await;
            }
            let _ = tx.send(Msg::Exited { id });
        });
    }

    pub(super) fn watch_sandbox(&self, record: &SandboxRecord) {
        let tx = self.tx.clone();
        let pause = record.pause;
        tokio::spawn(async move {
            if let Ok(Some(watch)) = ExitWatch::open(&pause) {
                watch.exited().await;
            }
            let _ = tx.send(Msg::SandboxExited);
        });
    }

    async fn on_exit(&mut self, id: &str) {
        let cfg = self.ctx.runtime.clone();
        let Some(mut inst) = self
            .instances
            .values()
            .flatten()
            .find(|i| i.record.id == id)
            .cloned()
        else {
            return;
        };
        if inst.exited.is_some() {
            return;
        }
        crate::sys::crash::point("exit-seen");
        inst.exited = container::read_exit(&cfg, &self.uid, &inst.record.name, inst.record.attempt);
        inst.shim = None;
        self.probes.stop(id);
        if inst.exited.is_none() {
            self.abandon(
                &mut inst,
                "The container could not be located when the pod was terminated",
            )
            .await;
        }
        let _ = std::fs::remove_file(cfg.shim_record(id));
        if let Some(list) = self.instances.get_mut(&inst.record.name) {
            if let Some(slot) = list.iter_mut().find(|i| i.record.id == id) {
                *slot = inst;
            }
        }
        self.gc_instances().await;
    }

    /// Keeps the two newest instances of each container (state and lastState) and removes the rest.
    async fn gc_instances(&mut self) {
        let cfg = self.ctx.runtime.clone();
        let ns = self
            .pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        for (cname, list) in self.instances.iter_mut() {
            while list.len() > 2 && list.first().is_some_and(|i| i.exited.is_some()) {
                let old = list.remove(0);
                let dir = cfg.instance_dir(&self.uid, cname, old.record.attempt);
                let _ = container::remove_instance(&cfg, &old.record.id, &dir).await;
                let log_dir = cfg.container_log_dir(&ns, &name, &self.uid, cname);
                crate::runtime::log::remove_instance_logs(&log_dir, old.record.attempt);
            }
        }
    }

    /// Every container of the spec, init containers first.
    pub(super) fn all_containers(&self) -> impl Iterator<Item = &k8s_openapi::api::core::v1::Container> {
        self.pod
            .spec
            .pod
            .init_containers
            .iter()
            .flatten()
            .chain(self.pod.spec.pod.containers.iter())
    }

    /// The runtime view of the pod, newest instances first.
    pub(super) fn view(&self) -> PodView {
        let sandbox = match (&self.sandbox, &self.sandbox_pointer) {
            (Some(s), _) => Some(SandboxView {
                id: s.id.clone(),
                attempt: s.attempt,
                ready: self.sandbox_ready,
            }),
            (None, Some(p)) => Some(SandboxView {
                id: p.id.clone(),
                attempt: p.attempt,
                ready: false,
            }),
            (None, None) => None,
        };
        let mut containers: Vec<ContainerView> =
            self.instances.values().flatten().map(instance_view).collect();
        containers.sort_by(|a, b| b.attempt.cmp(&a.attempt).then(b.created_at.cmp(&a.created_at)));
        let running = containers
            .iter()
            .filter(|c| c.state == RunState::Running)
            .map(|c| c.id.as_str());
        let probes = self.probes.view(running);
        PodView {
            sandbox,
            containers,
            probes,
        }
    }

    /// Hash of each container's spec.
    pub(super) fn hashes(&self) -> HashMap<String, String> {
        self.all_containers()
            .map(|c| (c.name.clone(), spec_hash(c)))
            .collect()
    }

    async fn sync(&mut self) {
        self.refresh_created();
        let now = Timestamp::now();
        if self.start_time.is_none() {
            self.start_time = Some(now);
        }
        self.check_deadline(now);
        let view = self.view();
        let stopping = self.terminating.is_some() || self.failure.is_some();
        let plan = plan::compute(
            &self.pod,
            &PlanInput {
                view: &view,
                hashes: &self.hashes(),
                stopping,
            },
        );
        let done = !plan.is_empty()
            && plan.create_sandbox.is_none()
            && plan.start_init.is_none()
            && plan.restart_sidecars.is_empty()
            && plan.start.is_empty()
            && plan.kill.is_empty();
        // A sidecar that started (without a startup probe) lets the next init container start: no exit
        // or probe message will come to trigger that sync, so it follows at once.
        // The kubelet reports what it observed before it acts (`SyncPod`: the API status first, then the
        // runtime's `SyncPod`): an exit seen now, or at recovery, must not wait for the starts below, and a
        // terminating pod shows not ready before its containers stop.
        self.report(false);
        let sidecar = plan.start_init.clone().filter(|name| self.is_sidecar(name));
        let instances_of = |w: &Self, name: &str| w.instances.get(name).map_or(0, Vec::len);
        let before = sidecar.as_deref().map(|n| instances_of(self, n));
        self.act(plan).await;
        if let (Some(name), Some(before)) = (sidecar.as_deref(), before) {
            let running = self
                .instances
                .get(name)
                .and_then(|l| l.last())
                .is_some_and(|i| i.exited.is_none() && i.started.is_some());
            self.resync_now = instances_of(self, name) > before && running;
        }
        let view = self.view();
        if (stopping || done) && view.live().next().is_none() && !self.sandbox_ready {
            self.terminal = true;
        }
        if stopping && view.live().next().is_none() && !self.sandbox_ready {
            self.terminal = true;
        }
        self.report(false);
    }

    /// Picks up `started.json` of instances a previous supervisor was still starting, and the identity of
    /// their shims when it was not recorded yet at recovery.
    fn refresh_created(&mut self) {
        let cfg = &self.ctx.runtime;
        for inst in self.instances.values_mut().flatten() {
            if inst.exited.is_some() {
                continue;
            }
            let dir = cfg.instance_dir(&self.uid, &inst.record.name, inst.record.attempt);
            if inst.started.is_none() {
                inst.started = crate::sys::fs::read_json(&dir.join(crate::runtime::record::STARTED))
                    .ok()
                    .flatten();
            }
            if inst.shim.is_none() {
                inst.shim = container::shim_identity(cfg, &inst.record.id, &dir);
            }
        }
    }

    fn check_deadline(&mut self, now: Timestamp) {
        let (Some(deadline), Some(start)) = (self.pod.spec.pod.active_deadline_seconds, self.start_time)
        else {
            return;
        };
        if self.failure.is_none() && now.as_second() - start.as_second() >= deadline {
            let message = "Pod was active on the node longer than the specified deadline";
            self.failure = Some(("DeadlineExceeded".into(), message.into()));
            self.ctx.recorder.record(
                &self.pod,
                super::events::Event::normal("DeadlineExceeded", message),
            );
        }
    }

    fn next_wakeup(&self) -> Duration {
        let now = Timestamp::now();
        let mut at: Vec<Timestamp> = Vec::new();
        at.extend(self.retry_at);
        for c in self.all_containers() {
            let key = super::backoff::key(&c.name, &spec_hash(c));
            if let Some(ex) = self
                .instances
                .get(&c.name)
                .and_then(|l| l.last())
                .and_then(|i| i.exited.as_ref())
            {
                at.extend(self.backoff.ready_at(&key, ex.finished_at));
            }
        }
        for (image, failed) in &self.pull_failures {
            at.extend(self.pull_backoff.ready_at(&format!("pull_{image}"), *failed));
        }
        if let (Some(d), Some(s)) = (self.pod.spec.pod.active_deadline_seconds, self.start_time) {
            at.extend(Timestamp::from_second(s.as_second().saturating_add(d)).ok());
        }
        let soonest = at.into_iter().filter(|t| *t > now).min();
        match soonest {
            Some(t) => {
                let nanos = (t.as_nanosecond() - now.as_nanosecond()).max(0) as u64;
                Duration::from_nanos(nanos).min(RESYNC) + Duration::from_millis(5)
            }
            None => RESYNC,
        }
    }

    fn report(&mut self, finished: bool) {
        let view = self.view();
        let qos = crate::api::resources::QosClass::of(&self.pod.spec.pod).as_str();
        let status = status::compute(
            &self.pod,
            &StatusInput {
                view: &view,
                reasons: &self.reasons,
                previous: self.previous.as_ref(),
                now: Timestamp::now(),
                start_time: self.start_time,
                pod_ips: self
                    .sandbox
                    .as_ref()
                    .map(|s| s.pod_ips.as_slice())
                    .unwrap_or_default(),
                host_ip: self.ctx.runtime.node_ip.as_deref(),
                terminating: self.terminating.is_some(),
                terminal: self.terminal,
                failure: self.failure.clone(),
                qos_class: Some(qos.to_string()),
            },
        );
        if !finished && self.previous.as_ref() == Some(&status) {
            return;
        }
        self.previous = Some(status.clone());
        let mut pod = self.pod.clone();
        pod.status = Some(status.clone());
        if !finished {
            self.checkpoint_pod(&pod);
        }
        let _ = self.updates.send(Update {
            uid: self.uid.clone(),
            pod,
            status,
            finished,
        });
    }
}

fn instance_view(i: &Instance) -> ContainerView {
    let r = &i.record;
    let (state, exit_code, signal, reason, message, finished_at) = match &i.exited {
        Some(e) => (
            RunState::Exited,
            e.exit_code,
            e.signal,
            e.reason.clone(),
            e.message.clone().unwrap_or_default(),
            Some(e.finished_at),
        ),
        None if i.started.is_some() => (RunState::Running, 0, None, String::new(), String::new(), None),
        None => (RunState::Created, 0, None, String::new(), String::new(), None),
    };
    ContainerView {
        name: r.name.clone(),
        id: r.id.clone(),
        attempt: r.attempt,
        sandbox_id: r.sandbox_id.clone(),
        spec_hash: r.spec_hash.clone(),
        image: r.image.clone(),
        image_id: r.image_ref.clone().unwrap_or_else(|| r.image_id.clone()),
        state,
        created_at: r.created_at,
        started_at: i
            .started
            .as_ref()
            .map(|s| s.started_at)
            .or_else(|| i.exited.as_ref().and_then(|e| e.started_at)),
        finished_at,
        exit_code,
        signal,
        reason,
        message,
    }
}

/// A stable hash of a container's spec: a changed spec means a new backoff and a restart.
pub fn spec_hash(c: &k8s_openapi::api::core::v1::Container) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(c).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}
