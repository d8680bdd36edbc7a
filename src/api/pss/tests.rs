//! Table tests after pod-security-admission's check_*_test.go: every check rejects its violating spec with
//! upstream's reason and detail, and passes the compliant one.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};

use super::*;

fn spec(v: Value) -> PodSpec {
    let mut v = v;
    if v.get("containers").is_none() {
        v["containers"] = json!([{"name": "a"}]);
    }
    serde_json::from_value(v).unwrap()
}

/// A container `a` with this securityContext.
fn with_sc(sc: Value) -> PodSpec {
    spec(json!({"containers": [{"name": "a", "securityContext": sc}]}))
}

/// A spec that passes restricted.
fn restricted_ok() -> Value {
    json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
           "containers": [{"name": "a", "securityContext": {
               "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
           "volumes": [{"name": "v", "emptyDir": {}}]})
}

fn only(level: Level, s: &PodSpec) -> Vec<(String, String)> {
    check(level, &ObjectMeta::default(), s)
        .into_iter()
        .map(|f| (f.reason, f.detail))
        .collect()
}

fn pair(reason: &str, detail: &str) -> Vec<(String, String)> {
    vec![(reason.to_string(), detail.to_string())]
}

/// One pod per baseline check, with the reason and detail it is refused with.
fn baseline_violations() -> Vec<(PodSpec, &'static str, &'static str)> {
    vec![
        (
            spec(json!({"hostNetwork": true, "hostPID": true})),
            "host namespaces",
            "hostNetwork=true, hostPID=true",
        ),
        (
            spec(
                json!({"initContainers": [{"name": "i", "securityContext": {"privileged": true}}],
                        "containers": [{"name": "a", "securityContext": {"privileged": true}}]}),
            ),
            "privileged",
            r#"containers "i", "a" must not set securityContext.privileged=true"#,
        ),
        (
            with_sc(json!({"capabilities": {"add": ["NET_ADMIN", "CHOWN", "SYS_ADMIN"]}})),
            "non-default capabilities",
            r#"container "a" must not include "NET_ADMIN", "SYS_ADMIN" in securityContext.capabilities.add"#,
        ),
        (
            spec(
                json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}}]}),
            ),
            "hostPath volumes",
            r#"volume "h""#,
        ),
        (
            spec(
                json!({"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 80}]}]}),
            ),
            "hostPort",
            r#"container "a" uses hostPorts 80, 8080"#,
        ),
        (
            spec(json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}})),
            "forbidden AppArmor profile",
            r#"pod must not set AppArmor profile type to "Unconfined""#,
        ),
        (
            with_sc(json!({"seLinuxOptions": {"type": "spc_t", "user": "root"}})),
            "seLinuxOptions",
            r#"container "a" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set"#,
        ),
        (
            with_sc(json!({"procMount": "Unmasked"})),
            "procMount",
            r#"container "a" must not set securityContext.procMount to "Unmasked""#,
        ),
        (
            spec(json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}})),
            "seccompProfile",
            r#"pod must not set securityContext.seccompProfile.type to "Unconfined""#,
        ),
        (
            spec(
                json!({"securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"},
                        {"name": "net.core.somaxconn", "value": "1"}, {"name": "kernel.msgmax", "value": "1"}]}}),
            ),
            "forbidden sysctls",
            "net.core.somaxconn, kernel.msgmax",
        ),
        (
            spec(
                json!({"containers": [{"name": "a", "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}},
                        {"name": "b", "lifecycle": {"preStop": {"tcpSocket": {"host": "metadata", "port": 80}}}}]}),
            ),
            "probe or lifecycle host",
            r#"containers "a", "b" use probe or lifecycle hosts "10.0.0.1", "metadata""#,
        ),
        (
            with_sc(json!({"windowsOptions": {"hostProcess": true}})),
            "hostProcess",
            "pod or containers must not set securityContext.windowsOptions.hostProcess=true",
        ),
        (
            spec(json!({"volumes": [{"name": "g", "gitRepo": {"repository": "x"}}]})),
            "restricted volume types",
            r#"volume "g" uses restricted volume type "gitRepo""#,
        ),
    ]
}

#[test]
fn each_baseline_check_rejects_its_violation() {
    let cases = baseline_violations();
    for (s, reason, detail) in cases {
        assert_eq!(only(Level::Baseline, &s), pair(reason, detail), "{s:?}");
        assert!(only(Level::Privileged, &s).is_empty());
    }
    assert!(only(Level::Baseline, &spec(json!({}))).is_empty());
    assert!(only(Level::Baseline, &spec(restricted_ok())).is_empty());
}

#[test]
fn baseline_allows_what_upstream_allows() {
    for s in [
        with_sc(json!({"capabilities": {"add": ["AUDIT_WRITE", "NET_BIND_SERVICE", "SYS_CHROOT"]}})),
        with_sc(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}})),
        with_sc(json!({"seLinuxOptions": {"type": "container_t", "level": "s0:c1"}})),
        with_sc(json!({"procMount": "Default", "privileged": false})),
        spec(
            json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]}}),
        ),
        spec(json!({"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 0}]}]})),
    ] {
        assert!(only(Level::Baseline, &s).is_empty(), "{s:?}");
    }
}

#[test]
fn each_restricted_check_rejects_its_violation() {
    let tweak = |f: &dyn Fn(&mut Value)| {
        let mut v = restricted_ok();
        f(&mut v);
        spec(v)
    };
    let cases: Vec<(PodSpec, &str, &str)> = vec![
        (
            tweak(&|v| v["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true)),
            "allowPrivilegeEscalation != false",
            r#"container "a" must set securityContext.allowPrivilegeEscalation=false"#,
        ),
        (
            tweak(&|v| v["containers"][0]["securityContext"]["capabilities"] = json!({"add": ["CHOWN"]})),
            "unrestricted capabilities",
            r#"container "a" must set securityContext.capabilities.drop=["ALL"]; container "a" must not include "CHOWN" in securityContext.capabilities.add"#,
        ),
        (
            tweak(
                &|v| v["volumes"] = json!([{"name": "h", "hostPath": {"path": "/x"}}, {"name": "n", "nfs": {"server": "s", "path": "/"}}]),
            ),
            "restricted volume types",
            r#"volumes "h", "n" use restricted volume types "hostPath", "nfs""#,
        ),
        (
            tweak(&|v| v["securityContext"]["runAsNonRoot"] = json!(false)),
            "runAsNonRoot != true",
            "pod must not set securityContext.runAsNonRoot=false",
        ),
        (
            tweak(&|v| {
                v["securityContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("runAsNonRoot");
            }),
            "runAsNonRoot != true",
            r#"pod or container "a" must set securityContext.runAsNonRoot=true"#,
        ),
        (
            tweak(&|v| {
                v["securityContext"]["runAsUser"] = json!(0);
                v["containers"][0]["securityContext"]["runAsUser"] = json!(0);
            }),
            "runAsUser=0",
            r#"pod and container "a" must not set runAsUser=0"#,
        ),
        (
            tweak(&|v| {
                v["securityContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("seccompProfile");
            }),
            "seccompProfile",
            r#"pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
        ),
    ];
    for (s, reason, detail) in cases {
        assert_eq!(only(Level::Restricted, &s), pair(reason, detail), "{s:?}");
    }
    assert!(only(Level::Restricted, &spec(restricted_ok())).is_empty());
}

#[test]
fn messages_name_the_level_and_every_failure_in_order() {
    let s = spec(
        json!({"hostNetwork": true, "containers": [{"name": "a", "securityContext": {"privileged": true}}],
                        "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}),
    );
    assert_eq!(
        evaluate(Level::Baseline, &ObjectMeta::default(), &s).unwrap_err(),
        r#"violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), privileged (container "a" must not set securityContext.privileged=true), hostPath volumes (volume "h")"#
    );
    let r = evaluate(Level::Restricted, &ObjectMeta::default(), &s).unwrap_err();
    assert!(
        r.starts_with(
            r#"violates PodSecurity "restricted:latest": host namespaces (hostNetwork=true), privileged ("#
        ),
        "{r}"
    );
    assert!(r.contains("allowPrivilegeEscalation != false ("), "{r}");
    assert!(
        r.contains(r#"restricted volume types (volume "h" uses restricted volume type "hostPath")"#),
        "{r}"
    );
    assert!(
        !r.contains("hostPath volumes"),
        "restricted replaces the baseline volume check: {r}"
    );
    assert!(evaluate(Level::Privileged, &ObjectMeta::default(), &s).is_ok());
}

#[test]
fn apparmor_annotations_count_too() {
    let meta = ObjectMeta {
        annotations: Some(
            [
                (
                    format!("{}a", "container.apparmor.security.beta.kubernetes.io/"),
                    "unconfined".to_string(),
                ),
                (
                    format!("{}b", "container.apparmor.security.beta.kubernetes.io/"),
                    "runtime/default".to_string(),
                ),
            ]
            .into(),
        ),
        ..Default::default()
    };
    let failed = check(Level::Baseline, &meta, &spec(json!({})));
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].reason, "forbidden AppArmor profile");
    assert!(
        failed[0].detail.starts_with("annotation must not set"),
        "{:?}",
        failed[0]
    );
}

#[test]
fn namespace_labels_pick_the_level() {
    let labels = |v: &str| Some([(ENFORCE_LABEL.to_string(), v.to_string())].into());
    assert_eq!(Level::for_namespace(None, Level::Baseline), Level::Baseline);
    assert_eq!(
        Level::for_namespace(labels("privileged").as_ref(), Level::Baseline),
        Level::Privileged
    );
    assert_eq!(
        Level::for_namespace(labels("restricted").as_ref(), Level::Privileged),
        Level::Restricted
    );
    assert_eq!(
        Level::for_namespace(labels("bogus").as_ref(), Level::Privileged),
        Level::Restricted,
        "an invalid label fails closed"
    );
    assert_eq!("baseline".parse::<Level>(), Ok(Level::Baseline));
    assert!("Baseline".parse::<Level>().is_err());
}
