//! Crash points for fault tests: with `PEAPOD_CRASH_AT=<point>[:<n>]` set, the process SIGKILLs itself the
//! n-th time (first by default) it reaches the named point, so a test can stop the supervisor between any
//! two steps of a start, a stop or a record write and prove that recovery converges. Compiled in always and
//! inert unless the variable is set (one atomic load per point then). It must not do anything else: no
//! logging, no cleanup, nothing a real SIGKILL would not do.
//!
//! Points (each named where it is reached): `instance-recorded`, `shim-config-written`, `shim-forked`
//! (spawned, not yet recorded: only its lock and its own record prove it), `shim-spawned`,
//! `container-started` (container start, `runtime::container`), `runc-created` (the shim kills its parent,
//! the supervisor, between `runc create` and `runc start`), `sandbox-created`, `containers-stopped` and
//! `pod-cleanup` (pod worker; the last between a pod's cgroup removal and its directory's), `exit-seen` (a
//! shim's exit reached the worker), `atomic-write` (between fsync and rename of any record, checkpoint or
//! status file; `atomic-write=<file name>` for one file name only), `exit-recorded` (the shim kills its
//! supervisor once it has recorded its container's exit, then stops itself before it releases the container
//! and exits, as a shim descheduled on a loaded node lingers; SIGCONT resumes it), `runc-creating` (the same
//! for a shim about to run `runc create`), `cni-added` (CNI client, in the middle of an ADD: the plugins
//! have attached the sandbox, the attachment is not cached yet), `volume-unstaged` (a hostPath staging mount
//! taken away before it is bound again).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

use nix::sys::signal::{kill, Signal};
use nix::unistd::{getpid, getppid, Pid};

/// The environment variable that arms a crash point.
pub const ENV: &str = "PEAPOD_CRASH_AT";

/// The armed point and the visit that fires it, parsed once.
fn armed() -> Option<&'static (String, u32)> {
    static ARMED: OnceLock<Option<(String, u32)>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var(ENV).ok().and_then(|v| parse(&v)))
        .as_ref()
}

/// Parses `<point>[:<n>]` (n ≥ 1).
fn parse(value: &str) -> Option<(String, u32)> {
    let value = value.trim();
    let (name, n) = match value.rsplit_once(':') {
        Some((name, n)) => (name, n.parse::<u32>().ok().filter(|n| *n >= 1)?),
        None => (value, 1),
    };
    (!name.is_empty()).then(|| (name.to_string(), n))
}

/// Set in helper processes (pause, shim): they inherit the supervisor's environment, but only
/// [`kill_parent_at`] points fire in them, and only [`point`]s fire in the supervisor.
static HELPER: AtomicBool = AtomicBool::new(false);

/// Marks this process as a helper (see [`HELPER`]).
pub fn helper_process() {
    HELPER.store(true, Ordering::SeqCst);
}

/// Whether this visit of `name` is the one that must crash.
fn fires(name: &str) -> bool {
    static VISITS: AtomicU32 = AtomicU32::new(0);
    match armed() {
        Some((point, n)) if point == name => VISITS.fetch_add(1, Ordering::SeqCst) + 1 == *n,
        _ => false,
    }
}

/// SIGKILLs this process if `name` is the armed point and this is its n-th visit.
pub fn point(name: &str) {
    if !HELPER.load(Ordering::Relaxed) && fires(name) {
        let _ = kill(getpid(), Signal::SIGKILL);
    }
}

/// [`point`] for a point reached with a detail (the file name of an atomic write): `<name>` arms it for every
/// detail, `<name>=<detail>` for that one only.
pub fn point_at(name: &str, detail: &str) {
    if HELPER.load(Ordering::Relaxed) {
        return;
    }
    let Some((armed, _)) = armed() else { return };
    let scoped = armed
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
        .is_some_and(|d| d == detail);
    if scoped {
        if fires(armed) {
            let _ = kill(getpid(), Signal::SIGKILL);
        }
    } else {
        point(name);
    }
}

/// SIGKILLs the parent process at point `name` if it is still `spawner` (the supervisor that spawned this
/// helper; once it is gone the parent is a reaper that must live).
pub fn kill_parent_at(name: &str, spawner: Pid) {
    if HELPER.load(Ordering::Relaxed) && fires(name) && getppid() == spawner {
        let _ = kill(spawner, Signal::SIGKILL);
    }
}

/// [`kill_parent_at`], then, if it fired, stops this process (SIGSTOP) where it is, so a test can restart the
/// supervisor while this helper still lives; a SIGCONT (or SIGKILL) ends the stall.
pub fn kill_parent_and_stall_at(name: &str, spawner: Pid) {
    if HELPER.load(Ordering::Relaxed) && fires(name) && getppid() == spawner {
        let _ = kill(spawner, Signal::SIGKILL);
        let _ = kill(getpid(), Signal::SIGSTOP);
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn points_parse_with_an_optional_visit_count() {
        assert_eq!(parse("shim-spawned"), Some(("shim-spawned".into(), 1)));
        assert_eq!(parse("atomic-write:7"), Some(("atomic-write".into(), 7)));
        assert_eq!(
            parse("atomic-write=pod.json:3"),
            Some(("atomic-write=pod.json".into(), 3))
        );
        assert_eq!(parse("atomic-write:0"), None);
        assert_eq!(parse("x:y"), None);
        assert_eq!(parse(""), None);
    }
}
