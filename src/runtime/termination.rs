//! The host side of a container's `terminationMessagePath`. The kubelet bind-mounts a plain file from the
//! pod's directory, which the container can grow until the node's disk is full (only the first 4096 bytes
//! ever reach the status). Here the file lives alone on its own small tmpfs, so a write past
//! [`MAX_TERMINATION_LOG`] fails with `ENOSPC` inside the container and the host never holds more; the pages
//! it does hold are charged to the writing container's memory cgroup. It must not read the message (the
//! shim does) nor remove anything (removing the instance unmounts it).

use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::sys;

/// Most bytes the termination-message file of one container can hold on the host: 16 times what the
/// status shows (`MaxContainerTerminationMessageLength`, 4096), so a message written with some slack fits.
pub const MAX_TERMINATION_LOG: u64 = 64 * 1024;

/// Mounts the instance's termination-message tmpfs under `instance_dir` and creates the empty file in it
/// (mode 0666: any container user may write it); returns the file's host path.
pub fn prepare(instance_dir: &Path) -> io::Result<PathBuf> {
    let mount = instance_dir.join("termination");
    sys::fs::create_dir_all_mode(&mount, 0o700)?;
    sys::mount::unmount(&mount)?;
    let options = format!("size={MAX_TERMINATION_LOG},nr_inodes=4,mode=0700");
    sys::mount::tmpfs(&mount, &options, true)?;
    let file = mount.join("termination-log");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&file)?
        .set_permissions(fs::Permissions::from_mode(0o666))?;
    Ok(file)
}
