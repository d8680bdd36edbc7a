//! Unit tests of OCI spec generation: secure defaults, capabilities, resources, namespaces, seccomp.

use super::*;
use k8s_openapi::api::core::v1::Capabilities;

fn input<'a>(pod: &'a PodSpec, c: &'a Container, uid: u32) -> SpecInput<'a> {
    SpecInput {
        pod,
        container: c,
        args: vec!["sh".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        user: ResolvedUser {
            uid,
            gid: uid,
            additional_gids: vec![],
        },
        rootfs: PathBuf::from("/r"),
        namespaces: SandboxNamespaces {
            net: Some("/run/p/ns/net".into()),
            ipc: Some("/run/p/ns/ipc".into()),
            uts: Some("/run/p/ns/uts".into()),
            pid: None,
            host_pid: false,
        },
        shm: Some("/run/p/shm".into()),
        mounts: vec![
            BindMount {
                destination: "/data/sub".into(),
                source: "/v/b".into(),
                readonly: true,
            },
            BindMount {
                destination: "/data".into(),
                source: "/v/a".into(),
                readonly: false,
            },
        ],
        cgroups_path: "/peapod/pod1/c1".into(),
        resources: None,
        oom_score_adj: 1000,
        seccomp: Profile::RuntimeDefault,
        sysctls: HashMap::new(),
    }
}

/// The types of the namespaces the spec lists, in order.
fn namespace_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
    let linux = spec.linux().as_ref().unwrap();
    linux.namespaces().iter().flatten().map(|n| n.typ()).collect()
}

fn caps_of(spec: &Spec) -> LinuxCapabilities {
    spec.process().as_ref().unwrap().capabilities().clone().unwrap()
}

#[test]
fn defaults_are_secure() {
    let pod = PodSpec::default();
    let c = Container::default();
    let spec = build(&input(&pod, &c, 0)).unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.no_new_privileges(), Some(true));
    assert!(p.rlimits().is_none());
    let caps = caps_of(&spec);
    assert_eq!(
        caps.bounding().as_ref().unwrap().len(),
        DEFAULT_CAPABILITIES.len()
    );
    assert!(!caps.bounding().as_ref().unwrap().contains(&Capability::NetRaw));
    assert!(caps.inheritable().as_ref().unwrap().is_empty());
    assert!(caps.ambient().as_ref().unwrap().is_empty());
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
    assert!(linux
        .readonly_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/sys".to_string()));
    assert!(namespace_types(&spec).contains(&LinuxNamespaceType::Pid));
    let dests: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().clone())
        .collect();
    let data = dests.iter().position(|d| d == Path::new("/data")).unwrap();
    let sub = dests.iter().position(|d| d == Path::new("/data/sub")).unwrap();
    assert!(data < sub, "parent mounts must come first");
}

#[test]
fn non_root_gets_no_effective_capabilities() {
    let pod = PodSpec::default();
    let c = Container::default();
    let caps = caps_of(&build(&input(&pod, &c, 1000)).unwrap());
    assert!(caps.effective().as_ref().unwrap().is_empty());
    assert!(caps.permitted().as_ref().unwrap().is_empty());
    assert!(!caps.bounding().as_ref().unwrap().is_empty());
}

/// One row: a container's capability and privilege settings and what its process gets.
struct CapabilityRow {
    name: &'static str,
    add: &'static [&'static str],
    drop: &'static [&'static str],
    allow_privilege_escalation: Option<bool>,
    privileged: Option<bool>,
    /// The bounding set exactly, when the row pins it.
    bounding: Option<&'static [Capability]>,
    /// A capability the bounding set must hold.
    holds: Option<Capability>,
    no_new_privileges: bool,
    masked_paths: bool,
}

fn with_security(row: &CapabilityRow) -> Container {
    let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    Container {
        security_context: Some(SecurityContext {
            capabilities: Some(Capabilities {
                add: names(row.add),
                drop: names(row.drop),
            }),
            allow_privilege_escalation: row.allow_privilege_escalation,
            privileged: row.privileged,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn add_drop_privileged_and_escalation() {
    let rows = [
        CapabilityRow {
            name: "drop ALL, add one",
            add: &["NET_BIND_SERVICE"],
            drop: &["ALL"],
            allow_privilege_escalation: None,
            privileged: None,
            bounding: Some(&[Capability::NetBindService]),
            holds: None,
            no_new_privileges: true,
            masked_paths: true,
        },
        CapabilityRow {
            name: "CAP_SYS_ADMIN implies escalation",
            add: &["SYS_ADMIN"],
            drop: &[],
            allow_privilege_escalation: None,
            privileged: None,
            bounding: None,
            holds: Some(Capability::SysAdmin),
            no_new_privileges: false,
            masked_paths: true,
        },
        CapabilityRow {
            name: "allowPrivilegeEscalation",
            add: &[],
            drop: &[],
            allow_privilege_escalation: Some(true),
            privileged: None,
            bounding: None,
            holds: None,
            no_new_privileges: false,
            masked_paths: true,
        },
        CapabilityRow {
            name: "privileged",
            add: &[],
            drop: &[],
            allow_privilege_escalation: None,
            privileged: Some(true),
            bounding: None,
            holds: Some(Capability::SysAdmin),
            no_new_privileges: false,
            masked_paths: false,
        },
    ];
    let pod = PodSpec::default();
    for row in &rows {
        let c = with_security(row);
        let spec = build(&input(&pod, &c, 0)).unwrap();
        let bounding = caps_of(&spec).bounding().clone().unwrap();
        if let Some(want) = row.bounding {
            assert_eq!(bounding, want.iter().cloned().collect(), "{}", row.name);
        }
        if let Some(cap) = row.holds {
            assert!(bounding.contains(&cap), "{}", row.name);
        }
        let nnp = spec.process().as_ref().unwrap().no_new_privileges();
        assert_eq!(nnp, Some(row.no_new_privileges), "{}", row.name);
        let masked = spec.linux().as_ref().unwrap().masked_paths().is_some();
        assert_eq!(masked, row.masked_paths, "{}", row.name);
    }
    let unknown = CapabilityRow {
        name: "unknown",
        add: &["FLY"],
        ..rows[2]
    };
    let c = with_security(&unknown);
    assert!(build(&input(&pod, &c, 0))
        .unwrap_err()
        .to_string()
        .contains("FLY"));
}

#[test]
fn resources_follow_the_kubelet_conversion() {
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let q = |v: &[(&str, &str)]| {
        Some(
            v.iter()
                .map(|(k, x)| (k.to_string(), Quantity(x.to_string())))
                .collect(),
        )
    };
    let c = |req: &[(&str, &str)], lim: &[(&str, &str)]| Container {
        resources: Some(ResourceRequirements {
            requests: q(req),
            limits: q(lim),
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = resources(&c(&[("cpu", "250m")], &[("cpu", "500m"), ("memory", "64Mi")]));
    let cpu = r.cpu().clone().unwrap();
    assert_eq!(
        (cpu.shares(), cpu.quota(), cpu.period()),
        (Some(256), Some(50_000), Some(100_000))
    );
    assert_eq!(r.memory().unwrap().limit(), Some(64 * 1024 * 1024));
    let none = resources(&Container::default());
    assert_eq!(none.cpu().clone().unwrap().shares(), Some(2));
    assert!(none.memory().is_none());
    let tiny = resources(&c(&[], &[("cpu", "1m")]));
    assert_eq!(tiny.cpu().clone().unwrap().quota(), Some(1000));
}

#[test]
fn host_namespaces_are_left_out() {
    let pod = PodSpec::default();
    let c = Container::default();
    let mut i = input(&pod, &c, 0);
    i.namespaces = SandboxNamespaces {
        host_pid: true,
        ..Default::default()
    };
    let spec = build(&i).unwrap();
    assert_eq!(
        namespace_types(&spec),
        vec![LinuxNamespaceType::Mount, LinuxNamespaceType::Cgroup]
    );
}

#[test]
fn seccomp_sysctls_and_oom_score_reach_the_spec() {
    let pod = PodSpec::default();
    let c = Container::default();
    let mut i = input(&pod, &c, 0);
    i.sysctls = HashMap::from([("kernel.shm_rmid_forced".to_string(), "1".to_string())]);
    i.oom_score_adj = -997;
    let spec = build(&i).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let filter = linux.seccomp().as_ref().unwrap();
    assert_eq!(
        filter.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
    );
    assert_eq!(linux.sysctl().as_ref().unwrap()["kernel.shm_rmid_forced"], "1");
    assert_eq!(spec.process().as_ref().unwrap().oom_score_adj(), Some(-997));

    i.seccomp = Profile::Unconfined;
    assert!(build(&i).unwrap().linux().as_ref().unwrap().seccomp().is_none());

    let privileged = Container {
        security_context: Some(SecurityContext {
            privileged: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut i = input(&pod, &privileged, 0);
    i.seccomp = Profile::RuntimeDefault;
    let spec = build(&i).unwrap();
    assert!(
        spec.linux().as_ref().unwrap().seccomp().is_none(),
        "privileged containers run unconfined"
    );
    assert!(spec.linux().as_ref().unwrap().sysctl().is_none());
}

#[test]
fn error_messages_name_the_value() {
    let cases = [
        (
            SpecError::UnknownCapability {
                name: "CAP_FLY".into(),
            },
            "unknown capability \"CAP_FLY\"",
        ),
        (
            SpecError::Devices(oci_spec::OciSpecError::Other("no access".into())),
            "no access",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(crate::runtime::chain(&e), want);
    }
}
