//! Pod lifecycle as a cluster user sees it: a real kube-apiserver (v1.20, built from Debian's source package),
//! the chart installed by helm, one fake node and its `peapod agent`. Each test brings up its own control plane
//! and checks what `kubectl` returns: statuses with empty strings, init container failure, exit codes,
//! restart counts and termination messages, activeDeadlineSeconds and its Event, deletion with a grace period.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::builder::PodBuilder;
use common::cluster::{deletion_versions, has_event, raw_container, OneNode};
use common::{c as container, pod, sleeper, st, wait_for};
use peapod::api::PodGroup;
use serde_json::{json, Value};

#[path = "cluster_lifecycle/checks.rs"]
mod checks;

use checks::{apply_exit_podgroups, check_exit_table, check_init_events, check_init_never, check_onfailure};

const T: Duration = Duration::from_secs(90);
const NS: &str = "default";

/// A PodGroup in `default` with a 3 s grace period.
fn podgroup(name: &str) -> PodBuilder {
    pod(name).namespace(NS).grace(3)
}

fn terminated(p: &PodGroup, c: &str) -> k8s_openapi::api::core::v1::ContainerStateTerminated {
    st::terminated(p, c).unwrap_or_else(|| panic!("{c} is not terminated"))
}

/// Empty strings are ordinary values: a waiting container's `imageID: ""` is stored and read back as `""`, and
/// so are an empty env value and workingDir in the spec. The test API server refused every `""` in a custom
/// resource until hack/kube-apiserver.sh fixed its OpenAPI type validator; against that server the apply of
/// `env` is refused and the agent's status writes for `never` fail.
#[test]
fn empty_strings_in_spec_and_status_are_stored() {
    let c = OneNode::up();
    let cp = &c.cp;
    let absent = container("c")
        .image("localhost/not-imported:1")
        .pull_policy("Never");
    cp.apply(
        &podgroup("never")
            .restart_never()
            .container(absent)
            .podgroup_manifest(),
    );
    let env = container("c")
        .sh("test \"${EMPTY+set}\" = set && test -z \"$EMPTY\"")
        .env("EMPTY", "")
        .set("workingDir", json!(""));
    cp.apply(&podgroup("env").restart_never().container(env).podgroup_manifest());

    let never = cp.wait_pg(NS, "never", "ErrImageNeverPull", T, |p| {
        st::waiting_reason(p, "c").as_deref() == Some("ErrImageNeverPull")
    });
    assert_eq!(st::container(&never, "c").image_id, "");
    assert_eq!(st::display(&never), "ErrImageNeverPull");
    let raw = cp.get_json(NS, "never").unwrap();
    let status = raw_container(&raw, "c");
    assert_eq!(status["imageID"], Value::String(String::new()), "{status}");
    assert_eq!(status["image"], "localhost/not-imported:1");
    assert_eq!(status["restartCount"], 0);
    assert_eq!(
        status["state"]["waiting"]["message"],
        "Container image \"localhost/not-imported:1\" is not present with pull policy of Never"
    );
    let table = cp.kubectl_ok(&["get", "podgroup", "never", "--no-headers"]);
    assert!(
        table.contains(" 0/1 ") && table.contains(" ErrImageNeverPull "),
        "{table}"
    );

    // The container saw EMPTY set to "": it exits 0.
    let done = cp.wait_pg(NS, "env", "Succeeded", T, |p| st::phase(p) == "Succeeded");
    assert_eq!(terminated(&done, "c").exit_code, 0);
    let raw = cp.get_json(NS, "env").unwrap();
    assert_eq!(raw["spec"]["containers"][0]["env"][0]["value"], "");
    c.finish_with_status_writes_ok();
}

/// Ports init_container.go "should not start app containers and fail the pod if init containers fail on a
/// RestartNever pod", and its RestartAlways counterpart, as seen through the API.
#[test]
fn failed_init_containers_fail_or_hold_the_pod() {
    let c = OneNode::up();
    let cp = &c.cp;
    let never = podgroup("init-never")
        .restart_never()
        .init(container("init1").sh("true"))
        .init(container("init2").sh("echo -n init2 gave up > /dev/termination-log; exit 3"))
        .container(sleeper("app"));
    cp.apply(&never.podgroup_manifest());
    let always = podgroup("init-always")
        .init(container("init1").sh("exit 1"))
        .init(container("init2").sh("true"))
        .container(sleeper("app"));
    cp.apply(&always.podgroup_manifest());
    check_init_never(cp);

    // RestartAlways: init1 crash-loops, init2 and the app wait, the pod stays Pending.
    let p = cp.wait_pg(NS, "init-always", "init1 restarted twice", T, |p| {
        st::restarts(p, "init1") >= 2
    });
    assert_eq!(st::phase(&p), "Pending");
    assert_eq!(
        st::waiting_reason(&p, "init2").as_deref(),
        Some("PodInitializing")
    );
    assert_eq!(st::waiting_reason(&p, "app").as_deref(), Some("PodInitializing"));
    assert_eq!(st::restarts(&p, "app"), 0);
    let last = st::container(&p, "init1")
        .last_state
        .clone()
        .and_then(|s| s.terminated);
    assert_eq!(last.map(|t| t.exit_code), Some(1));
    let cond = st::condition(&p, "Initialized").unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.message.as_deref()),
        ("False", Some("containers with incomplete status: [init1 init2]"))
    );
    assert!(st::display(&p).starts_with("Init:"), "{}", st::display(&p));
    check_init_events(&c);
    c.finish_with_status_writes_ok();
}

#[test]
fn exit_codes_restarts_and_termination_messages() {
    let c = OneNode::up();
    let cp = &c.cp;
    apply_exit_podgroups(cp);

    let p = cp.wait_pg(NS, "exit42", "Failed", T, |p| st::phase(p) == "Failed");
    let t = terminated(&p, "c");
    assert_eq!(
        (t.exit_code, t.reason.as_deref(), t.message.as_deref()),
        (42, Some("Error"), None)
    );
    assert!(t.container_id.is_some(), "a terminated container keeps its id");
    assert_eq!(st::restarts(&p, "c"), 0);
    assert!(!st::container(&p, "c").ready);
    check_onfailure(cp);

    let p = cp.wait_pg(NS, "custom-path", "Succeeded", T, |p| st::phase(p) == "Succeeded");
    assert_eq!(terminated(&p, "c").message.as_deref(), Some("DONE"));

    let p = cp.wait_pg(NS, "crash", "restarted twice", T, |p| st::restarts(p, "c") >= 2);
    assert_eq!(
        st::phase(&p),
        "Running",
        "restartPolicy Always keeps the pod Running"
    );
    let last = st::container(&p, "c")
        .last_state
        .clone()
        .and_then(|s| s.terminated)
        .unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));
    let restarts = p.status.as_ref().and_then(|s| s.restarts).unwrap();
    assert!(restarts >= 2, "printer column follows restartCount: {restarts}");
    check_exit_table(cp);

    let events = c.cp.events_about(NS, "crash");
    assert!(
        has_event(&events, "BackOff", Some("spec.containers{c}")),
        "{events:#?}"
    );
    c.finish_with_status_writes_ok();
}

/// activeDeadlineSeconds set at creation, and set later on a running pod (pods.go "should allow
/// activeDeadlineSeconds to be updated"): the pod fails with DeadlineExceeded, its containers are stopped, and
/// the kubelet's Event is visible as core/v1 and events.k8s.io/v1.
#[test]
fn active_deadline_fails_the_pod_with_an_event() {
    let c = OneNode::up();
    let cp = &c.cp;
    let deadline = podgroup("deadline").set("activeDeadlineSeconds", json!(3));
    cp.apply(&deadline.container(sleeper("c")).podgroup_manifest());
    cp.apply(&podgroup("updated").container(sleeper("c")).podgroup_manifest());
    const MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

    let failed = |p: &PodGroup| st::phase(p) == "Failed" && st::terminated(p, "c").is_some();
    let p = cp.wait_pg(NS, "deadline", "DeadlineExceeded", T, failed);
    let s = p.status.as_ref().unwrap();
    assert_eq!(s.pod.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(s.pod.message.as_deref(), Some(MESSAGE));
    // kubectl prints the stopped container's reason over the pod's: it exited 0 on SIGTERM.
    assert_eq!(terminated(&p, "c").reason.as_deref(), Some("Completed"));
    assert_eq!(st::display(&p), "Completed");
    let start = s.pod.start_time.as_ref().unwrap().0;
    let finished = terminated(&p, "c").finished_at.unwrap().0;
    assert!(
        finished.as_second() - start.as_second() >= 2,
        "stopped {} s after start with a 3 s deadline",
        finished.as_second() - start.as_second()
    );
    let table = cp.kubectl_ok(&["get", "podgroup", "deadline", "--no-headers"]);
    assert!(
        table.contains(" 0/1 ") && table.contains(" Completed "),
        "{table}"
    );

    let running = cp.wait_pg(NS, "updated", "running", T, |p| st::running(p, "c"));
    cp.kubectl_ok(&[
        "patch",
        "podgroup",
        "updated",
        "--type",
        "merge",
        "-p",
        "{\"spec\":{\"activeDeadlineSeconds\":5}}",
    ]);
    let p = cp.wait_pg(NS, "updated", "DeadlineExceeded", T, failed);
    assert_eq!(
        p.metadata.uid, running.metadata.uid,
        "the same pod, not a new incarnation"
    );
    assert_eq!(
        p.status.as_ref().unwrap().pod.reason.as_deref(),
        Some("DeadlineExceeded")
    );

    for name in ["deadline", "updated"] {
        let events = wait_for("DeadlineExceeded event", T, || {
            let e = c.cp.events_about(NS, name);
            has_event(&e, "DeadlineExceeded", None).then_some(e)
        });
        let e = events.iter().find(|e| e["reason"] == "DeadlineExceeded").unwrap();
        assert_eq!(
            (e["type"].as_str(), e["message"].as_str()),
            (Some("Normal"), Some(MESSAGE))
        );
        assert!(
            has_event(&events, "Killing", Some("spec.containers{c}")),
            "{events:#?}"
        );
    }
    let new_api = cp.items("events.v1.events.k8s.io", NS);
    let e = new_api
        .iter()
        .find(|e| e["reason"] == "DeadlineExceeded" && e["regarding"]["name"] == "deadline")
        .unwrap_or_else(|| panic!("no events.k8s.io DeadlineExceeded event: {new_api:#?}"));
    assert_eq!(e["regarding"]["kind"], "PodGroup");
    assert_eq!(e["regarding"]["apiVersion"], "peapod.dev/v1alpha1");
    assert_eq!(e["note"], MESSAGE);
    assert_eq!(e["type"], "Normal");
    assert_eq!(e["reportingController"], "peapod");
    assert_eq!(e["reportingInstance"], common::cluster::NODE_A);
    c.finish_with_status_writes_ok();
}

/// `kubectl delete` of a running PodGroup: the deletion is seen with the containers still running, the
/// containers get SIGTERM and, when they ignore it, SIGKILL after the grace period; the terminal status is
/// written before the object goes (it is on the DELETED watch event).
#[test]
fn deletion_stops_with_the_grace_period_then_removes() {
    let c = OneNode::up();
    let cp = &c.cp;
    cp.apply(&podgroup("polite").container(sleeper("main")).podgroup_manifest());
    let stubborn = container("main").sh("trap \"\" TERM; while true; do sleep 0.2; done");
    cp.apply(&podgroup("stubborn").container(stubborn).podgroup_manifest());
    for name in ["polite", "stubborn"] {
        cp.wait_pg(NS, name, "running", T, |p| st::running(p, "main"));
    }

    let delete = |name: &'static str| {
        move || {
            cp.kubectl_ok(&["delete", "podgroup", name, "--wait=false"]);
        }
    };
    // Gone well before the 30 s default grace period: the spec's 3 s were applied, not the default.
    let seen = cp.watch_until_deleted(NS, "stubborn", Duration::from_secs(20), delete("stubborn"));
    let (versions, deleting) = deletion_versions(seen);
    assert!(st::running(&deleting, "main"), "deletion is graceful");
    let (kind, last) = versions.last().unwrap();
    assert_eq!(kind, "DELETED");
    assert_eq!(st::phase(last), "Failed", "killed by SIGKILL: exit 137");
    let t = terminated(last, "main");
    assert_eq!((t.exit_code, t.reason.as_deref()), (137, Some("Error")));
    let asked = last.metadata.deletion_timestamp.as_ref().unwrap().0;
    let killed = t.finished_at.unwrap().0;
    let waited = killed.as_second() - asked.as_second();
    assert!(
        (2..15).contains(&waited),
        "SIGKILL not after the spec's 3 s grace period: {asked} -> {killed}"
    );

    let seen = cp.watch_until_deleted(NS, "polite", T, delete("polite"));
    let (kind, last) = seen.last().unwrap();
    assert_eq!(kind, "DELETED");
    let last: PodGroup = serde_json::from_value(last.clone()).unwrap();
    assert_eq!(st::phase(&last), "Succeeded", "exited 0 on SIGTERM");
    let t = terminated(&last, "main");
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));

    for name in ["polite", "stubborn"] {
        let events = c.cp.events_about(NS, name);
        let killing = events
            .iter()
            .find(|e| e["reason"] == "Killing")
            .unwrap_or_else(|| panic!("{name}: no Killing event in {events:#?}"));
        assert_eq!(killing["message"], "Stopping container main");
        assert_eq!(killing["involvedObject"]["fieldPath"], "spec.containers{main}");
    }
    assert!(cp.get(NS, "polite").is_none() && cp.get(NS, "stubborn").is_none());
    c.finish_with_status_writes_ok();
}
