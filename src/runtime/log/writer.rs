//! The shim's side of container logging: turns the raw bytes read from a container's stdout and stderr
//! pipes into CRI records in `<restartCount>.log`, and rotates that file.
//!
//! It runs in the single-threaded shim, so it is plain `std` (no tokio, no threads). Memory is bounded:
//! each stream keeps at most one line's worth ([`MAX_LINE_SIZE`]) of pending bytes, and every record goes
//! straight to the file. It must not read logs back nor know about containers: the caller owns the pipes
//! and calls [`LogWriter::flush_partial`] when a pipe reaches end of file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;
use tracing::warn;

use super::{
    encode_record, list_rotated, rotated_key, rotated_name, rotation_stamp, Error, Stream, Tag, MAX_LINE_SIZE,
};

/// Rotation policy of one container instance's log, as the kubelet's `containerLogMaxSize` and
/// `containerLogMaxFiles`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Rotate before a record would grow the live file beyond this size; 0 disables rotation.
    pub max_size_bytes: u64,
    /// Most files kept for the instance, the live file included; older rotated files are deleted.
    /// Values below 1 behave as 1 (no rotated file is kept).
    pub max_files: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size_bytes: 10 * 1024 * 1024,
            max_files: 5,
        }
    }
}

/// Writes one container instance's output as CRI records to `<dir>/<restartCount>.log`.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    dir: PathBuf,
    file_name: String,
    config: LogConfig,
    file: File,
    /// Bytes in the live file, as far as this writer knows.
    size: u64,
    /// Per stream: the current line's bytes not yet written, never more than `MAX_LINE_SIZE`.
    pending: [Vec<u8>; 2],
    /// Reused buffer for the record being written.
    record: Vec<u8>,
}

impl LogWriter {
    /// Opens (creating with mode 0640, or appending to) the live log file `path`.
    pub fn open(path: &Path, config: LogConfig) -> io::Result<LogWriter> {
        let (Some(dir), Some(file_name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
            let name = path.display().to_string();
            return Err(with_context(
                Error::InvalidFileName { name },
                io::ErrorKind::InvalidInput,
            ));
        };
        // A bare file name lives in the current directory.
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let file = open_live(path).map_err(|source| open_error(path, source))?;
        let size = file.metadata().map_err(|source| open_error(path, source))?.len();
        Ok(LogWriter {
            path: path.to_owned(),
            dir: dir.to_owned(),
            file_name: file_name.to_owned(),
            config,
            file,
            size,
            pending: [Vec::new(), Vec::new()],
            record: Vec::with_capacity(MAX_LINE_SIZE + 64),
        })
    }

    /// The live log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs a chunk read from `stream`'s pipe. Complete lines become `F` records (a trailing `\r\n` is
    /// dropped, as containerd does); a line longer than [`MAX_LINE_SIZE`] is cut into `P` records; bytes
    /// after the last newline wait for the next chunk. All of `data` is processed even after an error,
    /// so the caller can keep draining the pipe; the first error is returned.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let mut first_error = Ok(());
        let mut keep = |result: io::Result<()>| {
            if first_error.is_ok() {
                first_error = result;
            }
        };
        let mut rest = data;
        while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
            let (line, after) = rest.split_at(newline);
            keep(self.append(stream, line));
            keep(self.end_line(stream));
            rest = after.get(1..).unwrap_or_default();
        }
        keep(self.append(stream, rest));
        first_error
    }

    /// Writes what is pending on `stream` as a `P` record: at end of file a last line without a
    /// newline stays partial, exactly as containerd leaves it. Does nothing when nothing is pending.
    pub fn flush_partial(&mut self, stream: Stream) -> io::Result<()> {
        if self.pending[stream.index()].is_empty() {
            return Ok(());
        }
        self.emit_pending(stream, Tag::Partial)
    }

    /// Flushes both streams; call when the container's pipes are closed.
    pub fn finish(&mut self) -> io::Result<()> {
        let stdout = self.flush_partial(Stream::Stdout);
        let stderr = self.flush_partial(Stream::Stderr);
        stdout.and(stderr)
    }

    /// Adds bytes of the current line of `stream`, writing a `P` record each time the line outgrows
    /// [`MAX_LINE_SIZE`].
    fn append(&mut self, stream: Stream, mut bytes: &[u8]) -> io::Result<()> {
        let mut result = Ok(());
        loop {
            let pending = &mut self.pending[stream.index()];
            let room = MAX_LINE_SIZE.saturating_sub(pending.len());
            if bytes.len() <= room {
                pending.extend_from_slice(bytes);
                return result;
            }
            let (now, later) = bytes.split_at(room);
            pending.extend_from_slice(now);
            bytes = later;
            let written = self.emit_pending(stream, Tag::Partial);
            result = result.and(written);
        }
    }

    /// Ends the current line of `stream` with an `F` record.
    fn end_line(&mut self, stream: Stream) -> io::Result<()> {
        let pending = &mut self.pending[stream.index()];
        if pending.last() == Some(&b'\r') {
            pending.pop();
        }
        self.emit_pending(stream, Tag::Full)
    }

    /// Writes the pending bytes of `stream` as one record and clears them, keeping the allocation.
    fn emit_pending(&mut self, stream: Stream, tag: Tag) -> io::Result<()> {
        let mut content = std::mem::take(&mut self.pending[stream.index()]);
        let result = self.write_record(stream, tag, &content);
        content.clear();
        self.pending[stream.index()] = content;
        result
    }

    /// Writes one record, rotating first if it would push the live file past its size limit. A failed
    /// rotation is reported but the record is still written to the file at hand.
    fn write_record(&mut self, stream: Stream, tag: Tag, content: &[u8]) -> io::Result<()> {
        self.record.clear();
        encode_record(&mut self.record, Timestamp::now(), stream, tag, content);
        let len = self.record.len() as u64;
        let max = self.config.max_size_bytes;
        let mut result = Ok(());
        if max > 0 && self.size > 0 && self.size.saturating_add(len) > max {
            if let Err(error) = self.rotate() {
                warn!(error = %error, path = %self.path.display(), "failed to rotate container log");
                // Try again after another max_size bytes instead of on every record.
                self.size = 0;
                result = Err(with_context(error, io::ErrorKind::Other));
            }
        }
        if let Err(source) = self.file.write_all(&self.record) {
            let kind = source.kind();
            return Err(with_context(
                Error::WriteLog {
                    path: self.path.clone(),
                    source,
                },
                kind,
            ));
        }
        self.size = self.size.saturating_add(len);
        result
    }

    /// Renames the live file to its rotated name, opens a fresh live file and deletes the oldest
    /// rotated files beyond `max_files`.
    fn rotate(&mut self) -> Result<(), Error> {
        let rotated = self.next_rotated_path()?;
        fs::rename(&self.path, &rotated).map_err(|source| Error::RotateLog {
            from: self.path.clone(),
            to: rotated.clone(),
            source,
        })?;
        match open_live(&self.path) {
            Ok(file) => {
                self.file = file;
                self.size = 0;
            }
            Err(source) => {
                // Put the old file back so the layout stays as readers expect; keep writing to it.
                let _ = fs::rename(&rotated, &self.path);
                return Err(Error::OpenLog {
                    path: self.path.clone(),
                    source,
                });
            }
        }
        self.remove_excess()
    }

    /// The name for the next rotated file: stamped now, or after the newest rotated file when that one
    /// has the same stamp (or a later one: the clock went back), so names keep sorting oldest first.
    fn next_rotated_path(&self) -> Result<PathBuf, Error> {
        let rotated = list_rotated(&self.dir, &self.file_name).map_err(|source| Error::ListLogDir {
            dir: self.dir.clone(),
            source,
        })?;
        let newest = rotated
            .last()
            .and_then(|path| path.file_name()?.to_str())
            .and_then(|name| rotated_key(&self.file_name, name))
            .map(|(stamp, seq)| (stamp.to_owned(), seq));
        let now = rotation_stamp(Timestamp::now());
        let (stamp, seq) = match newest {
            Some((stamp, seq)) if stamp >= now => (stamp, seq.saturating_add(1)),
            _ => (now, 0),
        };
        let path = self.dir.join(rotated_name(&self.file_name, &stamp, seq));
        let source = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path),
            Err(e) => e,
            Ok(_) => io::Error::from(io::ErrorKind::AlreadyExists),
        };
        Err(Error::RotateLog {
            from: self.path.clone(),
            to: path,
            source,
        })
    }

    /// Deletes the oldest rotated files so that at most `max_files` files remain, the live one included.
    fn remove_excess(&self) -> Result<(), Error> {
        let rotated = list_rotated(&self.dir, &self.file_name).map_err(|source| Error::ListLogDir {
            dir: self.dir.clone(),
            source,
        })?;
        let keep = self.config.max_files.saturating_sub(1);
        let excess = rotated.len().saturating_sub(keep);
        for path in rotated.iter().take(excess) {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::RemoveLog {
                        path: path.clone(),
                        source: e,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Opens the live file for appending: created 0640, close-on-exec, never through a symlink.
fn open_live(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
}

fn open_error(path: &Path, source: io::Error) -> io::Error {
    let kind = source.kind();
    with_context(
        Error::OpenLog {
            path: path.to_owned(),
            source,
        },
        kind,
    )
}

/// Wraps a module error into an `io::Error` that keeps the kind and the message naming the path.
fn with_context(error: Error, kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, error)
}

#[cfg(test)]
mod tests;
