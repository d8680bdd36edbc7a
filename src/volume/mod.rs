//! Pod volumes: emptyDir (with `fsGroup` ownership; memory-backed ones sized as the kubelet sizes them) and
//! hostPath (staged through an opened fd, never inside or above peapod's own directories), prepared on the
//! host once per pod, and each container's mounts of them (`volumeMounts` with `readOnly`, `subPath`,
//! `subPathExpr`).
//!
//! A subPath is hostile input: it is resolved inside its volume with `openat2(RESOLVE_IN_ROOT)`, created
//! there if missing, and bind-mounted through `/proc/self/fd/N` onto a per-pod staging path that the
//! container runtime then mounts (the kubelet's CVE-2017-1002101/CVE-2021-25741 defence). The OCI runtime
//! never sees a path a container could swap for a symlink. This module does not decide when volumes are
//! made or removed; the pod worker does.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::api::component::component;
use crate::api::env::expand;
use crate::sys;

mod empty_dir;
mod error;
mod host_path;
mod ownership;

pub use empty_dir::{memory_bytes, memory_size, root as empty_dir_root};
pub use error::{Error, SetUpError};
pub use host_path::check_host_path;

/// A bind mount resolved on the host (what a volume mount becomes; `runtime::spec` puts it in the OCI spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Path in the container.
    pub destination: String,
    /// Host path (already resolved safely).
    pub source: PathBuf,
    /// Mounted read-only.
    pub readonly: bool,
}

/// A prepared volume on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVolume {
    /// Host path to bind-mount.
    pub path: PathBuf,
}

/// The volumes of one pod, by name.
#[derive(Debug, Clone, Default)]
pub struct PodVolumes {
    volumes: HashMap<String, HostVolume>,
}

impl PodVolumes {
    /// The prepared volume called `name`.
    pub fn get(&self, name: &str) -> Option<&HostVolume> {
        self.volumes.get(name)
    }

    /// These volumes and `name` prepared at `path` (for tests of what mounts them).
    #[cfg(test)]
    pub fn with(mut self, name: &str, path: PathBuf) -> Self {
        self.volumes.insert(name.to_string(), HostVolume { path });
        self
    }
}

/// Prepares every volume of the pod; idempotent (an existing emptyDir keeps its content). `protected` are
/// peapod's own directories (state and run), which no hostPath may reach.
pub fn prepare(pod_dir: &Path, spec: &PodSpec, protected: &[PathBuf]) -> Result<PodVolumes, Error> {
    let mut out = PodVolumes::default();
    let sc = spec.security_context.as_ref();
    let fs_group = sc.and_then(|s| s.fs_group).and_then(|g| u32::try_from(g).ok());
    let policy = sc.and_then(|s| s.fs_group_change_policy.as_deref());
    for v in spec.volumes.iter().flatten() {
        let host = prepare_one(pod_dir, v, spec, protected).map_err(|reason| Error::SetUp {
            name: v.name.clone(),
            reason,
        })?;
        // Ownership is for volumes the pod owns (the kubelet skips hostPath).
        if let (Some(gid), Some(_)) = (fs_group, &v.empty_dir) {
            ownership::apply(&host.path, gid, policy).map_err(|source| Error::SetUp {
                name: v.name.clone(),
                reason: SetUpError::FsGroup {
                    gid,
                    path: host.path.clone(),
                    source,
                },
            })?;
        }
        out.volumes.insert(v.name.clone(), host);
    }
    Ok(out)
}

fn prepare_one(
    pod_dir: &Path,
    v: &Volume,
    spec: &PodSpec,
    protected: &[PathBuf],
) -> Result<HostVolume, SetUpError> {
    if let Some(hp) = &v.host_path {
        let path = host_path::prepare(pod_dir, &v.name, hp, protected)?;
        return Ok(HostVolume { path });
    }
    if let Some(ed) = &v.empty_dir {
        let path = empty_dir::prepare(pod_dir, &v.name, ed, spec)?;
        return Ok(HostVolume { path });
    }
    Err(SetUpError::Unsupported)
}

/// A subPath to resolve inside its volume and bind-mount onto a staging path before the container starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubPathStage {
    /// The volume's host directory.
    pub root: PathBuf,
    /// The subPath, relative (checked, not yet resolved).
    pub sub: String,
    /// Where it is staged (the mount's source).
    pub staging: PathBuf,
    /// Volume name, for errors.
    pub volume: String,
}

/// One container mount of a volume as planned: the bind mount and the subPath it needs staged first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMount {
    /// The bind mount the container gets.
    pub mount: BindMount,
    /// The subPath to stage first, if any.
    pub stage: Option<SubPathStage>,
}

/// The bind mounts of one container's `volumeMounts`, planned without touching the host. Staging paths of
/// different containers and mounts are apart; `env` expands `subPathExpr`.
pub fn plan_mounts(
    pod_dir: &Path,
    volumes: &PodVolumes,
    container: &Container,
    env: &[(String, String)],
) -> Result<Vec<PlannedMount>, Error> {
    let mut out = Vec::new();
    for (i, vm) in container.volume_mounts.iter().flatten().enumerate() {
        let vol = volumes.get(&vm.name).ok_or_else(|| Error::NotPrepared {
            name: vm.name.clone(),
        })?;
        let sub = match (&vm.sub_path, &vm.sub_path_expr) {
            (Some(p), _) if !p.is_empty() => p.clone(),
            (_, Some(expr)) if !expr.is_empty() => expand_sub_path(expr, env)?,
            _ => String::new(),
        };
        let stage = (!sub.is_empty()).then(|| SubPathStage {
            root: vol.path.clone(),
            sub,
            staging: pod_dir
                .join("volume-subpaths")
                .join(&*component(&vm.name))
                .join(&*component(&container.name))
                .join(i.to_string()),
            volume: vm.name.clone(),
        });
        let source = stage
            .as_ref()
            .map_or_else(|| vol.path.clone(), |s| s.staging.clone());
        out.push(PlannedMount {
            mount: BindMount {
                destination: vm.mount_path.clone(),
                source,
                readonly: vm.read_only.unwrap_or(false),
            },
            stage,
        });
    }
    Ok(out)
}

/// Expands a `subPathExpr` and refuses what the kubelet refuses (backticks, absolute paths, `..`).
fn expand_sub_path(expr: &str, env: &[(String, String)]) -> Result<String, Error> {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expanded = expand(expr, &|n| map.get(n).map(|v| v.to_string()));
    let p = Path::new(&expanded);
    let rule = if expanded.contains('`') {
        "not contain backticks"
    } else if p.is_absolute() {
        "be a relative path"
    } else if p.components().any(|c| matches!(c, Component::ParentDir)) {
        "not contain '..'"
    } else {
        return Ok(expanded);
    };
    Err(Error::SubPath { path: expanded, rule })
}

/// Resolves `sub` inside `root` (creating missing directories with the root's mode) and bind-mounts it onto
/// `staging` through the opened fd.
pub fn stage_sub_path(root: &Path, sub: &str, staging: &Path) -> io::Result<()> {
    let root_fd = sys::fs::open_dir_path(root)?;
    let mode = fs::metadata(root)?.mode() & 0o7777;
    let target = open_or_create(&root_fd, Path::new(sub), mode)?;
    let is_dir = fs::metadata(sys::fs::fd_path(&target))?.is_dir();
    if let Some(parent) = staging.parent() {
        sys::fs::create_dir_all_mode(parent, 0o700)?;
    }
    sys::mount::unmount(staging)?;
    if is_dir {
        sys::fs::create_dir_all_mode(staging, 0o700)?;
    } else if !staging.exists() {
        fs::File::create(staging)?;
    }
    sys::mount::bind(&sys::fs::fd_path(&target), staging, true)
}

fn open_or_create(root: &OwnedFd, sub: &Path, mode: u32) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH;
    match sys::fs::open_in_root(root, sub, flags) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    // Create each missing directory, always relative to an fd resolved inside the root.
    let mut current = PathBuf::new();
    for comp in sub.components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        let parent = sys::fs::open_in_root(root, &current, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        current.push(name);
        match nix::sys::stat::mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(mode)) {
            Ok(()) => {
                // mkdirat applies the umask; give the new directory the volume's mode, as the kubelet does.
                let created = sys::fs::open_in_root(root, &current, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                nix::sys::stat::fchmod(created.as_fd(), Mode::from_bits_truncate(mode))?;
            }
            Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    sys::fs::open_in_root(root, sub, flags)
}

/// Unmounts and removes the pod's volumes and staging mounts (emptyDir content is gone afterwards). Nothing
/// is removed while anything is still mounted below: a staged hostPath must never be emptied.
pub fn teardown(pod_dir: &Path) -> io::Result<()> {
    for dir in [pod_dir.join("volume-subpaths"), pod_dir.join("volumes")] {
        sys::mount::unmount_all_under(&dir)?;
        if let Some(left) = sys::mount::mounts_under(&dir)?.first() {
            return Err(io::Error::other(format!(
                "{} is still mounted; not removing {}",
                left.display(),
                dir.display()
            )));
        }
        sys::fs::remove_dir_atomic(&dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn sub_path_expr_rejections() {
        let env = vec![
            ("POD".to_string(), "web".to_string()),
            ("BAD".to_string(), "../x".to_string()),
        ];
        assert_eq!(expand_sub_path("logs/$(POD)", &env).unwrap(), "logs/web");
        assert!(expand_sub_path("$(BAD)", &env).is_err());
        assert!(expand_sub_path("/abs", &env).is_err());
        assert!(expand_sub_path("a`b`", &env).is_err());
    }

    #[test]
    fn sub_path_creation_stays_inside_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        fs::create_dir_all(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        let root_fd = sys::fs::open_dir_path(&root).unwrap();
        open_or_create(&root_fd, Path::new("escape/peapod-subpath-test/x"), 0o777).unwrap();
        // The absolute symlink resolved inside the volume, so the directories were made there.
        assert!(root.join("peapod-subpath-test/x").is_dir());
        assert!(!Path::new("/peapod-subpath-test").exists());
        assert_eq!(
            fs::metadata(root.join("peapod-subpath-test")).unwrap().mode() & 0o777,
            0o777
        );
    }
}
