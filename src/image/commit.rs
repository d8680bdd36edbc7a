//! Turning verified blobs into a named image, and a named image back into an [`Image`].
//!
//! Shared by import and pull: both first put every blob in the store, then call [`ImageStore::commit_image`]
//! with the manifest bytes; it checks the manifest against the blobs and the config's diffIDs, unpacks the
//! layers and records the names. This module must not fetch or parse archives.

use oci_spec::image::ImageConfiguration;

use super::digest::Digest;
use super::error::Error;
use super::media::{self, Manifest};
use super::refs::{now_secs, RefEntry};
use super::{Image, ImageStore};

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Everything an image is made of, read back from the store and checked.
struct Resolved {
    manifest_digest: Digest,
    config_digest: Digest,
    config: ImageConfiguration,
    layers: Vec<std::path::PathBuf>,
    size: u64,
}

impl ImageStore {
    /// Stores `manifest` and names it `names`; its config and layer blobs must already be in the store.
    /// Caller holds the shared lock. Returns the image under its first name.
    pub(crate) fn commit_image(
        &self,
        manifest: &[u8],
        names: &[String],
        repo_digest: Option<String>,
    ) -> Result<Image, Error> {
        let manifest_digest = self.write_blob_bytes(manifest)?;
        let resolved = self.resolve_manifest(&manifest_digest)?;
        let entry = RefEntry {
            manifest: manifest_digest.to_string(),
            config: resolved.config_digest.to_string(),
            repo_digest: repo_digest.clone(),
            size: resolved.size,
            created: resolved.config.created().clone(),
            added: now_secs(),
        };
        self.update_refs(|index| {
            for name in names {
                index.images.insert(name.clone(), entry.clone());
            }
        })?;
        for name in names {
            tracing::info!(image = %name, id = %resolved.config_digest, "stored image");
        }
        let name = names
            .first()
            .cloned()
            .unwrap_or_else(|| resolved.config_digest.to_string());
        Ok(image_from(name, repo_digest, resolved))
    }

    /// Loads the image a ref entry points to, re-unpacking any layer that has gone missing.
    pub(crate) fn load_image(&self, name: &str, entry: &RefEntry) -> Result<Image, Error> {
        let resolved = self.resolve_manifest(&Digest::parse(&entry.manifest)?)?;
        Ok(image_from(name.to_owned(), entry.repo_digest.clone(), resolved))
    }

    fn resolve_manifest(&self, manifest_digest: &Digest) -> Result<Resolved, Error> {
        let what = format!("manifest {manifest_digest}");
        let bytes = self.read_blob(manifest_digest, &what)?;
        let manifest = match media::parse_document(&bytes, media::OCI_MANIFEST, &what)? {
            media::Document::Manifest(manifest) => manifest,
            media::Document::Index(_) => {
                return Err(Error::UnsupportedMediaType {
                    what,
                    media_type: media::OCI_INDEX.into(),
                })
            }
        };
        let (config_digest, config) = self.read_config(&manifest, &what)?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::LayerCountMismatch {
                manifest: manifest_digest.to_string(),
                layers: manifest.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        let mut size = manifest.config.size;
        for (layer, diff_id) in manifest.layers.iter().zip(diff_ids) {
            let blob = layer.digest()?;
            if !media::is_layer_media_type(&layer.media_type) {
                return Err(Error::UnsupportedMediaType {
                    what: format!("layer {blob}"),
                    media_type: layer.media_type.clone(),
                });
            }
            let stored = self.blob_size(&blob)?;
            if stored != layer.size {
                let what = format!("layer {blob}");
                return Err(Error::SizeMismatch {
                    what,
                    expected: layer.size,
                    actual: stored,
                });
            }
            layers.push(self.ensure_layer(&blob, &Digest::parse(diff_id)?)?);
            size = size.saturating_add(layer.size);
        }
        Ok(Resolved {
            manifest_digest: manifest_digest.clone(),
            config_digest,
            config,
            layers,
            size,
        })
    }

    fn read_config(&self, manifest: &Manifest, what: &str) -> Result<(Digest, ImageConfiguration), Error> {
        let config_type = manifest.config.media_type.as_str();
        if !matches!(config_type, OCI_CONFIG | media::DOCKER_CONFIG) {
            return Err(Error::UnsupportedMediaType {
                what: format!("{what}: config"),
                media_type: config_type.to_owned(),
            });
        }
        let digest = manifest.config.digest()?;
        let config_what = format!("config {digest}");
        let bytes = self.read_blob(&digest, &config_what)?;
        if bytes.len() as u64 != manifest.config.size {
            return Err(Error::SizeMismatch {
                what: config_what,
                expected: manifest.config.size,
                actual: bytes.len() as u64,
            });
        }
        let config = serde_json::from_slice(&bytes).map_err(|source| Error::ParseJson {
            what: config_what,
            source,
        })?;
        Ok((digest, config))
    }
}

fn image_from(name: String, repo_digest: Option<String>, resolved: Resolved) -> Image {
    Image {
        name,
        id: resolved.config_digest.to_string(),
        manifest_digest: resolved.manifest_digest.to_string(),
        repo_digest,
        config: resolved.config,
        layers: resolved.layers,
    }
}
