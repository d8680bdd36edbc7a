//! The Pod Security Standards, enforced by peapod itself: no admission plugin looks at a custom resource, so
//! Pod Security Admission never sees a PodGroup, and whoever may create one could otherwise become root on
//! the node. This is a port of the `latest` checks of k8s.io/pod-security-admission (policy/check_*.go) with
//! the same reasons, details, order and message (`violates PodSecurity "baseline:latest": host namespaces
//! (hostNetwork=true)`), plus how a namespace's `pod-security.kubernetes.io/enforce` label picks the level.
//!
//! Pure: no I/O. Deciding where the level comes from (a namespace label, a flag) and what a violation does
//! to the pod is the front ends' job.

mod checks;

pub use checks::SAFE_SYSCTLS;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The namespace label that selects the enforced level.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No restrictions.
    Privileged,
    /// Known privilege escalations prevented.
    Baseline,
    /// Current hardening best practice.
    Restricted,
}

impl Level {
    /// `privileged`, `baseline` or `restricted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// The level a namespace with `labels` enforces: its enforce label, `default` when it has none, and
    /// `restricted` when the label is not a level (Pod Security Admission fails closed the same way).
    pub fn for_namespace(labels: Option<&BTreeMap<String, String>>, default: Level) -> Level {
        match labels.and_then(|l| l.get(ENFORCE_LABEL)) {
            None => default,
            Some(value) => value.parse().unwrap_or(Level::Restricted),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            other => Err(format!(
                "must be one of privileged, baseline, restricted (got {other:?})"
            )),
        }
    }
}

/// One failed check: its reason (`host namespaces`) and, usually, a detail (`hostNetwork=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// The check's reason.
    pub reason: String,
    /// What in the spec failed it (may be empty).
    pub detail: String,
}

/// Every check of `level` that the pod fails, in Pod Security Admission's order.
pub fn check(level: Level, meta: &ObjectMeta, spec: &PodSpec) -> Vec<Forbidden> {
    let own: &[checks::Check] = match level {
        Level::Privileged => return Vec::new(),
        Level::Baseline => &checks::BASELINE_ONLY,
        Level::Restricted => &checks::RESTRICTED_ONLY,
    };
    checks::SHARED
        .iter()
        .chain(own)
        .filter_map(|check| check(meta, spec))
        .collect()
}

/// `Ok` when the pod meets `level`, else Pod Security Admission's message:
/// `violates PodSecurity "restricted:latest": reason (detail), reason (detail)`.
pub fn evaluate(level: Level, meta: &ObjectMeta, spec: &PodSpec) -> Result<(), String> {
    let failed = check(level, meta, spec);
    if failed.is_empty() {
        return Ok(());
    }
    let details: Vec<String> = failed
        .iter()
        .map(|f| {
            if f.detail.is_empty() {
                f.reason.clone()
            } else {
                format!("{} ({})", f.reason, f.detail)
            }
        })
        .collect();
    Err(format!(
        "violates PodSecurity \"{level}:latest\": {}",
        details.join(", ")
    ))
}

#[cfg(test)]
mod tests;
