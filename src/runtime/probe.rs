//! Probe and lifecycle-hook handlers: one attempt of an exec, httpGet, tcpSocket or grpc action, with the
//! kubelet's outcomes and wording (pkg/probe/*, pkg/kubelet/prober/prober.go, pkg/kubelet/lifecycle).
//!
//! This module is the transport only: it knows nothing of periods, thresholds, restarts or Events (the pod
//! module's probe manager decides those). Exec actions run through the OCI runtime (`runc exec`), network
//! actions connect from inside the pod's network namespace. Nothing here panics on user input; every
//! process started is reaped or killed before a call returns.

mod dial;
mod exec;
mod grpc;
mod hook;
mod http;
mod tls;

pub use hook::HookError;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::runtime::layout::RuntimeConfig;

/// Result of one probe attempt (the kubelet's probe.Result with its output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The action succeeded.
    Success,
    /// Success with a ProbeWarning event carrying this message.
    Warning(String),
    /// The action failed; the text is the probe output the kubelet puts in its Unhealthy event.
    Failure(String),
    /// The probe errored (the kubelet discards the attempt); the text is the error.
    Unknown(String),
}

/// What a probe or hook acts on.
pub struct Target<'a> {
    /// Runtime settings: `oci_runtime` and `runtime_root()` for exec.
    pub cfg: &'a RuntimeConfig,
    /// OCI runtime id of the container, for exec.
    pub container_id: &'a str,
    /// The container spec (named ports, env for exec probes).
    pub container: &'a Container,
    /// The kubelet's format.Pod: `name_namespace(uid)`.
    pub pod: &'a str,
    /// Pinned pod network namespace; `None` means host network.
    pub netns: Option<&'a Path>,
    /// The pod IP, the default host of network actions.
    pub pod_ip: Option<&'a str>,
}

/// Major.minor put in `User-Agent` (`kube-probe/1.33`, `kube-lifecycle/1.33`).
pub const KUBE_VERSION: &str = "1.33";

/// The kubelet reads at most this much of an exec output or an HTTP body (10 KiB).
pub const MAX_OUTPUT: usize = 10 << 10;

/// Runs one attempt of `probe` (exec, httpGet, tcpSocket or grpc) within its timeoutSeconds (default 1).
pub async fn probe(target: &Target<'_>, probe: &Probe) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(action) = &probe.exec {
        let command = static_command(action.command.as_deref().unwrap_or_default(), target.container);
        return exec::probe(target, &command, timeout).await;
    }
    if let Some(action) = &probe.http_get {
        let req = match http::Request::for_action(action, target, "probe") {
            Ok(req) => req,
            Err(e) => return Outcome::Unknown(e),
        };
        return http::probe(&dial::Dialer::new(target.netns), req, timeout).await;
    }
    if let Some(action) = &probe.tcp_socket {
        let port = match resolve_port(&action.port, target.container) {
            Ok(port) => port,
            Err(e) => return Outcome::Unknown(e.to_string()),
        };
        let host = default_host(action.host.as_deref(), target.pod_ip);
        let dialer = dial::Dialer::new(target.netns);
        return match tokio::time::timeout(timeout, dialer.dial(host, port)).await {
            Ok(Ok(_stream)) => Outcome::Success,
            Ok(Err(e)) => Outcome::Failure(e),
            Err(_) => Outcome::Failure(dial::timeout_error(host, port)),
        };
    }
    if let Some(action) = &probe.grpc {
        let Ok(port) = u16::try_from(action.port) else {
            return Outcome::Unknown(format!("invalid port number: {}", action.port));
        };
        let host = default_host(None, target.pod_ip);
        let service = action.service.as_deref().unwrap_or_default();
        return grpc::probe(&dial::Dialer::new(target.netns), host, port, service, timeout).await;
    }
    Outcome::Unknown(format!(
        "missing probe handler for {}:{}",
        target.pod, target.container.name
    ))
}

/// Runs a lifecycle hook handler (exec, httpGet, sleep; tcpSocket fails as the kubelet's does).
///
/// `limit`: cancel after this long (preStop runs within the grace period); `None` = no limit. `Err` carries
/// the message the kubelet's handler runner produces (FailedPostStartHook/FailedPreStopHook events).
pub async fn hook(
    target: &Target<'_>,
    handler: &LifecycleHandler,
    limit: Option<Duration>,
) -> Result<(), HookError> {
    hook::run(target, handler, limit).await
}

/// Why a probe's or hook's port cannot be resolved; the text is the kubelet's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// A named port the container does not declare.
    #[error("port {} not found", go_quote(name))]
    NotFound {
        /// The port name.
        name: String,
    },
    /// A number outside 1..=65535.
    #[error("invalid port number: {number}")]
    Invalid {
        /// The number.
        number: i64,
    },
}

/// The kubelet's probe.ResolveContainerPort: a number as is, a name looked up in the container's ports.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, PortError> {
    let number = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| i64::from(p.container_port))
            .ok_or_else(|| PortError::NotFound { name: name.clone() })?,
    };
    match u16::try_from(number) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(PortError::Invalid { number }),
    }
}

/// Host of a network action: the explicit host, else the pod IP, else loopback.
fn default_host<'a>(host: Option<&'a str>, pod_ip: Option<&'a str>) -> &'a str {
    host.filter(|h| !h.is_empty())
        .or(pod_ip.filter(|ip| !ip.is_empty()))
        .unwrap_or("127.0.0.1")
}

/// The kubelet's ExpandContainerCommandOnlyStatic: `$(VAR)` from the container's literal env values.
fn static_command(command: &[String], container: &Container) -> Vec<String> {
    let env = container.env.as_deref().unwrap_or_default();
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|e| e.name == name)
            .map(|e| e.value.clone().unwrap_or_default())
    };
    command
        .iter()
        .map(|arg| crate::api::env::expand(arg, &lookup))
        .collect()
}

/// Go's net.JoinHostPort.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's `%q` of a string (ASCII escapes as Go writes them).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%v` of a time.Duration of whole seconds (`1s`, `1m30s`, `1h0m0s`).
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests;
