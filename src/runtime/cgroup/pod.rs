//! Pod cgroups: `<parent>[/burstable|/besteffort]/pod<uid>`, created and configured before the sandbox's
//! first process enters them (the kubelet's pod container manager), and removed with the pod once whatever
//! is still in them has been killed.
//!
//! cgroup v1 writes `cpu.shares`, `cpu.cfs_quota_us`, `memory.limit_in_bytes` and `pids.max` in their own
//! hierarchies; v2 enables the controllers down the path (`cgroup.subtree_control`) and writes `cpu.weight`,
//! `cpu.max`, `memory.max` and `pids.max`. A controller mounted as v1 on a hybrid host is never written
//! through the unified hierarchy.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{collect_dirs, create_dirs, hierarchies, remove_in, resources, Hierarchy, PodResources};
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::resources::QosClass;

/// The controllers peapod configures.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// A pod cgroup to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCgroup {
    /// The pod's cgroup (`RuntimeConfig::pod_cgroup`).
    pub path: String,
    /// Its QoS class.
    pub qos: QosClass,
    /// The QoS cgroup it lives in (`None` for Guaranteed pods).
    pub qos_parent: Option<String>,
    /// Its settings.
    pub resources: PodResources,
}

impl PodCgroup {
    /// The pod cgroup of `uid` for `spec`, with the node's pids limit.
    pub fn new(cfg: &RuntimeConfig, uid: &str, spec: &k8s_openapi::api::core::v1::PodSpec) -> Self {
        let qos = QosClass::of(spec);
        PodCgroup {
            path: cfg.pod_cgroup(uid, qos),
            qos,
            qos_parent: qos.cgroup_dir().map(|d| cfg.qos_cgroup(d)),
            resources: resources::pod_resources(spec, cfg.pod_pids_limit),
        }
    }
}

/// Where each controller is configured: a v1 hierarchy of its own, or the unified one.
struct Layout<'a> {
    hs: &'a [Hierarchy],
    unified: Option<&'a Hierarchy>,
    v2: Vec<String>,
}

impl<'a> Layout<'a> {
    fn new(hs: &'a [Hierarchy]) -> Self {
        let unified = hs.iter().find(|h| h.unified);
        let available = unified
            .and_then(|h| fs::read_to_string(h.mount.join("cgroup.controllers")).ok())
            .unwrap_or_default();
        let v2 = available
            .split_whitespace()
            .filter(|c| CONTROLLERS.contains(c) && v1(hs, c).is_none())
            .map(String::from)
            .collect();
        Layout { hs, unified, v2 }
    }

    /// The directory of cgroup `rel` where `controller`'s files are, if the host has the controller.
    fn dir(&self, controller: &str, rel: &str) -> Option<(std::path::PathBuf, bool)> {
        let rel = rel.trim_start_matches('/');
        if let Some(h) = v1(self.hs, controller) {
            return Some((h.mount.join(rel), false));
        }
        let h = self.unified.filter(|_| self.v2.iter().any(|c| c == controller))?;
        Some((h.mount.join(rel), true))
    }
}

fn v1<'a>(hs: &'a [Hierarchy], controller: &str) -> Option<&'a Hierarchy> {
    hs.iter()
        .find(|h| !h.unified && h.controllers.iter().any(|c| c == controller))
}

/// Creates the pod cgroup in every hierarchy of `hs` and writes its settings (and BestEffort's minimum cpu
/// weight on its QoS cgroup). Idempotent.
pub fn configure_pod_in(hs: &[Hierarchy], pod: &PodCgroup) -> io::Result<()> {
    let layout = Layout::new(hs);
    for h in hs {
        create_dirs(h, pod.path.trim_start_matches('/'))
            .map_err(|e| context("create", &h.mount.join(pod.path.trim_start_matches('/')), e))?;
    }
    if let Some(h) = layout.unified.filter(|_| !layout.v2.is_empty()) {
        enable_controllers(h, &pod.path, &layout.v2)?;
    }
    if let (QosClass::BestEffort, Some(parent)) = (pod.qos, &pod.qos_parent) {
        write_cpu(&layout, parent, resources::MIN_SHARES, None)?;
    }
    let r = &pod.resources;
    write_cpu(&layout, &pod.path, r.cpu_shares, r.cpu_quota)?;
    if let Some((dir, v2)) = layout.dir("memory", &pod.path) {
        let (file, value) = match (v2, r.memory_limit) {
            (false, limit) => ("memory.limit_in_bytes", limit.unwrap_or(-1).to_string()),
            (true, Some(limit)) => ("memory.max", limit.to_string()),
            (true, None) => ("memory.max", "max".to_string()),
        };
        write(&dir, file, &value)?;
    }
    if let Some((dir, _)) = layout.dir("pids", &pod.path) {
        let value = r.pids_limit.map_or("max".to_string(), |n| n.to_string());
        write(&dir, "pids.max", &value)?;
    }
    Ok(())
}

/// [`configure_pod_in`] for this host.
pub fn configure_pod(pod: &PodCgroup) -> io::Result<()> {
    configure_pod_in(&hierarchies(&fs::read_to_string("/proc/self/mountinfo")?), pod)
}

fn write_cpu(layout: &Layout<'_>, rel: &str, shares: u64, quota: Option<i64>) -> io::Result<()> {
    let Some((dir, v2)) = layout.dir("cpu", rel) else {
        return Ok(());
    };
    let period = resources::CPU_PERIOD;
    if v2 {
        write(
            &dir,
            "cpu.weight",
            &resources::shares_to_weight(shares).to_string(),
        )?;
        let max = quota.map_or("max".to_string(), |q| q.to_string());
        write(&dir, "cpu.max", &format!("{max} {period}"))
    } else {
        write(&dir, "cpu.shares", &shares.to_string())?;
        write(&dir, "cpu.cfs_period_us", &period.to_string())?;
        write(&dir, "cpu.cfs_quota_us", &quota.unwrap_or(-1).to_string())
    }
}

/// Enables `controllers` in `cgroup.subtree_control` from the root of the unified hierarchy down to the pod
/// cgroup itself, so the pod and its containers can be limited.
fn enable_controllers(h: &Hierarchy, rel: &str, controllers: &[String]) -> io::Result<()> {
    let value = controllers
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut dir = h.mount.clone();
    write(&dir, "cgroup.subtree_control", &value)?;
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        dir.push(part);
        write(&dir, "cgroup.subtree_control", &value)?;
    }
    Ok(())
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(|e| context(&format!("write {value:?} to"), &path, e))
}

fn context(action: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{action} {}: {e}", path.display()))
}

/// Removes the pod cgroup wherever it is (`candidates`), then the QoS cgroups in `qos_dirs` that no other pod
/// uses any more (the QoS cgroups are recreated with the next pod that needs them).
pub fn remove_pod_in(hs: &[Hierarchy], candidates: &[String], qos_dirs: &[String]) -> io::Result<()> {
    let mut errors = Vec::new();
    for path in candidates {
        if let Err(e) = remove_in(hs, path) {
            errors.push(e.to_string());
        }
    }
    for h in hs {
        for dir in qos_dirs {
            // Busy (another pod's cgroup below) or already gone: both fine.
            let _ = fs::remove_dir(h.mount.join(dir.trim_start_matches('/')));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(errors.join("; ")))
    }
}

/// [`remove_pod_in`] for this host and the pod `uid`, once every process still in the pod's cgroup is killed
/// and gone, as the kubelet's pod container manager kills what is left before it destroys a pod cgroup.
/// Something may be left even after the pod was stopped: a helper a killed supervisor left behind, e.g. a
/// shim that had recorded its container's exit (so the next supervisor had no shim to wait for) and had not
/// exited yet. It would keep the cgroup busy, then exit and leave it behind, empty.
pub fn remove_pod(cfg: &RuntimeConfig, uid: &str) -> io::Result<()> {
    let hs = hierarchies(&fs::read_to_string("/proc/self/mountinfo")?);
    let candidates = cfg.pod_cgroup_candidates(uid);
    kill_all_in(&hs, &candidates, KILL_DEADLINE);
    let qos_dirs = [cfg.qos_cgroup("burstable"), cfg.qos_cgroup("besteffort")];
    remove_pod_in(&hs, &candidates, &qos_dirs)
}

/// How long what is left in a pod's cgroup may take to die before its removal is tried anyway.
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// SIGKILLs every process in the cgroups `paths` (and below) of every hierarchy until none is left or
/// `deadline` has passed. Each process is pinned by a pidfd and signalled only if its pid is still listed in
/// the same cgroup after that, so a pid reused meanwhile by a process elsewhere is never signalled.
fn kill_all_in(hs: &[Hierarchy], paths: &[String], deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let procs = procs_in(hs, paths);
        if procs.is_empty() || Instant::now() >= until {
            return;
        }
        for (pid, procs_file) in procs {
            let Ok(pidfd) = crate::sys::process::pidfd_open(pid) else {
                continue;
            };
            if listed(&procs_file).contains(&pid) {
                let _ = crate::sys::process::pidfd_send_signal(&pidfd, Signal::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every (pid, `cgroup.procs` file listing it) in the cgroups `paths` and below, in every hierarchy.
fn procs_in(hs: &[Hierarchy], paths: &[String]) -> Vec<(i32, PathBuf)> {
    let mut out = Vec::new();
    for h in hs {
        for path in paths {
            let mut dirs = Vec::new();
            let _ = collect_dirs(&h.mount.join(path.trim_start_matches('/')), &mut dirs);
            for dir in dirs {
                let file = dir.join("cgroup.procs");
                out.extend(listed(&file).into_iter().map(|pid| (pid, file.clone())));
            }
        }
    }
    out
}

/// The pids a `cgroup.procs` file lists (none when it cannot be read).
fn listed(procs_file: &Path) -> Vec<i32> {
    fs::read_to_string(procs_file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}
