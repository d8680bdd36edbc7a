//! What the pod worker knows about a pod's containers at one moment: the runtime's facts reduced to the
//! shape the kubelet reasons about (`kubecontainer.Status`). Plan and status are pure functions of it.

use std::collections::{HashMap, HashSet};

use k8s_openapi::jiff::Timestamp;

/// Runtime state of one container instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Prepared, not yet running.
    Created,
    /// Running.
    Running,
    /// Exited (or failed to start).
    Exited,
}

/// One container instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerView {
    /// Container name.
    pub name: String,
    /// OCI runtime id.
    pub id: String,
    /// Restart count this instance carries.
    pub attempt: u32,
    /// Sandbox it ran in.
    pub sandbox_id: String,
    /// Hash of the spec it was made from.
    pub spec_hash: String,
    /// Image as written in the spec.
    pub image: String,
    /// Image id or repo digest.
    pub image_id: String,
    /// State.
    pub state: RunState,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Exit code (exited only).
    pub exit_code: i32,
    /// Terminating signal, if any.
    pub signal: Option<i32>,
    /// Exit reason (`Completed`, `Error`, `OOMKilled`, `StartError`, `ContainerStatusUnknown`).
    pub reason: String,
    /// Termination message or start error.
    pub message: String,
}

/// The pod's current sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxView {
    /// Sandbox id.
    pub id: String,
    /// Attempt number.
    pub attempt: u32,
    /// Pause process alive and namespaces in place.
    pub ready: bool,
}

/// What the probes say about running instances, keyed by instance id (the kubelet's probe results
/// managers). The worker fills it; plan and status only read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeView {
    /// Running instances that have started: no startup probe, or it has succeeded.
    pub started: HashSet<String>,
    /// Running instances that are ready: started, and no readiness probe or its last result a success.
    pub ready: HashSet<String>,
    /// Instances to kill because a liveness or startup probe failed, with the probe that failed.
    pub failed: HashMap<String, FailedProbe>,
}

/// A probe whose failure means the container must be killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedProbe {
    /// `livenessProbe`.
    Liveness,
    /// `startupProbe`.
    Startup,
}

/// Everything observed about one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodView {
    /// Latest sandbox, if any was ever made.
    pub sandbox: Option<SandboxView>,
    /// Every known instance, newest first.
    pub containers: Vec<ContainerView>,
    /// Probe results of the running instances.
    pub probes: ProbeView,
}

impl PodView {
    /// The newest instance of `name`.
    pub fn latest(&self, name: &str) -> Option<&ContainerView> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The newest instance of `name` in the current sandbox (init progress is keyed on it).
    pub fn latest_in_sandbox(&self, name: &str) -> Option<&ContainerView> {
        let sb = self.sandbox.as_ref()?;
        self.containers
            .iter()
            .find(|c| c.name == name && c.sandbox_id == sb.id)
    }

    /// The newest exited instance of `name`.
    pub fn latest_exited(&self, name: &str) -> Option<&ContainerView> {
        self.containers
            .iter()
            .find(|c| c.name == name && c.state == RunState::Exited)
    }

    /// Instances still running or being created.
    pub fn live(&self) -> impl Iterator<Item = &ContainerView> {
        self.containers.iter().filter(|c| c.state != RunState::Exited)
    }

    /// The next restart count for `name`.
    pub fn next_attempt(&self, name: &str) -> u32 {
        self.containers
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.attempt + 1)
            .max()
            .unwrap_or(0)
    }
}
