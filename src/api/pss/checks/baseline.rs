//! The baseline checks (policy/check_*.go, latest versions), each `None` when the pod passes.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{PodSpec, Probe, SELinuxOptions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    containers, containers_named, containers_that, forbid_containers, forbidden, join_quote, offenders,
    pluralize, restricted, volumes_that, SAFE_SYSCTLS,
};
use crate::api::pss::Forbidden;

const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

const SELINUX_TYPES: [&str; 5] = [
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

pub(super) fn app_armor_profile(meta: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let bad = |t: Option<&str>| t.is_some_and(|t| t != "RuntimeDefault" && t != "Localhost");
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let pod = spec
        .security_context
        .as_ref()
        .and_then(|s| s.app_armor_profile.as_ref());
    if let Some(p) = pod.filter(|p| bad(Some(&p.type_))) {
        setters.push("pod".to_string());
        values.insert(p.type_.clone());
    }
    let found = offenders(spec, |c| {
        let profile = c
            .security_context
            .as_ref()
            .and_then(|s| s.app_armor_profile.as_ref());
        profile
            .filter(|p| bad(Some(&p.type_)))
            .map(|p| p.type_.clone())
            .into_iter()
            .collect()
    });
    if let Some((names, types)) = found {
        setters.push(containers_named(&names));
        values.extend(types);
    }
    let mut values: Vec<String> = values.into_iter().collect();
    let mut annotations: Vec<String> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, v)| {
            k.starts_with(APPARMOR_ANNOTATION_PREFIX)
                && !(v.is_empty() || v.as_str() == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_string());
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    let reason = pluralize(
        "forbidden AppArmor profile",
        "forbidden AppArmor profiles",
        values.len(),
    );
    let detail = format!(
        "{} must not set AppArmor profile type to {}",
        setters.join(" and "),
        join_quote(&values)
    );
    forbidden(reason, detail)
}

pub(super) fn host_namespaces(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let set: Vec<&str> = [
        ("hostIPC", spec.host_ipc),
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
    ]
    .into_iter()
    .filter(|(_, v)| *v == Some(true))
    .map(|(n, _)| n)
    .collect();
    if set.is_empty() {
        return None;
    }
    let detail = set
        .iter()
        .map(|n| format!("{n}=true"))
        .collect::<Vec<_>>()
        .join(", ");
    forbidden("host namespaces", detail)
}

pub(super) fn host_ports(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let (names, ports) = offenders(spec, |c| {
        c.ports
            .iter()
            .flatten()
            .filter_map(|p| p.host_port)
            .filter(|p| *p != 0)
            .map(|p| p.to_string())
            .collect()
    })?;
    let detail = format!(
        "{} {} {} {}",
        containers_named(&names),
        pluralize("uses", "use", names.len()),
        pluralize("hostPort", "hostPorts", ports.len()),
        ports.join(", ")
    );
    forbidden("hostPort", detail)
}

pub(super) fn host_probes_and_lifecycle(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let probe_hosts = |p: Option<&Probe>| -> Vec<String> {
        let Some(p) = p else { return Vec::new() };
        let http = p.http_get.as_ref().and_then(|h| h.host.clone());
        let tcp = p.tcp_socket.as_ref().and_then(|t| t.host.clone());
        [http, tcp]
            .into_iter()
            .flatten()
            .filter(|h| !h.is_empty())
            .collect()
    };
    let (mut names, hosts) = offenders(spec, |c| {
        let mut found = Vec::new();
        for p in [&c.liveness_probe, &c.readiness_probe, &c.startup_probe] {
            found.extend(probe_hosts(p.as_ref()));
        }
        let lifecycle = c.lifecycle.as_ref();
        for h in lifecycle
            .into_iter()
            .flat_map(|l| [&l.post_start, &l.pre_stop])
            .flatten()
        {
            let http = h.http_get.as_ref().and_then(|g| g.host.clone());
            let tcp = h.tcp_socket.as_ref().and_then(|t| t.host.clone());
            found.extend([http, tcp].into_iter().flatten().filter(|h| !h.is_empty()));
        }
        found
    })?;
    names.sort();
    names.dedup();
    let detail = format!(
        "{} {} {} {}",
        containers_named(&names),
        pluralize("uses", "use", names.len()),
        pluralize("probe or lifecycle host", "probe or lifecycle hosts", hosts.len()),
        join_quote(&hosts)
    );
    forbidden("probe or lifecycle host", detail)
}

pub(super) fn privileged(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let names = containers_that(spec, |c| {
        c.security_context.as_ref().and_then(|s| s.privileged) == Some(true)
    });
    forbid_containers(
        "privileged",
        &names,
        "must not set securityContext.privileged=true",
    )
}

pub(super) fn proc_mount(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let (names, types) = offenders(spec, |c| {
        let pm = c.security_context.as_ref().and_then(|s| s.proc_mount.as_ref());
        pm.filter(|pm| pm.as_str() != "Default")
            .into_iter()
            .cloned()
            .collect()
    })?;
    let detail = format!(
        "{} must not set securityContext.procMount to {}",
        containers_named(&names),
        join_quote(&types)
    );
    forbidden("procMount", detail)
}

pub(super) fn se_linux_options(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let mut bad_types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |o: &SELinuxOptions| {
        let t = o.type_.as_deref().unwrap_or("");
        let mut ok = true;
        if !SELINUX_TYPES.contains(&t) {
            ok = false;
            bad_types.insert(t.to_string());
        }
        if !o.user.as_deref().unwrap_or("").is_empty() {
            ok = false;
            set_user = true;
        }
        if !o.role.as_deref().unwrap_or("").is_empty() {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut setters = Vec::new();
    let pod = spec
        .security_context
        .as_ref()
        .and_then(|s| s.se_linux_options.as_ref());
    if pod.is_some_and(|o| !valid(o)) {
        setters.push("pod".to_string());
    }
    let mut names = Vec::new();
    for c in containers(spec) {
        let opts = c
            .security_context
            .as_ref()
            .and_then(|s| s.se_linux_options.as_ref());
        if opts.is_some_and(|o| !valid(o)) {
            names.push(c.name.clone());
        }
    }
    if !names.is_empty() {
        setters.push(containers_named(&names));
    }
    if setters.is_empty() {
        return None;
    }
    // As upstream: the user and role notes are only added when a type is also bad.
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
        if set_user {
            data.push("user may not be set".to_string());
        }
        if set_role {
            data.push("role may not be set".to_string());
        }
    }
    let detail = format!(
        "{} set forbidden securityContext.seLinuxOptions: {}",
        setters.join(" and "),
        data.join("; ")
    );
    forbidden("seLinuxOptions", detail)
}

pub(super) fn sysctls(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let bad: Vec<&str> = spec
        .security_context
        .iter()
        .flat_map(|s| s.sysctls.iter().flatten())
        .map(|s| s.name.as_str())
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbidden("forbidden sysctls", bad.join(", "))
}

pub(super) fn windows_host_process(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let host_process = |w: Option<&k8s_openapi::api::core::v1::WindowsSecurityContextOptions>| {
        w.and_then(|w| w.host_process) == Some(true)
    };
    let pod = host_process(
        spec.security_context
            .as_ref()
            .and_then(|s| s.windows_options.as_ref()),
    );
    let any = containers(spec).any(|c| {
        host_process(
            c.security_context
                .as_ref()
                .and_then(|s| s.windows_options.as_ref()),
        )
    });
    if !(pod || any) {
        return None;
    }
    let detail = "pod or containers must not set securityContext.windowsOptions.hostProcess=true";
    forbidden("hostProcess", detail.to_string())
}

pub(super) fn capabilities_baseline(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let (names, caps) = offenders(spec, |c| {
        let added = c
            .security_context
            .as_ref()
            .and_then(|s| s.capabilities.as_ref())
            .and_then(|caps| caps.add.as_ref());
        added
            .into_iter()
            .flatten()
            .filter(|cap| !BASELINE_CAPABILITIES.contains(&cap.as_str()))
            .cloned()
            .collect()
    })?;
    let detail = format!(
        "{} must not include {} in securityContext.capabilities.add",
        containers_named(&names),
        join_quote(&caps)
    );
    forbidden("non-default capabilities", detail)
}

pub(super) fn host_path_volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let names = volumes_that(spec, |v| v.host_path.is_some());
    if names.is_empty() {
        return None;
    }
    let detail = format!(
        "{} {}",
        pluralize("volume", "volumes", names.len()),
        join_quote(&names)
    );
    forbidden("hostPath volumes", detail)
}

pub(super) fn seccomp_profile_baseline(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    restricted::seccomp_setters(spec, false)
}

pub(super) fn baseline_volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let names = volumes_that(spec, |v| v.git_repo.is_some());
    if names.is_empty() {
        return None;
    }
    forbidden(
        "restricted volume types",
        restricted::volumes_detail(&names, &["gitRepo".to_string()]),
    )
}
