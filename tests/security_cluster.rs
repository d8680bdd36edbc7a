//! Cluster test of S16: no admission plugin looks at a PodGroup (the v1.20 API server here has no
//! ValidatingAdmissionPolicy either), so the agent itself enforces the Pod Security Standards at the level of
//! the namespace's `pod-security.kubernetes.io/enforce` label, falling back to `--pod-security-level`, with
//! the chart's RBAC (namespaces get).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::builder::PodBuilder;
use common::cluster::{start_agent_env, ControlPlane};
use common::{pod, sleeper, st, wait_for, Node};
use serde_json::json;

const T: Duration = Duration::from_secs(90);

/// A PodGroup bound to node-a whose container `main` runs until SIGTERM.
fn podgroup(ns: &str, name: &str) -> PodBuilder {
    pod(name)
        .namespace(ns)
        .set("nodeName", json!("node-a"))
        .grace(2)
        .container(sleeper("main"))
}

/// `podgroup` in the host's PID namespace (baseline refuses it).
fn host_pid(ns: &str, name: &str) -> String {
    podgroup(ns, name).set("hostPID", json!(true)).podgroup_manifest()
}

#[test]
fn the_agent_enforces_the_namespace_level_without_any_admission_plugin() {
    let cp = ControlPlane::up();
    cp.node("node-a", &[], "2", "4Gi");
    let kubeconfig = cp.agent_kubeconfig();
    let mut node = Node::new();
    let baseline = [("PEAPOD_POD_SECURITY_LEVEL", std::ffi::OsStr::new("baseline"))];
    start_agent_env(&mut node, &kubeconfig, "node-a", &baseline);
    for (ns, level) in [("locked", "restricted"), ("open", "privileged")] {
        cp.kubectl_ok(&["create", "namespace", ns]);
        let label = format!("pod-security.kubernetes.io/enforce={level}");
        cp.kubectl_ok(&["label", "namespace", ns, &label]);
    }
    cp.apply(&podgroup("locked", "plain").podgroup_manifest());
    cp.apply(&host_pid("default", "hostpid"));
    cp.apply(&host_pid("open", "hostpid"));

    let p = cp.wait_pg("locked", "plain", "refused", T, |p| st::phase(p) == "Failed");
    let s = p.status.unwrap().pod;
    assert_eq!(s.reason.as_deref(), Some("PodSecurityViolation"));
    let message = s.message.unwrap();
    assert!(
        message.starts_with(
            r#"Pod was rejected: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false"#
        ),
        "{message}"
    );
    let p = cp.wait_pg("default", "hostpid", "refused", T, |p| st::phase(p) == "Failed");
    assert_eq!(
        p.status.unwrap().pod.message.as_deref(),
        Some(r#"Pod was rejected: violates PodSecurity "baseline:latest": host namespaces (hostPID=true)"#),
        "an unlabelled namespace gets the agent's level"
    );
    cp.wait_pg("open", "hostpid", "running", T, |p| st::running(p, "main"));
    // The user sees it as with a rejected Pod: STATUS is the reason, and a Warning Event says why.
    let shown = cp.kubectl_ok(&["get", "podgroup", "plain", "-n", "locked", "--no-headers"]);
    assert!(shown.contains("PodSecurityViolation"), "{shown}");
    wait_for("the Warning Event", T, || {
        let events = cp.kubectl_ok(&[
            "get",
            "events",
            "-n",
            "locked",
            "-o",
            "jsonpath={range .items[*]}{.type} {.reason}: {.message}{\"\\n\"}{end}",
        ]);
        events
            .lines()
            .any(|l| {
                l.starts_with("Warning PodSecurityViolation: violates PodSecurity \"restricted:latest\"")
            })
            .then_some(())
    });
    // Relabelling a namespace judges new pods only, as Pod Security Admission does: what runs keeps running.
    cp.kubectl_ok(&[
        "label",
        "--overwrite",
        "namespace",
        "open",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    cp.apply(&host_pid("open", "later"));
    cp.wait_pg("open", "later", "refused", T, |p| st::phase(p) == "Failed");
    let still = cp.get("open", "hostpid").unwrap();
    assert!(st::running(&still, "main"));

    cp.kubectl_ok(&["delete", "podgroups", "--all", "-A", "--wait=false"]);
    wait_for("every PodGroup deleted", T, || {
        let left = cp.kubectl_ok(&["get", "podgroups", "-A", "-o", "name"]);
        left.trim().is_empty().then_some(())
    });
    node.finish(T);
}
