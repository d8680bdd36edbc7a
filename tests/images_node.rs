//! Images on a running node (`peapod run`): a private image pulled with `--registry-config`, and unused
//! images pruned (`peapod image prune`) and garbage collected over the disk threshold, never an image a
//! container on the node uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod image_fixture;

use std::time::Duration;

use base64::Engine as _;
use common::builder::PodBuilder;
use common::{pod, sleeper, st, test_images, wait_for, Node, BUSYBOX};
use image_fixture::registry::{Registry, REGISTRY};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// A PodGroup whose container `main` runs `image` until SIGTERM.
fn sleeper_pod(name: &str, image: &str) -> PodBuilder {
    pod(name).grace(2).container(sleeper("main").image(image))
}

/// Starts `peapod run` on the node's manifests with extra flags.
fn start(node: &mut Node, extra: &[&str]) {
    node.start_run(extra, &[]);
}

fn image_names(node: &Node) -> String {
    let out = node.peapod(&["image", "ls"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Imports a busybox image with its own ID (built by umoci, not the test image) as `localhost/other:1`.
fn import_other(node: &Node, work: &std::path::Path) {
    let layout = image_fixture::build_busybox_layout(work, "1.0").unwrap();
    let archive = work.join("other.oci.tar");
    let _ = std::fs::remove_file(&archive);
    image_fixture::skopeo_copy(
        &[],
        &format!("oci:{}:1.0", layout.display()),
        &format!("oci-archive:{}:localhost/other:1", archive.display()),
    )
    .unwrap();
    let out = node.peapod(&["image", "import", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn unused_images_are_pruned_and_collected_but_never_one_in_use() {
    if !image_fixture::require(&["umoci", "skopeo"]) {
        return;
    }
    let mut node = Node::new();
    node.apply("web.yaml", &sleeper_pod("web", BUSYBOX).podgroup_manifest());
    start(&mut node, &[]);
    node.wait_pod("web", "running", T, |p| st::running(p, "main"));

    let work = tempfile::tempdir().unwrap();
    import_other(&node, &work.path().join("a"));
    let out = node.peapod(&["image", "prune"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("Deleted: localhost/other:1"), "{printed}");
    assert!(printed.contains("Total reclaimed space: "), "{printed}");
    assert!(!printed.contains("busybox"), "the image in use stays: {printed}");
    let names = image_names(&node);
    assert!(
        names.contains("localhost/busybox") && !names.contains("localhost/other"),
        "{names}"
    );

    // Over the high threshold, the periodic collection (which runs at start) removes what is unused.
    import_other(&node, &work.path().join("b"));
    node.kill9();
    start(
        &mut node,
        &[
            "--image-gc-high-threshold",
            "1",
            "--image-gc-low-threshold",
            "0",
            "--minimum-image-ttl-duration",
            "0s",
        ],
    );
    wait_for("localhost/other collected", T, || {
        (!image_names(&node).contains("localhost/other")).then_some(())
    });
    assert!(image_names(&node).contains("localhost/busybox"));
    assert!(node.exec_ok("web", "main"), "the running container is untouched");
    let log = node.supervisor_log();
    assert!(log.contains("garbage collected image"), "{log}");

    node.finish(T);
}

#[test]
fn a_pod_pulls_a_private_image_with_the_node_registry_config() {
    if !image_fixture::require(&["skopeo", "perl", REGISTRY]) {
        return;
    }
    let mut node = Node::new();
    let archive = test_images().join("busybox.oci.tar");
    let (registry, image) = Registry::private("bob", "hunter2-node", &archive, "team/busybox:1").unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("bob:hunter2-node");
    let config = node.dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{auth}\"}}}}}}",
            registry.host
        ),
    )
    .unwrap();
    // Standalone pods have no API to read secrets from: the node's config is used, and the kubelet's
    // warning says so.
    node.apply(
        "private.yaml",
        &sleeper_pod("private", &image)
            .set("imagePullSecrets", json!([{"name": "regcred"}]))
            .podgroup_manifest(),
    );
    start(&mut node, &["--registry-config", config.to_str().unwrap()]);
    node.wait_pod("private", "running", T, |p| st::running(p, "main"));
    let log = node.supervisor_log();
    assert!(
        log.contains("Successfully pulled image") && log.contains(&image),
        "{log}"
    );
    assert!(log.contains("FailedToRetrieveImagePullSecret"), "{log}");
    assert!(
        log.contains("Unable to retrieve some image pull secrets (regcred); attempting to pull the image may not succeed."),
        "{log}"
    );
    assert!(!log.contains("hunter2"), "no secret in the log");
    let status = node.get("private").unwrap();
    let image_id = &st::container(&status, "main").image_id;
    assert!(image_id.contains("team/busybox@sha256:"), "{image_id}");

    node.finish(T);
    drop(registry);
}
