//! Manifests on disk: multi-document YAML (or JSON) holding `PodGroup` objects
//! (`apiVersion: peapod.dev/v1alpha1`) or plain Pods (`apiVersion: v1`, `kind: Pod`, converted with the
//! same metadata and spec). A `v1` `List` is expanded into its items.
//!
//! Decoding is strict like `kubectl apply`'s server-side field validation: a field the types do not
//! know is an error (`unknown field "spec.containers[0].comand"`), found by decoding, re-encoding and
//! comparing keys. `status` in a manifest is ignored, as the API server ignores it on create: status
//! is what peapod observes, never what a file says. Empty documents are skipped.
//!
//! This module parses bytes and reads directories; it does not default or validate the objects.

mod strict;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::PodGroup;

/// Where an object came from, for messages: `pods.yaml: document 2 (line 14)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentLocation {
    /// The file name given to `parse_manifests`.
    pub file: String,
    /// 1-based document number, counting `---` separators.
    pub document: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// 0-based index within a `List` document.
    pub item: Option<usize>,
}

impl fmt::Display for DocumentLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)?;
        if let Some(item) = self.item {
            write!(f, " item {item}")?;
        }
        write!(f, " (line {})", self.line)
    }
}

/// Why one document did not yield a `PodGroup`. Each displays as one line naming the file and document.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file of a directory could not be read.
    #[error("{}: {source}", path.display())]
    ReadFile { path: PathBuf, source: std::io::Error },
    /// The document is not well-formed YAML.
    #[error("{at}: invalid YAML at line {line}, column {column}: {message}")]
    ParseYaml {
        at: DocumentLocation,
        line: usize,
        column: usize,
        message: String,
    },
    /// The document looked like JSON and is not well-formed JSON.
    #[error("{at}: invalid JSON at line {line}, column {column}: {message}")]
    ParseJson {
        at: DocumentLocation,
        line: usize,
        column: usize,
        message: String,
    },
    /// The document is a scalar or a list, not an object.
    #[error("{at}: expected a Kubernetes object (a mapping with apiVersion and kind)")]
    ExpectObject { at: DocumentLocation },
    /// The object is something other than a PodGroup or a Pod.
    #[error(
        "{at}: apiVersion {api_version:?}, kind {kind:?} is not supported: expected apiVersion \"peapod.dev/v1alpha1\" with kind \"PodGroup\", or apiVersion \"v1\" with kind \"Pod\""
    )]
    CheckKind {
        at: DocumentLocation,
        api_version: String,
        kind: String,
    },
    /// A field has the wrong type or a required field is missing.
    #[error("{at}: {path}: {message}")]
    DecodeObject {
        at: DocumentLocation,
        path: String,
        message: String,
    },
    /// Fields the Pod API does not have.
    #[error("{at}: strict decoding error: {}", unknown_list(.fields))]
    RejectUnknownFields {
        at: DocumentLocation,
        fields: Vec<String>,
    },
}

fn unknown_list(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One raw document of a file.
struct RawDocument {
    number: usize,
    line: usize,
    text: String,
}

/// Parses every object in `text`; `source` names the file in messages. Documents that are empty (only
/// comments, whitespace or `null`) yield nothing; every other document yields one result (a `List`
/// one per item).
pub fn parse_manifests(source: &str, text: &str) -> Vec<Result<PodGroup, ManifestError>> {
    let mut results = Vec::new();
    for doc in split_documents(text).into_iter().filter(|d| !is_blank(&d.text)) {
        let at = DocumentLocation {
            file: source.to_string(),
            document: doc.number,
            line: doc.line,
            item: None,
        };
        match parse_document(&doc, &at) {
            Ok(Value::Null) => {}
            Ok(value) => results.extend(decode_objects(value, at)),
            Err(e) => results.push(Err(e)),
        }
    }
    results
}

/// `---` or `...` at the start of a line, followed by nothing or whitespace.
fn document_marker(line: &str) -> Option<&'static str> {
    ["---", "..."].into_iter().find(|m| {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    })
}

/// Splits on `---` and `...` marker lines, which end a document even inside a block scalar. Blank
/// text before the first `---`, or between `...` and `---`, is not a document of its own.
fn split_documents(text: &str) -> Vec<RawDocument> {
    let mut docs = Vec::new();
    let mut current = RawDocument {
        number: 1,
        line: 1,
        text: String::new(),
    };
    let mut first = true;
    let mut after_end_marker = false;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let Some(marker) = document_marker(line.trim_end_matches(['\n', '\r'])) else {
            current.text.push_str(line);
            continue;
        };
        let counts = !((first || after_end_marker) && is_blank(&current.text));
        let number = current.number + usize::from(counts);
        if counts {
            docs.push(current);
        }
        first = false;
        after_end_marker = marker == "...";
        current = RawDocument {
            number,
            line: index + 2,
            text: String::new(),
        };
        let rest = &line[marker.len()..];
        if marker == "---" && !is_blank(rest) {
            // `--- {a: 1}`: the content starts on the marker line; keep its columns.
            current.line = index + 1;
            current.text = format!("   {rest}");
        }
    }
    docs.push(current);
    docs
}

/// Only whitespace, comments and directives.
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || l.starts_with('%')
    })
}

fn parse_document(doc: &RawDocument, at: &DocumentLocation) -> Result<Value, ManifestError> {
    let text = doc.text.as_str();
    let looks_like_json = text.trim_start().starts_with(['{', '[']);
    let json_error = if looks_like_json {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => return Ok(value),
            Err(e) => Some(e),
        }
    } else {
        None
    };
    let options = serde_saphyr::options! { with_snippet: false, legacy_octal_numbers: true };
    match serde_saphyr::from_str_with_options::<Value>(text, options) {
        Ok(value) => Ok(value),
        Err(e) => Err(match json_error {
            Some(j) => ManifestError::ParseJson {
                at: at.clone(),
                line: doc.line + j.line().saturating_sub(1),
                column: j.column(),
                message: json_message(&j),
            },
            None => yaml_error(&e, doc, at),
        }),
    }
}

fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

fn yaml_error(e: &serde_saphyr::Error, doc: &RawDocument, at: &DocumentLocation) -> ManifestError {
    let location = e.location();
    let line = location.map_or(0, |l| usize::try_from(l.line()).unwrap_or(0));
    let column = location.map_or(0, |l| usize::try_from(l.column()).unwrap_or(0));
    let text = e.to_string();
    let first_line = text.lines().next().unwrap_or("").to_string();
    let suffix = format!(" at line {line}, column {column}");
    let message = first_line.strip_suffix(&suffix).unwrap_or(&first_line);
    let message = message
        .strip_suffix(", set DuplicateKeyPolicy in Options if acceptable")
        .unwrap_or(message)
        .to_string();
    ManifestError::ParseYaml {
        at: at.clone(),
        line: doc.line + line.saturating_sub(1),
        column,
        message,
    }
}

/// Decodes one parsed document into its objects.
fn decode_objects(value: Value, at: DocumentLocation) -> Vec<Result<PodGroup, ManifestError>> {
    let Value::Object(map) = value else {
        return vec![Err(ManifestError::ExpectObject { at })];
    };
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
    if (api_version.as_str(), kind.as_str()) != ("v1", "List") {
        return vec![strict::decode(Value::Object(map), at)];
    }
    let items = match map.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = DocumentLocation {
                item: Some(i),
                ..at.clone()
            };
            strict::decode(item, at)
        })
        .collect()
}

/// One object read by `load_path`, with the file it came from.
pub type LoadedObject = (PathBuf, Result<PodGroup, ManifestError>);

/// Reads `path`: one manifest file, or every `*.yaml`, `*.yml` and `*.json` file directly in a
/// directory (not recursive, sorted by name, dotfiles skipped). The outer error is for `path` itself;
/// a file of the directory that cannot be read yields a `ReadFile` entry.
pub fn load_path(path: &Path) -> Result<Vec<LoadedObject>, std::io::Error> {
    let with_path = |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let files = if std::fs::metadata(path).map_err(with_path)?.is_dir() {
        manifest_files(path).map_err(with_path)?
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let name = file.display().to_string();
                out.extend(
                    parse_manifests(&name, &text)
                        .into_iter()
                        .map(|r| (file.clone(), r)),
                );
            }
            Err(source) => {
                let err = ManifestError::ReadFile {
                    path: file.clone(),
                    source,
                };
                out.push((file, Err(err)));
            }
        }
    }
    Ok(out)
}

fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let wanted = [".yaml", ".yml", ".json"].iter().any(|ext| name.ends_with(ext));
        if wanted && !name.starts_with('.') && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests;
