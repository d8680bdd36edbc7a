//! Executing a plan: stopping and starting containers and sandboxes with the kubelet's events, waiting
//! reasons and backoffs (`SyncPod` steps and `startContainer`, pkg/kubelet/kuberuntime).
//!
//! Each start comes to an [`Outcome`]; [`Worker::settle`] turns it into the container's waiting reason and
//! the next retry, in one place. Images are in `pull`, the pod's removal in `cleanup`.

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::Timestamp;

use super::{Instance, Msg, Worker};
use crate::pod::backoff::{self, go_duration};
use crate::pod::events::Event;
use crate::pod::instances::spec_hash;
use crate::pod::plan::{self, Kill, Plan};
use crate::pod::status::Waiting;
use crate::runtime::container::{self, ContainerRequest, StartError};
use crate::runtime::sandbox::{self, SandboxRequest};

/// What a start attempt came to.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The container runs: it no longer waits.
    Running,
    /// It waits with this reason until an exit, a probe or a backoff's end syncs the pod again.
    Waiting(Waiting),
    /// It waits with this reason, and nothing will report: sync again after the retry period.
    Retry(Waiting),
    /// Nothing to record (no sandbox, volumes not ready: their own retry is set).
    Nothing,
}

fn waiting(reason: &str, message: impl Into<String>) -> Waiting {
    Waiting {
        reason: reason.to_string(),
        message: message.into(),
    }
}

impl Worker {
    /// Executes `plan` in the kubelet's order: kill the pod, kill containers, create the sandbox, start the
    /// next init container, start regular containers.
    pub(super) async fn act(&mut self, plan: &Plan) {
        if plan.kill_pod {
            if plan.create_sandbox.is_some() && self.sandbox.record.is_some() {
                self.record(Event::normal(
                    "SandboxChanged",
                    "Pod sandbox changed, it will be killed and re-created.",
                ));
            }
            self.kill_pod().await;
        }
        for k in &plan.kill {
            self.kill_one(k).await;
        }
        if let Some(attempt) = plan.create_sandbox {
            if !self.create_sandbox(attempt).await {
                return;
            }
            crate::sys::crash::point("sandbox-created");
        }
        // A termination request cancels the starts still to come (each start takes a while, and a pod may
        // have many containers): the next sync stops what did start.
        let starts = plan.restart_sidecars.iter().map(|n| (n, true));
        let starts = starts.chain(plan.start_init.iter().map(|n| (n, true)));
        for (name, is_init) in starts.chain(plan.start.iter().map(|n| (n, false))) {
            if self.stop_requested() {
                return;
            }
            let outcome = self.start_named(name, is_init).await;
            self.settle(name, outcome);
        }
    }

    /// Records what a start came to: the container's waiting reason and the retry. The one place both are
    /// derived from a start.
    fn settle(&mut self, name: &str, outcome: Outcome) {
        match outcome {
            Outcome::Running => {
                self.set_waiting(name, None);
            }
            Outcome::Waiting(w) => {
                self.set_waiting(name, Some(w));
            }
            Outcome::Retry(w) => {
                self.set_waiting(name, Some(w));
                self.retry_later();
            }
            Outcome::Nothing => {}
        }
    }

    /// Whether the pod is to stop. Messages that arrived meanwhile are queued for the worker loop, which
    /// handles them in order and syncs again at once.
    fn stop_requested(&mut self) -> bool {
        while let Ok(msg) = self.rx.try_recv() {
            self.deferred.push(msg);
        }
        self.lifecycle.terminating() || self.deferred.iter().any(|m| matches!(m, Msg::Terminate { .. }))
    }

    /// Stops every live container in parallel (sidecars after the others, in reverse order), then the
    /// sandbox.
    async fn kill_pod(&mut self) {
        let live: Vec<Instance> = self.instances.all().filter(|i| i.live()).cloned().collect();
        let names: Vec<String> = live.iter().map(|i| i.record.name.clone()).collect();
        let mut jobs = Vec::new();
        for i in &live {
            let name = &i.record.name;
            let event = Event::normal("Killing", format!("Stopping container {name}"));
            self.record(event.on(self.field_path(name)));
            let after = plan::stop_after(&self.pod.spec.pod, name, &names);
            jobs.extend(self.stop_job(i, after));
        }
        let stopper = self.stopper(plan::grace(&self.pod.spec.pod, self.lifecycle.grace()));
        for id in stopper.stop_all(jobs).await {
            self.collect_exit(&id).await;
        }
        crate::sys::crash::point("containers-stopped");
        if let Some(sb) = &self.sandbox.record {
            if let Err(e) = sandbox::stop(&self.ctx.runtime, sb).await {
                tracing::warn!(pod = %self.pod.key(), error = %crate::runtime::chain(&e), "failed to stop sandbox");
                return;
            }
        }
        self.sandbox_down();
    }

    /// Stops one container (spec changed, probe failed, postStart hook failed), preStop hook included.
    async fn kill_one(&mut self, k: &Kill) {
        self.record(Event::normal("Killing", k.message.clone()).on(self.field_path(&k.name)));
        let job = self
            .instances
            .find(&k.id)
            .and_then(|i| self.stop_job(i, Vec::new()));
        if let Some(job) = job {
            let pod_grace = plan::grace(&self.pod.spec.pod, self.lifecycle.grace());
            self.stopper(plan::kill_grace(k.grace, pod_grace))
                .stop(job, None)
                .await;
        }
        self.collect_exit(&k.id).await;
    }

    /// Prepares volumes and creates the sandbox; false (with a warning event) when it failed.
    async fn create_sandbox(&mut self, attempt: u32) -> bool {
        let cfg = self.ctx.runtime.clone();
        self.volumes = None;
        if self.ensure_volumes().await.is_none() {
            return false;
        }
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        let namespace = self.pod.namespace_or_default().to_string();
        let req = SandboxRequest {
            uid: &self.uid,
            name: &name,
            namespace: &namespace,
            spec: &self.pod.spec.pod,
            attempt,
        };
        match sandbox::create(&cfg, &req).await {
            Ok(record) => {
                self.sandbox_up(record);
                if crate::runtime::etc::effective_policy(&self.pod.spec.pod, &cfg.cluster_dns).1 {
                    let message = format!(
                        "pod: {:?}. kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy.",
                        self.format_pod()
                    );
                    self.record(Event::warning("MissingClusterDNS", message));
                }
                true
            }
            Err(e) => {
                let message = format!("Failed to create pod sandbox: {}", crate::runtime::chain(&e));
                self.record(Event::warning("FailedCreatePodSandBox", message));
                self.retry_later();
                false
            }
        }
    }

    async fn start_named(&mut self, name: &str, is_init: bool) -> Outcome {
        let list = if is_init {
            self.pod.spec.pod.init_containers.clone().unwrap_or_default()
        } else {
            self.pod.spec.pod.containers.clone()
        };
        match list.into_iter().find(|c| c.name == name) {
            Some(c) => self.start_container(&c).await,
            None => Outcome::Nothing,
        }
    }

    /// The kubelet's crash-loop backoff check before a start: `CrashLoopBackOff` (and a `BackOff` event
    /// when its message changed) while the last exit is in backoff.
    fn crash_backoff(&mut self, c: &Container, key: &str) -> Option<Outcome> {
        let now = Timestamp::now();
        let finished_at = self.instances.latest(&c.name)?.exited.as_ref()?.finished_at;
        if !self.backoff.in_backoff_since(key, finished_at, now) {
            self.backoff.next(key, finished_at, now);
            return None;
        }
        let pod = self.format_pod();
        let message = format!(
            "back-off {} restarting failed container={} pod={pod}",
            go_duration(self.backoff.get(key)),
            c.name
        );
        if self.reasons.get(&c.name).is_none_or(|w| w.message != message) {
            let event = Event::warning(
                "BackOff",
                format!("Back-off restarting failed container {} in pod {pod}", c.name),
            );
            self.record(event.on(self.field_path(&c.name)));
        }
        Some(Outcome::Waiting(waiting("CrashLoopBackOff", message)))
    }

    /// The kubelet's `startContainer`, preceded by its crash-loop backoff check.
    async fn start_container(&mut self, c: &Container) -> Outcome {
        let hash = spec_hash(c);
        let field_path = self.field_path(&c.name);
        if let Some(backoff) = self.crash_backoff(c, &backoff::key(&c.name, &hash)) {
            return backoff;
        }
        let image = match self.ensure_image(c, &field_path).await {
            Ok(image) => image,
            Err(outcome) => return outcome,
        };
        let Some(sandbox) = self.sandbox.record.clone() else {
            return Outcome::Nothing;
        };
        // A worker that adopted a running sandbox after a restart prepares its volumes again here.
        let Some(volumes) = self.ensure_volumes().await else {
            return Outcome::Nothing;
        };
        let attempt = self.instances.next_attempt(&c.name);
        let req = ContainerRequest {
            pod: &self.pod,
            uid: &self.uid,
            container: c,
            attempt,
            spec_hash: &hash,
            sandbox: &sandbox,
            image: &image,
            volumes: &volumes,
            host_ip: self.ctx.runtime.node_ip.as_deref(),
        };
        self.images.insert(c.name.clone(), image.clone());
        let started = match container::start(&self.ctx.runtime, &req).await {
            Ok(started) => started,
            Err(e) => return self.start_failed(c, &e, attempt),
        };
        self.record(
            Event::normal("Created", format!("Created container: {}", c.name)).on(field_path.clone()),
        );
        self.record(Event::normal("Started", format!("Started container {}", c.name)).on(field_path));
        let inst = Instance {
            record: started.instance,
            started: Some(started.started),
            exited: None,
            shim: Some(started.shim),
        };
        self.instance_added(inst.clone());
        match self.post_start(c, &inst).await {
            Ok(()) => {
                self.start_probes(c, &inst, (false, false));
                Outcome::Running
            }
            Err(e) => self.post_start_failed(c, &inst, e.to_string()).await,
        }
    }

    /// The kubelet's answer to a failed postStart hook: an event without the handler's output (it may
    /// hold secrets), the container killed, and `PostStartHookError` with the output as its waiting reason.
    async fn post_start_failed(&mut self, c: &Container, inst: &Instance, message: String) -> Outcome {
        let field_path = self.field_path(&c.name);
        self.record(Event::warning("FailedPostStartHook", "PostStartHook failed").on(field_path));
        let kill = Kill {
            name: c.name.clone(),
            id: inst.record.id.clone(),
            message: "FailedPostStartHook".into(),
            grace: None,
        };
        self.kill_one(&kill).await;
        Outcome::Waiting(waiting("PostStartHookError", message))
    }

    /// A start that failed: `Failed` event; when the shim recorded the failed start as an exit, that exit
    /// counts for backoff like any other, else the start is retried after the retry period.
    fn start_failed(&mut self, c: &Container, e: &StartError, attempt: u32) -> Outcome {
        let field_path = self.field_path(&c.name);
        self.record(Event::warning("Failed", format!("Error: {e}")).on(field_path));
        let why = waiting(e.reason(), e.to_string());
        if let StartError::Run(_) = e {
            let found = container::observe(&self.ctx.runtime, &self.uid, &c.name)
                .into_iter()
                .find(|o| o.instance.attempt == attempt && o.exited.is_some());
            if let Some(o) = found {
                self.instance_added(Instance {
                    record: o.instance,
                    started: o.started,
                    exited: o.exited,
                    shim: None,
                });
                return Outcome::Waiting(why);
            }
        }
        Outcome::Retry(why)
    }
}
