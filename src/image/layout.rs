//! Reading which images an ingested archive holds, and under which names.
//!
//! OCI layout: `index.json` entries, each an image manifest or a nested index (resolved to linux/<host
//! arch>); the name comes from `io.containerd.image.name` or `org.opencontainers.image.ref.name`, which
//! skopeo's `oci-archive:FILE:NAME` sets to the full name while umoci's `oci:DIR:TAG` sets only a tag (so a
//! value without `/`, `:` or `@` is a tag of the base name). Docker archive: `manifest.json` entries with
//! `Config`, `RepoTags` and `Layers` (uncompressed tars); peapod writes the Docker schema 2 manifest for
//! them, as containerd's importer does. This module must not write anything but that synthesized manifest.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::archive::ArchiveContents;
use super::digest::Digest;
use super::error::Error;
use super::media::{self, Descriptor, Document, Manifest};
use super::reference::Reference;
use super::ImageStore;

const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An image found in an archive: its manifest bytes and the names to store it under.
#[derive(Debug)]
pub(crate) struct PendingImage {
    pub manifest: Vec<u8>,
    pub names: Vec<String>,
}

/// The images of an OCI image layout archive.
pub(crate) fn oci_images(
    store: &ImageStore,
    contents: &ArchiveContents,
    archive: &Path,
    base: &str,
) -> Result<Vec<PendingImage>, Error> {
    let index_bytes = contents
        .metadata
        .get("index.json")
        .ok_or_else(|| Error::ArchiveEntryMissing {
            path: archive.to_owned(),
            entry: "index.json".into(),
        })?;
    let what = format!("{}: index.json", archive.display());
    let Document::Index(index) = media::parse_document(index_bytes, media::OCI_INDEX, &what)? else {
        return Err(invalid(archive, "index.json is not an image index"));
    };
    let mut images: BTreeMap<Digest, PendingImage> = BTreeMap::new();
    for entry in &index.manifests {
        let Some(manifest) = resolve_entry(store, entry, archive)? else {
            continue;
        };
        let name = match entry
            .annotation(ANNOTATION_IMAGE_NAME)
            .or_else(|| entry.annotation(ANNOTATION_REF_NAME))
        {
            Some(value) => name_from_annotation(value, base)?,
            None => format!("{base}:latest"),
        };
        let digest = Digest::of_bytes(&manifest);
        let image = images.entry(digest).or_insert_with(|| PendingImage {
            manifest,
            names: Vec::new(),
        });
        if !image.names.contains(&name) {
            image.names.push(name);
        }
    }
    if images.is_empty() {
        let (os, arch) = media::host_platform();
        return Err(invalid(archive, &format!("no image for platform {os}/{arch}")));
    }
    Ok(images.into_values().collect())
}

/// The manifest bytes an `index.json` entry stands for; `None` for another platform's manifest.
fn resolve_entry(store: &ImageStore, entry: &Descriptor, archive: &Path) -> Result<Option<Vec<u8>>, Error> {
    let (os, arch) = media::host_platform();
    if entry
        .platform
        .as_ref()
        .is_some_and(|p| p.os != os || p.architecture != arch)
    {
        return Ok(None);
    }
    let bytes = read_described(store, entry, archive)?;
    let what = format!("{}: {}", archive.display(), entry.digest);
    match media::parse_document(&bytes, &entry.media_type, &what)? {
        Document::Manifest(_) => Ok(Some(bytes)),
        Document::Index(nested) => {
            let chosen = media::choose_platform(&nested, &what)?;
            let bytes = read_described(store, chosen, archive)?;
            match media::parse_document(&bytes, &chosen.media_type, &what)? {
                Document::Manifest(_) => Ok(Some(bytes)),
                Document::Index(_) => Err(invalid(archive, "image index nested more than two deep")),
            }
        }
    }
}

/// Reads a described blob, checking digest and size.
fn read_described(store: &ImageStore, descriptor: &Descriptor, archive: &Path) -> Result<Vec<u8>, Error> {
    let digest = descriptor.digest()?;
    let what = format!("{}: blob {digest}", archive.display());
    let bytes = store.read_blob(&digest, &what).map_err(|error| match error {
        Error::BlobMissing { digest } => Error::ArchiveEntryMissing {
            path: archive.to_owned(),
            entry: digest,
        },
        other => other,
    })?;
    if bytes.len() as u64 != descriptor.size {
        return Err(Error::SizeMismatch {
            what,
            expected: descriptor.size,
            actual: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// A full reference (`localhost/busybox:1.0`) is used as is (tag defaulted); a bare tag goes on `base`.
fn name_from_annotation(value: &str, base: &str) -> Result<String, Error> {
    let full = if value.contains(['/', ':', '@']) {
        value.to_owned()
    } else {
        format!("{base}:{value}")
    };
    Ok(Reference::parse(&full)?.with_default_tag().to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The images of a `docker save` archive.
pub(crate) fn docker_images(
    store: &ImageStore,
    contents: &ArchiveContents,
    archive: &Path,
    base: &str,
) -> Result<Vec<PendingImage>, Error> {
    let what = format!("{}: manifest.json", archive.display());
    let bytes = contents
        .metadata
        .get("manifest.json")
        .map(Vec::as_slice)
        .unwrap_or_default();
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(bytes).map_err(|source| Error::ParseJson { what, source })?;
    let mut images = Vec::with_capacity(entries.len());
    for entry in entries {
        let (config_digest, config_size) = archive_blob(contents, &entry.config, archive)?;
        let mut layers = Vec::with_capacity(entry.layers.len());
        for layer in &entry.layers {
            let (digest, size) = archive_blob(contents, layer, archive)?;
            layers.push(plain_descriptor(layer_media_type(store, &digest)?, &digest, size));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::DOCKER_MANIFEST.into()),
            config: plain_descriptor(media::DOCKER_CONFIG.into(), &config_digest, config_size),
            layers,
        };
        let manifest = serde_json::to_vec(&manifest).map_err(|source| Error::ParseJson {
            what: format!("{}: manifest", archive.display()),
            source,
        })?;
        let tags = entry.repo_tags.unwrap_or_default();
        let names = if tags.is_empty() {
            vec![format!("{base}:latest")]
        } else {
            tags.iter()
                .map(|tag| Ok(Reference::parse(tag)?.with_default_tag().to_string()))
                .collect::<Result<_, Error>>()?
        };
        images.push(PendingImage { manifest, names });
    }
    Ok(images)
}

fn archive_blob(contents: &ArchiveContents, name: &str, archive: &Path) -> Result<(Digest, u64), Error> {
    contents
        .blob(name)
        .cloned()
        .ok_or_else(|| Error::ArchiveEntryMissing {
            path: archive.to_owned(),
            entry: name.to_owned(),
        })
}

fn plain_descriptor(media_type: String, digest: &Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type,
        digest: digest.to_string(),
        size,
        platform: None,
        annotations: None,
    }
}

/// Docker layer media type by the blob's magic bytes (docker save writes plain tars; others may not).
fn layer_media_type(store: &ImageStore, digest: &Digest) -> Result<String, Error> {
    let path = store.blob_path(digest);
    let mut head = [0u8; 4];
    let mut file = std::fs::File::open(&path).map_err(super::error::read_err(&path))?;
    let n = file.read(&mut head).map_err(super::error::read_err(&path))?;
    Ok(match head.get(..n).unwrap_or_default() {
        [0x1f, 0x8b, ..] => media::DOCKER_LAYER_GZIP.into(),
        [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd".into(),
        _ => media::DOCKER_LAYER.into(),
    })
}

fn invalid(archive: &Path, reason: &str) -> Error {
    Error::InvalidArchive {
        path: archive.to_owned(),
        reason: reason.to_owned(),
    }
}
