//! hostPath volumes: the kubelet's `type` checks, then the path opened once (`O_PATH`) and everything else
//! done through that handle: the type is checked on the opened object, its real location is checked against
//! peapod's own directories, and it is bind-mounted through `/proc/self/fd/N` onto a per-pod staging path
//! that the OCI runtime mounts. Swapping a symlink into the path after the check cannot redirect the mount
//! (the check and the use share the fd), and no hostPath reaches peapod's state or run directory.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::HostPathVolumeSource;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};

use super::SetUpError;
use crate::api::component::join_component;
use crate::sys;

/// Where a pod's hostPath volumes are staged.
pub fn staging_root(pod_dir: &Path) -> PathBuf {
    pod_dir.join("volumes").join("kubernetes.io~host-path")
}

/// Prepares the hostPath volume `name` and returns its staging path. `protected` are peapod's state and run
/// directories: no hostPath may be inside one or contain one, and none is created there.
pub fn prepare(
    pod_dir: &Path,
    name: &str,
    hp: &HostPathVolumeSource,
    protected: &[PathBuf],
) -> Result<PathBuf, SetUpError> {
    let path = Path::new(&hp.path);
    let typ = hp.type_.as_deref().unwrap_or("");
    let protected = real_dirs(protected);
    create_if_asked(path, typ, &protected)?;
    let fd = match open_path(path) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !typ.is_empty() => {
            return Err(type_error(path, typ));
        }
        Err(e) => return Err(SetUpError::io("open", path, e)),
    };
    let target = sys::fs::fd_path(&fd);
    let meta = fs::metadata(&target).map_err(|e| SetUpError::io("stat", path, e))?;
    check_type(path, typ, &meta.file_type())?;
    let resolved = fs::read_link(&target).map_err(|e| SetUpError::io("resolve", path, e))?;
    refuse_protected(path, &resolved, &protected)?;
    let staging = join_component(&staging_root(pod_dir), name).ok_or_else(|| SetUpError::InvalidName {
        name: name.to_string(),
    })?;
    stage(&target, &staging, meta.is_dir()).map_err(|e| SetUpError::io("mount", path, e))?;
    Ok(staging)
}

/// The kubelet's hostPath type check on `path` (pkg/volume/hostpath), creating for the `*OrCreate` types
/// (and, as containerd does, a missing untyped path as a directory), never inside or above `protected`.
pub fn check_host_path(path: &Path, typ: &str, protected: &[PathBuf]) -> Result<(), SetUpError> {
    create_if_asked(path, typ, &real_dirs(protected))?;
    match fs::metadata(path) {
        Ok(m) => check_type(path, typ, &m.file_type()),
        Err(_) if typ.is_empty() => Ok(()),
        Err(_) => Err(type_error(path, typ)),
    }
}

/// Where `path` is or would be created, checked against `protected` before anything is made; what is
/// missing is then created relative to the opened deepest existing ancestor, one component at a time and
/// without following symlinks, so a symlink swapped in meanwhile cannot move the creation elsewhere.
fn create_if_asked(path: &Path, typ: &str, protected: &[PathBuf]) -> Result<(), SetUpError> {
    let (dir, missing) = existing_ancestor(path).map_err(|e| SetUpError::io("resolve", path, e))?;
    let real = fs::read_link(sys::fs::fd_path(&dir)).map_err(|e| SetUpError::io("resolve", path, e))?;
    let location = missing.iter().fold(real, |p, c| p.join(c));
    refuse_protected(path, &location, protected)?;
    if missing.is_empty() {
        return Ok(());
    }
    let created = match typ {
        "" | "DirectoryOrCreate" => create_dirs(dir, &missing),
        // Like the kubelet, FileOrCreate makes the file but not its directory.
        "FileOrCreate" if missing.len() == 1 => create_file(&dir, &missing[0]),
        "FileOrCreate" => Err(io::Error::from(io::ErrorKind::NotFound)),
        _ => Ok(()),
    };
    created.map_err(|e| SetUpError::io("create", path, e))
}

/// The deepest existing ancestor of `path` (or `path` itself), opened `O_PATH` (symlinks followed, as a
/// hostPath is), and the names below it that do not exist yet, outermost first.
fn existing_ancestor(path: &Path) -> io::Result<(OwnedFd, Vec<OsString>)> {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        match open_path(at) {
            Ok(fd) => {
                missing.reverse();
                return Ok((fd, missing));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(name), Some(parent)) = (at.file_name(), at.parent()) else {
                    return Err(e);
                };
                missing.push(name.to_os_string());
                at = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

fn create_dirs(mut dir: OwnedFd, missing: &[OsString]) -> io::Result<()> {
    for name in missing {
        match mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        dir = openat(&dir, name.as_os_str(), flags, Mode::empty())?;
    }
    Ok(())
}

fn create_file(dir: &OwnedFd, name: &OsString) -> io::Result<()> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dir, name.as_os_str(), flags, Mode::from_bits_truncate(0o644))?;
    fchmod(&fd, Mode::from_bits_truncate(0o644))?;
    Ok(())
}

fn type_error(path: &Path, typ: &str) -> SetUpError {
    let what = match typ {
        "Directory" | "DirectoryOrCreate" => "a directory",
        "File" | "FileOrCreate" => "a file",
        "Socket" => "a socket file",
        "CharDevice" => "a character device",
        "BlockDevice" => "a block device",
        other => {
            return SetUpError::InvalidType {
                typ: other.to_string(),
            }
        }
    };
    SetUpError::HostPathType {
        path: path.to_path_buf(),
        what,
    }
}

fn check_type(path: &Path, typ: &str, ft: &fs::FileType) -> Result<(), SetUpError> {
    let ok = match typ {
        "" => true,
        "Directory" | "DirectoryOrCreate" => ft.is_dir(),
        "File" | "FileOrCreate" => ft.is_file(),
        "Socket" => ft.is_socket(),
        "CharDevice" => ft.is_char_device(),
        "BlockDevice" => ft.is_block_device(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(type_error(path, typ))
    }
}

/// Opens `path` as an `O_PATH` handle, following symlinks as a hostPath bind mount does.
fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)?;
    Ok(f.into())
}

/// The real paths of peapod's directories (those that exist).
fn real_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter().filter_map(|d| fs::canonicalize(d).ok()).collect()
}

/// Refuses a hostPath whose real location is inside one of peapod's directories or contains one (`/`,
/// `/var/lib` for a state dir `/var/lib/peapod`): either would hand the container peapod's state,
/// registry credentials included, and let it break other pods' cleanup.
fn refuse_protected(path: &Path, location: &Path, protected: &[PathBuf]) -> Result<(), SetUpError> {
    for real in protected {
        let relation = if location.starts_with(real) {
            "is inside"
        } else if real.starts_with(location) {
            "contains"
        } else {
            continue;
        };
        return Err(SetUpError::Protected {
            path: path.to_path_buf(),
            relation,
            dir: real.clone(),
        });
    }
    Ok(())
}

/// Bind-mounts the opened object (`/proc/self/fd/N`) onto `staging`, replacing an earlier mount.
fn stage(target: &Path, staging: &Path, is_dir: bool) -> io::Result<()> {
    if let Some(parent) = staging.parent() {
        sys::fs::create_dir_all_mode(parent, 0o700)?;
    }
    // Already staged (a restart preparing an adopted pod's volumes again): the mount stays. Taking it away
    // and binding it again would leave a moment in which a container being created (by a shim a killed
    // supervisor left running) binds the empty staging path instead of the volume.
    if is_staged(target, staging) {
        return Ok(());
    }
    sys::mount::unmount(staging)?;
    sys::crash::point("volume-unstaged");
    if is_dir {
        sys::fs::create_dir_all_mode(staging, 0o700)?;
    } else if fs::symlink_metadata(staging).is_err() {
        fs::File::create(staging)?;
    }
    sys::mount::bind(target, staging, true)
}

/// Whether `staging` already shows the object `target` names (the same device and inode: its bind mount).
fn is_staged(target: &Path, staging: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(target), fs::symlink_metadata(staging)) {
        (Ok(t), Ok(s)) => t.dev() == s.dev() && t.ino() == s.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn host_path_types_match_kubelet_messages() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("file"), b"x").unwrap();
        assert!(check_host_path(&d.join("file"), "File", &[]).is_ok());
        assert_eq!(
            check_host_path(&d.join("file"), "Directory", &[])
                .unwrap_err()
                .to_string(),
            format!(
                "hostPath type check failed: {}/file is not a directory",
                d.display()
            )
        );
        assert!(check_host_path(&d.join("missing"), "Directory", &[]).is_err());
        check_host_path(&d.join("new/dir"), "DirectoryOrCreate", &[]).unwrap();
        assert!(d.join("new/dir").is_dir());
        check_host_path(&d.join("f2"), "FileOrCreate", &[]).unwrap();
        assert_eq!(fs::metadata(d.join("f2")).unwrap().mode() & 0o777, 0o644);
        assert!(check_host_path(&d.join("nope/f3"), "FileOrCreate", &[]).is_err());
        assert!(check_host_path(d, "Socket", &[])
            .unwrap_err()
            .to_string()
            .contains("is not a socket file"));
        assert!(check_host_path(d, "Bogus", &[])
            .unwrap_err()
            .to_string()
            .contains("invalid volume type"));
        assert!(check_host_path(Path::new("/dev/null"), "CharDevice", &[]).is_ok());
        check_host_path(&d.join("untyped"), "", &[]).unwrap();
        assert!(d.join("untyped").is_dir(), "created like containerd does");
    }

    #[test]
    fn peapods_own_directories_are_refused_through_symlinks_too() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir_all(state.join("pods")).unwrap();
        std::os::unix::fs::symlink(&state, dir.path().join("innocent")).unwrap();
        let protected = [state.clone(), dir.path().join("run-missing")];
        for p in [
            state.clone(),
            state.join("pods"),
            dir.path().join("innocent/pods"),
        ] {
            let hp = HostPathVolumeSource {
                path: p.display().to_string(),
                type_: None,
            };
            let err = prepare(&dir.path().join("pod"), "v", &hp, &protected)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("containers may not mount peapod's own state"),
                "{err}"
            );
        }
        assert!(!dir.path().join("pod/volumes").exists(), "nothing was staged");
    }

    #[test]
    fn nothing_is_created_inside_peapods_own_directories() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir_all(&state).unwrap();
        std::os::unix::fs::symlink(&state, dir.path().join("innocent")).unwrap();
        let protected = [state.clone()];
        let cases = [
            (state.join("new/dir"), "DirectoryOrCreate"),
            (state.join("made"), ""),
            (state.join("file"), "FileOrCreate"),
            (dir.path().join("innocent/through-link/dir"), "DirectoryOrCreate"),
            (dir.path().join("innocent/file"), "FileOrCreate"),
        ];
        for (path, typ) in cases {
            let err = check_host_path(&path, typ, &protected).unwrap_err().to_string();
            assert!(err.contains("is inside peapod's directory"), "{err}");
        }
        assert_eq!(fs::read_dir(&state).unwrap().count(), 0, "nothing was created");
        // Beside the state dir is fine.
        check_host_path(&dir.path().join("beside/dir"), "DirectoryOrCreate", &protected).unwrap();
    }

    #[test]
    fn ancestors_of_peapods_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("var/lib/peapod");
        fs::create_dir_all(&state).unwrap();
        let protected = [state.clone(), dir.path().join("run-missing")];
        for (path, typ) in [
            (PathBuf::from("/"), ""),
            (PathBuf::from("/"), "Directory"),
            (dir.path().join("var/lib"), "Directory"),
            (dir.path().join("var"), "DirectoryOrCreate"),
            (dir.path().join("var/lib/peapod/.."), ""),
        ] {
            let hp = HostPathVolumeSource {
                path: path.display().to_string(),
                type_: Some(typ.to_string()),
            };
            let err = prepare(&dir.path().join("pod"), "v", &hp, &protected)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("contains peapod's directory") && err.contains("containers may not mount"),
                "{}: {err}",
                path.display()
            );
        }
        assert!(!dir.path().join("pod/volumes").exists(), "nothing was staged");
    }
}
