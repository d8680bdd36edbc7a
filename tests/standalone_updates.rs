//! Edits of a running static pod (a manifest with a fixed `metadata.uid`) under `peapod run`: a forbidden
//! edit is refused and the pod runs on with the spec it was admitted with, also after the supervisor is
//! SIGKILLed and restarted; reverting the manifest clears the refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{pod, sleeper, st, wait_for, Node};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);
const NAME: &str = "edited";

/// The static pod (fixed uid), its container `main` running until SIGTERM with `security` as its
/// securityContext, if any.
fn manifest(security: Option<Value>) -> String {
    let main = match security {
        Some(context) => sleeper("main").security(context),
        None => sleeper("main"),
    };
    pod(NAME)
        .uid("3f1c2b7e-8d4a-4e5f-9a6b-0c1d2e3f4a5b")
        .grace(3)
        .container(main)
        .podgroup_manifest()
}

fn message(node: &Node) -> Option<String> {
    node.get(NAME)?.status?.pod.message
}

fn invalid_updates(node: &Node) -> usize {
    let events = node.events(NAME);
    events
        .iter()
        .filter(|(reason, _)| reason == "InvalidUpdate")
        .count()
}

#[test]
fn a_refused_manifest_edit_stays_refused_across_a_supervisor_restart() {
    let mut node = Node::new();
    node.apply("edited.yaml", &manifest(None));
    node.start();
    let before = node.wait_pod(NAME, "running", T, |p| st::running(p, "main"));
    let running = st::container(&before, "main").clone();
    let caps = node.exec(NAME, "main", &["grep", "CapEff", "/proc/1/status"]);

    node.apply("edited.yaml", &manifest(Some(json!({"privileged": true}))));
    let refused = wait_for("the refusal in the status", T, || {
        message(&node).filter(|m| m.contains("pod updates may not change fields other than"))
    });
    assert!(
        refused.contains("spec.containers[0].securityContext"),
        "{refused}"
    );
    assert_eq!(invalid_updates(&node), 1, "one Event per refusal");

    node.kill9();
    node.start();
    wait_for("the restarted supervisor to judge the edit", T, || {
        (invalid_updates(&node) >= 2).then_some(())
    });
    let after = node.wait_pod(NAME, "the refusal still shown", T, |p| {
        p.status.as_ref().and_then(|s| s.pod.message.as_deref()) == Some(refused.as_str())
    });
    let main = st::container(&after, "main");
    assert_eq!(main.container_id, running.container_id, "not restarted");
    assert_eq!(main.restart_count, 0);
    assert_eq!(
        node.exec(NAME, "main", &["grep", "CapEff", "/proc/1/status"]),
        caps,
        "the admitted (unprivileged) spec runs"
    );

    node.apply("edited.yaml", &manifest(None));
    wait_for("the refusal to clear", T, || {
        let p = node.get(NAME)?;
        p.status.as_ref()?.pod.message.is_none().then_some(p)
    });
    let reverted = node.get(NAME).unwrap();
    assert_eq!(
        st::container(&reverted, "main").container_id,
        running.container_id
    );
    node.finish(T);
}
