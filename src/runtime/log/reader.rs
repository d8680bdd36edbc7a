//! `peapod logs`' side of container logging: decodes one container instance's CRI log files, rotated ones
//! first, and prints their content the way `kubectl logs` shows it (tail, since, timestamps, limit bytes,
//! follow).
//!
//! Partial (`P`) records are joined with the following records of the same stream until the `F` record,
//! so a line split by the writer, or interleaved with the other stream, prints whole. Malformed lines are
//! skipped and counted, as the kubelet's `ReadLogs` skips them. Finding, ordering and following the files
//! is `files`' job. This module never writes logs and never decides that a container exited.

use std::io::Write;
use std::path::Path;

use k8s_openapi::jiff::Timestamp;
use tracing::debug;

use super::files::{Flow, LineSink, LogFiles};
use super::{check_file_name, parse_record, Error, Stream, Tag};
/// A partial line held back for joining is written out early once it reaches this size.
const MAX_HELD_BYTES: usize = 1024 * 1024;

/// What to print, as `kubectl logs` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep printing as the log grows, until `should_stop` holds and the file is drained.
    pub follow: bool,
    /// Print only the last this many lines (of the selected stream), counted across rotated files.
    pub tail: Option<usize>,
    /// Prefix each line with its timestamp (RFC 3339, UTC, nine fraction digits) and a space.
    pub timestamps: bool,
    /// Skip lines that started before this time.
    pub since: Option<Timestamp>,
    /// Stop after printing this many bytes (timestamps included), cutting the last line.
    pub limit_bytes: Option<usize>,
    /// Print only this stream; both when `None`.
    pub stream: Option<Stream>,
}

/// What a read printed and skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Lines printed, a last line without end included.
    pub lines: u64,
    /// Lines skipped because they are not CRI records.
    pub malformed: u64,
    /// Bytes printed.
    pub bytes: u64,
}

/// Prints the logs of the instance whose live file is `<dir>/<file_name>` (`<restartCount>.log`) to
/// `out`. With `follow`, returns once `should_stop()` was true and everything written before was printed.
pub fn read_logs(
    dir: &Path,
    file_name: &str,
    opts: &LogOptions,
    out: &mut impl Write,
    should_stop: &dyn Fn() -> bool,
) -> Result<ReadStats, Error> {
    check_file_name(file_name)?;
    let mut files = LogFiles::open(dir, file_name)?;
    let ends = files.lengths()?;
    let skip = match opts.tail {
        Some(tail) => count_lines(&mut files, &ends, opts)?.saturating_sub(tail),
        None => 0,
    };
    let mut decoder = Decoder::new(opts, out, skip);
    if let Flow::Continue = files.read(&mut decoder, &ends, opts.follow, should_stop)? {
        decoder.finish()?;
    }
    decoder
        .out
        .flush()
        .map_err(|source| Error::WriteOutput { source })?;
    Ok(decoder.stats)
}

/// Counts the lines `read_logs` would print within `ends` without `tail` and `since`. Without follow,
/// the live file's unfinished last record and the lines still open at the end are printed, so they count.
fn count_lines(files: &mut LogFiles, ends: &[u64], opts: &LogOptions) -> Result<usize, Error> {
    let mut counter = LineCounter {
        stream: opts.stream,
        open: [false; 2],
        lines: 0,
    };
    files.scan(ends, !opts.follow, &mut counter)?;
    Ok(counter.lines + if opts.follow { 0 } else { counter.open_lines() })
}

/// Counts the lines of the selected stream for `tail`, in the order they are printed: a line counts
/// when its `F` record comes.
struct LineCounter {
    stream: Option<Stream>,
    /// Per stream: a `P` record came and its line has not ended.
    open: [bool; 2],
    lines: usize,
}

impl LineCounter {
    /// Lines still open: printed at the end of a read without follow.
    fn open_lines(&self) -> usize {
        self.open.iter().filter(|open| **open).count()
    }
}

impl LineSink for LineCounter {
    fn line(&mut self, line: &[u8]) -> Result<Flow, Error> {
        let Ok(record) = parse_record(line) else {
            return Ok(Flow::Continue);
        };
        if self.stream.is_none_or(|s| s == record.stream) {
            let open = &mut self.open[record.stream.index()];
            *open = record.tag == Tag::Partial;
            if record.tag == Tag::Full {
                self.lines += 1;
            }
        }
        Ok(Flow::Continue)
    }

    fn overlong(&mut self) {}
}

/// One stream's line being decoded.
#[derive(Default)]
struct OpenLine {
    /// A record of this line came and its `F` record has not.
    open: bool,
    /// The timestamp of the line's first record.
    timestamp: Option<Timestamp>,
    /// Not before `since`.
    recent: bool,
    /// Its timestamp, and possibly content, were already printed.
    started: bool,
    /// Content not printed yet.
    held: Vec<u8>,
}

/// Turns records into output lines, applying the options.
struct Decoder<'a, W: Write> {
    opts: &'a LogOptions,
    out: &'a mut W,
    /// Lines ending before this many lines have ended are hidden by `tail`.
    skip: usize,
    /// Lines of the selected stream ended so far.
    ended: usize,
    remaining: Option<usize>,
    lines: [OpenLine; 2],
    stats: ReadStats,
}

impl<'a, W: Write> Decoder<'a, W> {
    fn new(opts: &'a LogOptions, out: &'a mut W, skip: usize) -> Self {
        Decoder {
            opts,
            out,
            skip,
            ended: 0,
            remaining: opts.limit_bytes,
            lines: Default::default(),
            stats: ReadStats::default(),
        }
    }

    /// Ends the lines left open at the end (a last line without newline), oldest first.
    fn finish(&mut self) -> Result<Flow, Error> {
        let mut order = [Stream::Stdout, Stream::Stderr];
        order.sort_by_key(|s| self.lines[s.index()].timestamp);
        for stream in order {
            let i = stream.index();
            if std::mem::take(&mut self.lines[i].open) && self.end_line(i, false)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// Prints the line of stream `i`, which just ended, unless `tail` or `since` hide it.
    fn end_line(&mut self, i: usize, newline: bool) -> Result<Flow, Error> {
        let index = self.ended;
        self.ended += 1;
        let line = &mut self.lines[i];
        if line.recent && (line.started || index >= self.skip) {
            self.stats.lines += 1;
            self.print(i, newline)
        } else {
            line.held.clear();
            Ok(Flow::Continue)
        }
    }

    /// A partial line grew too long to hold: prints it now if `tail` no longer hides anything, else
    /// drops what it held so far (a line over `MAX_HELD_BYTES` across the tail boundary prints clipped).
    fn release(&mut self, i: usize) -> Result<Flow, Error> {
        if self.ended >= self.skip {
            return self.print(i, false);
        }
        self.lines[i].held.clear();
        Ok(Flow::Continue)
    }

    /// Prints the held content of stream `i`, its timestamp first if not printed yet.
    fn print(&mut self, i: usize, newline: bool) -> Result<Flow, Error> {
        let held = std::mem::take(&mut self.lines[i].held);
        let mut flow = Flow::Continue;
        if !self.lines[i].started && self.opts.timestamps {
            if let Some(ts) = self.lines[i].timestamp {
                flow = self.put(format!("{ts:.9} ").as_bytes())?;
            }
        }
        self.lines[i].started = true;
        if flow == Flow::Continue && !held.is_empty() {
            flow = self.put(&held)?;
        }
        if flow == Flow::Continue && newline {
            flow = self.put(b"\n")?;
        }
        let line = &mut self.lines[i];
        line.held = held;
        line.held.clear();
        Ok(flow)
    }

    /// Writes bytes within `limit_bytes`.
    fn put(&mut self, bytes: &[u8]) -> Result<Flow, Error> {
        let take = self.remaining.map_or(bytes.len(), |r| r.min(bytes.len()));
        let now = bytes.get(..take).unwrap_or_default();
        self.out
            .write_all(now)
            .map_err(|source| Error::WriteOutput { source })?;
        self.stats.bytes += take as u64;
        match &mut self.remaining {
            Some(remaining) => {
                *remaining -= take;
                Ok(if *remaining == 0 {
                    Flow::Stop
                } else {
                    Flow::Continue
                })
            }
            None => Ok(Flow::Continue),
        }
    }
}

impl<W: Write> LineSink for Decoder<'_, W> {
    fn line(&mut self, line: &[u8]) -> Result<Flow, Error> {
        let record = match parse_record(line) {
            Ok(record) => record,
            Err(reason) => {
                self.stats.malformed += 1;
                let start = String::from_utf8_lossy(line.get(..120).unwrap_or(line));
                debug!(?reason, line = %start, "skipping malformed log line");
                return Ok(Flow::Continue);
            }
        };
        if self.opts.stream.is_some_and(|s| s != record.stream) {
            return Ok(Flow::Continue);
        }
        let i = record.stream.index();
        let line = &mut self.lines[i];
        if !line.open {
            line.open = true;
            line.timestamp = Some(record.timestamp);
            line.recent = self.opts.since.is_none_or(|since| record.timestamp >= since);
            line.started = false;
            line.held.clear();
        }
        if line.recent {
            line.held.extend_from_slice(record.content);
        }
        match record.tag {
            Tag::Full => {
                line.open = false;
                self.end_line(i, true)
            }
            Tag::Partial if line.held.len() >= MAX_HELD_BYTES => self.release(i),
            Tag::Partial => Ok(Flow::Continue),
        }
    }

    fn overlong(&mut self) {
        self.stats.malformed += 1;
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.out.flush().map_err(|source| Error::WriteOutput { source })
    }
}

#[cfg(test)]
mod tests;
