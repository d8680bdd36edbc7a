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
    let plain = crd_yaml();
    let with_rules = crd_yaml_with_transition_rules();
    for (file, generated) in [
        (CRD_FILE, &plain),
        ("charts/peapod/crds/peapod.dev_podgroups.yaml", &plain),
        (CRD_FILE_WITH_RULES, &with_rules),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        if std::env::var("PEAPOD_UPDATE_CRDS").as_deref() == Ok("1") {
            if let Some(dir) = path.parent() {
                assert!(
                    std::fs::create_dir_all(dir).is_ok(),
                    "cannot create {}",
                    dir.display()
                );
            }
            assert!(
                std::fs::write(&path, generated).is_ok(),
                "cannot write {}",
                path.display()
            );
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            &committed == generated,
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

/// The spec rules of the CRD with transition rules, as (rule, message).
fn spec_rules() -> Vec<(String, String)> {
    let crd = crd_with_transition_rules();
    let spec = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| s.properties.as_ref())
        .and_then(|p| p.get("spec"))
        .and_then(|s| s.x_kubernetes_validations.clone())
        .unwrap_or_default();
    spec.into_iter()
        .map(|r| (r.rule, r.message.unwrap_or_default()))
        .collect()
}

#[test]
fn transition_rules_are_well_formed_and_cover_every_immutable_field() {
    let rules = spec_rules();
    assert!(rules.len() > 10, "{rules:#?}");
    for (rule, message) in &rules {
        assert!(rule.contains("oldSelf"), "not a transition rule: {rule}");
        assert!(rule.len() < 16 * 1024, "rule of {} bytes", rule.len());
        let mut depth = 0i64;
        for c in rule.chars() {
            depth += match c {
                '(' | '[' => 1,
                ')' | ']' => -1,
                _ => 0,
            };
            assert!(depth >= 0, "unbalanced: {rule}");
        }
        assert_eq!(depth, 0, "unbalanced: {rule}");
        assert_eq!(rule.matches('\'').count() % 2, 0, "unbalanced quotes: {rule}");
        assert!(!message.is_empty());
    }
    let all: String = rules
        .iter()
        .map(|(r, _)| r.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let schema = schema();
    let spec = schema
        .pointer("/properties/spec/properties")
        .and_then(Value::as_object);
    let spec = spec.expect("spec properties");
    for name in spec.keys() {
        if !rules::MUTABLE.contains(&name.as_str()) {
            assert!(
                all.contains(&format!("has(self.{name})")),
                "spec.{name} not covered"
            );
        }
    }
    assert!(spec.contains_key("hostPID") && all.contains("self.hostPID == oldSelf.hostPID"));
    let container = schema.pointer("/properties/spec/properties/containers/items/properties");
    let container = container
        .and_then(Value::as_object)
        .expect("container properties");
    for list in ["containers", "initContainers"] {
        for i in [0, rules::CONTAINER_INDICES - 1] {
            for name in container.keys().filter(|n| *n != "image") {
                let field = format!("self.{list}[{i}].{name} == oldSelf.{list}[{i}].{name}");
                assert!(all.contains(&field), "{list}[{i}].{name} not covered");
            }
            assert!(
                !all.contains(&format!("has(self.{list}[{i}].image)")),
                "image may change"
            );
        }
    }
    let update = rules::update_message();
    assert!(update.starts_with("pod updates may not change fields other than `spec.containers[*].image`"));
    assert!(rules.iter().any(|(_, m)| m == &update));
}

#[test]
fn transition_rules_stay_within_the_api_servers_cost_budget() {
    let schema = schema();
    let spec = schema.pointer("/properties/spec").cloned().unwrap_or_default();
    let generated = rules::spec_rules(&spec);
    for r in &generated {
        assert!(r.cost <= rules::MAX_RULE_COST, "{} costs {}", r.rule, r.cost);
    }
    let total = rules::estimated_cost(&generated);
    assert!(total <= rules::MAX_TOTAL_COST, "rules cost {total} together");
    // The estimate charges strings and lists what a 3 MB request allows; objects nothing.
    let string = serde_json::json!({"type": "string"});
    assert_eq!(rules::equality_cost(&string), 300_000);
    let list = serde_json::json!({"type": "array", "items": {"type": "string"}});
    assert_eq!(rules::equality_cost(&list), 150_000);
    let object = serde_json::json!({"type": "object", "properties": {"a": {"type": "string"}}});
    assert_eq!(rules::equality_cost(&object), 0);
}

#[test]
fn only_the_rules_differ_between_the_two_crds() {
    let mut with_rules = serde_json::to_value(crd_with_transition_rules()).unwrap_or_default();
    let json = serde_json::to_string(&with_rules).unwrap_or_default();
    assert!(json.len() < 200 * 1024, "CRD with rules is {} bytes", json.len());
    let spec = "/spec/versions/0/schema/openAPIV3Schema/properties/spec";
    let removed = with_rules
        .pointer_mut(spec)
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("x-kubernetes-validations"));
    assert!(removed.is_some());
    assert_eq!(with_rules, serde_json::to_value(crd()).unwrap_or_default());
}
