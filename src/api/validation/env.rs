//! Container environment: variable names, `valueFrom` sources and the downward API selectors
//! (`fieldRef`, `resourceFieldRef`), ported from `ValidateEnv` and friends in
//! k8s pkg/apis/core/validation/validation.go. Whether a source is implemented is decided in
//! `supported`, not here.

use k8s_openapi::api::core::v1::{EnvVar, ObjectFieldSelector, ResourceFieldSelector};

use super::rules;
use crate::api::field::{FieldError, FieldPath};
use crate::api::quantity::{parse_quantity, QUANTITY_FORMAT_ERROR};

/// Field paths a `fieldRef` in an environment variable may name (`validEnvDownwardAPIFieldPathExpressions`).
const ENV_FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Field labels `ConvertDownwardAPIFieldLabel` knows for `v1` pods.
const CONVERTIBLE_FIELD_PATHS: [&str; 14] = [
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Resources a `resourceFieldRef` may name (`validContainerResourceFieldPathExpressions`).
const RESOURCE_FIELD_PATHS: [&str; 6] = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// `ValidateEnv`.
pub fn validate_env(vars: &[EnvVar], path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (i, var) in vars.iter().enumerate() {
        let p = path.index(i);
        if var.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            errs.extend(rules::invalid_each(
                &p.child("name"),
                &var.name,
                rules::env_var_name(&var.name),
            ));
        }
        value_from(var, &p.child("valueFrom"), errs);
    }
}

/// `validateEnvVarValueFrom`: exactly one source, and no `value` beside it.
fn value_from(var: &EnvVar, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(source) = &var.value_from else {
        return;
    };
    if let Some(field_ref) = &source.field_ref {
        object_field_selector(field_ref, &path.child("fieldRef"), errs);
    }
    if let Some(resource_ref) = &source.resource_field_ref {
        resource_field_selector(resource_ref, &path.child("resourceFieldRef"), errs);
    }
    let sources = [
        source.field_ref.is_some(),
        source.resource_field_ref.is_some(),
        source.config_map_key_ref.is_some(),
        source.secret_key_ref.is_some(),
        source.file_key_ref.is_some(),
    ];
    let count = sources.iter().filter(|&&set| set).count();
    if count == 0 {
        let detail =
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`";
        errs.push(FieldError::invalid(path, "", detail));
    } else if var.value.as_ref().is_some_and(|v| !v.is_empty()) {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if count > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
}

/// `fieldpath.SplitMaybeSubscriptedPath`: `metadata.labels['key']` into (`metadata.labels`, `key`).
pub fn split_subscript(field_path: &str) -> Option<(&str, &str)> {
    let inner = field_path.strip_suffix("']")?;
    let (path, subscript) = inner.split_once("['")?;
    (!path.is_empty()).then_some((path, subscript))
}

/// `validateObjectFieldSelector` with the environment's set of field paths.
fn object_field_selector(selector: &ObjectFieldSelector, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let api_version = selector.api_version.as_deref().unwrap_or("");
    if api_version.is_empty() {
        errs.push(FieldError::required(&path.child("apiVersion"), ""));
        return;
    }
    let field_path = selector.field_path.as_str();
    let fp_path = path.child("fieldPath");
    if field_path.is_empty() {
        errs.push(FieldError::required(&fp_path, ""));
        return;
    }
    let conversion_error = |reason: String| {
        FieldError::invalid(
            &fp_path,
            field_path,
            &format!("error converting fieldPath: {reason}"),
        )
    };
    if api_version != "v1" {
        errs.push(conversion_error(format!(
            "unsupported pod version: {api_version}"
        )));
        return;
    }
    if let Some((base, subscript)) = split_subscript(field_path) {
        match base {
            "metadata.annotations" => {
                let key = subscript.to_lowercase();
                errs.extend(rules::invalid_each(path, &key, rules::qualified_name(&key)));
            }
            "metadata.labels" => {
                errs.extend(rules::invalid_each(
                    path,
                    subscript,
                    rules::qualified_name(subscript),
                ));
            }
            _ => errs.push(conversion_error(format!(
                "field label does not support subscript: {field_path}"
            ))),
        }
        return;
    }
    let internal = if field_path == "spec.host" {
        "spec.nodeName"
    } else {
        field_path
    };
    if !CONVERTIBLE_FIELD_PATHS.contains(&internal) {
        errs.push(conversion_error(format!(
            "field label not supported: {field_path}"
        )));
    } else if !ENV_FIELD_PATHS.contains(&internal) {
        errs.push(FieldError::not_supported(&fp_path, internal, &ENV_FIELD_PATHS));
    }
}

/// `validateContainerResourceFieldSelector` for environment variables (containerName optional).
fn resource_field_selector(selector: &ResourceFieldSelector, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let resource = selector.resource.as_str();
    if resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else if !RESOURCE_FIELD_PATHS.contains(&resource) {
        errs.push(FieldError::not_supported(
            &path.child("resource"),
            resource,
            &RESOURCE_FIELD_PATHS,
        ));
    }
    let Some(divisor) = &selector.divisor else {
        return;
    };
    let divisor_path = path.child("divisor");
    let Some(value) = parse_quantity(&divisor.0) else {
        errs.push(FieldError::invalid(
            &divisor_path,
            &divisor.0,
            QUANTITY_FORMAT_ERROR,
        ));
        return;
    };
    if value.is_zero() {
        return;
    }
    let nanos = value.nanos();
    let (allowed, detail) = match resource {
        "limits.cpu" | "requests.cpu" => {
            (nanos == 1_000_000 || nanos == 1_000_000_000, "only divisor's values 1m and 1 are supported with the cpu resource")
        }
        "limits.memory" | "requests.memory" => (
            is_byte_divisor(nanos),
            "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource",
        ),
        "limits.ephemeral-storage" | "requests.ephemeral-storage" => (
            is_byte_divisor(nanos),
            "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource",
        ),
        _ => (true, ""),
    };
    if !allowed {
        errs.push(FieldError::invalid(&divisor_path, resource, detail));
    }
}

/// 1, 1k..1E or 1Ki..1Ei, in nanos.
fn is_byte_divisor(nanos: i128) -> bool {
    let units = nanos / 1_000_000_000;
    if nanos % 1_000_000_000 != 0 {
        return false;
    }
    let decimal = (0..=18).step_by(3).any(|e| units == 10i128.pow(e));
    let binary = (10..=60).step_by(10).any(|b| units == 1i128 << b);
    decimal || binary
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::EnvVarSource;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn field_ref(api_version: &str, path: &str) -> EnvVar {
        EnvVar {
            name: "X".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: Some(api_version.into()),
                    field_path: path.into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn resource_ref(resource: &str, divisor: Option<&str>) -> EnvVar {
        EnvVar {
            name: "X".into(),
            value_from: Some(EnvVarSource {
                resource_field_ref: Some(ResourceFieldSelector {
                    resource: resource.into(),
                    divisor: divisor.map(|d| Quantity(d.into())),
                    container_name: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn messages(var: EnvVar) -> Vec<String> {
        let mut errs = Vec::new();
        validate_env(&[var], &FieldPath::new("env"), &mut errs);
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn env_table() {
        let fr = "env[0].valueFrom.fieldRef";
        let rr = "env[0].valueFrom.resourceFieldRef";
        let cases: Vec<(EnvVar, Vec<String>)> = vec![
            (EnvVar { name: "A".into(), value: Some("1".into()), ..Default::default() }, vec![]),
            (EnvVar::default(), vec!["env[0].name: Required value".into()]),
            (
                EnvVar { name: "A=B".into(), ..Default::default() },
                vec![r#"env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='"#.into()],
            ),
            (field_ref("v1", "metadata.name"), vec![]),
            (field_ref("v1", "spec.host"), vec![]),
            (field_ref("v1", "metadata.labels['app']"), vec![]),
            (field_ref("v1", "metadata.annotations['Example.com/X']"), vec![]),
            (
                field_ref("v1", "metadata.labels['-bad']"),
                vec![format!(r#"{fr}: Invalid value: "-bad": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#)],
            ),
            (
                field_ref("v1", "spec.containers['x']"),
                vec![format!(r#"{fr}.fieldPath: Invalid value: "spec.containers['x']": error converting fieldPath: field label does not support subscript: spec.containers['x']"#)],
            ),
            (
                field_ref("v2", "metadata.name"),
                vec![format!(r#"{fr}.fieldPath: Invalid value: "metadata.name": error converting fieldPath: unsupported pod version: v2"#)],
            ),
            (
                field_ref("v1", "spec.bogus"),
                vec![format!(r#"{fr}.fieldPath: Invalid value: "spec.bogus": error converting fieldPath: field label not supported: spec.bogus"#)],
            ),
            (
                field_ref("v1", "status.phase"),
                vec![format!(r#"{fr}.fieldPath: Unsupported value: "status.phase": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs""#)],
            ),
            (field_ref("", "metadata.name"), vec![format!("{fr}.apiVersion: Required value")]),
            (resource_ref("limits.memory", Some("1Mi")), vec![]),
            (resource_ref("requests.cpu", Some("1m")), vec![]),
            (resource_ref("requests.cpu", Some("1000m")), vec![]),
            (resource_ref("limits.memory", Some("1024")), vec![]),
            (
                resource_ref("limits.cpu", Some("2")),
                vec![format!(r#"{rr}.divisor: Invalid value: "limits.cpu": only divisor's values 1m and 1 are supported with the cpu resource"#)],
            ),
            (resource_ref("limits.memory", Some("3Mi")), vec![format!(r#"{rr}.divisor: Invalid value: "limits.memory": only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"#)]),
            (
                resource_ref("limits.hugepages-2Mi", None),
                vec![format!(r#"{rr}.resource: Unsupported value: "limits.hugepages-2Mi": supported values: "limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage", "requests.memory""#)],
            ),
            (resource_ref("", None), vec![format!("{rr}.resource: Required value")]),
            (
                EnvVar { name: "A".into(), value_from: Some(EnvVarSource::default()), ..Default::default() },
                vec![r#"env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"#.into()],
            ),
            (
                EnvVar { value: Some("x".into()), ..field_ref("v1", "metadata.name") },
                vec![r#"env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty"#.into()],
            ),
        ];
        for (var, want) in cases {
            let name = format!("{var:?}");
            assert_eq!(messages(var), want, "{name}");
        }
    }

    #[test]
    fn two_sources_are_rejected() {
        let mut var = field_ref("v1", "metadata.name");
        if let (Some(source), Some(other)) = (
            var.value_from.as_mut(),
            resource_ref("limits.cpu", None).value_from,
        ) {
            source.resource_field_ref = other.resource_field_ref;
        }
        assert_eq!(
            messages(var),
            vec![
                r#"env[0].valueFrom: Invalid value: "": may not have more than one field specified at a time"#
            ]
        );
    }

    #[test]
    fn subscripts_split_like_fieldpath() {
        assert_eq!(
            split_subscript("metadata.labels['a']"),
            Some(("metadata.labels", "a"))
        );
        assert_eq!(
            split_subscript("metadata.labels['a['b']"),
            Some(("metadata.labels", "a['b"))
        );
        assert_eq!(split_subscript("['a']"), None);
        assert_eq!(split_subscript("metadata.labels"), None);
    }
}
