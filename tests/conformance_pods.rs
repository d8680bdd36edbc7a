//! Ports of test/e2e/common/node/pods.go ("Pods") to `peapod run`: graceful deletion of a running pod,
//! activeDeadlineSeconds set on a running pod, and the crash-loop back-off reset by an image update.
//!
//! A standalone manifest is a static pod. Without `metadata.uid` an edit is a new pod (the uid hashes the
//! content, as the kubelet's does); with a `metadata.uid` the kubelet applies an edit to the same pod, which
//! is what the update tests here need.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::builder::PodBuilder;
use common::{c, pod, sleeper, st, wait_for, Node, BUSYBOX};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// test/e2e/common/node/pods.go, "Pods should be submitted and removed [NodeConformance]": a running pod
/// deleted with a grace period is observed deleted with its deletion timestamp and a non-zero grace period
/// and is then gone. Like the kubelet (since 1.27), peapod writes a terminal phase with every container
/// terminated before the pod goes away, and nothing of it is left on the node.
#[test]
fn should_be_submitted_and_removed() {
    let mut node = Node::new();
    let submitted = pod("pod-submit-remove")
        .label("name", "foo")
        .grace(30)
        .container(sleeper("nginx"));
    node.apply("p.yaml", &submitted.manifest());
    node.start();
    let running = node.wait_pod("pod-submit-remove", "Running", T, |p| {
        st::phase(p) == "Running" && st::running(p, "nginx")
    });
    node.delete("p.yaml");
    let history = node.observe("pod-submit-remove", T, |p| p.is_none());
    let last = history.last().unwrap();
    assert_eq!(last.metadata.uid, running.metadata.uid);
    assert!(last.metadata.deletion_timestamp.is_some(), "{last:#?}");
    assert_ne!(last.spec.pod.termination_grace_period_seconds.unwrap_or(0), 0);
    assert_eq!(last.metadata.deletion_grace_period_seconds, Some(30));
    // The status was terminal before removal: Succeeded (SIGTERM ends it with 0), nothing running.
    assert_eq!(st::phase(last), "Succeeded", "{last:#?}");
    let t = st::terminated(last, "nginx").expect("terminated before removal");
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    // A terminal phase, once written, never reverts.
    let first_terminal = history
        .iter()
        .position(|p| matches!(st::phase(p), "Succeeded" | "Failed"))
        .unwrap();
    assert!(history[first_terminal..]
        .iter()
        .all(|p| st::phase(p) == st::phase(last)));
    node.finish(T);
}

/// A pod with a fixed uid, so that an edit of its manifest updates the same pod.
fn fixed_uid_pod(name: &str, uid: &str) -> PodBuilder {
    pod(name).uid(uid).label("name", "foo").grace(2)
}

/// test/e2e/common/node/pods.go, "Pods should allow activeDeadlineSeconds to be updated [NodeConformance]":
/// a running pod whose spec gets `activeDeadlineSeconds: 5` is terminated: Failed, reason
/// DeadlineExceeded, with the kubelet's message (pkg/kubelet/active_deadline.go).
#[test]
fn should_allow_active_deadline_seconds_to_be_updated() {
    let mut node = Node::new();
    let uid = "9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d01";
    let p = fixed_uid_pod("pod-update-activedeadlineseconds", uid)
        .container(c("nginx").command(["sleep", "3600"]));
    node.apply("p.yaml", &p.manifest());
    node.start();
    let running = node.wait_pod("pod-update-activedeadlineseconds", "Running", T, |p| {
        st::phase(p) == "Running"
    });
    node.apply("p.yaml", &p.set("activeDeadlineSeconds", json!(5)).manifest());
    let p = node.wait_pod("pod-update-activedeadlineseconds", "DeadlineExceeded", T, |p| {
        st::phase(p) == "Failed"
    });
    assert_eq!(p.metadata.uid, running.metadata.uid, "the same pod");
    let s = &p.status.as_ref().unwrap().pod;
    assert_eq!(s.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        s.message.as_deref(),
        Some("Pod was active on the node longer than the specified deadline")
    );
    node.delete("p.yaml");
    wait_for("pod gone", T, || {
        node.get("pod-update-activedeadlineseconds")
            .is_none()
            .then_some(())
    });
    node.finish(T);
}

/// Upstream `getRestartDelay`: from the first look at a terminated instance, the time between its finish
/// and the start of the next one.
fn get_restart_delay(node: &Node, pod: &str, container: &str) -> Duration {
    let begin = Instant::now();
    let mut previous_restart_count = -1;
    let mut previous_finished_at = None;
    while begin.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(100));
        let Some(p) = node.get(pod) else { continue };
        let Some(s) = st::try_container(&p, container) else {
            continue;
        };
        let Some(last) = s.last_state.as_ref().and_then(|l| l.terminated.clone()) else {
            continue;
        };
        let state = s.state.clone().unwrap_or_default();
        if previous_restart_count == -1 {
            if state.running.is_some() {
                continue;
            }
            previous_finished_at = match &state.terminated {
                Some(t) => t.finished_at.clone(),
                None => last.finished_at.clone(),
            };
            previous_restart_count = s.restart_count;
        }
        if s.restart_count > previous_restart_count {
            let started_at = if let Some(r) = &state.running {
                r.started_at.clone()
            } else if let Some(t) = &state.terminated {
                t.started_at.clone()
            } else {
                last.started_at.clone()
            };
            let ms =
                started_at.unwrap().0.as_millisecond() - previous_finished_at.unwrap().0.as_millisecond();
            return Duration::from_millis(ms.max(0) as u64);
        }
    }
    panic!("timed out waiting for container restart in pod={pod}/{container}");
}

/// test/e2e/common/node/pods.go, "Pods should have their auto-restart back-off timer reset on image update
/// [Slow][NodeConformance]": a container that exits after 5 s restarts with a growing back-off; after its
/// image is changed, the next restart delay is at most twice the earlier ones. Upstream lets the back-off
/// build for a minute first; here delay 1 and 2 are the first two back-offs (10 s and 20 s), which the
/// kubelet's doubling makes grow.
#[test]
fn should_have_their_auto_restart_back_off_timer_reset_on_image_update() {
    let mut node = Node::new();
    let uid = "5b8e2f7a-41c6-4d0e-b6a2-7f0c9e1d2a44";
    let spec = |image: &str| {
        // An explicit pull policy: an update may change only the image (the `:latest` tag would otherwise
        // default it to Always, a change the Pod update rules refuse).
        let back_off = c("back-off").image(image).pull_policy("IfNotPresent").command([
            "/bin/sh",
            "-c",
            "sleep 5",
            "/crash/missing",
        ]);
        fixed_uid_pod("pod-back-off-image", uid)
            .container(back_off)
            .manifest()
    };
    let latest = common::test_images().join("busybox-latest.oci.tar");
    node.import(&latest);
    node.apply("p.yaml", &spec(BUSYBOX));
    node.start();
    node.wait_pod("pod-back-off-image", "Running", T, |p| st::phase(p) == "Running");
    let _delay0 = get_restart_delay(&node, "pod-back-off-image", "back-off");
    let delay1 = get_restart_delay(&node, "pod-back-off-image", "back-off");
    let delay2 = get_restart_delay(&node, "pod-back-off-image", "back-off");
    assert!(
        delay2 >= delay1 + Duration::from_secs(5),
        "the back-off grows: d1={delay1:?} d2={delay2:?}"
    );
    // The same image under another name: the container's spec (and so its back-off key) changes.
    node.apply("p.yaml", &spec("localhost/busybox:latest"));
    let updated = node.wait_pod("pod-back-off-image", "image updated", T, |p| {
        st::phase(p) == "Running"
            && st::try_container(p, "back-off").is_some_and(|c| c.image.contains("busybox:latest"))
    });
    assert_eq!(updated.metadata.uid.as_deref(), Some(uid));
    let after = get_restart_delay(&node, "pod-back-off-image", "back-off");
    assert!(
        after <= delay2 * 2 && after <= delay1 * 2,
        "updating image did not reset the back-off value: d3={after:?} d1={delay1:?} d2={delay2:?}"
    );
    node.delete("p.yaml");
    wait_for("pod gone", T, || {
        node.get("pod-back-off-image").is_none().then_some(())
    });
    node.finish(T);
}
