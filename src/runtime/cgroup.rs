//! The cgroup side of the runtime that the OCI runtime does not handle: where a container's memory events
//! are read from (OOM detection), and removing a pod's cgroups once it is gone.
//!
//! Both cgroup v1 (every hierarchy mounted separately) and v2 (one unified hierarchy) are supported; the
//! layout is read from a mountinfo text, so tests can describe a v2 host on a v1 machine.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
        let result = fs::create_dir_all(&dir).and_then(|()| fs::write(dir.join("cgroup.procs"), &pid));
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
pub fn enter(path: &str) -> io::Result<()> {
    crate::sys::process::join_host_cgroup_namespace("/proc")?;
    enter_in(&hierarchies(&fs::read_to_string("/proc/self/mountinfo")?), path)
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
}
