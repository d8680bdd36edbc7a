//! CEL transition rules (`x-kubernetes-validations` on `spec`, comparing `self` with `oldSelf`) with which an
//! API server of Kubernetes 1.25 or later refuses a PodGroup edit that `ValidatePodUpdate` refuses for a Pod,
//! with the API server's Pod message. They are generated from the schema of the Rust types: every `spec`
//! field other than the mutable ones must stay as it is, and so must every field but `image` of the first
//! [`CONTAINER_INDICES`] containers and init containers.
//!
//! What they leave to the agent (whose judgement stays, since older API servers ignore the rules): fields
//! of containers past that index, and tolerations (only additions allowed), whose checks cost more than an
//! API server's CEL budget allows on lists of unbounded length.
//!
//! The budget: an API server refuses a CRD whose rules it estimates to cost more than 10,000,000 each or
//! 100,000,000 together, estimating a string or list as long as a 3 MB request allows (`==` costs a tenth
//! of that length; objects compare at no estimated cost). [`estimated_cost`] makes the same estimate,
//! rounding up, and the rules are packed to stay under half of each limit.

use serde_json::Value;

use crate::api::validation::UPDATABLE_FIELDS;

/// How many containers (and init containers) the rules check field by field.
pub const CONTAINER_INDICES: usize = 8;
/// Spec fields a Pod update may change (within limits), or that a PodGroup gets set once (`nodeName`).
pub const MUTABLE: [&str; 6] = [
    "containers",
    "initContainers",
    "activeDeadlineSeconds",
    "tolerations",
    "terminationGracePeriodSeconds",
    "nodeName",
];
/// The most one generated rule may cost by [`estimated_cost`]: half an API server's per-rule limit.
pub const MAX_RULE_COST: u64 = 5_000_000;
/// The most all generated rules may cost together: half an API server's per-CRD limit.
pub const MAX_TOTAL_COST: u64 = 50_000_000;

/// The largest request an API server accepts, from which it bounds lengths.
const MAX_REQUEST_BYTES: u64 = 3_000_000;
/// Estimated cost of a clause apart from its comparison (presence tests, selections, indexing, `&&`).
const CLAUSE_OVERHEAD: u64 = 50;
/// CEL reserved words, which cannot be selected as fields.
const RESERVED: [&str; 22] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
    "int",
];

/// One generated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The CEL expression.
    pub rule: String,
    /// What the API server says when it is false.
    pub message: String,
    /// Its estimated cost.
    pub cost: u64,
}

/// The message of the Pod update rule.
pub fn update_message() -> String {
    format!("pod updates may not change fields other than {UPDATABLE_FIELDS}")
}

/// The transition rules for `spec`, given its schema.
pub fn spec_rules(spec: &Value) -> Vec<Rule> {
    let message = update_message();
    let mut rules = Vec::new();
    let mut immutable = Vec::new();
    for (name, schema) in properties(spec) {
        if !MUTABLE.contains(&name.as_str()) && selectable(&name) {
            immutable.push(clause("self", "oldSelf", &name, schema));
        }
    }
    rules.extend(pack("", &immutable, &message));
    rules.push(Rule {
        rule: format!(
            "{} == {}",
            count("self", "containers"),
            count("oldSelf", "containers")
        ) + &format!(
            " && {} == {}",
            count("self", "initContainers"),
            count("oldSelf", "initContainers")
        ),
        message: "pod updates may not add or remove containers".into(),
        cost: 4 * CLAUSE_OVERHEAD,
    });
    for list in ["containers", "initContainers"] {
        let item = spec.pointer(&format!("/properties/{list}/items"));
        for i in 0..CONTAINER_INDICES {
            let (new, old) = (format!("self.{list}[{i}]"), format!("oldSelf.{list}[{i}]"));
            let clauses: Vec<(String, u64)> = item
                .map(properties)
                .unwrap_or_default()
                .into_iter()
                .filter(|(name, _)| name != "image" && selectable(name))
                .map(|(name, schema)| clause(&new, &old, &name, schema))
                .collect();
            let guard = format!(
                "{} <= {i} || {} <= {i} || ",
                count("self", list),
                count("oldSelf", list)
            );
            rules.extend(pack(&guard, &clauses, &message));
        }
    }
    rules.extend(scalar_rules(&message));
    rules
}

/// The rules of `activeDeadlineSeconds`, `terminationGracePeriodSeconds` and `nodeName`.
fn scalar_rules(message: &str) -> Vec<Rule> {
    let rule = |rule: &str, message: &str| Rule {
        rule: rule.to_string(),
        message: message.to_string(),
        cost: MAX_REQUEST_BYTES / 10 + CLAUSE_OVERHEAD,
    };
    let grace = "terminationGracePeriodSeconds";
    vec![
        rule(
            "!has(oldSelf.activeDeadlineSeconds) || has(self.activeDeadlineSeconds)",
            "activeDeadlineSeconds: must not update from a positive integer to nil value",
        ),
        rule(
            "!has(oldSelf.activeDeadlineSeconds) || !has(self.activeDeadlineSeconds) || self.activeDeadlineSeconds <= oldSelf.activeDeadlineSeconds",
            "activeDeadlineSeconds: must be less than or equal to previous value",
        ),
        rule(
            &format!(
                "{} || (has(oldSelf.{grace}) && oldSelf.{grace} < 0 && has(self.{grace}) && self.{grace} == 1)",
                unchanged("self", "oldSelf", grace)
            ),
            message,
        ),
        // Set once, by the scheduler binding the PodGroup (a Pod's binding subresource).
        rule(
            "!has(oldSelf.nodeName) || oldSelf.nodeName == '' || (has(self.nodeName) && self.nodeName == oldSelf.nodeName)",
            message,
        ),
    ]
}

/// `size(x.list)`, 0 when absent.
fn count(root: &str, list: &str) -> String {
    format!("(has({root}.{list}) ? size({root}.{list}) : 0)")
}

/// Field `name` is present in both or neither, and equal.
fn unchanged(new: &str, old: &str, name: &str) -> String {
    format!("(has({new}.{name}) ? has({old}.{name}) && {new}.{name} == {old}.{name} : !has({old}.{name}))")
}

fn clause(new: &str, old: &str, name: &str, schema: &Value) -> (String, u64) {
    (unchanged(new, old, name), equality_cost(schema) + CLAUSE_OVERHEAD)
}

/// Joins clauses with `&&` into as few rules as keep each under [`MAX_RULE_COST`], each behind `guard`.
fn pack(guard: &str, clauses: &[(String, u64)], message: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut cost = CLAUSE_OVERHEAD;
    let mut flush = |current: &mut Vec<&str>, cost: &mut u64| {
        if !current.is_empty() {
            rules.push(Rule {
                rule: format!("{guard}({})", current.join(" && ")),
                message: message.to_string(),
                cost: *cost,
            });
        }
        current.clear();
        *cost = CLAUSE_OVERHEAD;
    };
    for (text, c) in clauses {
        if cost + c > MAX_RULE_COST {
            flush(&mut current, &mut cost);
        }
        current.push(text);
        cost += c;
    }
    flush(&mut current, &mut cost);
    rules
}

/// The properties of an object schema, by name.
fn properties(schema: &Value) -> Vec<(String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

/// Whether `name` can be selected in CEL as it is.
fn selectable(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name)
}

/// The estimated cost of `==` on values of `schema`: a tenth of the longest length a request allows for a
/// string, list or map, rounded up; nothing for other objects and scalars.
pub fn equality_cost(schema: &Value) -> u64 {
    let elements = match schema.get("type").and_then(Value::as_str) {
        Some("string") => MAX_REQUEST_BYTES,
        Some("array") => MAX_REQUEST_BYTES / min_size(schema.get("items")).max(1),
        Some("object") => match schema.get("additionalProperties") {
            Some(v) if v.is_object() => MAX_REQUEST_BYTES / (min_size(Some(v)) + 3).max(1),
            _ => 0,
        },
        _ => 0,
    };
    elements.div_ceil(10)
}

/// The fewest bytes a value of `schema` takes in JSON, required properties included (a little lower than
/// the API server's estimate, which also counts a comma, so that costs come out higher).
fn min_size(schema: Option<&Value>) -> u64 {
    let Some(schema) = schema else { return 1 };
    match schema.get("type").and_then(Value::as_str) {
        Some("string") | Some("array") => 2,
        Some("boolean") => 4,
        Some("object") => {
            let required = schema.get("required").and_then(Value::as_array);
            let names = required.into_iter().flatten().filter_map(Value::as_str);
            names.fold(2, |size, name| {
                let prop = schema.pointer(&format!("/properties/{name}"));
                size + name.len() as u64 + 3 + min_size(prop)
            })
        }
        _ => 1,
    }
}

/// The estimated cost of `rules` together.
pub fn estimated_cost(rules: &[Rule]) -> u64 {
    rules.iter().map(|r| r.cost).sum()
}
