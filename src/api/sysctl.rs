//! Pod sysctls: which ones a pod may set (the kubelet's sysctl admission, pkg/kubelet/sysctl: the safe set
//! plus `--allowed-unsafe-sysctls`, only namespaced ones, never the net ones with hostNetwork or the IPC ones
//! with hostIPC), what their names and values may look like, and the `linux.sysctl` map the OCI runtime
//! writes inside the sandbox's network and IPC namespaces (never the host's).
//!
//! Values are hostile: CRI-O's CVE-2022-0811 ("cr8escape") smuggled a second `key=value` through a `+` in
//! a value and set `kernel.core_pattern` on the host. Values here carry no `+`, `=` or control character,
//! and are written by runc, one file per name, inside the container's namespaces. Pure.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::PodSpec;

use crate::api::pss::SAFE_SYSCTLS;

/// The kubelet's admission reason for a pod with a sysctl it may not set.
pub const FORBIDDEN_REASON: &str = "SysctlForbidden";
/// Longest sysctl name (`SysctlMaxLength`).
const MAX_NAME: usize = 253;
/// Longest value peapod passes on (a page, what /proc/sys files take).
const MAX_VALUE: usize = 4096;
/// The API's name pattern, as its error message shows it.
pub const NAME_PATTERN: &str = r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$";

/// The kernel namespace a sysctl belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// The IPC namespace (`hostIPC` shares the host's).
    Ipc,
    /// The network namespace (`hostNetwork` shares the host's).
    Net,
}

impl Namespace {
    fn as_str(self) -> &'static str {
        match self {
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
        }
    }
}

/// The namespace of a (normalized) sysctl name, `None` when it is not namespaced (`NamespacedBy`).
pub fn namespace_of(name: &str) -> Option<Namespace> {
    if name == "kernel.sem"
        || ["kernel.shm", "kernel.msg", "fs.mqueue."]
            .iter()
            .any(|p| name.starts_with(p))
    {
        return Some(Namespace::Ipc);
    }
    name.starts_with("net.").then_some(Namespace::Net)
}

/// `net/ipv4/ip_forward` as `net.ipv4.ip_forward` (the kubelet's `NormalizeName`: when `/` comes first, the
/// two separators swap, so `net/ipv4/conf/eno2.100/rp_filter` keeps its dotted interface name).
pub fn normalize(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes().get(i) == Some(&b'/') => name
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    }
}

/// Whether `name` is a valid sysctl name for the API (`IsValidSysctlName`).
pub fn valid_name(name: &str) -> bool {
    let segment_ok = |s: &str| {
        let b = s.as_bytes();
        let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(&f), Some(&l)) => {
                edge(f) && edge(l) && b.iter().all(|&c| edge(c) || c == b'-' || c == b'_')
            }
            _ => false,
        }
    };
    name.len() <= MAX_NAME && name.split(['.', '/']).all(segment_ok)
}

/// Why a sysctl value may not be written (`None`: it may).
pub fn value_problem(value: &str) -> Option<&'static str> {
    if value.len() > MAX_VALUE {
        return Some("must be at most 4096 bytes");
    }
    if value.contains(['+', '=']) {
        return Some("must not contain '+' or '='");
    }
    if value.chars().any(char::is_control) {
        return Some("must not contain control characters");
    }
    None
}

/// An `--allowed-unsafe-sysctls` entry the kubelet would refuse, with its wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    /// Not a sysctl name (or `prefix*` pattern).
    #[error("sysctl {pattern:?} must have at most {MAX_NAME} characters and match regular expression {NAME_PATTERN}")]
    InvalidName {
        /// The entry as given.
        pattern: String,
    },
    /// A sysctl outside every namespace: allowing it would let a pod set the host's.
    #[error("the sysctl {pattern:?} is not known to be namespaced")]
    NotNamespaced {
        /// The entry as given.
        pattern: String,
    },
}

/// Checks `--allowed-unsafe-sysctls`: names or `prefix*` patterns of namespaced sysctls only.
pub fn check_allowlist(patterns: &[String]) -> Result<(), AllowlistError> {
    for p in patterns {
        let name = normalize(p);
        let (bare, prefix) = match name.strip_suffix('*') {
            Some(prefix) => (prefix.trim_end_matches(['.', '/']), true),
            None => (name.as_str(), false),
        };
        if !valid_name(bare) {
            return Err(AllowlistError::InvalidName { pattern: p.clone() });
        }
        let namespaced = if prefix {
            namespace_of(name.trim_end_matches('*'))
        } else {
            namespace_of(bare)
        };
        if namespaced.is_none() {
            return Err(AllowlistError::NotNamespaced { pattern: p.clone() });
        }
    }
    Ok(())
}

/// The kubelet's sysctl admission: `Err` carries the message of a `SysctlForbidden` rejection
/// (`forbidden sysctl: "net.core.somaxconn" not allowlisted`).
pub fn admit(spec: &PodSpec, allowed_unsafe: &[String]) -> Result<(), String> {
    let host_net = spec.host_network == Some(true);
    let host_ipc = spec.host_ipc == Some(true);
    for s in spec
        .security_context
        .iter()
        .flat_map(|sc| sc.sysctls.iter().flatten())
    {
        let name = normalize(&s.name);
        let allowed = SAFE_SYSCTLS.contains(&name.as_str())
            || allowed_unsafe
                .iter()
                .any(|p| match normalize(p).strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => normalize(p) == name,
                });
        let problem = match namespace_of(&name) {
            _ if !allowed => Some("not allowlisted".to_string()),
            None => Some("not allowlisted".to_string()),
            Some(ns) if (ns == Namespace::Net && host_net) || (ns == Namespace::Ipc && host_ipc) => {
                Some(format!("not allowed with host {} enabled", ns.as_str()))
            }
            Some(_) => None,
        };
        if let Some(problem) = problem {
            return Err(format!("forbidden sysctl: {name:?} {problem}"));
        }
    }
    Ok(())
}

/// The pod's sysctls as the OCI `linux.sysctl` map, refusing a name or value that should never have got
/// this far.
pub fn to_oci(spec: &PodSpec) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for s in spec
        .security_context
        .iter()
        .flat_map(|sc| sc.sysctls.iter().flatten())
    {
        let name = normalize(&s.name);
        if !valid_name(&name) || namespace_of(&name).is_none() {
            return Err(format!("sysctl {:?} is not a namespaced sysctl", s.name));
        }
        if let Some(problem) = value_problem(&s.value) {
            return Err(format!("sysctl {:?} value {:?} {problem}", s.name, s.value));
        }
        out.insert(name, s.value.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
