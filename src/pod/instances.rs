//! The container instances a pod worker tracks, by container name, oldest first: what each was made from,
//! whether it started and exited, and its shim. The worker changes the table through these methods only;
//! [`Instances::view`] turns it into what the plan and status read.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Container;

use super::view::{ContainerView, RunState};
use crate::runtime::record::{ExitRecord, InstanceRecord, ProcessId, StartedRecord};

/// One container instance as the worker tracks it.
#[derive(Debug, Clone)]
pub(super) struct Instance {
    pub record: InstanceRecord,
    pub started: Option<StartedRecord>,
    pub exited: Option<ExitRecord>,
    pub shim: Option<ProcessId>,
}

impl Instance {
    /// Still running (or being started) under a known shim.
    pub fn live(&self) -> bool {
        self.exited.is_none() && self.shim.is_some()
    }

    /// Started, not exited, its shim known: its probes run.
    pub fn running(&self) -> bool {
        self.exited.is_none() && self.started.is_some() && self.shim.is_some()
    }
}

/// Every instance of a pod's containers.
#[derive(Debug, Default)]
pub(super) struct Instances {
    by_name: HashMap<String, Vec<Instance>>,
}

impl Instances {
    /// The instance with OCI runtime id `id`.
    pub fn find(&self, id: &str) -> Option<&Instance> {
        self.all().find(|i| i.record.id == id)
    }

    /// The newest instance of container `name`.
    pub fn latest(&self, name: &str) -> Option<&Instance> {
        self.by_name.get(name).and_then(|l| l.last())
    }

    /// How many instances of `name` are kept.
    pub fn count(&self, name: &str) -> usize {
        self.by_name.get(name).map_or(0, Vec::len)
    }

    /// The restart count of the next instance of `name`.
    pub fn next_attempt(&self, name: &str) -> u32 {
        self.by_name
            .get(name)
            .and_then(|l| l.iter().map(|i| i.record.attempt + 1).max())
            .unwrap_or(0)
    }

    /// Every instance.
    pub fn all(&self) -> impl Iterator<Item = &Instance> {
        self.by_name.values().flatten()
    }

    /// Every instance, to refresh what a previous supervisor left on disk.
    pub fn all_mut(&mut self) -> impl Iterator<Item = &mut Instance> {
        self.by_name.values_mut().flatten()
    }

    /// Whether no instance is known.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Adds a new instance of its container.
    pub fn push(&mut self, inst: Instance) {
        self.by_name
            .entry(inst.record.name.clone())
            .or_default()
            .push(inst);
    }

    /// Replaces the instance with the same id.
    pub fn replace(&mut self, inst: Instance) {
        let slot = self
            .by_name
            .get_mut(&inst.record.name)
            .and_then(|l| l.iter_mut().find(|i| i.record.id == inst.record.id));
        if let Some(slot) = slot {
            *slot = inst;
        }
    }

    /// Takes out the instances beyond the two newest of each container (state and lastState), oldest
    /// first, as long as they have exited.
    pub fn take_excess(&mut self) -> Vec<Instance> {
        let mut out = Vec::new();
        for list in self.by_name.values_mut() {
            while list.len() > 2 && list.first().is_some_and(|i| i.exited.is_some()) {
                out.push(list.remove(0));
            }
        }
        out
    }

    /// Every instance as the plan and status see it, newest first.
    pub fn view(&self) -> Vec<ContainerView> {
        let mut containers: Vec<ContainerView> = self.all().map(instance_view).collect();
        containers.sort_by(|a, b| b.attempt.cmp(&a.attempt).then(b.created_at.cmp(&a.created_at)));
        containers
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
pub fn spec_hash(c: &Container) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(c).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}
