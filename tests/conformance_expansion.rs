//! Ports of the Kubernetes node conformance tests in test/e2e/common/node/expansion.go ("Variable
//! Expansion": `$(VAR)` in env values, command, args and `subPathExpr`) to `peapod run`. Upstream's
//! `TestContainerOutput` waits for the pod to succeed and looks for each expected line in the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::builder::{ContainerBuilder, PodBuilder};
use common::{c, pod, st, wait_for, Node};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// Upstream `newPod`: restartPolicy Never, labelled with its name, with the one container `dapi`.
fn new_pod(name: &str, dapi: ContainerBuilder) -> PodBuilder {
    pod(name)
        .label("name", name)
        .restart_never()
        .grace(2)
        .container(dapi)
}

/// Upstream's container `dapi-container`.
fn dapi() -> ContainerBuilder {
    c("dapi-container")
}

/// `subPathExpr: expr` of the volume `workdir1` mounted at `path`.
fn sub_path_expr(path: &str, expr: &str) -> serde_json::Value {
    json!({"name": "workdir1", "mountPath": path, "subPathExpr": expr})
}

fn finish(mut node: Node, file: &str, name: &str) {
    node.delete(file);
    wait_for("pod gone", T, || node.get(name).is_none().then_some(()));
    node.finish(T);
}

/// Upstream `TestContainerOutput`: the pod succeeds and its log holds every expected string.
fn test_container_output(manifest: &str, name: &str, expected: &[&str]) -> String {
    let mut node = Node::new();
    node.apply("p.yaml", manifest);
    node.start();
    let p = node.wait_pod(name, "completed", T, |p| {
        matches!(st::phase(p), "Succeeded" | "Failed")
    });
    assert_eq!(st::phase(&p), "Succeeded", "{p:#?}");
    let out = node.peapod(&["logs", name, "-c", "dapi-container"]);
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    for e in expected {
        assert!(log.contains(e), "expected {e:?} in the output:\n{log}");
    }
    finish(node, "p.yaml", name);
    log
}

/// test/e2e/common/node/expansion.go, "Variable Expansion should allow composing env vars into new env vars
/// [NodeConformance]".
#[test]
fn should_allow_composing_env_vars_into_new_env_vars() {
    let c = dapi()
        .command(["sh", "-c", "env"])
        .env("FOO", "foo-value")
        .env("BAR", "bar-value")
        .env("FOOBAR", "$(FOO);;$(BAR)");
    test_container_output(
        &new_pod("var-expansion", c).manifest(),
        "var-expansion",
        &["FOO=foo-value", "BAR=bar-value", "FOOBAR=foo-value;;bar-value"],
    );
}

/// test/e2e/common/node/expansion.go, "Variable Expansion should allow substituting values in a container's
/// command [NodeConformance]".
#[test]
fn should_allow_substituting_values_in_a_containers_command() {
    prints_test_var(dapi().sh("TEST_VAR=wrong echo \"$(TEST_VAR)\""));
}

/// The check of both substitution tests: with `TEST_VAR=test-value` in its env, `dapi` prints `test-value`
/// and nothing else.
fn prints_test_var(dapi: ContainerBuilder) {
    let c = dapi.env("TEST_VAR", "test-value");
    let log = test_container_output(
        &new_pod("var-expansion", c).manifest(),
        "var-expansion",
        &["test-value"],
    );
    assert_eq!(log, "test-value\n");
}

/// test/e2e/common/node/expansion.go, "Variable Expansion should allow substituting values in a container's
/// args [NodeConformance]".
#[test]
fn should_allow_substituting_values_in_a_containers_args() {
    prints_test_var(
        dapi()
            .command(["sh", "-c"])
            .args(["TEST_VAR=wrong echo \"$(TEST_VAR)\""]),
    );
}

/// Not an upstream `It`: the rest of the kubelet's expansion rules (third_party/forked/golang/expansion,
/// pkg/kubelet/container/helpers.go `ExpandContainerCommandAndArgs`) that the conformance tests above
/// rely on: `$$(VAR)` is an escaped, literal `$(VAR)`; an undefined `$(VAR)` stays as written; an env
/// value sees only the variables defined before it; command and args see them all.
#[test]
fn escaped_and_undefined_references_stay_literal() {
    // The shell prints its `$0` and `$B` as they are: it does not evaluate what is inside them.
    let c = dapi()
        .command([
            "sh",
            "-c",
            "echo \"$0\"; echo \"B=$B\"",
            "$$(A)|$(A)|$(UNDEFINED)|$(LATER)",
        ])
        .env("A", "a-value")
        .env("B", "$(LATER)-$(A)-$$(A)")
        .env("LATER", "later-value");
    let log = test_container_output(&new_pod("var-expansion", c).manifest(), "var-expansion", &[]);
    assert_eq!(
        log,
        "$(A)|a-value|$(UNDEFINED)|later-value\nB=$(LATER)-a-value-$(A)\n"
    );
}

/// test/e2e/common/node/expansion.go, "Variable Expansion should allow substituting values in a volume
/// subpath": `subPathExpr: $(POD_NAME)` creates and mounts that directory of the volume.
#[test]
fn should_allow_substituting_values_in_a_volume_subpath() {
    let name = "var-expansion-subpath";
    let c = dapi()
        .sh(&format!("test -d /testcontainer/{name};echo $?"))
        .env("POD_NAME", name)
        .append("volumeMounts", sub_path_expr("/logscontainer", "$(POD_NAME)"))
        .mount("workdir1", "/testcontainer");
    let p = new_pod(name, c).empty_dir("workdir1");
    let log = test_container_output(&p.manifest(), name, &["0"]);
    assert_eq!(log, "0\n");
}

/// Upstream `testPodFailSubpath`: the container fails with CreateContainerConfigError (waiting).
fn test_pod_fail_subpath(value: &str) {
    let mut node = Node::new();
    let c = dapi()
        .env("POD_NAME", value)
        .append("volumeMounts", sub_path_expr("/logscontainer", "$(POD_NAME)"));
    let p = new_pod("var-expansion", c).empty_dir("workdir1");
    node.apply("p.yaml", &p.manifest());
    node.start();
    let p = node.wait_pod("var-expansion", "CreateContainerConfigError", T, |p| {
        st::waiting_reason(p, "dapi-container").as_deref() == Some("CreateContainerConfigError")
    });
    assert_eq!(st::phase(&p), "Pending");
    assert_eq!(st::restarts(&p, "dapi-container"), 0);
    finish(node, "p.yaml", "var-expansion");
}

/// test/e2e/common/node/expansion.go, "Variable Expansion should fail substituting values in a volume
/// subpath with backticks [Slow]" (upstream's value is `..`, which is what it really tests).
#[test]
fn should_fail_substituting_values_in_a_volume_subpath_with_backticks() {
    test_pod_fail_subpath("..");
}

/// test/e2e/common/node/expansion.go, "Variable Expansion should fail substituting values in a volume
/// subpath with absolute path [Slow]".
#[test]
fn should_fail_substituting_values_in_a_volume_subpath_with_absolute_path() {
    test_pod_fail_subpath("/tmp");
}

/// Upstream's pod whose subPathExpr expands the annotation `mysubpath`; it carries the annotation `key`.
fn annotated(key: &str, value: &str) -> String {
    let field = json!({"apiVersion": "v1", "fieldPath": "metadata.annotations['mysubpath']"});
    let c = dapi()
        .sh("tail -f /dev/null")
        .env("POD_NAME", "foo")
        .append(
            "env",
            json!({"name": "ANNOTATION", "valueFrom": {"fieldRef": field}}),
        )
        .append(
            "volumeMounts",
            sub_path_expr("/subpath_mount", "$(ANNOTATION)/$(POD_NAME)"),
        )
        .mount("workdir1", "/volume_mount");
    new_pod("var-expansion", c)
        .annotation(key, value)
        .empty_dir("workdir1")
        .manifest()
}

/// test/e2e/common/node/expansion.go, "Variable Expansion should verify that a failing subpath expansion can
/// be modified during the lifecycle of a container [Slow]": without the annotation the expansion is the
/// absolute `/foo` and the pod does not run; once the annotation is set it runs; it is then deleted
/// gracefully. Standalone manifests are static pods: the edit replaces the pod (a new uid), which then runs.
#[test]
fn should_verify_that_a_failing_subpath_expansion_can_be_modified_during_the_lifecycle_of_a_container() {
    let mut node = Node::new();
    node.apply("p.yaml", &annotated("notmysubpath", "mypath"));
    node.start();
    let p = node.wait_pod("var-expansion", "CreateContainerConfigError", T, |p| {
        st::waiting_reason(p, "dapi-container").as_deref() == Some("CreateContainerConfigError")
    });
    assert_ne!(st::phase(&p), "Running");
    node.apply("p.yaml", &annotated("mysubpath", "mypath"));
    node.wait_pod("var-expansion", "Running", T, |p| st::phase(p) == "Running");
    finish(node, "p.yaml", "var-expansion");
}

/// test/e2e/common/node/expansion.go, "Variable Expansion should succeed in writing subpaths in container
/// [Slow]": a file written at `mypath/foo` of the volume is seen in the subPathExpr mount; the pod keeps
/// running after the annotation changes, and is deleted gracefully.
#[test]
fn should_succeed_in_writing_subpaths_in_container() {
    let mut node = Node::new();
    node.apply("p.yaml", &annotated("mysubpath", "mypath"));
    node.start();
    node.wait_pod("var-expansion", "Running", T, |p| st::phase(p) == "Running");
    let touch = node.peapod(&[
        "exec",
        "var-expansion",
        "--",
        "sh",
        "-c",
        "touch /volume_mount/mypath/foo/test.log",
    ]);
    assert!(
        touch.status.success(),
        "expected to be able to write to subpath: {}",
        String::from_utf8_lossy(&touch.stderr)
    );
    let test = node.peapod(&[
        "exec",
        "var-expansion",
        "--",
        "sh",
        "-c",
        "test -f /subpath_mount/test.log",
    ]);
    assert!(test.status.success(), "expected to be able to verify file");
    node.apply("p.yaml", &annotated("mysubpath", "mynewpath"));
    node.wait_pod("var-expansion", "annotated pod running", T, |p| {
        st::phase(p) == "Running"
            && p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("mysubpath"))
                .map(String::as_str)
                == Some("mynewpath")
    });
    finish(node, "p.yaml", "var-expansion");
}
