//! The one error-chain formatter, at the bottom layer so every module can show an error the same way.

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
