//! Field-level validation errors, shaped and printed exactly like
//! k8s.io/apimachinery/pkg/util/validation/field (`spec.containers[0].image: Required value`).
//!
//! This module owns the error vocabulary only; it knows nothing about Pods. It must not grow rules.

use std::fmt;

/// A path to a field, printed the way `field.Path.String()` prints it: `spec.containers[0].ports[1]`,
/// map keys in brackets without quotes (`resources.limits[memory]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    /// A path starting at a top-level field (`spec`, `metadata`).
    pub fn new(root: &str) -> Self {
        Self(root.to_string())
    }

    /// The path of a named child field.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            return Self(name.to_string());
        }
        Self(format!("{}.{name}", self.0))
    }

    /// The path of a list element.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// The path of a map entry.
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    /// The printed path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a field is invalid; `Display` gives the canonical k8s wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A referenced value does not exist (a volume mount naming no volume).
    NotFound,
    /// A value must be given.
    Required,
    /// A value that must be unique is repeated.
    Duplicate,
    /// A malformed value.
    Invalid,
    /// A value outside an enumeration.
    NotSupported,
    /// A valid value not allowed here (including every field peapod does not implement).
    Forbidden,
    /// A value too long to be echoed back.
    TooLong,
    /// A list with too many items.
    TooMany,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
        })
    }
}

/// The offending value, printed as Go's `%q` (strings) or `%v` (numbers, booleans) would print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadValue {
    /// Printed quoted.
    Str(String),
    /// Printed bare.
    Int(i64),
    /// Printed bare.
    Bool(bool),
    /// Printed verbatim (JSON for lists and objects).
    Raw(String),
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Raw(r) => f.write_str(r),
        }
    }
}

impl From<&str> for BadValue {
    fn from(s: &str) -> Self {
        Self::Str(s.to_string())
    }
}

impl From<&String> for BadValue {
    fn from(s: &String) -> Self {
        Self::Str(s.clone())
    }
}

impl From<i64> for BadValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<i32> for BadValue {
    fn from(i: i32) -> Self {
        Self::Int(i64::from(i))
    }
}

impl From<bool> for BadValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

/// The detail peapod gives for every field it does not implement.
pub const NOT_SUPPORTED_BY_PEAPOD: &str = "not supported by peapod";

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Where, as `spec.containers[1].name`.
    pub path: String,
    /// What kind of problem.
    pub kind: ErrorKind,
    /// The offending value, when the message shows it.
    pub value: Option<BadValue>,
    /// The explanation after the value, possibly empty.
    pub detail: String,
}

impl FieldError {
    fn new(path: &FieldPath, kind: ErrorKind, value: Option<BadValue>, detail: &str) -> Self {
        Self {
            path: path.to_string(),
            kind,
            value,
            detail: detail.to_string(),
        }
    }

    /// `path: Required value[: detail]`.
    pub fn required(path: &FieldPath, detail: &str) -> Self {
        Self::new(path, ErrorKind::Required, None, detail)
    }

    /// `path: Forbidden: detail`.
    pub fn forbidden(path: &FieldPath, detail: &str) -> Self {
        Self::new(path, ErrorKind::Forbidden, None, detail)
    }

    /// `path: Forbidden: not supported by peapod`.
    pub fn unimplemented(path: &FieldPath) -> Self {
        Self::forbidden(path, NOT_SUPPORTED_BY_PEAPOD)
    }

    /// `path: Invalid value: "v": detail`.
    pub fn invalid(path: &FieldPath, value: impl Into<BadValue>, detail: &str) -> Self {
        Self::new(path, ErrorKind::Invalid, Some(value.into()), detail)
    }

    /// `path: Duplicate value: "v"`.
    pub fn duplicate(path: &FieldPath, value: impl Into<BadValue>) -> Self {
        Self::new(path, ErrorKind::Duplicate, Some(value.into()), "")
    }

    /// `path: Not found: "v"`.
    pub fn not_found(path: &FieldPath, value: impl Into<BadValue>) -> Self {
        Self::new(path, ErrorKind::NotFound, Some(value.into()), "")
    }

    /// `path: Unsupported value: "v": supported values: "a", "b"`.
    pub fn not_supported(path: &FieldPath, value: impl Into<BadValue>, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(path, ErrorKind::NotSupported, Some(value.into()), &detail)
    }

    /// `path: Too long: may not be more than N bytes`.
    pub fn too_long(path: &FieldPath, max: usize) -> Self {
        Self::new(
            path,
            ErrorKind::TooLong,
            None,
            &format!("may not be more than {max} bytes"),
        )
    }

    /// `path: Too many: N: must have at most M items`.
    pub fn too_many(path: &FieldPath, actual: usize, max: usize) -> Self {
        let actual = BadValue::Raw(actual.to_string());
        Self::new(
            path,
            ErrorKind::TooMany,
            Some(actual),
            &format!("must have at most {max} items"),
        )
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)?;
        let shows_value = !matches!(
            self.kind,
            ErrorKind::Required | ErrorKind::Forbidden | ErrorKind::TooLong
        );
        if let (true, Some(value)) = (shows_value, &self.value) {
            write!(f, ": {value}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Every problem found in one object. `{}` joins them with `"; "` on one line (for conditions and
/// Events); `{:#}` prints one per line. Identical messages are printed once, as `ToAggregate` does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// `Ok(())` when `errors` is empty.
    pub fn check(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            return Ok(());
        }
        Err(Self { errors })
    }

    /// The individual errors, in the order they were found.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// Consumes the set into its errors.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    fn unique_messages(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.errors
            .iter()
            .map(ToString::to_string)
            .filter(|m| seen.insert(m.clone()))
            .collect()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let separator = if f.alternate() { "\n" } else { "; " };
        f.write_str(&self.unique_messages().join(separator))
    }
}

impl std::error::Error for ValidationErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_field_path() {
        let p = FieldPath::new("spec")
            .child("containers")
            .index(1)
            .child("resources");
        assert_eq!(
            p.child("limits").key("memory").as_str(),
            "spec.containers[1].resources.limits[memory]"
        );
        assert_eq!(FieldPath::new("").child("spec").as_str(), "spec");
    }

    #[test]
    fn errors_print_like_apimachinery() {
        let c1 = FieldPath::new("spec").child("containers").index(1);
        let cases = [
            (
                FieldError::duplicate(&c1.child("name"), "web"),
                r#"spec.containers[1].name: Duplicate value: "web""#,
            ),
            (
                FieldError::required(&c1.child("image"), ""),
                "spec.containers[1].image: Required value",
            ),
            (
                FieldError::not_supported(
                    &FieldPath::new("spec").child("restartPolicy"),
                    "Sometimes",
                    &["Always", "OnFailure", "Never"],
                ),
                r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
            ),
            (
                FieldError::unimplemented(
                    &FieldPath::new("spec")
                        .child("volumes")
                        .index(0)
                        .child("configMap"),
                ),
                "spec.volumes[0].configMap: Forbidden: not supported by peapod",
            ),
            (
                FieldError::invalid(
                    &c1.child("ports"),
                    70000,
                    "must be between 1 and 65535, inclusive",
                ),
                "spec.containers[1].ports: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                FieldError::too_many(&c1, 4, 3),
                "spec.containers[1]: Too many: 4: must have at most 3 items",
            ),
            (
                FieldError::too_long(&c1, 9),
                "spec.containers[1]: Too long: may not be more than 9 bytes",
            ),
            (
                FieldError::not_found(&c1, "x"),
                r#"spec.containers[1]: Not found: "x""#,
            ),
            (
                FieldError::invalid(&c1, true, "no"),
                "spec.containers[1]: Invalid value: true: no",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn strings_are_quoted_and_escaped() {
        let err = FieldError::invalid(&FieldPath::new("x"), "a\"b\n", "bad");
        assert_eq!(err.to_string(), r#"x: Invalid value: "a\"b\n": bad"#);
    }

    #[test]
    fn aggregate_joins_and_deduplicates() {
        let a = FieldError::required(&FieldPath::new("a"), "");
        let b = FieldError::required(&FieldPath::new("b"), "");
        let errs = ValidationErrors::check(vec![a.clone(), b, a]).unwrap_err();
        assert_eq!(errs.to_string(), "a: Required value; b: Required value");
        assert_eq!(format!("{errs:#}"), "a: Required value\nb: Required value");
        assert_eq!(errs.errors().len(), 3);
        assert!(ValidationErrors::check(vec![]).is_ok());
    }
}
