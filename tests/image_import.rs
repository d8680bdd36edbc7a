//! Imports a real busybox image written by umoci and skopeo (oci-archive, docker-archive and umoci's own
//! tag-only layout) and checks the unpacked rootfs.

mod image_fixture;

use anyhow::{ensure, Context, Result};
use peapod::image::ImageStore;

use image_fixture::{build_busybox_layout, check_busybox_layer, require, run, skopeo_copy};

#[test]
fn imports_archives_written_by_skopeo_and_umoci() -> Result<()> {
    if !require(&["umoci", "skopeo", "tar"]) {
        return Ok(());
    }
    let work = tempfile::tempdir()?;
    let layout = build_busybox_layout(work.path(), "1.0")?;
    let oci_archive = work.path().join("busybox-oci.tar");
    let docker_archive = work.path().join("busybox-docker.tar");
    let source = format!("oci:{}:1.0", layout.display());
    skopeo_copy(
        &[],
        &source,
        &format!("oci-archive:{}:localhost/busybox:1.0", oci_archive.display()),
    )?;
    skopeo_copy(
        &[],
        &source,
        &format!(
            "docker-archive:{}:localhost/busybox-docker:1.0",
            docker_archive.display()
        ),
    )?;
    let store = ImageStore::open(work.path().join("images"))?;

    // skopeo's oci-archive names the image with the full reference.
    assert_eq!(store.import(&oci_archive)?, ["localhost/busybox:1.0"]);
    let oci = store
        .lookup("busybox:1.0")?
        .context("short name finds localhost/busybox:1.0")?;
    assert_eq!(oci.name, "localhost/busybox:1.0");
    assert_eq!(
        (oci.cmd(), oci.env(), oci.working_dir()),
        (
            &["/bin/sh".to_owned()][..],
            &["PATH=/bin".to_owned()][..],
            Some("/")
        )
    );
    ensure!(oci.layers.len() == 1, "one layer, got {:?}", oci.layers);
    check_busybox_layer(&oci.layers[0])?;

    // docker-archive: manifest.json + uncompressed layer; same config, so the same image ID and layer dir.
    assert_eq!(store.import(&docker_archive)?, ["localhost/busybox-docker:1.0"]);
    let docker = store
        .lookup("localhost/busybox-docker:1.0")?
        .context("docker-archive image")?;
    assert_eq!(docker.id, oci.id);
    assert_eq!(docker.layers, oci.layers, "layers are shared by diffID");
    check_busybox_layer(&docker.layers[0])?;

    // umoci's own layout names the image by tag only: the base name comes from the archive file.
    let umoci_archive = work.path().join("umoci.tar");
    run(
        "tar",
        &[
            "-C",
            &layout.display().to_string(),
            "-cf",
            &umoci_archive.display().to_string(),
            ".",
        ],
    )?;
    assert_eq!(store.import(&umoci_archive)?, ["localhost/umoci:1.0"]);

    let names: Vec<String> = store.list()?.into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "localhost/busybox-docker:1.0",
            "localhost/busybox:1.0",
            "localhost/umoci:1.0"
        ]
    );
    Ok(())
}
