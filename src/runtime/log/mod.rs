//! Container logs in the CRI log format, written the way containerd writes them and read the way the
//! kubelet reads them.
//!
//! One record per line: `<timestamp> <stdout|stderr> <F|P> <content>\n`, the timestamp in RFC 3339 UTC
//! with nine fraction digits. A `P` (partial) record continues in the next record of the same stream; an
//! `F` (full) record ends the line. The live file of a container instance is `<restartCount>.log`; rotated
//! files sit next to it as `<restartCount>.log.<YYYYMMDD-HHMMSS>` (the kubelet's naming), with a `.<n>`
//! suffix when two rotations fall in the same second.
//!
//! This module owns the record format, the rotated-file naming, the writer used by the shim and the
//! reader used by `peapod logs`. It does not decide where log directories live nor when a container has
//! exited: callers pass paths and a stop condition.

mod files;
pub mod reader;
#[cfg(test)]
mod test_support;
pub mod writer;

use std::io;
use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;

pub use reader::{read_logs, LogOptions, ReadStats};
pub use writer::{LogConfig, LogWriter};

/// The longest content of one record; longer lines are split into `P` records and a final `F` record
/// (containerd's default `max_container_log_line_size`).
pub const MAX_LINE_SIZE: usize = 16 * 1024;

/// Errors of the log writer and reader. Each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid log file name {name:?}: want a plain file name such as 0.log")]
    InvalidFileName { name: String },
    #[error("open log file {}", path.display())]
    OpenLog { path: PathBuf, source: io::Error },
    #[error("read log file {}", path.display())]
    ReadLog { path: PathBuf, source: io::Error },
    #[error("write log file {}", path.display())]
    WriteLog { path: PathBuf, source: io::Error },
    #[error("list rotated log files in {}", dir.display())]
    ListLogDir { dir: PathBuf, source: io::Error },
    #[error("rotate log file {} to {}", from.display(), to.display())]
    RotateLog {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("remove rotated log file {}", path.display())]
    RemoveLog { path: PathBuf, source: io::Error },
    #[error("write log output")]
    WriteOutput { source: io::Error },
}

/// The stream a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The stream's name as it appears in a record.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// A dense index, for per-stream state kept in arrays.
    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }

    fn from_bytes(name: &[u8]) -> Option<Stream> {
        match name {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// Whether a record ends its line (`F`) or continues in the next record of its stream (`P`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Partial,
    Full,
}

/// One parsed record; `content` excludes the record's end of line.
#[derive(Debug, PartialEq, Eq)]
struct Record<'a> {
    timestamp: Timestamp,
    stream: Stream,
    tag: Tag,
    content: &'a [u8],
}

/// Why a line is not a CRI record; used in diagnostics only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Malformed {
    NoTimestamp,
    BadTimestamp,
    NoStream,
    BadStream,
    NoTag,
}

/// Appends one record, end of line included, to `buf`.
fn encode_record(buf: &mut Vec<u8>, timestamp: Timestamp, stream: Stream, tag: Tag, content: &[u8]) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(buf, "{timestamp:.9} {} ", stream.as_str());
    buf.push(match tag {
        Tag::Partial => b'P',
        Tag::Full => b'F',
    });
    buf.push(b' ');
    buf.extend_from_slice(content);
    buf.push(b'\n');
}

/// Parses one line (without its `\n`) the way the kubelet's `parseCRILog` does: the tag is the first
/// `:`-separated field and only `P` means partial; any RFC 3339 offset is accepted.
fn parse_record(line: &[u8]) -> Result<Record<'_>, Malformed> {
    let (time, rest) = split_field(line).ok_or(Malformed::NoTimestamp)?;
    let timestamp = std::str::from_utf8(time)
        .ok()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .ok_or(Malformed::BadTimestamp)?;
    let (stream, rest) = split_field(rest).ok_or(Malformed::NoStream)?;
    let stream = Stream::from_bytes(stream).ok_or(Malformed::BadStream)?;
    let (tags, content) = split_field(rest).ok_or(Malformed::NoTag)?;
    let first_tag = tags.split(|b| *b == b':').next().unwrap_or_default();
    let tag = if first_tag == b"P" {
        Tag::Partial
    } else {
        Tag::Full
    };
    Ok(Record {
        timestamp,
        stream,
        tag,
        content,
    })
}

/// Splits at the first space: the field before it and everything after it.
fn split_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = line.iter().position(|b| *b == b' ')?;
    Some((line.get(..at)?, line.get(at + 1..)?))
}

/// The time part of a rotated file name: `YYYYMMDD-HHMMSS` in UTC.
fn rotation_stamp(now: Timestamp) -> String {
    now.strftime("%Y%m%d-%H%M%S").to_string()
}

/// The name a rotation gives the live file `file_name`: `<file_name>.<stamp>[.<seq>]`.
fn rotated_name(file_name: &str, stamp: &str, seq: u32) -> String {
    match seq {
        0 => format!("{file_name}.{stamp}"),
        n => format!("{file_name}.{stamp}.{n}"),
    }
}

/// The sort key of a rotated file name, or `None` when `name` is not a rotation of `file_name`
/// (compressed or temporary files of other tools included).
fn rotated_key<'a>(file_name: &str, name: &'a str) -> Option<(&'a str, u32)> {
    let suffix = name.strip_prefix(file_name)?.strip_prefix('.')?;
    let (stamp, seq) = match suffix.split_once('.') {
        Some((stamp, seq)) if !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()) => {
            (stamp, seq.parse().ok()?)
        }
        Some(_) => return None,
        None => (suffix, 0),
    };
    let (date, time) = stamp.split_once('-')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    (digits(date, 8) && digits(time, 6)).then_some((stamp, seq))
}

/// The rotated files of `file_name` in `dir`, oldest first.
fn list_rotated(dir: &Path, file_name: &str) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((stamp, seq)) = rotated_key(file_name, name) {
            found.push(((stamp.to_owned(), seq), entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

/// Removes the log of one container instance (`<attempt>.log` and its rotated files). Best effort: a log
/// that is already gone is fine.
pub fn remove_instance_logs(dir: &Path, attempt: u32) {
    let name = format!("{attempt}.log");
    for rotated in list_rotated(dir, &name).unwrap_or_default() {
        let _ = std::fs::remove_file(rotated);
    }
    let _ = std::fs::remove_file(dir.join(name));
}

/// Checks that `name` is a plain file name, so joining it to a directory stays in that directory.
fn check_file_name(name: &str) -> Result<(), Error> {
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']);
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidFileName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_record_cases() {
        let ts: Timestamp = "2016-10-06T00:17:09.669794202Z".parse().unwrap();
        type Want = Result<(Stream, Tag, &'static [u8]), Malformed>;
        let cases: &[(&[u8], Want)] = &[
            (
                b"2016-10-06T00:17:09.669794202Z stdout F hello",
                Ok((Stream::Stdout, Tag::Full, b"hello")),
            ),
            (
                b"2016-10-06T00:17:09.669794202Z stderr P a b ",
                Ok((Stream::Stderr, Tag::Partial, b"a b ")),
            ),
            (
                b"2016-10-06T00:17:09.669794202Z stdout F ",
                Ok((Stream::Stdout, Tag::Full, b"")),
            ),
            (
                b"2016-10-06T00:17:09.669794202Z stdout P:x y",
                Ok((Stream::Stdout, Tag::Partial, b"y")),
            ),
            (
                b"2016-10-06T00:17:09.669794202+00:00 stdout X y",
                Ok((Stream::Stdout, Tag::Full, b"y")),
            ),
            (b"garbage", Err(Malformed::NoTimestamp)),
            (b"yesterday stdout F x", Err(Malformed::BadTimestamp)),
            (b"2016-10-06T00:17:09Z", Err(Malformed::NoTimestamp)),
            (b"2016-10-06T00:17:09Z stdout", Err(Malformed::NoStream)),
            (b"2016-10-06T00:17:09Z stdin F x", Err(Malformed::BadStream)),
            (b"2016-10-06T00:17:09Z stdout F", Err(Malformed::NoTag)),
            (b"\xff\xfe stdout F x", Err(Malformed::BadTimestamp)),
        ];
        for (line, want) in cases {
            let got = parse_record(line).map(|r| (r.stream, r.tag, r.content));
            assert_eq!(&got, want, "line {:?}", String::from_utf8_lossy(line));
        }
        assert_eq!(parse_record(cases[0].0).unwrap().timestamp, ts);
    }

    #[test]
    fn encode_then_parse() {
        let ts = Timestamp::new(1_800_000_000, 120_000_000).unwrap();
        let mut buf = Vec::new();
        encode_record(&mut buf, ts, Stream::Stderr, Tag::Partial, b"x y");
        assert_eq!(buf, b"2027-01-15T08:00:00.120000000Z stderr P x y\n");
        let line = buf.strip_suffix(b"\n").unwrap();
        let record = parse_record(line).unwrap();
        assert_eq!(
            record,
            Record {
                timestamp: ts,
                stream: Stream::Stderr,
                tag: Tag::Partial,
                content: b"x y"
            }
        );
    }

    #[test]
    fn rotated_names() {
        let ts: Timestamp = "2026-11-24T10:00:00.5Z".parse().unwrap();
        assert_eq!(rotation_stamp(ts), "20261124-100000");
        assert_eq!(
            rotated_name("0.log", "20261124-100000", 0),
            "0.log.20261124-100000"
        );
        assert_eq!(
            rotated_name("0.log", "20261124-100000", 3),
            "0.log.20261124-100000.3"
        );
        let cases = [
            ("0.log.20261124-100000", Some(("20261124-100000", 0))),
            ("0.log.20261124-100000.12", Some(("20261124-100000", 12))),
            ("0.log.20261124-100000.gz", None),
            ("0.log.20261124-100000.tmp", None),
            ("0.log.20261124-100000.", None),
            ("0.log", None),
            ("1.log.20261124-100000", None),
            ("0.log.2026112-100000", None),
            ("0.logx20261124-100000", None),
        ];
        for (name, want) in cases {
            assert_eq!(rotated_key("0.log", name), want, "{name}");
        }
    }

    #[test]
    fn list_rotated_sorts_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "0.log",
            "0.log.20261124-100001",
            "0.log.20261124-100000.10",
            "0.log.20261124-100000.2",
            "0.log.20261124-100000",
            "0.log.20261124-090000.gz",
            "1.log.20261124-080000",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let names: Vec<String> = list_rotated(dir.path(), "0.log")
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "0.log.20261124-100000",
                "0.log.20261124-100000.2",
                "0.log.20261124-100000.10",
                "0.log.20261124-100001"
            ]
        );
    }

    #[test]
    fn file_names() {
        for ok in ["0.log", "12.log", "a b"] {
            assert!(check_file_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../0.log", "a/b", "a\0"] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
