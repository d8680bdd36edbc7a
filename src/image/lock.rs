//! Cross-process locking of the image store with `flock(2)`.
//!
//! Two lock files in the store root:
//! - `lock`: every operation that reads the store or writes temporary files holds it *shared*; whoever
//!   deletes what others might be using (the start-up sweep now, garbage collection later) holds it
//!   *exclusive*. So `peapod image import` and a running `peapod run` ingest side by side, and a sweep never
//!   removes another process's half-written blob.
//! - `refs.lock`: held exclusive around every read-modify-write of the ref index, serializing name updates.
//!
//! Locks are per open file description, so they also serialize threads of one process. This module must
//! not hold a lock across anything unbounded by itself; callers decide the scope by holding the guard.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::error::Error;

/// A held flock; released on drop.
pub(crate) struct LockGuard {
    _lock: Flock<File>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}

/// Which flock to take.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    Shared,
    Exclusive,
}

/// Takes `mode` on `path`, creating the lock file (0600) if needed; blocks until granted.
pub(crate) fn lock(path: &Path, mode: Mode) -> Result<LockGuard, Error> {
    let arg = match mode {
        Mode::Shared => FlockArg::LockShared,
        Mode::Exclusive => FlockArg::LockExclusive,
    };
    acquire(path, arg)?.ok_or_else(|| lock_error(path, Errno::EWOULDBLOCK))
}

/// Takes an exclusive lock on `path` only if nobody holds it; `None` when it is busy.
pub(crate) fn try_lock_exclusive(path: &Path) -> Result<Option<LockGuard>, Error> {
    acquire(path, FlockArg::LockExclusiveNonblock)
}

fn acquire(path: &Path, arg: FlockArg) -> Result<Option<LockGuard>, Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| Error::LockStore {
            path: path.to_owned(),
            source,
        })?;
    let mut file = file;
    loop {
        match Flock::lock(file, arg) {
            Ok(lock) => return Ok(Some(LockGuard { _lock: lock })),
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((back, Errno::EINTR)) => file = back,
            Err((_, errno)) => return Err(lock_error(path, errno)),
        }
    }
}

fn lock_error(path: &Path, errno: Errno) -> Error {
    Error::LockStore {
        path: PathBuf::from(path),
        source: errno.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_is_refused_while_shared_is_held_and_granted_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock");
        let shared = lock(&path, Mode::Shared).expect("shared");
        let second_shared = lock(&path, Mode::Shared).expect("shared twice");
        assert!(try_lock_exclusive(&path).expect("try").is_none());
        drop(shared);
        drop(second_shared);
        assert!(try_lock_exclusive(&path).expect("try").is_some());
    }
}
