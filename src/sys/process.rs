//! Process identity and lifetime: pidfds, start times (to tell a live process from a reused pid), fork for
//! the pause process, and signal dispositions for a PID-namespace init.

use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{ForkResult, Pid};

/// Opens a pidfd for `pid` (Linux 5.3+). The fd becomes readable when the process exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no pointers are involved.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `signal` to the process behind a pidfd, immune to pid reuse.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: Signal) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the fd is a valid pidfd we own; siginfo is null as the syscall allows; flags are 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as i32,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The start time of a process in clock ticks since boot (field 22 of `/proc/<pid>/stat`), or `None` when
/// the process does not exist. Together with the pid it identifies one process across pid reuse.
pub fn start_time(proc_root: &str, pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("{proc_root}/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ')' come field 3 (state) onwards; start time is field 22, i.e. index 19 here.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `pid` is a zombie or gone (state `Z`/`X`, or no `/proc` entry).
pub fn is_dead(proc_root: &str, pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("{proc_root}/{pid}/stat")) else {
        return true;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .unwrap_or("X");
    matches!(state, "Z" | "X" | "x")
}

/// Registers an owned fd (a pidfd) with the tokio reactor.
pub fn async_fd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes ownership of the OwnedFd, so the fd stays open and is not reused for as long as
    // it is registered, and it is deregistered before the OwnedFd is closed on drop.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(io::Error::from)
}

/// Joins the cgroup namespace of PID 1 when the caller's differs (an agent in a container with a private
/// cgroup namespace), so cgroup paths mean the host's. Only for single-threaded helpers.
pub fn join_host_cgroup_namespace(proc_root: &str) -> io::Result<bool> {
    let mine = fs::read_link(format!("{proc_root}/self/ns/cgroup"))?;
    let host = match fs::read_link(format!("{proc_root}/1/ns/cgroup")) {
        Ok(h) => h,
        // PID 1's namespaces may be unreadable (a VM init); then there is nothing to join.
        Err(_) => return Ok(false),
    };
    if mine == host {
        return Ok(false);
    }
    let f = fs::File::open(format!("{proc_root}/1/ns/cgroup"))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWCGROUP).map_err(io::Error::from)?;
    Ok(true)
}

/// Result of [`fork`], as seen from each side.
pub enum Forked {
    /// In the parent, with the child's pid.
    Parent(Pid),
    /// In the child.
    Child,
}

/// Forks the calling process. Only for small single-threaded processes (the pause process); never call it
/// from the tokio runtime.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: callers are single-threaded (documented above), so the child may run arbitrary code.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

extern "C" fn noop_handler(_: libc::c_int) {}

/// Installs a handler that does nothing for each signal. A PID-namespace init ignores signals whose
/// disposition is the default, so the pause process needs a real handler to receive them at all; it then
/// blocks them and collects them synchronously with a signalfd or `sigwait`.
pub fn install_noop_handlers(signals: &[Signal]) -> io::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(noop_handler),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for &signal in signals {
        // SAFETY: the handler is async-signal-safe (it does nothing) and we replace no handler Rust relies on.
        unsafe { sigaction(signal, &action) }.map_err(io::Error::from)?;
    }
    Ok(())
}

/// Restores the default disposition of `signal` (used before exec'ing helpers that expect it).
pub fn default_handler(signal: Signal) -> io::Result<()> {
    let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: restoring SIG_DFL cannot violate memory safety.
    unsafe { sigaction(signal, &action) }.map_err(io::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self_is_stable_and_missing_pid_is_none() {
        let me = std::process::id() as i32;
        let a = start_time("/proc", me).expect("own start time");
        assert_eq!(start_time("/proc", me), Some(a));
        assert!(!is_dead("/proc", me));
        assert_eq!(start_time("/proc", i32::MAX), None);
        assert!(is_dead("/proc", i32::MAX));
    }

    #[test]
    fn pidfd_of_exited_child_becomes_readable() {
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let fd = pidfd_open(child.id() as i32).expect("pidfd_open");
        child.wait().expect("wait");
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16)).expect("poll");
        assert_eq!(n, 1);
    }
}
