//! Ports of the Kubernetes node conformance tests in test/e2e/common/node/runtime.go ("Container Runtime
//! blackbox test") to `peapod run`: restart policies and the statuses they give, termination messages,
//! and a failing image pull. One test per upstream `It`, asserting what upstream asserts; the busybox test
//! image stands in for the e2e images.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::builder::ContainerBuilder;
use common::{c, pod, st, wait_for, Node};
use peapod::api::PodGroup;
use serde_json::json;

/// Upstream `ContainerStatusRetryTimeout` is 5 minutes; these containers need seconds.
const T: Duration = Duration::from_secs(60);

/// `GetContainerState` of the upstream helper: which of the three states is set.
fn state(p: &PodGroup, c: &str) -> &'static str {
    let s = st::container(p, c).state.clone().unwrap_or_default();
    match (s.waiting, s.running, s.terminated) {
        (Some(_), _, _) => "Waiting",
        (_, Some(_), _) => "Running",
        (_, _, Some(_)) => "Terminated",
        _ => "Unknown",
    }
}

/// test/e2e/common/node/runtime.go, "Container Runtime blackbox test when starting a container that exits
/// should run with the expected status [NodeConformance]": the container fails on its first run, succeeds
/// on its second and then runs forever; restartPolicy Always, OnFailure and Never give restart counts 2, 1,
/// 0, phases Running, Succeeded, Failed, ready true, false, false and states Running, Terminated,
/// Terminated. Each pod can then be deleted.
#[test]
fn should_run_with_the_expected_status() {
    let mut node = Node::new();
    // The upstream script: count runs in a memory-backed emptyDir.
    let script = "f=/restart-count/restartCount\ncount=$(echo hello >> $f ; wc -l $f | awk {'print $1'})\nif [ $count -eq 1 ]; then\n  exit 1\nfi\nif [ $count -eq 2 ]; then\n  exit 0\nfi\nwhile true; do sleep 1; done\n";
    let cases = [
        ("terminate-cmd-rpa", "Always", "Running", "Running", 2, true),
        (
            "terminate-cmd-rpof",
            "OnFailure",
            "Succeeded",
            "Terminated",
            1,
            false,
        ),
        ("terminate-cmd-rpn", "Never", "Failed", "Terminated", 0, false),
    ];
    for (name, policy, ..) in cases {
        let counted = pod(name)
            .restart(policy)
            .grace(2)
            .volume("restart-count", json!({"emptyDir": {"medium": "Memory"}}))
            .container(c(name).sh(script).mount("restart-count", "/restart-count"));
        node.apply(&format!("{name}.yaml"), &counted.manifest());
    }
    node.start();
    for (name, _, phase, container_state, restart_count, ready) in cases {
        node.wait_pod(name, &format!("restartCount {restart_count}"), T, |p| {
            st::restarts(p, name) == restart_count
        });
        let p = node.wait_pod(name, &format!("phase {phase}"), T, |p| st::phase(p) == phase);
        assert_eq!(st::container(&p, name).ready, ready, "{name}: ready");
        assert_eq!(state(&p, name), container_state, "{name}: state");
        assert_eq!(st::restarts(&p, name), restart_count, "{name}: restartCount");
        // "should be possible to delete".
        node.delete(&format!("{name}.yaml"));
        wait_for(&format!("{name} to be gone"), T, || {
            node.get(name).is_none().then_some(())
        });
    }
    node.finish(T);
}

/// The upstream test's container: `/bin/sh -c script`, with its termination message at `path`.
fn message_container(script: &str, path: &str) -> ContainerBuilder {
    c("termination-message-container")
        .command(["/bin/sh", "-c"])
        .args([script])
        .set("terminationMessagePath", json!(path))
}

/// `message_container` with `terminationMessagePolicy: FallbackToLogsOnError`.
fn fallback_container(script: &str) -> ContainerBuilder {
    message_container(script, "/dev/termination-log")
        .set("terminationMessagePolicy", json!("FallbackToLogsOnError"))
}

/// The upstream `matchTerminationMessage`: a restartPolicy Never pod with the container
/// `termination-message-container` reaches `phase`; the container is terminated with `message` ("" when
/// absent, as the Go field reads).
fn match_termination_message(container: ContainerBuilder, phase: &str, message: &str) {
    let msg = pod("termination-message")
        .restart_never()
        .grace(2)
        .container(container);
    let mut node = Node::new();
    node.apply("msg.yaml", &msg.manifest());
    node.start();
    let p = node.wait_pod("termination-message", phase, T, |p| st::phase(p) == phase);
    assert_eq!(state(&p, "termination-message-container"), "Terminated");
    let t = st::terminated(&p, "termination-message-container").unwrap();
    assert_eq!(t.message.unwrap_or_default(), message);
    node.delete("msg.yaml");
    wait_for("pod gone", T, || {
        node.get("termination-message").is_none().then_some(())
    });
    node.finish(T);
}

/// test/e2e/common/node/runtime.go, "Container Runtime blackbox test on terminated container should report
/// termination message if TerminationMessagePath is set [NodeConformance]" (as root).
#[test]
fn should_report_termination_message_if_termination_message_path_is_set() {
    match_termination_message(
        message_container("/bin/echo -n DONE > /dev/termination-log", "/dev/termination-log")
            .security(json!({"runAsUser": 0})),
        "Succeeded",
        "DONE",
    );
}

/// test/e2e/common/node/runtime.go, "Container Runtime blackbox test on terminated container should report
/// termination message if TerminationMessagePath is set as non-root user and at a non-default path
/// [NodeConformance]" (uid 10000, /dev/termination-custom-log).
#[test]
fn should_report_termination_message_if_termination_message_path_is_set_as_non_root_user_and_at_a_non_default_path(
) {
    match_termination_message(
        message_container(
            "/bin/echo -n DONE > /dev/termination-custom-log",
            "/dev/termination-custom-log",
        )
        .security(json!({"runAsUser": 10000})),
        "Succeeded",
        "DONE",
    );
}

/// test/e2e/common/node/runtime.go, "Container Runtime blackbox test on terminated container should report
/// termination message from log output if TerminationMessagePolicy FallbackToLogsOnError is set
/// [NodeConformance]".
#[test]
fn should_report_termination_message_from_log_output_if_termination_message_policy_fallback_to_logs_on_error_is_set(
) {
    match_termination_message(
        fallback_container("/bin/echo -n DONE; /bin/false"),
        "Failed",
        "DONE",
    );
}

/// test/e2e/common/node/runtime.go, "Container Runtime blackbox test on terminated container should report
/// termination message as empty when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is
/// set [NodeConformance]".
#[test]
fn should_report_termination_message_as_empty_when_pod_succeeds_and_termination_message_policy_fallback_to_logs_on_error_is_set(
) {
    match_termination_message(
        fallback_container("/bin/echo -n DONE; /bin/true"),
        "Succeeded",
        "",
    );
}

/// test/e2e/common/node/runtime.go, "Container Runtime blackbox test on terminated container should report
/// termination message from file when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is
/// set [NodeConformance]".
#[test]
fn should_report_termination_message_from_file_when_pod_succeeds_and_termination_message_policy_fallback_to_logs_on_error_is_set(
) {
    match_termination_message(
        fallback_container("/bin/echo -n OK > /dev/termination-log; /bin/echo DONE; /bin/true"),
        "Succeeded",
        "OK",
    );
}

/// A loopback port nothing listens on: connections to it are refused.
fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// test/e2e/common/node/runtime.go, "Container Runtime blackbox test when running a container with a new
/// image should not be able to pull image from invalid registry [NodeConformance]": imagePullPolicy Always
/// from a registry that cannot be reached (here a loopback port that refuses connections) leaves the
/// container Waiting with ErrImagePull or ImagePullBackOff and the pod Pending.
#[test]
fn should_not_be_able_to_pull_image_from_invalid_registry() {
    let mut node = Node::new();
    let image = format!("127.0.0.1:{}/invalid/busybox:1.35.0", refused_port());
    let pull = pod("image-pull-test").restart_never().grace(2).container(
        c("image-pull-test").image(&image).pull_policy("Always").command([
            "/bin/sh",
            "-c",
            "while true; do sleep 1; done",
        ]),
    );
    node.apply("pull.yaml", &pull.manifest());
    node.start();
    // Upstream checks the container state first (the default phase is Pending anyway), then the phase.
    let p = node.wait_pod("image-pull-test", "a pull failure", T, |p| {
        matches!(
            st::waiting_reason(p, "image-pull-test").as_deref(),
            Some("ErrImagePull" | "ImagePullBackOff")
        )
    });
    assert_eq!(st::phase(&p), "Pending");
    // It stays so: the back-off follows the failure and nothing runs.
    let p = node.wait_pod("image-pull-test", "ImagePullBackOff", T, |p| {
        st::waiting_reason(p, "image-pull-test").as_deref() == Some("ImagePullBackOff")
    });
    assert_eq!(st::phase(&p), "Pending");
    assert_eq!(st::restarts(&p, "image-pull-test"), 0);
    // Not asserted upstream: the kubelet's Events for it (pkg/kubelet/images/image_manager.go).
    let events = node.events("image-pull-test");
    let has = |reason: &str, prefix: &str| events.iter().any(|(r, m)| r == reason && m.starts_with(prefix));
    assert!(
        has("Failed", &format!("Failed to pull image \"{image}\": ")),
        "{events:?}"
    );
    assert!(has("Failed", "Error: ErrImagePull"), "{events:?}");
    assert!(
        has("BackOff", &format!("Back-off pulling image \"{image}\"")),
        "{events:?}"
    );
    node.delete("pull.yaml");
    wait_for("pod gone", T, || {
        node.get("image-pull-test").is_none().then_some(())
    });
    node.finish(T);
}
