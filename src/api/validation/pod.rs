//! Pod-level rules of `ValidatePodSpec` (k8s pkg/apis/core/validation/validation.go): policies, DNS,
//! host aliases, security context, names, deadlines. Volumes are delegated to `volumes`, containers to
//! `container`, placement to `scheduling`, unimplemented fields to `supported`.

use k8s_openapi::api::core::v1::{PodDNSConfig, PodSecurityContext, PodSpec};

use super::container::{enumerated, validate_containers};
use super::volumes::validate_volumes;
use super::{rules, scheduling, supported};
use crate::api::field::{BadValue, FieldError, FieldPath};

const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCH_PATHS: usize = 32;
const MAX_DNS_SEARCH_LIST_CHARS: usize = 2048;

/// Validates a defaulted PodSpec found at `path`.
pub fn validate_spec(spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    supported::pod_spec(spec, path, errs);
    termination_grace_period(spec, path, errs);
    let volumes = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        &path.child("volumes"),
        errs,
    );
    validate_containers(spec, &volumes, path, errs);
    enumerated(
        spec.restart_policy.as_deref(),
        &path.child("restartPolicy"),
        &["Always", "OnFailure", "Never"],
        errs,
    );
    let dns_policies = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    enumerated(
        spec.dns_policy.as_deref(),
        &path.child("dnsPolicy"),
        &dns_policies,
        errs,
    );
    if let Some(selector) = &spec.node_selector {
        scheduling::validate_labels(selector, &path.child("nodeSelector"), errs);
    }
    if let Some(sc) = &spec.security_context {
        security_context(sc, spec, path, errs);
    }
    if let Some(node_affinity) = spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()) {
        scheduling::validate_node_affinity(
            node_affinity,
            &path.child("affinity").child("nodeAffinity"),
            errs,
        );
    }
    dns_config(
        spec.dns_config.as_ref(),
        spec.dns_policy.as_deref(),
        &path.child("dnsConfig"),
        errs,
    );
    readiness_gates(spec, path, errs);
    names(spec, path, errs);
    if let Some(deadline) = spec.active_deadline_seconds {
        if !(1..=i64::from(i32::MAX)).contains(&deadline) {
            let detail = rules::inclusive_range_error(1, i64::from(i32::MAX));
            errs.push(FieldError::invalid(
                &path.child("activeDeadlineSeconds"),
                deadline,
                &detail,
            ));
        }
    }
    scheduling::validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &path.child("tolerations"),
        errs,
    );
    host_aliases(spec, path, errs);
    if let Some(policy) = spec.preemption_policy.as_deref() {
        enumerated(
            Some(policy),
            &path.child("preemptionPolicy"),
            &["PreemptLowerPriority", "Never"],
            errs,
        );
    }
}

/// `terminationGracePeriodSeconds`: set (defaulting sets it) and not negative.
fn termination_grace_period(spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    match spec.termination_grace_period_seconds {
        None => errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        )),
        Some(grace) if grace < 0 => {
            let p = path.child("terminationGracePeriodSeconds");
            errs.push(FieldError::invalid(
                &p,
                grace,
                "must be greater than or equal to 0",
            ));
        }
        Some(_) => {}
    }
}

/// Each `readinessGates[].conditionType` is a qualified name.
fn readiness_gates(spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (i, gate) in spec.readiness_gates.iter().flatten().enumerate() {
        let p = path.child("readinessGates").index(i).child("conditionType");
        errs.extend(rules::invalid_each(
            &p,
            &gate.condition_type,
            rules::qualified_name(&gate.condition_type),
        ));
    }
}

/// Each `hostAliases[]` entry: an IP address and DNS-subdomain host names.
fn host_aliases(spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let p = path.child("hostAliases").index(i);
        if !rules::is_ip_sloppy(&alias.ip) {
            errs.push(FieldError::invalid(
                &p.child("ip"),
                &alias.ip,
                rules::INVALID_IP_MSG,
            ));
        }
        for (j, hostname) in alias.hostnames.iter().flatten().enumerate() {
            let hp = p.child("hostnames").index(j);
            errs.extend(rules::invalid_each(
                &hp,
                hostname,
                rules::dns1123_subdomain(hostname),
            ));
        }
    }
}

/// The name-like fields: serviceAccountName, nodeName, priorityClassName (DNS subdomains) and
/// hostname, subdomain (DNS labels).
fn names(spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let subdomains = [
        ("serviceAccountName", &spec.service_account_name),
        ("nodeName", &spec.node_name),
        ("priorityClassName", &spec.priority_class_name),
    ];
    for (name, value) in subdomains {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(rules::invalid_each(
                &path.child(name),
                value,
                rules::dns1123_subdomain(value),
            ));
        }
    }
    for (name, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(rules::invalid_each(
                &path.child(name),
                value,
                rules::dns1123_label(value),
            ));
        }
    }
}

/// `validatePodSpecSecurityContext` for the fields peapod accepts.
fn security_context(sc: &PodSecurityContext, spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let sc_path = path.child("securityContext");
    for (name, id) in [("runAsUser", sc.run_as_user), ("runAsGroup", sc.run_as_group)] {
        if let Some(id) = id {
            for msg in rules::unix_id(id) {
                errs.push(FieldError::invalid(&sc_path.child(name), id, &msg));
            }
        }
    }
    for (i, &gid) in sc.supplemental_groups.iter().flatten().enumerate() {
        for msg in rules::unix_id(gid) {
            errs.push(FieldError::invalid(
                &sc_path.child("supplementalGroups").index(i),
                gid,
                &msg,
            ));
        }
    }
    super::security::pod(sc, spec, &sc_path, errs);
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        let detail = "ShareProcessNamespace and HostPID cannot both be enabled";
        errs.push(FieldError::invalid(
            &path.child("shareProcessNamespace"),
            true,
            detail,
        ));
    }
}

/// `validatePodDNSConfig`.
fn dns_config(
    config: Option<&PodDNSConfig>,
    policy: Option<&str>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let nameservers = config.and_then(|c| c.nameservers.as_deref()).unwrap_or_default();
    if policy == Some("None") {
        if config.is_none() {
            errs.push(FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
            return;
        }
        if nameservers.is_empty() {
            let detail = "must provide at least one DNS nameserver when `dnsPolicy` is None";
            errs.push(FieldError::required(&path.child("nameservers"), detail));
            return;
        }
    }
    let Some(config) = config else {
        return;
    };
    let json = |list: &[String]| BadValue::Raw(serde_json::to_string(list).unwrap_or_default());
    if nameservers.len() > MAX_DNS_NAMESERVERS {
        let detail = format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers");
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            json(nameservers),
            &detail,
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        if !rules::is_ip_sloppy(ns) {
            errs.push(FieldError::invalid(
                &path.child("nameservers").index(i),
                ns,
                rules::INVALID_IP_MSG,
            ));
        }
    }
    let searches = config.searches.as_deref().unwrap_or_default();
    if searches.len() > MAX_DNS_SEARCH_PATHS {
        let detail = format!("must not have more than {MAX_DNS_SEARCH_PATHS} search paths");
        errs.push(FieldError::invalid(
            &path.child("searches"),
            json(searches),
            &detail,
        ));
    }
    if searches.join(" ").len() > MAX_DNS_SEARCH_LIST_CHARS {
        let detail =
            format!("must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) in the search list");
        errs.push(FieldError::invalid(
            &path.child("searches"),
            json(searches),
            &detail,
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        let search = search.strip_suffix('.').unwrap_or(search);
        let p = path.child("searches").index(i);
        errs.extend(rules::invalid_each(&p, search, rules::dns1123_subdomain(search)));
    }
    for (i, option) in config.options.iter().flatten().enumerate() {
        if option.name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(
                &path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
}
