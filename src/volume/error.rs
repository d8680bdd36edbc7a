//! Errors of volumes, in the kubelet's wording: a volume that cannot be set up fails as
//! `MountVolume.SetUp failed for volume "x" : <reason>`, a container's mount of one as its own message.

use std::io;
use std::path::{Path, PathBuf};

use crate::sys::chain;

/// Errors preparing or mounting volumes; the message is what the user sees in a `FailedMount` event or a
/// `CreateContainerConfigError`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Setting up a volume failed (kubelet: `MountVolume.SetUp failed for volume "x" : ...`).
    #[error("MountVolume.SetUp failed for volume {name:?} : {}", chain(reason))]
    SetUp {
        /// Volume name.
        name: String,
        /// What went wrong (in the message: the kubelet's ` : ` separates it, not a source chain).
        reason: SetUpError,
    },
    /// A `volumeMount` names a volume the pod did not prepare.
    #[error("volume {name:?} is not prepared")]
    NotPrepared {
        /// Volume name.
        name: String,
    },
    /// An expanded `subPathExpr` is refused.
    #[error("subpath {path:?} must {rule}")]
    SubPath {
        /// The expanded subPath.
        path: String,
        /// The rule it breaks (`not contain backticks`, `be a relative path`, `not contain '..'`).
        rule: &'static str,
    },
    /// A subPath could not be resolved and staged.
    #[error("failed to prepare subPath for volumeMount {volume:?} of container {container:?}")]
    StageSubPath {
        /// Volume name.
        volume: String,
        /// Container name.
        container: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Why one volume could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetUpError {
    /// The volume's type is not one peapod implements.
    #[error("volume type not supported by peapod")]
    Unsupported,
    /// The volume's name cannot be a directory name.
    #[error("invalid volume name {name:?}")]
    InvalidName {
        /// Volume name.
        name: String,
    },
    /// A hostPath's type does not match what is there (kubelet's wording).
    #[error("hostPath type check failed: {} is not {what}", path.display())]
    HostPathType {
        /// The hostPath.
        path: PathBuf,
        /// What it must be (`a directory`, `a file`, ...).
        what: &'static str,
    },
    /// A hostPath `type` the kubelet does not know.
    #[error("{typ} is an invalid volume type")]
    InvalidType {
        /// The type.
        typ: String,
    },
    /// A hostPath is inside or above one of peapod's own directories.
    #[error("hostPath {} {relation} peapod's directory {}: containers may not mount peapod's own state", path.display(), dir.display())]
    Protected {
        /// The hostPath.
        path: PathBuf,
        /// `is inside` or `contains`.
        relation: &'static str,
        /// peapod's directory.
        dir: PathBuf,
    },
    /// A file-system operation on the volume failed (`open`, `stat`, `resolve`, `create`, `mount`,
    /// `mount tmpfs`).
    #[error(transparent)]
    Io(#[from] crate::sys::PathError),
    /// The emptyDir's mode could not be set.
    #[error(transparent)]
    SetMode(io::Error),
    /// `/proc/meminfo` does not say how much memory the node has.
    #[error("cannot read the node's memory from /proc/meminfo")]
    NodeMemory,
    /// `fsGroup` could not be applied to the volume.
    #[error("applying fsGroup {gid} to {}", path.display())]
    FsGroup {
        /// The group.
        gid: u32,
        /// The volume's path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl SetUpError {
    /// A [`SetUpError::Io`].
    pub fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        SetUpError::Io(crate::sys::PathError::new(action, path, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_messages_keep_the_kubelet_wording() {
        let set_up = |reason| Error::SetUp {
            name: "data".into(),
            reason,
        };
        let cases = [
            (
                set_up(SetUpError::io(
                    "create",
                    Path::new("/v/data"),
                    io::Error::from_raw_os_error(libc::ENOSPC),
                )),
                "MountVolume.SetUp failed for volume \"data\" : create /v/data: No space left on device (os error 28)",
            ),
            (
                set_up(SetUpError::HostPathType {
                    path: "/etc/x".into(),
                    what: "a directory",
                }),
                "MountVolume.SetUp failed for volume \"data\" : hostPath type check failed: /etc/x is not a directory",
            ),
            (
                set_up(SetUpError::Unsupported),
                "MountVolume.SetUp failed for volume \"data\" : volume type not supported by peapod",
            ),
            (
                Error::SubPath {
                    path: "../x".into(),
                    rule: "not contain '..'",
                },
                "subpath \"../x\" must not contain '..'",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(chain(&e), want);
            assert_eq!(
                e.to_string(),
                want,
                "the reason is in the message, not a source to chain again"
            );
        }
    }
}
