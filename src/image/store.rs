//! The on-disk store: directories, locking, the start-up sweep, blob ingestion and layer unpacking.
//!
//! ```text
//! <root>/                      0700
//!   lock, refs.lock            flock files (see lock.rs)
//!   refs.json                  names -> manifest digests (refs.rs)
//!   blobs/sha256/<hex>         verified content, 0444 once committed
//!   layers/sha256/<diffID>/    unpacked layers, shared by every image that lists them
//!   layers/sha256/new-*        layer being unpacked (swept at start-up)
//!   ingest/*                   blob being written (swept at start-up)
//!   leases/<id>                mtime: when the image was last handed out for a container (gc.rs)
//! ```
//!
//! Every blob is written to `ingest/`, verified, fsynced and renamed into place; every layer is unpacked
//! into `new-*`, checked against its blob digest and diffID, synced and renamed. A crash leaves only
//! temporaries, which the next `open` removes while nobody else uses the store. This module must not
//! delete committed blobs or layers: that is garbage collection's job (gc.rs), under the exclusive lock.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::digest::{read_bounded, Digest, HashingReader, HashingWriter};
use super::error::{read_err, write_err, Error};
use super::lock::{self, LockGuard};
use super::{media, unpack};

pub(crate) const LAYER_TEMP_PREFIX: &str = "new-";
pub(crate) const REFS_FILE: &str = "refs.json";
pub(crate) const REFS_TEMP_PREFIX: &str = "refs.json.tmp-";

/// Default bound on what one layer may unpack to (tar stream and file sizes); see [`ImageStore::with_max_layer_bytes`].
pub const DEFAULT_MAX_LAYER_BYTES: u64 = 64 << 30;

/// The image store rooted at a directory of its own.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    max_layer_bytes: u64,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root` and sweeps leftovers of interrupted writes when no
    /// other process is using the store.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let store = Self {
            root: root.into(),
            max_layer_bytes: DEFAULT_MAX_LAYER_BYTES,
        };
        for dir in [
            store.root.clone(),
            store.blobs_dir(),
            store.layers_dir(),
            store.ingest_dir(),
            store.leases_dir(),
        ] {
            create_private_dir(&dir)?;
        }
        match lock::try_lock_exclusive(&store.lock_path())? {
            Some(_exclusive) => store.sweep()?,
            None => tracing::debug!(root = %store.root.display(), "image store in use; skipping sweep"),
        }
        Ok(store)
    }

    /// Bounds what one layer may unpack to: its uncompressed tar stream and the sum of its files' sizes
    /// (sparse files at full length). A layer past it fails to unpack, naming the limit.
    pub fn with_max_layer_bytes(mut self, max: u64) -> Self {
        self.max_layer_bytes = max;
        self
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub(crate) fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }

    pub(crate) fn refs_path(&self) -> PathBuf {
        self.root.join(REFS_FILE)
    }

    pub(crate) fn refs_lock_path(&self) -> PathBuf {
        self.root.join("refs.lock")
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers").join("sha256")
    }

    pub(crate) fn leases_dir(&self) -> PathBuf {
        self.root.join("leases")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// The shared store lock every reader and writer holds for the duration of its operation.
    pub(crate) fn shared(&self) -> Result<LockGuard, Error> {
        lock::lock(&self.lock_path(), lock::Mode::Shared)
    }

    /// Removes `ingest/*`, `layers/sha256/new-*` and ref index temporaries. Caller holds the exclusive lock.
    fn sweep(&self) -> Result<(), Error> {
        let mut swept = 0usize;
        for (dir, prefix) in [
            (self.ingest_dir(), ""),
            (self.layers_dir(), LAYER_TEMP_PREFIX),
            (self.root.clone(), REFS_TEMP_PREFIX),
        ] {
            for entry in fs::read_dir(&dir).map_err(read_err(&dir))? {
                let entry = entry.map_err(read_err(&dir))?;
                if !entry.file_name().to_string_lossy().starts_with(prefix) {
                    continue;
                }
                remove_any(&entry.path())?;
                swept += 1;
            }
        }
        if swept > 0 {
            tracing::info!(root = %self.root.display(), swept, "removed leftovers of interrupted image writes");
        }
        Ok(())
    }

    /// A writer for a new blob; nothing is visible in the store until [`BlobWriter::commit`].
    pub(crate) fn blob_writer(&self) -> Result<BlobWriter, Error> {
        let temp = self.ingest_dir().join(unique_name(""));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(write_err(&temp))?;
        Ok(BlobWriter {
            writer: Some(HashingWriter::new(BufWriter::new(file))),
            temp,
            blobs_dir: self.blobs_dir(),
        })
    }

    /// Stores `bytes` as a blob and returns its digest.
    pub(crate) fn write_blob_bytes(&self, bytes: &[u8]) -> Result<Digest, Error> {
        let digest = Digest::of_bytes(bytes);
        if self.has_blob(&digest) {
            return Ok(digest);
        }
        let mut writer = self.blob_writer()?;
        writer.write_all(bytes).map_err(write_err(&writer.temp))?;
        writer.commit(Some(&digest)).map(|(digest, _)| digest)
    }

    pub(crate) fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Size in bytes of a stored blob.
    pub(crate) fn blob_size(&self, digest: &Digest) -> Result<u64, Error> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::BlobMissing {
                digest: digest.to_string(),
            }),
            Err(e) => Err(read_err(path)(e)),
        }
    }

    /// Reads a small blob (manifest, config, index) into memory, verifying its digest.
    pub(crate) fn read_blob(&self, digest: &Digest, what: &str) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobMissing {
                    digest: digest.to_string(),
                })
            }
            Err(e) => return Err(read_err(path)(e)),
        };
        let bytes = read_bounded(file, media::MAX_METADATA_BYTES, what)?;
        let actual = Digest::of_bytes(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: what.to_owned(),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Returns the unpacked directory of the layer with `diff_id`, unpacking blob `blob` first if needed.
    /// Caller holds the shared lock.
    pub(crate) fn ensure_layer(&self, blob: &Digest, diff_id: &Digest) -> Result<PathBuf, Error> {
        let target = self.layer_path(diff_id);
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Ok(target);
        }
        let file = match File::open(self.blob_path(blob)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobMissing {
                    digest: blob.to_string(),
                })
            }
            Err(e) => return Err(read_err(self.blob_path(blob))(e)),
        };
        let temp = self.layers_dir().join(unique_name(LAYER_TEMP_PREFIX));
        DirBuilder::new()
            .mode(0o755)
            .create(&temp)
            .map_err(write_err(&temp))?;
        tracing::debug!(blob = %blob, diff_id = %diff_id, "unpacking layer");
        if let Err(error) = unpack_verified(file, &temp, blob, diff_id, self.max_layer_bytes) {
            remove_any(&temp)?;
            return Err(error);
        }
        if let Err(error) = fs::rename(&temp, &target) {
            remove_any(&temp)?;
            // Another process unpacked the same layer first: theirs is as good as ours.
            if !fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                return Err(write_err(&target)(error));
            }
        }
        sync_dir(&self.layers_dir())?;
        Ok(target)
    }
}

/// Unpacks blob `file` into `dest`, checking the blob digest and the diffID, then syncs the filesystem.
fn unpack_verified(
    file: File,
    dest: &Path,
    blob: &Digest,
    diff_id: &Digest,
    max_bytes: u64,
) -> Result<(), Error> {
    let read_layer = |source| Error::ReadLayer {
        digest: blob.to_string(),
        source,
    };
    let mut compressed = BufReader::with_capacity(128 * 1024, HashingReader::new(file));
    let decoder = media::decompress(&mut compressed).map_err(read_layer)?;
    let mut plain = HashingReader::new(decoder);
    unpack::unpack_layer(&mut plain, dest, max_bytes).map_err(|source| Error::UnpackLayer {
        digest: blob.to_string(),
        source,
    })?;
    let (actual_diff_id, _) = plain.finish();
    io::copy(&mut compressed, &mut io::sink()).map_err(read_layer)?;
    let (actual_blob, _) = compressed.into_inner().finish();
    if &actual_blob != blob {
        return Err(Error::DigestMismatch {
            what: format!("layer blob {blob}"),
            expected: blob.to_string(),
            actual: actual_blob.to_string(),
        });
    }
    if &actual_diff_id != diff_id {
        return Err(Error::DiffIdMismatch {
            layer: blob.to_string(),
            expected: diff_id.to_string(),
            actual: actual_diff_id.to_string(),
        });
    }
    let dir = File::open(dest).map_err(read_err(dest))?;
    nix::unistd::syncfs(&dir).map_err(|e| write_err(dest)(e.into()))
}

/// A blob being written; dropped without commit, its temporary file is removed.
pub(crate) struct BlobWriter {
    writer: Option<HashingWriter<BufWriter<File>>>,
    temp: PathBuf,
    blobs_dir: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.writer.as_ref().map_or(0, HashingWriter::count)
    }

    /// Verifies the content against `expected` (if given), fsyncs it and renames it into the store.
    pub(crate) fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), Error> {
        let Some(writer) = self.writer.take() else {
            return Err(write_err(&self.temp)(io::ErrorKind::BrokenPipe.into()));
        };
        let (buffered, digest, size) = writer.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| write_err(&self.temp)(e.into_error()))?;
        if let Some(expected) = expected.filter(|e| **e != digest) {
            return Err(Error::DigestMismatch {
                what: format!("blob {expected}"),
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        file.sync_all().map_err(write_err(&self.temp))?;
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(write_err(&self.temp))?;
        let target = self.blobs_dir.join(digest.hex());
        fs::rename(&self.temp, &target).map_err(write_err(&target))?;
        sync_dir(&self.blobs_dir)?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().ok_or(io::ErrorKind::BrokenPipe)?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().ok_or(io::ErrorKind::BrokenPipe)?.flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Err(error) = fs::remove_file(&self.temp) {
            if error.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.temp.display(), %error, "failed to remove blob temporary");
            }
        }
    }
}

/// Creates `dir` (and parents) as 0700, tightening an existing one.
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    let create_err = |source| Error::CreateStoreDir {
        path: dir.to_owned(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(create_err)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(create_err)
}

/// fsyncs a directory so a rename into it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(write_err(dir))
}

pub(crate) fn remove_any(path: &Path) -> Result<(), Error> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|source| Error::RemoveFile {
        path: path.to_owned(),
        source,
    })
}

/// A name no other writer (thread or process) uses at the same time.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod layering;
#[cfg(test)]
mod tests;
