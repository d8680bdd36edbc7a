//! Crash points (issue 10): the supervisor SIGKILLs itself at a named point of a start, a stop or a
//! record write (`PEAPOD_CRASH_AT`, see `sys::crash`); a plain supervisor then restarts and the invariants
//! must hold: every `Never` container ran exactly once, its exit code is reported within 2 s of the restart
//! when the disk has it, nothing ran twice at once, and a graceful stop leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::chaos::{self, Figures, History, Kind, PodPlan};
use common::{st, wait_for, Node, BUSYBOX};

const T: Duration = Duration::from_secs(60);

fn plan(kind: Kind) -> PodPlan {
    PodPlan {
        name: "cp".into(),
        kind,
        sleep: 2,
        exit_code: 3,
    }
}

/// Runs `plan` under a supervisor armed with `point`, waits for it to crash there, restarts, and checks.
fn crash_at(point: &str, plan: PodPlan) {
    let mut node = Node::new();
    let runs = chaos::runs_dir(node.dir.path());
    std::fs::create_dir_all(&runs).unwrap();
    node.apply("cp.yaml", &plan.yaml(&runs));
    node.start_env(&[("PEAPOD_CRASH_AT", point.as_ref())]);
    let status = node.wait_exit(T);
    assert_eq!(
        status.signal(),
        Some(9),
        "the supervisor crashed at {point}: {status:?}"
    );
    restart_and_check(&mut node, &[plan]);
}

fn restart_and_check(node: &mut Node, plans: &[PodPlan]) {
    restart_and_settle(node, plans);
    assert!(node.stop(T).success());
    node.assert_clean();
}

/// Restarts a plain supervisor and checks the invariants once `plans` have settled.
fn restart_and_settle(node: &mut Node, plans: &[PodPlan]) {
    let runs = chaos::runs_dir(node.dir.path());
    let mut figures = Figures::default();
    let mut history = History::default();
    let truth = chaos::disk_truth(node);
    node.start();
    chaos::check_converges(node, &truth, &mut figures);
    let pods = chaos::settle(node, plans, &mut history, &mut figures, T);
    chaos::check_final(plans, &pods, &runs, &mut figures);
    assert!(
        figures.violations.is_empty(),
        "violations: {:#?}\nsupervisor log:\n{}",
        figures.violations,
        node.supervisor_log()
    );
}

#[test]
fn crash_after_the_sandbox_is_created() {
    crash_at("sandbox-created", plan(Kind::Never));
}

#[test]
fn crash_after_the_instance_record() {
    crash_at("instance-recorded", plan(Kind::Never));
}

#[test]
fn crash_after_the_shim_config() {
    crash_at("shim-config-written", plan(Kind::Never));
}

#[test]
fn crash_between_the_shim_spawn_and_its_record() {
    crash_at("shim-forked", plan(Kind::Never));
}

#[test]
fn crash_right_after_the_shim_is_spawned() {
    crash_at("shim-spawned", plan(Kind::Never));
}

#[test]
fn crash_of_the_second_start_right_after_the_shim_is_spawned() {
    crash_at("shim-spawned:2", plan(Kind::Never));
}

#[test]
fn crash_between_runc_create_and_start() {
    crash_at("runc-created", plan(Kind::Never));
}

#[test]
fn crash_after_the_container_started() {
    crash_at("container-started", plan(Kind::Never));
}

#[test]
fn crash_when_an_exit_reaches_the_worker() {
    crash_at("exit-seen", plan(Kind::Never));
}

#[test]
fn crash_mid_write_of_the_second_instance_record() {
    crash_at("atomic-write=instance.json:2", plan(Kind::Never));
}

#[test]
fn crash_mid_write_of_a_pod_checkpoint() {
    crash_at("atomic-write=pod.json:3", plan(Kind::Never));
}

#[test]
fn crash_mid_graceful_stop_between_containers_and_sandbox() {
    let plan = plan(Kind::Always);
    let mut node = Node::new();
    let runs = chaos::runs_dir(node.dir.path());
    std::fs::create_dir_all(&runs).unwrap();
    node.apply("cp.yaml", &plan.yaml(&runs));
    node.start_env(&[("PEAPOD_CRASH_AT", "containers-stopped".as_ref())]);
    node.wait_pod("cp", "ready", T, |p| plan.settled(p));
    let status = node.stop(T);
    assert_eq!(
        status.signal(),
        Some(9),
        "the supervisor crashed mid-stop: {status:?}"
    );
    // The stopped container restarts (Always): the restart count must account for both runs.
    restart_and_check(&mut node, &[plan]);
}

/// This node's helpers that are stopped (state `T`).
fn stalled_helpers(node: &Node) -> Vec<i32> {
    node.helper_pids()
        .into_iter()
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
            state == Some('T')
        })
        .collect()
}

/// The supervisor killed once a shim has recorded its container's exit, the shim still there, not yet
/// released and gone (it stalls at that point, as a shim descheduled on a loaded node lingers). The restart
/// takes the exit from disk and has no shim to wait for; the graceful stop must still leave no pod cgroup.
/// Before, the cleanup found that shim in the pod's `helpers` cgroup and could not remove it, and once the
/// shim went on and exited, `pod<uid>` and its `helpers` child were left empty: the full soak's leak.
#[test]
fn crash_after_a_shim_recorded_an_exit_leaves_no_pod_cgroup() {
    let plan = plan(Kind::Never);
    let mut node = Node::new();
    let runs = chaos::runs_dir(node.dir.path());
    std::fs::create_dir_all(&runs).unwrap();
    node.apply("cp.yaml", &plan.yaml(&runs));
    node.start_env(&[("PEAPOD_CRASH_AT", "exit-recorded".as_ref())]);
    let status = node.wait_exit(T);
    assert_eq!(
        status.signal(),
        Some(9),
        "the supervisor crashed at exit-recorded: {status:?}"
    );
    wait_for("the shim to stall after its exit record", T, || {
        (!stalled_helpers(&node).is_empty()).then_some(())
    });
    restart_and_settle(&mut node, &[plan]);
    assert!(node.stop(T).success());
    // A shim the stop left alive goes on now, releases its container and exits, as it would have anyway.
    for pid in stalled_helpers(&node) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGCONT);
    }
    node.assert_clean();
}

/// The supervisor killed between the last two steps of a deleted pod's cleanup (its cgroup and its
/// directory). The restart must finish the cleanup: no pod cgroup is left once it stops. Before, the
/// directory went first, so the restarted supervisor knew nothing of the pod and its cgroup stayed for good.
#[test]
fn crash_between_a_deleted_pods_cgroup_and_directory_removal_leaves_no_pod_cgroup() {
    let plan = plan(Kind::Always);
    let mut node = Node::new();
    let runs = chaos::runs_dir(node.dir.path());
    std::fs::create_dir_all(&runs).unwrap();
    node.apply("cp.yaml", &plan.yaml(&runs));
    node.start_env(&[("PEAPOD_CRASH_AT", "pod-cleanup".as_ref())]);
    node.wait_pod("cp", "ready", T, |p| plan.settled(p));
    node.delete("cp.yaml");
    let status = node.wait_exit(T);
    assert_eq!(
        status.signal(),
        Some(9),
        "the supervisor crashed mid-cleanup: {status:?}"
    );
    node.start();
    wait_for("the restarted supervisor to finish the cleanup", T, || {
        let up = node.supervisor_log().matches("peapod run started").count() == 2;
        let left = std::fs::read_dir(node.state.join("pods")).map_or(0, |d| d.count());
        (up && left == 0).then_some(())
    });
    assert!(node.stop(T).success());
    node.assert_clean();
}

/// Two `Never` containers recording their runs in a hostPath volume.
fn two_writers(runs: &std::path::Path) -> String {
    let c = |name: &str| {
        format!(
            "  - name: {name}\n    image: {BUSYBOX}\n    command: [sh, -c, 'echo run >> /runs/{name}.runs']\n    volumeMounts: [{{name: runs, mountPath: /runs}}]\n"
        )
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: vol\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 2\n  volumes:\n  - name: runs\n    hostPath: {{path: {}, type: DirectoryOrCreate}}\n  containers:\n{}{}",
        runs.display(),
        c("a"),
        c("b")
    )
}

/// A restart that re-prepares an adopted pod's volumes must not take a staged hostPath away from a container
/// being created meanwhile. The first supervisor dies while `a`'s shim is about to run `runc create` (the shim
/// stalls there); the second, starting `b`, re-prepares the volumes and is killed if it ever unmounts a staged
/// volume (`volume-unstaged`); `a`'s shim then goes on. Before, re-preparing unmounted each staging mount and
/// bound it again, and a `runc create` in between bound the empty staging directory: `a` ran with its exit
/// code but without its volume (a full soak round showed a `Never` container that "ran 0 times").
#[test]
fn a_container_created_while_a_restart_prepares_volumes_gets_its_volume() {
    let mut node = Node::new();
    let runs = chaos::runs_dir(node.dir.path());
    std::fs::create_dir_all(&runs).unwrap();
    node.apply("vol.yaml", &two_writers(&runs));
    node.start_env(&[("PEAPOD_CRASH_AT", "runc-creating".as_ref())]);
    let status = node.wait_exit(T);
    assert_eq!(status.signal(), Some(9), "crashed at runc-creating: {status:?}");
    wait_for("a's shim to stall before runc create", T, || {
        (!stalled_helpers(&node).is_empty()).then_some(())
    });
    node.start_env(&[("PEAPOD_CRASH_AT", "volume-unstaged".as_ref())]);
    let b_ran = runs.join("b.runs");
    let unstaged = wait_for(
        "the restart to start b, or to die with a volume unstaged",
        T,
        || {
            if b_ran.exists() {
                return Some(false);
            }
            let log = node.supervisor_log();
            let died = node.supervisor_pid().is_some_and(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
            });
            (died && log.matches("peapod run started").count() == 2).then_some(true)
        },
    );
    for pid in stalled_helpers(&node) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGCONT);
    }
    if unstaged {
        node.wait_exit(T);
        node.start();
    }
    node.wait_pod("vol", "both containers done", T, |p| {
        st::terminated(p, "a").is_some() && st::terminated(p, "b").is_some()
    });
    for c in ["a", "b"] {
        let lines = std::fs::read_to_string(runs.join(format!("{c}.runs"))).unwrap_or_default();
        assert_eq!(lines.lines().count(), 1, "{c} ran once, with its volume");
    }
    let starts = if unstaged { 3 } else { 2 };
    wait_for("the last supervisor to start", T, || {
        (node.supervisor_log().matches("peapod run started").count() == starts).then_some(())
    });
    assert!(node.stop(T).success());
    node.assert_clean();
}
