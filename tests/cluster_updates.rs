//! Edits of running PodGroups against a real kube-apiserver (v1.20, which has no CEL transition rules, so
//! the agent's own judgement is all there is): a forbidden edit is refused and the pod runs on with the spec
//! it was admitted with, also after the agent is SIGKILLed and restarted; reverting the edit clears the
//! refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::{has_event, start_agent, OneNode, NODE_A};
use common::{pod, sleeper, st, wait_for};
use k8s_openapi::api::core::v1::ContainerStatus;
use peapod::api::PodGroup;
use serde_json::json;

const T: Duration = Duration::from_secs(90);
const NS: &str = "default";
const NAME: &str = "edited";

/// The PodGroup the test edits, bound to node-a, its container `main` running until SIGTERM.
fn manifest() -> String {
    pod(NAME)
        .namespace(NS)
        .set("nodeName", json!(NODE_A))
        .grace(3)
        .container(sleeper("main"))
        .podgroup_manifest()
}

/// The effective capabilities of the container's pid 1 (all of them when privileged).
fn cap_eff(c: &OneNode) -> String {
    let status = c.node.exec(NAME, "main", &["cat", "/proc/1/status"]);
    let line = status.lines().find(|l| l.starts_with("CapEff:"));
    line.unwrap_or_default().to_string()
}

fn message(c: &OneNode) -> Option<String> {
    let p = c.cp.get(NS, NAME)?;
    p.status.and_then(|s| s.pod.message)
}

fn invalid_updates(c: &OneNode) -> usize {
    let events = c.cp.events_about(NS, NAME);
    events.iter().filter(|e| e["reason"] == "InvalidUpdate").count()
}

/// SIGKILLs and restarts the agent, and waits for it to judge the edit again (a second InvalidUpdate Event);
/// meanwhile the container `running` must be neither killed nor restarted. Returns the PodGroup then.
fn restart_agent_until_judged(c: &mut OneNode, running: &ContainerStatus) -> PodGroup {
    c.node.kill9();
    let kubeconfig = c.cp.dir.path().join("agent.kubeconfig");
    start_agent(&mut c.node, &kubeconfig, NODE_A);
    let judged = wait_for("the restarted agent to judge the edit", T, || {
        let p = c.cp.get(NS, NAME)?;
        let now = st::try_container(&p, "main")?;
        let killed = c
            .node
            .supervisor_log()
            .contains("Container main definition changed");
        if killed || now.container_id != running.container_id || now.restart_count != 0 {
            return Some(Err(format!(
                "the container was restarted with the refused spec: {now:?}"
            )));
        }
        (invalid_updates(c) >= 2).then_some(Ok(p))
    });
    judged.unwrap_or_else(|e| panic!("{e}"))
}

/// A JSON patch of the PodGroup's spec, as `kubectl patch --type=json` sends it.
fn patch(c: &OneNode, ops: &str) {
    c.cp.kubectl_ok(&["patch", "podgroup", NAME, "-n", NS, "--type=json", "-p", ops]);
}

#[test]
fn a_refused_edit_stays_refused_across_an_agent_restart() {
    let mut c = OneNode::up();
    c.cp.apply(&manifest());
    let before = c.cp.wait_pg(NS, NAME, "running", T, |p| st::running(p, "main"));
    let running = st::container(&before, "main").clone();
    let caps = cap_eff(&c);
    assert!(!caps.is_empty(), "no CapEff in /proc/1/status");

    // The API server (1.20) takes the edit; the agent refuses it as the API server refuses a Pod update.
    patch(
        &c,
        r#"[{"op":"add","path":"/spec/containers/0/securityContext","value":{"privileged":true}}]"#,
    );
    let refused = wait_for("the refusal in the status", T, || {
        message(&c).filter(|m| m.contains("pod updates may not change fields other than"))
    });
    assert!(
        refused.starts_with(&format!("PodGroup \"{NAME}\" is invalid: spec: Forbidden:")),
        "{refused}"
    );
    assert!(
        refused.contains("spec.containers[0].securityContext"),
        "{refused}"
    );
    assert!(has_event(&c.cp.events_about(NS, NAME), "InvalidUpdate", None));
    assert_eq!(invalid_updates(&c), 1, "one Event per refusal");

    // SIGKILL and restart the agent: it judges the edit against the admitted spec again (a new Event from
    // the new agent), and the container is neither restarted nor privileged.
    let after = restart_agent_until_judged(&mut c, &running);
    let main = st::container(&after, "main");
    assert_eq!(main.container_id, running.container_id);
    assert_eq!(main.restart_count, 0);
    assert_eq!(main.state, running.state, "same start time");
    // Still reported (the restarted worker's first report may land just before the agent judged the edit).
    wait_for("the refusal still in the status", T, || {
        (message(&c).as_deref() == Some(refused.as_str())).then_some(())
    });
    assert_eq!(cap_eff(&c), caps, "the admitted (unprivileged) spec runs");

    // Reverting the edit clears the refusal; nothing restarts.
    patch(
        &c,
        r#"[{"op":"remove","path":"/spec/containers/0/securityContext"}]"#,
    );
    wait_for("the refusal to clear", T, || message(&c).is_none().then_some(()));
    let reverted = c.cp.get(NS, NAME).unwrap();
    let main = st::container(&reverted, "main");
    assert_eq!(main.container_id, running.container_id);
    assert_eq!(main.restart_count, 0);
    assert!(st::running(&reverted, "main"));
    assert_eq!(st::phase(&reverted), "Running");
    c.finish_with_status_writes_ok();
}
