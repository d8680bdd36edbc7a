//! Recovery after a supervisor restart: a worker loads what exists on disk for its pod (sandbox record,
//! container instances and their exit records), re-attaches to live shims and the pause process through
//! pidfds, restarts the probes of running instances, and records instances whose shim is gone as
//! `ContainerStatusUnknown` after killing what may be left of them. It never starts anything.

use super::worker::{Instance, Worker};
use crate::runtime::container;
use crate::runtime::sandbox;

impl Worker {
    /// Loads what exists on disk for this pod and re-attaches to live shims and the pause process.
    pub(super) async fn recover(&mut self) {
        let ctx = self.ctx.clone();
        let cfg = &ctx.runtime;
        self.sandbox_pointer = sandbox::pointer(cfg, &self.uid);
        if let Some(ptr) = &self.sandbox_pointer {
            if let Some(record) = sandbox::load(cfg, &ptr.id) {
                self.sandbox_ready = sandbox::is_ready(&record);
                if self.sandbox_ready {
                    self.watch_sandbox(&record);
                }
                self.sandbox = Some(record);
            }
        }
        let names: Vec<String> = self.all_containers().map(|c| c.name.clone()).collect();
        for name in names {
            let mut list = Vec::new();
            for o in container::observe(cfg, &self.uid, &name) {
                let mut inst = Instance {
                    record: o.instance,
                    started: o.started,
                    exited: o.exited,
                    shim: o.shim,
                };
                match (&inst.exited, &inst.started, &inst.shim) {
                    (Some(_), _, _) => {}
                    (None, Some(_), Some(_)) | (None, None, Some(_)) => self.watch_instance(&inst),
                    (None, Some(_), None) => {
                        // Its shim died: the container cannot be proven to be the one we started.
                        self.abandon(
                            &mut inst,
                            "The container could not be located when the pod was terminated",
                        )
                        .await;
                    }
                    (None, None, None) => {
                        // Creation was interrupted before anything ran: forget it.
                        let dir = cfg.instance_dir(&self.uid, &name, inst.record.attempt);
                        let _ = container::remove_instance(cfg, &inst.record.id, &dir).await;
                        continue;
                    }
                }
                list.push(inst);
            }
            if !list.is_empty() {
                self.instances.insert(name, list);
            }
        }
        if self.sandbox.is_some() || !self.instances.is_empty() {
            tracing::info!(pod = %self.pod.key(), sandbox_ready = self.sandbox_ready, "recovered pod state");
        }
        let running: Vec<(k8s_openapi::api::core::v1::Container, Instance)> = self
            .all_containers()
            .filter_map(|c| {
                let inst = self.instances.get(&c.name)?.last()?;
                (inst.exited.is_none() && inst.started.is_some() && inst.shim.is_some())
                    .then(|| (c.clone(), inst.clone()))
            })
            .collect();
        for (c, inst) in running {
            let known = self.reported_probe_state(&inst.record.id);
            self.start_probes(&c, &inst, known);
        }
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

    /// Kills what may be left of an instance whose shim is gone and records it as `ContainerStatusUnknown`.
    pub(super) async fn abandon(&self, inst: &mut Instance, message: &str) {
        let cfg = &self.ctx.runtime;
        container::kill(cfg, &inst.record.id, nix::sys::signal::Signal::SIGKILL, true).await;
        let dir = cfg.instance_dir(&self.uid, &inst.record.name, inst.record.attempt);
        let _ = tokio::process::Command::new(&cfg.oci_runtime)
            .arg("--root")
            .arg(cfg.runtime_root())
            .args(["delete", "--force", &inst.record.id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
        let _ = crate::sys::mount::unmount(&dir.join("rootfs"));
        inst.exited =
            container::record_unknown_exit(cfg, &self.uid, &inst.record.name, inst.record.attempt, message);
        inst.shim = None;
    }
}
