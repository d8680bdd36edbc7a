//! Fault workload and invariant checker shared by the crash-point and chaos suites (standalone here; a
//! cluster variant feeds it the statuses it reads from the API server).
//!
//! Every container records each run it makes in a host directory mounted as a hostPath volume: a line in
//! `<pod>.<container>.runs` first thing, and a marker directory held while it runs (`mkdir` fails when an
//! instance of the same container still holds it: two instances at once). The invariants of issue 10 are
//! then checked from those files, the statuses seen while the supervisor was killed, and the instance
//! records on disk.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ContainerStatus;
use peapod::api::PodGroup;

mod plan;

pub use plan::{Kind, PodPlan, Rng};

/// The status of container `name` (init or regular).
pub use super::st::try_container as find;

pub(super) fn terminated_code(s: &ContainerStatus) -> Option<i32> {
    s.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code)
}

/// What the invariants found; every count but `pods` and `kills` must be zero.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Figures {
    /// Supervisor kills survived.
    pub kills: usize,
    /// Pods in the workload.
    pub pods: usize,
    /// Containers that ran twice at once, or a `Never` container that ran more than once.
    pub duplicates: usize,
    /// Exits not reported with the code the container exited with (or reported as unknown).
    pub lost_exits: usize,
    /// Restart counts that went back, or runs the restart count does not account for.
    pub miscounts: usize,
    /// Human-readable detail of every violation.
    pub violations: Vec<String>,
}

impl Figures {
    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    /// Prints the figures on one line (the soak's report).
    pub fn print(&self, seed: u64) {
        println!(
            "chaos seed={seed} kills={} pods={} duplicates={} lost_exits={} miscounts={}",
            self.kills, self.pods, self.duplicates, self.lost_exits, self.miscounts
        );
        for v in &self.violations {
            println!("  violation: {v}");
        }
    }
}

/// Restart counts seen so far, to prove they never go back.
#[derive(Debug, Default)]
pub struct History {
    restarts: HashMap<(String, String), i32>,
}

impl History {
    /// Records the statuses of `pods`, counting every restart count lower than one seen before.
    pub fn see(&mut self, pods: &[PodGroup], figures: &mut Figures) {
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let Some(st) = pod.status.as_ref() else { continue };
            let all = st.pod.container_statuses.iter().flatten();
            for s in all.chain(st.pod.init_container_statuses.iter().flatten()) {
                let seen = self.restarts.entry((name.clone(), s.name.clone())).or_insert(0);
                if s.restart_count < *seen {
                    figures.miscounts += 1;
                    figures.violation(format!(
                        "{name}/{}: restart count went back from {seen} to {}",
                        s.name, s.restart_count
                    ));
                }
                *seen = (*seen).max(s.restart_count);
            }
        }
    }
}

/// Exits recorded on disk: (container, attempt, exit code).
pub type Exits = Vec<(String, u32, i32)>;

/// Exit records on disk of the newest instance of each container of pod `uid`: (container, attempt, code).
pub fn exits_on_disk(state: &Path, uid: &str) -> Exits {
    let mut out = Vec::new();
    let containers = state.join("pods").join(uid).join("containers");
    for c in fs::read_dir(&containers).into_iter().flatten().flatten() {
        let name = c.file_name().to_string_lossy().into_owned();
        let newest = fs::read_dir(c.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .max();
        let Some(attempt) = newest else { continue };
        let exited = c.path().join(attempt.to_string()).join("exited.json");
        if let Ok(Some(v)) = peapod::sys::fs::read_json::<serde_json::Value>(&exited) {
            out.push((name, attempt, v["exitCode"].as_i64().unwrap_or(-1) as i32));
        }
    }
    out
}

/// Whether `pod`'s status reports every exit recorded on disk (`exits`) with its code.
pub fn reports_exits(pod: &PodGroup, exits: &[(String, u32, i32)]) -> bool {
    exits.iter().all(|(c, attempt, code)| {
        find(pod, c).is_some_and(|s| {
            let last = s.last_state.as_ref().and_then(|l| l.terminated.as_ref());
            // Terminated, or waiting to restart (backoff) with it as the last state; or restarted since.
            let shown = terminated_code(s) == Some(*code) || last.is_some_and(|t| t.exit_code == *code);
            (s.restart_count as u32 == *attempt && shown) || s.restart_count as u32 > *attempt
        })
    })
}

/// Checks the end state of the workload: runs recorded by the containers against the final statuses.
pub fn check_final(plans: &[PodPlan], pods: &HashMap<String, PodGroup>, runs: &Path, figures: &mut Figures) {
    for plan in plans {
        let Some(pod) = pods.get(&plan.name) else {
            figures.lost_exits += 1;
            figures.violation(format!("{}: no status", plan.name));
            continue;
        };
        for (c, want) in plan.containers() {
            let key = format!("{}/{c}", plan.name);
            let count = |suffix: &str| {
                fs::read_to_string(runs.join(format!("{}.{c}.{suffix}", plan.name)))
                    .map(|t| t.lines().count())
                    .unwrap_or(0)
            };
            let (ran, dups) = (count("runs"), count("dups"));
            if dups > 0 {
                figures.duplicates += dups;
                figures.violation(format!("{key}: {dups} runs while another instance ran"));
            }
            if plan.kind == Kind::Never && ran != 1 {
                figures.duplicates += ran.saturating_sub(1);
                figures.violation(format!("{key}: restartPolicy Never but ran {ran} times"));
            }
            let Some(s) = find(pod, c) else {
                figures.lost_exits += 1;
                figures.violation(format!("{key}: no container status"));
                continue;
            };
            if ran != s.restart_count as usize + 1 {
                figures.miscounts += 1;
                figures.violation(format!(
                    "{key}: ran {ran} times, restartCount {}",
                    s.restart_count
                ));
            }
            let term = s.state.as_ref().and_then(|st| st.terminated.as_ref());
            match (want, term) {
                (Some(code), Some(t))
                    if t.exit_code == code && t.reason.as_deref() != Some("ContainerStatusUnknown") => {}
                (None, None) if s.ready => {}
                _ => {
                    figures.lost_exits += 1;
                    figures.violation(format!("{key}: wanted exit {want:?}, status {:?}", s.state));
                }
            }
        }
    }
}

/// The host directory the workload records its runs in.
pub fn runs_dir(node_dir: &Path) -> PathBuf {
    node_dir.join("runs")
}

/// A round's start: the runs directory (created), `pods` random plans named `chaos-<i>` drawn from the seed,
/// empty figures for them, and the generator, which goes on to draw the kill intervals.
pub struct Round {
    pub runs: PathBuf,
    pub plans: Vec<PodPlan>,
    pub figures: Figures,
    pub rng: Rng,
}

impl Round {
    pub fn new(node_dir: &Path, pods: usize, seed: u64) -> Round {
        let runs = runs_dir(node_dir);
        fs::create_dir_all(&runs).unwrap();
        let mut rng = Rng::new(seed);
        let plans = (0..pods)
            .map(|i| PodPlan::random(&format!("chaos-{i}"), &mut rng))
            .collect();
        let figures = Figures {
            pods,
            ..Figures::default()
        };
        Round {
            runs,
            plans,
            figures,
            rng,
        }
    }
}

/// Whether the pod's sandbox is up (its `PodReadyToStartContainers` condition).
pub fn sandbox_up(pod: &PodGroup) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.pod.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "PodReadyToStartContainers" && c.status == "True")
}

/// How soon after a restart the status must report what the disk proves (issue 10).
pub const CONVERGE: std::time::Duration = std::time::Duration::from_secs(2);

/// The exits recorded on disk for every pod that has a status: (pod name, exits).
pub fn disk_truth(node: &super::Node) -> Vec<(String, Exits)> {
    disk_truth_of(&node.pods(), &node.state)
}

/// The exits recorded under the state directory `state` for each of `pods` (from any source: the
/// standalone status store or the API server).
pub fn disk_truth_of(pods: &[PodGroup], state: &Path) -> Vec<(String, Exits)> {
    pods.iter()
        .filter_map(|p| {
            let uid = p.metadata.uid.as_deref()?;
            Some((p.metadata.name.clone()?, exits_on_disk(state, uid)))
        })
        .collect()
}

/// Right after a restart: polls until every status reports the exits of `truth`, counting each pod that
/// does not within [`CONVERGE`] as a lost exit.
pub fn check_converges(node: &super::Node, truth: &[(String, Exits)], figures: &mut Figures) {
    check_converges_within(|| node.pods(), CONVERGE, truth, figures)
}

/// [`check_converges`] for statuses read by `list` (e.g. from the API server) within `bound`.
pub fn check_converges_within(
    list: impl Fn() -> Vec<PodGroup>,
    bound: std::time::Duration,
    truth: &[(String, Exits)],
    figures: &mut Figures,
) {
    let deadline = std::time::Instant::now() + bound;
    loop {
        let pods: HashMap<String, PodGroup> = list()
            .into_iter()
            .filter_map(|p| Some((p.metadata.name.clone()?, p)))
            .collect();
        let behind: Vec<_> = truth
            .iter()
            .filter(|(name, exits)| !pods.get(name).is_some_and(|p| reports_exits(p, exits)))
            .collect();
        if behind.is_empty() {
            return;
        }
        if std::time::Instant::now() >= deadline {
            figures.lost_exits += behind.len();
            for (name, exits) in behind {
                let shown: Vec<_> = pods
                    .get(name)
                    .and_then(|p| p.status.as_ref())
                    .map(|s| {
                        let all = s.pod.init_container_statuses.iter().flatten();
                        all.chain(s.pod.container_statuses.iter().flatten())
                            .map(|c| (c.name.clone(), c.restart_count, c.state.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                figures.violation(format!(
                    "{name}: not converged {bound:?} after restart: disk {exits:?}, status {shown:?}"
                ));
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits until every pod of `plans` is in its final state (or `timeout` passes), proving meanwhile that
/// restart counts never go back; returns the last statuses by name.
pub fn settle(
    node: &super::Node,
    plans: &[PodPlan],
    history: &mut History,
    figures: &mut Figures,
    timeout: std::time::Duration,
) -> HashMap<String, PodGroup> {
    settle_from(|| node.pods(), plans, history, figures, timeout)
}

/// [`settle`] for statuses read by `list` (e.g. from the API server).
pub fn settle_from(
    list: impl Fn() -> Vec<PodGroup>,
    plans: &[PodPlan],
    history: &mut History,
    figures: &mut Figures,
    timeout: std::time::Duration,
) -> HashMap<String, PodGroup> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let list = list();
        history.see(&list, figures);
        let pods: HashMap<String, PodGroup> = list
            .into_iter()
            .filter_map(|p| Some((p.metadata.name.clone()?, p)))
            .collect();
        let done = plans
            .iter()
            .all(|plan| pods.get(&plan.name).is_some_and(|p| plan.settled(p)));
        if done || std::time::Instant::now() >= deadline {
            return pods;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
