//! The one rule for a name that becomes a path component or a cgroup name: whatever the caller passes, the
//! result is exactly one component inside its parent. Validation already refuses every name that is not
//! plain (uids are UUIDs, names DNS labels and subdomains, ids hex digests), so a name that gets here
//! unplain is a bug upstream; it is replaced by a fixed-length digest that no plain name can equal, so it
//! can neither climb out of its root nor alias another pod's directory or cgroup. The stable ids derived
//! from names live here too. This module must not touch the filesystem; `runtime::layout` re-exports it.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

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
        derive_id(&["unsafe-component", name])
    ))
}

/// Whether `name` is safe as one path component: the same rule as [`component`] ([`is_plain`]), for callers
/// that refuse rather than replace.
pub fn is_safe_component(name: &str) -> bool {
    is_plain(name)
}

/// Joins `name` onto `dir` only when it is a single safe component.
pub fn join_component(dir: &Path, name: &str) -> Option<PathBuf> {
    is_safe_component(name).then(|| dir.join(name))
}

/// A stable, unique id from parts (sha256, 32 hex characters): the same inputs always give the same id, so
/// a restarted supervisor can compute the ids it used.
pub fn derive_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
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

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = derive_id(&["uid", "web", "0"]);
        assert_eq!(a.len(), 32);
        assert_eq!(a, derive_id(&["uid", "web", "0"]));
        assert_ne!(a, derive_id(&["uid", "web", "1"]));
        assert_ne!(derive_id(&["ab", "c"]), derive_id(&["a", "bc"]));
    }

    #[test]
    fn unsafe_components_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\0b", "-a", "a_b", ".a"] {
            assert!(join_component(Path::new("/x"), bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            join_component(Path::new("/x"), "web"),
            Some(PathBuf::from("/x/web"))
        );
    }
}
