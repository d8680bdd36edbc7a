//! The string and number rules of k8s.io/apimachinery/pkg/util/validation, with their exact
//! messages: DNS-1123 labels and subdomains, qualified names, label values, port names, environment
//! variable names, IP addresses, ID ranges, paths.
//!
//! Each rule returns the list of messages Kubernetes would return (empty when valid). This module
//! knows nothing about Pods and must not build field paths beyond the small `invalid_each` helper.

use crate::api::field::{FieldError, FieldPath};

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_MSG: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_KEY_MAX: usize = 63;
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MAX: usize = 63;
const RELAXED_ENV_NAME_MSG: &str =
    "a valid environment variable name must consist only of printable ASCII characters other than '='";
/// The message for an IP address that does not parse.
pub const INVALID_IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// `RegexError`: the message, examples and the regular expression.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        examples.join(" or ")
    )
}

/// `MaxLenError`.
fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} bytes")
}

/// `InclusiveRangeError`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

fn matches_dns1123_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            first != b'-' && last != b'-' && bytes.iter().all(|&b| is_label_char(b))
        }
        _ => false,
    }
}

fn matches_dns1123_subdomain(value: &str) -> bool {
    value.split('.').all(matches_dns1123_label)
}

/// `IsDNS1123Label`.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1123Subdomain`.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_label_key(value: &str) -> bool {
    let bytes = value.as_bytes();
    let inner = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() && bytes.iter().all(inner)
        }
        _ => false,
    }
}

/// `IsQualifiedName` (a label key): an optional DNS subdomain prefix and `/`, then a name.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            let example = regex_error(LABEL_KEY_MSG, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"]);
            return vec![format!(
                "a valid label key {example} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > LABEL_KEY_MAX {
        errs.push(format!("name part {}", max_len_error(LABEL_KEY_MAX)));
    }
    if !matches_label_key(name) {
        let msg = regex_error(LABEL_KEY_MSG, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"]);
        errs.push(format!("name part {msg}"));
    }
    errs
}

/// `IsValidLabelValue`.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !matches_label_key(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsValidPortName` (an IANA_SVC_NAME).
pub fn port_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 15 {
        errs.push(max_len_error(15));
    }
    if value.is_empty() || !value.bytes().all(is_label_char) {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !value.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if value.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if value.starts_with('-') || value.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// `IsRelaxedEnvVarName`, the rule since RelaxedEnvironmentVariableValidation (1.30 alpha, on by
/// default since 1.32): any printable ASCII except `=`. Empty names are reported as Required by the
/// caller, as Kubernetes does.
pub fn env_var_name(value: &str) -> Vec<String> {
    let printable = |c: char| c.is_ascii() && !c.is_ascii_control() && c != '=';
    if value.chars().all(printable) {
        Vec::new()
    } else {
        vec![RELAXED_ENV_NAME_MSG.to_string()]
    }
}

/// `IsValidPortNum`.
pub fn port_number(port: i32) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// `IsValidUserID` / `IsValidGroupID`: 0 to 2^32-1.
pub fn unix_id(id: i64) -> Vec<String> {
    if (0..=i64::from(u32::MAX)).contains(&id) {
        Vec::new()
    } else {
        vec![inclusive_range_error(0, i64::from(u32::MAX))]
    }
}

/// `netutils.ParseIPSloppy`: what Go's `net.ParseIP` accepted, including IPv4 octets with leading
/// zeros (read as decimal).
pub fn is_ip_sloppy(value: &str) -> bool {
    if value.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let octets: Vec<&str> = value.split('.').collect();
    octets.len() == 4
        && octets.iter().all(|o| {
            !o.is_empty()
                && o.len() <= 3
                && o.bytes().all(|b| b.is_ascii_digit())
                && o.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// The format the API server generates `metadata.uid` in (apimachinery's `k8s-uuid` format): lowercase
/// hexadecimal in groups of 8-4-4-4-12 separated by `-`.
pub fn uuid(value: &str) -> Vec<String> {
    let groups: Vec<&str> = value.split('-').collect();
    let lens = groups.iter().map(|g| g.len()).collect::<Vec<_>>();
    let hex = |g: &&str| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if lens == [8, 4, 4, 4, 12] && groups.iter().all(hex) {
        Vec::new()
    } else {
        vec!["must be a lowercase UUID in 8-4-4-4-12 format".to_string()]
    }
}

/// `validatePathNoBacksteps`: no `..` element.
pub fn has_backsteps(path: &str) -> bool {
    path.split('/').any(|part| part == "..")
}

/// A name that must be set and be a DNS label (`name` of a container or a volume).
pub fn required_label(name: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else {
        errs.extend(invalid_each(path, name, dns1123_label(name)));
    }
}

/// One `Invalid` error per message.
pub fn invalid_each(path: &FieldPath, value: &str, messages: Vec<String>) -> Vec<FieldError> {
    messages
        .into_iter()
        .map(|m| FieldError::invalid(path, value, &m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_label_messages_match_apimachinery() {
        assert!(dns1123_label("web-1").is_empty());
        assert_eq!(dns1123_label("A_b"), vec![
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ]);
        assert_eq!(dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 bytes"]
        );
        for bad in ["", "-a", "a-", "é", "a b"] {
            assert!(!dns1123_label(bad).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn dns_subdomain_messages_match_apimachinery() {
        assert!(dns1123_subdomain("a.b-c.d").is_empty());
        assert_eq!(dns1123_subdomain("a..b"), vec![
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ]);
        assert_eq!(
            dns1123_subdomain(&"a".repeat(254)).first().map(String::as_str),
            Some("must be no more than 253 bytes")
        );
    }

    #[test]
    fn qualified_names() {
        for good in ["app", "example.com/app", "A.b_c-d", "kubernetes.io/hostname"] {
            assert!(qualified_name(good).is_empty(), "{good}");
        }
        assert_eq!(qualified_name("/x"), vec!["prefix part must be non-empty"]);
        assert_eq!(qualified_name("a/b/c").len(), 1);
        assert!(qualified_name("Example.com/x")[0].starts_with("prefix part a lowercase RFC 1123 subdomain"));
        assert_eq!(qualified_name("x/")[0], "name part must be non-empty");
        assert!(qualified_name("-x")[0].starts_with("name part must consist of alphanumeric characters"));
    }

    #[test]
    fn label_values_and_port_names() {
        assert!(label_value("").is_empty());
        assert!(label_value("v1.2_x").is_empty());
        assert_eq!(label_value("-x").len(), 1);
        assert!(port_name("http").is_empty());
        assert_eq!(
            port_name("HTTP"),
            vec![
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "must contain at least one letter (a-z)"
            ]
        );
        assert_eq!(port_name("a--b"), vec!["must not contain consecutive hyphens"]);
        assert_eq!(port_name("-ab"), vec!["must not begin or end with a hyphen"]);
        assert_eq!(port_name("123"), vec!["must contain at least one letter (a-z)"]);
        assert_eq!(
            port_name("abcdefghijklmnop"),
            vec!["must be no more than 15 bytes"]
        );
    }

    #[test]
    fn env_names_numbers_and_addresses() {
        assert!(env_var_name("1.weird-Name_ok!").is_empty());
        assert_eq!(env_var_name("A=B").len(), 1);
        assert_eq!(env_var_name("é").len(), 1);
        assert_eq!(env_var_name("a\tb").len(), 1);
        assert_eq!(port_number(0), vec!["must be between 1 and 65535, inclusive"]);
        assert!(port_number(65535).is_empty());
        assert_eq!(unix_id(-1), vec!["must be between 0 and 4294967295, inclusive"]);
        assert!(unix_id(4_294_967_295).is_empty());
        for good in ["10.0.0.1", "::1", "2001:db8::ffff", "010.001.0.1"] {
            assert!(is_ip_sloppy(good), "{good}");
        }
        for bad in ["", "10.0.0", "256.1.1.1", "host", "10.0.0.1/24"] {
            assert!(!is_ip_sloppy(bad), "{bad}");
        }
        assert!(has_backsteps("a/../b") && has_backsteps("..") && !has_backsteps("a/..b"));
    }
}
