//! Proof that the OCI runtime really masked what `linux.maskedPaths` asks, checked by the shim between
//! `runc create` and `runc start`, when the container's mounts are final and none of its code has run.
//!
//! runc masks a file by bind-mounting the container's `/dev/null` over it and a directory with a read-only
//! tmpfs, and it skips a mask without a word when that `/dev/null` is missing. Before runc 1.2.8 it also
//! follows a symlink planted as `/dev/null` (CVE-2025-31133 and its kin), so a pod that gets a volume of
//! its own onto `/dev` (through a mountPath, or a symlink inside another volume) turns the mask into a bind
//! of the very file it should hide. Validation refuses the direct ways; this check catches every way, on
//! any runc: each masked path that exists on this node must have, on top, a mount of the kind runc makes
//! (tmpfs, or devtmpfs where runc binds the host's `/dev/null`), never procfs, sysfs or a volume.

use std::path::Path;

use crate::sys::mount::{mountinfo_entries, top_mount_at};

/// Filesystems a genuine mask is made of.
const MASK_FS_TYPES: &[&str] = &["tmpfs", "devtmpfs"];

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
    for path in masked {
        match top_mount_at(&entries, path) {
            Some(m) if MASK_FS_TYPES.contains(&m.fs_type.as_str()) => {}
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
}
