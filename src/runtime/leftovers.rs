//! Finishing removals that were interrupted. Directories are deleted by renaming them to a hidden
//! `.deleting-<name>` sibling first ([`crate::sys::fs::remove_dir_atomic`]); a crash or a failure part way
//! through (a file that cannot be unlinked, a mount left below) leaves that sibling behind, and nothing
//! owns it any more: no checkpoint names it, so no pod worker adopts it. The front ends call
//! [`finish_removals`] once at start-up, before any worker runs, to unmount and remove them.
//!
//! It looks only where peapod itself removes directories, at fixed depths (never inside a container's root
//! filesystem or a volume, where a container could name a file `.deleting-x`), and it never crosses a mount.

use std::fs;
use std::path::{Path, PathBuf};

use super::layout::RuntimeConfig;
use crate::sys;

/// Prefix of a directory being removed.
pub const DELETING_PREFIX: &str = ".deleting-";

/// Unmounts and removes every half-removed directory peapod may have left; returns those it could not
/// remove (each also logged), to be tried again at the next start.
pub fn finish_removals(cfg: &RuntimeConfig) -> Vec<PathBuf> {
    let mut failed = Vec::new();
    for dir in parents(cfg) {
        for leftover in deleting_entries(&dir) {
            let result = sys::mount::unmount_all_under(&leftover)
                .and_then(|()| sys::fs::remove_tree_one_fs(&leftover));
            match result {
                Ok(()) => tracing::info!(path = %leftover.display(), "removed a half-deleted directory"),
                Err(e) => {
                    tracing::warn!(path = %leftover.display(), error = %e, "cannot remove a half-deleted directory");
                    failed.push(leftover);
                }
            }
        }
    }
    failed
}

/// [`finish_removals`] on the blocking pool, for the supervisors' start-up.
pub async fn finish(cfg: &RuntimeConfig) {
    let cfg = cfg.clone();
    let _ = tokio::task::spawn_blocking(move || finish_removals(&cfg)).await;
}

/// The directories in which peapod removes children with `remove_dir_atomic`: the pods directory (pod
/// directories), each pod directory (volumes, subPath staging), each container directory (instances), the
/// logs directory and each pod's log directory, and the sandboxes' run directory.
fn parents(cfg: &RuntimeConfig) -> Vec<PathBuf> {
    let pods = cfg.pods_dir();
    let logs = cfg.state_dir.join("logs");
    let mut out = vec![pods.clone(), logs.clone(), cfg.run_dir.join("sandboxes")];
    for pod in live_subdirs(&pods) {
        out.extend(live_subdirs(&pod.join("containers")));
        out.push(pod);
    }
    out.extend(live_subdirs(&logs));
    out
}

/// Subdirectories of `dir` that are not being removed (symlinks are not followed).
fn live_subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with(DELETING_PREFIX))
        .map(|e| e.path())
        .collect()
}

fn deleting_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(DELETING_PREFIX))
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_removed_where_peapod_removes_and_nowhere_else() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RuntimeConfig::under(dir.path());
        let pod = cfg.pod_dir("u1");
        let made = [
            cfg.pods_dir().join(".deleting-u0/containers/c/0/upper"),
            pod.join(".deleting-volumes/kubernetes.io~empty-dir/v"),
            cfg.container_dir("u1", "c").join(".deleting-3/upper"),
            cfg.pod_log_dir("default", "web", "u1").join(".deleting-c"),
            cfg.run_dir.join("sandboxes/.deleting-s1/etc"),
        ];
        for d in &made {
            fs::create_dir_all(d).unwrap();
            fs::write(d.join("f"), b"x").unwrap();
        }
        // A container may name its own files anything: its root filesystem and volumes are not looked in.
        let theirs = cfg.instance_dir("u1", "c", 4).join("upper/.deleting-mine");
        fs::create_dir_all(&theirs).unwrap();
        assert!(finish_removals(&cfg).is_empty());
        assert!(!cfg.pods_dir().join(".deleting-u0").exists());
        assert!(!pod.join(".deleting-volumes").exists());
        assert!(!cfg.container_dir("u1", "c").join(".deleting-3").exists());
        assert!(!cfg
            .pod_log_dir("default", "web", "u1")
            .join(".deleting-c")
            .exists());
        assert!(!cfg.run_dir.join("sandboxes/.deleting-s1").exists());
        assert!(theirs.exists());
    }
}
