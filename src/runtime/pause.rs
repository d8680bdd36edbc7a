//! `peapod pause`: the process that holds a sandbox's namespaces.
//!
//! It unshares the network, IPC and UTS namespaces (each optional, for `hostNetwork`/`hostIPC`), sets the
//! hostname, brings `lo` up, pins every namespace by bind-mounting it onto a file in the sandbox directory,
//! and with `shareProcessNamespace` forks the PID-namespace init that reaps orphans for all containers; that
//! init, PID 1 in every container of the pod, first hides the host from them (`hide_host`). It then reports `ready <pid>` on stdout and waits for SIGTERM. It is single-threaded and never touches tokio;
//! the supervisor starts it detached (its own session) so it outlives a crash of the supervisor.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::sys;

/// What the pause process sets up, parsed from its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseArgs {
    /// Directory whose `ns/` subdirectory receives the namespace pins.
    pub dir: PathBuf,
    /// Hostname for a new UTS namespace.
    pub hostname: Option<String>,
    /// Namespaces to create, by their `/proc/self/ns` names: `net`, `ipc`, `uts`, `pid`.
    pub namespaces: Vec<String>,
    /// Cgroup to move into first (the pod's helper cgroup).
    pub cgroup: Option<String>,
}

/// Why `peapod pause`'s arguments cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// A flag is last, without its value.
    #[error("{flag} needs a value")]
    MissingValue {
        /// The flag.
        flag: String,
    },
    /// A flag `pause` does not know.
    #[error("unknown flag {flag}")]
    UnknownFlag {
        /// The flag.
        flag: String,
    },
    /// A namespace other than `net`, `ipc`, `uts` and `pid`.
    #[error("unknown namespace {namespace}")]
    UnknownNamespace {
        /// The namespace.
        namespace: String,
    },
    /// No `--dir`.
    #[error("--dir is required")]
    NoDir,
}

impl PauseArgs {
    /// The command-line arguments (after `pause`) that [`PauseArgs::parse`] reads back.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--dir".to_string(), self.dir.display().to_string()];
        if let Some(h) = &self.hostname {
            args.extend(["--hostname".to_string(), h.clone()]);
        }
        args.extend(["--ns".to_string(), self.namespaces.join(",")]);
        if let Some(c) = &self.cgroup {
            args.extend(["--cgroup".to_string(), c.clone()]);
        }
        args
    }

    /// Parses the arguments written by [`PauseArgs::to_args`].
    pub fn parse(args: &[String]) -> Result<Self, ArgsError> {
        let mut dir = None;
        let mut hostname = None;
        let mut namespaces = Vec::new();
        let mut cgroup = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| ArgsError::MissingValue { flag: flag.clone() })?;
            match flag.as_str() {
                "--dir" => dir = Some(PathBuf::from(value)),
                "--hostname" => hostname = Some(value.clone()),
                "--cgroup" => cgroup = Some(value.clone()),
                "--ns" => {
                    namespaces = value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                }
                other => {
                    return Err(ArgsError::UnknownFlag {
                        flag: other.to_string(),
                    })
                }
            }
        }
        for ns in &namespaces {
            if !matches!(ns.as_str(), "net" | "ipc" | "uts" | "pid") {
                return Err(ArgsError::UnknownNamespace {
                    namespace: ns.clone(),
                });
            }
        }
        Ok(PauseArgs {
            dir: dir.ok_or(ArgsError::NoDir)?,
            hostname,
            namespaces,
            cgroup,
        })
    }

    fn wants(&self, ns: &str) -> bool {
        self.namespaces.iter().any(|n| n == ns)
    }
}

/// Entry point of `peapod pause`.
pub fn main(args: &[String]) -> ExitCode {
    let args = match PauseArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("peapod pause: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    if let Some(cgroup) = &args.cgroup {
        if let Err(e) = super::cgroup::enter(cgroup) {
            eprintln!("peapod pause: cannot move into cgroup {cgroup}: {e}");
        }
    }
    match setup(&args) {
        Ok(Role::Holder) => hold(false),
        // The setup parent reports readiness; the init's stdio already points at /dev/null (`hide_host`).
        Ok(Role::Init) => hold(true),
        Ok(Role::Done) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stdout(), "error {e}");
            eprintln!("peapod pause: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Role {
    /// This process holds the namespaces and waits.
    Holder,
    /// This process is PID 1 of the sandbox's PID namespace.
    Init,
    /// The setup parent after forking the PID-namespace init: report and exit.
    Done,
}

/// File in the sandbox directory naming the PID-namespace init, written before the sandbox reports ready.
pub const HOLDER: &str = "holder.json";

fn setup(args: &PauseArgs) -> io::Result<Role> {
    let mut flags = CloneFlags::empty();
    for (name, flag) in [
        ("net", CloneFlags::CLONE_NEWNET),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
    ] {
        if args.wants(name) {
            flags |= flag;
        }
    }
    unshare(flags).map_err(|e| io::Error::other(format!("unshare: {e}")))?;
    if args.wants("uts") {
        if let Some(h) = &args.hostname {
            nix::unistd::sethostname(h).map_err(|e| io::Error::other(format!("sethostname: {e}")))?;
        }
    }
    if args.wants("net") {
        sys::net::set_link_up("lo").map_err(|e| io::Error::other(format!("bring up lo: {e}")))?;
        // As containerd does for every sandbox: unprivileged low ports and ICMP sockets inside the pod.
        let _ = fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
        let _ = fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
    }
    let ns_dir = args.dir.join("ns");
    for name in ["net", "ipc", "uts"] {
        if args.wants(name) {
            pin(Path::new(&format!("/proc/self/ns/{name}")), &ns_dir.join(name))?;
        }
    }
    if !args.wants("pid") {
        report_ready(std::process::id() as i32)?;
        return Ok(Role::Holder);
    }
    unshare(CloneFlags::CLONE_NEWPID).map_err(|e| io::Error::other(format!("unshare pid: {e}")))?;
    let (status_r, status_w) = nix::unistd::pipe().map_err(io::Error::from)?;
    match sys::process::fork()? {
        sys::process::Forked::Child => {
            drop(status_r);
            let outcome = hide_host(&args.dir);
            let mut status = fs::File::from(status_w);
            match &outcome {
                Ok(()) => status.write_all(b"ok")?,
                Err(e) => status.write_all(e.to_string().as_bytes())?,
            }
            outcome.map(|()| Role::Init)
        }
        sys::process::Forked::Parent(child) => {
            drop(status_w);
            let pinned = pin(Path::new(&format!("/proc/{child}/ns/pid")), &ns_dir.join("pid"));
            let mut status = String::new();
            let read = fs::File::from(status_r).read_to_string(&mut status);
            let failed = match (pinned, read) {
                (Err(e), _) | (_, Err(e)) => Some(e),
                (Ok(()), Ok(_)) if status != "ok" => Some(io::Error::other(format!(
                    "isolate the PID-namespace init: {status}"
                ))),
                _ => None,
            };
            // The init outlives this parent and no longer looks like a helper (`hide_host`): its identity
            // goes on disk first, so a sandbox whose creation a crash cut short still has it found.
            let recorded = super::process::identify(child.as_raw())
                .ok_or_else(|| io::Error::other("the PID-namespace init is gone"))
                .and_then(|id| sys::fs::write_json_atomic(&args.dir.join(HOLDER), &id));
            let failed = failed.or(recorded.err());
            if let Some(e) = failed {
                let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                return Err(e);
            }
            report_ready(child.as_raw())?;
            Ok(Role::Done)
        }
    }
}

/// Makes the PID-namespace init, which every container of a `shareProcessNamespace` pod sees as PID 1,
/// show nothing of the host, as the kubelet's pause container does: an empty read-only root in a mount
/// namespace of its own (`/proc/1/mountinfo`, `root`, `cwd`), `/pause` as its command line with an empty
/// environment, no host file behind its standard fds, no capabilities, and not dumpable.
fn hide_host(dir: &Path) -> io::Result<()> {
    let null = fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    // Reads /proc and needs CAP_SYS_RESOURCE: before the root goes and the capabilities are dropped.
    sys::process::hide_command_line("/proc", "/pause", c"pause")?;
    sys::mount::enter_empty_root(dir)?;
    // A container with CAP_SYS_PTRACE may attach to its PID 1: it must find nothing worth taking. Without
    // that capability, it may not even look (`exe`, `root`, `cwd`, `environ`, `fd` of a non-dumpable process
    // need CAP_SYS_PTRACE).
    sys::process::drop_all_capabilities()?;
    nix::sys::prctl::set_dumpable(false).map_err(io::Error::from)?;
    nix::unistd::dup2_stdin(&null).map_err(io::Error::from)?;
    nix::unistd::dup2_stdout(&null).map_err(io::Error::from)?;
    nix::unistd::dup2_stderr(&null).map_err(io::Error::from)
}

fn pin(source: &Path, target: &Path) -> io::Result<()> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target)?;
    sys::mount::bind(source, target, false)
        .map_err(|e| io::Error::other(format!("pin {} on {}: {e}", source.display(), target.display())))
}

fn report_ready(pid: i32) -> io::Result<()> {
    let mut out = io::stdout();
    writeln!(out, "ready {pid}")?;
    out.flush()?;
    // Let the supervisor see EOF: point stdout at /dev/null from now on.
    let null = fs::OpenOptions::new().write(true).open("/dev/null")?;
    nix::unistd::dup2_stdout(null).map_err(io::Error::from)?;
    Ok(())
}

/// Waits for SIGTERM/SIGINT, reaping children meanwhile (as PID 1 of a shared PID namespace, orphans of
/// every container are re-parented here).
fn hold(is_init: bool) -> ExitCode {
    let signals = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD, Signal::SIGHUP];
    if is_init {
        // A namespace init only receives signals it has handlers for.
        if let Err(e) = sys::process::install_noop_handlers(&signals) {
            eprintln!("peapod pause: install handlers: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut set = SigSet::empty();
    for s in signals {
        set.add(s);
    }
    if let Err(e) = set.thread_block() {
        eprintln!("peapod pause: block signals: {e}");
        return ExitCode::FAILURE;
    }
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => reap(),
            Ok(Signal::SIGHUP) => {}
            Ok(_) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("peapod pause: sigwait: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}

fn reap() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let a = PauseArgs {
            dir: PathBuf::from("/run/peapod/sandboxes/abc"),
            hostname: Some("web".into()),
            namespaces: vec!["net".into(), "ipc".into(), "uts".into(), "pid".into()],
            cgroup: Some("/peapod/podx/helpers".into()),
        };
        assert_eq!(PauseArgs::parse(&a.to_args()).unwrap(), a);
    }

    #[test]
    fn parse_rejects_unknown_namespace_and_flag() {
        let bad_ns: Vec<String> = ["--dir", "/x", "--ns", "net,user"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(PauseArgs::parse(&bad_ns)
            .unwrap_err()
            .to_string()
            .contains("user"));
        let bad_flag: Vec<String> = ["--dir", "/x", "--evil", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(PauseArgs::parse(&bad_flag).is_err());
        assert!(PauseArgs::parse(&[]).is_err());
    }

    #[test]
    fn argument_errors_name_the_flag_or_value() {
        let cases = [
            (
                ArgsError::MissingValue { flag: "--dir".into() },
                "--dir needs a value",
            ),
            (
                ArgsError::UnknownFlag {
                    flag: "--user".into(),
                },
                "unknown flag --user",
            ),
            (
                ArgsError::UnknownNamespace {
                    namespace: "user".into(),
                },
                "unknown namespace user",
            ),
            (ArgsError::NoDir, "--dir is required"),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
