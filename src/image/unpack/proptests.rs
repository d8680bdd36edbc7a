//! Property tests of layer path resolution: random tar streams mixing `..`, absolute names, symlinks and
//! hard links to outside, whiteouts and replacements never panic and never touch anything outside the
//! layer; lexical cleaning never yields a component that could climb.

use std::ffi::OsStr;
use std::path::Path;

use proptest::prelude::*;
use tar::EntryType;

use super::tests::Fixture;
use super::*;
use crate::image::testutil::Tar;

/// One tar entry; link targets may name `OUTSIDE`, replaced by the fixture's sentinel path.
#[derive(Debug, Clone)]
enum Entry {
    File(String),
    Dir(String),
    Symlink(String, String),
    Hardlink(String, String),
}

const OUTSIDE: &str = "@outside";

fn name() -> impl Strategy<Value = String> {
    let part = prop::sample::select(vec![
        "a",
        "b",
        "l",
        "..",
        ".",
        "",
        ".wh.a",
        ".wh.l",
        ".wh..wh..opq",
        ".wh..wh.x",
    ]);
    (any::<bool>(), prop::collection::vec(part, 1..5))
        .prop_map(|(absolute, parts)| format!("{}{}", if absolute { "/" } else { "" }, parts.join("/")))
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => name(),
        1 => prop::sample::select(vec![OUTSIDE, "/", "..", "../..", "/proc/self/root", "l/../.."])
            .prop_map(String::from),
        1 => name().prop_map(|n| format!("{OUTSIDE}/{n}")),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        3 => name().prop_map(Entry::File),
        2 => name().prop_map(Entry::Dir),
        3 => (name(), target()).prop_map(|(n, t)| Entry::Symlink(n, t)),
        1 => (name(), target()).prop_map(|(n, t)| Entry::Hardlink(n, t)),
    ]
}

fn build(fixture: &Fixture, entries: &[Entry]) -> Vec<u8> {
    let outside = fixture.outside();
    let resolve = |t: &str| t.replace(OUTSIDE, &outside);
    let mut tar = Tar::default();
    for e in entries {
        tar = match e {
            Entry::File(n) => tar.file(n, b"hostile"),
            Entry::Dir(n) => tar.dir(n),
            Entry::Symlink(n, t) => tar.symlink(n, &resolve(t)),
            Entry::Hardlink(n, t) => tar.entry(EntryType::Link, n, Some(&resolve(t)), 0o644, b""),
        };
    }
    tar.finish()
}

/// Whether `..` takes `path` above the root: the reference `clean` must agree with.
fn climbs_out(path: &str) -> bool {
    let mut depth = 0i32;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

proptest! {
    #[test]
    fn hostile_layers_stay_inside(entries in prop::collection::vec(entry(), 1..8)) {
        let fixture = Fixture::new();
        let tar = build(&fixture, &entries);
        let _ = fixture.unpack(tar);
        fixture.assert_untouched();
    }

    #[test]
    fn clean_never_yields_a_climbing_component(path in name()) {
        match clean(Path::new(&path)) {
            Some(parts) => {
                prop_assert!(!climbs_out(&path), "{} climbs out but was accepted", path);
                for part in &parts {
                    prop_assert!(part != OsStr::new("..") && part != OsStr::new(".") && !part.is_empty());
                    prop_assert!(!part.to_string_lossy().contains('/'));
                }
            }
            None => prop_assert!(climbs_out(&path), "{} stays inside but was refused", path),
        }
    }
}
