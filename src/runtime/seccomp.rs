//! Seccomp for containers: which profile a container gets (its own `seccompProfile`, else the pod's, else
//! `RuntimeDefault` or `Unconfined` by `--seccomp-default`), the runtime's default profile (containerd's and
//! moby's: an allowlist returning EPERM for everything else, with the capability-conditional rules), and
//! `Localhost` profiles read from `--seccomp-profile-root`.
//!
//! A Localhost profile name comes from the spec and is hostile: it must be a relative path without `..`, and
//! is opened with `RESOLVE_IN_ROOT`, so no symlink leads out of the profile root. Profiles fail closed: a
//! missing, empty, oversized or unparsable one stops the container (CVE-2023-2431). Nothing here applies the
//! filter: runc does.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, PodSpec, SeccompProfile};
use nix::fcntl::OFlag;
use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

use crate::sys;

mod allowlist;

/// Largest Localhost profile read.
const MAX_PROFILE: u64 = 1 << 20;
/// EPERM, what a refused syscall returns.
const EPERM: u32 = 1;
/// ENOSYS, what `clone3` returns without CAP_SYS_ADMIN (so libc falls back to `clone`, which can be filtered).
const ENOSYS: u32 = 38;
/// The namespace flags `clone` may not carry without CAP_SYS_ADMIN.
const CLONE_NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The profile a container runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// No filter.
    Unconfined,
    /// The runtime's default profile, built for the container's capabilities.
    RuntimeDefault,
    /// A Localhost profile, loaded.
    Localhost(Box<LinuxSeccomp>),
}

/// Why a container's seccomp profile cannot be used; the text is containerd's.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A `seccompProfile.type` that is not one of the three.
    #[error("unknown seccomp profile type {type_:?}")]
    UnknownType {
        /// The type as written.
        type_: String,
    },
    /// A Localhost profile that cannot be loaded.
    #[error("failed to generate seccomp spec opts: cannot load seccomp profile {:?}", path.display().to_string())]
    Load {
        /// The profile root joined with the profile's name.
        path: PathBuf,
        /// Why.
        #[source]
        source: LoadError,
    },
}

/// Why a Localhost profile cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The name is empty, absolute or climbs with `..`.
    #[error("localhostProfile must be a non-empty relative path without '..'")]
    BadName,
    /// The profile root or the profile cannot be opened or read.
    #[error(transparent)]
    Read(io::Error),
    /// The profile is larger than [`MAX_PROFILE`].
    #[error("profile is larger than 1 MiB")]
    TooLarge,
    /// The profile is empty or only whitespace.
    #[error("profile is empty")]
    Empty,
    /// The profile is not an OCI seccomp profile.
    #[error("decoding seccomp profile failed")]
    Decode(#[source] serde_json::Error),
}

/// The container's profile: its own, else the pod's, else the node default.
pub fn resolve(
    pod: &PodSpec,
    c: &Container,
    runtime_default: bool,
    root: &Path,
) -> Result<Profile, SeccompError> {
    let own = c
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    let pod_level = pod
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    match own.or(pod_level) {
        None if runtime_default => Ok(Profile::RuntimeDefault),
        None => Ok(Profile::Unconfined),
        Some(p) => from_field(p, root),
    }
}

fn from_field(p: &SeccompProfile, root: &Path) -> Result<Profile, SeccompError> {
    match p.type_.as_str() {
        "Unconfined" => Ok(Profile::Unconfined),
        "RuntimeDefault" => Ok(Profile::RuntimeDefault),
        "Localhost" => {
            let name = p.localhost_profile.as_deref().unwrap_or("");
            load_localhost(root, name).map(|s| Profile::Localhost(Box::new(s)))
        }
        other => Err(SeccompError::UnknownType {
            type_: other.to_string(),
        }),
    }
}

/// Reads the Localhost profile `name` (relative to `root`) as an OCI `LinuxSeccomp`.
pub fn load_localhost(root: &Path, name: &str) -> Result<LinuxSeccomp, SeccompError> {
    read_localhost(root, name).map_err(|source| SeccompError::Load {
        path: root.join(name),
        source,
    })
}

fn read_localhost(root: &Path, name: &str) -> Result<LinuxSeccomp, LoadError> {
    let rel = Path::new(name);
    if name.is_empty() || rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(LoadError::BadName);
    }
    let root_fd = sys::fs::open_dir_path(root).map_err(LoadError::Read)?;
    let fd = sys::fs::open_in_root(&root_fd, rel, OFlag::O_RDONLY).map_err(LoadError::Read)?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_PROFILE + 1)
        .read_to_string(&mut text)
        .map_err(LoadError::Read)?;
    if text.len() as u64 > MAX_PROFILE {
        return Err(LoadError::TooLarge);
    }
    if text.trim().is_empty() {
        return Err(LoadError::Empty);
    }
    serde_json::from_str(&text).map_err(LoadError::Decode)
}

fn allow(names: &[&str]) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(LinuxSeccompAction::ScmpActAllow);
    s
}

/// A condition on the first argument (the builder cannot fail: every field has a value).
fn first_arg(value: u64, value_two: Option<u64>, op: LinuxSeccompOperator) -> Vec<LinuxSeccompArg> {
    let mut b = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(value)
        .op(op);
    if let Some(v) = value_two {
        b = b.value_two(v);
    }
    b.build().ok().into_iter().collect()
}

fn arches() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchArm, Arch::ScmpArchAarch64]
    } else {
        Vec::new()
    }
}

/// The runtime's default profile for a container whose bounding set is `caps` (containerd's
/// `DefaultProfile`).
pub fn default_profile(caps: &HashSet<Capability>) -> LinuxSeccomp {
    let mut syscalls = vec![allow(allowlist::ALWAYS)];
    for persona in [0x0u64, 0x0008, 0x20000, 0x20008, 0xffff_ffff] {
        let mut s = allow(&["personality"]);
        s.set_args(Some(first_arg(persona, None, LinuxSeccompOperator::ScmpCmpEq)));
        syscalls.push(s);
    }
    if cfg!(target_arch = "x86_64") {
        syscalls.push(allow(&["arch_prctl", "modify_ldt"]));
    } else if cfg!(target_arch = "aarch64") {
        syscalls.push(allow(allowlist::ARM));
    }
    for (cap, names) in allowlist::BY_CAPABILITY {
        if caps.contains(cap) {
            syscalls.push(allow(names));
        }
    }
    if !caps.contains(&Capability::SysAdmin) {
        let mut clone = allow(&["clone"]);
        let masked = LinuxSeccompOperator::ScmpCmpMaskedEq;
        clone.set_args(Some(first_arg(CLONE_NS_FLAGS, Some(0), masked)));
        syscalls.push(clone);
        let mut clone3 = LinuxSyscall::default();
        clone3.set_names(vec!["clone3".to_string()]);
        clone3.set_action(LinuxSeccompAction::ScmpActErrno);
        clone3.set_errno_ret(Some(ENOSYS));
        syscalls.push(clone3);
    }
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(EPERM));
    profile.set_architectures(Some(arches()));
    profile.set_syscalls(Some(syscalls));
    profile
}

#[cfg(test)]
mod tests;
