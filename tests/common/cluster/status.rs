//! Reading what the API server returns about PodGroups: container statuses as JSON, Events, the versions
//! a deletion went through, and a status caught up after an outage.

use std::time::Duration;

use peapod::api::PodGroup;

use super::super::st;
use super::ControlPlane;

/// After the API was out of the agent's reach: waits (5 s at most) for PodGroup `default/steady` to report
/// its container `later` exited with 4 while `main` still runs as the same container `main_id`, unrestarted.
pub fn assert_caught_up(cp: &ControlPlane, main_id: &Option<String>) -> PodGroup {
    let caught_up = cp.wait_pg(
        "default",
        "steady",
        "status caught up within 5 s of the API's return",
        Duration::from_secs(5),
        |p| st::terminated(p, "later").is_some(),
    );
    assert_eq!(st::terminated(&caught_up, "later").unwrap().exit_code, 4);
    assert!(st::running(&caught_up, "main"));
    assert_eq!(&st::container(&caught_up, "main").container_id, main_id);
    assert_eq!(st::restarts(&caught_up, "main"), 0, "main restarted");
    caught_up
}

/// The versions `watch_until_deleted` saw, as PodGroups, and the first one marked for deletion (which a
/// graceful deletion shows with the containers still running).
pub fn deletion_versions(seen: Vec<(String, serde_json::Value)>) -> (Vec<(String, PodGroup)>, PodGroup) {
    let versions: Vec<(String, PodGroup)> = seen
        .into_iter()
        .map(|(kind, v)| (kind, serde_json::from_value(v).expect("a PodGroup")))
        .collect();
    let deleting = versions
        .iter()
        .map(|(_, p)| p)
        .find(|p| p.metadata.deletion_timestamp.is_some())
        .expect("a version with deletionTimestamp")
        .clone();
    (versions, deleting)
}

/// The status of container `name` (app or init) in a PodGroup as the API returned it.
pub fn raw_container<'a>(pg: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|k| pg["status"][k].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no status for container {name} in {}", pg["status"]))
}

/// Whether one of these core/v1 Events has this reason, and this `fieldPath` (`spec.containers{c}`) if given.
pub fn has_event(events: &[serde_json::Value], reason: &str, field_path: Option<&str>) -> bool {
    events
        .iter()
        .any(|e| e["reason"] == reason && field_path.is_none_or(|f| e["involvedObject"]["fieldPath"] == f))
}
