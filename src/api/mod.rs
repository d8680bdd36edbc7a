//! The `PodGroup` resource: a core/v1 Pod spec and status under the `peapod.dev` API group.
//!
//! `spec` is exactly a `PodSpec` (flattened, so any Pod spec pastes in unchanged) and `status` is a
//! `PodStatus` plus the precomputed strings `kubectl get` prints. This module owns the types, the Pod
//! defaults peapod applies itself (CRDs get no core defaulting), validation, manifest parsing and the CRD.
//! It does no I/O beyond parsing the bytes it is given.

pub mod admit;
pub mod component;
pub mod crd;
pub mod defaults;
pub mod env;
pub mod field;
pub mod manifest;
pub mod pss;
pub mod quantity;
pub mod resources;
pub mod sysctl;
pub mod validation;

use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every peapod resource.
pub const GROUP: &str = "peapod.dev";
/// Served and stored version.
pub const VERSION: &str = "v1alpha1";
/// Label that binds a PodGroup to a node; kept equal to `spec.nodeName`.
pub const NODE_LABEL: &str = "peapod.dev/node";
/// The namespace of an object that names none (the API server's default).
pub const DEFAULT_NAMESPACE: &str = "default";
/// Finalizer the agent holds while a sandbox may exist for the object.
pub const FINALIZER: &str = "peapod.dev/sandbox";

/// A group of containers that share a sandbox, specified exactly like a Pod.
// kube's `printcolumn(...)` repeats `type_ = ...` by design; clippy reads that as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "peapod.dev",
    version = "v1alpha1",
    kind = "PodGroup",
    plural = "podgroups",
    shortname = "pg",
    namespaced,
    status = "PodGroupStatus",
    doc = "A group of containers run in one pause sandbox, specified exactly like a core/v1 Pod.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.readyContainers"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.displayStatus"),
    printcolumn(name = "Restarts", type_ = "integer", json_path = ".status.restarts"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "IP", type_ = "string", json_path = ".status.podIP", priority = 1),
    printcolumn(name = "Node", type_ = "string", json_path = ".spec.nodeName", priority = 1)
)]
pub struct PodGroupSpec {
    /// The Pod spec, field for field.
    #[serde(flatten)]
    pub pod: PodSpec,
}

/// Observed state: a Pod's status plus what the printer columns show.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodGroupStatus {
    /// The Pod status, computed the way the kubelet computes it.
    #[serde(flatten)]
    pub pod: PodStatus,
    /// Ready containers over all containers, as `kubectl get pods` prints it (`1/2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_containers: Option<String>,
    /// The STATUS column of `kubectl get pods` (`Running`, `Init:0/2`, `CrashLoopBackOff`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_status: Option<String>,
    /// Sum of the restart counts of the regular containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<i32>,
}

impl PodGroup {
    /// `namespace/name`, the key peapod uses in logs and maps.
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            self.namespace_or_default(),
            self.metadata.name.as_deref().unwrap_or("")
        )
    }

    /// The namespace, [`DEFAULT_NAMESPACE`] when the object names none.
    pub fn namespace_or_default(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    /// How the kubelet names a pod in messages (`format.Pod`): `name_namespace(uid)`.
    pub fn format_pod(&self, uid: &str) -> String {
        let name = self.metadata.name.as_deref().unwrap_or("");
        format!("{name}_{}({uid})", self.namespace_or_default())
    }
}

/// Whether an init container is a native sidecar, one with `restartPolicy: Always`
/// (`podutil.IsRestartableInitContainer`).
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

#[cfg(test)]
mod proptests;
