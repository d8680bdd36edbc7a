//! What peapod implements of the Pod API: one function per k8s-openapi struct, each destructuring
//! the struct exhaustively so that a field added by a k8s-openapi upgrade fails to compile here until
//! someone decides it. Every field set that peapod does not implement is rejected by name with
//! `Forbidden: not supported by peapod`; rejecting is the default for anything undecided.
//!
//! To start accepting a field, delete its `forbid` line and bind it as `_` in the pattern. This module
//! only decides presence; the rules about values live in the sibling modules.
//!
//! PodSpec (k8s-openapi 0.29, `v1_37`):
//!
//! | field                          | decision                                             |
//! |--------------------------------|------------------------------------------------------|
//! | activeDeadlineSeconds          | accepted                                             |
//! | affinity                       | nodeAffinity accepted; podAffinity, podAntiAffinity rejected |
//! | automountServiceAccountToken   | accepted when false or unset (no token is mounted)   |
//! | containers, initContainers     | accepted (see `containers`)                          |
//! | dnsConfig, dnsPolicy           | accepted                                             |
//! | enableServiceLinks             | accepted                                             |
//! | ephemeralContainers            | rejected                                             |
//! | evictionResponders             | rejected (alpha)                                     |
//! | hostAliases                    | accepted                                             |
//! | hostIPC, hostNetwork, hostPID  | accepted                                             |
//! | hostUsers                      | accepted when true or unset (no user namespaces)     |
//! | hostname, subdomain            | accepted                                             |
//! | hostnameOverride               | rejected                                             |
//! | imagePullSecrets               | accepted (read at pull time; README: Images)         |
//! | nodeName, nodeSelector         | accepted                                             |
//! | os                             | accepted when `linux`                                |
//! | overhead                       | rejected                                             |
//! | preemptionPolicy, priority, priorityClassName | accepted (no preemption happens)      |
//! | readinessGates                 | accepted                                             |
//! | resourceClaims                 | rejected                                             |
//! | resources (pod level)          | rejected                                             |
//! | restartPolicy                  | accepted                                             |
//! | runtimeClassName               | rejected                                             |
//! | schedulerName                  | accepted when `default-scheduler`                    |
//! | schedulingGates                | rejected                                             |
//! | schedulingGroup                | rejected (alpha)                                     |
//! | securityContext                | runAsUser, runAsGroup, runAsNonRoot, supplementalGroups, fsGroup, fsGroupChangePolicy, seccompProfile, sysctls accepted; the rest rejected |
//! | serviceAccount, serviceAccountName | accepted (no token is mounted)                   |
//! | setHostnameAsFQDN              | accepted                                             |
//! | shareProcessNamespace          | accepted                                             |
//! | terminationGracePeriodSeconds  | accepted                                             |
//! | tolerations                    | accepted                                             |
//! | topologySpreadConstraints      | rejected                                             |
//! | volumes                        | emptyDir and hostPath accepted; every other source rejected |

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, PodSecurityContext, PodSpec};

use crate::api::field::{FieldError, FieldPath, NOT_SUPPORTED_BY_PEAPOD};

mod containers;
mod volumes;

pub use self::containers::container;
pub use self::volumes::{volume, volume_sources};

/// The resources a container may request or be limited by.
pub const SUPPORTED_RESOURCES: [&str; 3] = ["cpu", "ephemeral-storage", "memory"];

fn forbid(errs: &mut Vec<FieldError>, path: &FieldPath, name: &str, set: bool) {
    if set {
        errs.push(FieldError::unimplemented(&path.child(name)));
    }
}

fn forbid_because(errs: &mut Vec<FieldError>, path: &FieldPath, name: &str, set: bool, reason: &str) {
    if set {
        errs.push(FieldError::forbidden(
            &path.child(name),
            &format!("{NOT_SUPPORTED_BY_PEAPOD}: {reason}"),
        ));
    }
}

fn only(errs: &mut Vec<FieldError>, path: &FieldPath, name: &str, value: Option<&String>, allowed: &str) {
    if let Some(value) = value.filter(|v| v.as_str() != allowed) {
        errs.push(FieldError::not_supported(&path.child(name), value, &[allowed]));
    }
}

fn listed<T>(list: &Option<Vec<T>>) -> bool {
    list.as_ref().is_some_and(|l| !l.is_empty())
}

fn mapped<K, V>(map: &Option<BTreeMap<K, V>>) -> bool {
    map.as_ref().is_some_and(|m| !m.is_empty())
}

/// PodSpec: see the table in the module header.
// The exhaustive destructure is the table of PodSpec fields (a new field fails to compile until it is
// placed); it is long because PodSpec is.
#[allow(clippy::too_many_lines)]
pub fn pod_spec(spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let PodSpec {
        active_deadline_seconds: _,
        affinity,
        automount_service_account_token,
        containers: _,
        dns_config: _,
        dns_policy: _,
        enable_service_links: _,
        ephemeral_containers,
        eviction_responders,
        host_aliases: _,
        host_ipc: _,
        host_network: _,
        host_pid: _,
        host_users,
        hostname: _,
        hostname_override,
        image_pull_secrets: _,
        init_containers: _,
        node_name: _,
        node_selector: _,
        os,
        overhead,
        preemption_policy: _,
        priority: _,
        priority_class_name: _,
        readiness_gates: _,
        resource_claims,
        resources,
        restart_policy: _,
        runtime_class_name,
        scheduler_name,
        scheduling_gates,
        scheduling_group,
        security_context,
        service_account: _,
        service_account_name: _,
        set_hostname_as_fqdn: _,
        share_process_namespace: _,
        subdomain: _,
        termination_grace_period_seconds: _,
        tolerations: _,
        topology_spread_constraints,
        volumes: _,
    } = spec;
    if let Some(affinity) = affinity {
        self::affinity(affinity, &path.child("affinity"), errs);
    }
    let token = "no service account token is mounted; set it to false or leave it unset";
    forbid_because(
        errs,
        path,
        "automountServiceAccountToken",
        *automount_service_account_token == Some(true),
        token,
    );
    forbid(errs, path, "ephemeralContainers", listed(ephemeral_containers));
    forbid(errs, path, "evictionResponders", listed(eviction_responders));
    let userns = "user namespaces are not implemented";
    forbid_because(errs, path, "hostUsers", *host_users == Some(false), userns);
    forbid(errs, path, "hostnameOverride", hostname_override.is_some());
    only(
        errs,
        &path.child("os"),
        "name",
        os.as_ref().map(|os| &os.name),
        "linux",
    );
    forbid(errs, path, "overhead", mapped(overhead));
    forbid(errs, path, "resourceClaims", listed(resource_claims));
    forbid(errs, path, "resources", resources.is_some());
    forbid(errs, path, "runtimeClassName", runtime_class_name.is_some());
    only(
        errs,
        path,
        "schedulerName",
        scheduler_name.as_ref(),
        "default-scheduler",
    );
    forbid(errs, path, "schedulingGates", listed(scheduling_gates));
    forbid(errs, path, "schedulingGroup", scheduling_group.is_some());
    if let Some(security_context) = security_context {
        pod_security_context(security_context, &path.child("securityContext"), errs);
    }
    forbid(
        errs,
        path,
        "topologySpreadConstraints",
        listed(topology_spread_constraints),
    );
}

fn affinity(affinity: &Affinity, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Affinity {
        node_affinity: _,
        pod_affinity,
        pod_anti_affinity,
    } = affinity;
    forbid(errs, path, "podAffinity", pod_affinity.is_some());
    forbid(errs, path, "podAntiAffinity", pod_anti_affinity.is_some());
}

fn pod_security_context(sc: &PodSecurityContext, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let PodSecurityContext {
        app_armor_profile,
        fs_group: _,
        fs_group_change_policy: _,
        run_as_group: _,
        run_as_non_root: _,
        run_as_user: _,
        se_linux_change_policy,
        se_linux_options,
        seccomp_profile: _,
        supplemental_groups: _,
        supplemental_groups_policy,
        sysctls: _,
        windows_options,
    } = sc;
    forbid(errs, path, "appArmorProfile", app_armor_profile.is_some());
    forbid(
        errs,
        path,
        "seLinuxChangePolicy",
        se_linux_change_policy.is_some(),
    );
    forbid(errs, path, "seLinuxOptions", se_linux_options.is_some());
    forbid(
        errs,
        path,
        "supplementalGroupsPolicy",
        supplemental_groups_policy.is_some(),
    );
    forbid(errs, path, "windowsOptions", windows_options.is_some());
}
