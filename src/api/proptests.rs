//! Property tests: no document, however malformed, makes manifest parsing, defaulting or validation
//! panic. Documents mix real Pod field names with random keys and wrongly typed, huge, negative,
//! unicode and path-like values, so that decoding gets deep enough for the rules to run.

mod words;

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::defaults::{apply_defaults, image_tag};
use super::manifest::parse_manifests;
use super::quantity::parse_quantity;
use super::validation::{validate, validate_update};
use words::{FIELDS, WORDS};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(0i64), Just(-1), Just(65536), Just(i64::from(i32::MAX) + 1)].prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(WORDS).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        (1usize..20_000).prop_map(|n| Value::String("x".repeat(n))),
    ]
}

fn json_ish() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 256, 8, |inner| {
        let key = prop_oneof![4 => proptest::sample::select(FIELDS).prop_map(String::from), 1 => ".{0,12}"];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key, inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// An object holding each of `entries` with probability 0.6.
fn object(entries: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let parts: Vec<BoxedStrategy<Option<(String, Value)>>> = entries
        .into_iter()
        .map(|(key, strategy)| {
            proptest::option::weighted(0.6, strategy)
                .prop_map(move |v| v.map(|v| (key.to_string(), v)))
                .boxed()
        })
        .collect();
    parts
        .prop_map(|kvs| Value::Object(kvs.into_iter().flatten().collect()))
        .boxed()
}

/// Mostly `typed`, sometimes anything at all.
fn or_junk(typed: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![12 => typed, 1 => json_ish()].boxed()
}

fn text() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(Value::from),
        2 => "[a-z0-9./_-]{0,20}".prop_map(Value::String),
        1 => ".{0,30}".prop_map(Value::String),
        1 => (1usize..5_000).prop_map(|n| Value::String("a".repeat(n))),
    ]
    .boxed()
}

fn int() -> BoxedStrategy<Value> {
    prop_oneof![3 => (-5i64..70_000).prop_map(Value::from), 1 => any::<i32>().prop_map(Value::from)].boxed()
}

fn flag() -> BoxedStrategy<Value> {
    any::<bool>().prop_map(Value::Bool).boxed()
}

fn list(item: BoxedStrategy<Value>, max: usize) -> BoxedStrategy<Value> {
    proptest::collection::vec(item, 0..max)
        .prop_map(Value::Array)
        .boxed()
}

fn quantities() -> BoxedStrategy<Value> {
    let name = prop_oneof![
        Just("cpu".to_string()),
        Just("memory".to_string()),
        Just("hugepages-2Mi".to_string()),
        "[a-z./-]{1,10}"
    ];
    proptest::collection::btree_map(name, text(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed()
}

fn container() -> BoxedStrategy<Value> {
    let port = object(vec![
        ("containerPort", int()),
        ("hostPort", int()),
        ("protocol", text()),
        ("name", text()),
    ]);
    let field_ref = object(vec![("fieldPath", text()), ("apiVersion", text())]);
    let resource_ref = object(vec![
        ("resource", text()),
        ("divisor", text()),
        ("containerName", text()),
    ]);
    let value_from = object(vec![("fieldRef", field_ref), ("resourceFieldRef", resource_ref)]);
    let env = object(vec![
        ("name", text()),
        ("value", text()),
        ("valueFrom", value_from),
    ]);
    let mount = object(vec![
        ("name", text()),
        ("mountPath", text()),
        ("subPath", text()),
        ("subPathExpr", text()),
        ("mountPropagation", text()),
    ]);
    let capabilities = object(vec![("add", list(text(), 3)), ("drop", list(text(), 3))]);
    let security = object(vec![
        ("runAsUser", int()),
        ("privileged", flag()),
        ("allowPrivilegeEscalation", flag()),
        ("capabilities", capabilities),
        ("procMount", text()),
    ]);
    let probe = object(vec![
        ("httpGet", object(vec![("port", int()), ("path", text())])),
        ("timeoutSeconds", int()),
    ]);
    or_junk(object(vec![
        ("name", text()),
        ("image", text()),
        ("command", list(text(), 3)),
        ("ports", list(port, 3)),
        ("env", list(env, 3)),
        ("volumeMounts", list(mount, 3)),
        (
            "resources",
            object(vec![("limits", quantities()), ("requests", quantities())]),
        ),
        ("securityContext", security),
        ("imagePullPolicy", text()),
        ("terminationMessagePolicy", text()),
        ("livenessProbe", probe),
        ("stdin", flag()),
    ]))
}

fn volume() -> BoxedStrategy<Value> {
    or_junk(object(vec![
        ("name", text()),
        (
            "emptyDir",
            object(vec![("medium", text()), ("sizeLimit", text())]),
        ),
        ("hostPath", object(vec![("path", text()), ("type", text())])),
        ("configMap", object(vec![("name", text())])),
    ]))
}

fn pod_spec() -> BoxedStrategy<Value> {
    let toleration = object(vec![
        ("key", text()),
        ("operator", text()),
        ("value", text()),
        ("effect", text()),
        ("tolerationSeconds", int()),
    ]);
    let requirement = object(vec![
        ("key", text()),
        ("operator", text()),
        ("values", list(text(), 3)),
    ]);
    let term = object(vec![
        ("matchExpressions", list(requirement.clone(), 2)),
        ("matchFields", list(requirement, 2)),
    ]);
    let affinity = object(vec![(
        "nodeAffinity",
        object(vec![(
            "requiredDuringSchedulingIgnoredDuringExecution",
            object(vec![("nodeSelectorTerms", list(term, 2))]),
        )]),
    )]);
    object(vec![
        ("containers", list(container(), 3)),
        ("initContainers", list(container(), 2)),
        ("volumes", list(volume(), 3)),
        ("restartPolicy", text()),
        ("dnsPolicy", text()),
        (
            "dnsConfig",
            object(vec![
                ("nameservers", list(text(), 5)),
                ("searches", list(text(), 4)),
            ]),
        ),
        ("hostNetwork", flag()),
        (
            "hostAliases",
            list(object(vec![("ip", text()), ("hostnames", list(text(), 2))]), 2),
        ),
        ("tolerations", list(toleration, 3)),
        ("nodeName", text()),
        ("hostname", text()),
        ("activeDeadlineSeconds", int()),
        ("terminationGracePeriodSeconds", int()),
        (
            "securityContext",
            object(vec![("runAsUser", int()), ("supplementalGroups", list(int(), 2))]),
        ),
        ("affinity", affinity),
    ])
}

/// A Pod or PodGroup whose fields mostly have the right types and arbitrary values.
fn document() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        4 => Just(("v1", "Pod")),
        4 => Just(("peapod.dev/v1alpha1", "PodGroup")),
        1 => Just(("apps/v1", "Deployment")),
    ];
    let metadata = object(vec![
        ("name", text()),
        ("namespace", text()),
        ("labels", quantities()),
    ]);
    (kind, metadata, or_junk(pod_spec())).prop_map(|((api_version, kind), metadata, spec)| {
        let mut doc = Map::new();
        doc.insert("apiVersion".into(), api_version.into());
        doc.insert("kind".into(), kind.into());
        doc.insert("metadata".into(), metadata);
        doc.insert("spec".into(), spec);
        Value::Object(doc)
    })
}

fn exercise(text: &str) {
    let mut previous = None;
    for result in parse_manifests("prop.yaml", text) {
        match result {
            Ok(mut pg) => {
                apply_defaults(&mut pg);
                let _ = validate(&pg).map_err(|e| format!("{e}{e:#}"));
                if let Some(old) = &previous {
                    let _ = validate_update(old, &pg).map_err(|e| e.to_string());
                }
                previous = Some(pg);
            }
            Err(e) => {
                let message = e.to_string();
                assert!(
                    !message.contains('\n') || message.contains("EOF"),
                    "multi-line error: {message}"
                );
            }
        }
    }
}

proptest! {
    #[test]
    fn documents_never_panic(docs in proptest::collection::vec(document(), 1..3), as_json in any::<bool>()) {
        let text = if as_json {
            docs.iter().map(Value::to_string).collect::<Vec<_>>().join("\n---\n")
        } else {
            docs.iter().map(|d| serde_saphyr::to_string(d).unwrap_or_default()).collect::<Vec<_>>().join("---\n")
        };
        exercise(&text);
    }

    #[test]
    fn mangled_text_never_panics(doc in document(), cut in any::<prop::sample::Index>(), junk in ".{0,8}") {
        let text = serde_saphyr::to_string(&doc).unwrap_or_default();
        let at = cut.index(text.len() + 1);
        let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        exercise(&format!("{}{junk}{}", &text[..at], &text[at..]));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(.|\n){0,200}") {
        exercise(&text);
        let _ = parse_quantity(&text);
        let _ = image_tag(&text);
    }

    #[test]
    fn quantities_never_panic(text in "[-+]?[0-9.]{0,30}[eEinumkKMGTP]{0,3}[-+]?[0-9]{0,25}") {
        if let Some(q) = parse_quantity(&text) {
            prop_assert!(q.value().abs() <= i128::from(i64::MAX));
            prop_assert_eq!(q.milli_value().signum(), q.nanos().signum());
        }
    }
}
