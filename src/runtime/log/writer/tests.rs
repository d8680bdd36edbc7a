//! Tests of the CRI log writer: records, line splitting, rotation, refusing symlinks.

use super::*;

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Stream, tag and content of each record, timestamps checked and dropped.
fn records(path: &Path) -> Vec<(String, String, String)> {
    lines(path)
        .iter()
        .map(|line| {
            let mut fields = line.splitn(4, ' ');
            let ts = fields.next().unwrap();
            assert_eq!(ts.len(), "2026-11-24T10:00:00.123456789Z".len(), "{ts}");
            assert!(ts.ends_with('Z') && ts.parse::<Timestamp>().is_ok(), "{ts}");
            let mut next = || fields.next().unwrap().to_owned();
            (next(), next(), next())
        })
        .collect()
}

fn rec(stream: &str, tag: &str, content: &str) -> (String, String, String) {
    (stream.to_owned(), tag.to_owned(), content.to_owned())
}

#[test]
fn chunks_become_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.log");
    let mut w = LogWriter::open(&path, LogConfig::default()).unwrap();
    w.write(Stream::Stdout, b"hel").unwrap();
    w.write(Stream::Stderr, b"oops\r\nwarn").unwrap();
    w.write(Stream::Stdout, b"lo\n\nworld\nbye").unwrap();
    w.flush_partial(Stream::Stdout).unwrap();
    w.flush_partial(Stream::Stdout).unwrap();
    w.finish().unwrap();
    assert_eq!(
        records(&path),
        [
            rec("stderr", "F", "oops"),
            rec("stdout", "F", "hello"),
            rec("stdout", "F", ""),
            rec("stdout", "F", "world"),
            rec("stdout", "P", "bye"),
            rec("stderr", "P", "warn"),
        ]
    );
}

#[test]
fn long_lines_split_at_max_line_size() {
    let cases = [
        (MAX_LINE_SIZE, vec![("F", MAX_LINE_SIZE)]),
        (MAX_LINE_SIZE + 1, vec![("P", MAX_LINE_SIZE), ("F", 1)]),
        (
            2 * MAX_LINE_SIZE + 5,
            vec![("P", MAX_LINE_SIZE), ("P", MAX_LINE_SIZE), ("F", 5)],
        ),
    ];
    for (len, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut w = LogWriter::open(&path, LogConfig::default()).unwrap();
        let mut line = vec![b'x'; len];
        line.push(b'\n');
        for chunk in line.chunks(1000) {
            w.write(Stream::Stdout, chunk).unwrap();
        }
        let got: Vec<(String, usize)> = records(&path).into_iter().map(|(_, t, c)| (t, c.len())).collect();
        let want: Vec<(String, usize)> = want.into_iter().map(|(t, n)| (t.to_owned(), n)).collect();
        assert_eq!(got, want, "line of {len} bytes");
    }
}

#[test]
fn rotation_keeps_max_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("3.log");
    fs::write(dir.path().join("3.log.20000101-000000.gz"), b"other tool").unwrap();
    let config = LogConfig {
        max_size_bytes: 200,
        max_files: 3,
    };
    let mut w = LogWriter::open(&path, config).unwrap();
    for i in 0..40 {
        w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes())
            .unwrap();
    }
    let rotated = list_rotated(dir.path(), "3.log").unwrap();
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    for file in rotated.iter().chain([&path]) {
        let len = fs::metadata(file).unwrap().len();
        assert!(len > 0 && len <= 200, "{} has {len} bytes", file.display());
    }
    let contents: Vec<String> = rotated
        .iter()
        .chain([&path])
        .flat_map(|f| records(f))
        .map(|(_, _, content)| content)
        .collect();
    let first = 40 - contents.len();
    let want: Vec<String> = (first..40).map(|i| format!("line {i:02}")).collect();
    assert_eq!(contents, want, "rotated files, oldest first, then the live file");
    assert!(
        dir.path().join("3.log.20000101-000000.gz").exists(),
        "foreign files are left alone"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o7777 & !0o640, 0, "mode {mode:o}");
}

#[test]
fn open_refuses_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    fs::write(&target, b"").unwrap();
    let path = dir.path().join("0.log");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let err = LogWriter::open(&path, LogConfig::default()).unwrap_err();
    assert!(err.to_string().contains("0.log"), "{err}");
}
