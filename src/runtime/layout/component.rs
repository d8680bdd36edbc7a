//! The one rule for a name that becomes a path component or a cgroup name: whatever the caller passes, the
//! result is exactly one component inside its parent. Validation already refuses every name that is not
//! plain (uids are UUIDs, names DNS labels and subdomains, ids hex digests), so a name that gets here
//! unplain is a bug upstream; it is replaced by a fixed-length digest that no plain name can equal, so it
//! can neither climb out of its root nor alias another pod's directory or cgroup. This module must not
//! touch the filesystem.

use std::borrow::Cow;

/// The longest plain component (a DNS subdomain; well below `NAME_MAX`).
pub const MAX_PLAIN: usize = 253;

/// Prefix of a replaced name. No plain name starts with it, and no plain name contains `_`, so names
/// joined with `_` (log directories) stay unambiguous.
const REPLACED_PREFIX: &str = "_unsafe-";

/// Whether `name` is used as is: 1 to 253 ASCII letters, digits, `.` and `-`, starting with a letter or
/// digit (so never `.`, `..`, an option, a separator, NUL or `_`).
pub fn is_plain(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.len() <= MAX_PLAIN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

/// `name` as a single path component or cgroup name: itself when plain, else `_unsafe-<digest>`.
pub fn component(name: &str) -> Cow<'_, str> {
    if is_plain(name) {
        return Cow::Borrowed(name);
    }
    tracing::warn!(name = ?name, "unvalidated name kept inside its root");
    Cow::Owned(format!(
        "{REPLACED_PREFIX}{}",
        super::derive_id(&["unsafe-component", name])
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_and_the_rest_is_replaced() {
        for good in ["web", "9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d01", "a.b-c", "0", "Web"] {
            assert_eq!(component(good), good);
        }
        let long = "a".repeat(MAX_PLAIN + 1);
        for bad in [
            "", ".", "..", "../x", "a/b", "a\0b", "-x", ".hidden", "a_b", "é", &long,
        ] {
            let got = component(bad);
            assert!(got.starts_with(REPLACED_PREFIX), "{bad:?} -> {got}");
            assert_eq!(got.len(), REPLACED_PREFIX.len() + 32);
            assert_eq!(got, component(bad), "stable");
        }
        assert_ne!(component(".."), component("."));
    }
}
