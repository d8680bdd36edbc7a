//! Property tests: whatever names reach the layout (traversal, separators, NUL, dot names, `_`, unicode,
//! very long), every path is its root plus exactly the expected number of components, every cgroup is the
//! cgroup parent plus exactly the expected segments, and distinct names never share a directory.

use std::path::{Component, Path};

use proptest::prelude::*;

use super::*;

/// Names built from the pieces attacks are made of, plus plain and arbitrary ones.
pub(crate) fn hostile_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just("/".to_string()),
        Just("\0".to_string()),
        Just("_".to_string()),
        Just("-".to_string()),
        Just("web".to_string()),
        Just("9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d01".to_string()),
        "[a-z0-9]{1,8}",
        any::<String>(),
        (1usize..400).prop_map(|n| "a".repeat(n)),
    ];
    prop_oneof![
        prop::collection::vec(piece, 0..6).prop_map(|v| v.concat()),
        "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
    ]
}

/// `path` is `root` followed by exactly `extra` normal components.
fn assert_below(root: &Path, path: &Path, extra: usize) {
    let rest = path
        .strip_prefix(root)
        .unwrap_or_else(|_| panic!("{path:?} outside {root:?}"));
    let parts: Vec<_> = rest.components().collect();
    assert_eq!(parts.len(), extra, "{path:?}");
    assert!(
        parts.iter().all(|c| matches!(c, Component::Normal(_))),
        "{path:?}"
    );
}

/// `cgroup` is `parent` followed by exactly `extra` segments, none empty, `.` or `..`.
fn assert_cgroup_below(parent: &str, cgroup: &str, extra: usize) {
    let rest = cgroup
        .strip_prefix(parent)
        .unwrap_or_else(|| panic!("{cgroup} outside {parent}"));
    let segs: Vec<&str> = rest.strip_prefix('/').unwrap_or("?").split('/').collect();
    assert_eq!(segs.len(), extra, "{cgroup}");
    assert!(
        segs.iter()
            .all(|s| !s.is_empty() && *s != "." && *s != ".." && !s.contains('\0')),
        "{cgroup}"
    );
}

fn cfg() -> RuntimeConfig {
    RuntimeConfig::new("/s/state".into(), "/s/run".into(), "runc".into(), "peapod".into())
}

/// Every path and cgroup the layout derives for these names stays below its root.
pub(crate) fn assert_contained(cfg: &RuntimeConfig, uid: &str, ns: &str, name: &str, container: &str) {
    let (state, run) = (&cfg.state_dir, &cfg.run_dir);
    assert_below(state, &cfg.pod_dir(uid), 2);
    assert_below(state, &cfg.container_dir(uid, container), 4);
    assert_below(state, &cfg.instance_dir(uid, container, 7), 5);
    assert_below(state, &cfg.pod_log_dir(ns, name, uid), 2);
    assert_below(state, &cfg.container_log_dir(ns, name, uid, container), 3);
    assert_below(run, &cfg.sandbox_run_dir(name), 2);
    assert_below(run, &cfg.shim_record(container), 2);
    let parent = cfg.cgroup_parent.trim_end_matches('/');
    for qos in [QosClass::Guaranteed, QosClass::Burstable, QosClass::BestEffort] {
        let depth = usize::from(qos.cgroup_dir().is_some());
        assert_cgroup_below(parent, &cfg.pod_cgroup(uid, qos), 1 + depth);
        assert_cgroup_below(parent, &cfg.cgroups_path(uid, qos, container), 2 + depth);
        assert_cgroup_below(parent, &cfg.helper_cgroup(uid, qos), 2 + depth);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_name_leaves_its_root(
        uid in hostile_name(),
        ns in hostile_name(),
        name in hostile_name(),
        container in hostile_name(),
    ) {
        assert_contained(&cfg(), &uid, &ns, &name, &container);
    }

    #[test]
    fn distinct_names_get_distinct_directories(a in hostile_name(), b in hostile_name()) {
        let cfg = cfg();
        prop_assume!(a != b);
        prop_assert_ne!(cfg.pod_dir(&a), cfg.pod_dir(&b));
        prop_assert_ne!(cfg.pod_cgroup(&a, QosClass::BestEffort), cfg.pod_cgroup(&b, QosClass::BestEffort));
        prop_assert_ne!(cfg.pod_log_dir("default", &a, "u"), cfg.pod_log_dir("default", &b, "u"));
        prop_assert_ne!(cfg.pod_log_dir(&a, "x", "u"), cfg.pod_log_dir(&b, "x", "u"));
    }
}

#[test]
fn the_issue_18_values_stay_inside() {
    let cfg = cfg();
    let uid = "../../../victim/existing";
    assert_eq!(
        cfg.pod_dir("9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d01"),
        Path::new("/s/state/pods/9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d01")
    );
    let dir = cfg.pod_dir(uid);
    assert!(
        dir.to_string_lossy().starts_with("/s/state/pods/_unsafe-"),
        "{dir:?}"
    );
    assert!(cfg
        .pod_cgroup("..", QosClass::BestEffort)
        .starts_with("/peapod/besteffort/pod_unsafe-"));
    assert!(cfg
        .pod_cgroup("/../../victim", QosClass::Guaranteed)
        .starts_with("/peapod/pod_unsafe-"));
    assert_contained(&cfg, uid, "..", "a_b", "../../etc");
}
