//! Container lifecycle around start and stop, as the kubelet's `startContainer` and `killContainer`
//! (pkg/kubelet/kuberuntime/kuberuntime_container.go) do it: the postStart hook after the start (its failure
//! kills the container: `FailedPostStartHook`, `PostStartHookError`), probes once the container runs, and
//! stopping with the preStop hook first, the grace period it leaves (never under 2 seconds), and native
//! sidecars stopped after the regular containers in reverse order (`terminationOrdering`).
//!
//! The worker decides what to stop; this module only carries it out and reports what happened as Events.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;
use nix::sys::signal::Signal;
use tokio::sync::watch;

use super::events::{Event, Recorder};
use super::probes::ProbeSubject;
use crate::runtime::container;
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::probe::{self, Target};
use crate::runtime::record::ProcessId;

/// The kubelet's minimum grace period when it stops a container (`minimumGracePeriodInSeconds`).
pub const MIN_GRACE: Duration = Duration::from_secs(2);

/// One container instance to stop.
#[derive(Debug, Clone)]
pub(super) struct StopJob {
    /// The instance's spec, when the pod still has it (its preStop hook).
    pub container: Option<Container>,
    /// Container name.
    pub name: String,
    /// OCI runtime id.
    pub id: String,
    /// The instance's shim.
    pub shim: ProcessId,
    /// The image's STOPSIGNAL.
    pub signal: Signal,
    /// Where hooks connect, and the event object.
    pub subject: ProbeSubject,
    /// Containers that must have stopped before this one gets its stop signal (sidecars).
    pub after: Vec<String>,
}

/// What stopping needs besides the jobs.
#[derive(Clone)]
pub(super) struct Stopper {
    pub cfg: RuntimeConfig,
    pub recorder: Arc<dyn Recorder>,
    /// The grace period as requested (the delete's or the spec's), before the 2-second floor.
    pub grace: Duration,
}

impl Stopper {
    /// Stops every job in parallel, sidecars waiting for their turn; returns when all have exited.
    pub async fn stop_all(&self, jobs: Vec<StopJob>) -> Vec<String> {
        let names: BTreeSet<String> = jobs.iter().map(|j| j.name.clone()).collect();
        let (left_tx, left_rx) = watch::channel(names);
        let left_tx = Arc::new(left_tx);
        let stops = jobs.into_iter().map(|job| {
            let left_tx = left_tx.clone();
            let left_rx = left_rx.clone();
            async move {
                let name = job.name.clone();
                let id = job.id.clone();
                self.stop(job, Some(left_rx)).await;
                left_tx.send_modify(|left| {
                    left.remove(&name);
                });
                id
            }
        });
        futures::future::join_all(stops).await
    }

    /// The kubelet's `killContainer` after its `Killing` event: preStop within the grace period, the wait
    /// for this container's turn, then the stop signal and SIGKILL once what is left (at least 2 seconds)
    /// has passed.
    pub async fn stop(&self, job: StopJob, turn: Option<watch::Receiver<BTreeSet<String>>>) {
        let begin = Instant::now();
        let pre_stop = job
            .container
            .as_ref()
            .and_then(|c| c.lifecycle.as_ref())
            .and_then(|l| l.pre_stop.as_ref());
        if let (Some(handler), false) = (pre_stop, self.grace.is_zero()) {
            let spec = job.container.clone().unwrap_or_default();
            let target = target(&self.cfg, &job.subject, &spec);
            // The handler stops itself at the limit (an exec is killed and reaped); the outer bound only
            // guards against a handler that does not.
            let hook = probe::hook(&target, handler, Some(self.grace));
            match tokio::time::timeout(self.grace + MIN_GRACE, hook).await {
                Ok(Ok(())) => {}
                Ok(Err(message)) if begin.elapsed() < self.grace => {
                    tracing::warn!(pod = %job.subject.pod.key(), container = %job.name, %message, "preStop hook failed");
                    // The kubelet keeps the handler's output out of the event: it may hold secrets.
                    let event = Event::warning("FailedPreStopHook", "PreStopHook failed");
                    self.recorder
                        .record(&job.subject.pod, event.on(job.subject.field_path.clone()));
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::info!(pod = %job.subject.pod.key(), container = %job.name, "preStop hook not completed in grace period");
                }
            }
        }
        if let (Some(mut turn), false) = (turn, job.after.is_empty()) {
            let left = self.grace.saturating_sub(begin.elapsed());
            let wait = turn.wait_for(|running| job.after.iter().all(|n| !running.contains(n)));
            let _ = tokio::time::timeout(left, wait).await;
        }
        let grace = self.grace.saturating_sub(begin.elapsed()).max(MIN_GRACE);
        container::stop(&self.cfg, &job.id, &job.shim, job.signal, grace).await;
    }
}

/// A probe or hook target for an instance.
pub(super) fn target<'a>(cfg: &'a RuntimeConfig, s: &'a ProbeSubject, c: &'a Container) -> Target<'a> {
    Target {
        cfg,
        container_id: &s.id,
        container: c,
        pod: &s.pod_name,
        netns: s.netns.as_deref(),
        pod_ip: s.pod_ip.as_deref(),
    }
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopper").field("grace", &self.grace).finish()
    }
}
