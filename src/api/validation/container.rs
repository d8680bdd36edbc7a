//! Container rules (init, sidecar and regular), ported from `validateContainers`,
//! `validateInitContainers` and `validateContainerCommon` in k8s pkg/apis/core/validation/validation.go:
//! names, image, ports, volume mounts, pull and termination-message policies, resources, security
//! context, container restart policy, and where hooks and probes may be set (their rules: `probes`).
//!
//! Presence of unimplemented fields is decided in `supported`; this module checks the values of the
//! fields peapod accepts.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements, SecurityContext, VolumeMount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::ports::{host_network_ports, host_port_conflicts, validate_ports};
use super::probes;
use super::{capabilities, env, rules, supported, system_paths};
use crate::api::field::{BadValue, FieldError, FieldPath};
use crate::api::quantity::{parse_quantity, QUANTITY_FORMAT_ERROR};

const INIT_ONLY_WITH_RESTART: &str = "may not be set for init containers without restartPolicy=Always";

/// Most containers (regular and init together) one pod may have: peapod's bound, not the API server's. The
/// kubelet has none (etcd's object size bounds a Pod at thousands of containers), but every container costs
/// this node a shim, an overlay mount and a cgroup, and a pod's containers start one after another; 100 is
/// well above real pods (tens at most) and keeps one manifest from tying up the node.
pub const MAX_CONTAINERS: usize = 100;

/// Validates `spec.containers` and `spec.initContainers` against the volumes the pod defines.
pub fn validate_containers(
    spec: &PodSpec,
    volumes: &HashSet<&str>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let host_network = spec.host_network == Some(true);
    let grace = spec.termination_grace_period_seconds;
    let containers_path = path.child("containers");
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&containers_path, ""));
    }
    container_count(spec, path, errs);
    let mut names: HashSet<&str> = HashSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let p = containers_path.index(i);
        common(c, volumes, &p, false, host_network, errs);
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), &c.name));
        }
        probes::validate_hooks_and_probes(c, grace, &p, errs);
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
        if host_network {
            host_network_ports(c, &p, errs);
        }
    }
    errs.extend(host_port_conflicts(&spec.containers, &containers_path));

    let init_path = path.child("initContainers");
    let init_containers = spec.init_containers.as_deref().unwrap_or_default();
    for (i, c) in init_containers.iter().enumerate() {
        let p = init_path.index(i);
        common(c, volumes, &p, true, host_network, errs);
        let sidecar = match c.restart_policy.as_deref() {
            None => false,
            Some("Always") => true,
            Some(other) => {
                errs.push(FieldError::not_supported(
                    &p.child("restartPolicy"),
                    other,
                    &["Always"],
                ));
                false
            }
        };
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), &c.name));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        errs.extend(host_port_conflicts(std::slice::from_ref(c), &init_path));
        if sidecar {
            probes::validate_hooks_and_probes(c, grace, &p, errs);
            continue;
        }
        let forbidden = [
            ("lifecycle", c.lifecycle.is_some()),
            ("livenessProbe", c.liveness_probe.is_some()),
            ("readinessProbe", c.readiness_probe.is_some()),
            ("startupProbe", c.startup_probe.is_some()),
        ];
        for (name, _) in forbidden.into_iter().filter(|(_, set)| *set) {
            errs.push(FieldError::forbidden(&p.child(name), INIT_ONLY_WITH_RESTART));
        }
    }
}

/// [`MAX_CONTAINERS`] with the API server's `Too many` wording: the regular containers against the whole
/// bound, the init containers against what the regular ones leave.
fn container_count(spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let regular = spec.containers.len();
    let init = spec.init_containers.as_ref().map_or(0, Vec::len);
    if regular > MAX_CONTAINERS {
        errs.push(FieldError::too_many(
            &path.child("containers"),
            regular,
            MAX_CONTAINERS,
        ));
    } else if regular + init > MAX_CONTAINERS {
        errs.push(FieldError::too_many(
            &path.child("initContainers"),
            init,
            MAX_CONTAINERS - regular,
        ));
    }
}

/// `validateContainerCommon` plus the pod-only image whitespace rule.
fn common(
    c: &Container,
    volumes: &HashSet<&str>,
    path: &FieldPath,
    is_init: bool,
    host_network: bool,
    errs: &mut Vec<FieldError>,
) {
    supported::container(c, path, is_init, host_network, errs);
    rules::required_label(&c.name, &path.child("name"), errs);
    let image = c.image.as_deref().unwrap_or("");
    if image.is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            &path.child("image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    enumerated(
        c.termination_message_policy.as_deref(),
        &path.child("terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
        errs,
    );
    let privileged = c.security_context.as_ref().and_then(|sc| sc.privileged) == Some(true);
    if let Some(message_path) = c.termination_message_path.as_deref() {
        // The runtime bind-mounts the message file there, so it may not take over a runtime path either.
        let detail = if message_path.starts_with('/') {
            system_paths::refusal(message_path, privileged)
        } else {
            Some("must be an absolute path".to_string())
        };
        if let Some(detail) = detail {
            errs.push(FieldError::invalid(
                &path.child("terminationMessagePath"),
                message_path,
                &detail,
            ));
        }
    }
    validate_ports(c.ports.as_deref().unwrap_or_default(), &path.child("ports"), errs);
    env::validate_env(c.env.as_deref().unwrap_or_default(), &path.child("env"), errs);
    validate_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        volumes,
        privileged,
        &path.child("volumeMounts"),
        errs,
    );
    enumerated(
        c.image_pull_policy.as_deref(),
        &path.child("imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
        errs,
    );
    if let Some(resources) = &c.resources {
        validate_resources(resources, &path.child("resources"), errs);
    }
    if let Some(sc) = &c.security_context {
        validate_security_context(sc, &path.child("securityContext"), errs);
    }
}

/// Required when empty, `NotSupported` outside `allowed`.
pub fn enumerated(value: Option<&str>, path: &FieldPath, allowed: &[&str], errs: &mut Vec<FieldError>) {
    match value.unwrap_or("") {
        "" => errs.push(FieldError::required(path, "")),
        v if !allowed.contains(&v) => errs.push(FieldError::not_supported(path, v, allowed)),
        _ => {}
    }
}

/// `ValidateVolumeMounts`, with peapod's extra rules that mountPath is absolute and leaves alone what the
/// runtime mounts and masks (`system_paths`). subPath errors carry the mount's index (Kubernetes omits it).
fn validate_mounts(
    mounts: &[VolumeMount],
    volumes: &HashSet<&str>,
    privileged: bool,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let mut mount_points: HashSet<&str> = HashSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !volumes.contains(m.name.as_str()) {
            errs.push(FieldError::not_found(&p.child("name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        } else if !m.mount_path.starts_with('/') {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                &m.mount_path,
                "must be an absolute path",
            ));
        } else if let Some(detail) = system_paths::refusal(&m.mount_path, privileged) {
            errs.push(FieldError::invalid(&p.child("mountPath"), &m.mount_path, &detail));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                &m.mount_path,
                "must be unique",
            ));
        }
        let sub_path = m.sub_path.as_deref().unwrap_or("");
        if !sub_path.is_empty() {
            local_descending_path(sub_path, &p.child("subPath"), errs);
        }
        let sub_path_expr = m.sub_path_expr.as_deref().unwrap_or("");
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                let detail = "subPathExpr and subPath are mutually exclusive";
                errs.push(FieldError::invalid(
                    &p.child("subPathExpr"),
                    sub_path_expr,
                    detail,
                ));
            }
            local_descending_path(sub_path_expr, &p.child("subPathExpr"), errs);
        }
    }
}

/// `validateLocalDescendingPath`: relative, without `..` elements.
pub fn local_descending_path(value: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if value.starts_with('/') {
        errs.push(FieldError::invalid(path, value, "must be a relative path"));
    }
    if rules::has_backsteps(value) {
        errs.push(FieldError::invalid(path, value, "must not contain '..'"));
    }
}

/// `ValidateContainerResourceRequirements` for the resources peapod accepts (names are checked in
/// `supported`): quantities parse, are not negative, and requests do not exceed limits.
fn validate_resources(resources: &ResourceRequirements, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let empty = BTreeMap::new();
    let limits = resources.limits.as_ref().unwrap_or(&empty);
    let requests = resources.requests.as_ref().unwrap_or(&empty);
    let limit_values = quantities(limits, &path.child("limits"), errs);
    let request_values = quantities(requests, &path.child("requests"), errs);
    for (name, request) in &request_values {
        let Some(limit) = limit_values.get(name) else {
            continue;
        };
        if request > limit {
            let raw = |m: &BTreeMap<String, Quantity>| m.get(*name).map(|q| q.0.clone()).unwrap_or_default();
            let detail = format!("must be less than or equal to {name} limit of {}", raw(limits));
            errs.push(FieldError::invalid(
                &path.child("requests"),
                raw(requests).as_str(),
                &detail,
            ));
        }
    }
}

fn quantities<'a>(
    list: &'a BTreeMap<String, Quantity>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) -> BTreeMap<&'a str, crate::api::quantity::ParsedQuantity> {
    let mut parsed = BTreeMap::new();
    for (name, quantity) in list {
        let p = path.key(name);
        match parse_quantity(&quantity.0) {
            None => errs.push(FieldError::invalid(&p, &quantity.0, QUANTITY_FORMAT_ERROR)),
            Some(q) if q.is_negative() => {
                errs.push(FieldError::invalid(
                    &p,
                    &quantity.0,
                    "must be greater than or equal to 0",
                ));
            }
            Some(q) => {
                parsed.insert(name.as_str(), q);
            }
        }
    }
    parsed
}

/// `ValidateSecurityContext` for the fields peapod accepts.
fn validate_security_context(sc: &SecurityContext, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (name, id) in [("runAsUser", sc.run_as_user), ("runAsGroup", sc.run_as_group)] {
        if let Some(id) = id {
            for msg in rules::unix_id(id) {
                errs.push(FieldError::invalid(&path.child(name), id, &msg));
            }
        }
    }
    if sc.allow_privilege_escalation == Some(false) {
        let shown = || BadValue::Raw(serde_json::to_string(sc).unwrap_or_default());
        if sc.privileged == Some(true) {
            let detail = "cannot set `allowPrivilegeEscalation` to false and `privileged` to true";
            errs.push(FieldError::invalid(path, shown(), detail));
        }
        let adds = sc.capabilities.as_ref().and_then(|c| c.add.as_ref());
        if adds.is_some_and(|add| add.iter().any(|c| c == "SYS_ADMIN" || c == "CAP_SYS_ADMIN")) {
            let detail =
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN";
            errs.push(FieldError::invalid(path, shown(), detail));
        }
    }
    if let Some(caps) = &sc.capabilities {
        capabilities::validate(caps, &path.child("capabilities"), errs);
    }
    super::security::container(sc, path, errs);
}
