//! Helpers the log tests share.

use std::path::Path;

use super::{LogConfig, LogWriter};

/// A writer on `<dir>/0.log` rotating after `max_size_bytes` bytes, keeping `max_files`.
pub fn writer(dir: &Path, max_size_bytes: u64, max_files: usize) -> LogWriter {
    let config = LogConfig {
        max_size_bytes,
        max_files,
    };
    LogWriter::open(&dir.join("0.log"), config).unwrap()
}

/// One CRI log line as the writer writes it.
pub fn record(ts: &str, stream: &str, tag: &str, content: &str) -> String {
    format!("{ts} {stream} {tag} {content}\n")
}
