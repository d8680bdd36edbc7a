//! Tests of reading CRI log files: partial and long lines, streams, rotation, tail, since, limits.

use std::fs;

use super::super::files::MAX_RECORD_BYTES;
use super::super::{list_rotated, MAX_LINE_SIZE};
use super::*;
use crate::runtime::log::test_support::{record, writer};

fn never() -> bool {
    false
}

fn read(dir: &Path, opts: &LogOptions) -> (String, ReadStats) {
    let mut out = Vec::new();
    let stats = read_logs(dir, "0.log", opts, &mut out, &never).unwrap();
    (String::from_utf8(out).unwrap(), stats)
}

#[test]
fn round_trip_partial_and_long_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 0, 5);
    let long = "y".repeat(2 * MAX_LINE_SIZE + 7);
    w.write(Stream::Stdout, b"hel").unwrap();
    w.write(Stream::Stdout, b"lo\nwor").unwrap();
    w.write(Stream::Stdout, format!("ld\n{long}\n").as_bytes())
        .unwrap();
    w.write(Stream::Stdout, b"no newline").unwrap();
    w.finish().unwrap();
    let (out, stats) = read(dir.path(), &LogOptions::default());
    assert_eq!(out, format!("hello\nworld\n{long}\nno newline"));
    assert_eq!(
        stats,
        ReadStats {
            lines: 4,
            malformed: 0,
            bytes: out.len() as u64
        }
    );
}

#[test]
fn interleaved_streams_join_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 0, 5);
    let long = "x".repeat(MAX_LINE_SIZE + 10);
    let (first, second) = long.split_at(MAX_LINE_SIZE + 5);
    w.write(Stream::Stdout, first.as_bytes()).unwrap();
    w.write(Stream::Stderr, b"err 1\n").unwrap();
    w.write(Stream::Stdout, format!("{second}\nout 2\n").as_bytes())
        .unwrap();
    w.write(Stream::Stderr, b"err 2\n").unwrap();
    let raw = fs::read_to_string(dir.path().join("0.log")).unwrap();
    let tags: Vec<String> = raw
        .lines()
        .map(|l| l.splitn(4, ' ').skip(1).take(2).collect())
        .collect();
    assert_eq!(tags, ["stdoutP", "stderrF", "stdoutF", "stdoutF", "stderrF"]);
    let cases = [
        (None, format!("err 1\n{long}\nout 2\nerr 2\n")),
        (Some(Stream::Stdout), format!("{long}\nout 2\n")),
        (Some(Stream::Stderr), "err 1\nerr 2\n".to_owned()),
    ];
    for (stream, want) in cases {
        let (out, _) = read(
            dir.path(),
            &LogOptions {
                stream,
                ..LogOptions::default()
            },
        );
        assert_eq!(out, want, "stream {stream:?}");
    }
}

#[test]
fn rotated_files_read_in_order_and_tail_spans_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 200, 4);
    for i in 0..30 {
        w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes())
            .unwrap();
    }
    let rotated = list_rotated(dir.path(), "0.log").unwrap();
    assert!(rotated.len() >= 3, "{rotated:?}");
    let (out, _) = read(dir.path(), &LogOptions::default());
    let first_kept = 30 - out.lines().count();
    let want: String = (first_kept..30).map(|i| format!("line {i:02}\n")).collect();
    assert_eq!(out, want);
    assert!(first_kept > 0, "max_files must have removed the oldest lines");

    for tail in [0, 1, 9, 10, 11, 1000] {
        let (out, stats) = read(
            dir.path(),
            &LogOptions {
                tail: Some(tail),
                ..LogOptions::default()
            },
        );
        let shown = tail.min(30 - first_kept);
        let want: String = (30 - shown..30).map(|i| format!("line {i:02}\n")).collect();
        assert_eq!(out, want, "tail {tail}");
        assert_eq!(stats.lines, shown as u64);
    }
}

#[test]
fn tail_counts_joined_lines_of_selected_stream() {
    let dir = tempfile::tempdir().unwrap();
    let ts = "2026-11-24T10:00:00.000000001Z";
    let log = [
        record(ts, "stdout", "F", "a"),
        record(ts, "stdout", "P", "b1"),
        record(ts, "stderr", "F", "e"),
        record(ts, "stdout", "P", "b2"),
        record(ts, "stdout", "F", "b3"),
        record(ts, "stdout", "P", "c"),
    ]
    .concat();
    fs::write(dir.path().join("0.log"), log).unwrap();
    let cases = [
        (Some(1), None, "c"),
        (Some(2), None, "b1b2b3\nc"),
        (Some(3), None, "e\nb1b2b3\nc"),
        (Some(2), Some(Stream::Stdout), "b1b2b3\nc"),
        (Some(3), Some(Stream::Stdout), "a\nb1b2b3\nc"),
        (Some(5), Some(Stream::Stderr), "e\n"),
    ];
    for (tail, stream, want) in cases {
        let (out, _) = read(
            dir.path(),
            &LogOptions {
                tail,
                stream,
                ..LogOptions::default()
            },
        );
        assert_eq!(out, want, "tail {tail:?} stream {stream:?}");
    }
}

#[test]
fn timestamps_since_and_limit_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = [
        record("2026-11-24T10:00:00.5Z", "stdout", "F", "one"),
        record("2026-11-24T10:00:01.000000002Z", "stderr", "P", "two "),
        record("2026-11-24T10:00:03Z", "stderr", "F", "halves"),
        record("2026-11-24T12:00:02+02:00", "stdout", "F", "three"),
    ]
    .concat();
    fs::write(dir.path().join("0.log"), log).unwrap();
    let since = |s: &str| Some(s.parse::<Timestamp>().unwrap());
    let cases = [
        (
            LogOptions {
                timestamps: true,
                ..LogOptions::default()
            },
            "2026-11-24T10:00:00.500000000Z one\n\
             2026-11-24T10:00:01.000000002Z two halves\n\
             2026-11-24T10:00:02.000000000Z three\n",
        ),
        (
            LogOptions {
                since: since("2026-11-24T10:00:01Z"),
                ..LogOptions::default()
            },
            "two halves\nthree\n",
        ),
        (
            LogOptions {
                since: since("2026-11-24T10:00:01.5Z"),
                ..LogOptions::default()
            },
            "three\n",
        ),
        (
            LogOptions {
                limit_bytes: Some(6),
                ..LogOptions::default()
            },
            "one\ntw",
        ),
        (
            LogOptions {
                limit_bytes: Some(0),
                ..LogOptions::default()
            },
            "",
        ),
        (
            LogOptions {
                timestamps: true,
                limit_bytes: Some(34),
                ..LogOptions::default()
            },
            "2026-11-24T10:00:00.500000000Z one",
        ),
    ];
    for (opts, want) in cases {
        let (out, stats) = read(dir.path(), &opts);
        assert_eq!(out, want, "{opts:?}");
        assert_eq!(stats.bytes, want.len() as u64);
    }
}

#[test]
fn malformed_lines_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ts = "2026-11-24T10:00:00Z";
    let log = [
        "not a record\n".to_owned(),
        record(ts, "stdout", "F", "good 1"),
        "\n".to_owned(),
        record("10:00", "stdout", "F", "bad time"),
        record(ts, "stdin", "F", "bad stream"),
        format!("{ts} stdout\n"),
        format!("{ts} stdout F {}\n", "z".repeat(MAX_RECORD_BYTES + 1)),
        record(ts, "stdout", "F", "good 2"),
        format!("{ts} stdout F torn"),
    ]
    .concat();
    fs::write(dir.path().join("0.log"), log).unwrap();
    let (out, stats) = read(dir.path(), &LogOptions::default());
    assert_eq!(out, "good 1\ngood 2\ntorn\n");
    assert_eq!(
        stats,
        ReadStats {
            lines: 3,
            malformed: 6,
            bytes: out.len() as u64
        }
    );
}

#[test]
fn missing_file_and_bad_name_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_logs(
        dir.path(),
        "0.log",
        &LogOptions::default(),
        &mut Vec::new(),
        &never,
    )
    .unwrap_err();
    assert!(matches!(err, Error::OpenLog { .. }), "{err}");
    assert!(err.to_string().contains("0.log"), "{err}");
    let err = read_logs(
        dir.path(),
        "../0.log",
        &LogOptions::default(),
        &mut Vec::new(),
        &never,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidFileName { .. }), "{err}");
}
