//! Starting and watching the helper processes (`peapod pause`, `peapod shim`) from the async supervisor.
//!
//! Helpers are spawned from this binary with stdin on /dev/null, stdout a pipe that carries exactly one
//! status line, and stderr appended to a log file. A helper is watched through a pidfd, whether it is our
//! child or one adopted after a restart, so its exit is seen exactly once and a reused pid is never
//! mistaken for it.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::record::ProcessId;
use crate::sys;

/// `/proc`, where process identities are read.
pub const PROC: &str = "/proc";

/// A helper process that was just started.
pub struct Spawned {
    /// Its identity.
    pub id: ProcessId,
    /// The first line it printed on stdout, if any before the deadline.
    pub line: Option<String>,
    /// The child handle, kept so tokio reaps it.
    pub child: Child,
}

/// A helper that was spawned and has not yet printed its status line.
pub struct Pending {
    /// Its identity.
    pub id: ProcessId,
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Pending {
    /// Waits up to `deadline` for the helper's status line.
    pub async fn first_line(mut self, deadline: Duration) -> Spawned {
        let mut line = String::new();
        let line = match tokio::time::timeout(deadline, self.stdout.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => Some(line.trim_end().to_string()),
            _ => None,
        };
        Spawned {
            id: self.id,
            line,
            child: self.child,
        }
    }
}

/// Spawns `self_exe <args>` and waits up to `deadline` for its status line.
pub async fn spawn_helper(
    self_exe: &Path,
    args: &[String],
    stderr_log: &Path,
    deadline: Duration,
) -> io::Result<Spawned> {
    Ok(spawn(self_exe, args, stderr_log, None)?
        .first_line(deadline)
        .await)
}

/// Spawns `self_exe <args>`, handing it `lock` (see `sys::lock`) when given.
pub fn spawn(
    self_exe: &Path,
    args: &[String],
    stderr_log: &Path,
    lock: Option<&std::fs::File>,
) -> io::Result<Pending> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_log)?;
    let mut cmd = Command::new(self_exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(false);
    if let Some(lock) = lock {
        sys::lock::inherit(&mut cmd, lock);
    }
    let mut child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("helper exited before it could be watched"))? as i32;
    let start_time = sys::process::start_time(PROC, pid).unwrap_or(0);
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("helper stdout missing"))?;
    Ok(Pending {
        id: ProcessId { pid, start_time },
        child,
        stdout: BufReader::new(stdout),
    })
}

/// Whether `id` still names a live process (same pid, same start time).
pub fn is_alive(id: &ProcessId) -> bool {
    sys::process::start_time(PROC, id.pid) == Some(id.start_time) && !sys::process::is_dead(PROC, id.pid)
}

/// The identity of a live process by pid, if it exists.
pub fn identify(pid: i32) -> Option<ProcessId> {
    sys::process::start_time(PROC, pid).map(|start_time| ProcessId { pid, start_time })
}

/// A handle that resolves when a process exits.
pub struct ExitWatch {
    fd: AsyncFd<OwnedFd>,
}

impl ExitWatch {
    /// Watches `id`; `Ok(None)` when it is already gone (or the pid now names another process).
    pub fn open(id: &ProcessId) -> io::Result<Option<ExitWatch>> {
        let fd = match sys::process::pidfd_open(id.pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        };
        // The pidfd pins one process; if its start time differs, the pid was reused.
        if !is_alive(id) {
            return Ok(None);
        }
        Ok(Some(ExitWatch {
            fd: sys::process::async_fd(fd)?,
        }))
    }

    /// Resolves once the process has exited; reaps it when it is our child.
    pub async fn exited(&self) {
        match self.fd.readable().await {
            Ok(mut guard) => guard.retain_ready(),
            Err(_) => return,
        }
        use nix::sys::wait::{waitid, Id, WaitPidFlag};
        use std::os::fd::AsFd;
        let _ = waitid(
            Id::PIDFd(self.fd.get_ref().as_fd()),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
        );
    }

    /// Sends a signal to the watched process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> io::Result<()> {
        sys::process::pidfd_send_signal(self.fd.get_ref(), signal)
    }
}

/// Kills `id` and every process of the session it leads (helpers call `setsid` first, so this is the
/// helper and whatever it forked, e.g. the pause process's PID-namespace init), then waits up to `deadline`
/// for each to exit. Members are looked for only while the leader itself still exists (a zombie counts):
/// the kernel keeps a pid that is a session id from being reused, so then every process of that session is
/// the leader's. Once the leader is gone, its pid may name a new session of strangers, and nothing but the
/// leader's own (already gone) identity is acted on.
pub async fn kill_session(id: &ProcessId, deadline: Duration) {
    let Ok(Some(leader)) = ExitWatch::open(id) else {
        return;
    };
    let mut watches: Vec<ExitWatch> = verified_members(PROC, id)
        .iter()
        .filter_map(|member| ExitWatch::open(member).ok().flatten())
        .collect();
    if !holds_pid(PROC, id) {
        // The leader went while the members were pinned: their session ids cannot be trusted any more.
        watches.clear();
    }
    watches.push(leader);
    for watch in &watches {
        let _ = watch.signal(nix::sys::signal::Signal::SIGKILL);
    }
    let all = futures::future::join_all(watches.iter().map(ExitWatch::exited));
    let _ = tokio::time::timeout(deadline, all).await;
}

/// Live processes of the executable `exe` whose arguments after `argv[0]` satisfy `matches`, oldest first:
/// how a helper is found again when a crash came between its start and its pid record. The executable is
/// checked as well as the command line, so a process that merely imitates a helper's command line (any
/// container can) is never taken for one.
pub fn find_helpers(exe: &Path, matches: impl Fn(&[&[u8]]) -> bool) -> Vec<ProcessId> {
    let Ok(entries) = std::fs::read_dir(PROC) else {
        return Vec::new();
    };
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    let mut found: Vec<ProcessId> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("{PROC}/{pid}/cmdline")).unwrap_or_default();
            let argv = cmdline.strip_suffix(&[0]).unwrap_or(&cmdline);
            let args: Vec<&[u8]> = argv.split(|b| *b == 0).skip(1).collect();
            !args.is_empty() && matches(&args) && runs(pid, &exe)
        })
        .filter_map(identify)
        .filter(is_alive)
        .collect();
    found.sort_by_key(|id| id.start_time);
    found
}

/// Whether `pid` runs the executable `exe` (a binary replaced since reads back as `<path> (deleted)`).
fn runs(pid: i32, exe: &Path) -> bool {
    let Ok(running) = std::fs::read_link(format!("{PROC}/{pid}/exe")) else {
        return false;
    };
    let running = running.as_os_str().as_encoded_bytes();
    running.strip_suffix(b" (deleted)").unwrap_or(running) == exe.as_os_str().as_encoded_bytes()
}

/// Whether the pid of `id` still belongs to that process (alive or a zombie not yet reaped).
fn holds_pid(proc_root: &str, id: &ProcessId) -> bool {
    sys::process::start_time(proc_root, id.pid) == Some(id.start_time)
}

/// The members of the session `leader` leads, or none unless the leader holds its pid both before and after
/// the scan (so every session id read in between was the leader's).
fn verified_members(proc_root: &str, leader: &ProcessId) -> Vec<ProcessId> {
    if !holds_pid(proc_root, leader) {
        return Vec::new();
    }
    let members = session_members(proc_root, leader);
    if holds_pid(proc_root, leader) {
        members
    } else {
        Vec::new()
    }
}

/// The other processes whose session id is the pid of `leader`. Each start time is read before its session
/// id, so a pid reused between the two reads is caught when the caller pins the member by that start time.
fn session_members(proc_root: &str, leader: &ProcessId) -> Vec<ProcessId> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != leader.pid)
        .filter_map(|pid| {
            let start_time = sys::process::start_time(proc_root, pid)?;
            (session_of(proc_root, pid) == Some(leader.pid)).then_some(ProcessId { pid, start_time })
        })
        .collect()
}

/// The session id of `pid` (field 6 of `/proc/<pid>/stat`).
fn session_of(proc_root: &str, pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("{proc_root}/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_watch_resolves_when_process_ends() {
        let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
        let id = identify(child.id().unwrap() as i32).unwrap();
        assert!(is_alive(&id));
        let watch = ExitWatch::open(&id).unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(10), watch.exited())
            .await
            .expect("exit seen");
        let _ = child.wait().await;
        assert!(!is_alive(&id));
        assert!(ExitWatch::open(&id).unwrap().is_none());
    }

    #[tokio::test]
    async fn find_helpers_matches_the_executable_and_the_arguments() {
        let mut child = Command::new("sleep").arg("300").spawn().unwrap();
        let id = identify(child.id().unwrap() as i32).unwrap();
        // Until the child has exec'd, its command line and executable are still this test's.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read(format!("/proc/{}/cmdline", id.pid)).unwrap_or_default() != b"sleep\x00300\x00" {
            assert!(std::time::Instant::now() < deadline, "sleep never exec'd");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let sleep = std::fs::read_link(format!("/proc/{}/exe", id.pid)).unwrap();
        let found = find_helpers(&sleep, |a| a == [b"300".as_slice()]);
        assert!(found.contains(&id), "{found:?}");
        assert!(!find_helpers(&sleep, |a| a == [b"301".as_slice()]).contains(&id));
        let other = std::env::current_exe().unwrap();
        assert!(
            !find_helpers(&other, |a| a == [b"300".as_slice()]).contains(&id),
            "another executable"
        );
        child.kill().await.unwrap();
        let _ = child.wait().await;
    }

    #[tokio::test]
    async fn kill_session_ends_the_leader_and_what_it_forked() {
        // `setsid sh` leads a new session; its background sleep stays in it after sh has gone on waiting.
        let mut child = Command::new("setsid")
            .args(["sh", "-c", "sleep 300 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).await.unwrap();
        let sleeper = identify(line.trim().parse().unwrap()).unwrap();
        let leader = identify(child.id().unwrap() as i32).unwrap();
        assert_eq!(session_of(PROC, sleeper.pid), Some(leader.pid));
        assert_eq!(session_members(PROC, &leader), vec![sleeper]);
        kill_session(&leader, Duration::from_secs(10)).await;
        let _ = child.wait().await;
        assert!(!is_alive(&leader));
        assert!(!is_alive(&sleeper), "the forked sleep was killed too");
    }

    /// A fake `/proc/<pid>/stat` with session id `sid` and start time `start`.
    fn fake_stat(root: &Path, pid: i32, sid: i32, start: u64) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let mut fields = vec!["0".to_string(); 20];
        fields[0] = "S".into();
        fields[3] = sid.to_string();
        fields[19] = start.to_string();
        std::fs::write(dir.join("stat"), format!("{pid} (a b) {}", fields.join(" "))).unwrap();
    }

    #[test]
    fn a_session_on_a_reused_leader_pid_is_never_treated_as_the_leaders() {
        let proc = tempfile::tempdir().unwrap();
        let root = proc.path().to_str().unwrap();
        let leader = ProcessId {
            pid: 100,
            start_time: 500,
        };
        // The leader lives: its session member is found.
        fake_stat(proc.path(), 100, 100, 500);
        fake_stat(proc.path(), 101, 100, 600);
        fake_stat(proc.path(), 102, 7, 650);
        assert_eq!(
            verified_members(root, &leader),
            vec![ProcessId {
                pid: 101,
                start_time: 600
            }]
        );
        // The leader died and pid 100 now leads a stranger's session, whose members started later still.
        fake_stat(proc.path(), 100, 100, 900);
        fake_stat(proc.path(), 101, 100, 950);
        assert!(verified_members(root, &leader).is_empty());
        // Or pid 100 is gone altogether while a process with that session id runs.
        std::fs::remove_dir_all(proc.path().join("100")).unwrap();
        assert!(verified_members(root, &leader).is_empty());
    }
}
