//! Strict decoding of one object into a `PodGroup`: kind check, Pod conversion, typed decoding with
//! the path of the offending field, and unknown-field detection by re-encoding and comparing keys
//! (what the API server's strict field validation reports).

use serde_json::{Map, Value};

use super::{DocumentLocation, ManifestError};
use crate::api::{PodGroup, PodGroupSpec, GROUP, VERSION};

/// Decodes one object, or explains why it is not a PodGroup.
pub fn decode(value: Value, at: DocumentLocation) -> Result<PodGroup, ManifestError> {
    let Value::Object(mut map) = value else {
        return Err(ManifestError::ExpectObject { at });
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let group_version = format!("{GROUP}/{VERSION}");
    let accepted =
        (api_version == group_version && kind == "PodGroup") || (api_version == "v1" && kind == "Pod");
    if !accepted {
        return Err(ManifestError::CheckKind {
            at,
            api_version,
            kind,
        });
    }
    map.remove("status");
    map.insert("apiVersion".into(), Value::String(group_version));
    map.insert("kind".into(), "PodGroup".into());
    ensure_object(&mut map, "metadata");
    // An object without spec or containers decodes, so that validation names what is missing.
    if let Some(Value::Object(spec)) = ensure_object(&mut map, "spec") {
        if spec.get("containers").is_none_or(Value::is_null) {
            spec.insert("containers".into(), Value::Array(Vec::new()));
        }
    }
    let input = Value::Object(map);
    // Metadata and spec are decoded on their own: through the flattened spec serde would lose the
    // path of the offending field.
    let metadata = decode_part(&input, "metadata", &at)?;
    let pod = decode_part(&input, "spec", &at)?;
    let pg = PodGroup {
        metadata,
        spec: PodGroupSpec { pod },
        status: None,
    };
    let output = serde_json::to_value(&pg).map_err(|e| ManifestError::DecodeObject {
        at: at.clone(),
        path: ".".into(),
        message: e.to_string(),
    })?;
    let mut fields = Vec::new();
    unknown_fields(&input, &output, "", &mut fields);
    if !fields.is_empty() {
        return Err(ManifestError::RejectUnknownFields { at, fields });
    }
    Ok(pg)
}

/// Decodes `input[key]`, naming the offending field on error (`spec.containers[0].ports[0].containerPort`).
fn decode_part<T: serde::de::DeserializeOwned>(
    input: &Value,
    key: &str,
    at: &DocumentLocation,
) -> Result<T, ManifestError> {
    let part = input.get(key).unwrap_or(&Value::Null);
    serde_path_to_error::deserialize(part).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." {
            key.to_string()
        } else {
            format!("{key}.{inner}")
        };
        ManifestError::DecodeObject {
            at: at.clone(),
            path,
            message: e.into_inner().to_string(),
        }
    })
}

/// Makes `map[key]` an object when it is missing or null; returns it.
fn ensure_object<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Value> {
    let slot = map.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    Some(slot)
}

/// Keys present (and not null) in `input` but absent from `output`, as field paths.
fn unknown_fields(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match b.get(key) {
                    _ if value.is_null() => {}
                    None => out.push(child),
                    Some(known) => unknown_fields(value, known, &child, out),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                unknown_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}
