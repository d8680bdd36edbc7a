//! Container logs in the CRI format (temporary stub until the log module lands).

use std::io;
use std::path::Path;

/// Output stream of a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Rotation settings.
#[derive(Clone, Copy, Debug)]
pub struct LogConfig {
    /// Rotate above this size.
    pub max_size_bytes: u64,
    /// Files kept, the live one included.
    pub max_files: usize,
}

/// Writes CRI log records.
pub struct LogWriter {
    file: std::fs::File,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appending) the log file.
    pub fn open(path: &Path, _config: LogConfig) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogWriter {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Writes a chunk of output.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let idx = stream as usize;
        self.partial[idx].extend_from_slice(data);
        while let Some(pos) = self.partial[idx].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[idx].drain(..=pos).collect();
            let name = if idx == 0 { "stdout" } else { "stderr" };
            write!(self.file, "{} {name} F ", k8s_openapi::jiff::Timestamp::now())?;
            self.file.write_all(&line)?;
        }
        Ok(())
    }

    /// Flushes a trailing partial line.
    pub fn flush_partial(&mut self, stream: Stream) -> io::Result<()> {
        if !self.partial[stream as usize].is_empty() {
            self.write(stream, b"\n")?;
        }
        Ok(())
    }
}
