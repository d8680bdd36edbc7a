//! What the shim reports: why a start failed (the message of the `StartError` exit), the OCI runtime's
//! last error, the tail of the output kept for `FallbackToLogsOnError`, and the termination message. Pure
//! but for reading the termination-message file.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::runtime::masks::MaskError;
use crate::runtime::record::TerminationMessage;

/// Kubelet limits for the termination message (pkg/kubelet/container/runtime.go).
const MAX_TERMINATION_MESSAGE: usize = 4096;
const FALLBACK_LOG_BYTES: usize = 2048;
const FALLBACK_LOG_LINES: usize = 80;

/// Why the OCI runtime did not start the container; the exit record's message is the whole chain.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartFailure {
    /// `runc create` failed with the runtime's last logged error.
    #[error("runc create failed: {message}")]
    Create {
        /// The runtime's message.
        message: String,
    },
    /// `runc start` failed with the runtime's last logged error.
    #[error("runc start failed: {message}")]
    Start {
        /// The runtime's message.
        message: String,
    },
    /// The runtime could not be executed.
    #[error("run {}", runtime.display())]
    Exec {
        /// The runtime binary.
        runtime: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `runc create` succeeded without writing the container's pid.
    #[error("runc create wrote no pid file")]
    NoPidFile,
    /// The bundle's spec could not be read back to check the masks.
    #[error("read {}", path.display())]
    ReadSpec {
        /// `config.json`.
        path: PathBuf,
        /// The cause.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// The runtime did not really mask what the spec masks.
    #[error(transparent)]
    Masks(#[from] MaskError),
}

impl StartFailure {
    /// The runtime binary `runtime` could not be executed.
    pub(super) fn exec(runtime: &Path, source: io::Error) -> Self {
        StartFailure::Exec {
            runtime: runtime.to_path_buf(),
            source,
        }
    }
}

/// The kubelet's termination message: the file at terminationMessagePath (at most 4096 bytes), or with
/// `FallbackToLogsOnError` and a failed, silent file, the last 80 lines / 2048 bytes of output.
pub(super) fn termination_message(tm: &TerminationMessage, tail: &Tail, exit_code: i32) -> Option<String> {
    let mut message = String::new();
    if let Ok(f) = std::fs::File::open(&tm.host_path) {
        let mut data = Vec::new();
        let _ = f.take(MAX_TERMINATION_MESSAGE as u64).read_to_end(&mut data);
        message = String::from_utf8_lossy(&data).into_owned();
    }
    if message.is_empty() && tm.fallback_to_logs && exit_code != 0 {
        message = tail.last_lines(FALLBACK_LOG_LINES);
    }
    (!message.is_empty()).then_some(message)
}

/// Extracts the last `"level":"error"` message from runc's JSON log.
pub fn last_runtime_error(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("level").and_then(|l| l.as_str()) == Some("error"))
        .and_then(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
}

/// The last bytes of container output, for `FallbackToLogsOnError`.
#[derive(Default)]
pub(super) struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    pub(super) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        let excess = self.buf.len().saturating_sub(FALLBACK_LOG_BYTES);
        self.buf.drain(..excess);
    }

    pub(super) fn last_lines(&self, n: usize) -> String {
        let text = String::from_utf8_lossy(&self.buf);
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        lines[lines.len().saturating_sub(n)..].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_runtime_error_picks_the_final_error() {
        let log = r#"{"level":"info","msg":"hello"}
{"level":"error","msg":"first"}
not json
{"level":"error","msg":"exec: \"nope\": executable file not found in $PATH"}
{"level":"warning","msg":"after"}"#;
        assert_eq!(
            last_runtime_error(log).as_deref(),
            Some("exec: \"nope\": executable file not found in $PATH")
        );
        assert_eq!(last_runtime_error(""), None);
    }

    #[test]
    fn start_failures_keep_their_messages() {
        let exec = StartFailure::Exec {
            runtime: "/usr/bin/runc".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(
            crate::runtime::chain(&exec),
            "run /usr/bin/runc: No such file or directory (os error 2)"
        );
        let create = StartFailure::Create {
            message: "exec: \"nope\": executable file not found in $PATH".into(),
        };
        assert_eq!(
            crate::runtime::chain(&create),
            "runc create failed: exec: \"nope\": executable file not found in $PATH"
        );
    }

    #[test]
    fn tail_keeps_last_bytes_and_lines() {
        let mut t = Tail::default();
        for i in 0..200 {
            t.push(format!("line {i}\n").as_bytes());
        }
        let last = t.last_lines(FALLBACK_LOG_LINES);
        assert!(last.len() <= FALLBACK_LOG_BYTES);
        assert!(last.ends_with("line 199\n"));
        assert_eq!(last.lines().count(), FALLBACK_LOG_LINES);
    }
}
