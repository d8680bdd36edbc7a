//! Recovery after a supervisor restart: a worker loads what exists on disk for its pod (sandbox record,
//! container instances and their exit records), re-attaches to live shims and the pause process through
//! pidfds, restarts the probes of running instances, and records instances whose shim is gone as
//! `ContainerStatusUnknown` after killing what may be left of them. It never starts anything.
//!
//! Whether a shim runs is proven by its liveness lock (`sys::lock`), not by records the dead supervisor may
//! not have written: an instance whose lock is held is adopted even when no pid was recorded for it, and
//! only an instance whose lock is free and that never started is forgotten (its attempt is then reused).
//! It also prepares the pod's volumes again for an adopted sandbox (preparing is idempotent).

use std::time::Duration;

use k8s_openapi::api::core::v1::Container;

use super::{Instance, Msg, Worker, UNKNOWN_EXIT};
use crate::pod::events::Event;
use crate::runtime::container;
use crate::runtime::record::SHIM_LOCK;
use crate::runtime::sandbox;
use crate::volume::{self, PodVolumes};

/// Why a pod's volumes could not be prepared. The message is the `FailedMount` event's: the cause's own,
/// as the user has always seen it.
#[derive(Debug, thiserror::Error)]
enum PrepareVolumesError {
    /// The pod directory could not be created.
    #[error("{error}")]
    CreatePodDir {
        /// The pod directory.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A volume could not be set up.
    #[error("{0}")]
    Prepare(volume::Error),
    /// The blocking task preparing them failed.
    #[error("{0}")]
    Task(tokio::task::JoinError),
}

/// How long recovery waits for a live shim to record its own identity (its first action).
const SHIM_IDENTITY_WAIT: Duration = Duration::from_secs(5);

impl Worker {
    /// Loads what exists on disk for this pod and re-attaches to live shims and the pause process.
    pub(super) async fn recover(&mut self) {
        let cfg = self.ctx.runtime.clone();
        let pointer = sandbox::pointer(&cfg, &self.uid);
        let record = pointer.as_ref().and_then(|p| sandbox::load(&cfg, &p.id));
        self.sandbox_adopted(pointer, record);
        let names: Vec<String> = self.all_containers().map(|c| c.name.clone()).collect();
        for name in names {
            for o in container::observe(&cfg, &self.uid, &name) {
                if let Some(inst) = self.adopt(o).await {
                    self.instances.push(inst);
                }
            }
        }
        if self.sandbox.record.is_some() || !self.instances.is_empty() {
            tracing::info!(pod = %self.pod.key(), sandbox_ready = self.sandbox.ready, "recovered pod state");
        }
        let running: Vec<(Container, Instance)> = self
            .all_containers()
            .filter_map(|c| {
                let inst = self.instances.latest(&c.name)?;
                inst.running().then(|| (c.clone(), inst.clone()))
            })
            .collect();
        for (c, inst) in running {
            let known = self.reported_probe_state(&inst.record.id);
            self.start_probes(&c, &inst, known);
        }
    }

    /// One instance found on disk: watched when its shim lives, recorded as `ContainerStatusUnknown` when
    /// its shim died after the start, forgotten (`None`) when nothing ever ran.
    async fn adopt(&self, o: container::Observed) -> Option<Instance> {
        let cfg = &self.ctx.runtime;
        let shim_alive = o.shim_alive;
        let mut inst = Instance {
            record: o.instance,
            started: o.started,
            exited: o.exited,
            shim: o.shim,
        };
        if inst.exited.is_none() && inst.shim.is_none() && shim_alive {
            // The previous supervisor died between spawning the shim and recording it.
            inst.shim = self.await_shim_identity(&inst).await;
            tracing::info!(
                pod = %self.pod.key(),
                container = %inst.record.name,
                shim = ?inst.shim,
                "adopted a shim its supervisor died before recording"
            );
            if inst.shim.is_none() {
                self.watch_lock(&inst);
                return Some(inst);
            }
        }
        match (&inst.exited, &inst.started, &inst.shim) {
            (Some(_), _, _) => {}
            (None, _, Some(_)) => self.watch_instance(&inst),
            (None, Some(_), None) => {
                // Its shim died: the container cannot be proven to be the one we started.
                self.abandon(&mut inst, UNKNOWN_EXIT).await;
            }
            (None, None, None) => {
                // Creation was interrupted before anything ran: forget it.
                let dir = cfg.instance_dir(&self.uid, &inst.record.name, inst.record.attempt);
                let _ = container::remove_instance(cfg, &inst.record.id, &dir).await;
                return None;
            }
        }
        Some(inst)
    }

    /// Polls for the identity a live shim writes first thing; `None` if it does not appear in time.
    async fn await_shim_identity(&self, inst: &Instance) -> Option<crate::runtime::record::ProcessId> {
        let cfg = &self.ctx.runtime;
        let dir = cfg.instance_dir(&self.uid, &inst.record.name, inst.record.attempt);
        let deadline = tokio::time::Instant::now() + SHIM_IDENTITY_WAIT;
        loop {
            if let Some(id) = container::shim_identity(cfg, &inst.record.id, &dir) {
                return Some(id);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Watches a shim through its liveness lock alone: the exit message comes once the lock is free.
    fn watch_lock(&self, inst: &Instance) {
        let cfg = &self.ctx.runtime;
        let lock = cfg
            .instance_dir(&self.uid, &inst.record.name, inst.record.attempt)
            .join(SHIM_LOCK);
        let tx = self.tx.clone();
        let id = inst.record.id.clone();
        tokio::spawn(async move {
            let _ = tokio::task::spawn_blocking(move || crate::sys::lock::wait_released(&lock)).await;
            let _ = tx.send(Msg::Exited { id });
        });
    }

    /// The pod's prepared volumes, preparing them (idempotently) when this worker has none: after a
    /// restart that adopted a running sandbox, or for a new sandbox. `None` (with a `FailedMount` event and
    /// a retry) when that fails.
    pub(super) async fn ensure_volumes(&mut self) -> Option<PodVolumes> {
        if self.volumes.is_none() {
            let cfg = self.ctx.runtime.clone();
            let pod_dir = cfg.pod_dir(&self.uid);
            let spec = self.pod.spec.pod.clone();
            let protected = [cfg.state_dir.clone(), cfg.run_dir.clone()];
            let prepared = tokio::task::spawn_blocking(move || {
                crate::sys::fs::create_dir_all_mode(&pod_dir, 0o700).map_err(|error| {
                    PrepareVolumesError::CreatePodDir {
                        path: pod_dir.clone(),
                        error,
                    }
                })?;
                volume::prepare(&pod_dir, &spec, &protected).map_err(PrepareVolumesError::Prepare)
            })
            .await
            .unwrap_or_else(|e| Err(PrepareVolumesError::Task(e)));
            match prepared {
                Ok(v) => self.volumes = Some(v),
                Err(e) => {
                    self.record(Event::warning("FailedMount", e.to_string()));
                    self.retry_later();
                }
            }
        }
        self.volumes.clone()
    }

    /// What the last reported status said of instance `id`: (started, ready).
    fn reported_probe_state(&self, id: &str) -> (bool, bool) {
        let container_id = format!("peapod://{id}");
        let Some(status) = self.previous.as_ref() else {
            return (false, false);
        };
        status
            .pod
            .container_statuses
            .iter()
            .flatten()
            .chain(status.pod.init_container_statuses.iter().flatten())
            .find(|s| s.container_id.as_deref() == Some(container_id.as_str()))
            .map(|s| (s.started == Some(true), s.ready))
            .unwrap_or((false, false))
    }
}
