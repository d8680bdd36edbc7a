//! Proof that the OCI runtime really masked what `linux.maskedPaths` asks, checked by the shim between
//! `runc create` and `runc start`, when the container's mounts are final and none of its code has run.
//!
//! runc masks a file by bind-mounting the container's `/dev/null` over it and a directory with a read-only
//! tmpfs, and it skips a mask without a word when that `/dev/null` is missing. Before runc 1.2.8 it also
//! follows a symlink planted as `/dev/null` (CVE-2025-31133 and its kin), so a pod that gets a volume of
//! its own onto `/dev` (through a mountPath, or a symlink inside another volume) turns the mask into a bind
//! of the very file it should hide. Validation refuses the direct ways; this check catches every way, on
//! any runc: each masked path that exists on this node must have, on top, a mount of the kind runc makes:
//! a bind of the container's own `/dev/null` (same device and root as that file: `/null` of the `/dev`
//! tmpfs, or of the devtmpfs when `/dev/null` is itself a bind of the host's), or a read-only tmpfs with
//! root `/`; never procfs, sysfs, a volume, or some other tmpfs.

use std::path::Path;

use crate::sys::mount::{mountinfo_entries, top_mount_at, MountEntry};

/// A masked path that is not masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// The container's mount table could not be read.
    #[error("cannot read the mount table of container process {pid}: {reason}")]
    Unreadable {
        /// The container's init.
        pid: i32,
        /// The I/O error.
        reason: String,
    },
    /// Nothing is mounted on a masked path.
    #[error(
        "masked path {path} is not masked (nothing mounted on it: the container's /dev/null is missing)"
    )]
    Missing {
        /// The masked path.
        path: String,
    },
    /// Something other than a mask is mounted on it.
    #[error(
        "masked path {path} is not masked (a {fs_type} mount covers it: the container's /dev/null is not \
         the runtime's)"
    )]
    Foreign {
        /// The masked path.
        path: String,
        /// What covers it.
        fs_type: String,
    },
}

/// Checks the masks of container process `pid` (read through `proc_root`, normally `/proc`); `host_root`
/// is where this node's own view of the masked paths is looked up (`/`), to skip paths the kernel lacks.
pub fn verify(proc_root: &Path, pid: i32, masked: &[String], host_root: &Path) -> Result<(), MaskError> {
    if masked.is_empty() {
        return Ok(());
    }
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("mountinfo")).map_err(|e| {
        MaskError::Unreadable {
            pid,
            reason: e.to_string(),
        }
    })?;
    check(&text, masked, |p| {
        host_root
            .join(p.trim_start_matches('/'))
            .symlink_metadata()
            .is_ok()
    })
}

/// [`verify`] on a mountinfo text, with `exists` telling which masked paths this kernel has.
fn check(mountinfo: &str, masked: &[String], exists: impl Fn(&str) -> bool) -> Result<(), MaskError> {
    let entries = mountinfo_entries(mountinfo);
    let null = dev_null(&entries);
    for path in masked {
        match top_mount_at(&entries, path) {
            Some(m) if is_mask(m, null.as_ref()) => {}
            Some(m) => {
                return Err(MaskError::Foreign {
                    path: path.clone(),
                    fs_type: m.fs_type.clone(),
                })
            }
            None if exists(path) => return Err(MaskError::Missing { path: path.clone() }),
            None => {}
        }
    }
    Ok(())
}

/// The device and root a bind of the container's `/dev/null` shows: those of a mount on `/dev/null`
/// itself, else `/null` of the filesystem mounted on `/dev` (the device node runc creates there).
fn dev_null(entries: &[MountEntry]) -> Option<(String, String)> {
    if let Some(m) = top_mount_at(entries, "/dev/null") {
        return Some((m.dev.clone(), m.root.clone()));
    }
    let dev = top_mount_at(entries, "/dev")?;
    let root = format!("{}/null", dev.root.trim_end_matches('/'));
    Some((dev.dev.clone(), root))
}

/// Whether `m` is a mask as runc makes one: a bind of the container's `/dev/null` (a file mask) or a
/// read-only whole tmpfs (a directory mask). A file cannot carry the one nor a directory the other.
fn is_mask(m: &MountEntry, null: Option<&(String, String)>) -> bool {
    let of_dev_null = null.is_some_and(|(dev, root)| {
        *dev == m.dev && *root == m.root && matches!(m.fs_type.as_str(), "tmpfs" | "devtmpfs")
    });
    let read_only = m.options.split(',').any(|o| o == "ro");
    let empty_tmpfs = m.fs_type == "tmpfs" && m.root == "/" && read_only;
    of_dev_null || empty_tmpfs
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "1 0 0:40 / / rw - overlay overlay rw\n\
                        2 1 0:41 / /proc rw - proc proc rw\n\
                        3 1 0:42 / /dev rw - tmpfs tmpfs rw\n\
                        4 1 0:43 / /sys ro - sysfs sysfs ro\n";

    fn masked() -> Vec<String> {
        vec![
            "/proc/kcore".into(),
            "/sys/firmware".into(),
            "/proc/absent".into(),
        ]
    }

    fn exists(p: &str) -> bool {
        p != "/proc/absent"
    }

    #[test]
    fn runc_masks_pass() {
        let info = format!(
            "{BASE}5 2 0:42 /null /proc/kcore ro - tmpfs tmpfs rw\n6 4 0:44 / /sys/firmware ro - tmpfs tmpfs ro\n"
        );
        assert_eq!(check(&info, &masked(), exists), Ok(()));
        assert_eq!(check(BASE, &[], exists), Ok(()));
    }

    #[test]
    fn a_mask_of_the_masked_file_itself_is_refused() {
        // What runc < 1.2.8 does when the container's /dev/null is a symlink to /proc/kcore.
        let info = format!(
            "{BASE}5 2 0:41 /kcore /proc/kcore rw - proc proc rw\n6 4 0:44 / /sys/firmware ro - tmpfs tmpfs ro\n"
        );
        assert_eq!(
            check(&info, &masked(), exists),
            Err(MaskError::Foreign {
                path: "/proc/kcore".into(),
                fs_type: "proc".into()
            })
        );
    }

    #[test]
    fn a_skipped_mask_is_refused_but_an_absent_path_is_fine() {
        let info = format!("{BASE}6 4 0:44 / /sys/firmware ro - tmpfs tmpfs ro\n");
        assert_eq!(
            check(&info, &masked(), exists),
            Err(MaskError::Missing {
                path: "/proc/kcore".into()
            })
        );
    }

    #[test]
    fn only_the_containers_dev_null_or_a_read_only_tmpfs_is_a_mask() {
        let foreign = |line: &str, fs_type: &str| {
            let info = format!("{BASE}{line}\n6 4 0:44 / /sys/firmware ro - tmpfs tmpfs ro\n");
            assert_eq!(
                check(&info, &masked(), exists),
                Err(MaskError::Foreign {
                    path: "/proc/kcore".into(),
                    fs_type: fs_type.into()
                }),
                "{line}"
            );
        };
        // Some other tmpfs's file, another file of the /dev tmpfs, a writable or partial tmpfs, a devtmpfs
        // file other than null: all tmpfs or devtmpfs, none the container's /dev/null.
        foreign("5 2 0:99 /x /proc/kcore ro - tmpfs tmpfs rw", "tmpfs");
        foreign("5 2 0:42 /zero /proc/kcore ro - tmpfs tmpfs rw", "tmpfs");
        foreign("5 2 0:99 / /proc/kcore rw - tmpfs tmpfs rw", "tmpfs");
        foreign("5 2 0:99 /sub /proc/kcore ro - tmpfs tmpfs ro", "tmpfs");
        foreign("5 2 0:5 /null /proc/kcore ro - devtmpfs udev rw", "devtmpfs");
        // With the host's /dev/null bound in (user namespaces), a bind of that very file is the mask.
        let info = format!(
            "{BASE}7 3 0:5 /null /dev/null rw - devtmpfs udev rw\n5 2 0:5 /null /proc/kcore ro - devtmpfs udev rw\n\
             6 4 0:44 / /sys/firmware ro - tmpfs tmpfs ro\n"
        );
        assert_eq!(check(&info, &masked(), exists), Ok(()));
    }
}
