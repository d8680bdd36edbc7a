//! `metadata.uid`: a manifest may carry one (a static pod's identity), but only in the form the API server
//! generates, because it names the pod's directories, log directory and cgroup.

use serde_json::json;

use super::{c, messages, pod};

const UUID_MSG: &str = "must be a lowercase UUID in 8-4-4-4-12 format";

#[test]
fn uid_must_be_a_lowercase_uuid() {
    let mut pg = pod(json!({"containers": [c(json!({}))]}));
    for good in [None, Some(""), Some("9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d01")] {
        pg.metadata.uid = good.map(String::from);
        assert_eq!(messages(&pg), Vec::<String>::new(), "{good:?}");
    }
    let long = format!("{}-0a5e-4c8e-9f5f-3a3d3f2a7d01", "a".repeat(300));
    let bad = [
        "../../../victim/existing",
        "..",
        ".",
        "/",
        "a/b",
        "pod\0x",
        "9D1C7BBE-0A5E-4C8E-9F5F-3A3D3F2A7D01",
        "9d1c7bbe0a5e4c8e9f5f3a3d3f2a7d01",
        "9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d0",
        "9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d01/..",
        "9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d0g",
        "{9d1c7bbe-0a5e-4c8e-9f5f-3a3d3f2a7d01}",
        long.as_str(),
    ];
    for uid in bad {
        pg.metadata.uid = Some(uid.to_string());
        let want = format!("metadata.uid: Invalid value: {uid:?}: {UUID_MSG}");
        assert_eq!(messages(&pg), vec![want], "{uid:?}");
    }
}
