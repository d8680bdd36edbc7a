//! The hostile-layer corpus (modelled on containerd's pkg/archive TestBreakouts) and the ordinary cases.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::*;
use crate::image::testutil::{is_root, Tar};

/// A layer directory next to a sentinel directory that no layer may touch.
struct Fixture {
    _outer: tempfile::TempDir,
    layer: PathBuf,
    sentinel: PathBuf,
}

impl Fixture {
    fn new() -> Self {
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
    fn outside(&self) -> String {
        self.sentinel.display().to_string()
    }

    fn unpack(&self, tar: Vec<u8>) -> Result<(), UnpackError> {
        unpack_layer(&mut &tar[..], &self.layer)
    }

    /// The sentinel and the directory around the layer are exactly as created.
    fn assert_untouched(&self) {
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

    fn path(&self, rel: &str) -> PathBuf {
        self.layer.join(rel)
    }
}

type Check = fn(&Fixture, Result<(), UnpackError>);
type Build = fn(&Fixture) -> Vec<u8>;
type Case = (&'static str, Build, Check);

fn refused(_: &Fixture, result: Result<(), UnpackError>) {
    assert!(result.is_err(), "hostile layer was accepted");
}

#[test]
fn breakouts_are_refused_and_the_sentinel_survives() {
    if !is_root() {
        return;
    }
    let cases: Vec<Case> = vec![
        (
            "SymlinkAbsolute",
            |f| {
                Tar::default()
                    .dir("etc")
                    .symlink("localetc", &f.outside())
                    .file("localetc/unbroken", b"broken")
                    .finish()
            },
            refused,
        ),
        (
            "SymlinkAbsoluteRootPath",
            |_| {
                Tar::default()
                    .dir("etc")
                    .symlink("localetc", "/etc")
                    .file("/localetc/unbroken", b"x")
                    .finish()
            },
            refused,
        ),
        (
            "SymlinkUpAndOut",
            |_| {
                Tar::default()
                    .symlink("localetc", "../sentinel")
                    .file("localetc/unbroken", b"broken")
                    .finish()
            },
            refused,
        ),
        (
            "SymlinkMultipleAbsolute",
            |f| {
                Tar::default()
                    .dir("dummy")
                    .symlink("dummy/etc", &f.outside())
                    .symlink("localetc", "/dummy/etc")
                    .file("/dummy/etc/unbroken", b"broken")
                    .finish()
            },
            refused,
        ),
        (
            "SymlinkMultipleRelative",
            |_| {
                Tar::default()
                    .dir("dummy")
                    .symlink("dummy/etc", "../../sentinel")
                    .symlink("localetc", "./dummy/etc")
                    .file("localetc/unbroken", b"broken")
                    .finish()
            },
            refused,
        ),
        (
            "SymlinkEmptyFile",
            |f| {
                Tar::default()
                    .symlink("localetc", &f.outside())
                    .file("localetc/unbroken", b"")
                    .finish()
            },
            refused,
        ),
        (
            "DotDotFile",
            |_| Tar::default().file("../sentinel/unbroken", b"broken").finish(),
            refused,
        ),
        (
            "DotDotDeep",
            |_| {
                Tar::default()
                    .file("a/../../sentinel/unbroken", b"broken")
                    .finish()
            },
            refused,
        ),
        (
            "DotDotDir",
            |_| Tar::default().dir("../sentinel/new").finish(),
            refused,
        ),
        (
            "SymlinkNamedDotDot",
            |f| Tar::default().symlink("..", &f.outside()).finish(),
            refused,
        ),
        (
            "SymlinkParentRelative",
            |f| {
                Tar::default()
                    .symlink("localetc/sub/..", &f.outside())
                    .file("localetc/unbroken", b"broken")
                    .finish()
            },
            refused,
        ),
        (
            "HardlinkDirectRelative",
            |_| {
                Tar::default()
                    .hardlink("localpasswd", "../sentinel/unbroken")
                    .finish()
            },
            refused,
        ),
        (
            "HardlinkRelativeLong",
            |_| {
                Tar::default()
                    .hardlink("localpasswd", "../../../../../../sentinel/unbroken")
                    .finish()
            },
            refused,
        ),
        (
            "HardlinkAbsoluteHostPath",
            |f| {
                Tar::default()
                    .hardlink("localpasswd", &format!("{}/unbroken", f.outside()))
                    .finish()
            },
            refused,
        ),
        (
            "HardlinkRelative",
            |f| {
                Tar::default()
                    .dir("breakouts")
                    .symlink("breakouts/d1", &f.outside())
                    .hardlink("breakouts/mypasswd", "breakouts/d1/unbroken")
                    .finish()
            },
            refused,
        ),
        (
            "HardlinkDownAndOut",
            |_| {
                Tar::default()
                    .dir("breakouts")
                    .dir("downandout")
                    .symlink("breakouts/d1", "../downandout/../../sentinel")
                    .hardlink("breakouts/mypasswd", "breakouts/d1/unbroken")
                    .finish()
            },
            refused,
        ),
        (
            "HardlinkToDirectory",
            |_| Tar::default().dir("etc").hardlink("etclink", "etc").finish(),
            refused,
        ),
        (
            "HardlinkMissingTarget",
            |_| Tar::default().hardlink("x", "does/not/exist").finish(),
            refused,
        ),
        (
            "WhiteoutRoot",
            |_| Tar::default().file(".wh..", b"").finish(),
            refused,
        ),
        (
            "WhiteoutParent",
            |_| Tar::default().dir("etc").file("etc/.wh...", b"").finish(),
            refused,
        ),
        (
            "WhiteoutCurrentDirectory",
            |_| Tar::default().dir("etc").file("etc/.wh..", b"").finish(),
            refused,
        ),
        (
            "WhiteoutEmptyName",
            |_| Tar::default().file(".wh.", b"").finish(),
            refused,
        ),
        (
            "WhiteoutSymlinkPath",
            |f| {
                Tar::default()
                    .symlink("localetc", &f.outside())
                    .file("localetc/.wh.unbroken", b"")
                    .finish()
            },
            refused,
        ),
        (
            "OpaqueThroughSymlink",
            |f| {
                Tar::default()
                    .symlink("localetc", &f.outside())
                    .file("localetc/.wh..wh..opq", b"")
                    .finish()
            },
            refused,
        ),
        (
            "SymlinkOverrideDirectory",
            |f| {
                Tar::default()
                    .dir("localetc")
                    .file("localetc/a", b"a")
                    .symlink("localetc", &f.outside())
                    .file("localetc/unbroken", b"broken")
                    .finish()
            },
            refused,
        ),
        (
            "DeviceThroughSymlink",
            |f| {
                Tar::default()
                    .symlink("dev", &f.outside())
                    .device(EntryType::Char, "dev/null", 1, 3, 0o666)
                    .finish()
            },
            refused,
        ),
        (
            "PaxPathEscape",
            |_| {
                Tar::default()
                    .pax(&[("path", b"../sentinel/unbroken")])
                    .file("innocent", b"broken")
                    .finish()
            },
            refused,
        ),
    ];
    for (name, build, check) in cases {
        let fixture = Fixture::new();
        let result = fixture.unpack(build(&fixture));
        eprintln!("{name}: {result:?}");
        check(&fixture, result);
        fixture.assert_untouched();
    }
}

#[test]
fn tolerated_oddities_stay_inside_the_layer() {
    if !is_root() {
        return;
    }
    let cases: Vec<Case> = vec![
        (
            "AbsolutePathNormalizedUnderRoot",
            |_| Tar::default().file("/etc/passwd", b"inside").finish(),
            |f, r| {
                r.expect("unpack");
                assert_eq!(fs::read(f.path("etc/passwd")).expect("read"), b"inside");
            },
        ),
        (
            "HardlinkAbsoluteInsideLayer",
            |_| {
                Tar::default()
                    .dir("etc")
                    .file("etc/passwd", b"inside")
                    .hardlink("localpasswd", "/etc/passwd")
                    .finish()
            },
            |f, r| {
                r.expect("unpack");
                let (a, b) = (
                    fs::metadata(f.path("localpasswd")).expect("a"),
                    fs::metadata(f.path("etc/passwd")).expect("b"),
                );
                assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
            },
        ),
        (
            "HardlinkSymlinkAndOut",
            |f| {
                Tar::default()
                    .symlink("passwdlink", &format!("{}/unbroken", f.outside()))
                    .hardlink("localpasswd", "passwdlink")
                    .finish()
            },
            |f, r| {
                r.expect("unpack");
                let link = fs::symlink_metadata(f.path("localpasswd")).expect("lstat");
                assert!(
                    link.file_type().is_symlink(),
                    "hard link must be to the symlink itself"
                );
            },
        ),
        (
            "DirectoryOverrideSymlink",
            |f| {
                Tar::default()
                    .symlink("localetc", &f.outside())
                    .dir("localetc")
                    .file("localetc/x", b"inside")
                    .finish()
            },
            |f, r| {
                r.expect("unpack");
                assert!(fs::symlink_metadata(f.path("localetc")).expect("lstat").is_dir());
                assert_eq!(fs::read(f.path("localetc/x")).expect("read"), b"inside");
            },
        ),
        (
            "SymlinkEmptyFilename",
            |f| {
                Tar::default()
                    .symlink("", &f.outside())
                    .symlink("./", &f.outside())
                    .finish()
            },
            |f, r| {
                r.expect("unpack");
                assert!(fs::symlink_metadata(&f.layer).expect("lstat").is_dir());
            },
        ),
        (
            "WhiteoutDirectoryName",
            |_| Tar::default().file(".wh.etc/somefile", b"non-empty").finish(),
            |f, r| {
                r.expect("unpack");
                assert_eq!(fs::read(f.path(".wh.etc/somefile")).expect("read"), b"non-empty");
            },
        ),
    ];
    for (name, build, check) in cases {
        let fixture = Fixture::new();
        let result = fixture.unpack(build(&fixture));
        eprintln!("{name}: {result:?}");
        check(&fixture, result);
        fixture.assert_untouched();
    }
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
