use k8s_openapi::api::core::v1::PodSpec;
use serde_json::json;

use super::*;

fn pod(sysctls: &[(&str, &str)], host_net: bool, host_ipc: bool) -> PodSpec {
    let list: Vec<_> = sysctls
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    serde_json::from_value(json!({
        "containers": [{"name": "a"}],
        "hostNetwork": host_net,
        "hostIPC": host_ipc,
        "securityContext": {"sysctls": list},
    }))
    .unwrap()
}

#[test]
fn names_normalize_and_validate_like_the_kubelet() {
    assert_eq!(normalize("net/ipv4/ip_forward"), "net.ipv4.ip_forward");
    assert_eq!(
        normalize("net/ipv4/conf/eno2.100/rp_filter"),
        "net.ipv4.conf.eno2/100.rp_filter"
    );
    assert_eq!(
        normalize("net.ipv4.conf.eno2/100.rp_filter"),
        "net.ipv4.conf.eno2/100.rp_filter"
    );
    for good in ["kernel.shm_rmid_forced", "net.ipv4.conf.eno2/100.rp_filter", "a"] {
        assert!(valid_name(good), "{good}");
    }
    for bad in [
        "",
        "Kernel.x",
        "net..x",
        "net.x.",
        "-a.b",
        "a b",
        &"a".repeat(254),
    ] {
        assert!(!valid_name(bad), "{bad}");
    }
    assert_eq!(namespace_of("kernel.shmmax"), Some(Namespace::Ipc));
    assert_eq!(namespace_of("kernel.sem"), Some(Namespace::Ipc));
    assert_eq!(namespace_of("fs.mqueue.msg_max"), Some(Namespace::Ipc));
    assert_eq!(namespace_of("net.core.somaxconn"), Some(Namespace::Net));
    assert_eq!(namespace_of("kernel.core_pattern"), None);
    assert_eq!(namespace_of("vm.overcommit_memory"), None);
}

#[test]
fn values_cannot_smuggle_a_second_sysctl() {
    assert_eq!(value_problem("1"), None);
    assert_eq!(value_problem("32768 60999"), None);
    assert!(value_problem("1+kernel.core_pattern=|/x").is_some());
    assert!(value_problem("a=b").is_some());
    assert!(value_problem("1\nkernel.core_pattern").is_some());
    assert!(value_problem(&"1".repeat(4097)).is_some());
    let smuggled = pod(
        &[("kernel.shm_rmid_forced", "1+kernel.core_pattern=|/x")],
        false,
        false,
    );
    assert!(to_oci(&smuggled)
        .unwrap_err()
        .contains("must not contain '+' or '='"));
    let host = pod(&[("kernel.core_pattern", "core")], false, false);
    assert!(
        to_oci(&host).is_err(),
        "a host-wide sysctl never reaches the OCI spec"
    );
    let ok = pod(&[("net/ipv4/ip_unprivileged_port_start", "0")], false, false);
    assert_eq!(
        to_oci(&ok).unwrap(),
        HashMap::from([("net.ipv4.ip_unprivileged_port_start".to_string(), "0".to_string())])
    );
}

#[test]
fn admission_follows_the_kubelets_allowlist() {
    let none: Vec<String> = Vec::new();
    assert!(admit(&pod(&[("kernel.shm_rmid_forced", "1")], false, false), &none).is_ok());
    assert!(admit(&pod(&[("net.ipv4.tcp_syncookies", "1")], false, false), &none).is_ok());
    assert_eq!(
        admit(&pod(&[("net.core.somaxconn", "1024")], false, false), &none).unwrap_err(),
        r#"forbidden sysctl: "net.core.somaxconn" not allowlisted"#
    );
    let unsafe_ok = vec!["net.core.somaxconn".to_string(), "kernel.msg*".to_string()];
    assert!(admit(&pod(&[("net.core.somaxconn", "1024")], false, false), &unsafe_ok).is_ok());
    assert!(admit(&pod(&[("kernel.msgmax", "1")], false, false), &unsafe_ok).is_ok());
    assert_eq!(
        admit(&pod(&[("net.ipv4.tcp_syncookies", "1")], true, false), &none).unwrap_err(),
        r#"forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled"#
    );
    assert_eq!(
        admit(&pod(&[("kernel.shm_rmid_forced", "1")], false, true), &none).unwrap_err(),
        r#"forbidden sysctl: "kernel.shm_rmid_forced" not allowed with host ipc enabled"#
    );
    let everything = vec!["kernel.*".to_string()];
    assert!(
        admit(&pod(&[("kernel.core_pattern", "x")], false, false), &everything).is_err(),
        "a host-wide sysctl is never admitted"
    );
}

#[test]
fn the_unsafe_allowlist_takes_only_namespaced_sysctls() {
    let ok: Vec<String> = [
        "net.*",
        "kernel.shm*",
        "kernel.sem",
        "fs.mqueue.*",
        "net.core.somaxconn",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    check_allowlist(&ok).unwrap();
    for bad in ["kernel.*", "vm.swappiness", "*", "Net.x"] {
        assert!(check_allowlist(&[bad.to_string()]).is_err(), "{bad}");
    }
    assert_eq!(
        check_allowlist(&["vm.swappiness".to_string()]).map_err(|e| e.to_string()),
        Err(r#"the sysctl "vm.swappiness" is not known to be namespaced"#.to_string())
    );
    let bad_name = check_allowlist(&["Net.x".to_string()]).map_err(|e| e.to_string());
    assert_eq!(
        bad_name,
        Err(format!(
            "sysctl \"Net.x\" must have at most 253 characters and match regular expression {NAME_PATTERN}"
        ))
    );
}
