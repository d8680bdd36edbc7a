//! Update rules, ported from `ValidatePodUpdate`: a Pod's spec is immutable except container and
//! init-container images, `activeDeadlineSeconds` (set, or lowered), additions to `tolerations`, and
//! `terminationGracePeriodSeconds` going from negative to 1. Metadata name, namespace and uid never
//! change.

use k8s_openapi::api::core::v1::{Container, PodSpec, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::rules;
use crate::api::field::{BadValue, FieldError, FieldPath, ValidationErrors};
use crate::api::PodGroup;

/// The fields a Pod update may change, as `ValidatePodUpdate` lists them.
pub const UPDATABLE_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
/// How many changed fields the "may not change" message names.
const MAX_CHANGES_SHOWN: usize = 5;

/// Validates `new` as a replacement for `old`: everything `validate` checks on `new`, plus the
/// immutability rules of Pods.
pub fn validate_update(old: &PodGroup, new: &PodGroup) -> Result<(), ValidationErrors> {
    let mut errs = super::errors(new);
    metadata(
        &old.metadata,
        &new.metadata,
        &FieldPath::new("metadata"),
        &mut errs,
    );
    spec(&old.spec.pod, &new.spec.pod, &FieldPath::new("spec"), &mut errs);
    ValidationErrors::check(errs)
}

fn metadata(old: &ObjectMeta, new: &ObjectMeta, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let fields = [
        ("name", &old.name, &new.name),
        ("namespace", &old.namespace, &new.namespace),
        ("uid", &old.uid, &new.uid),
    ];
    for (name, old, new) in fields {
        let immutable_uid_unset = name == "uid" && old.is_none();
        if old != new && !immutable_uid_unset {
            let shown = new.as_deref().unwrap_or("");
            errs.push(FieldError::invalid(
                &path.child(name),
                shown,
                "field is immutable",
            ));
        }
    }
}

fn spec(old: &PodSpec, new: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let empty = Vec::new();
    let old_init = old.init_containers.as_ref().unwrap_or(&empty);
    let new_init = new.init_containers.as_ref().unwrap_or(&empty);
    if !containers(&old.containers, &new.containers, &path.child("containers"), errs)
        || !containers(old_init, new_init, &path.child("initContainers"), errs)
        || !active_deadline(
            old.active_deadline_seconds,
            new.active_deadline_seconds,
            path,
            errs,
        )
    {
        return;
    }
    tolerations(
        old.tolerations.as_deref(),
        new.tolerations.as_deref(),
        &path.child("tolerations"),
        errs,
    );

    let mut munged = new.clone();
    for (c, before) in munged.containers.iter_mut().zip(&old.containers) {
        c.image.clone_from(&before.image);
    }
    for (c, before) in munged.init_containers.iter_mut().flatten().zip(old_init) {
        c.image.clone_from(&before.image);
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.tolerations.clone_from(&old.tolerations);
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    let changed = changed_fields(old, &munged, path);
    if !changed.is_empty() {
        let shown: Vec<&str> = changed
            .iter()
            .take(MAX_CHANGES_SHOWN)
            .map(String::as_str)
            .collect();
        let more = if changed.len() > MAX_CHANGES_SHOWN {
            ", ..."
        } else {
            ""
        };
        let detail = format!(
            "pod updates may not change fields other than {UPDATABLE_FIELDS} (changed: {}{more})",
            shown.join(", ")
        );
        errs.push(FieldError::forbidden(path, &detail));
    }
}

/// `ValidateContainerUpdates`; false when the lists differ in length and comparing stops.
fn containers(old: &[Container], new: &[Container], path: &FieldPath, errs: &mut Vec<FieldError>) -> bool {
    if old.len() != new.len() {
        errs.push(FieldError::forbidden(
            path,
            "pod updates may not add or remove containers",
        ));
        return false;
    }
    for (i, c) in new.iter().enumerate() {
        let image = c.image.as_deref().unwrap_or("");
        if image.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("image"), ""));
        }
        if image.trim() != image {
            let detail = "must not have leading or trailing whitespace";
            errs.push(FieldError::invalid(&path.index(i).child("image"), image, detail));
        }
    }
    true
}

/// activeDeadlineSeconds may be set, or lowered, but not raised or removed. False stops comparing.
fn active_deadline(old: Option<i64>, new: Option<i64>, path: &FieldPath, errs: &mut Vec<FieldError>) -> bool {
    let p = path.child("activeDeadlineSeconds");
    match (old, new) {
        (_, Some(n)) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                &p,
                n,
                &rules::inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            false
        }
        (Some(o), Some(n)) if o < n => {
            errs.push(FieldError::invalid(
                &p,
                n,
                "must be less than or equal to previous value",
            ));
            false
        }
        (Some(_), None) => {
            let detail = "must not update from a positive integer to nil value";
            errs.push(FieldError::invalid(&p, BadValue::Raw("null".into()), detail));
            true
        }
        _ => true,
    }
}

/// `validateOnlyAddedTolerations`: every old toleration must still be there, up to its
/// tolerationSeconds.
fn tolerations(
    old: Option<&[Toleration]>,
    new: Option<&[Toleration]>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let new = new.unwrap_or_default();
    for before in old.unwrap_or_default() {
        let kept = new.iter().any(|t| {
            Toleration {
                toleration_seconds: t.toleration_seconds,
                ..before.clone()
            } == *t
        });
        if !kept {
            errs.push(FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            return;
        }
    }
}

/// Paths whose values differ between two specs, treating null, absent, `[]` and `{}` alike.
fn changed_fields(old: &PodSpec, new: &PodSpec, path: &FieldPath) -> Vec<String> {
    let (Ok(old), Ok(new)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return vec![path.to_string()];
    };
    let mut out = Vec::new();
    diff(&prune(old), &prune(new), path.as_str().to_string(), &mut out);
    out
}

fn prune(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(prune).collect()),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn diff(old: &Value, new: &Value, path: String, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (x, y) = (a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null));
                diff(x, y, format!("{path}.{k}"), out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(x, y, format!("{path}[{i}]"), out);
            }
        }
        _ if old != new => out.push(path),
        _ => {}
    }
}
