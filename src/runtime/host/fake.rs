//! A recording [`Host`] for unit tests: it changes nothing on the machine, records every effect in order,
//! serves host files from a map, and starts no process (a spawned helper gets a made-up identity and the
//! status line the test chose). Tests then assert what the builders would have mounted and written.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::{Helper, Host, HostMount, HostPaths, OnSpawn, Spawned};
use crate::runtime::cgroup::PodCgroup;
use crate::runtime::record::ProcessId;

/// One recorded effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `create_dir`.
    CreateDir { path: PathBuf, mode: u32 },
    /// `set_mode`.
    SetMode { path: PathBuf, mode: u32 },
    /// `write_file`, the content as text.
    Write {
        path: PathBuf,
        content: String,
        mode: u32,
    },
    /// `mount`.
    Mount(HostMount),
    /// `stage_sub_path`.
    StageSubPath {
        root: PathBuf,
        sub: String,
        staging: PathBuf,
    },
    /// `prepare_termination`.
    Termination(PathBuf),
    /// `unmount_all_under`.
    UnmountAllUnder(PathBuf),
    /// `remove_dir`.
    RemoveDir(PathBuf),
    /// `configure_cgroup`, by path.
    Cgroup(String),
    /// `spawn`, by arguments.
    Spawn(Vec<String>),
}

/// The recording fake.
#[derive(Debug)]
pub struct Fake {
    paths: HostPaths,
    files: HashMap<PathBuf, String>,
    hostname: String,
    /// The status line every spawned helper prints (`None`: it prints nothing).
    pub line: Option<String>,
    calls: Mutex<Vec<Call>>,
}

impl Default for Fake {
    fn default() -> Self {
        Fake {
            paths: HostPaths {
                hosts: PathBuf::from("/fake/etc/hosts"),
                meminfo: PathBuf::from("/fake/proc/meminfo"),
            },
            files: HashMap::new(),
            hostname: "node-1".to_string(),
            line: Some("ready 4242".to_string()),
            calls: Mutex::new(Vec::new()),
        }
    }
}

impl Fake {
    /// Serves `content` as the host file `path`.
    pub fn with_file(mut self, path: impl Into<PathBuf>, content: &str) -> Self {
        self.files.insert(path.into(), content.to_string());
        self
    }

    /// Every effect so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The mounts made, in order.
    pub fn mounts(&self) -> Vec<HostMount> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Mount(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// The content last written to `path`.
    pub fn written(&self, path: &Path) -> Option<String> {
        self.calls().into_iter().rev().find_map(|c| match c {
            Call::Write { path: p, content, .. } if p == path => Some(content),
            _ => None,
        })
    }

    fn record(&self, call: Call) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }
}

impl Host for Fake {
    fn paths(&self) -> &HostPaths {
        &self.paths
    }

    fn create_dir(&self, dir: &Path, mode: u32) -> io::Result<()> {
        self.record(Call::CreateDir {
            path: dir.to_path_buf(),
            mode,
        });
        Ok(())
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.record(Call::SetMode {
            path: path.to_path_buf(),
            mode,
        });
        Ok(())
    }

    fn write_file(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
        self.record(Call::Write {
            path: path.to_path_buf(),
            content: String::from_utf8_lossy(data).into_owned(),
            mode,
        });
        Ok(())
    }

    fn read_file(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn hostname(&self) -> Option<String> {
        Some(self.hostname.clone())
    }

    fn mount(&self, mount: &HostMount) -> io::Result<()> {
        self.record(Call::Mount(mount.clone()));
        Ok(())
    }

    fn stage_sub_path(&self, root: &Path, sub: &str, staging: &Path) -> io::Result<()> {
        self.record(Call::StageSubPath {
            root: root.to_path_buf(),
            sub: sub.to_string(),
            staging: staging.to_path_buf(),
        });
        Ok(())
    }

    fn prepare_termination(&self, dir: &Path) -> io::Result<PathBuf> {
        self.record(Call::Termination(dir.to_path_buf()));
        Ok(dir.join("termination").join("termination-log"))
    }

    fn unmount_all_under(&self, dir: &Path) -> io::Result<()> {
        self.record(Call::UnmountAllUnder(dir.to_path_buf()));
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        self.record(Call::RemoveDir(dir.to_path_buf()));
        Ok(())
    }

    fn configure_cgroup(&self, cgroup: &PodCgroup) -> io::Result<()> {
        self.record(Call::Cgroup(cgroup.path.clone()));
        Ok(())
    }

    fn identify(&self, pid: i32) -> Option<ProcessId> {
        Some(ProcessId { pid, start_time: 1 })
    }

    fn spawn<'a>(&'a self, helper: Helper<'a>, on_spawn: OnSpawn<'a>) -> BoxFuture<'a, io::Result<Spawned>> {
        self.record(Call::Spawn(helper.args.clone()));
        let id = ProcessId {
            pid: 4241,
            start_time: 1,
        };
        on_spawn(&id);
        let line = self.line.clone();
        Box::pin(async move {
            Ok(Spawned {
                id,
                line,
                child: None,
            })
        })
    }
}
