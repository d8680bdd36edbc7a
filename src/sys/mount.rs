//! Mounts peapod makes on the host: namespace pins, overlay root filesystems, tmpfs, bind mounts.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Bind-mounts `source` onto `target` (which must exist). `recursive` uses MS_REC.
pub fn bind(source: &Path, target: &Path, recursive: bool) -> io::Result<()> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(source), target, None::<&str>, flags, None::<&str>).map_err(io::Error::from)
}

/// Remounts an existing bind mount read-only.
pub fn remount_readonly(target: &Path) -> io::Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(io::Error::from)
}

/// Mounts an overlay filesystem at `target`. `lower` is ordered top-most first, as overlayfs wants it.
pub fn overlay(lower: &[&Path], upper: &Path, work: &Path, target: &Path) -> io::Result<()> {
    let mut data = String::from("lowerdir=");
    for (i, dir) in lower.iter().enumerate() {
        let s = dir
            .to_str()
            .ok_or_else(|| io::Error::other("non-UTF-8 layer path"))?;
        if s.contains([',', ':']) {
            return Err(io::Error::other(format!("layer path {s} contains ',' or ':'")));
        }
        if i > 0 {
            data.push(':');
        }
        data.push_str(s);
    }
    let upper = upper
        .to_str()
        .ok_or_else(|| io::Error::other("non-UTF-8 upper path"))?;
    let work = work
        .to_str()
        .ok_or_else(|| io::Error::other("non-UTF-8 work path"))?;
    data.push_str(&format!(",upperdir={upper},workdir={work}"));
    if data.len() >= 4096 {
        return Err(io::Error::other(
            "overlay mount options exceed one page (too many layers)",
        ));
    }
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(io::Error::from)
}

/// Mounts a tmpfs at `target` with `options` (e.g. `mode=1777,size=65536k`), nosuid and nodev.
pub fn tmpfs(target: &Path, options: &str, noexec: bool) -> io::Result<()> {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if noexec {
        flags |= MsFlags::MS_NOEXEC;
    }
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(options)).map_err(io::Error::from)
}

/// Moves the calling process into a mount namespace of its own whose only mount is an empty, read-only
/// tmpfs at `/` (made on `at`, an existing directory): nothing of the host's mount table stays reachable
/// through it (`/proc/<pid>/mountinfo`, `root`, `cwd`). The new namespace is made private first, so nothing
/// propagates back to the host. Only for single-threaded helpers (a thread would keep the old namespace).
pub fn enter_empty_root(at: &Path) -> io::Result<()> {
    let err = |what: &str, e: nix::Error| io::Error::other(format!("{what}: {e}"));
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| err("unshare mount namespace", e))?;
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, private, None::<&str>).map_err(|e| err("make / private", e))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("tmpfs"), at, Some("tmpfs"), flags, Some("size=4k,mode=0555"))
        .map_err(|e| err("mount an empty root", e))?;
    nix::unistd::chdir(at).map_err(|e| err("enter the empty root", e))?;
    // pivot_root(2)'s own idiom: the old root ends up stacked on "." and is detached with everything under it.
    nix::unistd::pivot_root(".", ".").map_err(|e| err("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| err("detach the old root", e))?;
    nix::unistd::chdir("/").map_err(|e| err("chdir /", e))
}

/// Unmounts `target`, detaching lazily so a busy mount never blocks teardown. Not mounted is not an error.
pub fn unmount(target: &Path) -> io::Result<()> {
    match umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Whether `path` is a mount point, by the mount table of the calling process.
pub fn is_mountpoint(mountinfo: &str, path: &Path) -> bool {
    let Some(wanted) = path.to_str() else {
        return false;
    };
    mountinfo_targets(mountinfo).any(|t| t == wanted)
}

/// Mount points listed in a `/proc/<pid>/mountinfo` text, unescaped.
pub fn mountinfo_targets(mountinfo: &str) -> impl Iterator<Item = String> + '_ {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(unescape_octal))
}

/// One line of a `/proc/<pid>/mountinfo` text: the fields peapod reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Mount id.
    pub id: u64,
    /// Id of the mount it sits on.
    pub parent: u64,
    /// Device of the filesystem, `major:minor`.
    pub dev: String,
    /// The directory or file of that filesystem mounted here (`/` for a whole tmpfs, `/null` for a bind of
    /// a tmpfs's or devtmpfs's `null`), unescaped.
    pub root: String,
    /// Mount point, unescaped.
    pub mount_point: String,
    /// Per-mount options (`ro,nosuid,...`).
    pub options: String,
    /// Filesystem type (`proc`, `tmpfs`, ...).
    pub fs_type: String,
}

/// Parses a `/proc/<pid>/mountinfo` text; malformed lines are skipped.
pub fn mountinfo_entries(mountinfo: &str) -> Vec<MountEntry> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut fields = left.split(' ');
            let id = fields.next()?.parse().ok()?;
            let parent = fields.next()?.parse().ok()?;
            let dev = fields.next()?.to_string();
            let root = unescape_octal(fields.next()?);
            let mount_point = unescape_octal(fields.next()?);
            let options = fields.next()?.to_string();
            let fs_type = right.split(' ').next()?.to_string();
            Some(MountEntry {
                id,
                parent,
                dev,
                root,
                mount_point,
                options,
                fs_type,
            })
        })
        .collect()
}

/// The mount visible at `path` (the top of any stack of mounts on it), if something is mounted there.
pub fn top_mount_at<'a>(entries: &'a [MountEntry], path: &str) -> Option<&'a MountEntry> {
    let at: Vec<&MountEntry> = entries.iter().filter(|e| e.mount_point == path).collect();
    at.iter()
        .find(|e| !at.iter().any(|other| other.parent == e.id))
        .copied()
}

/// Mount points at or below `dir`, deepest first, so they can be unmounted in order.
pub fn mounts_under(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    let mut found: Vec<std::path::PathBuf> = mountinfo_targets(&info)
        .map(std::path::PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// Most passes [`unmount_all_under`] makes: the deepest stack of mounts on one path it takes apart.
const MAX_UNMOUNT_PASSES: usize = 16;

/// Unmounts everything at or below `dir`, deepest first. Each pass detaches the top of every stack, so
/// mounts stacked on one path (a bind over a bind) go too, in a bounded number of passes.
pub fn unmount_all_under(dir: &Path) -> io::Result<()> {
    for _ in 0..MAX_UNMOUNT_PASSES {
        let found = mounts_under(dir)?;
        if found.is_empty() {
            break;
        }
        for target in found {
            unmount(&target)?;
        }
    }
    Ok(())
}

/// Whether `a` and `b` live on the same filesystem (used to refuse crossing mount points when deleting).
pub fn same_device(a: &Path, b: &Path) -> io::Result<bool> {
    Ok(fs::symlink_metadata(a)?.dev() == fs::symlink_metadata(b)?.dev())
}

fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|oct| u8::from_str_radix(oct, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_targets_unescape_spaces() {
        let info = "36 35 98:0 / /mnt/a\\040b rw - ext3 /dev/root rw\n37 35 0:1 / /proc rw - proc proc rw\n";
        let targets: Vec<_> = mountinfo_targets(info).collect();
        assert_eq!(targets, vec!["/mnt/a b".to_string(), "/proc".to_string()]);
        assert!(is_mountpoint(info, Path::new("/proc")));
        assert!(!is_mountpoint(info, Path::new("/mnt")));
    }

    #[test]
    fn top_mount_is_the_one_nothing_else_sits_on() {
        let info = "20 1 0:5 / /proc rw - proc proc rw\n\
                    30 20 0:5 /timer_list /proc/timer_list rw shared:2 - proc proc rw\n\
                    31 30 0:9 /null /proc/timer_list rw - tmpfs tmpfs rw\n\
                    bad line\n";
        let entries = mountinfo_entries(info);
        assert_eq!(entries.len(), 3);
        let top = top_mount_at(&entries, "/proc/timer_list").unwrap();
        assert_eq!((top.id, top.fs_type.as_str()), (31, "tmpfs"));
        assert_eq!(top_mount_at(&entries, "/proc").unwrap().id, 20);
        assert!(top_mount_at(&entries, "/proc/kcore").is_none());
    }

    #[test]
    fn unmount_all_under_takes_apart_stacked_mounts() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: bind mounts need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (source, target) = (dir.path().join("source"), dir.path().join("pod/v"));
        fs::create_dir_all(&source).unwrap();
        fs::create_dir_all(&target).unwrap();
        for _ in 0..3 {
            bind(&source, &target, false).unwrap();
        }
        let result = unmount_all_under(dir.path());
        let left = mounts_under(dir.path()).unwrap();
        for _ in 0..3 {
            let _ = unmount(&target);
        }
        result.unwrap();
        assert!(left.is_empty(), "still mounted: {left:?}");
    }
}
