//! The seam around the host: every effect the sandbox and container builders have on the node (directories,
//! files, mounts, the pod cgroup, spawning the `pause` and `shim` helpers) and every host file they read
//! goes through [`Host`], as youki's `Syscall` trait does for its container setup.
//!
//! [`Linux`] is the real host (the current behaviour, calling into `sys`, `process`, `cgroup`); the
//! recording fake in `host::fake` lets unit tests run the builders without root and assert what would be
//! mounted where and which files would be written. The host files read (`/etc/hosts`, `/proc/meminfo`) are
//! [`HostPaths`], so nothing here hard-codes them. It must not decide anything: what to mount or write is
//! computed by the pure parts of `sandbox` and `container`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::process::Child;

use super::cgroup::{self, PodCgroup};
use super::process;
use super::record::ProcessId;
use crate::sys;

#[cfg(test)]
pub mod fake;

/// The host files the builders read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// The node's `/etc/hosts` (copied for `hostNetwork` pods).
    pub hosts: PathBuf,
    /// `/proc/meminfo` (the node's memory capacity, for the Burstable OOM score).
    pub meminfo: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            hosts: PathBuf::from("/etc/hosts"),
            meminfo: PathBuf::from("/proc/meminfo"),
        }
    }
}

/// A mount the builders make on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMount {
    /// A tmpfs at `target` with `options` (`nosuid,nodev`, and `noexec` when asked).
    Tmpfs {
        /// Mount point.
        target: PathBuf,
        /// tmpfs options (`size=...,mode=...`).
        options: String,
        /// Mounted `noexec`.
        noexec: bool,
    },
    /// The container's overlay root filesystem.
    Overlay {
        /// Lower directories, top first.
        lower: Vec<PathBuf>,
        /// Upper directory.
        upper: PathBuf,
        /// Work directory.
        work: PathBuf,
        /// Mount point.
        target: PathBuf,
    },
}

/// A helper process to start: this binary re-executed with `args`, its stderr appended to `log`.
pub struct Helper<'a> {
    /// This binary.
    pub exe: &'a Path,
    /// Its arguments (`pause ...`, `shim <dir>`).
    pub args: Vec<String>,
    /// Its stderr log.
    pub log: &'a Path,
    /// A liveness lock the helper inherits; the caller's copy is closed right after the spawn.
    pub lock: Option<File>,
    /// How long its status line may take.
    pub deadline: Duration,
}

/// A helper that was started, with its status line.
#[derive(Debug)]
pub struct Spawned {
    /// Its identity.
    pub id: ProcessId,
    /// The first line it printed, if any before the deadline.
    pub line: Option<String>,
    /// The child handle, to be reaped (`None` for a fake helper).
    pub child: Option<Child>,
}

/// Called once a helper exists and before its status line is awaited (to record it on disk).
pub type OnSpawn<'a> = &'a (dyn Fn(&ProcessId) + Send + Sync);

/// The host effects and host reads of the sandbox and container builders.
pub trait Host: Send + Sync {
    /// The host files this host reads.
    fn paths(&self) -> &HostPaths;
    /// Creates `dir` and missing parents, each new one with `mode`.
    fn create_dir(&self, dir: &Path, mode: u32) -> io::Result<()>;
    /// Sets the permission bits of `path`.
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Writes `data` to `path` atomically with `mode`.
    fn write_file(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()>;
    /// Reads a host file as text.
    fn read_file(&self, path: &Path) -> io::Result<String>;
    /// The node's hostname.
    fn hostname(&self) -> Option<String>;
    /// Makes `mount`.
    fn mount(&self, mount: &HostMount) -> io::Result<()>;
    /// Bind-mounts `sub` inside the volume `root` (resolved inside it, created if missing) onto `staging`.
    fn stage_sub_path(&self, root: &Path, sub: &str, staging: &Path) -> io::Result<()>;
    /// Mounts the termination-message tmpfs of the instance in `dir`; returns the file's host path.
    fn prepare_termination(&self, dir: &Path) -> io::Result<PathBuf>;
    /// Unmounts everything under `dir`.
    fn unmount_all_under(&self, dir: &Path) -> io::Result<()>;
    /// Removes `dir` (renamed away first, never crossing a mount).
    fn remove_dir(&self, dir: &Path) -> io::Result<()>;
    /// Creates the pod cgroup and writes its limits.
    fn configure_cgroup(&self, cgroup: &PodCgroup) -> io::Result<()>;
    /// The identity of live process `pid`.
    fn identify(&self, pid: i32) -> Option<ProcessId>;
    /// Starts `helper`, calls `on_spawn` with its identity, then waits for its status line.
    fn spawn<'a>(&'a self, helper: Helper<'a>, on_spawn: OnSpawn<'a>) -> BoxFuture<'a, io::Result<Spawned>>;
}

/// Writes `value` as JSON (pretty, mode 0600: records may hold env values), as `sys::fs::write_json_atomic`.
pub fn write_json<T: serde::Serialize>(host: &dyn Host, path: &Path, value: &T) -> io::Result<()> {
    let data = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    host.write_file(path, &data, 0o600)
}

/// The real host.
#[derive(Debug, Default)]
pub struct Linux {
    paths: HostPaths,
}

impl Linux {
    /// The real host reading the given host files.
    pub fn new(paths: HostPaths) -> Self {
        Linux { paths }
    }
}

impl Host for Linux {
    fn paths(&self) -> &HostPaths {
        &self.paths
    }

    fn create_dir(&self, dir: &Path, mode: u32) -> io::Result<()> {
        sys::fs::create_dir_all_mode(dir, mode)
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }

    fn write_file(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
        sys::fs::write_atomic(path, data, mode)
    }

    fn read_file(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn hostname(&self) -> Option<String> {
        nix::unistd::gethostname().ok()?.into_string().ok()
    }

    fn mount(&self, mount: &HostMount) -> io::Result<()> {
        match mount {
            HostMount::Tmpfs {
                target,
                options,
                noexec,
            } => sys::mount::tmpfs(target, options, *noexec),
            HostMount::Overlay {
                lower,
                upper,
                work,
                target,
            } => {
                let lower: Vec<&Path> = lower.iter().map(PathBuf::as_path).collect();
                sys::mount::overlay(&lower, upper, work, target)
            }
        }
    }

    fn stage_sub_path(&self, root: &Path, sub: &str, staging: &Path) -> io::Result<()> {
        crate::volume::stage_sub_path(root, sub, staging)
    }

    fn prepare_termination(&self, dir: &Path) -> io::Result<PathBuf> {
        super::termination::prepare(dir)
    }

    fn unmount_all_under(&self, dir: &Path) -> io::Result<()> {
        sys::mount::unmount_all_under(dir)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        sys::fs::remove_dir_atomic(dir)
    }

    fn configure_cgroup(&self, cgroup: &PodCgroup) -> io::Result<()> {
        cgroup::configure_pod(cgroup)
    }

    fn identify(&self, pid: i32) -> Option<ProcessId> {
        process::identify(pid)
    }

    fn spawn<'a>(&'a self, helper: Helper<'a>, on_spawn: OnSpawn<'a>) -> BoxFuture<'a, io::Result<Spawned>> {
        Box::pin(async move {
            let pending = process::spawn(helper.exe, &helper.args, helper.log, helper.lock.as_ref())?;
            // The helper's copy of the lock is now the only one that keeps it.
            drop(helper.lock);
            on_spawn(&pending.id);
            let spawned = pending.first_line(helper.deadline).await;
            Ok(Spawned {
                id: spawned.id,
                line: spawned.line,
                child: Some(spawned.child),
            })
        })
    }
}
