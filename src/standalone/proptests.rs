//! Property test: a manifest with hostile names anywhere a name becomes a path or cgroup (uid, name,
//! namespace, container and volume names: traversal, separators, NUL, dot names, very long) is refused by
//! validation, or every directory and cgroup derived from it stays inside the state, run and cgroup roots.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::api::validation;
use crate::runtime::layout::proptests::{assert_contained, hostile_name};
use crate::runtime::layout::{is_plain, join_component, RuntimeConfig};

fn manifest(uid: &Option<String>, name: &str, ns: &str, containers: &[String], volumes: &[String]) -> String {
    let containers: Vec<_> = containers
        .iter()
        .map(|c| json!({"name": c, "image": "localhost/busybox:1"}))
        .collect();
    let volumes: Vec<_> = volumes
        .iter()
        .map(|v| json!({"name": v, "emptyDir": {}}))
        .collect();
    let mut meta = json!({"name": name, "namespace": ns});
    if let Some(uid) = uid {
        meta["uid"] = json!(uid);
    }
    let doc = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"containers": containers, "volumes": volumes}});
    doc.to_string()
}

/// Mostly valid names, so that whole manifests often pass validation and reach the layout checks.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", 1 => hostile_name()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hostile_manifests_are_refused_or_stay_inside(
        uid in prop::option::of(hostile_name()),
        name in name(),
        ns in name(),
        containers in prop::collection::vec(name(), 1..3),
        volumes in prop::collection::vec(name(), 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pod.yaml"), manifest(&uid, &name, &ns, &containers, &volumes)).unwrap();
        let found = scan(&[dir.path().to_path_buf()], "node-a");
        let cfg = RuntimeConfig::new("/s/state".into(), "/s/run".into(), "runc".into(), "peapod".into());
        for key in found.invalid.keys() {
            // A refused pod is only ever named by a uid that is safe to name its status file with.
            prop_assert!(validation::is_valid_uid(key), "{key:?}");
        }
        for (key, pod) in &found.pods {
            prop_assert!(validation::is_valid_uid(key), "{key:?}");
            let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            // Validation admits only names the layout uses as they are: no escape, no replacement.
            prop_assert!(is_plain(key) && is_plain(ns) && is_plain(name), "{ns:?}/{name:?} {key:?}");
            for c in &pod.spec.pod.containers {
                prop_assert!(is_plain(&c.name), "{:?}", c.name);
                assert_contained(&cfg, key, ns, name, &c.name);
            }
            let volumes_root = crate::volume::empty_dir_root(&cfg.pod_dir(key));
            for v in pod.spec.pod.volumes.iter().flatten() {
                prop_assert!(is_plain(&v.name), "{:?}", v.name);
                let path = join_component(&volumes_root, &v.name);
                prop_assert_eq!(path.as_ref().and_then(|p| p.parent()), Some(volumes_root.as_path()));
            }
        }
    }
}
