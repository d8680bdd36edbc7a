//! Private images in cluster mode: a PodGroup whose image lives in an htpasswd registry on 127.0.0.1 runs
//! with an `imagePullSecrets` entry the agent reads from the PodGroup's namespace (with the chart's RBAC);
//! without the secret it gets containerd's "pull access denied" and the kubelet's secret warning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod image_fixture;

use std::time::Duration;

use common::cluster::{start_agent, ControlPlane};
use common::{pod, sleeper, st, test_images, wait_for, Node};
use image_fixture::registry::{Registry, REGISTRY};
use serde_json::json;

const T: Duration = Duration::from_secs(90);

/// A PodGroup bound to node-a whose container `main` runs `image` (pulled by `policy` with the pull secret
/// `secret`) until SIGTERM.
fn podgroup(name: &str, image: &str, policy: &str, secret: &str) -> String {
    pod(name)
        .namespace("default")
        .set("nodeName", json!("node-a"))
        .grace(2)
        .set("imagePullSecrets", json!([{"name": secret}]))
        .container(sleeper("main").image(image).pull_policy(policy))
        .podgroup_manifest()
}

#[test]
fn a_podgroup_with_a_private_image_and_a_pull_secret_runs() {
    if !image_fixture::require(&["skopeo", "perl", REGISTRY]) {
        return;
    }
    let archive = test_images().join("busybox.oci.tar");
    let (registry, image) = Registry::private("carol", "hunter2-cluster", &archive, "team/app:1").unwrap();

    let cp = ControlPlane::up();
    cp.node("node-a", &[], "2", "4Gi");
    let kubeconfig = cp.agent_kubeconfig();
    let mut node = Node::new();
    start_agent(&mut node, &kubeconfig, "node-a");
    cp.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "-n",
        "default",
        "--docker-server",
        &registry.host,
        "--docker-username",
        "carol",
        "--docker-password",
        "hunter2-cluster",
    ]);

    cp.apply(&podgroup("private", &image, "IfNotPresent", "regcred"));
    let running = cp.wait_pg("default", "private", "running", T, |p| st::running(p, "main"));
    let status = st::container(&running, "main");
    assert_eq!(status.image, image);
    assert!(
        status.image_id.contains("team/app@sha256:"),
        "{}",
        status.image_id
    );

    // Always pulls again, with this PodGroup's credentials only: a missing secret means none.
    cp.apply(&podgroup("nosecret", &image, "Always", "absent"));
    let events = wait_for("pull events", T, || {
        let events = cp.event_table("default");
        let done = [
            "FailedToRetrieveImagePullSecret",
            "Successfully pulled image",
            "Failed to pull image",
        ];
        done.iter().all(|w| events.contains(w)).then_some(events)
    });
    for want in [
        format!("Pulling image \"{image}\""),
        format!("Successfully pulled image \"{image}\" in "),
        "Unable to retrieve some image pull secrets (absent); attempting to pull the image may not succeed.".into(),
        format!(
            "Failed to pull image \"{image}\": failed to pull and unpack image \"{image}\": failed to resolve \
             reference \"{image}\": pull access denied, repository does not exist or may require authorization: \
             authorization failed: no basic auth credentials"
        ),
    ] {
        assert!(events.contains(&want), "missing {want:?} in\n{events}");
    }
    assert!(!events.contains("hunter2"), "no secret in events");
    assert!(
        !node.supervisor_log().contains("hunter2"),
        "no secret in the agent's log"
    );

    let waiting = cp.wait_pg("default", "nosecret", "waiting on the pull", T, |p| {
        matches!(
            st::waiting_reason(p, "main").as_deref(),
            Some("ErrImagePull" | "ImagePullBackOff")
        )
    });
    assert_eq!(st::container(&waiting, "main").image_id, "", "no image yet");
    cp.kubectl_ok(&["delete", "podgroups", "--all", "-n", "default", "--wait=false"]);
    wait_for("PodGroups deleted", T, || {
        cp.kubectl_ok(&["get", "podgroups", "-A", "-o", "name"])
            .trim()
            .is_empty()
            .then_some(())
    });
    node.finish(T);
    drop(registry);
}
