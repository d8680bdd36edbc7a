//! Why a container instance could not be started, by the kubelet's three reasons. Each reason wraps a typed
//! error with the path or name in its fields and the cause as its `source()`; the message users see (the
//! waiting message, the `Failed` event) is the whole chain, in the kubelet's wording.

use std::io;
use std::path::PathBuf;

use crate::runtime::chain;
use crate::runtime::{seccomp, spec, user};
use crate::volume;

/// Why a container could not be started, with the kubelet's reason.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `CreateContainerConfigError`.
    #[error("{}", chain(.0))]
    Config(ConfigError),
    /// `CreateContainerError`.
    #[error("{}", chain(.0))]
    Create(CreateError),
    /// `RunContainerError`; the instance is recorded as exited with `StartError`.
    #[error("{0}")]
    Run(RunError),
}

impl StartError {
    /// The waiting reason the kubelet shows for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            StartError::Config(_) => "CreateContainerConfigError",
            StartError::Create(_) => "CreateContainerError",
            StartError::Run(_) => "RunContainerError",
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}

impl From<CreateError> for StartError {
    fn from(e: CreateError) -> Self {
        StartError::Create(e)
    }
}

impl From<RunError> for StartError {
    fn from(e: RunError) -> Self {
        StartError::Run(e)
    }
}

/// The container's configuration cannot be made (`CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable could not be resolved.
    #[error("{0}")]
    Env(String),
    /// A volume mount could not be prepared.
    #[error(transparent)]
    Volume(#[from] volume::Error),
    /// The user the container would run as is refused or unknown.
    #[error(transparent)]
    User(#[from] user::UserError),
}

/// The container's bundle cannot be built (`CreateContainerError`).
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// What a crashed start left of the instance could not be removed.
    #[error(transparent)]
    RemoveStale(io::Error),
    /// A directory of the bundle could not be created.
    #[error("create {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A record or file of the bundle could not be written (`instance.json`, `config.json`, the shim's
    /// configuration, the log directory).
    #[error(transparent)]
    Write(io::Error),
    /// The container's command line cannot be made.
    #[error("{0}")]
    Args(String),
    /// The termination-message file could not be prepared.
    #[error("prepare the termination-message file")]
    PrepareTermination {
        /// The instance directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The image has nothing to mount.
    #[error("image {image} has no layers")]
    NoLayers {
        /// The image reference.
        image: String,
    },
    /// The overlay root filesystem could not be mounted.
    #[error("mount rootfs")]
    MountRootfs {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The seccomp profile cannot be used.
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    /// The pod's sysctls cannot be set.
    #[error("{0}")]
    Sysctl(String),
    /// The OCI spec cannot be built.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// The OCI spec cannot be encoded.
    #[error(transparent)]
    EncodeSpec(serde_json::Error),
    /// The shim's liveness lock could not be taken.
    #[error("lock {}", path.display())]
    LockShim {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The shim could not be started.
    #[error("start shim")]
    StartShim(#[source] io::Error),
}

/// The OCI runtime did not run the container (`RunContainerError`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The shim's report of the failure (the OCI runtime's message).
    #[error("{0}")]
    Failed(String),
    /// The shim reported a start without its record.
    #[error("shim reported a start but wrote no record")]
    NoStartRecord,
    /// The shim went away without a report.
    #[error("the container shim exited before reporting a start")]
    NoReport,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_the_kubelet_wording_with_the_cause() {
        let io = || io::Error::from_raw_os_error(libc::ENOSPC);
        let cases: Vec<(StartError, &str)> = vec![
            (
                CreateError::CreateDir {
                    path: "/i/rootfs".into(),
                    source: io(),
                }
                .into(),
                "create /i/rootfs: No space left on device (os error 28)",
            ),
            (
                CreateError::MountRootfs {
                    path: "/i/rootfs".into(),
                    source: io(),
                }
                .into(),
                "mount rootfs: No space left on device (os error 28)",
            ),
            (
                CreateError::Write(io()).into(),
                "No space left on device (os error 28)",
            ),
            (
                CreateError::StartShim(io()).into(),
                "start shim: No space left on device (os error 28)",
            ),
            (
                ConfigError::from(volume::Error::StageSubPath {
                    volume: "data".into(),
                    container: "app".into(),
                    source: io(),
                })
                .into(),
                "failed to prepare subPath for volumeMount \"data\" of container \"app\": No space left on device (os error 28)",
            ),
            (
                ConfigError::from(user::UserError::UnknownUser { name: "ghost".into() }).into(),
                "unable to find user ghost: no matching entries in passwd file",
            ),
            (
                CreateError::from(seccomp::SeccompError::Load {
                    path: "/p/a.json".into(),
                    source: seccomp::LoadError::Read(io()),
                })
                .into(),
                "failed to generate seccomp spec opts: cannot load seccomp profile \"/p/a.json\": No space left on device (os error 28)",
            ),
            (
                CreateError::from(spec::SpecError::UnknownCapability { name: "FLY".into() }).into(),
                "unknown capability \"FLY\"",
            ),
            (
                RunError::Failed("runc create failed: x".into()).into(),
                "runc create failed: x",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
