//! Container probes as the kubelet's prober workers run them (pkg/kubelet/prober/worker.go): one task per
//! probe of a running instance, probing every `periodSeconds` from `initialDelaySeconds` after the start,
//! counting consecutive results against the thresholds, and reporting a result to the worker only when it
//! changes. Startup gates liveness and readiness; a liveness or startup failure puts the probe on hold
//! until the instance is replaced. `Unhealthy` and `ProbeWarning` events are recorded here.
//!
//! This module only observes: killing and restarting is the plan's decision, from what the worker keeps
//! in [`Probes`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::events::Event;
use super::view::{FailedProbe, ProbeView};
use super::worker::{Context, Msg};
use crate::api::PodGroup;
use crate::runtime::probe::{self, Outcome, Target};

/// The three probe kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `livenessProbe`.
    Liveness,
    /// `readinessProbe`.
    Readiness,
    /// `startupProbe`.
    Startup,
}

impl Kind {
    /// The word the kubelet's events use.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }

    /// The probe of this kind in `c`.
    pub fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            Kind::Liveness => c.liveness_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
            Kind::Startup => c.startup_probe.as_ref(),
        }
    }
}

/// Where an instance's probes connect and what they report about.
#[derive(Debug, Clone)]
pub struct ProbeSubject {
    /// The pod (events are recorded on it).
    pub pod: Arc<PodGroup>,
    /// The container's spec.
    pub container: Container,
    /// `spec.containers{name}` or `spec.initContainers{name}`.
    pub field_path: String,
    /// OCI runtime id of the instance.
    pub id: String,
    /// When the instance started.
    pub started_at: Timestamp,
    /// The sandbox's network namespace (`None`: host network).
    pub netns: Option<PathBuf>,
    /// The pod's first IP.
    pub pod_ip: Option<String>,
    /// The kubelet's `format.Pod`.
    pub pod_name: String,
}

/// Probe state of one running instance.
#[derive(Debug)]
struct InstanceProbes {
    has_startup: bool,
    has_readiness: bool,
    started: bool,
    ready: bool,
    failed: Option<FailedProbe>,
    started_tx: watch::Sender<bool>,
    tasks: Vec<(Kind, JoinHandle<()>)>,
}

impl Drop for InstanceProbes {
    fn drop(&mut self) {
        for (_, t) in &self.tasks {
            t.abort();
        }
    }
}

/// The probe results of a pod's running instances, kept by its worker.
#[derive(Debug, Default)]
pub struct Probes {
    instances: HashMap<String, InstanceProbes>,
}

impl Probes {
    /// Starts the probe tasks of a newly running instance. `known` carries what the last reported status
    /// said of this very instance (started, ready) so that a restarted supervisor does not flap readiness.
    pub fn start(
        &mut self,
        ctx: &Arc<Context>,
        tx: &mpsc::UnboundedSender<Msg>,
        subject: ProbeSubject,
        known: (bool, bool),
    ) {
        let c = &subject.container;
        let has_startup = c.startup_probe.is_some();
        let has_readiness = c.readiness_probe.is_some();
        let started = !has_startup || known.0;
        let (started_tx, started_rx) = watch::channel(started);
        let mut state = InstanceProbes {
            has_startup,
            has_readiness,
            started,
            ready: known.1,
            failed: None,
            started_tx,
            tasks: Vec::new(),
        };
        let subject = Arc::new(subject);
        for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
            let Some(spec) = kind.of(&subject.container).cloned() else {
                continue;
            };
            if kind == Kind::Startup && started {
                continue;
            }
            let reported = (kind == Kind::Readiness).then_some(known.1);
            let task = tokio::spawn(run(
                ctx.clone(),
                tx.clone(),
                subject.clone(),
                kind,
                spec,
                started_rx.clone(),
                reported,
            ));
            state.tasks.push((kind, task));
        }
        self.instances.insert(subject.id.clone(), state);
    }

    /// Stops the probes of an instance that exited or was killed.
    pub fn stop(&mut self, id: &str) {
        self.instances.remove(id);
    }

    /// Stops the liveness and startup probes of every instance: the pod is terminating.
    pub fn stop_liveness(&mut self) {
        for state in self.instances.values_mut() {
            state.tasks.retain(|(kind, task)| {
                let keep = *kind == Kind::Readiness;
                if !keep {
                    task.abort();
                }
                keep
            });
        }
    }

    /// Applies a result reported by a probe task. Returns whether anything changed.
    pub fn apply(&mut self, id: &str, kind: Kind, result: ProbeResult) -> bool {
        let Some(state) = self.instances.get_mut(id) else {
            return false;
        };
        match (kind, result) {
            (Kind::Readiness, r) => state.ready = r == ProbeResult::Success,
            (Kind::Startup, ProbeResult::Success) => {
                state.started = true;
                let _ = state.started_tx.send(true);
            }
            (Kind::Liveness, ProbeResult::Failed) => state.failed = Some(FailedProbe::Liveness),
            (Kind::Startup, ProbeResult::Failed) => state.failed = Some(FailedProbe::Startup),
            _ => return false,
        }
        true
    }

    /// The view the plan and status read, for the instances in `running`.
    pub fn view<'a>(&self, running: impl Iterator<Item = &'a str>) -> ProbeView {
        let mut view = ProbeView::default();
        for id in running {
            let Some(state) = self.instances.get(id) else {
                // Running without tracked probes (a start in progress): no probes have spoken yet.
                continue;
            };
            let started = !state.has_startup || state.started;
            if started {
                view.started.insert(id.to_string());
                if !state.has_readiness || state.ready {
                    view.ready.insert(id.to_string());
                }
            }
            if let Some(failed) = state.failed {
                view.failed.insert(id.to_string(), failed);
            }
        }
        view
    }
}

/// A result that changed, as a probe task reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// The probe reached its success threshold.
    Success,
    /// Readiness reached its failure threshold.
    NotReady,
    /// Liveness or startup reached its failure threshold: the instance must be killed.
    Failed,
}

fn seconds(v: Option<i32>, default: i32, min: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(min) as u64)
}

/// One probe's loop (the kubelet's `worker.doProbe`): consecutive equal results are counted, a result is
/// reported when it reaches its threshold and differs from the last one reported.
async fn run(
    ctx: Arc<Context>,
    tx: mpsc::UnboundedSender<Msg>,
    subject: Arc<ProbeSubject>,
    kind: Kind,
    spec: Probe,
    mut started: watch::Receiver<bool>,
    mut reported: Option<bool>,
) {
    if kind != Kind::Startup && started.wait_for(|s| *s).await.is_err() {
        return;
    }
    let delay = seconds(spec.initial_delay_seconds, 0, 0);
    let since_start = Timestamp::now()
        .duration_since(subject.started_at)
        .try_into()
        .unwrap_or(Duration::ZERO);
    if let Some(wait) = delay.checked_sub(since_start) {
        tokio::time::sleep(wait).await;
    }
    let mut ticker = tokio::time::interval(seconds(spec.period_seconds, 10, 1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let success_threshold = spec.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = spec.failure_threshold.unwrap_or(3).max(1);
    let (mut last, mut run_len) = (None, 0);
    loop {
        ticker.tick().await;
        let Some(success) = attempt(&ctx, &subject, kind, &spec).await else {
            continue;
        };
        if last == Some(success) {
            run_len += 1;
        } else {
            (last, run_len) = (Some(success), 1);
        }
        if run_len
            < if success {
                success_threshold
            } else {
                failure_threshold
            }
        {
            continue;
        }
        if reported != Some(success) {
            reported = Some(success);
            let result = match (kind, success) {
                (_, true) => ProbeResult::Success,
                (Kind::Readiness, false) => ProbeResult::NotReady,
                (_, false) => ProbeResult::Failed,
            };
            let msg = Msg::Probe {
                id: subject.id.clone(),
                kind,
                result,
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
        // A failed liveness or startup probe holds until the instance is replaced; a started container
        // is not probed for startup again.
        if (!success && kind != Kind::Readiness) || (success && kind == Kind::Startup) {
            return;
        }
    }
}

/// One probe attempt with its events; `None` when the result is unknown (thrown away, as the kubelet does).
async fn attempt(ctx: &Context, subject: &ProbeSubject, kind: Kind, spec: &Probe) -> Option<bool> {
    let target = Target {
        cfg: &ctx.runtime,
        container_id: &subject.id,
        container: &subject.container,
        pod: &subject.pod_name,
        netns: subject.netns.as_deref(),
        pod_ip: subject.pod_ip.as_deref(),
    };
    let outcome = probe::probe(&target, spec).await;
    let event = |reason: &str, message: String| {
        let event = Event::warning(reason, message).on(subject.field_path.clone());
        ctx.recorder.record(&subject.pod, event);
    };
    match outcome {
        Outcome::Success => Some(true),
        Outcome::Warning(output) => {
            event("ProbeWarning", format!("{} probe warning: {output}", kind.word()));
            Some(true)
        }
        Outcome::Failure(output) => {
            event("Unhealthy", format!("{} probe failed: {output}", kind.word()));
            Some(false)
        }
        Outcome::Unknown(error) => {
            event(
                "Unhealthy",
                format!(
                    "{} probe errored and resulted in unknown state: {error}",
                    kind.word()
                ),
            );
            None
        }
    }
}
