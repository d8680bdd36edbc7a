//! What the worker tells the front end: the runtime view of the pod, its status (a pure function of spec,
//! view and lifecycle) sent when it changed, and the pod checkpoint written with it.

use k8s_openapi::jiff::Timestamp;

use super::{Update, Worker};
use crate::api::PodGroup;
use crate::pod::checkpoint::POD_CHECKPOINT;
use crate::pod::status::{self, StatusInput};
use crate::pod::view::{PodView, RunState, SandboxView};

impl Worker {
    /// The runtime view of the pod, newest instances first.
    pub(super) fn view(&self) -> PodView {
        let sandbox = match (&self.sandbox.record, &self.sandbox.pointer) {
            (Some(s), _) => Some(SandboxView {
                id: s.id.clone(),
                attempt: s.attempt,
                ready: self.sandbox.ready,
            }),
            (None, Some(p)) => Some(SandboxView {
                id: p.id.clone(),
                attempt: p.attempt,
                ready: false,
            }),
            (None, None) => None,
        };
        let containers = self.instances.view();
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

    /// Computes the status and sends it when it changed (always when `finished`: the worker is gone).
    pub(super) fn report(&mut self, finished: bool) {
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
                    .record
                    .as_ref()
                    .map(|s| s.pod_ips.as_slice())
                    .unwrap_or_default(),
                host_ip: self.ctx.runtime.node_ip.as_deref(),
                terminating: self.lifecycle.terminating(),
                terminal: self.lifecycle.terminal(),
                failure: self.lifecycle.failure(),
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

    /// Writes the pod (spec and last status) to `<pod dir>/pod.json`: what a restarted agent runs before the
    /// API server answers.
    pub(super) fn checkpoint(&self) {
        let mut pod = self.pod.clone();
        pod.status = self.previous.clone();
        self.checkpoint_pod(&pod);
    }

    fn checkpoint_pod(&self, pod: &PodGroup) {
        let dir = self.ctx.runtime.pod_dir(&self.uid);
        let result = crate::sys::fs::create_dir_all_mode(&dir, 0o700)
            .and_then(|()| crate::sys::fs::write_json_atomic(&dir.join(POD_CHECKPOINT), pod));
        if let Err(e) = result {
            tracing::warn!(pod = %self.pod.key(), error = %e, "failed to checkpoint pod");
        }
    }
}
