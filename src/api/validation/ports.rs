//! Container ports (`validateContainerPorts` in k8s pkg/apis/core/validation/validation.go), the host
//! ports a pod on the host network must declare, and host ports two containers of one pod both claim.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Container, ContainerPort};

use super::container::enumerated;
use super::rules;
use crate::api::field::{FieldError, FieldPath};

/// `validateContainerPorts`.
pub(super) fn validate_ports(ports: &[ContainerPort], path: &FieldPath, errs: &mut Vec<FieldError>) {
    let mut names: HashSet<&str> = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = rules::port_name(name);
            if !msgs.is_empty() {
                errs.extend(rules::invalid_each(&p.child("name"), name, msgs));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&p.child("containerPort"), ""));
        } else {
            for msg in rules::port_number(port.container_port) {
                errs.push(FieldError::invalid(
                    &p.child("containerPort"),
                    port.container_port,
                    &msg,
                ));
            }
        }
        if let Some(host_port) = port.host_port.filter(|&hp| hp != 0) {
            for msg in rules::port_number(host_port) {
                errs.push(FieldError::invalid(&p.child("hostPort"), host_port, &msg));
            }
        }
        enumerated(
            port.protocol.as_deref(),
            &p.child("protocol"),
            &["SCTP", "TCP", "UDP"],
            errs,
        );
    }
}

/// `validatePodHostNetworkDeps` for one container of a Pod: hostPort must equal containerPort.
pub(super) fn host_network_ports(c: &Container, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (i, port) in c.ports.iter().flatten().enumerate() {
        let host_port = port.host_port.unwrap_or(0);
        if host_port != port.container_port {
            let p = path.child("ports").index(i).child("hostPort");
            errs.push(FieldError::invalid(
                &p,
                host_port,
                "must match `containerPort` when `hostNetwork` is true",
            ));
        }
    }
}

/// `AccumulateUniqueHostPorts`: one protocol/hostIP/hostPort per set of containers.
pub(super) fn host_port_conflicts(containers: &[Container], path: &FieldPath) -> Vec<FieldError> {
    let mut seen = HashSet::new();
    let mut errs = Vec::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let Some(host_port) = port.host_port.filter(|&hp| hp != 0) else {
                continue;
            };
            let key = format!(
                "{}/{}/{host_port}",
                port.protocol.as_deref().unwrap_or(""),
                port.host_ip.as_deref().unwrap_or("")
            );
            if !seen.insert(key.clone()) {
                let p = path.index(ci).child("ports").index(pi).child("hostPort");
                errs.push(FieldError::duplicate(&p, key.as_str()));
            }
        }
    }
    errs
}
