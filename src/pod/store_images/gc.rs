//! Which images the node's containers use, and the kubelet's periodic image garbage collection over the
//! store (`--image-gc-high-threshold`, `--image-gc-low-threshold`, `--minimum-image-ttl-duration`).
//!
//! An image is in use while any container instance record names it (running or exited and not yet
//! removed, as the kubelet counts the runtime's containers); images handed to a worker moments ago are
//! covered by the store's leases. This module must not delete anything itself: the store does, under its
//! exclusive lock.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::StoreImages;
use crate::image::{Error, GcPolicy, GcReport};
use crate::runtime::record::{InstanceRecord, INSTANCE};

/// How often collection runs (the kubelet's `ImageGCPeriod`).
pub const GC_PERIOD: Duration = Duration::from_secs(300);

/// Image IDs named by the container instance records under `pods_dir`
/// (`<uid>/containers/<name>/<attempt>/instance.json`). A record that cannot be read is an error: its
/// image is unknown, so nothing may be collected.
pub fn images_in_use(pods_dir: &Path) -> Result<BTreeSet<String>, Error> {
    let mut ids = BTreeSet::new();
    for pod in subdirs(pods_dir)? {
        for container in subdirs(&pod.join("containers"))? {
            for instance in subdirs(&container)? {
                let path = instance.join(INSTANCE);
                let read_err = |source| Error::ReadFile {
                    path: path.clone(),
                    source,
                };
                if let Some(record) = crate::sys::fs::read_json::<InstanceRecord>(&path).map_err(read_err)? {
                    ids.insert(record.image_id);
                }
            }
        }
    }
    Ok(ids)
}

/// The directories in `dir`; none when it does not exist.
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let read_err = |source| Error::ReadFile {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_err)?;
        if entry.file_type().map_err(read_err)?.is_dir() {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

impl StoreImages {
    /// One collection: measures the store's filesystem and, over the high threshold, removes unused
    /// images down to the low one. Returns what was removed and the bytes it wanted to free.
    pub fn collect_garbage(&self, pods_dir: &Path, policy: &GcPolicy) -> Result<(GcReport, u64), Error> {
        let usage = self.store.fs_usage()?;
        self.store
            .collect_garbage(policy, usage, || images_in_use(pods_dir))
    }

    /// Runs [`collect_garbage`](Self::collect_garbage) now and every `period` (until the runtime stops).
    pub async fn run_gc(self: Arc<Self>, pods_dir: PathBuf, policy: GcPolicy, period: Duration) {
        if policy.high_threshold >= 100 {
            tracing::info!("image garbage collection disabled (--image-gc-high-threshold=100)");
            return;
        }
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (images, dir) = (self.clone(), pods_dir.clone());
            let run = tokio::task::spawn_blocking(move || images.collect_garbage(&dir, &policy)).await;
            match run {
                Ok(Ok((report, wanted))) => log_report(&report, wanted),
                Ok(Err(error)) => {
                    tracing::warn!(error = %crate::runtime::chain(&error), "image garbage collection failed")
                }
                Err(error) => tracing::warn!(%error, "image garbage collection task failed"),
            }
        }
    }
}

fn log_report(report: &GcReport, wanted: u64) {
    for (id, names) in &report.removed {
        tracing::info!(id = %id, names = ?names, "garbage collected image");
    }
    if wanted > 0 && report.reclaimed < wanted {
        // The kubelet's FreeDiskSpaceFailed: "Failed to garbage collect required amount of images.
        // Attempted to free <wanted> bytes, but only found <freed> bytes eligible to free."
        tracing::warn!(
            wanted,
            freed = report.reclaimed,
            "failed to garbage collect the required amount of images"
        );
    }
}
