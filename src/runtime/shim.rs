//! `peapod shim`: the process that holds one container instance.
//!
//! It runs `runc create` and `runc start` on a prepared bundle, becomes the container's parent (child
//! subreaper), copies its stdout/stderr into the CRI log file, waits for it, and writes the exit record
//! atomically before cleaning up (`runc delete`, rootfs unmount). It never dies from SIGTERM/SIGINT/SIGHUP:
//! only the container's end ends it. Single-threaded, no tokio; the supervisor starts it detached and may
//! crash or restart at any point without losing the exit.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::log::{LogConfig, LogWriter, Stream};
use super::record::{ExitRecord, ShimConfig, StartedRecord};
use crate::sys;
use report::{StartFailure, Tail};

mod report;

pub use report::last_runtime_error;

/// Exit code and reason containerd reports when a container could not be started.
pub const START_ERROR_EXIT_CODE: i32 = 128;
/// How long the shim keeps draining output pipes after the container's init has exited.
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// Entry point of `peapod shim <instance-dir>`.
pub fn main(args: &[String]) -> ExitCode {
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("peapod shim: usage: peapod shim <instance-dir>");
        return ExitCode::from(2);
    };
    let spawner = nix::unistd::getppid();
    sys::lock::keep_inherited();
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    // Who we are, before anything else: a supervisor that died before recording it finds it here.
    if let Some(me) = super::process::identify(std::process::id() as i32) {
        let _ = sys::fs::write_json_atomic(&dir.join(super::record::SHIM_PROCESS), &me);
    }
    let config: ShimConfig = match sys::fs::read_json(&dir.join(super::record::SHIM_CONFIG)) {
        Ok(Some(c)) => c,
        Ok(None) => return fail_early(&dir, "shim config missing"),
        Err(e) => return fail_early(&dir, &format!("read shim config: {e}")),
    };
    let mut shim = Shim {
        dir,
        config,
        tail: Tail::default(),
        spawner,
    };
    match shim.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peapod shim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fail_early(dir: &Path, message: &str) -> ExitCode {
    eprintln!("peapod shim: {}: {message}", dir.display());
    notify(&format!("failed {message}"));
    ExitCode::FAILURE
}

/// Tells the supervisor how the start went (first line on stdout), then detaches stdout.
fn notify(line: &str) {
    let mut out = io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(null);
    }
}

struct Shim {
    dir: PathBuf,
    config: ShimConfig,
    tail: Tail,
    /// The supervisor that spawned this shim (for the `runc-created` crash point only).
    spawner: nix::unistd::Pid,
}

impl Shim {
    fn run(&mut self) -> io::Result<()> {
        if let Some(cgroup) = &self.config.helper_cgroup {
            if let Err(e) = super::cgroup::enter(cgroup) {
                eprintln!("peapod shim: cannot move into cgroup {cgroup}: {e}");
            }
        }
        nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)?;
        let mut mask = SigSet::empty();
        for s in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            mask.add(s);
        }
        mask.thread_block().map_err(io::Error::from)?;
        let mut sigchld = SigSet::empty();
        sigchld.add(Signal::SIGCHLD);
        let sfd = SignalFd::with_flags(&sigchld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(io::Error::from)?;

        let mut log = LogWriter::open(
            &self.config.log_path,
            LogConfig {
                max_size_bytes: self.config.log_max_size,
                max_files: self.config.log_max_files,
            },
        )?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let pid = match self.create_and_start(out_w, err_w) {
            Ok(pid) => pid,
            Err(e) => return self.start_failed(&super::chain(&e)),
        };
        let started = StartedRecord {
            pid,
            started_at: super::record::now(),
        };
        sys::fs::write_json_atomic(&self.dir.join(super::record::STARTED), &started)?;
        notify(&format!("started {pid}"));

        let status = self.pump(&sfd, pid, [out_r, err_r], &mut log)?;
        self.finish(started, status)
    }

    /// `runc create` then `runc start`; returns the container's pid or the runtime's error message.
    fn create_and_start(&self, out_w: OwnedFd, err_w: OwnedFd) -> Result<i32, StartFailure> {
        sys::crash::kill_parent_and_stall_at("runc-creating", self.spawner);
        let pid_file = self.dir.join("container.pid");
        let create = self
            .runc()
            .args(["create", "--bundle"])
            .arg(&self.config.bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&self.config.id)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::from(err_w))
            .status();
        match create {
            Ok(s) if s.success() => {}
            Ok(_) => {
                return Err(StartFailure::Create {
                    message: self.runtime_error(),
                })
            }
            Err(e) => return Err(StartFailure::exec(&self.config.runtime, e)),
        }
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .ok_or(StartFailure::NoPidFile)?;
        self.verify_masks(pid)?;
        sys::crash::kill_parent_at("runc-created", self.spawner);
        let start = self
            .runc()
            .arg("start")
            .arg(&self.config.id)
            .stdin(Stdio::null())
            .status();
        match start {
            Ok(s) if s.success() => Ok(pid),
            Ok(_) => Err(StartFailure::Start {
                message: self.runtime_error(),
            }),
            Err(e) => Err(StartFailure::exec(&self.config.runtime, e)),
        }
    }

    /// Refuses to start a created container whose masked paths the runtime did not really mask.
    fn verify_masks(&self, pid: i32) -> Result<(), StartFailure> {
        let path = self.config.bundle.join("config.json");
        let spec = match oci_spec::runtime::Spec::load(&path) {
            Ok(spec) => spec,
            Err(source) => return Err(StartFailure::ReadSpec { path, source }),
        };
        let masked = spec
            .linux()
            .as_ref()
            .and_then(|l| l.masked_paths().clone())
            .unwrap_or_default();
        Ok(super::masks::verify(
            Path::new("/proc"),
            pid,
            &masked,
            Path::new("/"),
        )?)
    }

    fn runc(&self) -> Command {
        let mut cmd = Command::new(&self.config.runtime);
        cmd.arg("--root")
            .arg(&self.config.runtime_root)
            .arg("--log")
            .arg(self.dir.join("runtime.log"))
            .arg("--log-format")
            .arg("json");
        cmd
    }

    /// The last error the OCI runtime logged, with its noise prefix removed.
    fn runtime_error(&self) -> String {
        let text = fs::read_to_string(self.dir.join("runtime.log")).unwrap_or_default();
        last_runtime_error(&text).unwrap_or_else(|| "unknown error".to_string())
    }

    fn start_failed(&mut self, message: &str) -> io::Result<()> {
        let record = ExitRecord {
            exit_code: START_ERROR_EXIT_CODE,
            signal: None,
            reason: "StartError".to_string(),
            message: Some(message.to_string()),
            started_at: None,
            finished_at: super::record::now(),
        };
        sys::fs::write_json_atomic(&self.dir.join(super::record::EXITED), &record)?;
        // Release the runtime's state and the rootfs before the supervisor hears of the failure, so a
        // failed start has left nothing behind by the time it is reported.
        self.cleanup();
        notify(&format!("failed {message}"));
        Ok(())
    }

    /// Copies output into the log until the container has exited and its pipes are drained.
    fn pump(
        &mut self,
        sfd: &SignalFd,
        pid: i32,
        pipes: [OwnedFd; 2],
        log: &mut LogWriter,
    ) -> io::Result<WaitStatus> {
        let [out, err] = pipes;
        let mut open: Vec<(Stream, OwnedFd)> = vec![(Stream::Stdout, out), (Stream::Stderr, err)];
        let mut exited: Option<(WaitStatus, Instant)> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some((status, at)) = exited {
                if open.is_empty() || at.elapsed() >= DRAIN_DEADLINE {
                    for (stream, _) in &open {
                        log.flush_partial(*stream)?;
                    }
                    return Ok(status);
                }
            }
            let timeout = if exited.is_some() {
                PollTimeout::from(100u16)
            } else {
                PollTimeout::NONE
            };
            let mut fds: Vec<PollFd> = std::iter::once(PollFd::new(sfd.as_fd(), PollFlags::POLLIN))
                .chain(
                    open.iter()
                        .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLIN)),
                )
                .collect();
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
            drop(fds);
            if ready.first().copied().unwrap_or(false) {
                while let Ok(Some(_)) = sfd.read_signal() {}
                if let Some(status) = reap(pid) {
                    exited = Some((status, Instant::now()));
                    if !self.config.own_pid_namespace {
                        // Nothing else reaps what the container left behind in a shared PID namespace.
                        let _ = self
                            .runc()
                            .args(["kill", "--all"])
                            .arg(&self.config.id)
                            .arg("KILL")
                            .status();
                    }
                }
            }
            let mut closed = Vec::new();
            for (i, (stream, fd)) in open.iter().enumerate() {
                if !ready.get(i + 1).copied().unwrap_or(false) {
                    continue;
                }
                match read_some(fd, &mut buf) {
                    Ok(0) => closed.push(i),
                    Ok(n) => {
                        self.tail.push(&buf[..n]);
                        log.write(*stream, &buf[..n])?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => closed.push(i),
                }
            }
            for i in closed.into_iter().rev() {
                let (stream, _) = open.remove(i);
                log.flush_partial(stream)?;
            }
        }
    }

    fn finish(&mut self, started: StartedRecord, status: WaitStatus) -> io::Result<()> {
        let (exit_code, signal) = match status {
            WaitStatus::Exited(_, code) => (code, None),
            WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
            _ => (255, None),
        };
        let oom = self.oom_killed();
        let reason = if oom {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let record = ExitRecord {
            exit_code,
            signal,
            reason: reason.to_string(),
            message: self
                .config
                .termination_message
                .as_ref()
                .and_then(|tm| report::termination_message(tm, &self.tail, exit_code)),
            started_at: Some(started.started_at),
            finished_at: super::record::now(),
        };
        sys::fs::write_json_atomic(&self.dir.join(super::record::EXITED), &record)?;
        sys::crash::kill_parent_and_stall_at("exit-recorded", self.spawner);
        self.cleanup();
        Ok(())
    }

    fn oom_killed(&self) -> bool {
        let Some(path) = &self.config.oom_events else {
            return false;
        };
        let text = fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.strip_prefix("oom_kill "))
            .any(|n| n.trim().parse::<u64>().map(|n| n > 0).unwrap_or(false))
    }

    fn cleanup(&self) {
        let _ = self
            .runc()
            .args(["delete", "--force"])
            .arg(&self.config.id)
            .status();
        if let Some(rootfs) = &self.config.rootfs {
            if let Err(e) = sys::mount::unmount(rootfs) {
                eprintln!("peapod shim: unmount {}: {e}", rootfs.display());
            }
        }
        // The message is in the exit record by now: its tmpfs holds nothing anyone reads again.
        if let Some(mount) = self
            .config
            .termination_message
            .as_ref()
            .and_then(|tm| tm.host_path.parent())
        {
            if let Err(e) = sys::mount::unmount(mount) {
                eprintln!("peapod shim: unmount {}: {e}", mount.display());
            }
        }
    }
}

/// Reaps every exited child; returns the container's status once it is among them.
fn reap(container: i32) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(status) => {
                if status.pid() == Some(Pid::from_raw(container)) {
                    found = Some(status);
                }
            }
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    nix::unistd::read(fd, buf).map_err(io::Error::from)
}
