//! Crash points (issue 10): the supervisor SIGKILLs itself at a named point of a start, a stop or a
//! record write (`PEAPOD_CRASH_AT`, see `sys::crash`); a plain supervisor then restarts and the invariants
//! must hold: every `Never` container ran exactly once, its exit code is reported within 2 s of the restart
//! when the disk has it, nothing ran twice at once, and a graceful stop leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::chaos::{self, Figures, History, Kind, PodPlan};
use common::Node;

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
    assert!(node.stop(T).success());
    node.assert_clean();
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
