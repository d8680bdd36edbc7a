//! Proving a node left nothing on the host (processes, mounts, cgroups, sandboxes), and removing whatever a
//! failed test left behind.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{peapod_bin, reap_orphans, walkdir, Node};

impl Node {
    /// The pod's cgroup directories on this host (all hierarchies).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        peapod::runtime::cgroup::hierarchies(&info)
            .into_iter()
            .map(|h| h.mount.join(self.cgroup_parent.trim_start_matches('/')))
            .filter(|p| p.exists())
            .collect()
    }

    /// Every process in this node's cgroups (containers and the helpers that moved there).
    pub fn pids_in_cgroups(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in self.cgroup_dirs() {
            for entry in walkdir(&dir) {
                if let Ok(text) = fs::read_to_string(entry.join("cgroup.procs")) {
                    pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
                }
            }
        }
        pids.sort();
        pids.dedup();
        pids
    }

    /// Every process whose command line names this node's directory (supervisor, pause, shims).
    pub fn helper_pids(&self) -> Vec<i32> {
        let marker = self.dir.path().to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                pids.push(pid);
            }
        }
        pids
    }

    fn mounts(&self) -> Vec<String> {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let marker = self.dir.path().to_string_lossy().into_owned();
        peapod::sys::mount::mountinfo_targets(&info)
            .filter(|t| t.starts_with(&marker))
            .collect()
    }

    /// Asserts that nothing of this node is left on the host: processes, mounts, cgroups, sandboxes.
    pub fn assert_clean(&self) {
        reap_orphans();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            reap_orphans();
            let left = self.helper_pids();
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let cmdlines: Vec<String> = left
                    .iter()
                    .map(|pid| {
                        let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                        format!("{pid}: {}", String::from_utf8_lossy(&raw).replace('\0', " "))
                    })
                    .collect();
                panic!("helpers left after 15s: {cmdlines:#?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            self.pids_in_cgroups().is_empty(),
            "container processes left: {:?}",
            self.pids_in_cgroups()
        );
        assert!(self.mounts().is_empty(), "mounts left: {:?}", self.mounts());
        let sandboxes: Vec<_> = fs::read_dir(self.run.join("sandboxes"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(sandboxes.is_empty(), "sandbox dirs left: {sandboxes:?}");
        let pods: Vec<_> = fs::read_dir(self.state.join("pods"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(pods.is_empty(), "pod dirs left: {pods:?}");
        let leftover: Vec<PathBuf> = self
            .cgroup_dirs()
            .into_iter()
            .flat_map(|d| walkdir(&d).into_iter().skip(1))
            .collect();
        assert!(leftover.is_empty(), "pod cgroups left: {leftover:?}");
        let leases = super::cni::leases_left(self);
        assert!(leases.is_empty(), "CNI addresses left leased: {leases:?}");
    }

    /// Forcefully removes whatever a failed test left behind.
    fn force_cleanup(&mut self) {
        if let Some(mut c) = self.supervisor.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in self.pids_in_cgroups().into_iter().chain(self.helper_pids()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        // Never panic here: Drop may run while a failed test unwinds.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            reap_orphans();
            if self.pids_in_cgroups().is_empty() && self.helper_pids().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Release the CNI attachments of sandboxes the test left (their namespaces are still pinned).
        let mut cfg = peapod::runtime::layout::RuntimeConfig::new(
            self.state.clone(),
            self.run.clone(),
            PathBuf::from("runc"),
            peapod_bin(),
        );
        cfg.cni_conf_dir = self.cni_conf.clone();
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(peapod::runtime::sandbox::release_networks(&cfg, |_| false));
        }
        let runc_root = self.run.join("runc");
        if let Ok(entries) = fs::read_dir(&runc_root) {
            for e in entries.flatten() {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["delete", "--force"])
                    .arg(e.file_name())
                    .output();
            }
        }
        let _ = peapod::sys::mount::unmount_all_under(self.dir.path());
        for dir in self.cgroup_dirs() {
            let mut dirs = walkdir(&dir);
            dirs.reverse();
            for d in dirs {
                let _ = fs::remove_dir(d);
            }
        }
        reap_orphans();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.force_cleanup();
    }
}
