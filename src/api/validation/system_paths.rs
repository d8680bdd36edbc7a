//! Volume mount paths that would take over what the OCI runtime itself sets up in a container.
//!
//! runc mounts procfs at `/proc` and refuses any other mount at or under it, except the few files lxcfs
//! emulates (`checkProcMount` in libcontainer/rootfs_linux.go); peapod refuses the same paths up front, by
//! field. For a container that is not privileged, runc then masks host-revealing paths (`linux.maskedPaths`)
//! by bind-mounting the container's own `/dev/null` over them, or a read-only tmpfs over directories, after
//! every volume is mounted. A volume at `/dev` or `/dev/null` hands that source to the pod (runc also skips
//! its own device nodes when `/dev` is a bind mount), and a volume at a masked path or one of its parents
//! lets the pod redirect the mask with a symlink: in runc before 1.2.8 the mask then shows the host's
//! file (CVE-2025-31133). Those paths are refused for unprivileged containers; privileged containers get no
//! masks, so `/dev` and `/sys` stay open to them (device plugins, CSI node plugins and CNI agents mount the
//! host's `/dev` or `/sys/fs/bpf` there). Everything else under `/dev` (`/dev/shm`, `/dev/fuse`, ...) and
//! `/sys` (`/sys/fs/cgroup`, ...) is allowed, as containerd and CRI-O allow it. Paths are compared after
//! lexical cleaning (`//`, `.` and `..`, which the runtime resolves the same way inside the root).

/// `linux.maskedPaths` of an unprivileged container: runc's defaults plus `/sys/devices/virtual/powercap`
/// (CVE-2020-8694), as containerd masks it.
pub fn masked_paths() -> Vec<String> {
    let mut masked = oci_spec::runtime::get_default_maskedpaths();
    masked.push("/sys/devices/virtual/powercap".to_string());
    masked
}

/// Files under `/proc` runc lets a bind mount cover (lxcfs).
const PROC_FILES_RUNC_ALLOWS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
];

/// The file runc bind-mounts over masked files, looked up inside the container.
pub const MASK_SOURCE: &str = "/dev/null";

/// Why `mount_path` may not be used by a container (`privileged`: whether it runs without masks), or
/// `None` when it may.
pub fn refusal(mount_path: &str, privileged: bool) -> Option<String> {
    let at = clean(mount_path);
    if at.first() == Some(&"proc") && !PROC_FILES_RUNC_ALLOWS.iter().any(|f| clean(f) == at) {
        return Some("must not be /proc or a path under it: the runtime mounts procfs there".to_string());
    }
    if privileged {
        return None;
    }
    if clean(MASK_SOURCE).starts_with(&at) {
        return Some(format!(
            "must not cover {MASK_SOURCE}, which the runtime masks paths with, unless the container is \
             privileged"
        ));
    }
    masked_paths()
        .into_iter()
        .find(|masked| clean(masked).starts_with(&at))
        .map(|masked| format!("must not cover the masked path {masked} unless the container is privileged"))
}

/// The components of an absolute path after removing empty and `.` components and resolving `..`
/// lexically (never above the root).
fn clean(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_is_refused_for_everyone_except_the_lxcfs_files() {
        for p in [
            "/proc",
            "/proc/",
            "/proc/sys",
            "/proc/timer_list",
            "//proc/./kcore",
            "/x/../proc/1",
        ] {
            for privileged in [false, true] {
                let why = refusal(p, privileged).unwrap_or_else(|| panic!("{p} must be refused"));
                assert!(why.contains("/proc"), "{p}: {why}");
            }
        }
        for p in ["/proc/meminfo", "/proc/net/dev", "/procfs", "/data/proc"] {
            assert_eq!(refusal(p, false), None, "{p}");
        }
    }

    #[test]
    fn mask_source_and_masked_paths_are_refused_unless_privileged() {
        for (p, names) in [
            ("/dev", "/dev/null"),
            ("/dev/", "/dev/null"),
            ("/dev/null", "/dev/null"),
            ("/", "/dev/null"),
            ("/a/../dev", "/dev/null"),
            ("/sys", "/sys/firmware"),
            ("/sys/firmware", "/sys/firmware"),
            ("/sys/devices", "/sys/devices/virtual/powercap"),
            ("/sys/devices/virtual/powercap", "/sys/devices/virtual/powercap"),
        ] {
            let why = refusal(p, false).unwrap_or_else(|| panic!("{p} must be refused"));
            assert!(why.contains(names), "{p}: {why}");
            assert_eq!(refusal(p, true), None, "{p} is fine for a privileged container");
        }
    }

    #[test]
    fn other_device_and_sysfs_paths_stay_allowed() {
        for p in [
            "/dev/shm",
            "/dev/fuse",
            "/dev/nullx",
            "/dev/mqueue",
            "/sys/fs/cgroup",
            "/sys/fs/bpf",
            "/sys/firmware/efi",
            "/data",
            "/device",
        ] {
            assert_eq!(refusal(p, false), None, "{p}");
        }
    }
}
