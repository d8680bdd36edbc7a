//! File-system primitives with crash and symlink safety: atomic writes and deletes, and path resolution
//! confined to a root directory (`openat2` with `RESOLVE_IN_ROOT`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// Writes `data` to `path` atomically: a temp file in the same directory, fsync, rename, fsync of the dir.
/// Readers see the old content or the new, never a torn file.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        super::crash::point_at("atomic-write", &name.to_string_lossy());
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Serializes `value` as JSON and writes it with [`write_atomic`] (mode 0600: records may hold env values).
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let data = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    write_atomic(path, &data, 0o600)
}

/// Reads and decodes a JSON file; `Ok(None)` when it does not exist.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a directory tree atomically from the reader's point of view: it is first renamed to a hidden
/// `.deleting-<name>` sibling, then removed without crossing into other file systems (a mount left inside
/// is never descended into; the call fails instead, like the kubelet's `RemoveDirsOneFilesystem`).
pub fn remove_dir_atomic(path: &Path) -> io::Result<()> {
    let Some(name) = path.file_name() else {
        return Err(io::Error::other("path has no file name"));
    };
    let hidden = path.with_file_name(format!(".deleting-{}", name.to_string_lossy()));
    if fs::symlink_metadata(path).is_ok() {
        // An earlier removal of the same name that failed part way would block the rename: finish it first.
        remove_tree_one_fs(&hidden)?;
    }
    match fs::rename(path, &hidden) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(&hidden).is_err() {
                return Ok(());
            }
        }
        Err(e) => return Err(e),
    }
    remove_tree_one_fs(&hidden)
}

/// [`remove_dir_atomic`] once nothing is mounted at or under `path` (by the mount table); while something
/// is, the directory is left exactly where it is and the error names the mount.
pub fn remove_dir_unless_mounted(path: &Path) -> io::Result<()> {
    if let Some(mount) = crate::sys::mount::mounts_under(path)?.first() {
        return Err(io::Error::other(format!(
            "{} is still mounted; not removing {}",
            mount.display(),
            path.display()
        )));
    }
    remove_dir_atomic(path)
}

/// Removes `root` recursively, refusing to cross a mount and never following symlinks. Mounts are told
/// by mount id (`statx` `STATX_MNT_ID`), not by `st_dev`, so a bind mount of the same file system (a staged
/// hostPath, a subPath) is seen too: the removal fails with an error naming it instead of emptying it.
pub fn remove_tree_one_fs(root: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return fs::remove_file(root);
    }
    let mnt = mount_id(root)?;
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        if mount_id(parent)? != mnt {
            return Err(refusal(root));
        }
    }
    remove_children(root, mnt)?;
    fs::remove_dir(root)
}

fn remove_children(dir: &Path, mnt: u64) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if mount_id(&path)? != mnt {
            return Err(refusal(&path));
        }
        if fs::symlink_metadata(&path)?.is_dir() {
            remove_children(&path, mnt)?;
            fs::remove_dir(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn refusal(path: &Path) -> io::Error {
    io::Error::other(format!("refusing to remove {}: a mount point", path.display()))
}

/// The id of the mount `path` is on, not following a final symlink (`statx` with `STATX_MNT_ID`, Linux
/// 5.8+). A mount point has another id than its parent directory even when both are on one file system.
pub fn mount_id(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: statx is plain old data; all-zero is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let flags = libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT;
    // SAFETY: `c` is a NUL-terminated path that outlives the call; `stx` is a valid, writable statx.
    let rc = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), flags, libc::STATX_MNT_ID, &mut stx) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(io::Error::other(format!(
            "{}: the kernel reports no mount id",
            path.display()
        )));
    }
    Ok(stx.stx_mnt_id)
}

/// Opens `path` relative to the directory `root`, resolving every component inside `root` (`..` and
/// absolute symlinks cannot leave it) and refusing magic links. `flags` are extra open flags.
pub fn open_in_root(root: &impl AsFd, path: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(root.as_fd(), rel, how).map_err(io::Error::from)
}

/// Opens a directory as an `O_PATH` handle, not following a final symlink.
pub fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)?;
    Ok(f.into())
}

/// `/proc/self/fd/<n>` for an fd: a path that names exactly the opened object, for mounting through it.
pub fn fd_path(fd: &impl AsFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Creates `dir` (and parents) with `mode` for every directory it creates.
pub fn create_dir_all_mode(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(mode).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Detaches every mount under a test's directory when the test ends (pass or fail), wherever a rename
    /// moved them, stacked ones included.
    struct Unmounter<'a>(&'a Path);

    impl Drop for Unmounter<'_> {
        fn drop(&mut self) {
            for _ in 0..8 {
                match crate::sys::mount::mounts_under(self.0) {
                    Ok(found) if !found.is_empty() => {
                        let _ = crate::sys::mount::unmount_all_under(self.0);
                    }
                    _ => return,
                }
            }
        }
    }

    #[test]
    fn removal_never_descends_into_a_bind_mount_of_the_same_file_system() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: bind mounts need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        fs::create_dir_all(host.join("sub")).unwrap();
        fs::write(host.join("sub/keep"), b"data").unwrap();
        fs::write(dir.path().join("host-file"), b"data").unwrap();
        let pod = dir.path().join("pod");
        let (staged, file) = (pod.join("volumes/v"), pod.join("f"));
        fs::create_dir_all(&staged).unwrap();
        fs::write(&file, b"").unwrap();
        let _unmount = Unmounter(dir.path());
        // Stacked twice, as a staged hostPath with a subPath bind of it, plus a single-file bind.
        for (source, target) in [
            (&host, &staged),
            (&host, &staged),
            (&dir.path().join("host-file"), &file),
        ] {
            crate::sys::mount::bind(source, target, false).unwrap();
        }
        assert_eq!(
            fs::symlink_metadata(&staged).unwrap().dev(),
            fs::symlink_metadata(&pod).unwrap().dev()
        );
        let err = remove_dir_atomic(&pod).unwrap_err();
        assert!(err.to_string().contains("a mount point"), "{err}");
        assert_eq!(fs::read(host.join("sub/keep")).unwrap(), b"data");
        assert_eq!(fs::read(dir.path().join("host-file")).unwrap(), b"data");
        // The tree root itself being a mount point is refused too.
        let err = remove_tree_one_fs(&dir.path().join(".deleting-pod/volumes/v")).unwrap_err();
        assert!(err.to_string().contains("a mount point"), "{err}");
        assert_eq!(fs::read(host.join("sub/keep")).unwrap(), b"data");
    }

    #[test]
    fn a_directory_with_a_mount_under_it_is_left_in_place() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: bind mounts need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("keep"), b"data").unwrap();
        let pod = dir.path().join("pod");
        let staged = pod.join("volumes/v");
        fs::create_dir_all(&staged).unwrap();
        let _unmount = Unmounter(dir.path());
        crate::sys::mount::bind(&host, &staged, false).unwrap();
        let err = remove_dir_unless_mounted(&pod).unwrap_err();
        assert!(err.to_string().contains("is still mounted"), "{err}");
        assert!(staged.is_dir(), "the pod directory keeps its name");
        assert_eq!(fs::read(host.join("keep")).unwrap(), b"data");
        crate::sys::mount::unmount(&staged).unwrap();
        remove_dir_unless_mounted(&pod).unwrap();
        assert!(!pod.exists());
        assert_eq!(fs::read(host.join("keep")).unwrap(), b"data");
    }

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn remove_dir_atomic_removes_tree_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("pod");
        fs::create_dir_all(victim.join("a/b")).unwrap();
        fs::write(victim.join("a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc", victim.join("link")).unwrap();
        remove_dir_atomic(&victim).unwrap();
        assert!(!victim.exists());
        remove_dir_atomic(&victim).unwrap();
        assert!(Path::new("/etc/passwd").exists());
    }

    #[test]
    fn remove_dir_atomic_finishes_an_earlier_failed_removal_of_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("volumes");
        let left = dir.path().join(".deleting-volumes");
        fs::create_dir_all(left.join("old")).unwrap();
        fs::write(left.join("old/f"), b"x").unwrap();
        fs::create_dir_all(victim.join("new")).unwrap();
        remove_dir_atomic(&victim).unwrap();
        assert!(!victim.exists());
        assert!(!left.exists());
    }

    #[test]
    fn open_in_root_cannot_escape_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", root.join("up")).unwrap();
        let rootfd = open_dir_path(&root).unwrap();
        for p in ["evil/passwd", "up", "/etc/passwd", "../etc/passwd"] {
            let fd = open_in_root(&rootfd, Path::new(p), OFlag::O_RDONLY).unwrap();
            let content = fs::read_to_string(fd_path(&fd)).unwrap();
            assert_eq!(content, "inside", "{p} escaped the root");
        }
    }
}
