//! Root integration tests of issue 18: values from a manifest that become paths, cgroup names or file names
//! (uid, name, namespace, container and volume names) never reach outside the state, run and cgroup roots,
//! and two manifests never share one pod's directories and cgroup. Each hostile value is refused by name,
//! with the API server's wording, and nothing outside the roots is created, written or removed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use peapod::api::PodGroup;
use peapod::standalone::store::StatusStore;
use serde_json::{json, Value};

use common::builder::PodBuilder;
use common::{c, pod, st, wait_for, Node};

const T: Duration = Duration::from_secs(60);
const UUID_MSG: &str = "must be a lowercase UUID in 8-4-4-4-12 format";

/// A Pod whose container `c` sleeps for an hour.
fn sleeping(name: &str) -> PodBuilder {
    pod(name).grace(2).container(c("c").command(["sleep", "3600"]))
}

fn status_of(p: &PodGroup) -> (String, String) {
    let s = p.status.as_ref().map(|s| s.pod.clone()).unwrap_or_default();
    (s.reason.unwrap_or_default(), s.message.unwrap_or_default())
}

/// Every path below `root`, except the node's own roots (`skip`).
fn tree(root: &Path, skip: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            if skip.contains(&path) {
                continue;
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                todo.push(path.clone());
            }
            out.insert(path);
        }
    }
    out
}

/// Cgroup directories called `name` at the top of any hierarchy.
fn top_cgroups(name: &str) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    peapod::runtime::cgroup::hierarchies(&info)
        .into_iter()
        .map(|h| h.mount.join(name))
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn a_uid_that_climbs_out_of_the_state_dir_is_refused_and_deletes_nothing() {
    let mut node = Node::new();
    // <state>/pods/../../victim/existing is <node dir>/victim/existing: outside every root.
    let victim = node.dir.path().join("victim/existing");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("sentinel"), "keep me").unwrap();
    let uid = "../../victim/existing";
    node.apply("x.yaml", &sleeping("x").uid(uid).manifest());
    node.start();
    let refused = node.wait_pod("x", "refused", T, |p| st::phase(p) == "Failed");
    let want = format!("metadata.uid: Invalid value: {uid:?}: {UUID_MSG}");
    assert_eq!(status_of(&refused), ("InvalidSpec".to_string(), want.clone()));
    wait_for("the InvalidSpec event", T, || {
        node.events("x")
            .contains(&("InvalidSpec".to_string(), want.clone()))
            .then_some(())
    });
    node.delete("x.yaml");
    wait_for("x to be gone", T, || node.get("x").is_none().then_some(()));
    let left: Vec<_> = fs::read_dir(&victim)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec!["sentinel"]);
    assert_eq!(fs::read_to_string(victim.join("sentinel")).unwrap(), "keep me");
    node.stop(T);
    node.assert_clean();
}

#[test]
fn a_second_manifest_with_the_same_uid_is_refused_and_the_first_runs_on() {
    let mut node = Node::new();
    let uid = "0f4e2a4c-7d0b-4bde-9d35-1f6f2d9c8a11";
    node.apply("a.yaml", &sleeping("first").uid(uid).manifest());
    node.apply("b.yaml", &sleeping("second").uid(uid).manifest());
    node.start();
    let first = node.wait_pod("first", "running", T, |p| st::running(p, "c"));
    let id = st::container(&first, "c").container_id.clone();
    let want = format!(
        r#"PodGroup default/second: metadata.uid: Duplicate value: "{uid}": PodGroup default/first in "#
    );
    wait_for("the duplicate uid to be reported", T, || {
        node.supervisor_log().contains(&want).then_some(())
    });
    let event = format!(r#"metadata.uid: Duplicate value: "{uid}": PodGroup default/first in "#);
    wait_for("a FailedValidation event about the second", T, || {
        let events = node.events("second");
        events
            .iter()
            .any(|(r, m)| r == "FailedValidation" && m.starts_with(&event))
            .then_some(())
    });
    // A pod added after the report is started by a later scan: by then the duplicate was reconciled too.
    node.apply("c.yaml", &sleeping("marker").manifest());
    node.wait_pod("marker", "running", T, |p| st::running(p, "c"));
    let first = node.get("first").unwrap();
    assert!(st::running(&first, "c"));
    assert_eq!(
        st::container(&first, "c").container_id,
        id,
        "first's container was not replaced"
    );
    assert_eq!(st::restarts(&first, "c"), 0);
    assert!(node.get("second").is_none());
    assert_eq!(fs::read_dir(node.state.join("pods")).unwrap().count(), 2);
    for f in ["b.yaml", "c.yaml", "a.yaml"] {
        node.delete(f);
    }
    wait_for("every pod to be gone", T, || {
        StatusStore::new(&node.state).list().is_empty().then_some(())
    });
    node.finish(T);
}

/// A Pod manifest (JSON, which is YAML) with these metadata, container and volume names.
fn hostile(meta: Value, container: &str, volume: Option<&str>) -> String {
    let mut sleeper = c(container).command(["sleep", "3600"]);
    let mut p = pod("").metadata(meta).grace(2);
    if let Some(v) = volume {
        sleeper = sleeper.mount(v, "/v");
        p = p.empty_dir(v);
    }
    p.container(sleeper).manifest()
}

#[test]
fn hostile_names_create_write_and_remove_nothing_outside_the_roots() {
    let mut node = Node::new();
    let tag = format!("peapod-victim-{}", std::process::id());
    let root = node.dir.path().to_path_buf();
    let skip = [&node.state, &node.run, &node.manifests, &node.log, &node.cni_conf].map(|p| p.to_path_buf());
    fs::create_dir_all(root.join("victim")).unwrap();
    fs::write(root.join("victim/sentinel"), "keep me").unwrap();
    let long = "a".repeat(300);
    let cases = [
        (json!({"name": "u1", "uid": ".."}), "c", None),
        (
            json!({"name": "u2", "uid": format!("/../../../{tag}")}),
            "c",
            None,
        ),
        (json!({"name": "u3", "uid": format!("../../../{tag}")}), "c", None),
        (json!({"name": "u4", "uid": "../../victim"}), "c", Some("v")),
        (json!({"name": "u5", "uid": "a\u{0}b"}), "c", None),
        (json!({"name": "u6", "uid": long}), "c", None),
        (
            json!({"name": "u7", "uid": "0F4E2A4C-7D0B-4BDE-9D35-1F6F2D9C8A11"}),
            "c",
            None,
        ),
        (json!({"name": "../../victim"}), "c", None),
        (json!({"name": "a/b"}), "c", None),
        (json!({"name": "a\u{0}b"}), "c", None),
        (json!({"name": long}), "c", None),
        (json!({"name": ".."}), "c", None),
        (json!({"name": "n1", "namespace": "../../victim"}), "c", None),
        (json!({"name": "n2", "namespace": "a/b"}), "c", None),
        (json!({"name": "c1"}), "../../victim", None),
        (json!({"name": "c2"}), "a/b", None),
        (json!({"name": "c3"}), "..", None),
        (json!({"name": "v1"}), "c", Some("../../victim")),
        (json!({"name": "v2"}), "c", Some("..")),
    ];
    for (i, (meta, container, volume)) in cases.iter().enumerate() {
        node.apply(&format!("h{i}.yaml"), &hostile(meta.clone(), container, *volume));
    }
    node.apply("good.yaml", &sleeping("good").manifest());
    let before = tree(&root, &skip);
    node.start();
    node.wait_pod("good", "running", T, |p| st::running(p, "c"));
    let store = StatusStore::new(&node.state);
    let refused = wait_for("every hostile pod to be refused", T, || {
        let refused: Vec<PodGroup> = store
            .list()
            .into_iter()
            .filter(|p| st::phase(p) == "Failed")
            .collect();
        (refused.len() == cases.len()).then_some(refused)
    });
    for p in &refused {
        let (reason, message) = status_of(p);
        assert_eq!(reason, "InvalidSpec", "{message}");
        assert!(message.contains(": Invalid value: "), "{message}");
    }
    assert_eq!(
        fs::read_dir(node.state.join("pods")).unwrap().count(),
        1,
        "only the good pod has a directory"
    );
    for i in 0..cases.len() {
        node.delete(&format!("h{i}.yaml"));
    }
    node.delete("good.yaml");
    wait_for("every pod to be gone", T, || {
        store.list().is_empty().then_some(())
    });
    node.finish(T);
    assert_eq!(tree(&root, &skip), before, "nothing outside the roots changed");
    assert_eq!(
        fs::read_to_string(root.join("victim/sentinel")).unwrap(),
        "keep me"
    );
    assert!(!Path::new("/tmp").join(&tag).exists());
    assert_eq!(top_cgroups(&tag), Vec::<PathBuf>::new());
}
