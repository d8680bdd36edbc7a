//! Resolving who a container runs as: securityContext over the image's USER, names looked up in the
//! image's own `/etc/passwd` and `/etc/group`, and the kubelet's `runAsNonRoot` check.
//!
//! Files are read from the container's root filesystem through `sys::fs::open_in_root`, so a symlinked
//! `/etc/passwd` in a hostile image can never make peapod read a host file. Parsing is pure.

use std::io::Read;
use std::path::Path;

use nix::fcntl::OFlag;

use crate::sys;

/// Largest passwd/group file read from an image.
const MAX_DB_SIZE: u64 = 4 << 20;

/// The identity a container process gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups, without duplicates.
    pub additional_gids: Vec<u32>,
}

/// What the image's USER says, as the kubelet reads it: a numeric uid, or a name it cannot check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageUser {
    /// A numeric uid (an empty USER means uid 0).
    Uid(u32),
    /// A user name.
    Name(String),
}

/// Why a container's user cannot be resolved or is refused; the text is containerd's or the kubelet's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A numeric id in the image's `USER` that is not below 2^31.
    #[error("invalid user or group id {id:?}")]
    InvalidId {
        /// The id as written.
        id: String,
    },
    /// A `runAsUser`, `runAsGroup` or supplementary group that is negative or not below 2^31.
    #[error("invalid user or group id {id}")]
    IdOutOfRange {
        /// The id from the security context.
        id: i64,
    },
    /// A user name that the image's `/etc/passwd` does not list.
    #[error("unable to find user {name}: no matching entries in passwd file")]
    UnknownUser {
        /// The user name.
        name: String,
    },
    /// A group name that the image's `/etc/group` does not list.
    #[error("unable to find group {name}: no matching entries in group file")]
    UnknownGroup {
        /// The group name.
        name: String,
    },
    /// `runAsNonRoot` with `runAsUser: 0`.
    #[error("container's runAsUser breaks non-root policy (pod: {pod:?}, container: {container})")]
    RunAsUserIsRoot {
        /// The pod, as the kubelet's `format.Pod`.
        pod: String,
        /// The container name.
        container: String,
    },
    /// `runAsNonRoot` and an image that runs as uid 0.
    #[error("container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})")]
    ImageRunsAsRoot {
        /// The pod, as the kubelet's `format.Pod`.
        pod: String,
        /// The container name.
        container: String,
    },
    /// `runAsNonRoot` and an image user given by name, which cannot be checked.
    #[error(
        "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: {pod:?}, container: {container})"
    )]
    NonNumericImageUser {
        /// The image's user name.
        user: String,
        /// The pod, as the kubelet's `format.Pod`.
        pod: String,
        /// The container name.
        container: String,
    },
}

/// Parses the user part of an image's `USER` (`"1000"`, `"app"`, `"app:staff"`, `""`).
pub fn image_user(user: &str) -> Result<ImageUser, UserError> {
    let name = user.split(':').next().unwrap_or("");
    if name.is_empty() {
        return Ok(ImageUser::Uid(0));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return parse_id(name).map(ImageUser::Uid);
    }
    Ok(ImageUser::Name(name.to_string()))
}

fn parse_id(s: &str) -> Result<u32, UserError> {
    // Ids at or above 2^31 are refused: they wrap to negative values in some consumers (CVE-2024-40635).
    match s.parse::<u32>() {
        Ok(v) if v < (1 << 31) => Ok(v),
        _ => Err(UserError::InvalidId { id: s.to_string() }),
    }
}

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Passwd {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).map(String::from).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The image's account databases, read from its root filesystem.
#[derive(Debug, Default, Clone)]
pub struct AccountDb {
    passwd: Vec<Passwd>,
    group: Vec<Group>,
}

impl AccountDb {
    /// Parses database texts (for tests and callers that already hold the files).
    pub fn from_texts(passwd: &str, group: &str) -> Self {
        AccountDb {
            passwd: parse_passwd(passwd),
            group: parse_group(group),
        }
    }

    /// Reads `/etc/passwd` and `/etc/group` from `rootfs`, confined to it; missing files are empty.
    pub fn read(rootfs: &Path) -> Self {
        let Ok(root) = sys::fs::open_dir_path(rootfs) else {
            return AccountDb::default();
        };
        let read = |p: &str| -> String {
            let Ok(fd) = sys::fs::open_in_root(&root, Path::new(p), OFlag::O_RDONLY) else {
                return String::new();
            };
            let mut s = String::new();
            let _ = std::fs::File::from(fd).take(MAX_DB_SIZE).read_to_string(&mut s);
            s
        };
        AccountDb::from_texts(&read("etc/passwd"), &read("etc/group"))
    }

    /// Resolves the identity: `run_as_user`/`run_as_group` from the security context win over the image's
    /// `USER`; names resolve in the image; supplementary groups are the image groups listing the user plus
    /// `supplemental` (containerd `WithUser`/`WithUserID`/`WithAdditionalGIDs`).
    pub fn resolve(
        &self,
        image_user: &str,
        run_as_user: Option<i64>,
        run_as_group: Option<i64>,
        supplemental: &[i64],
    ) -> Result<ResolvedUser, UserError> {
        let mut parts = image_user.splitn(2, ':');
        let user_part = parts.next().unwrap_or("");
        let group_part = parts.next();
        let (uid, mut gid, name) = match run_as_user {
            Some(u) => {
                let uid = to_id(u)?;
                let entry = self.passwd.iter().find(|p| p.uid == uid);
                (
                    uid,
                    entry.map(|p| p.gid).unwrap_or(0),
                    entry.map(|p| p.name.clone()),
                )
            }
            None => self.lookup_user(user_part)?,
        };
        if run_as_user.is_none() {
            if let Some(g) = group_part.filter(|g| !g.is_empty()) {
                gid = self.lookup_group(g)?;
            }
        }
        if let Some(g) = run_as_group {
            gid = to_id(g)?;
        }
        // containerd lists the primary group first among the supplementary ones (`ensureAdditionalGids`).
        let mut additional: Vec<u32> = vec![gid];
        if let Some(name) = &name {
            for g in self.group.iter().filter(|g| g.members.iter().any(|m| m == name)) {
                additional.push(g.gid);
            }
        }
        for &g in supplemental {
            additional.push(to_id(g)?);
        }
        let mut seen = std::collections::HashSet::new();
        additional.retain(|g| seen.insert(*g));
        Ok(ResolvedUser {
            uid,
            gid,
            additional_gids: additional,
        })
    }

    fn lookup_user(&self, user: &str) -> Result<(u32, u32, Option<String>), UserError> {
        if user.is_empty() {
            return Ok((
                0,
                0,
                self.passwd.iter().find(|p| p.uid == 0).map(|p| p.name.clone()),
            ));
        }
        if user.bytes().all(|b| b.is_ascii_digit()) {
            let uid = parse_id(user)?;
            let entry = self.passwd.iter().find(|p| p.uid == uid);
            return Ok((
                uid,
                entry.map(|p| p.gid).unwrap_or(0),
                entry.map(|p| p.name.clone()),
            ));
        }
        let entry = self
            .passwd
            .iter()
            .find(|p| p.name == user)
            .ok_or_else(|| UserError::UnknownUser {
                name: user.to_string(),
            })?;
        Ok((entry.uid, entry.gid, Some(entry.name.clone())))
    }

    fn lookup_group(&self, group: &str) -> Result<u32, UserError> {
        if group.bytes().all(|b| b.is_ascii_digit()) {
            return parse_id(group);
        }
        self.group
            .iter()
            .find(|g| g.name == group)
            .map(|g| g.gid)
            .ok_or_else(|| UserError::UnknownGroup {
                name: group.to_string(),
            })
    }
}

fn to_id(v: i64) -> Result<u32, UserError> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v < (1 << 31))
        .ok_or(UserError::IdOutOfRange { id: v })
}

/// The kubelet's `verifyRunAsNonRoot`: with `runAsNonRoot: true`, refuse uid 0 and unverifiable names.
/// `pod` is formatted as the kubelet's `format.Pod` (`name_namespace(uid)`).
pub fn verify_run_as_non_root(
    run_as_non_root: bool,
    run_as_user: Option<i64>,
    image_user: &ImageUser,
    pod: &str,
    container: &str,
) -> Result<(), UserError> {
    if !run_as_non_root {
        return Ok(());
    }
    if let Some(uid) = run_as_user {
        if uid == 0 {
            return Err(UserError::RunAsUserIsRoot {
                pod: pod.to_string(),
                container: container.to_string(),
            });
        }
        return Ok(());
    }
    match image_user {
        ImageUser::Uid(0) => Err(UserError::ImageRunsAsRoot {
            pod: pod.to_string(),
            container: container.to_string(),
        }),
        ImageUser::Name(name) => Err(UserError::NonNumericImageUser {
            user: name.clone(),
            pod: pod.to_string(),
            container: container.to_string(),
        }),
        ImageUser::Uid(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
