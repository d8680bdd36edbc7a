//! What a pod leaves on the node, removed: instances older than state and lastState after each exit,
//! what is left of an instance whose shim is gone (recorded as `ContainerStatusUnknown`), and everything
//! once the pod is terminated (instances, volumes, cgroups, the pod directory and its logs).

use super::{Instance, Worker};
use crate::runtime::container;
use crate::volume;

impl Worker {
    /// Keeps the two newest instances of each container (state and lastState) and removes the rest.
    pub(super) async fn gc_instances(&mut self) {
        let cfg = self.ctx.runtime.clone();
        let ns = self.pod.namespace_or_default().to_string();
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        for old in self.instances.take_excess() {
            let cname = &old.record.name;
            let dir = cfg.instance_dir(&self.uid, cname, old.record.attempt);
            let _ = container::remove_instance(&cfg, &old.record.id, &dir).await;
            let log_dir = cfg.container_log_dir(&ns, &name, &self.uid, cname);
            crate::runtime::log::remove_instance_logs(&log_dir, old.record.attempt);
        }
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

    /// Removes everything the pod left on the node once it is terminated: instances, volumes, cgroups,
    /// the pod directory and its logs.
    pub(super) async fn cleanup(&mut self) {
        let cfg = self.ctx.runtime.clone();
        for inst in self.instances.all() {
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
