//! Reading the files of one container instance's log in order: rotated files oldest first, then the live
//! file, and following the live file as it grows, is truncated or is rotated away.
//!
//! Rotation is seen when the live path gets a new inode: the old file is read to its end, then the files
//! rotated since, then the new live file from its start. Truncation (same inode, shorter) restarts at
//! offset 0. Raw lines go to a [`LineSink`]; this module knows nothing of the record format, and never
//! writes or removes a file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{list_rotated, Error};

/// How often a followed file is checked for new content and rotation.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Bytes read from a file at once.
const READ_CHUNK: usize = 64 * 1024;
/// Longest raw line accepted; a longer one is reported as overlong (records from our writer are ~16 KiB).
pub(super) const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Whether reading goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Stop,
}

/// Receives the raw lines of the log files, in order, without their `\n`.
pub(super) trait LineSink {
    fn line(&mut self, line: &[u8]) -> Result<Flow, Error>;
    /// A line longer than [`MAX_RECORD_BYTES`] was dropped.
    fn overlong(&mut self);
    /// Called while following, before waiting for more.
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// One open log file, read sequentially.
struct Source {
    path: PathBuf,
    file: File,
    id: (u64, u64),
    /// Bytes read so far: the file offset.
    offset: u64,
    /// The start of a line whose end has not been read yet.
    fragment: Vec<u8>,
    /// Inside an overlong line: drop everything up to the next newline.
    discarding: bool,
}

impl Source {
    fn open(path: &Path) -> io::Result<Source> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let meta = file.metadata()?;
        Ok(Source {
            path: path.to_owned(),
            file,
            id: (meta.dev(), meta.ino()),
            offset: 0,
            fragment: Vec::new(),
            discarding: false,
        })
    }

    fn read_error(&self, source: io::Error) -> Error {
        Error::ReadLog {
            path: self.path.clone(),
            source,
        }
    }

    fn len(&self) -> Result<u64, Error> {
        Ok(self.file.metadata().map_err(|e| self.read_error(e))?.len())
    }

    fn rewind(&mut self) -> Result<(), Error> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| self.read_error(e))?;
        self.offset = 0;
        self.fragment.clear();
        self.discarding = false;
        Ok(())
    }

    /// Hands every complete line up to offset `end` (end of file when `None`) to `sink`.
    fn pump(&mut self, end: Option<u64>, sink: &mut dyn LineSink) -> Result<Flow, Error> {
        let mut chunk = vec![0; READ_CHUNK];
        loop {
            let want = end.map_or(READ_CHUNK, |end| {
                usize::try_from(end.saturating_sub(self.offset))
                    .map_or(READ_CHUNK, |left| left.min(READ_CHUNK))
            });
            let buf = chunk.get_mut(..want).unwrap_or_default();
            let read = match self.file.read(buf) {
                Ok(0) => return Ok(Flow::Continue),
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            };
            self.offset += read as u64;
            if let Flow::Stop = self.split_lines(chunk.get(..read).unwrap_or_default(), sink)? {
                return Ok(Flow::Stop);
            }
        }
    }

    fn split_lines(&mut self, mut bytes: &[u8], sink: &mut dyn LineSink) -> Result<Flow, Error> {
        while let Some(at) = bytes.iter().position(|b| *b == b'\n') {
            let (line, rest) = bytes.split_at(at);
            bytes = rest.get(1..).unwrap_or_default();
            if std::mem::take(&mut self.discarding) {
                continue;
            }
            let flow = if self.fragment.len() + line.len() > MAX_RECORD_BYTES {
                self.fragment.clear();
                sink.overlong();
                Flow::Continue
            } else if self.fragment.is_empty() {
                sink.line(line)?
            } else {
                self.fragment.extend_from_slice(line);
                let flow = sink.line(&self.fragment)?;
                self.fragment.clear();
                flow
            };
            if flow == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        if !self.discarding {
            self.fragment.extend_from_slice(bytes);
            if self.fragment.len() > MAX_RECORD_BYTES {
                self.fragment.clear();
                self.discarding = true;
                sink.overlong();
            }
        }
        Ok(Flow::Continue)
    }

    /// Hands the unfinished last line, if any, to `sink` as a line: the file will not grow any more.
    fn finish(&mut self, sink: &mut dyn LineSink) -> Result<Flow, Error> {
        self.discarding = false;
        if self.fragment.is_empty() {
            return Ok(Flow::Continue);
        }
        let fragment = std::mem::take(&mut self.fragment);
        sink.line(&fragment)
    }
}

/// What happened to the live path since it was opened.
enum LiveState {
    Same,
    Replaced,
    Truncated,
}

/// The files of one container instance: rotated ones (oldest first), then the live one.
pub(super) struct LogFiles {
    dir: PathBuf,
    file_name: String,
    live_path: PathBuf,
    rotated: Vec<Source>,
    live: Source,
}

impl LogFiles {
    pub(super) fn open(dir: &Path, file_name: &str) -> Result<LogFiles, Error> {
        let live_path = dir.join(file_name);
        let live = Source::open(&live_path).map_err(|source| Error::OpenLog {
            path: live_path.clone(),
            source,
        })?;
        let mut rotated = Vec::new();
        for path in list_rotated(dir, file_name).map_err(|source| Error::ListLogDir {
            dir: dir.to_owned(),
            source,
        })? {
            match Source::open(&path) {
                // Rotated after the live file was opened: the live handle covers it and what follows.
                Ok(source) if source.id == live.id => break,
                Ok(source) => rotated.push(source),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(Error::OpenLog { path, source }),
            }
        }
        Ok(LogFiles {
            dir: dir.to_owned(),
            file_name: file_name.to_owned(),
            live_path,
            rotated,
            live,
        })
    }

    /// The current length of every file, live last: what a read without follow covers.
    pub(super) fn lengths(&self) -> Result<Vec<u64>, Error> {
        self.rotated.iter().chain([&self.live]).map(Source::len).collect()
    }

    /// Hands every line within `ends` to `sink`, then rewinds every file for the real read. The live
    /// file's unfinished last line is handed over only when `with_fragment`.
    pub(super) fn scan(
        &mut self,
        ends: &[u64],
        with_fragment: bool,
        sink: &mut dyn LineSink,
    ) -> Result<(), Error> {
        let rotated = self.rotated.len();
        let files = self.rotated.iter_mut().chain([&mut self.live]);
        for (i, (source, end)) in files.zip(ends).enumerate() {
            source.pump(Some(*end), sink)?;
            if i < rotated || with_fragment {
                source.finish(sink)?;
            }
            source.rewind()?;
        }
        Ok(())
    }

    /// Reads the rotated files, then the live file, to `ends` or, with `follow`, until `should_stop`.
    pub(super) fn read(
        &mut self,
        sink: &mut dyn LineSink,
        ends: &[u64],
        follow: bool,
        should_stop: &dyn Fn() -> bool,
    ) -> Result<Flow, Error> {
        let live_end = ends.get(self.rotated.len()).copied();
        for (source, end) in self.rotated.iter_mut().zip(ends) {
            if source.pump(Some(*end), sink)? == Flow::Stop || source.finish(sink)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        if !follow {
            if self.live.pump(live_end, sink)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
            return self.live.finish(sink);
        }
        self.follow(sink, should_stop)
    }

    fn follow(&mut self, sink: &mut dyn LineSink, should_stop: &dyn Fn() -> bool) -> Result<Flow, Error> {
        loop {
            // Asked before draining, so whatever was written before the stop is still read.
            let stop = should_stop();
            if self.live.pump(None, sink)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
            sink.flush()?;
            match self.live_state()? {
                LiveState::Replaced => match self.advance(sink)? {
                    Some(Flow::Stop) => return Ok(Flow::Stop),
                    Some(Flow::Continue) => continue,
                    None => {}
                },
                LiveState::Truncated => {
                    self.live.rewind()?;
                    continue;
                }
                LiveState::Same => {}
            }
            if stop {
                return self.live.finish(sink);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn live_state(&self) -> Result<LiveState, Error> {
        let meta = match fs::symlink_metadata(&self.live_path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LiveState::Same),
            Err(source) => {
                return Err(Error::ReadLog {
                    path: self.live_path.clone(),
                    source,
                })
            }
        };
        Ok(if (meta.dev(), meta.ino()) != self.live.id {
            LiveState::Replaced
        } else if meta.len() < self.live.offset {
            LiveState::Truncated
        } else {
            LiveState::Same
        })
    }

    /// After a rotation: finishes the old live file, reads the files rotated since, and switches to the
    /// new live file. `None` when the new live file does not exist yet.
    fn advance(&mut self, sink: &mut dyn LineSink) -> Result<Option<Flow>, Error> {
        if self.live.pump(None, sink)? == Flow::Stop || self.live.finish(sink)? == Flow::Stop {
            return Ok(Some(Flow::Stop));
        }
        let next = match Source::open(&self.live_path) {
            Ok(next) => next,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::OpenLog {
                    path: self.live_path.clone(),
                    source,
                })
            }
        };
        let rotated = list_rotated(&self.dir, &self.file_name).map_err(|source| Error::ListLogDir {
            dir: self.dir.clone(),
            source,
        })?;
        let mut after_old = false;
        for path in rotated {
            let mut source = match Source::open(&path) {
                Ok(source) => source,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(Error::OpenLog { path, source }),
            };
            if source.id == next.id {
                break;
            }
            if after_old && (source.pump(None, sink)? == Flow::Stop || source.finish(sink)? == Flow::Stop) {
                return Ok(Some(Flow::Stop));
            }
            after_old |= source.id == self.live.id;
        }
        self.live = next;
        Ok(Some(Flow::Continue))
    }
}

#[cfg(test)]
mod tests;
