//! Property tests of subPath resolution: whatever a `subPathExpr` expands to and whatever symlinks a
//! volume holds, the resolved path is inside the volume and nothing is created or changed outside it.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path};

use proptest::prelude::*;

use super::*;

/// A volume whose content was written by a hostile container, next to a sentinel directory.
struct Hostile {
    outer: tempfile::TempDir,
    root: PathBuf,
    sentinel: PathBuf,
}

impl Hostile {
    fn new() -> Hostile {
        let outer = tempfile::tempdir().expect("tempdir");
        let root = outer.path().join("vol");
        let sentinel = outer.path().join("sentinel");
        fs::create_dir(&root).expect("volume");
        fs::create_dir(&sentinel).expect("sentinel");
        fs::write(sentinel.join("keep"), "keep").expect("sentinel file");
        fs::create_dir(root.join("d")).expect("dir");
        fs::write(root.join("f"), "f").expect("file");
        for (name, target) in [
            ("up", "..".to_string()),
            ("upup", "../..".to_string()),
            ("abs", "/".to_string()),
            ("out", sentinel.display().to_string()),
            ("loop", "loop".to_string()),
            ("self", "/proc/self/root".to_string()),
            ("dd", "d/../..".to_string()),
        ] {
            symlink(target, root.join(name)).expect("symlink");
        }
        Hostile {
            outer,
            root,
            sentinel,
        }
    }

    /// Nothing outside the volume was created, removed or changed.
    fn assert_untouched(&self) {
        let mut outer: Vec<_> = fs::read_dir(self.outer.path())
            .expect("outer")
            .map(|e| e.expect("entry").file_name())
            .collect();
        outer.sort();
        assert_eq!(outer, ["sentinel", "vol"], "created next to the volume");
        let names: Vec<_> = fs::read_dir(&self.sentinel)
            .expect("sentinel")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["keep"], "the sentinel changed");
    }
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "up", "upup", "abs", "out", "loop", "self", "dd", "d", "f", "new", "..", ".", "", "proc", "etc",
        ])
        .prop_map(String::from),
        1 => "[a-z$()`]{1,4}",
    ]
}

fn sub_path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(component(), 1..6))
        .prop_map(|(absolute, parts)| format!("{}{}", if absolute { "/" } else { "" }, parts.join("/")))
}

proptest! {
    #[test]
    fn sub_path_expr_expansions_stay_relative(
        expr in sub_path(),
        values in prop::collection::vec(sub_path(), 0..3),
    ) {
        let env: Vec<(String, String)> =
            values.into_iter().enumerate().map(|(i, v)| (format!("V{i}"), v)).collect();
        let expr = format!("{expr}/$(V0)$(V1)/$(V2)");
        if let Ok(sub) = expand_sub_path(&expr, &env) {
            let p = Path::new(&sub);
            prop_assert!(!p.is_absolute(), "{}", sub);
            prop_assert!(!p.components().any(|c| c == Component::ParentDir), "{}", sub);
            prop_assert!(!sub.contains('`'), "{}", sub);
        }
    }

    #[test]
    fn sub_paths_resolve_inside_the_volume(sub in sub_path(), mode in prop::sample::select(vec![0o755u32, 0o777, 0o700])) {
        let vol = Hostile::new();
        let root_fd = sys::fs::open_dir_path(&vol.root).expect("open volume");
        if let Ok(fd) = open_or_create(&root_fd, Path::new(&sub), mode) {
            let resolved = fs::read_link(sys::fs::fd_path(&fd)).expect("readlink");
            prop_assert!(resolved.starts_with(&vol.root), "{} resolved to {}", sub, resolved.display());
        }
        vol.assert_untouched();
    }
}
