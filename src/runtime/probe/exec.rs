//! Exec actions: `<oci runtime> --root R exec --pid-file F <id> <cmd...>`, the way CRI ExecSync runs them.
//!
//! runc gives the command the container's process env, user, cwd and capabilities. stdout and stderr are
//! read separately (CRI returns them apart; the kubelet appends stderr to stdout) and capped. On a time
//! limit the exec'd process (its host pid comes from the pid file) and the runc client are killed; a
//! dropped call kills them too. Nothing is left running.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;
use tokio::task::JoinHandle;

use super::{go_quote, Outcome, Target, MAX_OUTPUT};

/// How an exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Exit {
    /// The command ran and exited with this code.
    Code(i32),
    /// The time limit passed; the command was killed.
    TimedOut,
    /// The runtime could not run the command (container gone, runtime missing); its message.
    Runtime(String),
}

/// Output and end of one exec.
#[derive(Debug)]
pub(super) struct Run {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Exit,
}

impl Run {
    /// stdout then stderr, capped as the kubelet's probe output.
    pub(super) fn combined(&self) -> String {
        let mut all = self.stdout.clone();
        all.extend_from_slice(&self.stderr);
        all.truncate(MAX_OUTPUT);
        String::from_utf8_lossy(&all).into_owned()
    }
}

/// One exec probe attempt (pkg/probe/exec with the CRI timeout wording).
pub(super) async fn probe(target: &Target<'_>, command: &[String], timeout: Duration) -> Outcome {
    let run = run(target, command, Some(timeout)).await;
    match run.exit {
        Exit::Code(0) => Outcome::Success,
        Exit::Code(_) => Outcome::Failure(run.combined()),
        Exit::TimedOut => Outcome::Failure(timed_out(command)),
        Exit::Runtime(msg) => Outcome::Unknown(msg),
    }
}

/// The kubelet's message for an exec that ran out of time.
pub(super) fn timed_out(command: &[String]) -> String {
    format!("command {} timed out", go_quote(&command.join(" ")))
}

/// Runs `command` in the container, killing it after `limit`.
pub(super) async fn run(target: &Target<'_>, command: &[String], limit: Option<Duration>) -> Run {
    let cfg = target.cfg;
    let dir = cfg.run_dir.join("exec");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return runtime_error(format!("create {}: {e}", dir.display()));
    }
    let mut guard = ExecGuard {
        pid_file: pid_file(&dir, target.container_id),
        child: None,
    };
    let mut cmd = tokio::process::Command::new(&cfg.oci_runtime);
    cmd.arg("--root")
        .arg(cfg.runtime_root())
        .arg("exec")
        .arg("--pid-file")
        .arg(&guard.pid_file)
        .arg(target.container_id)
        .args(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return runtime_error(format!("start {}: {e}", cfg.oci_runtime.display())),
    };
    let (stdout, mut out_task) = reader(child.stdout.take());
    let (stderr, mut err_task) = reader(child.stderr.take());
    let child = guard.child.insert(child);
    let waited = match limit {
        Some(limit) => tokio::time::timeout(limit, child.wait()).await.ok(),
        None => Some(child.wait().await),
    };
    let exit = match waited {
        None => {
            // A runc still setting up has not written the pid yet: give it a moment to.
            for _ in 0..20 {
                let running = guard
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
                if guard.pid_written() || !running {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if let Some(child) = guard.child.take() {
                guard.kill_process();
                reap_runc(child).await;
            }
            Exit::TimedOut
        }
        Some(Err(e)) => Exit::Runtime(format!("wait for {}: {e}", cfg.oci_runtime.display())),
        Some(Ok(status)) => {
            guard.child = None;
            // The pipes close when the command exits, unless it left a background child holding them.
            let drain = async {
                let _ = (&mut out_task).await;
                let _ = (&mut err_task).await;
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
            classify(status, guard.pid_written(), &stderr)
        }
    };
    out_task.abort();
    err_task.abort();
    let take =
        |buf: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *buf.lock().unwrap_or_else(|e| e.into_inner()));
    Run {
        stdout: take(&stdout),
        stderr: take(&stderr),
        exit,
    }
}

/// Waits for a runc whose process was killed: runc reaps it and exits. Only a runc that does not follow is
/// killed, so the process is never orphaned (a subreaper would have to reap it, else it pins the cgroup).
async fn reap_runc(mut child: Child) {
    if tokio::time::timeout(Duration::from_secs(2), child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// A runc that exited non-zero without writing the pid file never started the command: a runtime error.
fn classify(status: ExitStatus, pid_written: bool, stderr: &Arc<Mutex<Vec<u8>>>) -> Exit {
    match status.code() {
        Some(0) => Exit::Code(0),
        Some(code) if pid_written => Exit::Code(code),
        _ => {
            let text =
                String::from_utf8_lossy(&stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
            Exit::Runtime(runtime_message(&text, status))
        }
    }
}

/// The message of a runc error line (`time=... level=error msg="..."`), else the trimmed text.
pub(super) fn runtime_message(stderr: &str, status: ExitStatus) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if let Some(start) = line.find("msg=\"") {
        let rest = &line[start + 5..];
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                '"' => return out,
                c => out.push(c),
            }
        }
        return out;
    }
    if line.is_empty() {
        format!("exec failed: {status}")
    } else {
        line.to_string()
    }
}

fn runtime_error(msg: String) -> Run {
    Run {
        stdout: Vec::new(),
        stderr: Vec::new(),
        exit: Exit::Runtime(msg),
    }
}

fn pid_file(dir: &Path, id: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{id}-{}-{n}.pid", std::process::id()))
}

/// Reads a pipe into a shared buffer, keeping at most `MAX_OUTPUT` bytes and discarding the rest so the
/// writer never blocks.
fn reader(pipe: Option<impl AsyncRead + Unpin + Send + 'static>) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let shared = buf.clone();
    let task = tokio::spawn(async move {
        let Some(mut pipe) = pipe else { return };
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                return;
            }
            let mut buf = shared.lock().unwrap_or_else(|e| e.into_inner());
            let room = MAX_OUTPUT.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..n.min(room)]);
        }
    });
    (buf, task)
}

/// While `child` (the runc client) is set, dropping the guard kills the exec'd process (by the pid runc
/// wrote) and reaps runc in the background. The pid file is always removed.
struct ExecGuard {
    pid_file: PathBuf,
    child: Option<Child>,
}

impl ExecGuard {
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|p| *p > 0)
    }

    fn pid_written(&self) -> bool {
        self.pid().is_some()
    }

    fn kill_process(&self) {
        if let Some(pid) = self.pid() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            self.kill_process();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(reap_runc(child));
            }
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}
