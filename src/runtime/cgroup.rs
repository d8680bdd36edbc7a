//! The cgroup side of the runtime that the OCI runtime does not handle: the pod cgroups (created with the
//! pod-level cpu, memory and pids settings before anything runs in them; the OCI runtime makes each
//! container's child), where a container's memory events are read from (OOM detection), moving helpers
//! into their pod, and removing a pod's cgroups once it is gone.
//!
//! Both cgroup v1 (every hierarchy mounted separately) and v2 (one unified hierarchy) are supported; the
//! layout is read from a mountinfo text, so tests can describe a v2 host on a v1 machine and point it at a
//! temporary directory. This module never decides what the settings are (`resources` does).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::resources::{self, PodResources};

mod pod;

pub use pod::{configure_pod, configure_pod_in, remove_pod, remove_pod_in, PodCgroup};

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Mount point.
    pub mount: PathBuf,
    /// `true` for cgroup2.
    pub unified: bool,
    /// v1 controllers of this hierarchy (`memory`, `cpu`, ...).
    pub controllers: Vec<String>,
}

/// Cgroup hierarchies listed in a mountinfo text.
pub fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let options = r.nth(1).unwrap_or("");
            match fstype {
                "cgroup2" => Some(Hierarchy {
                    mount: mount.into(),
                    unified: true,
                    controllers: Vec::new(),
                }),
                "cgroup" => Some(Hierarchy {
                    mount: mount.into(),
                    unified: false,
                    controllers: options
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro" | "nosuid" | "nodev" | "noexec" | "relatime"))
                        .map(String::from)
                        .collect(),
                }),
                _ => None,
            }
        })
        .collect()
}

/// The file that counts OOM kills in the cgroup `path`: v1 `memory.oom_control` when a memory hierarchy
/// exists, else v2 `memory.events` in a unified hierarchy that has the memory controller.
pub fn oom_events_in(hs: &[Hierarchy], path: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    if let Some(h) = hs
        .iter()
        .find(|h| !h.unified && h.controllers.iter().any(|c| c == "memory"))
    {
        return Some(h.mount.join(rel).join("memory.oom_control"));
    }
    let h = hs.iter().find(|h| {
        h.unified
            && fs::read_to_string(h.mount.join("cgroup.controllers"))
                .map(|c| c.contains("memory"))
                .unwrap_or(false)
    })?;
    Some(h.mount.join(rel).join("memory.events"))
}

/// [`oom_events_in`] for this host.
pub fn oom_events_path(path: &str) -> Option<PathBuf> {
    oom_events_in(
        &hierarchies(&fs::read_to_string("/proc/self/mountinfo").ok()?),
        path,
    )
}

/// Removes the cgroup `path` and every cgroup below it in each hierarchy, deepest first. A cgroup that
/// still has processes stays (rmdir fails with EBUSY) and is reported.
pub fn remove_in(hs: &[Hierarchy], path: &str) -> io::Result<()> {
    let rel = path.trim_start_matches('/');
    let mut busy = Vec::new();
    for h in hs {
        let dir = h.mount.join(rel);
        if !dir.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&dir, &mut dirs)?;
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            match fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => busy.push(format!("{}: {e}", d.display())),
            }
        }
    }
    if busy.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cgroups still in use: {}",
            busy.join(", ")
        )))
    }
}

/// [`remove_in`] for this host.
pub fn remove(path: &str) -> io::Result<()> {
    remove_in(&hierarchies(&fs::read_to_string("/proc/self/mountinfo")?), path)
}

/// Moves the calling process into the cgroup `path` of every hierarchy, creating it. Helpers (pause, shims)
/// do this at start so they live in their pod's cgroup, not in the cgroup of whoever started them: stopping an
/// agent's container kills every process of its cgroup, and workloads must outlive the agent.
pub fn enter_in(hs: &[Hierarchy], path: &str) -> io::Result<()> {
    let rel = path.trim_start_matches('/');
    let pid = std::process::id().to_string();
    let mut errors = Vec::new();
    for h in hs {
        let dir = h.mount.join(rel);
        let result = create_dirs(h, rel).and_then(|()| fs::write(dir.join("cgroup.procs"), &pid));
        if let Err(e) = result {
            errors.push(format!("{}: {e}", dir.display()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(errors.join(", ")))
    }
}

/// [`enter_in`] for this host, after joining the host's cgroup namespace if the caller has a private one.
/// The helper also takes the sandbox's OOM score adjustment (-998, containerd's pause value), so the kernel
/// kills workloads before the processes that watch them; a node that refuses it (no CAP_SYS_RESOURCE) keeps
/// the inherited value.
pub fn enter(path: &str) -> io::Result<()> {
    let _ = fs::write(
        "/proc/self/oom_score_adj",
        resources::HELPER_OOM_SCORE_ADJ.to_string(),
    );
    crate::sys::process::join_host_cgroup_namespace("/proc")?;
    enter_in(&hierarchies(&fs::read_to_string("/proc/self/mountinfo")?), path)
}

/// Creates the cgroup `rel` (and its missing parents) in one hierarchy. In a v1 cpuset hierarchy each new
/// level gets its parent's `cpuset.cpus` and `cpuset.mems`: a cpuset cgroup without them takes no process.
fn create_dirs(h: &Hierarchy, rel: &str) -> io::Result<()> {
    let cpuset = !h.unified && h.controllers.iter().any(|c| c == "cpuset");
    let mut dir = h.mount.clone();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let parent = dir.clone();
        dir.push(part);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        if cpuset {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let current = fs::read_to_string(dir.join(file)).unwrap_or_default();
                if current.trim().is_empty() {
                    let value = fs::read_to_string(parent.join(file))?;
                    fs::write(dir.join(file), value.trim())?;
                }
            }
        }
    }
    Ok(())
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    out.push(dir.to_path_buf());
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            collect_dirs(&entry.path(), out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::resources::QosClass;

    const HYBRID: &str = "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n\
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n";

    #[test]
    fn parses_hybrid_layout_and_prefers_v1_memory() {
        let hs = hierarchies(HYBRID);
        assert_eq!(hs.len(), 3);
        assert_eq!(hs[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(
            oom_events_in(&hs, "/peapod/podx/c1"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/memory/peapod/podx/c1/memory.oom_control"
            ))
        );
    }

    #[test]
    fn v2_memory_events_and_removal_in_a_fake_cgroupfs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        let info = format!("40 1 0:30 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        let hs = hierarchies(&info);
        assert_eq!(
            oom_events_in(&hs, "/peapod/p/c"),
            Some(root.join("peapod/p/c/memory.events"))
        );
        fs::create_dir_all(root.join("peapod/p/c1")).unwrap();
        fs::create_dir_all(root.join("peapod/p/c2/sub")).unwrap();
        enter_in(&[], "/ignored").unwrap();
        remove_in(&hs, "/peapod/p").unwrap();
        assert!(!root.join("peapod/p").exists());
        assert!(root.join("peapod").exists());
    }

    fn pod(path: &str, qos: QosClass, parent: Option<&str>) -> PodCgroup {
        PodCgroup {
            path: path.into(),
            qos,
            qos_parent: parent.map(String::from),
            resources: PodResources {
                cpu_shares: 512,
                cpu_quota: Some(50_000),
                memory_limit: Some(64 << 20),
                pids_limit: Some(64),
            },
        }
    }

    fn remove_files(dir: &Path) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                remove_files(&e.path());
            } else {
                fs::remove_file(e.path()).unwrap();
            }
        }
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn v1_pod_cgroup_settings_in_a_fake_cgroupfs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut info = String::new();
        for (i, c) in ["cpu", "memory", "pids", "cpuset"].iter().enumerate() {
            fs::create_dir(root.join(c)).unwrap();
            info.push_str(&format!(
                "{} 30 0:{i} / {} rw - cgroup cgroup rw,{c}\n",
                40 + i,
                root.join(c).display()
            ));
        }
        fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
        let hs = hierarchies(&info);
        let p = pod(
            "/pp/besteffort/podu",
            QosClass::BestEffort,
            Some("/pp/besteffort"),
        );
        configure_pod_in(&hs, &p).unwrap();
        let at = |h: &str, f: &str| read(&root.join(h).join("pp/besteffort/podu").join(f));
        assert_eq!(at("cpu", "cpu.shares"), "512");
        assert_eq!(at("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(at("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(at("memory", "memory.limit_in_bytes"), (64 << 20).to_string());
        assert_eq!(at("pids", "pids.max"), "64");
        assert_eq!(read(&root.join("cpu/pp/besteffort/cpu.shares")), "2");
        // Every new cpuset level got its parent's cpus and mems, or it could take no process.
        assert_eq!(read(&root.join("cpuset/pp/cpuset.cpus")), "0-1");
        assert_eq!(at("cpuset", "cpuset.mems"), "0");

        let mut open = p.clone();
        open.resources = PodResources {
            cpu_shares: 2,
            ..Default::default()
        };
        configure_pod_in(&hs, &open).unwrap();
        assert_eq!(at("cpu", "cpu.cfs_quota_us"), "-1");
        assert_eq!(at("memory", "memory.limit_in_bytes"), "-1");
        assert_eq!(at("pids", "pids.max"), "max");

        // Removal: the pod wherever it is, then the QoS cgroups nobody else uses. (A real cgroupfs has no
        // files to remove first.)
        remove_files(root);
        let candidates = ["/pp/podu".to_string(), "/pp/besteffort/podu".to_string()];
        remove_pod_in(&hs, &candidates, &["/pp/besteffort".to_string()]).unwrap();
        assert!(!root.join("cpu/pp/besteffort").exists());
        assert!(root.join("cpu/pp").exists());
    }

    #[test]
    fn v2_pod_cgroup_settings_in_a_fake_cgroupfs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        let info = format!("40 1 0:30 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        let hs = hierarchies(&info);
        configure_pod_in(&hs, &pod("/pp/podg", QosClass::Guaranteed, None)).unwrap();
        let at = |f: &str| read(&root.join("pp/podg").join(f));
        assert_eq!(at("cpu.weight"), "20");
        assert_eq!(at("cpu.max"), "50000 100000");
        assert_eq!(at("memory.max"), (64 << 20).to_string());
        assert_eq!(at("pids.max"), "64");
        for level in ["", "pp", "pp/podg"] {
            assert_eq!(
                read(&root.join(level).join("cgroup.subtree_control")),
                "+cpu +memory +pids",
                "{level}"
            );
        }
        let mut open = pod(
            "/pp/besteffort/podb",
            QosClass::BestEffort,
            Some("/pp/besteffort"),
        );
        open.resources = PodResources {
            cpu_shares: 2,
            ..Default::default()
        };
        configure_pod_in(&hs, &open).unwrap();
        assert_eq!(read(&root.join("pp/besteffort/cpu.weight")), "1");
        assert_eq!(read(&root.join("pp/besteffort/podb/cpu.max")), "max 100000");
        assert_eq!(read(&root.join("pp/besteffort/podb/memory.max")), "max");
        assert_eq!(read(&root.join("pp/besteffort/podb/pids.max")), "max");
    }

    #[test]
    fn hybrid_hosts_never_write_v1_controllers_through_the_unified_hierarchy() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("unified")).unwrap();
        fs::create_dir_all(root.join("memory")).unwrap();
        fs::write(root.join("unified/cgroup.controllers"), "").unwrap();
        let info = format!(
            "31 25 0:27 / {u} rw - cgroup2 cgroup2 rw\n33 25 0:29 / {m} rw - cgroup cgroup rw,memory\n",
            u = root.join("unified").display(),
            m = root.join("memory").display()
        );
        configure_pod_in(&hierarchies(&info), &pod("/pp/podh", QosClass::Guaranteed, None)).unwrap();
        assert!(
            root.join("unified/pp/podh").is_dir(),
            "helpers need the directory"
        );
        assert!(!root.join("unified/pp/podh/memory.max").exists());
        assert!(!root.join("unified/cgroup.subtree_control").exists());
        assert!(root.join("memory/pp/podh/memory.limit_in_bytes").exists());
    }
}
