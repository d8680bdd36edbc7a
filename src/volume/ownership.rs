//! `fsGroup` volume ownership (the kubelet's `SetVolumeOwnership`, pkg/volume/volume_linux.go): every file
//! of the volume gets the group, group read-write, and directories get the setgid bit and group execute,
//! so files created later inherit the group. `fsGroupChangePolicy: OnRootMismatch` skips the walk when the
//! volume's root already looks right.
//!
//! The tree may have been written by a container, so the walk never follows a symlink and works on the
//! opened objects (`fchown`, `fchmod`): an entry swapped for a symlink mid-walk cannot redirect a change to
//! the host. Unlike the kubelet, symlinks and special files only get the group (never a mode change), and
//! regular files lose setuid/setgid rather than regain them after the group change.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, Gid};

/// Deepest directory level walked; a deeper tree is refused.
const MAX_DEPTH: usize = 256;
/// Group read-write.
const RW_GROUP: u32 = 0o660;
/// Group (and owner) execute, for directories.
const X_GROUP: u32 = 0o110;

/// Gives the tree at `root` the group `gid` as the kubelet does; `policy` is `fsGroupChangePolicy`.
pub fn apply(root: &Path, gid: u32, policy: Option<&str>) -> io::Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd: OwnedFd = nix::fcntl::open(root, flags, Mode::empty())?;
    if policy == Some("OnRootMismatch") && !needs_change(&fstat(&fd)?, gid) {
        return Ok(());
    }
    walk(fd, gid, 0)
}

/// The kubelet's `requiresPermissionChange` for a directory root.
fn needs_change(st: &FileStat, gid: u32) -> bool {
    let wanted = RW_GROUP | X_GROUP;
    st.st_gid != gid || st.st_mode & wanted != wanted || st.st_mode & libc::S_ISGID == 0
}

fn is(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == kind
}

/// Changes the directory `dir`, then everything in it.
fn walk(dir: OwnedFd, gid: u32, depth: usize) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other(format!(
            "directory tree deeper than {MAX_DEPTH} levels"
        )));
    }
    change(&dir, &fstat(&dir)?, gid)?;
    for name in names(&dir)? {
        let st = match nix::sys::stat::fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        if !(is(&st, SFlag::S_IFDIR) || is(&st, SFlag::S_IFREG)) {
            // Symlinks, sockets, fifos, devices: the group only, on the entry itself.
            group_only(&dir, &name, gid)?;
            continue;
        }
        let flags =
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::openat(&dir, name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            // Replaced by a symlink (ELOOP) or removed since the stat: handle what is there now.
            Err(nix::errno::Errno::ELOOP) | Err(nix::errno::Errno::ENXIO) => {
                group_only(&dir, &name, gid)?;
                continue;
            }
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let st = fstat(&fd)?;
        if is(&st, SFlag::S_IFDIR) {
            walk(fd, gid, depth + 1)?;
        } else if is(&st, SFlag::S_IFREG) {
            change(&fd, &st, gid)?;
        } else {
            fchown(&fd, None, Some(Gid::from_raw(gid)))?;
        }
    }
    Ok(())
}

/// Group and mode of an opened directory or regular file.
fn change(fd: &impl AsFd, st: &FileStat, gid: u32) -> io::Result<()> {
    fchown(fd, None, Some(Gid::from_raw(gid)))?;
    let mode = if is(st, SFlag::S_IFDIR) {
        (st.st_mode & 0o7777) | RW_GROUP | X_GROUP | libc::S_ISGID
    } else {
        (st.st_mode & 0o1777 & !libc::S_ISGID) | RW_GROUP
    };
    fchmod(fd, Mode::from_bits_truncate(mode))?;
    Ok(())
}

fn group_only(dir: &OwnedFd, name: &OsString, gid: u32) -> io::Result<()> {
    match fchownat(
        dir,
        name.as_os_str(),
        None,
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The entries of `dir` except `.` and `..`.
fn names(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let dup = dir.as_fd().try_clone_to_owned()?;
    let mut d = Dir::from_fd(dup)?;
    let mut out = Vec::new();
    for entry in d.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(std::ffi::OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn every_file_gets_the_group_and_directories_setgid() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), b"x").unwrap();
        fs::set_permissions(root.join("a/b/f"), fs::Permissions::from_mode(0o4700)).unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"host").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        apply(&root, 4242, None).unwrap();
        for d in ["", "a", "a/b"] {
            let m = fs::metadata(root.join(d)).unwrap();
            assert_eq!(m.gid(), 4242, "{d}");
            assert_eq!(m.mode() & 0o2770, 0o2770, "{d}: {:o}", m.mode());
        }
        let f = fs::metadata(root.join("a/b/f")).unwrap();
        assert_eq!(
            (f.gid(), f.mode() & 0o7777),
            (4242, 0o760),
            "setuid dropped, group rw"
        );
        let link = fs::symlink_metadata(root.join("link")).unwrap();
        assert_eq!(link.gid(), 4242, "the symlink itself");
        let host = fs::metadata(&outside).unwrap();
        assert_ne!(host.gid(), 4242, "never followed");
        assert_eq!(host.mode() & 0o777, 0o600);
    }

    #[test]
    fn on_root_mismatch_skips_a_root_that_already_fits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("f"), b"x").unwrap();
        apply(&root, 4343, Some("OnRootMismatch")).unwrap();
        assert_eq!(fs::metadata(root.join("f")).unwrap().gid(), 4343);
        // A later file with another group is left alone while the root still fits.
        fs::write(root.join("g"), b"y").unwrap();
        nix::unistd::chown(&root.join("g"), None, Some(Gid::from_raw(0))).unwrap();
        apply(&root, 4343, Some("OnRootMismatch")).unwrap();
        assert_eq!(fs::metadata(root.join("g")).unwrap().gid(), 0);
        apply(&root, 4343, Some("Always")).unwrap();
        assert_eq!(fs::metadata(root.join("g")).unwrap().gid(), 4343);
    }
}
