//! Values of the securityContext fields peapod accepts beyond the ids: `fsGroup`, `fsGroupChangePolicy`,
//! `seccompProfile`, `sysctls` and `procMount`, with the API server's rules and messages
//! (`validatePodSpecSecurityContext`, `validateSeccompProfileField`, `validateSysctls`, `ValidateHostSysctl`),
//! plus peapod's own rule on sysctl values (no `+`, `=` or control characters: CVE-2022-0811).

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, SeccompProfile, SecurityContext};

use super::rules;
use crate::api::field::{BadValue, FieldError, FieldPath};
use crate::api::sysctl::{self, Namespace};

/// The pod-level fields (`path` is `spec.securityContext`).
pub fn pod(sc: &PodSecurityContext, spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if let Some(gid) = sc.fs_group {
        for msg in rules::unix_id(gid) {
            errs.push(FieldError::invalid(&path.child("fsGroup"), gid, &msg));
        }
    }
    if let Some(policy) = &sc.fs_group_change_policy {
        if policy != "OnRootMismatch" && policy != "Always" {
            errs.push(FieldError::not_supported(
                &path.child("fsGroupChangePolicy"),
                policy,
                &["Always", "OnRootMismatch"],
            ));
        }
    }
    if let Some(p) = &sc.seccomp_profile {
        seccomp_profile(p, &path.child("seccompProfile"), errs);
    }
    sysctls(sc, spec, &path.child("sysctls"), errs);
}

/// The container-level fields (`path` is `...securityContext`).
pub fn container(sc: &SecurityContext, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if let Some(p) = &sc.seccomp_profile {
        seccomp_profile(p, &path.child("seccompProfile"), errs);
    }
    match sc.proc_mount.as_deref() {
        None | Some("Default") => {}
        // Unmasked needs a user namespace, which peapod does not implement (hostUsers is always true).
        Some("Unmasked") => errs.push(FieldError::invalid(
            &path.child("procMount"),
            "Unmasked",
            "`hostUsers` must be false to use `Unmasked`",
        )),
        Some(other) => errs.push(FieldError::not_supported(
            &path.child("procMount"),
            other,
            &["Default", "Unmasked"],
        )),
    }
}

fn seccomp_profile(p: &SeccompProfile, path: &FieldPath, errs: &mut Vec<FieldError>) {
    match p.type_.as_str() {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    let local = path.child("localhostProfile");
    match (p.type_.as_str(), &p.localhost_profile) {
        ("Localhost", None) => errs.push(FieldError::required(
            &local,
            "must be set when seccomp type is Localhost",
        )),
        ("Localhost", Some(name)) => {
            if name.starts_with('/') {
                errs.push(FieldError::invalid(&local, name, "must be a relative path"));
            }
            if name.split('/').any(|part| part == "..") {
                errs.push(FieldError::invalid(&local, name, "must not contain '..'"));
            }
        }
        (_, Some(_)) => {
            let shown = BadValue::Raw(serde_json::to_string(p).unwrap_or_default());
            errs.push(FieldError::invalid(
                &local,
                shown,
                "can only be set when seccomp type is Localhost",
            ));
        }
        (_, None) => {}
    }
}

fn sysctls(sc: &PodSecurityContext, spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let mut seen = HashSet::new();
    for (i, s) in sc.sysctls.iter().flatten().enumerate() {
        let name_path = path.index(i).child("name");
        if s.name.is_empty() {
            errs.push(FieldError::required(&name_path, ""));
        } else if !sysctl::valid_name(&s.name) {
            let detail = format!(
                "must have at most 253 characters and match regular expression {}",
                sysctl::NAME_PATTERN
            );
            errs.push(FieldError::invalid(&name_path, &s.name, &detail));
        } else if !seen.insert(s.name.as_str()) {
            errs.push(FieldError::duplicate(&name_path, &s.name));
        }
        match sysctl::namespace_of(&sysctl::normalize(&s.name)) {
            Some(Namespace::Net) if spec.host_network == Some(true) => errs.push(FieldError::invalid(
                &name_path,
                &s.name,
                "may not be specified when 'hostNetwork' is true",
            )),
            Some(Namespace::Ipc) if spec.host_ipc == Some(true) => errs.push(FieldError::invalid(
                &name_path,
                &s.name,
                "may not be specified when 'hostIPC' is true",
            )),
            _ => {}
        }
        if let Some(problem) = sysctl::value_problem(&s.value) {
            errs.push(FieldError::invalid(
                &path.index(i).child("value"),
                &s.value,
                &format!("{problem}: peapod refuses values that could smuggle in a second setting"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn pod_errors(spec: Value) -> Vec<String> {
        let spec: PodSpec = serde_json::from_value(spec).unwrap();
        let mut errs = Vec::new();
        let path = FieldPath::new("spec").child("securityContext");
        pod(spec.security_context.as_ref().unwrap(), &spec, &path, &mut errs);
        errs.iter().map(ToString::to_string).collect()
    }

    fn container_errors(sc: Value) -> Vec<String> {
        let sc: SecurityContext = serde_json::from_value(sc).unwrap();
        let mut errs = Vec::new();
        container(&sc, &FieldPath::new("c").child("securityContext"), &mut errs);
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn security_context_values_follow_the_api_server() {
        let sc = |v: Value| json!({"containers": [], "securityContext": v});
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (sc(json!({"fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch"})), vec![]),
            (
                sc(json!({"fsGroup": -1, "fsGroupChangePolicy": "Sometimes"})),
                vec![
                    "spec.securityContext.fsGroup: Invalid value: -1: must be between 0 and 4294967295, inclusive",
                    r#"spec.securityContext.fsGroupChangePolicy: Unsupported value: "Sometimes": supported values: "Always", "OnRootMismatch""#,
                ],
            ),
            (
                sc(json!({"seccompProfile": {"type": "Localhost"}})),
                vec!["spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost"],
            ),
            (
                sc(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "/a/../b"}})),
                vec![
                    r#"spec.securityContext.seccompProfile.localhostProfile: Invalid value: "/a/../b": must be a relative path"#,
                    r#"spec.securityContext.seccompProfile.localhostProfile: Invalid value: "/a/../b": must not contain '..'"#,
                ],
            ),
            (
                sc(json!({"seccompProfile": {"type": "RuntimeDefault", "localhostProfile": "x.json"}})),
                vec![r#"spec.securityContext.seccompProfile.localhostProfile: Invalid value: {"localhostProfile":"x.json","type":"RuntimeDefault"}: can only be set when seccomp type is Localhost"#],
            ),
            (
                sc(json!({"seccompProfile": {"type": "Strict"}})),
                vec![r#"spec.securityContext.seccompProfile.type: Unsupported value: "Strict": supported values: "Localhost", "RuntimeDefault", "Unconfined""#],
            ),
            (
                sc(json!({"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}, {"name": "kernel.shm_rmid_forced", "value": "0"},
                                      {"name": "Bad Name", "value": "1"}, {"name": "", "value": "1"},
                                      {"name": "kernel.msgmax", "value": "1+kernel.core_pattern=|/x"}]})),
                vec![
                    r#"spec.securityContext.sysctls[1].name: Duplicate value: "kernel.shm_rmid_forced""#,
                    r#"spec.securityContext.sysctls[2].name: Invalid value: "Bad Name": must have at most 253 characters and match regular expression ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"#,
                    "spec.securityContext.sysctls[3].name: Required value",
                    r#"spec.securityContext.sysctls[4].value: Invalid value: "1+kernel.core_pattern=|/x": must not contain '+' or '=': peapod refuses values that could smuggle in a second setting"#,
                ],
            ),
            (
                json!({"containers": [], "hostNetwork": true, "hostIPC": true,
                       "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "kernel.sem", "value": "1"}]}}),
                vec![
                    r#"spec.securityContext.sysctls[0].name: Invalid value: "net.ipv4.tcp_syncookies": may not be specified when 'hostNetwork' is true"#,
                    r#"spec.securityContext.sysctls[1].name: Invalid value: "kernel.sem": may not be specified when 'hostIPC' is true"#,
                ],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(pod_errors(spec.clone()), want, "{spec}");
        }
        assert!(
            container_errors(json!({"procMount": "Default", "seccompProfile": {"type": "Unconfined"}}))
                .is_empty()
        );
        assert_eq!(
            container_errors(json!({"procMount": "Weird", "seccompProfile": {"type": ""}})),
            vec![
                r#"c.securityContext.seccompProfile.type: Required value: type is required when seccompProfile is set"#,
                r#"c.securityContext.procMount: Unsupported value: "Weird": supported values: "Default", "Unmasked""#,
            ]
        );
    }
}
