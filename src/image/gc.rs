//! Removing images and the content nothing references any more: `peapod image prune`, the content sweep
//! after `peapod image rm`, and the kubelet's disk-usage driven image garbage collection.
//!
//! Roots are every stored name and every image in use. The caller says which images are in use (the
//! container instances on the node hold image IDs) through a function called *under the store's
//! exclusive lock* (an error from it cancels the run), and the store keeps a lease per image (`leases/<id>`, its mtime touched by
//! [`ImageStore::lookup_for_use`] and pulls while they hold the shared lock): an image handed to a
//! worker less than [`LEASE`] ago counts as in use, which covers the moment between looking an image up
//! and recording the container that uses it. Everything a root reaches (manifest, config and layer
//! blobs; unpacked layers by diffID) stays; the rest is deleted, names first (the ref index is rewritten
//! atomically), then blobs, then layer directories renamed to `new-*` before removal, so a crash at any
//! point leaves a store that loads and whose leftovers the next sweep finds.
//!
//! This module must not decide what "in use" means (the caller does) nor measure anything but the
//! filesystem holding the store.

mod content;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use super::digest::Digest;
use super::error::Error;
use super::lock;
use super::ImageStore;
use content::{Item, Refcounts};

/// How long an image handed out for a container counts as in use even before its container exists.
pub const LEASE: Duration = Duration::from_secs(60);

/// The kubelet's image GC policy (`--image-gc-high-threshold`, `--image-gc-low-threshold`,
/// `--minimum-image-ttl-duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// Disk usage percent at or above which images are removed (100 disables collection).
    pub high_threshold: u8,
    /// Disk usage percent collection frees down to.
    pub low_threshold: u8,
    /// Images stored more recently than this are never removed.
    pub min_age: Duration,
}

impl Default for GcPolicy {
    fn default() -> Self {
        GcPolicy {
            high_threshold: 85,
            low_threshold: 80,
            min_age: Duration::from_secs(120),
        }
    }
}

/// Size and free space of the filesystem holding the store, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    pub capacity: u64,
    pub available: u64,
}

impl FsUsage {
    /// The kubelet's usage percent: `100 - available*100/capacity` (integer division).
    pub fn percent(&self) -> u64 {
        100u64.saturating_sub(self.available.saturating_mul(100) / self.capacity.max(1))
    }
}

/// Bytes to free when usage is at or above the high threshold: down to the low threshold, as the
/// kubelet computes it (`capacity*(100-low)/100 - available`). `None` below the threshold, and always
/// with a high threshold of 100 (the kubelet's way to disable collection).
pub fn bytes_to_free(usage: FsUsage, policy: &GcPolicy) -> Option<u64> {
    if policy.high_threshold >= 100
        || usage.capacity == 0
        || usage.percent() < u64::from(policy.high_threshold)
    {
        return None;
    }
    let keep_free = u128::from(usage.capacity) * u128::from(100 - policy.low_threshold.min(100)) / 100;
    let target_available = u64::try_from(keep_free).unwrap_or(u64::MAX);
    Some(target_available.saturating_sub(usage.available))
}

/// What a prune or collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Removed images: ID and the names it had.
    pub removed: Vec<(String, Vec<String>)>,
    /// Bytes of blobs and layer directories deleted.
    pub reclaimed: u64,
}

/// One image as collection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredImage {
    pub id: String,
    pub names: Vec<String>,
    /// Manifest digests its names point to.
    pub manifests: Vec<String>,
    /// When its first name was stored.
    pub added: SystemTime,
    /// When it was last handed out for a container (its lease), if ever.
    pub last_used: Option<SystemTime>,
}

/// The images collection may remove, least recently used first (ties: oldest first): not in use, not
/// leased within [`LEASE`], stored at least `min_age` ago.
pub(crate) fn eviction_order(
    images: &[StoredImage],
    in_use: &BTreeSet<String>,
    now: SystemTime,
    min_age: Duration,
) -> Vec<String> {
    let older_than = |t: SystemTime, d: Duration| now.duration_since(t).is_ok_and(|age| age >= d);
    let mut eligible: Vec<&StoredImage> = images
        .iter()
        .filter(|i| !in_use.contains(&i.id))
        .filter(|i| i.last_used.is_none_or(|t| older_than(t, LEASE)))
        .filter(|i| older_than(i.added, min_age))
        .collect();
    eligible.sort_by_key(|i| (i.last_used.unwrap_or(i.added).max(i.added), i.added));
    eligible.into_iter().map(|i| i.id.clone()).collect()
}

/// Which images a run removes: all eligible ones (prune) or until enough bytes are free (collection).
#[derive(Debug, Clone, Copy)]
enum Goal {
    Prune,
    Free { bytes: u64, min_age: Duration },
    SweepOnly,
}

impl ImageStore {
    /// Removes every image not in use (all of its names), then all content nothing references, like
    /// `crictl rmi --prune`. `in_use` runs under the store's exclusive lock.
    pub fn prune(&self, in_use: impl FnOnce() -> Result<BTreeSet<String>, Error>) -> Result<GcReport, Error> {
        self.collect(Goal::Prune, in_use)
    }

    /// Deletes content no stored name and no image in use references (after `remove`).
    pub fn sweep_unreferenced(
        &self,
        in_use: impl FnOnce() -> Result<BTreeSet<String>, Error>,
    ) -> Result<u64, Error> {
        self.collect(Goal::SweepOnly, in_use).map(|r| r.reclaimed)
    }

    /// The kubelet's image garbage collection: when `usage` is at or above the high threshold, removes
    /// unused images least recently used first until the bytes down to the low threshold are freed.
    /// Returns the report and the bytes it wanted to free (0 below the threshold).
    pub fn collect_garbage(
        &self,
        policy: &GcPolicy,
        usage: FsUsage,
        in_use: impl FnOnce() -> Result<BTreeSet<String>, Error>,
    ) -> Result<(GcReport, u64), Error> {
        let Some(bytes) = bytes_to_free(usage, policy) else {
            return Ok((GcReport::default(), 0));
        };
        tracing::info!(
            usage = usage.percent(),
            high_threshold = policy.high_threshold,
            low_threshold = policy.low_threshold,
            amount_to_free = bytes,
            "disk usage on image filesystem is over the high threshold, trying to free bytes down to the low threshold"
        );
        let goal = Goal::Free {
            bytes,
            min_age: policy.min_age,
        };
        self.collect(goal, in_use).map(|report| (report, bytes))
    }

    /// Size and free space of the filesystem holding the store.
    pub fn fs_usage(&self) -> Result<FsUsage, Error> {
        let stat = nix::sys::statvfs::statvfs(self.root()).map_err(|e| Error::ReadFile {
            path: self.root().to_owned(),
            source: e.into(),
        })?;
        let block = stat.fragment_size();
        Ok(FsUsage {
            capacity: (stat.blocks() as u64).saturating_mul(block),
            available: (stat.blocks_available() as u64).saturating_mul(block),
        })
    }

    fn collect(
        &self,
        goal: Goal,
        in_use: impl FnOnce() -> Result<BTreeSet<String>, Error>,
    ) -> Result<GcReport, Error> {
        let _exclusive = lock::lock(&self.lock_path(), lock::Mode::Exclusive)?;
        let in_use = in_use()?;
        let images = self.stored_images()?;
        let leased = self.read_leases()?;
        let mut counts = Refcounts::default();
        for image in &images {
            counts.add(self.content_of(&image.id, Some(image))?);
        }
        for id in in_use.iter().filter(|id| !images.iter().any(|i| &i.id == *id)) {
            counts.add(self.content_of(id, None)?);
        }
        let mut report = GcReport {
            removed: Vec::new(),
            reclaimed: self.delete_items(counts.unreferenced(self.stored_items()?))?,
        };
        let order = match goal {
            Goal::SweepOnly => Vec::new(),
            Goal::Prune => eviction_order(&images, &in_use, SystemTime::now(), Duration::ZERO),
            Goal::Free { min_age, .. } => eviction_order(&images, &in_use, SystemTime::now(), min_age),
        };
        for id in order {
            if let Goal::Free { bytes, .. } = goal {
                if report.reclaimed >= bytes {
                    break;
                }
            }
            let Some(image) = images.iter().find(|i| i.id == id) else {
                continue;
            };
            self.update_refs(|index| index.images.retain(|_, entry| entry.config != id))?;
            tracing::info!(id = %id, names = ?image.names, "removing image");
            let freed = counts.release(&self.content_of(&id, Some(image))?);
            report.reclaimed += self.delete_items(freed)?;
            report.removed.push((id.clone(), image.names.clone()));
        }
        self.drop_stale_leases(&leased, &in_use)?;
        Ok(report)
    }

    /// Every named image, grouped by ID, with its age and lease.
    pub(crate) fn stored_images(&self) -> Result<Vec<StoredImage>, Error> {
        let leases = self.read_leases()?;
        let mut by_id: BTreeMap<String, StoredImage> = BTreeMap::new();
        for (name, entry) in self.load_refs()?.images {
            let added = SystemTime::UNIX_EPOCH + Duration::from_secs(entry.added);
            let image = by_id.entry(entry.config.clone()).or_insert_with(|| StoredImage {
                id: entry.config.clone(),
                names: Vec::new(),
                manifests: Vec::new(),
                added,
                last_used: leases.get(&entry.config).copied(),
            });
            image.names.push(name);
            if !image.manifests.contains(&entry.manifest) {
                image.manifests.push(entry.manifest);
            }
            image.added = image.added.min(added);
        }
        Ok(by_id.into_values().collect())
    }

    /// Deletes blobs and layer directories, returning the bytes they took.
    fn delete_items(&self, items: Vec<Item>) -> Result<u64, Error> {
        let mut freed = 0;
        for item in items {
            freed += match &item {
                Item::Blob(digest) => self.delete_blob(digest)?,
                Item::Layer(diff_id) => self.delete_layer(diff_id)?,
            };
            tracing::debug!(item = ?item, "deleted unreferenced image content");
        }
        Ok(freed)
    }
}

/// The image ID a lease file name stands for.
fn lease_id(name: &str) -> Option<String> {
    Digest::from_hex(name).map(|d| d.to_string())
}
