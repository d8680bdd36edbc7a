//! What an image is made of on disk (blobs by digest, layer directories by diffID), reference counts
//! over the roots, deletion, and the per-image leases.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use oci_spec::image::ImageConfiguration;

use super::{lease_id, StoredImage};
use crate::image::digest::Digest;
use crate::image::error::{read_err, Error};
use crate::image::media::{self, Document};
use crate::image::store::{remove_any, unique_name, LAYER_TEMP_PREFIX};
use crate::image::ImageStore;

/// One piece of stored content.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Item {
    Blob(Digest),
    Layer(Digest),
}

/// The content one root reaches; `complete` is false when its config could not be read, so its layers
/// are unknown.
#[derive(Debug, Default)]
pub(super) struct Content {
    items: BTreeSet<Item>,
    complete: bool,
}

/// How many roots reach each item. Once any root is incomplete nothing is deleted (its layers might be
/// among the candidates).
#[derive(Debug, Default)]
pub(super) struct Refcounts {
    counts: BTreeMap<Item, usize>,
    incomplete: bool,
}

impl Refcounts {
    pub(super) fn add(&mut self, content: Content) {
        self.incomplete |= !content.complete;
        for item in content.items {
            *self.counts.entry(item).or_default() += 1;
        }
    }

    /// Items of `stored` no root reaches.
    pub(super) fn unreferenced(&self, stored: Vec<Item>) -> Vec<Item> {
        if self.refuse() {
            return Vec::new();
        }
        stored
            .into_iter()
            .filter(|i| !self.counts.contains_key(i))
            .collect()
    }

    /// Drops one root's references; returns the items nothing reaches any more.
    pub(super) fn release(&mut self, content: &Content) -> Vec<Item> {
        let mut freed = Vec::new();
        for item in &content.items {
            if let Some(count) = self.counts.get_mut(item) {
                *count -= 1;
                if *count == 0 {
                    self.counts.remove(item);
                    freed.push(item.clone());
                }
            }
        }
        if self.refuse() {
            return Vec::new();
        }
        freed
    }

    fn refuse(&self) -> bool {
        if self.incomplete {
            tracing::warn!("an image config could not be read; not deleting image content");
        }
        self.incomplete
    }
}

impl ImageStore {
    /// The content image `id` reaches through its config and the manifests of its names.
    pub(super) fn content_of(&self, id: &str, image: Option<&StoredImage>) -> Result<Content, Error> {
        let mut content = Content::default();
        let Ok(config) = Digest::parse(id) else {
            return Ok(content);
        };
        content.items.insert(Item::Blob(config.clone()));
        match self.read_blob(&config, &format!("config {config}")) {
            Ok(bytes) => {
                if let Ok(parsed) = serde_json::from_slice::<ImageConfiguration>(&bytes) {
                    content.complete = true;
                    for diff_id in parsed.rootfs().diff_ids() {
                        if let Ok(d) = Digest::parse(diff_id) {
                            content.items.insert(Item::Layer(d));
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(id, error = %crate::sys::chain(&error), "failed to read image config")
            }
        }
        for manifest in image.map(|i| i.manifests.as_slice()).unwrap_or_default() {
            let Ok(digest) = Digest::parse(manifest) else {
                continue;
            };
            content.items.insert(Item::Blob(digest.clone()));
            let what = format!("manifest {digest}");
            let Ok(bytes) = self.read_blob(&digest, &what) else {
                continue;
            };
            if let Ok(Document::Manifest(parsed)) = media::parse_document(&bytes, media::OCI_MANIFEST, &what)
            {
                for layer in parsed.layers.iter().chain([&parsed.config]) {
                    if let Ok(d) = layer.digest() {
                        content.items.insert(Item::Blob(d));
                    }
                }
            }
        }
        Ok(content)
    }

    /// Every committed blob and layer directory (temporaries excluded).
    pub(super) fn stored_items(&self) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        for (dir, layer) in [(self.blobs_dir(), false), (self.layers_dir(), true)] {
            for entry in fs::read_dir(&dir).map_err(read_err(&dir))? {
                let entry = entry.map_err(read_err(&dir))?;
                let name = entry.file_name();
                let Some(digest) = name.to_str().and_then(Digest::from_hex) else {
                    continue;
                };
                items.push(if layer {
                    Item::Layer(digest)
                } else {
                    Item::Blob(digest)
                });
            }
        }
        Ok(items)
    }

    /// Removes a blob; returns the disk space it took.
    pub(super) fn delete_blob(&self, digest: &Digest) -> Result<u64, Error> {
        let path = self.blob_path(digest);
        let size = match fs::symlink_metadata(&path) {
            Ok(meta) => meta.blocks() * 512,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(read_err(path)(e)),
        };
        remove_any(&path)?;
        Ok(size)
    }

    /// Renames a layer directory to a temporary name (swept at open if we crash), then removes it.
    pub(super) fn delete_layer(&self, diff_id: &Digest) -> Result<u64, Error> {
        let path = self.layer_path(diff_id);
        if fs::symlink_metadata(&path).is_err() {
            return Ok(0);
        }
        let size = disk_usage(&path);
        let temp = self.layers_dir().join(unique_name(LAYER_TEMP_PREFIX));
        fs::rename(&path, &temp).map_err(|source| Error::RemoveFile {
            path: path.clone(),
            source,
        })?;
        remove_any(&temp)?;
        Ok(size)
    }

    /// Marks image `id` as handed out for a container now. Caller holds the shared lock.
    pub(crate) fn touch_lease(&self, id: &str) -> Result<(), Error> {
        let Some(hex) = id
            .strip_prefix("sha256:")
            .filter(|h| Digest::from_hex(h).is_some())
        else {
            return Ok(());
        };
        let path = self.leases_dir().join(hex);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(crate::image::error::write_err(&path))?;
        file.set_modified(SystemTime::now())
            .map_err(crate::image::error::write_err(&path))
    }

    /// Image ID to the time its lease was last touched.
    pub(super) fn read_leases(&self) -> Result<BTreeMap<String, SystemTime>, Error> {
        let dir = self.leases_dir();
        let mut leases = BTreeMap::new();
        for entry in fs::read_dir(&dir).map_err(read_err(&dir))? {
            let entry = entry.map_err(read_err(&dir))?;
            let (Some(id), Ok(meta)) = (entry.file_name().to_str().and_then(lease_id), entry.metadata())
            else {
                continue;
            };
            if let Ok(modified) = meta.modified() {
                leases.insert(id, modified);
            }
        }
        Ok(leases)
    }

    /// Removes the leases of images that are neither stored nor in use.
    pub(super) fn drop_stale_leases(
        &self,
        leases: &BTreeMap<String, SystemTime>,
        in_use: &BTreeSet<String>,
    ) -> Result<(), Error> {
        let stored: BTreeSet<String> = self.load_refs()?.images.into_values().map(|e| e.config).collect();
        for id in leases
            .keys()
            .filter(|id| !stored.contains(*id) && !in_use.contains(*id))
        {
            if let Some(hex) = id.strip_prefix("sha256:") {
                remove_any(&self.leases_dir().join(hex))?;
            }
        }
        Ok(())
    }
}

/// Disk space (allocated blocks) of everything under `path`, not following symlinks; unreadable parts
/// count as zero.
fn disk_usage(path: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![path.to_owned()];
    while let Some(next) = pending.pop() {
        let Ok(meta) = fs::symlink_metadata(&next) else {
            continue;
        };
        total += meta.blocks() * 512;
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&next) {
                pending.extend(entries.filter_map(Result::ok).map(|e| e.path()));
            }
        }
    }
    total
}
