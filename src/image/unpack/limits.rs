//! The rest of the hostile corpus: sizes (huge and sparse files, streams past the limit, junk after the
//! archive), device nodes, and mode bits kept exactly as the image says (no more, no less).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use tar::EntryType;

use super::tests::Fixture;
use super::{unpack_layer, UnpackError};
use crate::image::testutil::{is_root, Tar};

fn unpack_limited(fixture: &Fixture, tar: &[u8], limit: u64) -> Result<(), UnpackError> {
    unpack_layer(&mut &tar[..], &fixture.layer, limit)
}

#[test]
fn sizes_past_the_limit_are_refused_with_a_clear_error() {
    if !is_root() {
        return;
    }
    let limit = 64 * 1024;
    let big = vec![7u8; 48 * 1024];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "two files past the budget",
            Tar::default().file("a", &big).file("b", &big).finish(),
        ),
        (
            "a sparse file claiming a terabyte",
            Tar::default()
                .sparse("huge", 1 << 40, &[(0, &[1u8; 512][..])])
                .finish(),
        ),
        ("junk after the end of the archive", {
            let mut tar = Tar::default().file("a", b"small").finish();
            tar.extend(std::iter::repeat_n(0u8, 2 * limit as usize));
            tar
        }),
    ];
    for (name, tar) in cases {
        let fixture = Fixture::new();
        let result = unpack_limited(&fixture, &tar, limit);
        assert!(
            matches!(result, Err(UnpackError::TooLarge { limit: l }) if l == limit),
            "{name}: {result:?}"
        );
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("65536 bytes"), "{name}: {message}");
        fixture.assert_untouched();
    }
    let fixture = Fixture::new();
    unpack_limited(&fixture, &Tar::default().file("a", &big).finish(), limit).expect("within the limit");
}

#[test]
fn sparse_files_stay_sparse() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let size = 64u64 << 20;
    let data = [0xabu8; 512];
    let tar = Tar::default()
        .sparse("disk.img", size, &[(0, &data[..]), (size / 2, &data[..])])
        .file("zeros", &[0u8; 256 * 1024])
        .finish();
    unpack_limited(&fixture, &tar, 2 << 30).expect("unpack");
    let meta = fs::metadata(fixture.path("disk.img")).expect("sparse file");
    assert_eq!(meta.len(), size);
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "{} blocks allocated",
        meta.blocks()
    );
    let bytes = fs::read(fixture.path("zeros")).expect("zeros");
    assert_eq!(bytes.len(), 256 * 1024);
    assert!(bytes.iter().all(|&b| b == 0));
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs::File::open(fixture.path("disk.img")).expect("open");
    let mut middle = [0u8; 512];
    file.seek(SeekFrom::Start(size / 2)).expect("seek");
    file.read_exact(&mut middle).expect("read");
    assert_eq!(middle, data);
    fixture.assert_untouched();
}

#[test]
fn device_nodes_and_mode_bits_are_exactly_the_images() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let tar = Tar::default()
        .device(EntryType::Block, "dev/sda", 8, 0, 0o660)
        .device(EntryType::Char, "dev/tty9", 4, 9, 0o4620)
        .entry(EntryType::Regular, "bin/plain", None, 0o755, b"x")
        .entry(EntryType::Regular, "bin/was-suid", None, 0o4755, b"x")
        .entry(EntryType::Regular, "bin/was-suid", None, 0o755, b"replaced")
        .entry(EntryType::Regular, "bin/sgid", None, 0o2711, b"x")
        .hardlink("bin/sgid-link", "bin/sgid")
        .entry(EntryType::Directory, "shared", None, 0o3777, b"")
        .finish();
    unpack_limited(&fixture, &tar, u64::MAX).expect("unpack");
    let sda = fs::symlink_metadata(fixture.path("dev/sda")).expect("sda");
    assert!(sda.file_type().is_block_device());
    assert_eq!(
        (sda.rdev(), sda.mode() & 0o7777),
        (nix::sys::stat::makedev(8, 0), 0o660)
    );
    let tty = fs::symlink_metadata(fixture.path("dev/tty9")).expect("tty9");
    assert!(tty.file_type().is_char_device());
    assert_eq!(tty.mode() & 0o7777, 0o4620, "device mode bits as the image says");
    let mode = |rel: &str| fs::symlink_metadata(fixture.path(rel)).expect(rel).mode() & 0o7777;
    assert_eq!(mode("bin/plain"), 0o755);
    assert_eq!(
        mode("bin/was-suid"),
        0o755,
        "a replaced entry does not inherit setuid"
    );
    assert_eq!(mode("bin/sgid"), 0o2711);
    assert_eq!(mode("bin/sgid-link"), 0o2711, "a hard link shares the inode");
    assert_eq!(mode("shared"), 0o3777, "sticky and setgid directories kept");
    fixture.assert_untouched();
}
