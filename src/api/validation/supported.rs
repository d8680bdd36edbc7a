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
//! | containers, initContainers     | accepted (see `container`)                           |
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

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, EnvVarSource, PodSecurityContext, PodSpec, ResourceRequirements,
    SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::api::field::{FieldError, FieldPath, NOT_SUPPORTED_BY_PEAPOD};

mod volumes;

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

/// Container, init or regular. For init containers the lifecycle and probe fields are left to the
/// init-container rule, which rejects them with the Kubernetes message.
pub fn container(
    c: &Container,
    path: &FieldPath,
    is_init: bool,
    host_network: bool,
    errs: &mut Vec<FieldError>,
) {
    let Container {
        args: _,
        command: _,
        env,
        env_from,
        image: _,
        image_pull_policy: _,
        lifecycle,
        liveness_probe,
        name: _,
        ports,
        readiness_probe,
        resize_policy,
        resources,
        restart_policy,
        restart_policy_rules,
        security_context,
        startup_probe,
        stdin,
        stdin_once,
        termination_message_path: _,
        termination_message_policy: _,
        tty,
        volume_devices,
        volume_mounts,
        working_dir: _,
    } = c;
    for (i, var) in env.iter().flatten().enumerate() {
        if let Some(source) = &var.value_from {
            env_var_source(source, &path.child("env").index(i).child("valueFrom"), errs);
        }
    }
    forbid(errs, path, "envFrom", listed(env_from));
    if !is_init {
        forbid(errs, path, "lifecycle", lifecycle.is_some());
        forbid(errs, path, "livenessProbe", liveness_probe.is_some());
        forbid(errs, path, "readinessProbe", readiness_probe.is_some());
        forbid(errs, path, "startupProbe", startup_probe.is_some());
    }
    for (i, port) in ports.iter().flatten().enumerate() {
        container_port(port, &path.child("ports").index(i), host_network, errs);
    }
    forbid(errs, path, "resizePolicy", listed(resize_policy));
    if let Some(resources) = resources {
        resource_requirements(resources, &path.child("resources"), errs);
    }
    forbid(errs, path, "restartPolicy", restart_policy.is_some());
    forbid(errs, path, "restartPolicyRules", listed(restart_policy_rules));
    if let Some(sc) = security_context {
        container_security_context(sc, &path.child("securityContext"), errs);
    }
    forbid(errs, path, "stdin", *stdin == Some(true));
    forbid(errs, path, "stdinOnce", *stdin_once == Some(true));
    forbid(errs, path, "tty", *tty == Some(true));
    forbid(errs, path, "volumeDevices", listed(volume_devices));
    for (i, mount) in volume_mounts.iter().flatten().enumerate() {
        volume_mount(mount, &path.child("volumeMounts").index(i), errs);
    }
}

fn container_port(port: &ContainerPort, path: &FieldPath, host_network: bool, errs: &mut Vec<FieldError>) {
    let ContainerPort {
        container_port: _,
        host_ip,
        host_port,
        name: _,
        protocol: _,
    } = port;
    forbid(
        errs,
        path,
        "hostIP",
        host_ip.as_ref().is_some_and(|ip| !ip.is_empty()),
    );
    let mapped = host_port.is_some_and(|p| p != 0) && !host_network;
    forbid_because(
        errs,
        path,
        "hostPort",
        mapped,
        "port mapping is not implemented; hostPort needs hostNetwork: true",
    );
}

fn env_var_source(source: &EnvVarSource, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let EnvVarSource {
        config_map_key_ref,
        field_ref: _,
        file_key_ref,
        resource_field_ref: _,
        secret_key_ref,
    } = source;
    forbid(errs, path, "configMapKeyRef", config_map_key_ref.is_some());
    forbid(errs, path, "fileKeyRef", file_key_ref.is_some());
    forbid(errs, path, "secretKeyRef", secret_key_ref.is_some());
}

fn resource_requirements(resources: &ResourceRequirements, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let ResourceRequirements {
        claims,
        limits,
        requests,
    } = resources;
    forbid(errs, path, "claims", listed(claims));
    let unsupported = |list: &Option<BTreeMap<String, Quantity>>, name: &str| {
        let names = list.iter().flat_map(|m| m.keys());
        let paths: Vec<FieldPath> = names
            .filter(|k| !SUPPORTED_RESOURCES.contains(&k.as_str()))
            .map(|k| path.child(name).key(k))
            .collect();
        paths
    };
    for p in unsupported(limits, "limits")
        .into_iter()
        .chain(unsupported(requests, "requests"))
    {
        errs.push(FieldError::unimplemented(&p));
    }
    // The kubelet enforces ephemeral-storage limits by eviction, which peapod does not do; requests only
    // matter to scheduling and are accepted.
    if limits
        .as_ref()
        .is_some_and(|l| l.contains_key("ephemeral-storage"))
    {
        errs.push(FieldError::forbidden(
            &path.child("limits").key("ephemeral-storage"),
            &format!("{NOT_SUPPORTED_BY_PEAPOD}: ephemeral-storage limits are not enforced"),
        ));
    }
}

fn container_security_context(sc: &SecurityContext, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let SecurityContext {
        allow_privilege_escalation: _,
        app_armor_profile,
        capabilities: _,
        privileged: _,
        proc_mount: _,
        read_only_root_filesystem: _,
        run_as_group: _,
        run_as_non_root: _,
        run_as_user: _,
        se_linux_options,
        seccomp_profile: _,
        windows_options,
    } = sc;
    forbid(errs, path, "appArmorProfile", app_armor_profile.is_some());
    forbid(errs, path, "seLinuxOptions", se_linux_options.is_some());
    forbid(errs, path, "windowsOptions", windows_options.is_some());
}

fn volume_mount(mount: &VolumeMount, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let VolumeMount {
        bind_mount_options,
        mount_path: _,
        mount_propagation,
        name: _,
        read_only: _,
        recursive_read_only,
        sub_path: _,
        sub_path_expr: _,
    } = mount;
    forbid(errs, path, "bindMountOptions", listed(bind_mount_options));
    only(errs, path, "mountPropagation", mount_propagation.as_ref(), "None");
    only(
        errs,
        path,
        "recursiveReadOnly",
        recursive_read_only.as_ref(),
        "Disabled",
    );
}
