//! The pod worker's lifecycle as an explicit state machine: the kubelet's pod worker states
//! (pkg/kubelet/pod_workers.go: `SyncPod`, `TerminatingPod`, `TerminatedPod`), plus the two a pod reaches
//! on its own before it is deleted: failing as a whole (`activeDeadlineSeconds`) and done (every container
//! finished for good under the restart policy, or stopped after the failure).
//!
//! ```text
//!            Fail                 Stopped
//!   Syncing ──────▶ Failing ───────────────────┐
//!      │ Stopped                               ▼
//!      ├───────────────────────────────────▶ Done ──┐
//!      │ Terminate          Stopped                 │ Terminate
//!      └──────────▶ Terminating ──────────▶ Terminated ◀┘
//! ```
//!
//! `Failing` also goes to `Terminating` on `Terminate`; `Fail` in any other state only records the failure
//! (once). The worker cleans up and exits in `Terminated`.
//!
//! Pure: no I/O, no clock. The worker holds one [`Lifecycle`] and changes it only through
//! [`Lifecycle::on`].

/// A pod-level failure: the pod's phase becomes `Failed` with this reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The status reason (`DeadlineExceeded`).
    pub reason: String,
    /// The status message.
    pub message: String,
}

/// Where a pod is in its life on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Lifecycle {
    /// Running the spec: containers start and restart under the restart policy.
    #[default]
    Syncing,
    /// The pod failed as a whole: everything stops, nothing starts.
    Failing {
        /// Why.
        failure: Failure,
    },
    /// Nothing runs and nothing will (terminal phase); the pod waits for its deletion.
    Done {
        /// The pod-level failure, if that is why it stopped (or one came later).
        failure: Option<Failure>,
    },
    /// Deletion requested: everything stops within the grace period.
    Terminating {
        /// The request's grace period in seconds; `None`: the spec's.
        grace: Option<i64>,
        /// A pod-level failure seen before or while terminating.
        failure: Option<Failure>,
    },
    /// Deleted and stopped: the worker cleans up and exits.
    Terminated {
        /// The request's grace period (a stop still in progress uses it).
        grace: Option<i64>,
        /// A pod-level failure seen before.
        failure: Option<Failure>,
    },
}

/// What moves a pod's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Deletion requested, with a grace period override (seconds).
    Terminate {
        /// The override; `None`: the spec's.
        grace: Option<i64>,
    },
    /// The pod failed as a whole; only the first failure counts.
    Fail(Failure),
    /// A sync left nothing running, sandbox included, and the pod is to stay stopped (see
    /// [`crate::pod::plan::stopped_for_good`]).
    Stopped,
}

impl Lifecycle {
    /// The state after `t`. The only place a pod's lifecycle changes.
    pub fn on(self, t: Transition) -> Lifecycle {
        use Lifecycle::*;
        match (self, t) {
            (Syncing, Transition::Terminate { grace }) => Terminating { grace, failure: None },
            (Failing { failure }, Transition::Terminate { grace }) => Terminating {
                grace,
                failure: Some(failure),
            },
            (Done { failure }, Transition::Terminate { grace }) => Terminated { grace, failure },
            (Syncing, Transition::Fail(failure)) => Failing { failure },
            (Done { failure: None }, Transition::Fail(f)) => Done { failure: Some(f) },
            (Terminating { grace, failure: None }, Transition::Fail(f)) => Terminating {
                grace,
                failure: Some(f),
            },
            (Terminated { grace, failure: None }, Transition::Fail(f)) => Terminated {
                grace,
                failure: Some(f),
            },
            (Syncing, Transition::Stopped) => Done { failure: None },
            (Failing { failure }, Transition::Stopped) => Done {
                failure: Some(failure),
            },
            (Terminating { grace, failure }, Transition::Stopped) => Terminated { grace, failure },
            // Terminating again keeps the first grace period; a second failure is not recorded; a stopped
            // pod stays stopped.
            (state, _) => state,
        }
    }

    /// Stop everything and start nothing: deletion requested, or the pod failed.
    pub fn stopping(&self) -> bool {
        match self {
            Lifecycle::Syncing => false,
            Lifecycle::Done { failure } => failure.is_some(),
            Lifecycle::Failing { .. } | Lifecycle::Terminating { .. } | Lifecycle::Terminated { .. } => true,
        }
    }

    /// Deletion requested.
    pub fn terminating(&self) -> bool {
        matches!(self, Lifecycle::Terminating { .. } | Lifecycle::Terminated { .. })
    }

    /// Stopped for good: the pod's phase is terminal.
    pub fn terminal(&self) -> bool {
        matches!(self, Lifecycle::Done { .. } | Lifecycle::Terminated { .. })
    }

    /// Deleted and stopped: time to clean up.
    pub fn finished(&self) -> bool {
        matches!(self, Lifecycle::Terminated { .. })
    }

    /// The pod-level failure, if any.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Lifecycle::Syncing => None,
            Lifecycle::Failing { failure } => Some(failure),
            Lifecycle::Done { failure }
            | Lifecycle::Terminating { failure, .. }
            | Lifecycle::Terminated { failure, .. } => failure.as_ref(),
        }
    }

    /// The deletion's grace period override (seconds).
    pub fn grace(&self) -> Option<i64> {
        match self {
            Lifecycle::Terminating { grace, .. } | Lifecycle::Terminated { grace, .. } => *grace,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
