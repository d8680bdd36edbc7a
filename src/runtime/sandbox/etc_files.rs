//! The host side of the sandbox's managed `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`. Every
//! container bind-mounts them writable (the kubelet mounts `/etc/hosts` so, containerd the other two), so
//! as plain files on the state disk a container could grow them until the node's disk is full (the
//! CVE-2020-8557 pattern). Here they live on a small tmpfs of their own in the sandbox's volatile
//! directory: a write past [`capacity`] fails with `ENOSPC` inside the container, and the pages a container
//! writes are charged to its memory cgroup. The tmpfs lives and dies with the sandbox: teardown and a failed
//! creation unmount everything under that directory, and after a reboot (which loses both) the next sandbox
//! writes the files afresh.

use std::path::{Path, PathBuf};

use super::plan::EtcContent;
use crate::runtime::host::{Host, HostMount};
use crate::runtime::Error;

/// Least capacity of the tmpfs, in bytes: the same room as a termination-message file, many times what the
/// three files of an ordinary pod take (a few hundred bytes, one page each).
pub const MIN_ETC_CAPACITY: u64 = 64 * 1024;

/// Page size the tmpfs accounts in.
const PAGE: u64 = 4096;

/// The three files, as written on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EtcFiles {
    /// `/etc/hosts`.
    pub hosts: PathBuf,
    /// `/etc/hostname`.
    pub hostname: PathBuf,
    /// `/etc/resolv.conf`.
    pub resolv: PathBuf,
}

/// Capacity of the tmpfs for files of `written` bytes in all: twice that (a big `hostAliases` list or a
/// host network node's `/etc/hosts` still leaves the pod room to edit its files, as a plain file would),
/// at least [`MIN_ETC_CAPACITY`], in whole pages. The pod object bounds `written`, so this bounds the host.
pub fn capacity(written: u64) -> u64 {
    let bytes = written.saturating_mul(2).max(MIN_ETC_CAPACITY);
    bytes.div_ceil(PAGE).saturating_mul(PAGE)
}

/// Mounts the tmpfs at `<sandbox dir>/etc` and writes `hosts`, `hostname` and `resolv.conf` in it (mode
/// 0644, as before); returns their host paths.
pub(super) fn write(host: &dyn Host, sandbox_dir: &Path, content: &EtcContent) -> Result<EtcFiles, Error> {
    let dir = sandbox_dir.join("etc");
    host.create_dir(&dir, 0o700)
        .map_err(|source| Error::io("create", &dir, source))?;
    let texts = [&content.hosts, &content.hostname, &content.resolv];
    let written = texts.iter().map(|s| s.len() as u64).sum();
    // The root, three files and the temporary name of the one being written.
    let tmpfs = HostMount::Tmpfs {
        target: dir.clone(),
        options: format!("size={},nr_inodes=8,mode=0700", capacity(written)),
        noexec: true,
    };
    host.mount(&tmpfs)
        .map_err(|source| Error::io("mount tmpfs on", &dir, source))?;
    let files = EtcFiles {
        hosts: dir.join("hosts"),
        hostname: dir.join("hostname"),
        resolv: dir.join("resolv.conf"),
    };
    for (path, text) in [&files.hosts, &files.hostname, &files.resolv]
        .into_iter()
        .zip(texts)
    {
        host.write_file(path, text.as_bytes(), 0o644)
            .map_err(|source| Error::io("write", path, source))?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_twice_the_files_in_whole_pages_and_at_least_the_floor() {
        assert_eq!(capacity(0), MIN_ETC_CAPACITY);
        assert_eq!(capacity(300), MIN_ETC_CAPACITY);
        assert_eq!(capacity(MIN_ETC_CAPACITY / 2), MIN_ETC_CAPACITY);
        assert_eq!(capacity(MIN_ETC_CAPACITY / 2 + 1), MIN_ETC_CAPACITY + PAGE);
        assert_eq!(capacity(1 << 20), 2 << 20);
    }
}
