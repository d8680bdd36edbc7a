//! Ordinary unpacking: whiteout conversion, metadata, replacement, truncation; and the shared fixture.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::*;
use crate::image::testutil::{is_root, Tar};

/// A layer directory next to a sentinel directory that no layer may touch.
pub(super) struct Fixture {
    _outer: tempfile::TempDir,
    pub(super) layer: PathBuf,
    sentinel: PathBuf,
}

impl Fixture {
    pub(super) fn new() -> Self {
        let outer = tempfile::tempdir().expect("tempdir");
        let layer = outer.path().join("layer");
        let sentinel = outer.path().join("sentinel");
        fs::create_dir(&layer).expect("layer dir");
        fs::create_dir(&sentinel).expect("sentinel dir");
        fs::write(sentinel.join("unbroken"), "unbroken").expect("sentinel file");
        fs::set_permissions(sentinel.join("unbroken"), fs::Permissions::from_mode(0o400)).expect("chmod");
        Self {
            _outer: outer,
            layer,
            sentinel,
        }
    }

    /// The sentinel's absolute path, for symlinks planted to point at it.
    pub(super) fn outside(&self) -> String {
        self.sentinel.display().to_string()
    }

    pub(super) fn unpack(&self, tar: Vec<u8>) -> Result<(), UnpackError> {
        unpack_layer(&mut &tar[..], &self.layer, u64::MAX)
    }

    /// The sentinel and the directory around the layer are exactly as created.
    pub(super) fn assert_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.sentinel)
            .expect("sentinel")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["unbroken"], "sentinel gained or lost entries");
        let file = self.sentinel.join("unbroken");
        assert_eq!(fs::read_to_string(&file).expect("read sentinel"), "unbroken");
        let meta = fs::metadata(&file).expect("sentinel meta");
        assert_eq!(
            (meta.mode() & 0o7777, meta.nlink(), meta.uid()),
            (0o400, 1, nix::unistd::geteuid().as_raw())
        );
        let parent = self.layer.parent().expect("outer");
        let mut outer: Vec<_> = fs::read_dir(parent)
            .expect("outer")
            .map(|e| e.expect("entry").file_name())
            .collect();
        outer.sort();
        assert_eq!(
            outer,
            ["layer", "sentinel"],
            "something was created next to the layer"
        );
    }

    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.layer.join(rel)
    }
}

pub(super) type Check = fn(&Fixture, Result<(), UnpackError>);
pub(super) type Build = fn(&Fixture) -> Vec<u8>;
pub(super) type Case = (&'static str, Build, Check);

pub(super) fn refused(_: &Fixture, result: Result<(), UnpackError>) {
    assert!(result.is_err(), "hostile layer was accepted");
}

#[test]
fn whiteouts_become_overlayfs_whiteouts() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let tar = Tar::default()
        .file(".wh.gone", b"")
        .dir("opaque")
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/kept", b"k")
        .file("nested/deeper/.wh.x", b"")
        .file("same", b"mine")
        .file(".wh.same", b"")
        .file(".wh..wh.plnk", b"")
        .finish();
    fixture.unpack(tar).expect("unpack");
    for rel in ["gone", "nested/deeper/x"] {
        let meta = fs::symlink_metadata(fixture.path(rel)).expect(rel);
        assert!(meta.file_type().is_char_device(), "{rel} is a whiteout device");
        assert_eq!((meta.rdev(), meta.uid(), meta.gid()), (0, 0, 0), "{rel}");
    }
    assert_eq!(
        xattr::get(fixture.path("opaque"), OPAQUE_XATTR).expect("getxattr"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        fs::read(fixture.path("same")).expect("same"),
        b"mine",
        "same-layer entries are not whited out"
    );
    assert!(!fixture.path(".wh.gone").exists() && !fixture.path("opaque/.wh..wh..opq").exists());
    assert!(
        fs::symlink_metadata(fixture.path(".wh.plnk")).is_err(),
        "aufs metadata is ignored"
    );
}

#[test]
fn metadata_comes_from_the_tar() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let tar = Tar::default()
        .dir("bin")
        .pax(&[
            ("uid", b"100000"),
            ("gid", b"2000"),
            ("SCHILY.xattr.user.note", b"hello"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ])
        .entry(EntryType::Regular, "bin/suid", None, 0o4755, b"#!")
        .device(EntryType::Char, "dev/null", 1, 3, 0o666)
        .entry(EntryType::Fifo, "run/fifo", None, 0o600, b"")
        .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .dir("notopaque")
        .finish();
    fixture.unpack(tar).expect("unpack");
    let suid = fs::metadata(fixture.path("bin/suid")).expect("suid");
    assert_eq!(
        (suid.mode() & 0o7777, suid.uid(), suid.gid()),
        (0o4755, 100_000, 2000)
    );
    assert_eq!(suid.mtime(), 1_600_000_000);
    assert_eq!(
        xattr::get(fixture.path("bin/suid"), "user.note").expect("get"),
        Some(b"hello".to_vec())
    );
    assert_eq!(
        xattr::get(fixture.path("bin/suid"), "trusted.overlay.redirect").expect("get"),
        None
    );
    assert_eq!(
        xattr::get(fixture.path("notopaque"), OPAQUE_XATTR).expect("get"),
        None
    );
    let null = fs::symlink_metadata(fixture.path("dev/null")).expect("null");
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o777),
        (nix::sys::stat::makedev(1, 3), 0o666)
    );
    assert!(fs::symlink_metadata(fixture.path("run/fifo"))
        .expect("fifo")
        .file_type()
        .is_fifo());
    let bin = fs::metadata(fixture.path("bin")).expect("bin");
    assert_eq!(
        bin.mtime(),
        1_600_000_000,
        "directory mtime restored after its children were created"
    );
    let implicit = fs::metadata(fixture.path("dev")).expect("dev");
    assert_eq!(
        implicit.mode() & 0o7777,
        0o755,
        "missing parents are created 0755"
    );
    fixture.assert_untouched();
}

#[test]
fn later_entries_replace_earlier_ones() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let tar = Tar::default()
        .file("x", b"file")
        .dir("x")
        .dir("y")
        .file("y/child", b"c")
        .file("y", b"now a file")
        .symlink("z", "target")
        .file("z", b"replaced link")
        .finish();
    fixture.unpack(tar).expect("unpack");
    assert!(fs::symlink_metadata(fixture.path("x")).expect("x").is_dir());
    assert_eq!(fs::read(fixture.path("y")).expect("y"), b"now a file");
    assert_eq!(fs::read(fixture.path("z")).expect("z"), b"replaced link");
}

#[test]
fn truncated_streams_fail() {
    let fixture = Fixture::new();
    let mut tar = Tar::default().file("big", &[7u8; 4096]).finish();
    tar.truncate(1024);
    assert!(matches!(
        fixture.unpack(tar),
        Err(UnpackError::CreateEntry { .. } | UnpackError::ReadArchive { .. })
    ));
}

#[test]
fn clean_rejects_only_escapes() {
    let cases = [
        ("a/b", Some(vec!["a", "b"])),
        ("/a//./b/", Some(vec!["a", "b"])),
        ("a/../b", Some(vec!["b"])),
        ("./", Some(vec![])),
        ("..", None),
        ("a/../../b", None),
    ];
    for (input, want) in cases {
        let got = clean(Path::new(input)).map(|parts| {
            parts
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        });
        assert_eq!(
            got,
            want.map(|w| w.into_iter().map(String::from).collect()),
            "{input}"
        );
    }
}
