use serde_json::Value;

use super::*;

/// Visits every schema in `schema` with its path.
fn walk<'a>(
    schema: &'a Value,
    path: String,
    visit: &mut dyn FnMut(&str, &'a serde_json::Map<String, Value>),
) {
    let Value::Object(map) = schema else {
        return;
    };
    visit(&path, map);
    for (key, value) in map {
        match (key.as_str(), value) {
            (k, Value::Object(inner)) if SCHEMA_MAPS.contains(&k) => {
                for (name, child) in inner {
                    walk(child, format!("{path}.{k}[{name}]"), visit);
                }
            }
            (k, Value::Array(items)) if SCHEMA_LISTS.contains(&k) || k == "items" => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{path}.{k}[{i}]"), visit);
                }
            }
            (k, child @ Value::Object(_)) if SCHEMA_VALUES.contains(&k) => {
                walk(child, format!("{path}.{k}"), visit)
            }
            _ => {}
        }
    }
}

fn schema() -> Value {
    let crd = crd();
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema).unwrap_or_default()
}

#[test]
fn committed_crds_match_the_types() {
    let generated = crd_yaml();
    for file in [CRD_FILE, "charts/peapod/crds/peapod.dev_podgroups.yaml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        if std::env::var("PEAPOD_UPDATE_CRDS").as_deref() == Ok("1") {
            assert!(
                std::fs::write(&path, &generated).is_ok(),
                "cannot write {}",
                path.display()
            );
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{file} is out of date with the PodGroup types; regenerate both copies with\n    make crds"
        );
    }
}

#[test]
fn fits_in_the_last_applied_annotation() {
    let json = serde_json::to_string(&crd()).unwrap_or_default();
    // kubectl's last-applied-configuration annotation holds the whole object; annotations are
    // limited to 256 KiB in total. Keep a wide margin for growth.
    assert!(json.len() < 128 * 1024, "CRD is {} bytes", json.len());
    assert!(
        json.len() > 10 * 1024,
        "CRD is suspiciously small: {} bytes",
        json.len()
    );
}

#[test]
fn keeps_only_the_top_level_description() {
    let schema = schema();
    let mut described = Vec::new();
    walk(&schema, String::new(), &mut |path, map| {
        if map.contains_key("description") {
            described.push(path.to_string());
        }
    });
    assert_eq!(described, vec![String::new()]);
    let top = schema.get("description").and_then(Value::as_str).unwrap_or("");
    assert!(top.contains("pause sandbox"), "{top}");
}

#[test]
fn schema_is_structural_for_kube_apiserver_1_20() {
    let schema = schema();
    let mut problems = Vec::new();
    let mut visited = 0usize;
    walk(&schema, String::new(), &mut |path, map| {
        let flag = |k: &str| map.get(k).and_then(Value::as_bool).unwrap_or(false);
        let typed = map.contains_key("type");
        let untyped_ok = flag("x-kubernetes-int-or-string") || flag("x-kubernetes-preserve-unknown-fields");
        if !typed && !untyped_ok {
            problems.push(format!("{path}: no type"));
        }
        for forbidden in ["x-kubernetes-validations", "$ref", "definitions", "default"] {
            if map.contains_key(forbidden) {
                problems.push(format!("{path}: {forbidden}"));
            }
        }
        if map.contains_key("properties") && map.contains_key("additionalProperties") {
            problems.push(format!(
                "{path}: properties and additionalProperties are mutually exclusive"
            ));
        }
        if map.get("items").is_some_and(|items| !items.is_object()) {
            problems.push(format!("{path}: items must be a single schema"));
        }
        if map.get("type").and_then(Value::as_str) == Some("array") && !map.contains_key("items") {
            problems.push(format!("{path}: array without items"));
        }
        visited += 1;
        if flag("x-kubernetes-int-or-string") && flag("x-kubernetes-preserve-unknown-fields") {
            problems.push(format!("{path}: int-or-string with preserve-unknown-fields"));
        }
        if map.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
            let items = map.get("items").cloned().unwrap_or_default();
            let required: Vec<&str> = items
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for key in map
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = key.as_str().unwrap_or("");
                let has_default = items.pointer(&format!("/properties/{key}/default")).is_some();
                if !required.contains(&key) && !has_default {
                    problems.push(format!(
                        "{path}: list-map key {key} neither required nor defaulted"
                    ));
                }
            }
        }
    });
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(visited > 1000, "only {visited} schemas visited");
    assert_eq!(schema.get("type").and_then(Value::as_str), Some("object"));
    let metadata = schema.pointer("/properties/metadata");
    assert!(
        metadata.is_none_or(|m| m.get("properties").is_none()),
        "metadata must not be restricted"
    );
}

#[test]
fn has_names_columns_and_status_subresource() {
    let crd = crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("podgroups.peapod.dev"));
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["pg".to_string()]));
    let version = crd.spec.versions.first();
    assert!(version.is_some_and(|v| v.name == "v1alpha1" && v.served && v.storage));
    assert!(version
        .and_then(|v| v.subresources.as_ref())
        .is_some_and(|s| s.status.is_some()));
    let columns: Vec<String> = version
        .and_then(|v| v.additional_printer_columns.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(columns, ["Ready", "Status", "Restarts", "Age", "IP", "Node"]);
}

#[test]
fn yaml_round_trips() {
    let yaml = crd_yaml();
    assert!(yaml.starts_with("# Generated by `peapod crd`"));
    let parsed: Result<CustomResourceDefinition, _> = serde_saphyr::from_str(&yaml);
    assert_eq!(parsed.ok(), Some(crd()));
}
