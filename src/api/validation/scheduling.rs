//! Placement fields: labels and node selectors, node affinity and tolerations, ported from
//! `ValidateLabels`, `validateNodeAffinity` and `ValidateTolerations` in Kubernetes. peapod's scheduler
//! reads these; this module only checks that they are well formed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm, Toleration};

use super::rules;
use crate::api::field::{FieldError, FieldPath};

/// `ValidateLabels`: keys are qualified names, values label values. Errors carry the map's path, as in
/// Kubernetes.
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (key, value) in labels {
        errs.extend(rules::invalid_each(path, key, rules::qualified_name(key)));
        errs.extend(rules::invalid_each(path, value, rules::label_value(value)));
    }
}

/// `validateNodeAffinity`.
pub fn validate_node_affinity(affinity: &NodeAffinity, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if let Some(required) = &affinity.required_during_scheduling_ignored_during_execution {
        let terms_path = path
            .child("requiredDuringSchedulingIgnoredDuringExecution")
            .child("nodeSelectorTerms");
        if required.node_selector_terms.is_empty() {
            errs.push(FieldError::required(
                &terms_path,
                "must have at least one node selector term",
            ));
        }
        for (i, term) in required.node_selector_terms.iter().enumerate() {
            node_selector_term(term, false, &terms_path.index(i), errs);
        }
    }
    let preferred_path = path.child("preferredDuringSchedulingIgnoredDuringExecution");
    for (i, term) in affinity
        .preferred_during_scheduling_ignored_during_execution
        .iter()
        .flatten()
        .enumerate()
    {
        let p = preferred_path.index(i);
        if !(1..=100).contains(&term.weight) {
            errs.push(FieldError::invalid(
                &p.child("weight"),
                term.weight,
                "must be in the range 1-100",
            ));
        }
        node_selector_term(&term.preference, true, &p.child("preference"), errs);
    }
}

/// `ValidateNodeSelectorTerm`; preferred terms may hold invalid label values, as in Kubernetes.
fn node_selector_term(
    term: &NodeSelectorTerm,
    allow_invalid_values: bool,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    for (j, req) in term.match_expressions.iter().flatten().enumerate() {
        node_selector_requirement(
            req,
            allow_invalid_values,
            &path.child("matchExpressions").index(j),
            errs,
        );
    }
    for (j, req) in term.match_fields.iter().flatten().enumerate() {
        node_field_selector_requirement(req, &path.child("matchFields").index(j), errs);
    }
}

fn node_selector_requirement(
    req: &NodeSelectorRequirement,
    allow_invalid_values: bool,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let values = req.values.as_deref().unwrap_or_default();
    let values_path = path.child("values");
    match req.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => {
            errs.push(FieldError::required(
                &values_path,
                "must be specified when `operator` is 'In' or 'NotIn'",
            ));
        }
        "Exists" | "DoesNotExist" if !values.is_empty() => {
            let detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'";
            errs.push(FieldError::forbidden(&values_path, detail));
        }
        "Gt" | "Lt" if values.len() != 1 => {
            let detail = "must be specified single value when `operator` is 'Lt' or 'Gt'";
            errs.push(FieldError::required(&values_path, detail));
        }
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        op => errs.push(FieldError::invalid(
            &path.child("operator"),
            op,
            "not a valid selector operator",
        )),
    }
    errs.extend(rules::invalid_each(
        &path.child("key"),
        &req.key,
        rules::qualified_name(&req.key),
    ));
    if !allow_invalid_values {
        for (i, value) in values.iter().enumerate() {
            errs.extend(rules::invalid_each(
                &values_path.index(i),
                value,
                rules::label_value(value),
            ));
        }
    }
}

fn node_field_selector_requirement(
    req: &NodeSelectorRequirement,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if values.len() != 1 {
                let detail =
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector";
                errs.push(FieldError::required(&path.child("values"), detail));
            }
        }
        op => errs.push(FieldError::invalid(
            &path.child("operator"),
            op,
            "not a valid selector operator",
        )),
    }
    if req.key != "metadata.name" {
        errs.push(FieldError::invalid(
            &path.child("key"),
            &req.key,
            "not a valid field selector key",
        ));
        return;
    }
    for (i, value) in values.iter().enumerate() {
        errs.extend(rules::invalid_each(
            &path.child("values").index(i),
            value,
            rules::dns1123_subdomain(value),
        ));
    }
}

/// `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Toleration], path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = t.key.as_deref().unwrap_or("");
        let operator = t.operator.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        if !key.is_empty() {
            errs.extend(rules::invalid_each(
                &p.child("key"),
                key,
                rules::qualified_name(key),
            ));
        }
        if key.is_empty() && operator != "Exists" {
            let detail =
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"";
            errs.push(FieldError::invalid(&p.child("operator"), operator, detail));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            let detail = "effect must be 'NoExecute' when `tolerationSeconds` is set";
            errs.push(FieldError::invalid(&p.child("effect"), effect, detail));
        }
        match operator {
            "Equal" | "" => {
                let msgs = rules::label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(&p.child("operator"), value, &msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    let detail = "value must be empty when `operator` is 'Exists'";
                    errs.push(FieldError::invalid(&p.child("operator"), value, detail));
                }
            }
            op => errs.push(FieldError::not_supported(
                &p.child("operator"),
                op,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            let supported = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
            errs.push(FieldError::not_supported(&p.child("effect"), effect, &supported));
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeSelector, PreferredSchedulingTerm};

    use super::*;

    fn req(key: &str, operator: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn affinity_errors(
        expressions: Vec<NodeSelectorRequirement>,
        fields: Vec<NodeSelectorRequirement>,
    ) -> Vec<String> {
        let affinity = NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(expressions),
                    match_fields: Some(fields),
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: Some(vec![PreferredSchedulingTerm {
                weight: 0,
                preference: NodeSelectorTerm {
                    match_expressions: Some(vec![req("a", "In", &["-bad"])]),
                    match_fields: None,
                },
            }]),
        };
        let mut errs = Vec::new();
        validate_node_affinity(&affinity, &FieldPath::new("a"), &mut errs);
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn node_affinity_rules() {
        let got = affinity_errors(
            vec![
                req("zone", "In", &[]),
                req("zone", "Exists", &["x"]),
                req("n", "Gt", &["1", "2"]),
                req("k", "Near", &[]),
                req("ok", "In", &["-v"]),
            ],
            vec![
                req("metadata.name", "In", &["node-a"]),
                req("metadata.uid", "In", &["x"]),
                req("metadata.name", "Exists", &[]),
            ],
        );
        let r = "a.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]";
        assert_eq!(got[0], format!("{r}.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"));
        assert_eq!(got[1], format!("{r}.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
        assert_eq!(got[2], format!("{r}.matchExpressions[2].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"));
        assert_eq!(
            got[3],
            format!(
                r#"{r}.matchExpressions[3].operator: Invalid value: "Near": not a valid selector operator"#
            )
        );
        assert!(got[4].starts_with(&format!(
            r#"{r}.matchExpressions[4].values[0]: Invalid value: "-v": a valid label must be"#
        )));
        assert_eq!(
            got[5],
            format!(
                r#"{r}.matchFields[1].key: Invalid value: "metadata.uid": not a valid field selector key"#
            )
        );
        assert_eq!(
            got[6],
            format!(r#"{r}.matchFields[2].operator: Invalid value: "Exists": not a valid selector operator"#)
        );
        assert_eq!(got[7], "a.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100");
        assert_eq!(got.len(), 8, "{got:#?}");
    }

    #[test]
    fn toleration_rules() {
        let t = |key: &str, op: &str, value: &str, effect: &str, secs: Option<i64>| Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            value: Some(value.into()),
            effect: Some(effect.into()),
            toleration_seconds: secs,
        };
        let tolerations = vec![
            t("", "Exists", "", "", None),
            t("", "Equal", "", "", None),
            t("k", "Exists", "v", "NoExecute", Some(5)),
            t("k", "Equal", "v", "NoSchedule", Some(5)),
            t("k", "Like", "", "Sometimes", None),
        ];
        let mut errs = Vec::new();
        validate_tolerations(&tolerations, &FieldPath::new("t"), &mut errs);
        let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                r#"t[1].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys""#,
                r#"t[2].operator: Invalid value: "v": value must be empty when `operator` is 'Exists'"#,
                r#"t[3].effect: Invalid value: "NoSchedule": effect must be 'NoExecute' when `tolerationSeconds` is set"#,
                r#"t[4].operator: Unsupported value: "Like": supported values: "Equal", "Exists""#,
                r#"t[4].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute""#,
            ]
        );
    }

    #[test]
    fn label_rules() {
        let labels = BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("bad key".to_string(), "-x".to_string()),
        ]);
        let mut errs = Vec::new();
        validate_labels(&labels, &FieldPath::new("metadata").child("labels"), &mut errs);
        assert_eq!(errs.len(), 2);
        assert!(errs.iter().all(|e| e.path == "metadata.labels"));
    }
}
