//! The Pod Security Standards checks (policy/check_*.go, latest versions) and the order each level runs them
//! in: the baseline checks that restricted keeps as they are, in file-name order, then either the baseline
//! checks that restricted replaces (baseline) or the restricted ones (restricted), again in file-name order.
//! The checks themselves are in `baseline` and `restricted`; the helpers here word their details.

mod baseline;
mod restricted;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Forbidden;

/// One check: `None` when the pod passes.
pub type Check = fn(&ObjectMeta, &PodSpec) -> Option<Forbidden>;

/// Baseline checks that restricted keeps unchanged; every level above privileged runs them first.
pub const SHARED: [Check; 9] = [
    baseline::app_armor_profile,
    baseline::host_namespaces,
    baseline::host_ports,
    baseline::host_probes_and_lifecycle,
    baseline::privileged,
    baseline::proc_mount,
    baseline::se_linux_options,
    baseline::sysctls,
    baseline::windows_host_process,
];

/// The baseline checks restricted replaces, run after [`SHARED`] at the baseline level.
pub const BASELINE_ONLY: [Check; 4] = [
    baseline::capabilities_baseline,
    baseline::host_path_volumes,
    baseline::seccomp_profile_baseline,
    baseline::baseline_volumes,
];

/// The restricted checks, run after [`SHARED`] at the restricted level.
pub const RESTRICTED_ONLY: [Check; 6] = [
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

/// Whether a seccomp profile type is one the baseline and restricted levels allow.
pub(super) fn valid_seccomp(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// The names of the containers `pred` picks, in `containers` order.
pub(super) fn containers_that(spec: &PodSpec, pred: impl Fn(&Container) -> bool) -> Vec<String> {
    containers(spec)
        .filter(|c| pred(c))
        .map(|c| c.name.clone())
        .collect()
}

/// The containers (in `containers` order) in which `found` finds something, and everything found, sorted
/// and without repeats; `None` when no container has any.
pub(super) fn offenders(
    spec: &PodSpec,
    found: impl Fn(&Container) -> Vec<String>,
) -> Option<(Vec<String>, Vec<String>)> {
    let mut names = Vec::new();
    let mut values = BTreeSet::new();
    for c in containers(spec) {
        let here = found(c);
        if !here.is_empty() {
            names.push(c.name.clone());
            values.extend(here);
        }
    }
    (!names.is_empty()).then(|| (names, values.into_iter().collect()))
}

/// The names of the volumes `pred` picks.
pub(super) fn volumes_that(
    spec: &PodSpec,
    pred: impl Fn(&k8s_openapi::api::core::v1::Volume) -> bool,
) -> Vec<String> {
    spec.volumes
        .iter()
        .flatten()
        .filter(|v| pred(v))
        .map(|v| v.name.clone())
        .collect()
}

/// `reason` with the detail `container "a" <what>` when `names` is not empty.
pub(super) fn forbid_containers(reason: &str, names: &[String], what: &str) -> Option<Forbidden> {
    if names.is_empty() {
        return None;
    }
    forbidden(reason, format!("{} {what}", containers_named(names)))
}
