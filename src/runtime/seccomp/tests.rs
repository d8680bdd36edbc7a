use std::collections::HashSet;
use std::fs;

use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec, SeccompProfile, SecurityContext};

use super::*;

fn allowed(p: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
    p.syscalls()
        .iter()
        .flatten()
        .filter(|s| s.names().iter().any(|n| n == name))
        .cloned()
        .collect()
}

fn unconditionally_allowed(p: &LinuxSeccomp, name: &str) -> bool {
    allowed(p, name)
        .iter()
        .any(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
}

fn caps(names: &[Capability]) -> HashSet<Capability> {
    names.iter().copied().collect()
}

#[test]
fn the_default_profile_is_an_allowlist_with_capability_rules() {
    let p = default_profile(&caps(&[Capability::Chown, Capability::Kill]));
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(1));
    for ok in ["read", "write", "execve", "clone", "socket", "ptrace"] {
        assert!(!allowed(&p, ok).is_empty(), "{ok}");
    }
    for refused in [
        "keyctl",
        "add_key",
        "request_key",
        "userfaultfd",
        "io_uring_setup",
        "unshare",
        "mount",
        "bpf",
        "sethostname",
        "open_by_handle_at",
        "kexec_load",
        "reboot",
        "chroot",
    ] {
        assert!(!unconditionally_allowed(&p, refused), "{refused}");
    }
    // clone only without namespace flags; clone3 says ENOSYS so libc falls back to clone.
    let clone = allowed(&p, "clone");
    let arg = clone[0].args().as_ref().unwrap()[0];
    assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    assert_eq!(
        arg.value() & (libc::CLONE_NEWUSER as u64),
        libc::CLONE_NEWUSER as u64
    );
    let clone3 = allowed(&p, "clone3");
    assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3[0].errno_ret(), Some(38));
    assert_eq!(allowed(&p, "personality").len(), 5);

    let admin = default_profile(&caps(&[Capability::SysAdmin, Capability::SysChroot]));
    for ok in ["unshare", "mount", "clone", "clone3", "setns", "chroot"] {
        assert!(unconditionally_allowed(&admin, ok), "{ok}");
    }
    assert!(allowed(&admin, "clone3")
        .iter()
        .all(|s| s.action() == LinuxSeccompAction::ScmpActAllow));
    // The filter serializes as the OCI spec wants it.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(json["architectures"].as_array().is_some());
}

fn with_profiles(pod: Option<SeccompProfile>, own: Option<SeccompProfile>) -> (PodSpec, Container) {
    let c = Container {
        name: "a".into(),
        security_context: Some(SecurityContext {
            seccomp_profile: own,
            ..Default::default()
        }),
        ..Default::default()
    };
    let spec = PodSpec {
        containers: vec![c.clone()],
        security_context: Some(PodSecurityContext {
            seccomp_profile: pod,
            ..Default::default()
        }),
        ..Default::default()
    };
    (spec, c)
}

fn profile(t: &str, local: Option<&str>) -> Option<SeccompProfile> {
    Some(SeccompProfile {
        type_: t.to_string(),
        localhost_profile: local.map(String::from),
    })
}

#[test]
fn the_container_profile_wins_over_the_pods_and_the_default() {
    let root = Path::new("/nonexistent");
    let (p, c) = with_profiles(None, None);
    assert_eq!(resolve(&p, &c, true, root).unwrap(), Profile::RuntimeDefault);
    assert_eq!(resolve(&p, &c, false, root).unwrap(), Profile::Unconfined);
    let (p, c) = with_profiles(profile("Unconfined", None), None);
    assert_eq!(resolve(&p, &c, true, root).unwrap(), Profile::Unconfined);
    let (p, c) = with_profiles(profile("Unconfined", None), profile("RuntimeDefault", None));
    assert_eq!(resolve(&p, &c, false, root).unwrap(), Profile::RuntimeDefault);
    let (p, c) = with_profiles(None, profile("Bogus", None));
    assert!(resolve(&p, &c, true, root).is_err());
}

#[test]
fn localhost_profiles_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("seccomp");
    fs::create_dir_all(root.join("team")).unwrap();
    fs::write(
        root.join("team/ok.json"),
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    fs::write(root.join("empty.json"), "").unwrap();
    fs::write(root.join("bad.json"), "{\"syscalls\": []}").unwrap();
    fs::write(
        dir.path().join("outside.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#,
    )
    .unwrap();
    std::os::unix::fs::symlink("../outside.json", root.join("escape.json")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.json"), root.join("abs.json")).unwrap();

    let ok = load_localhost(&root, "team/ok.json").unwrap();
    assert_eq!(ok.default_action(), LinuxSeccompAction::ScmpActErrno);
    let (p, c) = with_profiles(None, profile("Localhost", Some("team/ok.json")));
    assert_eq!(
        resolve(&p, &c, false, &root).unwrap(),
        Profile::Localhost(Box::new(ok))
    );
    for (name, why) in [
        ("", "non-empty relative path"),
        ("/etc/passwd", "relative path"),
        ("../outside.json", "without '..'"),
        ("empty.json", "profile is empty"),
        ("bad.json", "decoding seccomp profile failed"),
        ("missing.json", "No such file"),
        ("escape.json", "No such file"),
        ("abs.json", "No such file"),
    ] {
        let err = crate::runtime::chain(&load_localhost(&root, name).unwrap_err());
        assert!(
            err.starts_with("failed to generate seccomp spec opts: cannot load seccomp profile"),
            "{err}"
        );
        assert!(err.contains(why), "{name}: {err}");
    }
    let (p, c) = with_profiles(profile("Localhost", None), None);
    assert!(resolve(&p, &c, true, &root).is_err(), "Localhost without a name");
}

#[test]
fn error_messages_keep_containerd_wording() {
    let load = |source| SeccompError::Load {
        path: "/var/lib/seccomp/p.json".into(),
        source,
    };
    let decode = serde_json::from_str::<LinuxSeccomp>("{").unwrap_err();
    let decode_text = decode.to_string();
    let prefix =
        "failed to generate seccomp spec opts: cannot load seccomp profile \"/var/lib/seccomp/p.json\": ";
    let cases = [
        (
            SeccompError::UnknownType {
                type_: "Bogus".into(),
            },
            "unknown seccomp profile type \"Bogus\"".to_string(),
        ),
        (
            load(LoadError::BadName),
            format!("{prefix}localhostProfile must be a non-empty relative path without '..'"),
        ),
        (
            load(LoadError::Read(std::io::Error::from_raw_os_error(libc::ENOENT))),
            format!("{prefix}No such file or directory (os error 2)"),
        ),
        (
            load(LoadError::TooLarge),
            format!("{prefix}profile is larger than 1 MiB"),
        ),
        (load(LoadError::Empty), format!("{prefix}profile is empty")),
        (
            load(LoadError::Decode(decode)),
            format!("{prefix}decoding seccomp profile failed: {decode_text}"),
        ),
    ];
    for (e, want) in cases {
        assert_eq!(crate::runtime::chain(&e), want);
    }
}
