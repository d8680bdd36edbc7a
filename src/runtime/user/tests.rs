//! Tests of resolving a container's user and of the `runAsNonRoot` check.

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
        .to_string()
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
        e.to_string(),
        "container's runAsUser breaks non-root policy (pod: \"web_default(1234)\", container: c)"
    );
    let e = verify_run_as_non_root(true, None, &image_user("").unwrap(), pod, "c").unwrap_err();
    assert!(e
        .to_string()
        .starts_with("container has runAsNonRoot and image will run as root"));
    let e = verify_run_as_non_root(true, None, &image_user("app:staff").unwrap(), pod, "c").unwrap_err();
    assert!(e
        .to_string()
        .contains("image has non-numeric user (app), cannot verify user is non-root"));
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

#[test]
fn error_messages_keep_containerd_and_kubelet_wording() {
    let pod = || "web_default(1234)".to_string();
    let container = || "c".to_string();
    let cases = [
        (
            UserError::InvalidId {
                id: "2147483648".into(),
            },
            "invalid user or group id \"2147483648\"",
        ),
        (UserError::IdOutOfRange { id: -1 }, "invalid user or group id -1"),
        (
            UserError::UnknownUser { name: "ghost".into() },
            "unable to find user ghost: no matching entries in passwd file",
        ),
        (
            UserError::UnknownGroup { name: "ghosts".into() },
            "unable to find group ghosts: no matching entries in group file",
        ),
        (
            UserError::RunAsUserIsRoot {
                pod: pod(),
                container: container(),
            },
            "container's runAsUser breaks non-root policy (pod: \"web_default(1234)\", container: c)",
        ),
        (
            UserError::ImageRunsAsRoot {
                pod: pod(),
                container: container(),
            },
            "container has runAsNonRoot and image will run as root (pod: \"web_default(1234)\", container: c)",
        ),
        (
            UserError::NonNumericImageUser {
                user: "app".into(),
                pod: pod(),
                container: container(),
            },
            "container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: \"web_default(1234)\", container: c)",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_string(), want);
    }
}
