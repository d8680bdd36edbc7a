//! Cluster tests against a real kube-apiserver (v1.20, built from Debian's source package) with the chart
//! installed by helm, two fake nodes, and two `peapod agent` processes on this machine that authenticate as
//! the chart's ServiceAccount. What a user sees with kubectl is what is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::builder::PodBuilder;
use common::cluster::{assert_caught_up, start_agent, ControlPlane, SYSTEM_NS};
use common::{pod, sleeper, st, wait_for, Node};
use serde_json::json;

#[path = "cluster/checks.rs"]
mod checks;

use checks::{check_events, check_pinned, check_table};

const T: Duration = Duration::from_secs(90);

/// A PodGroup in `default` with a 3 s grace period.
fn podgroup(name: &str) -> PodBuilder {
    pod(name).namespace("default").grace(3)
}

struct Cluster {
    cp: ControlPlane,
    a: Node,
    b: Node,
}

fn cluster() -> Cluster {
    let cp = ControlPlane::up();
    cp.node("node-a", &[("zone", "a")], "2", "4Gi");
    cp.node("node-b", &[("zone", "b"), ("disk", "ssd")], "2", "4Gi");
    let kubeconfig = cp.agent_kubeconfig();
    let mut a = Node::new();
    let mut b = Node::new();
    start_agent(&mut a, &kubeconfig, "node-a");
    start_agent(&mut b, &kubeconfig, "node-b");
    wait_for("both agents heartbeating", T, || {
        let leases = cp.kubectl_ok(&["get", "leases", "-n", SYSTEM_NS, "-o", "name"]);
        (leases.contains("peapod-node-node-a") && leases.contains("peapod-node-node-b")).then_some(())
    });
    Cluster { cp, a, b }
}

impl Cluster {
    /// Deletes every PodGroup, waits for them to go, stops the agents and checks both nodes are clean.
    fn finish(mut self) {
        self.cp
            .kubectl_ok(&["delete", "podgroups", "--all", "-A", "--wait=false"]);
        wait_for("every PodGroup deleted", T, || {
            let left = self.cp.kubectl_ok(&["get", "podgroups", "-A", "-o", "name"]);
            left.trim().is_empty().then_some(())
        });
        for n in [&mut self.a, &mut self.b] {
            n.finish(T);
        }
    }
}

#[test]
fn podgroups_are_scheduled_run_and_reported_like_pods() {
    let c = cluster();
    let cp = &c.cp;
    let pinned = podgroup("pinned").set("nodeName", json!("node-a"));
    cp.apply(&pinned.container(sleeper("main")).podgroup_manifest());
    let ssd = podgroup("ssd").set("nodeSelector", json!({"disk": "ssd"}));
    cp.apply(&ssd.container(sleeper("main")).podgroup_manifest());
    let huge = sleeper("main").set("resources", json!({"requests": {"memory": "100Gi"}}));
    cp.apply(&podgroup("huge").container(huge).podgroup_manifest());
    let crash = common::c("main").sh("echo bye; exit 1");
    cp.apply(&podgroup("crash").container(crash).podgroup_manifest());

    let pinned = cp.wait_pg("default", "pinned", "running on node-a", T, |p| {
        st::running(p, "main")
    });
    check_pinned(&pinned);
    let ssd = cp.wait_pg("default", "ssd", "running", T, |p| st::running(p, "main"));
    assert_eq!(
        ssd.spec.pod.node_name.as_deref(),
        Some("node-b"),
        "nodeSelector disk=ssd picks node-b"
    );

    let huge = cp.wait_pg("default", "huge", "unschedulable", T, |p| {
        st::condition(p, "PodScheduled").is_some_and(|c| c.status == "False")
    });
    let cond = st::condition(&huge, "PodScheduled").unwrap();
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(
        cond.message.as_deref(),
        Some("0/2 nodes are available: 2 Insufficient memory.")
    );
    assert_eq!(st::phase(&huge), "Pending");

    cp.wait_pg("default", "crash", "crash-looping", T, |p| {
        st::waiting_reason(p, "main").as_deref() == Some("CrashLoopBackOff")
    });
    check_table(cp);
    check_events(cp);

    // Delete runs the graceful stop, then the object goes away.
    cp.kubectl_ok(&["delete", "podgroup", "pinned", "--wait=true", "--timeout=60s"]);
    assert!(cp.get("default", "pinned").is_none());
    c.finish();
}

#[test]
fn agent_crash_and_api_outage_keep_workloads_running() {
    let mut c = cluster();
    let steady = podgroup("steady")
        .restart_never()
        .set("nodeName", json!("node-a"))
        .container(sleeper("main"))
        .container(common::c("later").sh("sleep 45; exit 4"));
    c.cp.apply(&steady.podgroup_manifest());
    let before = c.cp.wait_pg("default", "steady", "running", T, |p| {
        st::running(p, "main") && st::running(p, "later")
    });
    let id = st::container(&before, "main").container_id.clone();

    // SIGKILL the agent and start it again: the same containers, nothing started twice. The status the old
    // agent wrote is removed meanwhile, so what is waited for can only come from the new one.
    c.a.kill9();
    c.cp.kubectl_ok(&[
        "patch",
        "podgroup",
        "steady",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":null}"#,
    ]);
    let cleared = c.cp.get("default", "steady").unwrap();
    assert!(cleared.status.is_none(), "{:?}", cleared.status);
    let kubeconfig = c.cp.dir.path().join("agent.kubeconfig");
    start_agent(&mut c.a, &kubeconfig, "node-a");
    let after =
        c.cp.wait_pg("default", "steady", "status rewritten after restart", T, |p| {
            p.metadata.generation == p.status.as_ref().and_then(|s| s.pod.observed_generation)
                && st::running(p, "main")
        });
    assert_eq!(st::container(&after, "main").container_id, id);
    assert_eq!(st::container(&after, "main").restart_count, 0);

    // The API server goes away for 60 s: containers keep running, the exit in between is reported within
    // 5 s of its return, and nothing restarts.
    c.cp.stop();
    let uid = before.metadata.uid.clone().unwrap();
    let later =
        c.a.state
            .join("pods")
            .join(&uid)
            .join("containers/later/0/exited.json");
    assert!(
        !later.exists(),
        "later exited before the outage: nothing would be left to catch up"
    );
    let gone = std::time::Instant::now();
    wait_for("the later container to exit while the API is down", T, || {
        later.exists().then_some(())
    });
    while gone.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let main_alive = c.a.exec_ok("steady", "main");
    c.cp.start();
    assert!(main_alive, "main kept running during the outage");
    let caught_up = assert_caught_up(&c.cp, &id);
    assert_eq!(st::restarts(&caught_up, "later"), 0, "later restarted");
    c.finish();
}

/// The holder of the scheduler's leader lease ("" if none).
fn scheduler_leader(cp: &ControlPlane) -> String {
    let holder = cp.kubectl_ok(&[
        "get",
        "lease",
        "peapod-scheduler",
        "-n",
        SYSTEM_NS,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    holder.trim().to_string()
}

#[test]
fn another_agent_takes_over_scheduling_when_the_leader_dies() {
    let mut c = cluster();
    let leader = wait_for("a scheduler leader", T, || {
        let holder = scheduler_leader(&c.cp);
        (!holder.is_empty()).then_some(holder)
    });
    let (dying, survivor, dead) = if leader == "node-a" {
        (&mut c.a, "node-b", "node-a")
    } else {
        (&mut c.b, "node-a", "node-b")
    };
    dying.kill9();
    c.cp.apply(&podgroup("next").container(sleeper("main")).podgroup_manifest());
    // The survivor takes the leader lease once it expires (15 s) and binds the PodGroup. The dead agent's node
    // lease may still be valid (40 s), as a freshly dead kubelet's node is still Ready: either node will do.
    let p = c.cp.wait_pg(
        "default",
        "next",
        "bound by the new leader",
        Duration::from_secs(120),
        |p| p.spec.pod.node_name.is_some(),
    );
    assert_eq!(scheduler_leader(&c.cp), survivor);
    let events = c.cp.kubectl_ok(&[
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        "reason=Scheduled",
        "-o",
        "jsonpath={.items[*].reportingInstance}",
    ]);
    assert!(events.contains(survivor), "the survivor bound it: {events}");
    // Bring the dead agent back; the PodGroup runs wherever it was bound.
    let kubeconfig = c.cp.dir.path().join("agent.kubeconfig");
    let node = if dead == "node-a" { &mut c.a } else { &mut c.b };
    start_agent(node, &kubeconfig, dead);
    c.cp.wait_pg("default", "next", "running", T, |p| st::running(p, "main"));
    assert!(p.spec.pod.node_name.is_some());
    c.finish();
}

#[test]
fn the_agent_runs_with_least_privilege() {
    let cp = ControlPlane::up();
    let sa = format!("system:serviceaccount:{SYSTEM_NS}:peapod");
    let can = |verb: &str, resource: &str, ns: Option<&str>| {
        let mut args = vec!["auth", "can-i", verb, resource, "--as", &sa];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        String::from_utf8_lossy(&cp.kubectl(&args).stdout).trim() == "yes"
    };
    for (verb, resource) in [
        ("watch", "podgroups.peapod.dev"),
        ("patch", "podgroups.peapod.dev"),
        ("patch", "podgroups.peapod.dev/status"),
        ("create", "events.events.k8s.io"),
        ("list", "nodes"),
        ("list", "pods"),
        ("get", "secrets"),
    ] {
        assert!(
            can(verb, resource, Some("default")),
            "agent needs {verb} {resource}"
        );
    }
    assert!(can("update", "leases.coordination.k8s.io", Some(SYSTEM_NS)));
    for (verb, resource, ns) in [
        ("list", "secrets", Some("default")),
        ("watch", "secrets", Some("default")),
        ("delete", "podgroups.peapod.dev", Some("default")),
        ("create", "podgroups.peapod.dev", Some("default")),
        ("update", "leases.coordination.k8s.io", Some("default")),
        ("patch", "nodes", None),
        ("delete", "pods", Some("default")),
    ] {
        assert!(!can(verb, resource, ns), "agent must not {verb} {resource}");
    }
}

#[test]
fn the_crd_applies_client_side_and_server_side() {
    let cp = ControlPlane::up();
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/");
    // Client-side apply stores the whole object in an annotation limited to 256 KiB.
    cp.kubectl_ok(&["apply", "-f", crds]);
    cp.kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", crds]);
    let columns = cp.kubectl_ok(&[
        "get",
        "crd",
        "podgroups.peapod.dev",
        "-o",
        "jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}",
    ]);
    assert_eq!(columns, "Ready Status Restarts Age IP Node");
    let short = cp.kubectl_ok(&[
        "get",
        "crd",
        "podgroups.peapod.dev",
        "-o",
        "jsonpath={.spec.names.shortNames}",
    ]);
    assert!(short.contains("pg"), "{short}");
}

#[test]
fn lost_and_deleted_nodes_do_not_strand_podgroups() {
    let mut c = cluster();
    let on_b = podgroup("on-b").set("nodeName", json!("node-b"));
    c.cp.apply(&on_b.container(sleeper("main")).podgroup_manifest());
    c.cp.wait_pg("default", "on-b", "running", T, |p| st::running(p, "main"));
    // node-b's agent dies: once its lease expires (40 s), the PodGroup's state is unknown.
    c.b.kill9();
    let lost =
        c.cp.wait_pg("default", "on-b", "NodeLost", Duration::from_secs(120), |p| {
            st::phase(p) == "Unknown"
        });
    let s = lost.status.as_ref().unwrap();
    assert_eq!(s.pod.reason.as_deref(), Some("NodeLost"));
    assert_eq!(
        s.pod.message.as_deref(),
        Some("Node node-b which was running pod on-b is unresponsive")
    );
    assert_eq!(
        st::condition(&lost, "Ready").map(|c| c.status.as_str()),
        Some("Unknown")
    );
    // The Node object is deleted: deleting the PodGroup must not wait for an agent that will never come.
    c.cp.kubectl_ok(&["delete", "node", "node-b"]);
    c.cp.kubectl_ok(&["delete", "podgroup", "on-b", "--wait=false"]);
    wait_for("the PodGroup to go", T, || {
        c.cp.get("default", "on-b").is_none().then_some(())
    });
    // Its containers still run on the dead agent's node: the test cleans them up (Node::drop).
    let mut a = c.a;
    a.finish(T);
}
