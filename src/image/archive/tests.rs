//! Import of OCI-layout and docker-save archives built in memory.

use std::fs;
use std::path::PathBuf;

use super::*;
use crate::image::testutil::{blob_name, config_json, gzip, is_root, manifest_json, sample_image, Tar};

struct Env {
    dir: tempfile::TempDir,
    store: ImageStore,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(dir.path().join("images")).expect("open");
        Self { dir, store }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).expect("write archive");
        path
    }
}

fn index_json(entries: &[serde_json::Value]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": entries})).expect("index")
}

fn manifest_entry(manifest: &[u8], ref_name: Option<&str>) -> serde_json::Value {
    let mut entry = serde_json::json!({
        "mediaType": media::OCI_MANIFEST,
        "digest": Digest::of_bytes(manifest).to_string(),
        "size": manifest.len(),
    });
    if let Some(name) = ref_name {
        entry["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
    }
    entry
}

/// An OCI layout archive holding `blobs` and `index`.
fn oci_archive(index: &[u8], blobs: &[&[u8]]) -> Vec<u8> {
    let mut tar = Tar::default()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .dir("blobs")
        .dir("blobs/sha256");
    for blob in blobs {
        tar = tar.file(&blob_name(blob), blob);
    }
    tar.file("index.json", index).finish()
}

#[test]
fn oci_archive_with_full_reference_name() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let (_, blob, config, manifest) = sample_image(b"oci");
    let index = index_json(&[manifest_entry(&manifest, Some("localhost/hello:1.0"))]);
    let path = env.write("hello.tar", &oci_archive(&index, &[&blob, &config, &manifest]));
    assert_eq!(env.store.import(&path).expect("import"), ["localhost/hello:1.0"]);
    let image = env.store.lookup("hello:1.0").expect("lookup").expect("found");
    assert_eq!(
        fs::read(image.layers[0].join("bin/hello")).expect("layer"),
        b"oci"
    );
}

#[test]
fn oci_archive_with_tag_only_names_uses_the_base_name() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let (_, blob, config, manifest) = sample_image(b"tagged");
    let index = index_json(&[
        manifest_entry(&manifest, Some("2.0")),
        manifest_entry(&manifest, None),
    ]);
    let archive = oci_archive(&index, &[&blob, &config, &manifest]);
    let path = env.write("My Image.tar", &archive);
    assert_eq!(
        env.store.import(&path).expect("import"),
        ["localhost/my-image:2.0", "localhost/my-image:latest"]
    );
    let options = ImportOptions {
        base_name: Some("127.0.0.1:5000/team/app".into()),
    };
    assert_eq!(
        env.store.import_with(&path, &options).expect("import"),
        ["127.0.0.1:5000/team/app:2.0", "127.0.0.1:5000/team/app:latest"]
    );
}

#[test]
fn nested_index_resolves_to_the_host_platform() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let (_, blob, config, manifest) = sample_image(b"native");
    let (os, arch) = media::host_platform();
    let platform_entry = |arch: &str, digest: String| {
        serde_json::json!({
            "mediaType": media::OCI_MANIFEST, "digest": digest, "size": manifest.len(),
            "platform": {"os": os, "architecture": arch},
        })
    };
    let other = format!("sha256:{}", "e".repeat(64));
    let nested = index_json(&[
        platform_entry("s390x-not-us", other),
        platform_entry(arch, Digest::of_bytes(&manifest).to_string()),
    ]);
    let top = index_json(&[serde_json::json!({
        "mediaType": media::OCI_INDEX, "digest": Digest::of_bytes(&nested).to_string(), "size": nested.len(),
        "annotations": {"org.opencontainers.image.ref.name": "localhost/multi:1"},
    })]);
    let path = env.write(
        "multi.tar",
        &oci_archive(&top, &[&blob, &config, &manifest, &nested]),
    );
    assert_eq!(env.store.import(&path).expect("import"), ["localhost/multi:1"]);
}

#[test]
fn zstd_layers_and_gzipped_archives_import() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let layer = Tar::default().file("z", b"zstd layer").finish();
    let blob = zstd::encode_all(&layer[..], 3).expect("zstd");
    let config = config_json(&[Digest::of_bytes(&layer)]);
    let manifest = manifest_json(
        &config,
        &[(blob.clone(), "application/vnd.oci.image.layer.v1.tar+zstd")],
    );
    let index = index_json(&[manifest_entry(&manifest, Some("localhost/z:1"))]);
    let path = env.write(
        "z.tar.gz",
        &gzip(&oci_archive(&index, &[&blob, &config, &manifest])),
    );
    assert_eq!(env.store.import(&path).expect("import"), ["localhost/z:1"]);
    let image = env.store.lookup("localhost/z:1").expect("lookup").expect("found");
    assert_eq!(fs::read(image.layers[0].join("z")).expect("layer"), b"zstd layer");
}

#[test]
fn a_blob_that_does_not_match_its_name_is_refused() {
    let env = Env::new();
    let (_, blob, config, manifest) = sample_image(b"x");
    let index = index_json(&[manifest_entry(&manifest, Some("localhost/bad:1"))]);
    let mut archive = Tar::default()
        .file("oci-layout", b"{}")
        .file(&blob_name(&blob), b"not the layer");
    archive = archive
        .file(&blob_name(&config), &config)
        .file(&blob_name(&manifest), &manifest);
    let path = env.write("bad.tar", &archive.file("index.json", &index).finish());
    assert!(matches!(
        env.store.import(&path),
        Err(Error::DigestMismatch { .. })
    ));
    assert!(env.store.list().expect("list").is_empty());
}

#[test]
fn a_missing_blob_is_named() {
    let env = Env::new();
    let (_, _, config, manifest) = sample_image(b"x");
    let index = index_json(&[manifest_entry(&manifest, Some("localhost/bad:1"))]);
    let path = env.write("missing.tar", &oci_archive(&index, &[&config, &manifest]));
    assert!(matches!(env.store.import(&path), Err(Error::BlobMissing { .. })));
}

/// A docker-save archive: uncompressed layer linked from `<id>/layer.tar`, config `<hex>.json`.
fn docker_archive(layer: &[u8], config: &[u8], repo_tags: serde_json::Value) -> Vec<u8> {
    let layer_name = format!("{}.tar", Digest::of_bytes(layer).hex());
    let config_name = format!("{}.json", Digest::of_bytes(config).hex());
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name, "RepoTags": repo_tags, "Layers": ["abc123/layer.tar"],
    }]))
    .expect("manifest.json");
    Tar::default()
        .file(&layer_name, layer)
        .file(&config_name, config)
        .dir("abc123")
        .symlink("abc123/layer.tar", &format!("../{layer_name}"))
        .file("abc123/VERSION", b"1.0")
        .file("manifest.json", &manifest)
        .finish()
}

#[test]
fn docker_archive_imports_under_its_repo_tags() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let (layer, _, config, _) = sample_image(b"docker");
    let path = env.write(
        "d.tar",
        &docker_archive(
            &layer,
            &config,
            serde_json::json!(["busybox:latest", "localhost/busybox:1"]),
        ),
    );
    assert_eq!(
        env.store.import(&path).expect("import"),
        ["busybox:latest", "localhost/busybox:1"]
    );
    let image = env.store.lookup("busybox").expect("lookup").expect("found");
    assert_eq!(image.name, "busybox:latest");
    assert_eq!(
        image.id,
        Digest::of_bytes(&config).to_string(),
        "the image ID is the config digest, as docker shows it"
    );
    assert_eq!(
        fs::read(image.layers[0].join("bin/hello")).expect("layer"),
        b"docker"
    );
}

#[test]
fn docker_archive_layer_must_match_the_config_diff_ids() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let (_, _, config, _) = sample_image(b"expected");
    let other_layer = Tar::default().file("other", b"content").finish();
    let path = env.write(
        "d.tar",
        &docker_archive(&other_layer, &config, serde_json::json!(null)),
    );
    assert!(matches!(
        env.store.import(&path),
        Err(Error::DiffIdMismatch { .. })
    ));
    assert!(env.store.list().expect("list").is_empty());
}

#[test]
fn unrecognized_and_oversized_archives_are_refused() {
    let env = Env::new();
    let path = env.write("junk.tar", &Tar::default().file("hello", b"world").finish());
    assert!(matches!(
        env.store.import(&path),
        Err(Error::UnrecognizedArchive { .. })
    ));
    let huge = vec![b' '; 5 * 1024 * 1024];
    let path = env.write(
        "huge.tar",
        &Tar::default()
            .file("oci-layout", b"{}")
            .file("index.json", &huge)
            .finish(),
    );
    assert!(matches!(env.store.import(&path), Err(Error::TooLarge { .. })));
}

#[test]
fn base_names_come_from_the_file_stem() {
    let cases = [
        ("busybox.tar", "localhost/busybox"),
        ("My App.tar.gz", "localhost/my-app"),
        ("...", "localhost/image"),
        ("x.oci", "localhost/x"),
    ];
    for (file, want) in cases {
        assert_eq!(
            base_name(&ImportOptions::default(), Path::new(file)).expect(file),
            want,
            "{file}"
        );
    }
    let tagged = ImportOptions {
        base_name: Some("a:1".into()),
    };
    assert!(base_name(&tagged, Path::new("x.tar")).is_err());
}
