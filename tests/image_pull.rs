//! Pulls from Debian's docker-registry on 127.0.0.1 (image_fixture/registry.rs) after pushing the busybox
//! image into it with skopeo: by tag, by short name with a default registry, by digest, through a
//! multi-platform index; and the error kinds for missing images, dead registries and unpullable names.

mod image_fixture;

use std::path::Path;

use anyhow::{Context, Result};
use peapod::image::{Error, ErrorKind, Image, ImageStore, PullOptions};
use sha2::Digest as _;

use image_fixture::registry::{free_port, Registry, REGISTRY};
use image_fixture::{build_busybox_layout, check_busybox_layer, require, run, skopeo_copy};

/// Adds tag `multi` to the layout: an OCI index with the host-platform busybox and a decoy manifest
/// (different Cmd) for another architecture.
fn add_multi_platform_index(layout: &Path) -> Result<()> {
    let image = format!("{}:1.0", layout.display());
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--tag",
            "decoy",
            "--config.cmd",
            "/decoy",
        ],
    )?;
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_path)?)?;
    let entries = index["manifests"].as_array().context("manifests")?.clone();
    let by_tag = |tag: &str| {
        entries
            .iter()
            .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .cloned()
            .context("tag")
    };
    let (native, decoy) = (by_tag("1.0")?, by_tag("decoy")?);
    let platform = |arch: &str| serde_json::json!({"os": "linux", "architecture": arch});
    let host_arch = if cfg!(target_arch = "x86_64") {
        "amd64"
    } else {
        "arm64"
    };
    let entry = |e: &serde_json::Value, arch: &str| serde_json::json!({"mediaType": e["mediaType"], "digest": e["digest"], "size": e["size"], "platform": platform(arch)});
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&decoy, "s390x"), entry(&native, host_arch)],
    }))?;
    let hex = hex::encode(sha2::Sha256::digest(&nested));
    std::fs::write(layout.join("blobs/sha256").join(&hex), &nested)?;
    index["manifests"]
        .as_array_mut()
        .context("manifests")?
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": nested.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    std::fs::write(index_path, serde_json::to_vec(&index)?)?;
    Ok(())
}

#[tokio::test]
async fn pulls_from_a_loopback_registry() -> Result<()> {
    if !require(&["umoci", "skopeo", REGISTRY]) {
        return Ok(());
    }
    let work = tempfile::tempdir()?;
    let layout = build_busybox_layout(work.path(), "1.0")?;
    add_multi_platform_index(&layout)?;
    let registry = Registry::start()?;
    let host = registry.host.clone();
    let push = |tag: &str, all: bool| {
        let mut flags = vec!["--dest-tls-verify=false"];
        if all {
            flags.push("--all");
        }
        skopeo_copy(
            &flags,
            &format!("oci:{}:{tag}", layout.display()),
            &format!("docker://{host}/busybox:{tag}"),
        )
    };
    push("1.0", false)?;
    push("multi", true)?;
    let store = ImageStore::open(work.path().join("images"))?;
    let none = PullOptions::default();

    let image = store.pull(&format!("{host}/busybox:1.0"), &none).await?;
    assert_eq!(image.name, format!("{host}/busybox:1.0"));
    assert_eq!(
        image.repo_digest,
        Some(format!("{host}/busybox@{}", image.manifest_digest))
    );
    check_busybox_layer(&image.layers[0])?;
    let found = store
        .lookup(&format!("{host}/busybox:1.0"))?
        .context("stored under its full name")?;
    assert_eq!(found.id, image.id);

    check_short_name(&store, &host, &image).await?;

    let pinned = store
        .pull(&format!("{host}/busybox@{}", image.manifest_digest), &none)
        .await?;
    assert_eq!(pinned.id, image.id);

    let multi = store.pull(&format!("{host}/busybox:multi"), &none).await?;
    assert_eq!(
        multi.cmd(),
        ["/bin/sh"],
        "the host platform's manifest, not the decoy"
    );
    let list_digest = multi.repo_digest.clone().context("repo digest")?;
    assert!(
        !list_digest.ends_with(&multi.manifest_digest),
        "repo digest names the index: {list_digest}"
    );

    check_not_found(&store, &host).await?;
    drop(registry);
    Ok(())
}

/// A short name pulls the same image when the registry is the default one, and is not qualified without it.
async fn check_short_name(store: &ImageStore, host: &str, image: &Image) -> Result<()> {
    let with_default = PullOptions {
        default_registry: Some(host.to_string()),
        ..PullOptions::default()
    };
    let short = store.pull("busybox:1.0", &with_default).await?;
    assert_eq!(
        (short.name.as_str(), short.id.as_str()),
        (image.name.as_str(), image.id.as_str())
    );
    assert!(store.lookup_with("busybox:1.0", Some(host))?.is_some());
    assert!(
        store.lookup("busybox:1.0")?.is_none(),
        "without the registry the short name is not qualified"
    );
    Ok(())
}

/// The error of a pull of `name` that must fail.
async fn pull_error(store: &ImageStore, name: &str) -> Result<Error> {
    let pulled = store.pull(name, &PullOptions::default()).await;
    pulled
        .err()
        .with_context(|| format!("the pull of {name} succeeded"))
}

/// A missing tag or repository is NotFound, with containerd's wording.
async fn check_not_found(store: &ImageStore, host: &str) -> Result<()> {
    let missing = pull_error(store, &format!("{host}/busybox:nope")).await?;
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    let nope = format!("{host}/busybox:nope");
    assert_eq!(
        peapod::runtime::chain(&missing),
        format!("failed to pull and unpack image \"{nope}\": failed to resolve reference \"{nope}\": {nope}: not found"),
        "containerd's wording, which the kubelet shows"
    );
    let missing_repo = pull_error(store, &format!("{host}/nothing/here:1")).await?;
    assert_eq!(missing_repo.kind(), ErrorKind::NotFound, "{missing_repo}");
    Ok(())
}

#[tokio::test]
async fn unpullable_names_and_dead_registries_fail_clearly() -> Result<()> {
    let work = tempfile::tempdir()?;
    let store = ImageStore::open(work.path().join("images"))?;
    let cases = [
        (
            "busybox",
            ErrorKind::NotPullable,
            "short name \"busybox\" needs a registry",
        ),
        ("localhost/busybox:1", ErrorKind::NotPullable, "local-only"),
        ("Not/Valid", ErrorKind::InvalidName, "must be lowercase"),
    ];
    for (name, kind, text) in cases {
        let error = pull_error(&store, name).await?;
        assert_eq!(error.kind(), kind, "{name}: {error}");
        assert!(error.to_string().contains(text), "{name}: {error}");
    }
    let dead = format!("127.0.0.1:{}", free_port()?);
    let error = pull_error(&store, &format!("{dead}/busybox:1")).await?;
    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
    Ok(())
}

#[tokio::test]
async fn docker_schema2_and_zstd_layers_pull() -> Result<()> {
    if !require(&["umoci", "skopeo", REGISTRY]) {
        return Ok(());
    }
    let work = tempfile::tempdir()?;
    let layout = build_busybox_layout(work.path(), "1.0")?;
    let registry = Registry::start()?;
    let source = format!("oci:{}:1.0", layout.display());
    let host = registry.host.clone();
    let push = |flags: &[&str], name: &str| {
        let mut all = vec!["--dest-tls-verify=false"];
        all.extend_from_slice(flags);
        skopeo_copy(&all, &source, &format!("docker://{host}/{name}"))
    };
    // zstd first: once the registry holds the gzip blob, skopeo would reuse it instead of recompressing.
    push(
        &[
            "--format",
            "oci",
            "--dest-compress",
            "--dest-compress-format",
            "zstd",
        ],
        "zstd:1",
    )?;
    push(&["--format", "v2s2"], "docker:1")?;
    let store = ImageStore::open(work.path().join("images"))?;
    for (name, media_type) in [
        ("docker:1", "application/vnd.docker.image.rootfs.diff.tar.gzip"),
        ("zstd:1", "application/vnd.oci.image.layer.v1.tar+zstd"),
    ] {
        let image = store
            .pull(&format!("{host}/{name}"), &PullOptions::default())
            .await?;
        let manifest = std::fs::read(
            store
                .root()
                .join("blobs/sha256")
                .join(image.manifest_digest.trim_start_matches("sha256:")),
        )?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest)?;
        assert_eq!(manifest["layers"][0]["mediaType"], media_type, "{name}");
        check_busybox_layer(&image.layers[0])?;
    }
    drop(registry);
    Ok(())
}
