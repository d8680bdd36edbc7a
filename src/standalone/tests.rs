//! Scanning manifests: bad files are reported and skip nothing else; uids are stable, checked and unique.

use super::*;
use crate::api::validation;

/// The scan reported an error naming both `file` and `what`.
fn assert_reported(s: &Scan, file: &str, what: &str) {
    assert!(
        s.errors.iter().any(|e| e.contains(file) && e.contains(what)),
        "{:?}",
        s.errors
    );
}

#[test]
fn scan_reports_bad_files_and_keeps_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: localhost/busybox:1}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("dup.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers: [{name: c, image: img1}, {name: c, image: img2}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: [\n",
    )
    .unwrap();
    let s = scan(&[dir.path().to_path_buf()], "node-a");
    assert_eq!(s.pods.len(), 1);
    let pod = s.pods.values().next().unwrap();
    assert_eq!(pod.spec.pod.node_name.as_deref(), Some("node-a"));
    assert_eq!(pod.spec.pod.restart_policy.as_deref(), Some("Always"));
    assert_eq!(s.invalid.len(), 1);
    let (_, _, msg) = s.invalid.values().next().unwrap();
    assert!(
        msg.contains("spec.containers[1].name: Duplicate value: \"c\""),
        "{msg}"
    );
    assert!(
        s.errors.iter().any(|e| e.contains("broken.yaml")),
        "{:?}",
        s.errors
    );
    assert_reported(&s, "dup.yaml", "default/bad");
    // Same content, same uid; edited content, new uid.
    let again = scan(&[dir.path().to_path_buf()], "node-a");
    assert_eq!(
        again.pods.keys().collect::<Vec<_>>(),
        s.pods.keys().collect::<Vec<_>>()
    );
    let other_node = scan(&[dir.path().to_path_buf()], "node-b");
    assert_ne!(other_node.pods.keys().next(), s.pods.keys().next());
}

fn write_pod(dir: &std::path::Path, file: &str, name: &str, uid: &str) {
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, uid: {uid:?}}}\nspec:\n  containers: [{{name: c, image: localhost/busybox:1}}]\n"
    );
    std::fs::write(dir.join(file), yaml).unwrap();
}

#[test]
fn a_uid_that_is_not_a_uuid_is_refused_under_a_safe_key() {
    let dir = tempfile::tempdir().unwrap();
    write_pod(dir.path(), "evil.yaml", "x", "../../../victim/existing");
    let s = scan(&[dir.path().to_path_buf()], "node-a");
    assert!(s.pods.is_empty());
    let (key, (pod, reason, msg)) = s.invalid.iter().next().unwrap();
    assert_eq!(*reason, "InvalidSpec");
    assert_eq!(
        msg,
        r#"metadata.uid: Invalid value: "../../../victim/existing": must be a lowercase UUID in 8-4-4-4-12 format"#
    );
    assert!(validation::is_valid_uid(key), "{key}");
    assert_eq!(pod.metadata.uid.as_deref(), Some(key.as_str()));
    assert_reported(&s, "evil.yaml", "metadata.uid");
}

#[test]
fn two_manifests_never_share_a_uid() {
    let dir = tempfile::tempdir().unwrap();
    let uid = "9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d01";
    write_pod(dir.path(), "a.yaml", "first", uid);
    write_pod(dir.path(), "b.yaml", "second", uid);
    let s = scan(&[dir.path().to_path_buf()], "node-a");
    assert_eq!(s.pods.len(), 1);
    assert_eq!(s.pods[uid].metadata.name.as_deref(), Some("first"));
    assert!(s.invalid.is_empty());
    let (ignored, _) = s.duplicates.values().next().unwrap();
    assert_eq!(ignored.metadata.name.as_deref(), Some("second"));
    let want = format!(
        r#"b.yaml: PodGroup default/second: metadata.uid: Duplicate value: "{uid}": PodGroup default/first in "#
    );
    assert!(
        s.errors
            .iter()
            .any(|e| e.contains(&want) && e.ends_with("a.yaml has this uid; ignoring this one")),
        "{:?}",
        s.errors
    );
}
