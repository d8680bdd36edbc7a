//! The worker's side of hooks, probes, watches and stops: the names events carry, where an instance's
//! probes and hooks connect, the pidfd watches that report exits, the postStart hook of a new instance (a
//! termination request cancels it), and the stop jobs `lifecycle` carries out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use nix::sys::signal::Signal;

use super::{Instance, Msg, Worker};
use crate::pod::lifecycle::{target, StopJob, Stopper};
use crate::pod::plan;
use crate::pod::probes::ProbeSubject;
use crate::pod::state::Transition;
use crate::runtime::container;
use crate::runtime::probe;
use crate::runtime::process::ExitWatch;
use crate::runtime::sandbox::SandboxRecord;

/// Why a postStart hook did not complete: the waiting message of `PostStartHookError`.
#[derive(Debug, thiserror::Error)]
pub(super) enum PostStartError {
    /// The handler failed; its output (kept out of events: it may hold secrets).
    #[error("{0}")]
    Handler(String),
    /// A termination request came while the hook ran.
    #[error("the pod is terminating")]
    Terminating,
    /// The worker's channel closed while the hook ran.
    #[error("the pod worker is stopping")]
    WorkerStopping,
}

impl Worker {
    /// `spec.initContainers{name}` or `spec.containers{name}`: the object of a container's events.
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
        self.pod.format_pod(&self.uid)
    }

    /// Sends [`Msg::Exited`] once the instance's shim exits.
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

    /// Sends [`Msg::SandboxExited`] once the pause process exits.
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

    /// Whether `name` is a native sidecar (an init container with `restartPolicy: Always`).
    pub(super) fn is_sidecar(&self, name: &str) -> bool {
        let init = self.pod.spec.pod.init_containers.as_deref().unwrap_or_default();
        init.iter().any(|c| c.name == name && plan::is_sidecar(c))
    }

    /// Where an instance's probes and hooks connect, and the object their events are about.
    fn subject(&self, c: &Container, inst: &Instance) -> ProbeSubject {
        let record = self.sandbox.record.as_ref();
        let netns: Option<PathBuf> = record.and_then(|s| s.net.clone());
        ProbeSubject {
            pod: Arc::new(self.pod.clone()),
            container: c.clone(),
            field_path: self.field_path(&c.name),
            id: inst.record.id.clone(),
            started_at: inst
                .started
                .as_ref()
                .map(|s| s.started_at)
                .unwrap_or(inst.record.created_at),
            netns,
            pod_ip: record.and_then(|s| s.pod_ips.first().cloned()),
            pod_name: self.format_pod(),
        }
    }

    /// Starts the probes of a running instance. `known`: what the last status said of it.
    pub(super) fn start_probes(&mut self, c: &Container, inst: &Instance, known: (bool, bool)) {
        let subject = self.subject(c, inst);
        let ctx = self.ctx.clone();
        let tx = self.tx.clone();
        self.probes.start(&ctx, &tx, subject, known);
    }

    /// Runs the postStart hook of a just-started instance. Messages that arrive meanwhile wait; a
    /// termination request cancels the hook.
    pub(super) async fn post_start(&mut self, c: &Container, inst: &Instance) -> Result<(), PostStartError> {
        let Some(handler) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) else {
            return Ok(());
        };
        let subject = self.subject(c, inst);
        let cfg = self.ctx.runtime.clone();
        let target = target(&cfg, &subject, c);
        let hook = probe::hook(&target, handler, None);
        tokio::pin!(hook);
        loop {
            tokio::select! {
                result = &mut hook => return result.map_err(|e| PostStartError::Handler(e.to_string())),
                msg = self.rx.recv() => match msg {
                    Some(Msg::Terminate { grace }) => {
                        self.transition(Transition::Terminate { grace });
                        return Err(PostStartError::Terminating);
                    }
                    Some(other) => self.deferred.push(other),
                    None => return Err(PostStartError::WorkerStopping),
                },
            }
        }
    }

    /// A stop job for a live instance; `after`: the containers that must be gone before its stop signal.
    pub(super) fn stop_job(&self, inst: &Instance, after: Vec<String>) -> Option<StopJob> {
        let shim = inst.shim?;
        let spec = self
            .all_containers()
            .find(|c| c.name == inst.record.name)
            .cloned();
        let signal = self
            .images
            .get(&inst.record.name)
            .map(container::stop_signal)
            .unwrap_or(Signal::SIGTERM);
        let subject = self.subject(&spec.clone().unwrap_or_default(), inst);
        Some(StopJob {
            container: spec,
            name: inst.record.name.clone(),
            id: inst.record.id.clone(),
            shim,
            signal,
            subject,
            after,
        })
    }

    /// The stopper for this pod with `grace`.
    pub(super) fn stopper(&self, grace: Duration) -> Stopper {
        Stopper {
            cfg: self.ctx.runtime.clone(),
            recorder: self.ctx.recorder.clone(),
            grace,
        }
    }
}
