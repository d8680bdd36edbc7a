//! The events a pod worker emits, with the kubelet's reasons and messages, and the sink they go to.
//!
//! The standalone front end logs them; the cluster front end posts them as events.k8s.io/v1 Events. The
//! worker never waits on the sink.

use crate::api::PodGroup;

/// One event about a pod or one of its containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// The kubelet's reason (`Pulled`, `Created`, `Started`, `BackOff`, `Failed`, `Killing`, ...).
    pub reason: String,
    /// The kubelet's message.
    pub message: String,
    /// `spec.containers{name}` or `spec.initContainers{name}` for container events.
    pub field_path: Option<String>,
}

impl Event {
    /// A `Normal` event.
    pub fn normal(reason: &str, message: impl Into<String>) -> Self {
        Event {
            warning: false,
            reason: reason.to_string(),
            message: message.into(),
            field_path: None,
        }
    }

    /// A `Warning` event.
    pub fn warning(reason: &str, message: impl Into<String>) -> Self {
        Event {
            warning: true,
            reason: reason.to_string(),
            message: message.into(),
            field_path: None,
        }
    }

    /// The same event, about one container.
    pub fn on(mut self, field_path: String) -> Self {
        self.field_path = Some(field_path);
        self
    }
}

/// Where events go.
pub trait Recorder: Send + Sync {
    /// Records `event` about `pod`. Must not block.
    fn record(&self, pod: &PodGroup, event: Event);
}

/// A recorder that writes events to the log (standalone mode, tests).
#[derive(Debug, Default)]
pub struct LogRecorder;

impl Recorder for LogRecorder {
    fn record(&self, pod: &PodGroup, event: Event) {
        let kind = if event.warning { "Warning" } else { "Normal" };
        let object = event.field_path.as_deref().unwrap_or("");
        if event.warning {
            tracing::warn!(pod = %pod.key(), object, reason = %event.reason, message = %event.message, "{kind} event");
        } else {
            tracing::info!(pod = %pod.key(), object, reason = %event.reason, message = %event.message, "{kind} event");
        }
    }
}
