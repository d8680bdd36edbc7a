//! Executing a plan: stopping and starting containers and sandboxes with the kubelet's events, waiting
//! reasons and backoffs (`SyncPod` steps and `startContainer`, pkg/kubelet/kuberuntime).

use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::backoff::{self, go_duration};
use super::events::Event;
use super::images::{pulled_message, PullSecrets};
use super::plan::{Kill, Plan};
use super::status::Waiting;
use super::worker::{spec_hash, Instance, Msg, Worker, RETRY};
use crate::runtime::container::{self, ContainerRequest, ImageInfo, StartError};
use crate::runtime::sandbox::{self, SandboxRequest};
use crate::volume;

impl Worker {
    /// Executes `plan` in the kubelet's order: kill the pod, kill containers, create the sandbox, start the
    /// next init container, start regular containers.
    pub(super) async fn act(&mut self, plan: Plan) {
        if plan.kill_pod {
            if plan.create_sandbox.is_some() && self.sandbox.is_some() {
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
            self.start_named(name, is_init).await;
        }
    }

    /// Whether the pod is to stop. Messages that arrived meanwhile are queued for the worker loop, which
    /// handles them in order and syncs again at once.
    fn stop_requested(&mut self) -> bool {
        while let Ok(msg) = self.rx.try_recv() {
            self.deferred.push(msg);
        }
        self.terminating.is_some() || self.deferred.iter().any(|m| matches!(m, Msg::Terminate { .. }))
    }

    fn record(&self, event: Event) {
        self.ctx.recorder.record(&self.pod, event);
    }

    pub(super) fn field_path(&self, name: &str) -> String {
        let is_init = self
            .pod
            .spec
            .pod
            .init_containers
            .iter()
            .flatten()
            .any(|c| c.name == name);
        if is_init {
            format!("spec.initContainers{{{name}}}")
        } else {
            format!("spec.containers{{{name}}}")
        }
    }

    /// `name_namespace(uid)`, the kubelet's `format.Pod`.
    pub(super) fn format_pod(&self) -> String {
        format!(
            "{}_{}({})",
            self.pod.metadata.name.as_deref().unwrap_or(""),
            self.pod.metadata.namespace.as_deref().unwrap_or("default"),
            self.uid
        )
    }

    /// The grace period for stopping the pod: the termination request's, else the spec's (the 2-second
    /// floor applies to the stop signal, after the preStop hook).
    fn grace(&self) -> Duration {
        let spec = self.pod.spec.pod.termination_grace_period_seconds.unwrap_or(30);
        let secs = self.terminating.flatten().unwrap_or(spec).max(0);
        Duration::from_secs(secs as u64)
    }

    /// Stops every live container in parallel (sidecars after the others, in reverse order), then the
    /// sandbox.
    async fn kill_pod(&mut self) {
        let live: Vec<Instance> = self
            .instances
            .values()
            .flatten()
            .filter(|i| i.exited.is_none() && i.shim.is_some())
            .cloned()
            .collect();
        let names: Vec<String> = live.iter().map(|i| i.record.name.clone()).collect();
        let mut jobs = Vec::new();
        for i in &live {
            let event = Event::normal("Killing", format!("Stopping container {}", i.record.name));
            self.record(event.on(self.field_path(&i.record.name)));
            jobs.extend(self.stop_job(i, self.stop_after(&i.record.name, &names)));
        }
        let stopper = self.stopper(self.grace());
        for id in stopper.stop_all(jobs).await {
            self.collect_exit(&id).await;
        }
        crate::sys::crash::point("containers-stopped");
        let cfg = self.ctx.runtime.clone();
        if let Some(sb) = self.sandbox.take() {
            if let Err(e) = sandbox::stop(&cfg, &sb).await {
                tracing::warn!(pod = %self.pod.key(), error = %crate::runtime::chain(&e), "failed to stop sandbox");
                self.sandbox = Some(sb);
                return;
            }
            self.sandbox_pointer = Some(sandbox::SandboxPointer {
                id: sb.id.clone(),
                attempt: sb.attempt,
            });
        }
        self.sandbox_ready = false;
    }

    /// Stops one container (spec changed, probe failed, postStart hook failed), preStop hook included.
    pub(super) async fn kill_one(&mut self, k: &Kill) {
        self.record(Event::normal("Killing", k.message.clone()).on(self.field_path(&k.name)));
        let job = self
            .instances
            .values()
            .flatten()
            .find(|i| i.record.id == k.id)
            .and_then(|i| self.stop_job(i, Vec::new()));
        if let Some(job) = job {
            let grace = match k.grace {
                Some(secs) => Duration::from_secs(secs.max(0) as u64),
                None => self.grace(),
            };
            self.stopper(grace).stop(job, None).await;
        }
        self.collect_exit(&k.id).await;
    }

    /// Reads the exit of a stopped instance into the worker's state.
    async fn collect_exit(&mut self, id: &str) {
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
        if inst.exited.is_none() {
            inst.exited = container::read_exit(&cfg, &self.uid, &inst.record.name, inst.record.attempt);
            if inst.exited.is_none() {
                self.abandon(
                    &mut inst,
                    "The container could not be located when the pod was terminated",
                )
                .await;
            }
        }
        inst.shim = None;
        self.probes.stop(id);
        let _ = std::fs::remove_file(cfg.shim_record(id));
        if let Some(slot) = self
            .instances
            .get_mut(&inst.record.name)
            .and_then(|l| l.iter_mut().find(|i| i.record.id == id))
        {
            *slot = inst;
        }
    }

    /// Prepares volumes and creates the sandbox; false (with a warning event) when it failed.
    async fn create_sandbox(&mut self, attempt: u32) -> bool {
        let cfg = self.ctx.runtime.clone();
        self.volumes = None;
        if self.ensure_volumes().await.is_none() {
            return false;
        }
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        let namespace = self
            .pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let req = SandboxRequest {
            uid: &self.uid,
            name: &name,
            namespace: &namespace,
            spec: &self.pod.spec.pod,
            attempt,
        };
        match sandbox::create(&cfg, &req).await {
            Ok(record) => {
                self.watch_sandbox(&record);
                self.sandbox_pointer = Some(sandbox::SandboxPointer {
                    id: record.id.clone(),
                    attempt,
                });
                self.sandbox = Some(record);
                self.sandbox_ready = true;
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
                self.retry_at = Timestamp::now()
                    .checked_add(SignedDuration::from_secs(RETRY.as_secs() as i64))
                    .ok();
                false
            }
        }
    }

    async fn start_named(&mut self, name: &str, is_init: bool) {
        let list = if is_init {
            self.pod.spec.pod.init_containers.clone().unwrap_or_default()
        } else {
            self.pod.spec.pod.containers.clone()
        };
        if let Some(c) = list.into_iter().find(|c| c.name == name) {
            self.start_container(&c).await;
        }
    }

    /// The kubelet's `startContainer`, preceded by its crash-loop backoff check.
    async fn start_container(&mut self, c: &Container) {
        let now = Timestamp::now();
        let hash = spec_hash(c);
        let field_path = self.field_path(&c.name);
        let key = backoff::key(&c.name, &hash);
        let last_finish = self
            .instances
            .get(&c.name)
            .and_then(|l| l.last())
            .and_then(|i| i.exited.as_ref())
            .map(|e| e.finished_at);
        if let Some(finished_at) = last_finish {
            if self.backoff.in_backoff_since(&key, finished_at, now) {
                let pod = self.format_pod();
                let message = format!(
                    "back-off {} restarting failed container={} pod={pod}",
                    go_duration(self.backoff.get(&key)),
                    c.name
                );
                let changed = self
                    .reasons
                    .get(&c.name)
                    .map(|w| w.message != message)
                    .unwrap_or(true);
                self.reasons.insert(
                    c.name.clone(),
                    Waiting {
                        reason: "CrashLoopBackOff".into(),
                        message,
                    },
                );
                if changed {
                    let event = Event::warning(
                        "BackOff",
                        format!("Back-off restarting failed container {} in pod {pod}", c.name),
                    );
                    self.record(event.on(field_path));
                }
                return;
            }
            self.backoff.next(&key, finished_at, now);
        }
        let Some(image) = self.ensure_image(c, &field_path).await else {
            return;
        };
        let Some(sandbox) = self.sandbox.clone() else {
            return;
        };
        // A worker that adopted a running sandbox after a restart prepares its volumes again here.
        let Some(volumes) = self.ensure_volumes().await else {
            return;
        };
        let attempt = self
            .instances
            .get(&c.name)
            .and_then(|l| l.iter().map(|i| i.record.attempt + 1).max())
            .unwrap_or(0);
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
        let result = container::start(&self.ctx.runtime, &req).await;
        match result {
            Ok(started) => {
                self.reasons.remove(&c.name);
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
                self.watch_instance(&inst);
                self.instances
                    .entry(c.name.clone())
                    .or_default()
                    .push(inst.clone());
                match self.post_start(c, &inst).await {
                    Ok(()) => self.start_probes(c, &inst, (false, false)),
                    Err(message) => self.post_start_failed(c, &inst, message).await,
                }
            }
            Err(e) => {
                self.start_failed(c, &e, attempt).await;
            }
        }
    }

    /// The kubelet's answer to a failed postStart hook: an event without the handler's output (it may
    /// hold secrets), the container killed, and `PostStartHookError` with the output as its waiting reason.
    async fn post_start_failed(&mut self, c: &Container, inst: &Instance, message: String) {
        let field_path = self.field_path(&c.name);
        self.record(Event::warning("FailedPostStartHook", "PostStartHook failed").on(field_path));
        let kill = Kill {
            name: c.name.clone(),
            id: inst.record.id.clone(),
            message: "FailedPostStartHook".into(),
            grace: None,
        };
        self.kill_one(&kill).await;
        self.reasons.insert(
            c.name.clone(),
            Waiting {
                reason: "PostStartHookError".into(),
                message,
            },
        );
    }

    async fn start_failed(&mut self, c: &Container, e: &StartError, attempt: u32) {
        let field_path = self.field_path(&c.name);
        self.reasons.insert(
            c.name.clone(),
            Waiting {
                reason: e.reason().to_string(),
                message: e.to_string(),
            },
        );
        self.record(Event::warning("Failed", format!("Error: {e}")).on(field_path));
        if let StartError::Run(_) = e {
            // The shim recorded the failed start as an exit; it counts for backoff like any exit.
            let cfg = &self.ctx.runtime;
            let found = container::observe(cfg, &self.uid, &c.name)
                .into_iter()
                .find(|o| o.instance.attempt == attempt);
            if let Some(o) = found {
                let inst = Instance {
                    record: o.instance,
                    started: o.started,
                    exited: o.exited,
                    shim: None,
                };
                if inst.exited.is_some() {
                    self.instances.entry(c.name.clone()).or_default().push(inst);
                    return;
                }
            }
        }
        self.retry_at = Timestamp::now()
            .checked_add(SignedDuration::from_secs(RETRY.as_secs() as i64))
            .ok();
    }

    /// The kubelet's image manager: pull policy, `Pulling`/`Pulled` events, pull backoff.
    async fn ensure_image(&mut self, c: &Container, field_path: &str) -> Option<ImageInfo> {
        let image = c.image.clone().unwrap_or_default();
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| "IfNotPresent".into());
        let images = self.ctx.images.clone();
        let local = match images.local(&image) {
            Ok(l) => l,
            Err(e) => {
                self.image_failed(c, field_path, &e.reason, &e.message, None);
                return None;
            }
        };
        let must_pull = match (&local, policy.as_str()) {
            (Some(_), "Always") => !images.local_only(&image),
            (Some(_), _) => false,
            (None, "Never") => {
                let message = format!("Container image {image:?} is not present with pull policy of Never");
                self.image_failed(c, field_path, "ErrImageNeverPull", &message, None);
                return None;
            }
            (None, _) => true,
        };
        if !must_pull {
            let event = Event::normal(
                "Pulled",
                format!("Container image {image:?} already present on machine"),
            );
            self.record(event.on(field_path.to_string()));
            return local;
        }
        let key = format!("pull_{image}");
        let now = Timestamp::now();
        if let Some(failed) = self.pull_failures.get(&image) {
            if self.pull_backoff.in_backoff_since(&key, *failed, now) {
                let message = format!("Back-off pulling image {image:?}");
                self.record(Event::normal("BackOff", message.clone()).on(field_path.to_string()));
                self.reasons.insert(
                    c.name.clone(),
                    Waiting {
                        reason: "ImagePullBackOff".into(),
                        message,
                    },
                );
                return None;
            }
        }
        self.record(Event::normal("Pulling", format!("Pulling image {image:?}")).on(field_path.to_string()));
        let started = std::time::Instant::now();
        let outcome = images.pull(&image, &PullSecrets::of(&self.pod)).await;
        if let Some(warning) = outcome.secrets_warning {
            self.record(Event::warning("FailedToRetrieveImagePullSecret", warning));
        }
        match outcome.result {
            Ok(ensured) => {
                self.pull_failures.remove(&image);
                let (size, took) = ensured.pulled.unwrap_or((0, started.elapsed()));
                let message = pulled_message(&image, took, started.elapsed(), size);
                self.record(Event::normal("Pulled", message).on(field_path.to_string()));
                Some(ensured.info)
            }
            Err(e) => {
                self.pull_backoff.next(&key, now, now);
                self.pull_failures.insert(image.clone(), now);
                self.image_failed(c, field_path, &e.reason, &e.message, Some(&image));
                None
            }
        }
    }

    fn image_failed(
        &mut self,
        c: &Container,
        field_path: &str,
        reason: &str,
        message: &str,
        pulled: Option<&str>,
    ) {
        match pulled {
            Some(image) => {
                let event = Event::warning("Failed", format!("Failed to pull image {image:?}: {message}"));
                self.record(event.on(field_path.to_string()));
                self.record(Event::warning("Failed", format!("Error: {reason}")).on(field_path.to_string()));
            }
            None => self.record(Event::warning(reason, message.to_string()).on(field_path.to_string())),
        }
        self.reasons.insert(
            c.name.clone(),
            Waiting {
                reason: reason.to_string(),
                message: message.to_string(),
            },
        );
        // Sync again after the kubelet's worker back-off period: inside the image's pull back-off window
        // (from the second failure on) that sync shows ImagePullBackOff, as the kubelet's does.
        self.retry_at = Timestamp::now()
            .checked_add(SignedDuration::from_secs(RETRY.as_secs() as i64))
            .ok();
    }

    /// Removes everything the pod left on the node once it is terminated: instances, volumes, cgroups,
    /// the pod directory and its logs.
    pub(super) async fn cleanup(&mut self) {
        let cfg = self.ctx.runtime.clone();
        for inst in self.instances.values().flatten() {
            let dir = cfg.instance_dir(&self.uid, &inst.record.name, inst.record.attempt);
            let _ = container::remove_instance(&cfg, &inst.record.id, &dir).await;
        }
        let pod_dir = cfg.pod_dir(&self.uid);
        let uid = self.uid.clone();
        let key = self.pod.key();
        // Every step runs even when one before failed, but the pod directory is removed only once nothing
        // is mounted under it: a bind left in place (a staged hostPath) stays, and so does the directory,
        // tried again by the next cleanup or start. The removal itself also refuses to cross a mount.
        // The directory goes last: while it exists, a supervisor killed part way adopts the pod again at
        // its restart and finishes the cleanup (without it, nothing would name the pod cgroup).
        let result = tokio::task::spawn_blocking(move || -> Vec<std::io::Error> {
            [
                volume::teardown(&pod_dir),
                crate::sys::mount::unmount_all_under(&pod_dir),
                crate::runtime::cgroup::remove_pod(&cfg, &uid),
                {
                    crate::sys::crash::point("pod-cleanup");
                    crate::sys::fs::remove_dir_unless_mounted(&pod_dir)
                },
            ]
            .into_iter()
            .filter_map(Result::err)
            .collect()
        })
        .await;
        match result {
            Ok(errors) => {
                for e in errors {
                    tracing::warn!(pod = %key, error = %e, "failed to clean up pod");
                }
            }
            Err(e) => tracing::warn!(pod = %key, error = %e, "failed to clean up pod"),
        }
    }
}
