//! Cluster test of S16: no admission plugin looks at a PodGroup (the v1.20 API server here has no
//! ValidatingAdmissionPolicy either), so the agent itself enforces the Pod Security Standards at the level of
//! the namespace's `pod-security.kubernetes.io/enforce` label, falling back to `--pod-security-level`, with
//! the chart's RBAC (namespaces get).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::{ControlPlane, SYSTEM_NS};
use common::{st, wait_for, Node, BUSYBOX};

const T: Duration = Duration::from_secs(90);

fn podgroup(ns: &str, name: &str, extra: &str) -> String {
    format!(
        "apiVersion: peapod.dev/v1alpha1\nkind: PodGroup\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  nodeName: node-a\n  terminationGracePeriodSeconds: 2\n{extra}  containers:\n  - name: main\n    image: {BUSYBOX}\n    command: [sh, -c, 'trap \"exit 0\" TERM; while true; do sleep 0.2; done']\n"
    )
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn the_agent_enforces_the_namespace_level_without_any_admission_plugin() {
    let cp = ControlPlane::up();
    cp.node("node-a", &[], "2", "4Gi");
    let kubeconfig = cp.agent_kubeconfig();
    let mut node = Node::new();
    let metrics = format!("127.0.0.1:{}", free_port());
    let parent = node.cgroup_parent.clone();
    node.start_with(
        &[
            "agent",
            "--node-name",
            "node-a",
            "--namespace",
            SYSTEM_NS,
            "--metrics-bind-address",
            &metrics,
            "--cgroup-parent",
            &parent,
        ],
        &[
            ("KUBECONFIG", kubeconfig.as_os_str()),
            ("PEAPOD_POD_SECURITY_LEVEL", std::ffi::OsStr::new("baseline")),
        ],
    );
    for (ns, level) in [("locked", "restricted"), ("open", "privileged")] {
        cp.kubectl_ok(&["create", "namespace", ns]);
        let label = format!("pod-security.kubernetes.io/enforce={level}");
        cp.kubectl_ok(&["label", "namespace", ns, &label]);
    }
    cp.apply(&podgroup("locked", "plain", ""));
    cp.apply(&podgroup("default", "hostpid", "  hostPID: true\n"));
    cp.apply(&podgroup("open", "hostpid", "  hostPID: true\n"));

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
    cp.apply(&podgroup("open", "later", "  hostPID: true\n"));
    cp.wait_pg("open", "later", "refused", T, |p| st::phase(p) == "Failed");
    let still = cp.get("open", "hostpid").unwrap();
    assert!(st::running(&still, "main"));

    cp.kubectl_ok(&["delete", "podgroups", "--all", "-A", "--wait=false"]);
    wait_for("every PodGroup deleted", T, || {
        let left = cp.kubectl_ok(&["get", "podgroups", "-A", "-o", "name"]);
        left.trim().is_empty().then_some(())
    });
    assert!(node.stop(T).success());
    node.assert_clean();
}
