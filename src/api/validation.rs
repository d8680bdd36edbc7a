//! Validation of a `PodGroup` the way the API server validates a Pod (`ValidatePodCreate` and
//! `ValidatePodUpdate` in k8s pkg/apis/core/validation/validation.go), plus peapod's own rule: every
//! field peapod does not implement is rejected by name (`Forbidden: not supported by peapod`).
//!
//! Validation expects an object that went through `defaults::apply_defaults`, exactly as Kubernetes
//! validates after defaulting: a field the defaults fill in (restartPolicy, imagePullPolicy, ...) is
//! `Required` when missing. Messages follow k8s.io/apimachinery field errors to the letter where the
//! rule is Kubernetes'; peapod's additions say so. This module is pure: no I/O, no panics on any input.

mod capabilities;
mod container;
mod env;
mod pod;
mod ports;
mod probes;
mod rules;
mod scheduling;
mod security;
mod supported;
mod system_paths;
mod update;
mod volumes;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use self::capabilities::{ALL as ALL_CAPABILITIES, KNOWN_CAPABILITIES};
pub use self::container::MAX_CONTAINERS;
pub use self::env::split_subscript;
pub use self::supported::SUPPORTED_RESOURCES;
pub use self::system_paths::masked_paths;
pub use self::update::{validate_update, UPDATABLE_FIELDS};
use super::PodGroup;
pub use crate::api::field::{BadValue, ErrorKind, FieldError, FieldPath, ValidationErrors};

/// The largest total size of all annotations of one object (`TotalAnnotationSizeLimitB`).
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Validates a defaulted PodGroup for creation. The error lists every problem found.
pub fn validate(pg: &PodGroup) -> Result<(), ValidationErrors> {
    ValidationErrors::check(errors(pg))
}

/// Whether `uid` has the form the API server generates (a lowercase UUID), the only form peapod names
/// directories and cgroups after.
pub fn is_valid_uid(uid: &str) -> bool {
    rules::uuid(uid).is_empty()
}

/// Every problem of `pg`, in the order they were found.
fn errors(pg: &PodGroup) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_metadata(&pg.metadata, &FieldPath::new("metadata"), &mut errs);
    pod::validate_spec(&pg.spec.pod, &FieldPath::new("spec"), &mut errs);
    errs
}

/// `ValidateObjectMeta` for a namespaced object named like a Pod.
fn validate_metadata(meta: &ObjectMeta, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let name = meta.name.as_deref().unwrap_or("");
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if name.is_empty() && generate_name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else if name.is_empty() {
        let detail = "peapod needs a name: generateName is only honoured by the API server";
        errs.push(FieldError::required(&path.child("name"), detail));
    } else {
        errs.extend(rules::invalid_each(
            &path.child("name"),
            name,
            rules::dns1123_subdomain(name),
        ));
    }
    let namespace = meta.namespace.as_deref().unwrap_or("");
    if namespace.is_empty() {
        errs.push(FieldError::required(&path.child("namespace"), ""));
    } else {
        errs.extend(rules::invalid_each(
            &path.child("namespace"),
            namespace,
            rules::dns1123_label(namespace),
        ));
    }
    // The API server generates it; a manifest's own is checked, as it names the pod's directories and cgroup.
    if let Some(uid) = meta.uid.as_deref().filter(|u| !u.is_empty()) {
        errs.extend(rules::invalid_each(&path.child("uid"), uid, rules::uuid(uid)));
    }
    if let Some(labels) = &meta.labels {
        scheduling::validate_labels(labels, &path.child("labels"), errs);
    }
    if let Some(annotations) = &meta.annotations {
        validate_annotations(annotations, &path.child("annotations"), errs);
    }
}

/// `ValidateAnnotations`: keys are qualified names in any case; 256 KiB in total.
fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let mut total = 0usize;
    for (key, value) in annotations {
        let lower = key.to_lowercase();
        errs.extend(rules::invalid_each(path, key, rules::qualified_name(&lower)));
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > MAX_ANNOTATIONS_BYTES {
        errs.push(FieldError::too_long(path, MAX_ANNOTATIONS_BYTES));
    }
}

#[cfg(test)]
mod tests;
