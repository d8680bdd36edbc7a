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

/// Parses the user part of an image's `USER` (`"1000"`, `"app"`, `"app:staff"`, `""`).
pub fn image_user(user: &str) -> Result<ImageUser, String> {
    let name = user.split(':').next().unwrap_or("");
    if name.is_empty() {
        return Ok(ImageUser::Uid(0));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return parse_id(name).map(ImageUser::Uid);
    }
    Ok(ImageUser::Name(name.to_string()))
}

fn parse_id(s: &str) -> Result<u32, String> {
    // Ids at or above 2^31 are refused: they wrap to negative values in some consumers (CVE-2024-40635).
    match s.parse::<u32>() {
        Ok(v) if v < (1 << 31) => Ok(v),
        _ => Err(format!("invalid user or group id {s:?}")),
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
    ) -> Result<ResolvedUser, String> {
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

    fn lookup_user(&self, user: &str) -> Result<(u32, u32, Option<String>), String> {
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
            .ok_or_else(|| format!("unable to find user {user}: no matching entries in passwd file"))?;
        Ok((entry.uid, entry.gid, Some(entry.name.clone())))
    }

    fn lookup_group(&self, group: &str) -> Result<u32, String> {
        if group.bytes().all(|b| b.is_ascii_digit()) {
            return parse_id(group);
        }
        self.group
            .iter()
            .find(|g| g.name == group)
            .map(|g| g.gid)
            .ok_or_else(|| format!("unable to find group {group}: no matching entries in group file"))
    }
}

fn to_id(v: i64) -> Result<u32, String> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v < (1 << 31))
        .ok_or_else(|| format!("invalid user or group id {v}"))
}

/// The kubelet's `verifyRunAsNonRoot`: with `runAsNonRoot: true`, refuse uid 0 and unverifiable names.
/// `pod` is formatted as the kubelet's `format.Pod` (`name_namespace(uid)`).
pub fn verify_run_as_non_root(
    run_as_non_root: bool,
    run_as_user: Option<i64>,
    image_user: &ImageUser,
    pod: &str,
    container: &str,
) -> Result<(), String> {
    if !run_as_non_root {
        return Ok(());
    }
    if let Some(uid) = run_as_user {
        if uid == 0 {
            return Err(format!(
                "container's runAsUser breaks non-root policy (pod: {pod:?}, container: {container})"
            ));
        }
        return Ok(());
    }
    match image_user {
        ImageUser::Uid(0) => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})"
        )),
        ImageUser::Name(name) => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root (pod: {pod:?}, container: {container})"
        )),
        ImageUser::Uid(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\nbroken line\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\napp:x:1000:\nwheel:x:10:root,app\n";

    fn db() -> AccountDb {
        AccountDb::from_texts(PASSWD, GROUP)
    }

    #[test]
    fn resolves_image_user_forms() {
        let d = db();
        assert_eq!(
            d.resolve("", None, None, &[]).unwrap(),
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![0, 10]
            }
        );
        assert_eq!(
            d.resolve("app", None, None, &[]).unwrap(),
            ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![1000, 50, 10]
            }
        );
        assert_eq!(d.resolve("app:staff", None, None, &[]).unwrap().gid, 50);
        assert_eq!(
            d.resolve("1234", None, None, &[]).unwrap(),
            ResolvedUser {
                uid: 1234,
                gid: 0,
                additional_gids: vec![0]
            }
        );
        assert_eq!(d.resolve("1000:7", None, None, &[]).unwrap().gid, 7);
        assert!(d
            .resolve("ghost", None, None, &[])
            .unwrap_err()
            .contains("unable to find user ghost"));
        assert!(d.resolve("app:ghosts", None, None, &[]).is_err());
        assert!(d.resolve("4294967296", None, None, &[]).is_err());
        assert!(d.resolve("2147483648", None, None, &[]).is_err());
    }

    #[test]
    fn security_context_overrides_image() {
        let d = db();
        let r = d.resolve("app", Some(65534), None, &[3000, 3000]).unwrap();
        assert_eq!(
            r,
            ResolvedUser {
                uid: 65534,
                gid: 65534,
                additional_gids: vec![65534, 3000]
            }
        );
        let r = d.resolve("app", None, Some(2002), &[]).unwrap();
        assert_eq!((r.uid, r.gid), (1000, 2002));
        assert!(d.resolve("", Some(-1), None, &[]).is_err());
    }

    #[test]
    fn run_as_non_root_matches_kubelet_messages() {
        let pod = "web_default(1234)";
        assert!(verify_run_as_non_root(false, None, &ImageUser::Uid(0), pod, "c").is_ok());
        assert!(verify_run_as_non_root(true, Some(1000), &ImageUser::Uid(0), pod, "c").is_ok());
        assert!(verify_run_as_non_root(true, None, &ImageUser::Uid(1000), pod, "c").is_ok());
        let e = verify_run_as_non_root(true, Some(0), &ImageUser::Uid(1000), pod, "c").unwrap_err();
        assert_eq!(
            e,
            "container's runAsUser breaks non-root policy (pod: \"web_default(1234)\", container: c)"
        );
        let e = verify_run_as_non_root(true, None, &image_user("").unwrap(), pod, "c").unwrap_err();
        assert!(e.starts_with("container has runAsNonRoot and image will run as root"));
        let e = verify_run_as_non_root(true, None, &image_user("app:staff").unwrap(), pod, "c").unwrap_err();
        assert!(e.contains("image has non-numeric user (app), cannot verify user is non-root"));
    }

    #[test]
    fn reads_databases_confined_to_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("etc/passwd")).unwrap();
        std::fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        let d = AccountDb::read(dir.path());
        // The symlink to the host's passwd must not be followed out of the root.
        assert!(d.passwd.is_empty());
        assert_eq!(d.group.len(), 4);
    }
}
