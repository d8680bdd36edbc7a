//! Creating one tar entry (file, directory, link, device) relative to an already verified parent
//! directory descriptor, and applying its ownership, mode, xattrs and times without following symlinks.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, mkfifoat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use xattr::FileExt;

use super::{clean, copy_sparse, create_err, open_dir, Layer, UnpackError};

const SCHILY_XATTR: &str = "SCHILY.xattr.";

/// Ownership, mode, mtime and xattrs of an entry, from its header and PAX records.
pub(super) struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    pub(super) mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    pub(super) fn read<R: Read>(entry: &mut tar::Entry<'_, R>, shown: &str) -> Result<Self, UnpackError> {
        let read_err = |source| UnpackError::ReadArchive { source };
        let header = entry.header();
        let (mut uid, mut gid) = (header.uid().map_err(read_err)?, header.gid().map_err(read_err)?);
        let mode = header.mode().map_err(read_err)? & 0o7777;
        let mut mtime = i64::try_from(header.mtime().map_err(read_err)?).unwrap_or(i64::MAX);
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry.pax_extensions().map_err(read_err)? {
            for extension in extensions {
                let extension = extension.map_err(read_err)?;
                let (Ok(key), value) = (extension.key(), extension.value().unwrap_or_default()) else {
                    continue;
                };
                match key {
                    "uid" => uid = value.parse().unwrap_or(uid),
                    "gid" => gid = value.parse().unwrap_or(gid),
                    "mtime" => mtime = parse_pax_time(value).unwrap_or(mtime),
                    _ => {
                        if let Some(name) = key.strip_prefix(SCHILY_XATTR) {
                            xattrs.push((name.to_owned(), extension.value_bytes().to_vec()));
                        }
                    }
                }
            }
        }
        let id = |field, value: u64| {
            u32::try_from(value).map_err(|_| UnpackError::OutOfRange {
                path: shown.to_owned(),
                field,
                value,
            })
        };
        Ok(Self {
            uid: id("uid", uid)?,
            gid: id("gid", gid)?,
            mode,
            mtime,
            xattrs,
        })
    }

    /// chown, then chmod (chown clears setuid), then xattrs (after chown, which drops file capabilities).
    pub(super) fn apply_to_fd(&self, fd: &impl AsFd, shown: &str) -> Result<(), UnpackError> {
        fchown(fd, Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)))
            .map_err(meta_err(shown, "ownership"))?;
        fchmod(fd, Mode::from_bits_truncate(self.mode)).map_err(meta_err(shown, "mode"))?;
        let owned = fd
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| UnpackError::SetMetadata {
                path: shown.to_owned(),
                what: "xattrs",
                source,
            })?;
        let file = File::from(owned);
        self.apply_xattrs(shown, |name, value| file.set_xattr(name, value))
    }

    fn apply_xattrs(
        &self,
        shown: &str,
        mut set: impl FnMut(&str, &[u8]) -> io::Result<()>,
    ) -> Result<(), UnpackError> {
        for (name, value) in &self.xattrs {
            if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
                tracing::warn!(entry = shown, xattr = %name, "dropping overlayfs xattr from image layer");
                continue;
            }
            match set(name, value) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) => {
                    tracing::warn!(entry = shown, xattr = %name, error = %e, "ignoring xattr the filesystem refuses");
                }
                Err(source) => {
                    return Err(UnpackError::SetMetadata {
                        path: shown.to_owned(),
                        what: "xattrs",
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// For entries that cannot be opened (symlinks, devices): everything by name, never following.
    fn apply_by_name(&self, at: &At<'_>, chmod: bool) -> Result<(), UnpackError> {
        let (parent, name, shown) = (at.parent, at.name(), at.shown);
        let (uid, gid) = (Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)));
        fchownat(parent, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(meta_err(shown, "ownership"))?;
        if chmod {
            // Only device nodes and fifos this layer just created: not symlinks, so following is moot.
            fchmodat(
                parent,
                name,
                Mode::from_bits_truncate(self.mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(meta_err(shown, "mode"))?;
        }
        let path = at.layer.full_path(at.parts);
        self.apply_xattrs(shown, |key, value| xattr::set(&path, key, value))?;
        let time = TimeSpec::new(self.mtime, 0);
        utimensat(parent, name, &time, &time, UtimensatFlags::NoFollowSymlink)
            .map_err(meta_err(shown, "times"))
    }
}

/// Creates the entry `parts` (whose parent is open as `parent`) from the tar entry.
pub(super) fn create<R: Read>(
    layer: &mut Layer,
    entry: &mut tar::Entry<'_, R>,
    parent: BorrowedFd<'_>,
    parts: &[OsString],
    shown: &str,
) -> Result<(), UnpackError> {
    use tar::EntryType as T;
    let kind = entry.header().entry_type();
    if kind == T::Link {
        return hardlink(layer, entry, parent, parts, shown);
    }
    if matches!(kind, T::Regular | T::Continuous | T::GNUSparse) {
        // The apparent size: a sparse file's holes count, or a tiny archive could claim terabytes.
        layer.budget = layer
            .budget
            .checked_sub(entry.size())
            .ok_or(UnpackError::TooLarge { limit: layer.limit })?;
    }
    let meta = Meta::read(entry, shown)?;
    let at = At {
        layer,
        parent,
        parts,
        shown,
    };
    match kind {
        T::Regular | T::Continuous | T::GNUSparse => at.regular_file(entry, &meta),
        T::Directory => {
            at.directory(&meta)?;
            layer.dir_times.push((parts.to_vec(), meta.mtime));
            Ok(())
        }
        T::Symlink => at.symlink(entry, &meta),
        T::Char | T::Block | T::Fifo => at.special(entry, kind, &meta),
        T::XGlobalHeader => Ok(()),
        other => Err(UnpackError::UnsupportedEntry {
            path: shown.to_owned(),
            kind: format!("{other:?}"),
        }),
    }
}

/// Where an entry goes: its parent directory descriptor and its path inside the layer.
struct At<'a> {
    layer: &'a Layer,
    parent: BorrowedFd<'a>,
    parts: &'a [OsString],
    shown: &'a str,
}

impl At<'_> {
    fn name(&self) -> &OsStr {
        self.parts.last().map(OsString::as_os_str).unwrap_or_default()
    }

    fn regular_file<R: Read>(&self, entry: &mut tar::Entry<'_, R>, meta: &Meta) -> Result<(), UnpackError> {
        clear_path(self.layer, self.parent, self.parts, false, self.shown)?;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(self.parent, self.name(), flags, Mode::from_bits_truncate(0o600))
            .map_err(|e| create_err(self.shown, e))?;
        let mut file = File::from(fd);
        copy_sparse(entry, &mut file).map_err(|source| UnpackError::CreateEntry {
            path: self.shown.to_owned(),
            source,
        })?;
        meta.apply_to_fd(&file, self.shown)?;
        set_fd_times(&file, meta.mtime).map_err(meta_err(self.shown, "times"))
    }

    /// Creates the directory unless one is there already (then the two merge); mtime is set at the end.
    fn directory(&self, meta: &Meta) -> Result<(), UnpackError> {
        if !clear_path(self.layer, self.parent, self.parts, true, self.shown)? {
            mkdirat(self.parent, self.name(), Mode::from_bits_truncate(0o700))
                .map_err(|e| create_err(self.shown, e))?;
        }
        let dir = open_dir(self.parent, self.name()).map_err(|e| create_err(self.shown, e))?;
        meta.apply_to_fd(&dir, self.shown)
    }

    fn symlink<R: Read>(&self, entry: &mut tar::Entry<'_, R>, meta: &Meta) -> Result<(), UnpackError> {
        let target = entry
            .link_name()
            .map_err(|source| UnpackError::ReadArchive { source })?
            .ok_or_else(|| UnpackError::UnsupportedEntry {
                path: self.shown.to_owned(),
                kind: "symlink without target".into(),
            })?
            .into_owned();
        clear_path(self.layer, self.parent, self.parts, false, self.shown)?;
        symlinkat(target.as_os_str(), self.parent, self.name()).map_err(|e| create_err(self.shown, e))?;
        meta.apply_by_name(self, false)
    }

    /// Device nodes and fifos.
    fn special<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        kind: tar::EntryType,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        clear_path(self.layer, self.parent, self.parts, false, self.shown)?;
        let perm = Mode::from_bits_truncate(meta.mode & 0o777);
        let made = if kind == tar::EntryType::Fifo {
            mkfifoat(self.parent, self.name(), perm)
        } else {
            let read_err = |source| UnpackError::ReadArchive { source };
            let major = entry.header().device_major().map_err(read_err)?.unwrap_or(0);
            let minor = entry.header().device_minor().map_err(read_err)?.unwrap_or(0);
            let sflag = if kind == tar::EntryType::Char {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            mknodat(
                self.parent,
                self.name(),
                sflag,
                perm,
                makedev(major.into(), minor.into()),
            )
        };
        made.map_err(|e| create_err(self.shown, e))?;
        meta.apply_by_name(self, true)
    }
}

/// A hard link: the target must be an existing non-directory of this layer, reached without symlinks.
fn hardlink<R: Read>(
    layer: &mut Layer,
    entry: &mut tar::Entry<'_, R>,
    parent: BorrowedFd<'_>,
    parts: &[OsString],
    shown: &str,
) -> Result<(), UnpackError> {
    let link = entry
        .link_name()
        .map_err(|source| UnpackError::ReadArchive { source })?;
    let target_shown = link.as_ref().map(|l| l.display().to_string()).unwrap_or_default();
    let invalid = |reason| UnpackError::InvalidHardlink {
        path: shown.to_owned(),
        target: target_shown.clone(),
        reason,
    };
    let link = link.ok_or_else(|| invalid("no target"))?;
    let target_parts = clean(&link).ok_or_else(|| invalid("target escapes the layer root"))?;
    let (target_name, target_parents) = target_parts
        .split_last()
        .ok_or_else(|| invalid("target is the layer root"))?;
    if target_parts == parts {
        return Ok(());
    }
    let target_dir = layer
        .open_parents(target_parents, false, shown)
        .map_err(|_| invalid("target is not in this layer (missing, or behind a symlink)"))?;
    match fstatat(
        target_dir.as_fd(),
        target_name.as_os_str(),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR => {
            return Err(invalid("target is a directory"))
        }
        Ok(_) => {}
        Err(_) => return Err(invalid("target does not exist in this layer")),
    }
    clear_path(layer, parent, parts, false, shown)?;
    let name = parts.last().map(OsString::as_os_str).unwrap_or_default();
    linkat(
        target_dir.as_fd(),
        target_name.as_os_str(),
        parent,
        name,
        AtFlags::empty(),
    )
    .map_err(|e| create_err(shown, e))
}

/// A 0/0 character device: overlayfs's whiteout. An entry of this layer with the same name is kept
/// (whiteouts only hide lower layers).
pub(super) fn whiteout_device(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    meta: &Meta,
    shown: &str,
) -> Result<(), UnpackError> {
    if fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok() {
        tracing::debug!(
            entry = shown,
            "whiteout names an entry of the same layer; keeping the entry"
        );
        return Ok(());
    }
    mknodat(parent, name, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|e| create_err(shown, e))?;
    fchownat(
        parent,
        name,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(meta_err(shown, "ownership"))
}

/// Removes whatever is at `parts` unless both it and the new entry are directories (then they merge).
/// Returns whether an existing directory was kept.
fn clear_path(
    layer: &Layer,
    parent: BorrowedFd<'_>,
    parts: &[OsString],
    new_is_dir: bool,
    shown: &str,
) -> Result<bool, UnpackError> {
    let name = parts.last().map(OsString::as_os_str).unwrap_or_default();
    let existing = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()),
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(create_err(shown, e)),
    };
    match (existing == SFlag::S_IFDIR, new_is_dir) {
        (true, true) => Ok(true),
        // std's remove_dir_all does not follow symlinks; every parent of this path is a verified directory.
        (true, false) => std::fs::remove_dir_all(layer.full_path(parts))
            .map(|()| false)
            .map_err(|source| UnpackError::CreateEntry {
                path: shown.to_owned(),
                source,
            }),
        (false, _) => unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
            .map(|()| false)
            .map_err(|e| create_err(shown, e)),
    }
}

pub(super) fn set_fd_times(fd: &impl AsFd, mtime: i64) -> Result<(), Errno> {
    let time = TimeSpec::new(mtime, 0);
    futimens(fd, &time, &time)
}

/// `map_err` helper: a failed metadata syscall on `shown`.
fn meta_err<'a>(shown: &'a str, what: &'static str) -> impl Fn(Errno) -> UnpackError + 'a {
    move |e| UnpackError::SetMetadata {
        path: shown.to_owned(),
        what,
        source: e.into(),
    }
}

/// PAX times are decimal seconds, possibly negative and fractional: keep the whole seconds.
fn parse_pax_time(value: &str) -> Option<i64> {
    value.split('.').next()?.parse().ok()
}
