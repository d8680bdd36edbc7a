//! Liveness locks: a `flock` taken by the supervisor on a file before it spawns a helper and handed to the
//! helper as an inherited fd, so the lock is held exactly as long as the helper (or the process about to
//! exec it) lives, whoever dies first. A later supervisor proves from disk alone whether a helper still
//! runs: if it can take the lock, none does and none ever will for that file.
//!
//! It must not be used for mutual exclusion between supervisors, and the lock is never released
//! explicitly (`LOCK_UN` would release it for every holder of the open file description).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The fd number a helper finds its liveness lock on.
pub const HELPER_LOCK_FD: RawFd = 3;

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    // SAFETY: flock takes an fd we own for the duration of the call and an operation flag; no pointers.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(false);
    }
    Err(e)
}

/// Creates (or opens) `path` and takes its lock, for a helper about to be spawned with [`inherit`].
pub fn take(path: &Path) -> io::Result<File> {
    let file = open(path)?;
    if !flock(&file, libc::LOCK_EX | libc::LOCK_NB)? {
        return Err(io::Error::other(format!(
            "{} is held by a live helper",
            path.display()
        )));
    }
    Ok(file)
}

/// Whether a live process holds the lock on `path` (false when the file does not exist).
pub fn is_held(path: &Path) -> io::Result<bool> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    // Taking it proves nobody holds it; closing the file right after releases it again.
    Ok(!flock(&file, libc::LOCK_SH | libc::LOCK_NB)?)
}

/// Blocks until no process holds the lock on `path` (for a blocking thread, never the async runtime).
pub fn wait_released(path: &Path) -> io::Result<()> {
    let file = open(path)?;
    flock(&file, libc::LOCK_SH).map(|_| ())
}

/// Makes the spawned child find `lock` on [`HELPER_LOCK_FD`], without the close-on-exec flag.
pub fn inherit(cmd: &mut tokio::process::Command, lock: &File) {
    let fd = lock.as_raw_fd();
    // SAFETY: the closure runs in the child between fork and exec and calls only dup2 and fcntl, which are
    // async-signal-safe; `fd` stays open in the parent until the spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if fd == HELPER_LOCK_FD {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, HELPER_LOCK_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// In the helper: keeps the inherited lock open but out of reach of the processes it starts.
pub fn keep_inherited() {
    // SAFETY: fcntl on a possibly closed fd number only fails with EBADF; no memory is involved.
    unsafe {
        let flags = libc::fcntl(HELPER_LOCK_FD, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(HELPER_LOCK_FD, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_lock_lives_as_long_as_the_child_that_inherited_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("helper.lock");
        assert!(!is_held(&path).unwrap(), "no file, no holder");
        let lock = take(&path).unwrap();
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "read line"]).stdin(std::process::Stdio::piped());
        inherit(&mut cmd, &lock);
        let mut child = cmd.spawn().unwrap();
        drop(lock);
        assert!(
            is_held(&path).unwrap(),
            "the child holds it after the parent closed its copy"
        );
        drop(child.stdin.take());
        child.wait().await.unwrap();
        assert!(!is_held(&path).unwrap(), "released when the child exits");
        wait_released(&path).unwrap();
    }
}
