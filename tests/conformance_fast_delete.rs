//! Ports of test/e2e/common/node/pods_fast_delete.go ("Pods Fast Delete Pod Container Status") to `peapod
//! run`: pods whose only container (or init container) exits 1 are deleted after a random delay of up to
//! 2 s, and every status written meanwhile must be consistent: the exit code is 1 (or 137 when killed), a
//! terminated container never changes back, a terminal phase never reverts, the blocked app container never
//! starts, and a pod that is not terminal when it goes away was Pending with nothing running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::Cell;
use std::time::{Duration, Instant};

use common::builder::ContainerBuilder;
use common::{c, pod, st, Node};
use k8s_openapi::api::core::v1::ContainerStatus;
use peapod::api::PodGroup;
use serde_json::json;

const T: Duration = Duration::from_secs(60);
/// Upstream runs 3 workers of 15 pods each; 3 of 4 keeps the test short on a small machine.
const WORKERS: usize = 3;
const ITERATIONS: usize = 4;
const DELAY_MS: u64 = 2000;

/// Upstream's pod: `fail` exits 1, as an init container before `blocked` when `init`, else as the app.
fn manifest(name: &str, init: bool) -> String {
    let small =
        |c: ContainerBuilder| c.set("resources", json!({"requests": {"cpu": "5m", "memory": "10Mi"}}));
    let fail = small(c("fail").command(["/bin/false"]));
    let p = pod(name).label("name", "foo").restart_never().grace(1);
    let p = if init {
        p.init(fail).container(small(c("blocked").command(["/bin/true"])))
    } else {
        p.container(fail)
    };
    p.manifest()
}

/// A delay in [0, max) ms from the kernel's random bytes.
fn random_delay(max: u64) -> Duration {
    let mut b = [0u8; 8];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    Duration::from_millis(u64::from_le_bytes(b) % max)
}

/// Upstream `podStartVerifier`.
#[derive(Default)]
struct Verifier {
    has_init_containers: bool,
    has_containers: bool,
    has_terminated: bool,
    has_running_containers: bool,
    has_terminal_phase: bool,
}

impl Verifier {
    /// Upstream `Verify`, on one status.
    fn verify(&mut self, pod: &PodGroup, init: bool) -> Result<(), String> {
        let Some(status) = pod.status.as_ref().map(|s| &s.pod) else {
            return Ok(());
        };
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let inits = status.init_container_statuses.as_deref().unwrap_or_default();
        if init {
            if inits.is_empty() {
                if self.has_init_containers {
                    return Err(format!("pod {name} lost its init container statuses"));
                }
                return Ok(());
            }
            self.has_init_containers = true;
            if inits.len() != 1 {
                return Err(format!("pod {name} had incorrect init containers: {inits:?}"));
            }
        } else if !inits.is_empty() {
            return Err(format!("pod {name} had incorrect init containers: {inits:?}"));
        }
        let containers = status.container_statuses.as_deref().unwrap_or_default();
        if containers.is_empty() {
            if self.has_containers {
                return Err(format!("pod {name} lost its container statuses"));
            }
            return Ok(());
        }
        self.has_containers = true;
        if containers.len() != 1 {
            return Err(format!("pod {name} had incorrect containers: {containers:?}"));
        }
        if let Some(s) = st::try_container(pod, "blocked") {
            let state = s.state.clone().unwrap_or_default();
            if s.started == Some(true)
                || s.last_state.as_ref().is_some_and(|l| l.terminated.is_some())
                || state.waiting.is_none()
            {
                return Err(format!(
                    "pod {name} should not have started the blocked container: {s:?}"
                ));
            }
        }
        let s = st::try_container(pod, "fail")
            .ok_or_else(|| format!("pod {name} had incorrect containers: {status:?}"))?;
        self.verify_fail(name, s)?;
        if matches!(status.phase.as_deref(), Some("Failed" | "Succeeded")) {
            self.has_terminal_phase = true;
        } else if self.has_terminal_phase {
            return Err(format!(
                "pod {name} was in a terminal phase and then reverted: {status:?}"
            ));
        }
        Ok(())
    }

    /// Upstream `Verify` on the `fail` container's status: once terminated it stays so, with exit code 1
    /// (or 137 when lost or killed) and a plausible start and finish.
    fn verify_fail(&mut self, name: &str, s: &ContainerStatus) -> Result<(), String> {
        let state = s.state.clone().unwrap_or_default();
        let t = state.terminated.clone();
        if self.has_terminated {
            if state.waiting.is_some() || state.running.is_some() {
                return Err(format!("pod {name} was terminated and then changed state: {s:?}"));
            }
            if t.is_none() {
                return Err(format!(
                    "pod {name} was terminated and then had termination cleared: {s:?}"
                ));
            }
        }
        self.has_running_containers = state.waiting.is_none() && t.is_none();
        if let Some(t) = t {
            self.has_terminated = true;
            let reason = t.reason.as_deref().unwrap_or("");
            let expected = t.exit_code == 1
                || (t.exit_code == 137 && matches!(reason, "ContainerStatusUnknown" | "Error"));
            if !expected {
                return Err(format!(
                    "pod {name} container unexpected exit code {}: reason={reason} message={:?}",
                    t.exit_code, t.message
                ));
            }
            if let (Some(f), Some(started)) = (&t.finished_at, &t.started_at) {
                if f.0.as_second() - started.0.as_second() > 3600 {
                    return Err(format!("pod {name} had a very long duration: {t:?}"));
                }
            }
            if t.finished_at.is_some() && t.started_at.is_none() {
                return Err(format!("pod {name} had finish time but not start time: {t:?}"));
            }
        }
        Ok(())
    }

    /// Upstream `VerifyFinal`, on the last status seen before the pod went away.
    fn verify_final(&self, last: Option<&PodGroup>) -> Vec<String> {
        let mut errs = Vec::new();
        let Some(pod) = last else { return errs };
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let status = pod.status.as_ref().map(|s| s.pod.clone()).unwrap_or_default();
        if !self.has_terminal_phase {
            let running: Vec<_> = status
                .container_statuses
                .iter()
                .flatten()
                .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
                .map(|c| c.name.clone())
                .collect();
            if !running.is_empty() {
                errs.push(format!("pod {name} did not reach a terminal phase before being deleted but had running containers: {running:?}"));
            } else if status.phase.is_some() && status.phase.as_deref() != Some("Pending") {
                errs.push(format!(
                    "pod {name} was not Pending but has no running containers: phase={:?}",
                    status.phase
                ));
            }
        }
        if self.has_running_containers {
            errs.push(format!(
                "pod {name} had running or unknown container status before being deleted: {:?}",
                status.container_statuses
            ));
        }
        errs
    }
}

/// One worker: creates pods one after another, deletes each after a random delay, and checks every status
/// written until it is gone.
fn worker(node: &Node, worker: usize, init: bool) -> (Vec<String>, usize) {
    let mut errs = Vec::new();
    let mut failed_seen = 0;
    for attempt in 0..ITERATIONS {
        let name = format!("pod-terminate-status-{worker}-{attempt}");
        let file = format!("{name}.yaml");
        node.apply(&file, &manifest(&name, init));
        let start = Instant::now();
        let delay = random_delay(DELAY_MS);
        let deleted: Cell<Option<Instant>> = Cell::new(None);
        let seen = Cell::new(false);
        let history = node.observe(&name, T, |p| {
            seen.set(seen.get() || p.is_some());
            if deleted.get().is_none() && start.elapsed() >= delay {
                node.delete(&file);
                deleted.set(Some(Instant::now()));
            }
            // Gone after deletion; a pod deleted before the supervisor read its manifest never appears.
            deleted
                .get()
                .is_some_and(|d| p.is_none() && (seen.get() || d.elapsed() > Duration::from_secs(3)))
        });
        failed_seen += usize::from(history.iter().any(|p| st::terminated(p, "fail").is_some()));
        let mut v = Verifier::default();
        match history.iter().try_for_each(|p| v.verify(p, init)) {
            Err(e) => errs.push(format!("t={delay:?}: {e}")),
            Ok(()) => errs.extend(
                v.verify_final(history.last())
                    .into_iter()
                    .map(|e| format!("t={delay:?}: {e}")),
            ),
        }
    }
    (errs, failed_seen)
}

fn create_and_test_pods_repeatedly(init: bool) {
    let mut node = Node::new();
    node.start();
    let results: Vec<(Vec<String>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let node = &node;
                s.spawn(move || worker(node, w, init))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let errs: Vec<&String> = results.iter().flat_map(|r| &r.0).collect();
    let errs: Vec<&str> = errs.iter().map(|e| e.as_str()).collect();
    assert!(errs.is_empty(), "{} errors:\n{}", errs.len(), errs.join("\n"));
    // Some pods lived long enough to report their failed container: the checks above had work to do.
    assert!(
        results.iter().map(|r| r.1).sum::<usize>() > 0,
        "no pod reported its container"
    );
    node.finish(T);
}

/// test/e2e/common/node/pods_fast_delete.go, "Pods Fast Delete Pod Container Status should never report
/// success for a pending container".
#[test]
fn should_never_report_success_for_a_pending_container() {
    create_and_test_pods_repeatedly(false);
}

/// test/e2e/common/node/pods_fast_delete.go, "Pods Fast Delete Pod Container Status should never report
/// container start when an init container fails".
#[test]
fn should_never_report_container_start_when_an_init_container_fails() {
    create_and_test_pods_repeatedly(true);
}
