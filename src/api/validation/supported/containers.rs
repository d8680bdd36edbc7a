//! What peapod implements of a Container (init, sidecar or regular) and of what it holds: ports, env
//! sources, resources, security context, mounts, lifecycle hooks and probes. Same rule as the parent:
//! destructure exhaustively, reject unimplemented fields by name.
//!
//! | Container field        | decision                                                          |
//! |------------------------|-------------------------------------------------------------------|
//! | lifecycle, probes      | accepted on regular containers and sidecars (regular init containers: see `container` rules) |
//! | lifecycle.stopSignal   | rejected                                                          |
//! | httpGet.protocol, grpc.mode | rejected (alpha)                                             |
//! | restartPolicy          | accepted (values checked in `container`)                          |
//! | restartPolicyRules     | rejected                                                          |
//! | envFrom, resizePolicy, stdin, stdinOnce, tty, volumeDevices | rejected                      |

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVarSource, GRPCAction, HTTPGetAction, Lifecycle, LifecycleHandler, Probe,
    ResourceRequirements, SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{forbid, forbid_because, listed, only, SUPPORTED_RESOURCES};
use crate::api::field::{FieldError, FieldPath, NOT_SUPPORTED_BY_PEAPOD};

/// Container, init or regular. For regular init containers (not sidecars) the lifecycle and probe fields
/// are left to the init-container rule, which rejects them with the Kubernetes message.
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
        restart_policy: _,
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
    if !is_init || crate::api::is_sidecar(c) {
        if let Some(l) = lifecycle {
            self::lifecycle(l, &path.child("lifecycle"), errs);
        }
        let probes = [
            ("livenessProbe", liveness_probe),
            ("readinessProbe", readiness_probe),
            ("startupProbe", startup_probe),
        ];
        for (name, p) in probes {
            if let Some(p) = p {
                probe(p, &path.child(name), errs);
            }
        }
    }
    for (i, port) in ports.iter().flatten().enumerate() {
        container_port(port, &path.child("ports").index(i), host_network, errs);
    }
    forbid(errs, path, "resizePolicy", listed(resize_policy));
    if let Some(resources) = resources {
        resource_requirements(resources, &path.child("resources"), errs);
    }
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

fn lifecycle(l: &Lifecycle, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Lifecycle {
        post_start,
        pre_stop,
        stop_signal,
    } = l;
    for (name, handler) in [("postStart", post_start), ("preStop", pre_stop)] {
        if let Some(h) = handler {
            lifecycle_handler(h, &path.child(name), errs);
        }
    }
    forbid(errs, path, "stopSignal", stop_signal.is_some());
}

fn lifecycle_handler(h: &LifecycleHandler, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let LifecycleHandler {
        exec: _,
        http_get,
        sleep: _,
        tcp_socket: _,
    } = h;
    if let Some(http) = http_get {
        http_get_action(http, &path.child("httpGet"), errs);
    }
}

fn probe(p: &Probe, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Probe {
        exec: _,
        failure_threshold: _,
        grpc,
        http_get,
        initial_delay_seconds: _,
        period_seconds: _,
        success_threshold: _,
        tcp_socket: _,
        termination_grace_period_seconds: _,
        timeout_seconds: _,
    } = p;
    if let Some(http) = http_get {
        http_get_action(http, &path.child("httpGet"), errs);
    }
    if let Some(grpc) = grpc {
        let GRPCAction {
            mode,
            port: _,
            service: _,
        } = grpc;
        forbid(errs, &path.child("grpc"), "mode", mode.is_some());
    }
}

fn http_get_action(http: &HTTPGetAction, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let HTTPGetAction {
        host: _,
        http_headers: _,
        path: _,
        port: _,
        protocol,
        scheme: _,
    } = http;
    forbid(errs, path, "protocol", protocol.is_some());
}
