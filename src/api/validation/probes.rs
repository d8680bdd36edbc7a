//! Rules for lifecycle hooks and probes, ported from `validateLifecycle`, `validateHandler`,
//! `validateProbe` and its liveness, readiness and startup variants in k8s
//! pkg/apis/core/validation/validation.go, with their messages and field paths.
//!
//! Which containers may carry hooks and probes is decided in `container`; presence of unimplemented
//! sub-fields (`stopSignal`, alpha fields) in `supported`. Expects a defaulted object: probe periods and
//! thresholds and httpGet path and scheme are filled by `defaults`, so only negative values remain to
//! reject here, as in Kubernetes.

use k8s_openapi::api::core::v1::{
    Container, ExecAction, GRPCAction, HTTPGetAction, Lifecycle, Probe, SleepAction, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::rules;
use crate::api::field::{FieldError, FieldPath};

const NEGATIVE: &str = "must be greater than or equal to 0";
const HTTP_HEADER_NAME_MSG: &str = "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')";

/// The kind of a probe, for the rules that differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// `livenessProbe`.
    Liveness,
    /// `readinessProbe`.
    Readiness,
    /// `startupProbe`.
    Startup,
}

/// The handler of a hook or a probe (`commonHandler`): at most one action may be set.
struct Handler<'a> {
    exec: Option<&'a ExecAction>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a TCPSocketAction>,
    grpc: Option<&'a GRPCAction>,
    sleep: Option<&'a SleepAction>,
}

/// The lifecycle and probe rules of regular containers and sidecars.
pub fn validate_hooks_and_probes(
    c: &Container,
    grace: Option<i64>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    if let Some(l) = &c.lifecycle {
        validate_lifecycle(l, grace, &path.child("lifecycle"), errs);
    }
    let all = [
        (ProbeKind::Liveness, "livenessProbe", &c.liveness_probe),
        (ProbeKind::Readiness, "readinessProbe", &c.readiness_probe),
        (ProbeKind::Startup, "startupProbe", &c.startup_probe),
    ];
    for (kind, name, probe) in all {
        if let Some(probe) = probe {
            validate_probe(kind, probe, grace, &path.child(name), errs);
        }
    }
}

/// `validateLifecycle`; `grace` is the pod's `terminationGracePeriodSeconds`.
pub fn validate_lifecycle(l: &Lifecycle, grace: Option<i64>, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (name, hook) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
        if let Some(h) = hook {
            let handler = Handler {
                exec: h.exec.as_ref(),
                http_get: h.http_get.as_ref(),
                tcp_socket: h.tcp_socket.as_ref(),
                grpc: None,
                sleep: h.sleep.as_ref(),
            };
            validate_handler(&handler, grace, &path.child(name), errs);
        }
    }
}

/// `validateLivenessProbe`, `validateReadinessProbe` and `validateStartupProbe`.
pub fn validate_probe(
    kind: ProbeKind,
    p: &Probe,
    grace: Option<i64>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let handler = Handler {
        exec: p.exec.as_ref(),
        http_get: p.http_get.as_ref(),
        tcp_socket: p.tcp_socket.as_ref(),
        grpc: p.grpc.as_ref(),
        sleep: None,
    };
    validate_handler(&handler, grace, path, errs);
    let numbers = [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ];
    for (name, value) in numbers {
        let value = value.unwrap_or(0);
        if value < 0 {
            errs.push(FieldError::invalid(&path.child(name), value, NEGATIVE));
        }
    }
    let grace_path = path.child("terminationGracePeriodSeconds");
    if let Some(g) = p.termination_grace_period_seconds.filter(|g| *g <= 0) {
        errs.push(FieldError::invalid(&grace_path, g, "must be greater than 0"));
    }
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            let success = p.success_threshold.unwrap_or(0);
            if success != 1 {
                errs.push(FieldError::invalid(
                    &path.child("successThreshold"),
                    success,
                    "must be 1",
                ));
            }
        }
        ProbeKind::Readiness => {
            if let Some(g) = p.termination_grace_period_seconds {
                errs.push(FieldError::invalid(
                    &grace_path,
                    g,
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
}

/// `validateHandler`: exactly one action, each valid.
fn validate_handler(h: &Handler<'_>, grace: Option<i64>, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let mut count = 0;
    let mut one = |name: &str, set: bool, errs: &mut Vec<FieldError>| -> Option<FieldPath> {
        if !set {
            return None;
        }
        let p = path.child(name);
        count += 1;
        if count > 1 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 handler type",
            ));
            return None;
        }
        Some(p)
    };
    if let Some(p) = one("exec", h.exec.is_some(), errs) {
        if h.exec.and_then(|e| e.command.as_ref()).is_none_or(Vec::is_empty) {
            errs.push(FieldError::required(&p.child("command"), ""));
        }
    }
    if let (Some(p), Some(http)) = (one("httpGet", h.http_get.is_some(), errs), h.http_get) {
        http_get(http, &p, errs);
    }
    if let (Some(p), Some(tcp)) = (one("tcpSocket", h.tcp_socket.is_some(), errs), h.tcp_socket) {
        port_num_or_name(&tcp.port, &p.child("port"), errs);
    }
    if let (Some(p), Some(grpc)) = (one("grpc", h.grpc.is_some(), errs), h.grpc) {
        for msg in rules::port_number(grpc.port) {
            errs.push(FieldError::invalid(&p.child("port"), grpc.port, &msg));
        }
    }
    if let (Some(p), Some(sleep)) = (one("sleep", h.sleep.is_some(), errs), h.sleep) {
        // Zero is allowed since PodLifecycleSleepActionAllowZero (GA in 1.34). Without a grace period
        // the pod-level error is the one to report.
        if let Some(grace) = grace.filter(|g| sleep.seconds < 0 || sleep.seconds > *g) {
            let detail =
                format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})");
            errs.push(FieldError::invalid(&p, sleep.seconds, &detail));
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

/// `validateHTTPGetAction`.
fn http_get(http: &HTTPGetAction, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if http.path.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    port_num_or_name(&http.port, &path.child("port"), errs);
    let scheme = http.scheme.as_deref().unwrap_or("");
    if !matches!(scheme, "HTTP" | "HTTPS") {
        errs.push(FieldError::not_supported(
            &path.child("scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    for header in http.http_headers.iter().flatten() {
        let valid = !header.name.is_empty()
            && header
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            errs.push(FieldError::invalid(
                &path.child("httpHeaders"),
                &header.name,
                HTTP_HEADER_NAME_MSG,
            ));
        }
    }
}

/// `ValidatePortNumOrName`: 1–65535, or an IANA_SVC_NAME.
fn port_num_or_name(port: &IntOrString, path: &FieldPath, errs: &mut Vec<FieldError>) {
    match port {
        IntOrString::Int(n) => {
            for msg in rules::port_number(*n) {
                errs.push(FieldError::invalid(path, *n, &msg));
            }
        }
        IntOrString::String(name) => errs.extend(rules::invalid_each(path, name, rules::port_name(name))),
    }
}
