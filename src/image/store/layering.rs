//! Layers stacked: what one layer planted (a symlink, a directory) never steers where a later layer is
//! written, collisions resolve the way overlayfs stacks them, and a decompression bomb stops at the limit.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::image::testutil::{commit_layers, config_json, gzip, is_root, manifest_json, Tar};

/// A read-only overlay of `layers` (bottom first) at `target`, unmounted on drop.
struct Overlay(PathBuf);

impl Overlay {
    fn mount(layers: &[PathBuf], target: &Path) -> Self {
        let lower: Vec<String> = layers.iter().rev().map(|l| l.display().to_string()).collect();
        let options = format!("lowerdir={}", lower.join(":"));
        fs::create_dir_all(target).expect("mountpoint");
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(options.as_str()),
        )
        .expect("mount overlay");
        Overlay(target.to_owned())
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn a_symlink_planted_by_an_earlier_layer_is_never_followed() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path().join("images")).expect("open");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).expect("outside");
    let outside_str = outside.display().to_string();
    let lower = Tar::default()
        .symlink("etc", &outside_str)
        .symlink("escape", "../../../../outside")
        .dir("dup")
        .file("dup/inner", b"dir in the lower layer")
        .file("same", b"lower")
        .file("gone", b"deleted above")
        .dir("opq")
        .file("opq/old", b"hidden above")
        .finish();
    let upper = Tar::default()
        .dir("etc")
        .file("etc/passwd", b"upper")
        .dir("escape")
        .file("escape/planted", b"upper")
        .file("dup", b"now a file")
        .file("same", b"upper")
        .file(".wh.gone", b"")
        .dir("opq")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"n")
        .finish();
    let image = commit_layers(&store, "localhost/stacked:1", &[lower, upper]).expect("commit");
    assert_eq!(
        fs::read_dir(&outside).expect("outside").count(),
        0,
        "nothing written outside"
    );
    assert!(fs::symlink_metadata(image.layers[1].join("etc"))
        .expect("etc")
        .is_dir());

    let merged = dir.path().join("merged");
    let _overlay = Overlay::mount(&image.layers, &merged);
    assert_eq!(fs::read(merged.join("etc/passwd")).expect("passwd"), b"upper");
    assert!(fs::symlink_metadata(merged.join("etc")).expect("etc").is_dir());
    assert_eq!(
        fs::read(merged.join("escape/planted")).expect("planted"),
        b"upper"
    );
    assert_eq!(fs::read(merged.join("dup")).expect("dup"), b"now a file");
    assert_eq!(fs::read(merged.join("same")).expect("same"), b"upper");
    assert!(
        fs::symlink_metadata(merged.join("gone")).is_err(),
        "whiteout hides the lower file"
    );
    let opq: Vec<_> = fs::read_dir(merged.join("opq"))
        .expect("opq")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(opq, ["new"], "opaque directory hides the lower entries");
    assert_eq!(fs::read_dir(&outside).expect("outside").count(), 0);
}

#[test]
fn a_decompression_bomb_stops_at_the_limit_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path().join("images"))
        .expect("open")
        .with_max_layer_bytes(1 << 20);
    let layer = Tar::default().file("zeros", &vec![0u8; 8 << 20]).finish();
    let blob = gzip(&layer);
    assert!(blob.len() < 64 * 1024, "the bomb is small: {}", blob.len());
    let config = config_json(&[Digest::of_bytes(&layer)]);
    let manifest = manifest_json(
        &config,
        &[(blob.clone(), "application/vnd.oci.image.layer.v1.tar+gzip")],
    );
    store.write_blob_bytes(&blob).expect("blob");
    store.write_blob_bytes(&config).expect("config");
    let shared = store.shared().expect("lock");
    let error = store
        .commit_image(&manifest, &["localhost/bomb:1".to_owned()], None)
        .expect_err("bomb refused");
    drop(shared);
    let message = crate::sys::chain(&error);
    assert!(
        message.contains("more than 1048576 bytes") && message.contains("decompression bomb"),
        "{message}"
    );
    assert_eq!(fs::read_dir(store.layers_dir()).expect("layers").count(), 0);
    assert!(store.list().expect("list").is_empty());
}
