//! The one error-chain formatter, at the bottom layer so every module can show an error the same way, and
//! the one error for a file-system operation that failed on a path.

use std::io;
use std::path::{Path, PathBuf};

/// A file-system operation that failed on a path: shown as `<action> <path>`, with the cause as its source.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", path.display())]
pub struct PathError {
    /// What was being done (`create`, `mount shm on`, `mount tmpfs`, ...).
    pub action: &'static str,
    /// The path it was done to.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

impl PathError {
    /// `action` on `path` failed with `source`.
    pub fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        PathError {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Formats an error with its whole `source()` chain, `outer: inner: root`, for messages users read.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("read {path}")]
    struct Outer {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn every_source_is_joined() {
        let outer = Outer {
            path: "/x",
            source: std::io::Error::other("root cause"),
        };
        assert_eq!(chain(&outer), "read /x: root cause");
        assert_eq!(chain(&std::io::Error::other("alone")), "alone");
    }
}
