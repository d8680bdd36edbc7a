//! The node runtime: pause sandboxes, shims, OCI bundle generation, on-disk state and recovery.
//!
//! The supervisor (`peapod run`/`peapod agent`) never forks or joins namespaces itself: it re-executes its own
//! binary as `peapod pause` (one per sandbox) and `peapod shim` (one per container instance), which are
//! small, single-threaded and detached, so workloads survive the supervisor. This module knows nothing of
//! restart policies or status: the `pod` module decides, this module does.

pub mod cgroup;
pub mod container;
pub mod etc;
pub mod host;
pub mod layout;
pub mod leftovers;
pub mod log;
pub mod masks;
pub mod pause;
pub mod probe;
pub mod process;
pub mod record;
pub mod resources;
pub mod sandbox;
pub mod seccomp;
pub mod shim;
pub mod spec;
pub mod termination;
pub mod user;

use std::io;
use std::path::Path;

/// Errors of the node runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] crate::sys::PathError),
    /// The pause process did not report ready: `message` is what it said instead (its status line, else
    /// the last line of its log).
    #[error("pause process failed: {message}")]
    PauseNotReady {
        /// Its status line or last log line (`no ready line` when there is neither).
        message: String,
    },
    /// The pause process's ready line does not name a pid.
    #[error("pause process failed: bad ready line {pid:?}")]
    PauseReadyLine {
        /// What the line has in place of the pid.
        pid: String,
    },
    /// The process the pause process named is gone.
    #[error("pause process failed: pause process {pid} is gone")]
    PauseGone {
        /// Its pid.
        pid: i32,
    },
    /// The sandbox could not be attached to the CNI network.
    #[error("failed to setup network for sandbox {id:?}")]
    SetupNetwork {
        /// Sandbox id.
        id: String,
        /// The CNI failure.
        #[source]
        source: crate::network::cni::Error,
    },
    /// The CNI network gave the sandbox no address.
    #[error("failed to find network info for sandbox {id:?}")]
    NoPodIps {
        /// Sandbox id.
        id: String,
    },
    /// The sandbox could not be detached from the CNI network.
    #[error("failed to destroy network for sandbox {id:?}")]
    DestroyNetwork {
        /// Sandbox id.
        id: String,
        /// The CNI failure.
        #[source]
        source: crate::network::cni::Error,
    },
}

impl Error {
    /// An [`Error::Io`].
    pub fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io(crate::sys::PathError::new(action, path, source))
    }
}

/// The one error-chain formatter (`sys::chain`), re-exported for the runtime's and the pod's callers.
pub use crate::sys::chain;
