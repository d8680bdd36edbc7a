//! Admission of a pod before it first runs on this node: what Pod Security Admission would have refused at
//! the API server (no admission plugin sees a custom resource), then what the kubelet's admission refuses
//! (sysctls). A refused pod never runs; it is shown the way the kubelet shows a rejected pod: phase Failed,
//! the reason, `Pod was rejected: <message>`, and a Warning Event with the reason and message.
//!
//! A pod already running here (adopted after a restart) is not re-admitted, as Pod Security Admission only
//! judges creations: relabelling a namespace never kills what runs in it. An edit of a running pod is judged
//! by the front ends against the spec admitted on disk (`pod::admitted`): the Pod update rules, then Pod
//! Security for what PSA counts as a significant update (an image or a seccomp/AppArmor annotation). Pure.

use crate::api::pss::{self, Level};
use crate::api::PodGroup;

use super::sysctl;

/// The reason of a pod refused by the Pod Security Standards.
pub const POD_SECURITY_REASON: &str = "PodSecurityViolation";

/// Every reason a pod can be refused with before it runs (validation's included), for front ends that
/// must tell a refused pod from one that ran.
pub const REJECTION_REASONS: [&str; 3] = ["InvalidSpec", POD_SECURITY_REASON, sysctl::FORBIDDEN_REASON];

/// What the node admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmitConfig {
    /// The Pod Security Standards level where nothing more specific applies (`--pod-security-level`).
    pub level: Level,
    /// `--allowed-unsafe-sysctls`.
    pub allowed_unsafe_sysctls: Vec<String>,
}

impl Default for AdmitConfig {
    fn default() -> Self {
        AdmitConfig {
            level: Level::Baseline,
            allowed_unsafe_sysctls: Vec::new(),
        }
    }
}

/// Why a pod was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `PodSecurityViolation` or `SysctlForbidden`.
    pub reason: &'static str,
    /// What the Event says (`violates PodSecurity "baseline:latest": ...`).
    pub message: String,
}

impl Rejection {
    /// What the pod's status says (the kubelet's `rejectPod`).
    pub fn status_message(&self) -> String {
        format!("Pod was rejected: {}", self.message)
    }
}

/// Admits `pod` at the Pod Security Standards `level`, then by the node's sysctl allowlist.
pub fn admit(pod: &PodGroup, level: Level, allowed_unsafe_sysctls: &[String]) -> Result<(), Rejection> {
    pss::evaluate(level, &pod.metadata, &pod.spec.pod).map_err(|message| Rejection {
        reason: POD_SECURITY_REASON,
        message,
    })?;
    sysctl::admit(&pod.spec.pod, allowed_unsafe_sysctls).map_err(|message| Rejection {
        reason: sysctl::FORBIDDEN_REASON,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> PodGroup {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "peapod.dev/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn pod_security_comes_first_then_sysctls() {
        let host = pod(
            serde_json::json!({"hostNetwork": true, "containers": [{"name": "a"}],
            "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]}}),
        );
        let r = admit(&host, Level::Baseline, &[]).unwrap_err();
        assert_eq!(r.reason, "PodSecurityViolation");
        assert!(
            r.message
                .starts_with(r#"violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#),
            "{}",
            r.message
        );
        assert!(r
            .status_message()
            .starts_with("Pod was rejected: violates PodSecurity"));
        let r = admit(&host, Level::Privileged, &[]).unwrap_err();
        assert_eq!(r.reason, "SysctlForbidden");
        assert_eq!(
            r.message,
            r#"forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled"#
        );
        let plain = pod(serde_json::json!({"containers": [{"name": "a"}]}));
        assert!(admit(&plain, Level::Baseline, &[]).is_ok());
        assert!(admit(&plain, Level::Restricted, &[]).is_err());
    }
}
