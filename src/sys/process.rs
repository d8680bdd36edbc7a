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

/// Replaces what `/proc/self/cmdline` and `/proc/self/environ` show with `argv0` and nothing, and the
/// command name (`comm`) with `name`: the process's own argument and environment strings (whose location
/// the kernel reports in `/proc/self/stat`) are overwritten in place, then the ranges are shrunk where
/// CAP_SYS_RESOURCE allows (`PR_SET_MM`). Call it only from a single-threaded process that has finished
/// reading its arguments and no longer needs its environment.
pub fn hide_command_line(proc_root: &str, argv0: &str, name: &std::ffi::CStr) -> io::Result<()> {
    let stat = fs::read_to_string(format!("{proc_root}/self/stat"))?;
    let rest = &stat[stat.rfind(')').ok_or_else(|| io::Error::other("bad stat"))? + 1..];
    // Fields 48-51: arg_start, arg_end, env_start, env_end; the text after ')' starts at field 3.
    let field = |n: usize| -> io::Result<usize> {
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no field {n} in /proc/self/stat")))
    };
    let (arg_start, arg_end, env_start, env_end) = (field(48)?, field(49)?, field(50)?, field(51)?);
    if arg_end <= arg_start || env_end < env_start || argv0.len() >= arg_end - arg_start {
        return Err(io::Error::other("unexpected argument area in /proc/self/stat"));
    }
    // SAFETY: the kernel reports [arg_start, arg_end) and [env_start, env_end) as this process's own
    // argument and environment strings on its initial stack, which is mapped read-write. The caller is
    // single-threaded and has parsed its arguments; std copies arguments out when asked and the C
    // environment array keeps pointing at valid (now empty) NUL-terminated strings. argv0 plus its NUL fits
    // (checked above).
    unsafe {
        std::ptr::write_bytes(arg_start as *mut u8, 0, arg_end - arg_start);
        std::ptr::copy_nonoverlapping(argv0.as_ptr(), arg_start as *mut u8, argv0.len());
        std::ptr::write_bytes(env_start as *mut u8, 0, env_end - env_start);
    }
    // Best effort: without CAP_SYS_RESOURCE the ranges keep their length (trailing NULs, no text).
    for (option, value) in [
        (libc::PR_SET_MM_ARG_END, arg_start + argv0.len() + 1),
        (libc::PR_SET_MM_ENV_END, env_start),
    ] {
        // SAFETY: PR_SET_MM takes plain integers; the kernel validates the addresses against this process's
        // own mappings and refuses anything outside them.
        let _ = unsafe {
            libc::prctl(
                libc::PR_SET_MM,
                option as libc::c_ulong,
                value as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
    }
    nix::sys::prctl::set_name(name).map_err(io::Error::from)
}

/// `struct __user_cap_header_struct` of capset(2).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct` of capset(2).
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit data words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Gives up every capability for good: empties the bounding set, then the effective, permitted and
/// inheritable sets (which clears the ambient set too), and sets `no_new_privs`. For a helper that keeps
/// running as uid 0 but needs no privilege any more, so that whoever can ptrace it gains nothing.
pub fn drop_all_capabilities() -> io::Result<()> {
    for cap in 0..64u32 {
        // SAFETY: PR_CAPBSET_DROP takes plain integers; an unknown capability number fails with EINVAL.
        if unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                cap as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        } < 0
        {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(e);
        }
    }
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: both pointers point at live, correctly laid out capset(2) structures (version 3 reads two data
    // words) for the duration of the call; the kernel only reads them.
    if unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)
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
    fn hidden_command_line_shows_only_the_new_name() {
        // In a child, so the test process keeps its own argv and environment.
        match fork().expect("fork") {
            Forked::Child => {
                let ok = hide_command_line("/proc", "/pause", c"pause").is_ok()
                    && fs::read("/proc/self/cmdline").is_ok_and(|c| {
                        c.split(|b| *b == 0)
                            .filter(|a| !a.is_empty())
                            .eq([b"/pause".as_slice()])
                    })
                    && fs::read("/proc/self/environ").is_ok_and(|e| e.iter().all(|b| *b == 0))
                    && fs::read_to_string("/proc/self/comm").is_ok_and(|c| c == "pause\n");
                // Leave without returning into the test harness.
                std::process::exit(if ok { 0 } else { 1 });
            }
            Forked::Parent(child) => {
                let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
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
