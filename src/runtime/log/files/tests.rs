//! Tests of following and tailing log files across rotation.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::super::{read_logs, LogOptions, Stream};
use super::*;
use crate::runtime::log::test_support::{record, writer};

/// An output the test can look at while the reader writes to it from another thread.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn wait_for(deadline: Instant, what: &str, condition: impl Fn() -> bool) {
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

#[test]
fn follow_survives_rotation_and_stops_after_draining() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 300, 1000);
    w.write(Stream::Stdout, b"before follow\n").unwrap();
    let out = Shared::default();
    let done = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(30);

    let writer_thread = {
        let (out, done) = (out.clone(), done.clone());
        std::thread::spawn(move || {
            wait_for(deadline, "the reader to print the first line", || {
                !out.text().is_empty()
            });
            for i in 0..50 {
                w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes())
                    .unwrap();
                w.write(Stream::Stderr, format!("err {i:02}\n").as_bytes())
                    .unwrap();
            }
            w.write(Stream::Stdout, b"last without newline").unwrap();
            w.finish().unwrap();
            done.store(true, Ordering::SeqCst);
        })
    };
    let stop = || done.load(Ordering::SeqCst) || Instant::now() > deadline;
    let opts = LogOptions {
        follow: true,
        stream: Some(Stream::Stdout),
        ..LogOptions::default()
    };
    let stats = read_logs(dir.path(), "0.log", &opts, &mut out.clone(), &stop).unwrap();
    writer_thread.join().unwrap();

    assert!(
        list_rotated(dir.path(), "0.log").unwrap().len() >= 5,
        "the writer must have rotated"
    );
    let want: String = std::iter::once("before follow\n".to_owned())
        .chain((0..50).map(|i| format!("line {i:02}\n")))
        .chain(["last without newline".to_owned()])
        .collect();
    assert_eq!(out.text(), want);
    assert_eq!(stats.lines, 52);
}

#[test]
fn follow_with_tail_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.log");
    let ts = "2026-11-24T10:00:00Z";
    fs::write(
        &path,
        [
            record(ts, "stdout", "F", "old 1"),
            record(ts, "stdout", "F", "old 2"),
        ]
        .concat(),
    )
    .unwrap();
    let out = Shared::default();
    let done = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(30);
    let truncater = {
        let (out, done, path) = (out.clone(), done.clone(), path.clone());
        std::thread::spawn(move || {
            wait_for(deadline, "the tail", || !out.text().is_empty());
            // copytruncate-style: same inode, shorter content.
            fs::write(&path, record(ts, "stdout", "F", "new")).unwrap();
            wait_for(deadline, "the new line", || out.text().ends_with("new\n"));
            done.store(true, Ordering::SeqCst);
        })
    };
    let stop = || done.load(Ordering::SeqCst) || Instant::now() > deadline;
    let opts = LogOptions {
        follow: true,
        tail: Some(1),
        ..LogOptions::default()
    };
    read_logs(dir.path(), "0.log", &opts, &mut out.clone(), &stop).unwrap();
    truncater.join().unwrap();
    assert_eq!(out.text(), "old 2\nnew\n");
}
