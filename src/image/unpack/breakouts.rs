//! The hostile-layer corpus, modelled on containerd's pkg/archive TestBreakouts: every case runs next to
//! a sentinel directory that must stay untouched, whether the layer is refused or tolerated.

use std::fs;
use std::os::unix::fs::MetadataExt;

use tar::EntryType;

use super::tests::{refused, Case, Fixture};
use crate::image::testutil::{is_root, Tar};

#[test]
fn breakouts_are_refused_and_the_sentinel_survives() {
    run(BREAKOUTS);
}

#[test]
fn tolerated_oddities_stay_inside_the_layer() {
    run(TOLERATED);
}

/// Unpacks each case's layer next to the sentinel, checks the result, and that the sentinel is untouched.
fn run(cases: &[Case]) {
    if !is_root() {
        return;
    }
    for (name, build, check) in cases {
        let fixture = Fixture::new();
        let result = fixture.unpack(build(&fixture));
        eprintln!("{name}: {result:?}");
        check(&fixture, result);
        fixture.assert_untouched();
    }
}

/// Layers that try to write outside their directory: each is refused.
const BREAKOUTS: &[Case] = &[
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

/// Odd but harmless layers: each unpacks (or is refused) without leaving the layer.
const TOLERATED: &[Case] = &[
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
