//! Safe unpacking of one image layer (an uncompressed tar stream) into a fresh directory of its own.
//!
//! Each layer becomes an overlayfs lower directory, so OCI whiteouts are converted the way containerd's
//! overlay snapshotter does: `.wh.<name>` becomes a 0/0 character device `<name>`, and `.wh..wh..opq`
//! becomes the `trusted.overlay.opaque=y` xattr on its directory.
//!
//! The tar stream is hostile. Entry names are cleaned lexically (a leading `/` is dropped, `..` may not
//! climb above the layer root), every parent is walked from the layer root with `openat(O_NOFOLLOW |
//! O_DIRECTORY)`, so a symlink or file where a directory should be fails the layer instead of being
//! followed, and every file is created relative to its parent's descriptor with `O_EXCL | O_NOFOLLOW`.
//! Hard links must name an existing non-directory inside the layer. Ownership, mode (setuid included,
//! exactly as the image says), times, device numbers and xattrs come from the tar; xattrs that would steer
//! overlayfs (`trusted.overlay.*`, `user.overlay.*`) are dropped.
//!
//! This module must not look outside the destination directory, follow any symlink, or decide where layers
//! live (the store passes a fresh `new-*` directory and renames it on success).

#[cfg(test)]
mod breakouts;
mod entry;
#[cfg(test)]
mod limits;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag, AT_FDCWD};
use nix::sys::stat::{mkdirat, Mode};

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("failed to open layer directory {path}")]
    OpenRoot { path: PathBuf, source: io::Error },
    #[error("failed to read layer tar stream")]
    ReadArchive { source: io::Error },
    #[error("entry {path:?} escapes the layer root")]
    EscapesRoot { path: String },
    #[error("entry {path:?}: parent {parent:?} is a symlink or not a directory")]
    ParentNotDirectory { path: String, parent: String },
    #[error("invalid whiteout {path:?}")]
    InvalidWhiteout { path: String },
    #[error("hard link {path:?} -> {target:?}: {reason}")]
    InvalidHardlink {
        path: String,
        target: String,
        reason: &'static str,
    },
    #[error("entry {path:?}: unsupported tar entry type {kind}")]
    UnsupportedEntry { path: String, kind: String },
    #[error("entry {path:?}: {field} {value} is out of range")]
    OutOfRange {
        path: String,
        field: &'static str,
        value: u64,
    },
    #[error("failed to create {path:?}")]
    CreateEntry { path: String, source: io::Error },
    #[error("layer unpacks to more than {limit} bytes, the per-layer limit (a decompression bomb?)")]
    TooLarge { limit: u64 },
    #[error("failed to set {what} of {path:?}")]
    SetMetadata {
        path: String,
        what: &'static str,
        source: io::Error,
    },
}

const WHITEOUT_PREFIX: &str = ".wh.";
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Unpacks the tar stream `reader` into the existing empty directory `dest`, then reads `reader` to its
/// end so a hashing reader underneath sees every byte.
///
/// `max_bytes` bounds both the tar stream and the sum of the files' sizes (a sparse file counts at its
/// full length), so a small compressed layer cannot fill the disk or keep a thread busy forever.
pub fn unpack_layer<R: Read>(reader: &mut R, dest: &Path, max_bytes: u64) -> Result<(), UnpackError> {
    let root = open_dir(AT_FDCWD, dest.as_os_str()).map_err(|e| UnpackError::OpenRoot {
        path: dest.to_owned(),
        source: e.into(),
    })?;
    let mut layer = Layer {
        root,
        dest: dest.to_owned(),
        dir_times: Vec::new(),
        budget: max_bytes,
        limit: max_bytes,
    };
    let mut bounded = Bounded {
        inner: reader,
        remaining: max_bytes,
    };
    let mut archive = tar::Archive::new(&mut bounded);
    let read_err = |source: io::Error| match source.get_ref().is_some_and(|e| e.is::<LimitReached>()) {
        true => UnpackError::TooLarge { limit: max_bytes },
        false => UnpackError::ReadArchive { source },
    };
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        layer.apply(&mut entry).map_err(|e| match e {
            UnpackError::CreateEntry { source, .. }
                if source.get_ref().is_some_and(|e| e.is::<LimitReached>()) =>
            {
                UnpackError::TooLarge { limit: max_bytes }
            }
            other => other,
        })?;
    }
    layer.restore_dir_times();
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(read_err)?;
    Ok(())
}

/// The marker error a [`Bounded`] reader fails with once its budget is spent.
#[derive(Debug, thiserror::Error)]
#[error("unpack limit reached")]
struct LimitReached;

/// Reads at most `remaining` bytes of `inner`; fails with [`LimitReached`] if there is more.
struct Bounded<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return match self.inner.read(&mut [0u8; 1])? {
                0 => Ok(0),
                _ => Err(io::Error::other(LimitReached)),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The layer directory being filled.
struct Layer {
    root: OwnedFd,
    dest: PathBuf,
    /// Directories whose mtime is set last, after their contents stop changing it.
    dir_times: Vec<(Vec<OsString>, i64)>,
    /// File bytes this layer may still create.
    budget: u64,
    /// The whole budget, for the error message.
    limit: u64,
}

impl Layer {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            return Ok(());
        }
        let raw_path = entry
            .path()
            .map_err(|source| UnpackError::ReadArchive { source })?
            .into_owned();
        let shown = raw_path.display().to_string();
        let parts = clean(&raw_path).ok_or_else(|| UnpackError::EscapesRoot { path: shown.clone() })?;
        let Some((name, parents)) = parts.split_last() else {
            return self.apply_root(entry, &shown);
        };
        let name_str = name.to_str().unwrap_or_default();
        if name_str.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(entry, parents, name_str, &shown);
        }
        let parent = self.open_parents(parents, true, &shown)?;
        entry::create(self, entry, parent.as_fd(), &parts, &shown)
    }

    /// A `./` entry: only a directory may describe the layer root; anything else is ignored.
    fn apply_root<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, shown: &str) -> Result<(), UnpackError> {
        if entry.header().entry_type() != tar::EntryType::Directory {
            tracing::debug!(
                entry = shown,
                "ignoring non-directory entry that resolves to the layer root"
            );
            return Ok(());
        }
        let meta = entry::Meta::read(entry, shown)?;
        let root = self.root.try_clone().map_err(|source| UnpackError::SetMetadata {
            path: shown.to_owned(),
            what: "ownership",
            source,
        })?;
        meta.apply_to_fd(&root, shown)?;
        self.dir_times.push((Vec::new(), meta.mtime));
        Ok(())
    }

    fn whiteout<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parents: &[OsString],
        name: &str,
        shown: &str,
    ) -> Result<(), UnpackError> {
        let invalid = || UnpackError::InvalidWhiteout {
            path: shown.to_owned(),
        };
        if name == WHITEOUT_OPAQUE {
            let dir = self.open_parents(parents, true, shown)?;
            return xattr::FileExt::set_xattr(&std::fs::File::from(dir), OPAQUE_XATTR, b"y").map_err(
                |source| UnpackError::SetMetadata {
                    path: shown.to_owned(),
                    what: "opaque xattr",
                    source,
                },
            );
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            tracing::debug!(entry = shown, "ignoring whiteout metadata entry");
            return Ok(());
        }
        let target = name.strip_prefix(WHITEOUT_PREFIX).ok_or_else(invalid)?;
        if target.is_empty() || target == "." || target == ".." {
            return Err(invalid());
        }
        let meta = entry::Meta::read(entry, shown)?;
        let parent = self.open_parents(parents, true, shown)?;
        entry::whiteout_device(parent.as_fd(), OsStr::new(target), &meta, shown)
    }

    /// Opens (creating with 0755 when `create`) each directory of `parents` below the root, never
    /// following a symlink.
    fn open_parents(&self, parents: &[OsString], create: bool, shown: &str) -> Result<OwnedFd, UnpackError> {
        let mut current = self.root.try_clone().map_err(|source| UnpackError::CreateEntry {
            path: shown.to_owned(),
            source,
        })?;
        for (depth, component) in parents.iter().enumerate() {
            let not_dir = || UnpackError::ParentNotDirectory {
                path: shown.to_owned(),
                parent: join(parents.get(..=depth).unwrap_or_default()),
            };
            let next = match open_dir(current.as_fd(), component.as_os_str()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match mkdirat(
                        current.as_fd(),
                        component.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(create_err(shown, e)),
                    }
                    open_dir(current.as_fd(), component.as_os_str()).map_err(|_| not_dir())?
                }
                Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(not_dir()),
                Err(e) => return Err(create_err(shown, e)),
            };
            current = next;
        }
        Ok(current)
    }

    /// Sets the recorded directory mtimes; directories replaced since are skipped.
    fn restore_dir_times(&self) {
        for (parts, mtime) in &self.dir_times {
            let dir = match parts.split_last() {
                None => self.root.try_clone().ok(),
                Some((name, parents)) => self
                    .open_parents(parents, false, "")
                    .ok()
                    .and_then(|parent| open_dir(parent.as_fd(), name.as_os_str()).ok()),
            };
            if let Some(dir) = dir {
                if let Err(error) = entry::set_fd_times(&dir, *mtime) {
                    tracing::debug!(%error, dir = %join(parts), "failed to restore directory mtime");
                }
            }
        }
    }

    fn full_path(&self, parts: &[OsString]) -> PathBuf {
        parts.iter().fold(self.dest.clone(), |path, part| path.join(part))
    }
}

/// Copies `reader` into `file`, seeking over all-zero chunks instead of writing them, so sparse files
/// (and zero runs) take no disk space.
fn copy_sparse(reader: &mut impl Read, file: &mut std::fs::File) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut length, mut hole_at_end) = (0u64, false);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hole_at_end = chunk.iter().all(|&b| b == 0);
        if hole_at_end {
            file.seek(SeekFrom::Current(i64::try_from(n).map_err(io::Error::other)?))?;
        } else {
            file.write_all(chunk)?;
        }
        length += n as u64;
    }
    if hole_at_end {
        file.set_len(length)?;
    }
    Ok(())
}

/// Opens the directory `name` under `dirfd` without following a symlink.
fn open_dir<P: ?Sized + nix::NixPath>(dirfd: BorrowedFd<'_>, name: &P) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dirfd, name, flags, Mode::empty())
}

/// Cleans a tar entry name lexically: drops `/` and `.`, applies `..`; `None` if it climbs above the root.
fn clean(path: &Path) -> Option<Vec<OsString>> {
    let mut parts: Vec<OsString> = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(part) => parts.push(part.to_owned()),
        }
    }
    Some(parts)
}

fn join(parts: &[OsString]) -> String {
    parts
        .iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn create_err(shown: &str, errno: Errno) -> UnpackError {
    UnpackError::CreateEntry {
        path: shown.to_owned(),
        source: errno.into(),
    }
}
