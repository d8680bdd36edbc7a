//! The downward API of a container's environment: `fieldRef` values from the pod (k8s
//! `podFieldSelectorRuntimeValue`). Pure.

use k8s_openapi::api::core::v1::EnvVar;

use crate::api::env::ValueSource;
use crate::api::PodGroup;

/// A `fieldRef.fieldPath` peapod cannot resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported fieldPath: {path}")]
pub struct FieldPathError {
    /// The field path.
    pub path: String,
}

/// Resolves `fieldRef` environment variables from the pod.
pub(super) struct PodFields<'a> {
    pub(super) pod: &'a PodGroup,
    pub(super) host_ip: Option<&'a str>,
    pub(super) pod_ips: &'a [String],
}

impl ValueSource for PodFields<'_> {
    fn value_from(&self, var: &EnvVar) -> Result<String, String> {
        let from = var.value_from.as_ref().ok_or("no value source")?;
        if let Some(f) = &from.field_ref {
            // The trait's error is the message `api::env::container_env` passes on.
            return field_value(self.pod, &f.field_path, self.host_ip, self.pod_ips)
                .map_err(|e| e.to_string());
        }
        Err(format!(
            "env {}: only fieldRef value sources are supported",
            var.name
        ))
    }
}

/// The value of a downward API field path (k8s `podFieldSelectorRuntimeValue`).
pub fn field_value(
    pod: &PodGroup,
    path: &str,
    host_ip: Option<&str>,
    pod_ips: &[String],
) -> Result<String, FieldPathError> {
    let meta = &pod.metadata;
    let spec = &pod.spec.pod;
    let subscript = |prefix: &str| -> Option<String> {
        path.strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")
            .map(String::from)
    };
    if let Some(key) = subscript("metadata.labels") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&key))
            .cloned()
            .unwrap_or_default());
    }
    if let Some(key) = subscript("metadata.annotations") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(&key))
            .cloned()
            .unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta
            .namespace
            .clone()
            .unwrap_or_else(|| crate::api::DEFAULT_NAMESPACE.into()),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.node_name.clone().unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.clone().unwrap_or_default(),
        "status.hostIP" => host_ip.unwrap_or_default().to_string(),
        "status.hostIPs" => host_ip.unwrap_or_default().to_string(),
        "status.podIP" => pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => pod_ips.join(","),
        other => {
            return Err(FieldPathError {
                path: other.to_string(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_path_error_names_the_path() {
        let cases = [(
            FieldPathError {
                path: "spec.hostname".into(),
            },
            "unsupported fieldPath: spec.hostname",
        )];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
