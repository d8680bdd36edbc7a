//! The baseline checks (policy/check_*.go, latest versions) and the order each level runs them in: the
//! baseline checks that restricted keeps as they are, in file-name order, then either the baseline checks
//! that restricted replaces (baseline) or the restricted ones (restricted), again in file-name order.

mod restricted;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, PodSpec, Probe, SELinuxOptions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Forbidden;

/// One check: `None` when the pod passes.
pub type Check = fn(&ObjectMeta, &PodSpec) -> Option<Forbidden>;

/// Baseline checks that restricted keeps unchanged.
const BASELINE: [Check; 9] = [
    app_armor_profile,
    host_namespaces,
    host_ports,
    host_probes_and_lifecycle,
    privileged,
    proc_mount,
    se_linux_options,
    sysctls,
    windows_host_process,
];

/// Every check of the baseline level.
pub const BASELINE_LEVEL: [Check; 13] = [
    BASELINE[0],
    BASELINE[1],
    BASELINE[2],
    BASELINE[3],
    BASELINE[4],
    BASELINE[5],
    BASELINE[6],
    BASELINE[7],
    BASELINE[8],
    capabilities_baseline,
    host_path_volumes,
    seccomp_profile_baseline,
    baseline_volumes,
];

/// Every check of the restricted level.
pub const RESTRICTED_LEVEL: [Check; 15] = [
    BASELINE[0],
    BASELINE[1],
    BASELINE[2],
    BASELINE[3],
    BASELINE[4],
    BASELINE[5],
    BASELINE[6],
    BASELINE[7],
    BASELINE[8],
    restricted::allow_privilege_escalation,
    restricted::capabilities,
    restricted::volumes,
    restricted::run_as_non_root,
    restricted::run_as_user,
    restricted::seccomp_profile,
];

/// Sysctls the baseline level allows (the 1.32 set: every namespaced sysctl known to be isolated).
pub const SAFE_SYSCTLS: [&str; 12] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

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

/// Init containers, then containers (`visitContainers`).
pub(super) fn containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

/// `"a", "b"`.
pub(super) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 {
        singular
    } else {
        plural
    }
}

/// `container "a"` / `containers "a", "b"`.
pub(super) fn containers_named(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

pub(super) fn forbidden(reason: &str, detail: String) -> Option<Forbidden> {
    Some(Forbidden {
        reason: reason.to_string(),
        detail,
    })
}

fn app_armor_profile(meta: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
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
    let mut names = Vec::new();
    for c in containers(spec) {
        let profile = c
            .security_context
            .as_ref()
            .and_then(|s| s.app_armor_profile.as_ref());
        if let Some(p) = profile.filter(|p| bad(Some(&p.type_))) {
            names.push(c.name.clone());
            values.insert(p.type_.clone());
        }
    }
    if !names.is_empty() {
        setters.push(containers_named(&names));
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

fn host_namespaces(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
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

fn host_ports(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let mut names = Vec::new();
    let mut ports = BTreeSet::new();
    for c in containers(spec) {
        let used: Vec<i32> = c
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.host_port)
            .filter(|p| *p != 0)
            .collect();
        if !used.is_empty() {
            names.push(c.name.clone());
            ports.extend(used.iter().map(i32::to_string));
        }
    }
    if names.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    let detail = format!(
        "{} {} {} {}",
        containers_named(&names),
        pluralize("uses", "use", names.len()),
        pluralize("hostPort", "hostPorts", ports.len()),
        ports.join(", ")
    );
    forbidden("hostPort", detail)
}

fn host_probes_and_lifecycle(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
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
    let mut names = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for c in containers(spec) {
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
        if !found.is_empty() {
            names.insert(c.name.clone());
            hosts.extend(found);
        }
    }
    if names.is_empty() {
        return None;
    }
    let names: Vec<String> = names.into_iter().collect();
    let hosts: Vec<String> = hosts.into_iter().collect();
    let detail = format!(
        "{} {} {} {}",
        containers_named(&names),
        pluralize("uses", "use", names.len()),
        pluralize("probe or lifecycle host", "probe or lifecycle hosts", hosts.len()),
        join_quote(&hosts)
    );
    forbidden("probe or lifecycle host", detail)
}

fn privileged(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let names: Vec<String> = containers(spec)
        .filter(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true))
        .map(|c| c.name.clone())
        .collect();
    if names.is_empty() {
        return None;
    }
    let detail = format!(
        "{} must not set securityContext.privileged=true",
        containers_named(&names)
    );
    forbidden("privileged", detail)
}

fn proc_mount(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let mut names = Vec::new();
    let mut types = BTreeSet::new();
    for c in containers(spec) {
        let pm = c.security_context.as_ref().and_then(|s| s.proc_mount.as_ref());
        if let Some(pm) = pm.filter(|pm| pm.as_str() != "Default") {
            names.push(c.name.clone());
            types.insert(pm.clone());
        }
    }
    if names.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    let detail = format!(
        "{} must not set securityContext.procMount to {}",
        containers_named(&names),
        join_quote(&types)
    );
    forbidden("procMount", detail)
}

fn se_linux_options(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
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

fn sysctls(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
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

fn windows_host_process(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
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

fn capabilities_baseline(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let mut names = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let added = c
            .security_context
            .as_ref()
            .and_then(|s| s.capabilities.as_ref())
            .and_then(|caps| caps.add.as_ref());
        let extra: Vec<&String> = added
            .into_iter()
            .flatten()
            .filter(|cap| !BASELINE_CAPABILITIES.contains(&cap.as_str()))
            .collect();
        if !extra.is_empty() {
            names.push(c.name.clone());
            caps.extend(extra.into_iter().cloned());
        }
    }
    if names.is_empty() {
        return None;
    }
    let caps: Vec<String> = caps.into_iter().collect();
    let detail = format!(
        "{} must not include {} in securityContext.capabilities.add",
        containers_named(&names),
        join_quote(&caps)
    );
    forbidden("non-default capabilities", detail)
}

fn host_path_volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let names: Vec<&String> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.host_path.is_some())
        .map(|v| &v.name)
        .collect();
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

/// Whether a seccomp profile type is one the baseline and restricted levels allow.
pub(super) fn valid_seccomp(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

fn seccomp_profile_baseline(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    restricted::seccomp_setters(spec, false)
}

fn baseline_volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let names: Vec<String> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.git_repo.is_some())
        .map(|v| v.name.clone())
        .collect();
    if names.is_empty() {
        return None;
    }
    forbidden(
        "restricted volume types",
        restricted::volumes_detail(&names, &["gitRepo".to_string()]),
    )
}
