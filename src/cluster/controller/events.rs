//! Events as the kubelet posts them: the pod workers' events go through a channel to a task that publishes
//! events.k8s.io/v1 Events (kube-runtime's `Recorder`, which aggregates repeats into series). The workers
//! never wait for the API; while it is down, events are logged and the oldest are dropped.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder as KubeRecorder, Reporter};
use kube::{Client, Resource};
use tokio::sync::mpsc;

use crate::api::PodGroup;
use crate::pod::events::{Event, LogRecorder, Recorder};

/// Events waiting to be published, at most.
const QUEUE: usize = 1024;

/// A [`Recorder`] that publishes to the API server.
pub struct ApiRecorder {
    tx: mpsc::Sender<(ObjectReference, Event)>,
}

impl ApiRecorder {
    /// Starts the publishing task; `component` is the reporting controller (`peapod`, `peapod-scheduler`)
    /// and `instance` the node.
    pub fn start(client: Client, component: &str, instance: &str) -> Self {
        let (tx, mut rx) = mpsc::channel::<(ObjectReference, Event)>(QUEUE);
        let reporter = Reporter {
            controller: component.to_string(),
            instance: Some(instance.to_string()),
        };
        let recorder = KubeRecorder::new(client, reporter);
        tokio::spawn(async move {
            while let Some((reference, event)) = rx.recv().await {
                let ev = KubeEvent {
                    type_: if event.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: event.reason.clone(),
                    note: Some(truncate(&event.message, 1024)),
                    action: event.reason.clone(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&ev, &reference).await {
                    tracing::debug!(error = %e, reason = %event.reason, "failed to publish event");
                }
            }
        });
        ApiRecorder { tx }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The object reference of a PodGroup, or of one of its containers (`fieldPath`).
pub fn reference(pod: &PodGroup, field_path: Option<&str>) -> ObjectReference {
    let mut r = pod.object_ref(&());
    r.field_path = field_path.map(String::from);
    r
}

impl Recorder for ApiRecorder {
    fn record(&self, pod: &PodGroup, event: Event) {
        LogRecorder.record(pod, event.clone());
        let reference = reference(pod, event.field_path.as_deref());
        if self.tx.try_send((reference, event)).is_err() {
            tracing::warn!(pod = %pod.key(), "event queue full, dropping an event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
