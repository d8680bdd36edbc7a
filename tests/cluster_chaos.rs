//! Random chaos in a cluster (issue 10): PodGroups (restart policies Never with an init container,
//! OnFailure, Always with a readiness probe) on one node whose `peapod agent` is SIGKILLed at random moments
//! against a real kube-apiserver. The seed is printed so a failure replays (`PEAPOD_CHAOS_SEED`). The
//! invariants of `common::chaos` are checked from the statuses read from the API server (restart counts
//! never go back at any poll; after each restart every exit on disk is reported within [`CONVERGE`]), from
//! the runs the containers record in a hostPath directory (every `Never` container ran once, no two
//! instances at once, every run counted), and from the node after a graceful cleanup (the PodGroups are
//! deleted, the agent releases them and stops, nothing is left behind).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::chaos::{self, Figures, History, PodPlan};
use common::cluster::{start_agent, ControlPlane, OneNode, NODE_A};
use common::wait_for;
use peapod::api::PodGroup;

/// The seed of the default round.
const SEED: u64 = 0x0c10_5eed;

/// How soon after an agent restart the API must show every exit on disk. Standalone allows 2 s; here a new
/// agent first builds its client, lists and watches the PodGroups and takes its node lease before the first
/// status write goes through the API server, on a 2-core machine shared with other tests: 5 s.
const CONVERGE: Duration = Duration::from_secs(5);

const NS: &str = "default";

/// The standalone workload as a PodGroup bound to `node-a`.
fn podgroup(plan: &PodPlan, runs: &Path) -> String {
    let pod = plan.yaml(runs);
    let head = "apiVersion: v1\nkind: Pod\nmetadata:\n";
    assert!(pod.starts_with(head), "the workload's manifest changed: {pod}");
    pod.replacen(
        head,
        &format!("apiVersion: peapod.dev/v1alpha1\nkind: PodGroup\nmetadata:\n  namespace: {NS}\n"),
        1,
    )
    .replacen("\nspec:\n", &format!("\nspec:\n  nodeName: {NODE_A}\n"), 1)
}

/// Every PodGroup of the namespace as the API server returns it.
fn podgroups(cp: &ControlPlane) -> Vec<PodGroup> {
    cp.items("podgroups", NS)
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("a PodGroup from the API"))
        .collect()
}

/// One round: `pods` PodGroups, `kills` agent SIGKILLs; returns the figures after the graceful cleanup.
fn chaos(pods: usize, kills: usize, seed: u64) -> Figures {
    println!("cluster chaos seed={seed} pods={pods} kills={kills} (replay: PEAPOD_CHAOS_SEED={seed})");
    let mut c = OneNode::up();
    let chaos::Round {
        runs,
        plans,
        mut figures,
        mut rng,
    } = chaos::Round::new(c.node.dir.path(), pods, seed);
    for p in &plans {
        c.cp.apply(&podgroup(p, &runs));
    }
    let mut history = History::default();
    // As in the standalone round, kills start once every sandbox is up: a kill inside sandbox creation can
    // still orphan the pause process (left to the sandbox work, see docs/reliability.md).
    wait_for("every sandbox to be up", Duration::from_secs(60), || {
        let up = podgroups(&c.cp).iter().filter(|p| chaos::sandbox_up(p)).count();
        (up == pods).then_some(())
    });
    let kubeconfig = c.cp.dir.path().join("agent.kubeconfig");
    for _ in 0..kills {
        let until = Instant::now() + Duration::from_millis(rng.between(500, 2000));
        while Instant::now() < until {
            history.see(&podgroups(&c.cp), &mut figures);
        }
        c.node.kill9();
        figures.kills += 1;
        let truth = chaos::disk_truth_of(&podgroups(&c.cp), &c.node.state);
        start_agent(&mut c.node, &kubeconfig, NODE_A);
        chaos::check_converges_within(|| podgroups(&c.cp), CONVERGE, &truth, &mut figures);
    }
    let last = chaos::settle_from(
        || podgroups(&c.cp),
        &plans,
        &mut history,
        &mut figures,
        Duration::from_secs(60),
    );
    chaos::check_final(&plans, &last, &runs, &mut figures);
    figures.print(seed);
    // The agent's log is kept only when something went wrong, for the replay of the printed seed.
    if !figures.violations.is_empty() {
        let log = std::env::temp_dir().join(format!("peapod-cluster-chaos-{seed}.log"));
        let _ = std::fs::write(&log, c.node.supervisor_log());
        println!("cluster chaos seed={seed} agent log: {}", log.display());
    }
    // Graceful cleanup: delete the PodGroups, the agent releases them and stops, the node is clean.
    c.finish();
    println!("cluster chaos seed={seed} leaks=0 (graceful cleanup left nothing behind)");
    figures
}

#[test]
fn random_agent_kills_keep_every_invariant() {
    let seed = std::env::var("PEAPOD_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SEED);
    let figures = chaos(6, 6, seed);
    assert!(
        figures.violations.is_empty(),
        "seed {seed}: {:#?}",
        figures.violations
    );
}
