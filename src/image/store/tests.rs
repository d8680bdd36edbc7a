//! Store atomicity: sweeping, blob verification, layer verification, commit/lookup/list/remove.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::image::testutil::{is_root, sample_image};

fn open() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path().join("images")).expect("open store");
    (dir, store)
}

/// Puts the sample image's blobs in the store and commits it under `name`.
fn commit_sample(store: &ImageStore, name: &str, content: &[u8]) -> Vec<u8> {
    let (_, blob, config, manifest) = sample_image(content);
    store.write_blob_bytes(&blob).expect("layer blob");
    store.write_blob_bytes(&config).expect("config blob");
    let _shared = store.shared().expect("lock");
    store
        .commit_image(&manifest, &[name.to_owned()], None)
        .expect("commit");
    manifest
}

#[test]
fn open_creates_private_directories() {
    let (_dir, store) = open();
    for sub in ["", "blobs/sha256", "layers/sha256", "ingest"] {
        let mode = fs::metadata(store.root().join(sub))
            .expect(sub)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{sub}");
    }
}

#[test]
fn open_sweeps_leftovers_of_interrupted_writes() {
    let (_dir, store) = open();
    let new_layer = store.layers_dir().join("new-123-0-0");
    fs::create_dir_all(new_layer.join("etc")).expect("leftover layer");
    let ingest = store.ingest_dir().join("123-0-0");
    fs::write(&ingest, b"half a blob").expect("leftover blob");
    let refs_temp = store.root().join(format!("{REFS_TEMP_PREFIX}1"));
    fs::write(&refs_temp, b"{").expect("leftover refs");
    let committed = store.layers_dir().join("a".repeat(64));
    fs::create_dir(&committed).expect("committed layer");

    ImageStore::open(store.root()).expect("reopen");
    assert!(!new_layer.exists() && !ingest.exists() && !refs_temp.exists());
    assert!(committed.exists(), "committed layers are never swept");
}

#[test]
fn sweep_waits_for_nobody_and_skips_while_the_store_is_in_use() {
    let (_dir, store) = open();
    let ingest = store.ingest_dir().join("busy-0-0");
    fs::write(&ingest, b"another process is writing this").expect("in-flight blob");
    let in_use = store.shared().expect("shared");
    ImageStore::open(store.root()).expect("reopen while in use");
    assert!(
        ingest.exists(),
        "an in-flight write must survive another process's open"
    );
    drop(in_use);
    ImageStore::open(store.root()).expect("reopen when idle");
    assert!(!ingest.exists());
}

#[test]
fn blob_commit_verifies_the_digest_and_cleans_up() {
    let (_dir, store) = open();
    let data = b"the whole blob".to_vec();
    let expected = Digest::of_bytes(&data);
    let mut writer = store.blob_writer().expect("writer");
    writer.write_all(&data[..5]).expect("write truncated");
    assert!(matches!(
        writer.commit(Some(&expected)),
        Err(Error::DigestMismatch { .. })
    ));
    assert!(!store.has_blob(&expected));
    assert_eq!(
        fs::read_dir(store.ingest_dir()).expect("ingest").count(),
        0,
        "temporary removed"
    );

    assert_eq!(store.write_blob_bytes(&data).expect("write"), expected);
    let mode = fs::metadata(store.blob_path(&expected))
        .expect("blob")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o444, "committed blobs are read-only");
}

#[test]
fn a_truncated_blob_fails_verification_on_read() {
    let (_dir, store) = open();
    let data = br#"{"schemaVersion":2}"#;
    let digest = store.write_blob_bytes(data).expect("write");
    let path = store.blob_path(&digest);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(&path, &data[..4]).expect("truncate");
    assert!(matches!(
        store.read_blob(&digest, "manifest"),
        Err(Error::DigestMismatch { .. })
    ));
}

#[test]
fn commit_lookup_list_remove_round_trip() {
    if !is_root() {
        return;
    }
    let (_dir, store) = open();
    commit_sample(&store, "localhost/hello:latest", b"hi");
    let image = store
        .lookup("hello")
        .expect("lookup")
        .expect("found via localhost/");
    assert_eq!(image.name, "localhost/hello:latest");
    assert_eq!(image.cmd(), ["/bin/sh"]);
    assert_eq!(image.layers.len(), 1);
    assert_eq!(
        fs::read(image.layers[0].join("bin/hello")).expect("unpacked"),
        b"hi"
    );
    let listed = store.list().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].created.as_deref()),
        (image.id.as_str(), Some("2024-01-02T03:04:05Z"))
    );
    assert_eq!(store.remove("hello").expect("remove"), "localhost/hello:latest");
    assert!(store.lookup("hello").expect("lookup").is_none());
    assert!(matches!(store.remove("hello"), Err(Error::ImageNotFound { .. })));
}

#[test]
fn lookup_reunpacks_a_missing_layer_and_rejects_a_corrupt_config() {
    if !is_root() {
        return;
    }
    let (_dir, store) = open();
    commit_sample(&store, "localhost/hello:latest", b"again");
    let image = store.lookup("localhost/hello").expect("lookup").expect("found");
    fs::remove_dir_all(&image.layers[0]).expect("lose the layer");
    let again = store.lookup("localhost/hello").expect("lookup").expect("found");
    assert_eq!(
        fs::read(again.layers[0].join("bin/hello")).expect("re-unpacked"),
        b"again"
    );

    let config = Digest::parse(&image.id).expect("id");
    let path = store.blob_path(&config);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(&path, b"{}").expect("corrupt config");
    assert!(matches!(
        store.lookup("localhost/hello"),
        Err(Error::DigestMismatch { .. })
    ));
}

#[test]
fn a_layer_with_the_wrong_diff_id_is_refused_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let (_dir, store) = open();
    let (_, blob, _, _) = sample_image(b"x");
    let blob_digest = store.write_blob_bytes(&blob).expect("blob");
    let wrong = Digest::of_bytes(b"not the layer");
    let _shared = store.shared().expect("lock");
    assert!(matches!(
        store.ensure_layer(&blob_digest, &wrong),
        Err(Error::DiffIdMismatch { .. })
    ));
    assert_eq!(
        fs::read_dir(store.layers_dir()).expect("layers").count(),
        0,
        "no new-* or layer left behind"
    );
}

#[test]
fn concurrent_unpacks_of_one_layer_agree() {
    if !is_root() {
        return;
    }
    let (_dir, store) = open();
    let (layer, blob, _, _) = sample_image(b"shared");
    let blob_digest = store.write_blob_bytes(&blob).expect("blob");
    let diff_id = Digest::of_bytes(&layer);
    let _shared = store.shared().expect("lock");
    let results: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| store.ensure_layer(&blob_digest, &diff_id)))
            .collect();
        workers.into_iter().map(|w| w.join().expect("thread")).collect()
    });
    for result in &results {
        assert_eq!(result.as_ref().expect("unpacked"), &store.layer_path(&diff_id));
    }
    let names: Vec<_> = fs::read_dir(store.layers_dir())
        .expect("layers")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        [std::ffi::OsString::from(diff_id.hex())],
        "one layer, no new-* left"
    );
    assert_eq!(
        fs::read(store.layer_path(&diff_id).join("bin/hello")).expect("content"),
        b"shared"
    );
}
