//! The checks of `podgroups_are_scheduled_run_and_reported_like_pods`: a pinned PodGroup's status, the
//! `kubectl get` table, and the Events.

use super::common::cluster::ControlPlane;
use super::common::st;
use peapod::api::PodGroup;

/// The PodGroup bound to node-a: labelled with its node, holding the sandbox finalizer, Running with
/// every condition True.
pub fn check_pinned(pinned: &PodGroup) {
    assert_eq!(
        pinned
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .get("peapod.dev/node")
            .map(String::as_str),
        Some("node-a")
    );
    assert_eq!(
        pinned.metadata.finalizers.as_deref(),
        Some(&["peapod.dev/sandbox".to_string()][..])
    );
    let s = pinned.status.as_ref().unwrap();
    assert_eq!(s.pod.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod.observed_generation, pinned.metadata.generation);
    for t in [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert_eq!(
            st::condition(pinned, t).map(|c| c.status.as_str()),
            Some("True"),
            "{t}"
        );
    }
}

/// What `kubectl get podgroups -o wide` prints for the four PodGroups.
pub fn check_table(cp: &ControlPlane) {
    let table = cp.kubectl_ok(&["get", "podgroups", "-o", "wide"]);
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in\n{table}"))
            .to_string()
    };
    assert!(table.starts_with("NAME"), "{table}");
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    );
    let pinned_cells: Vec<String> = line("pinned").split_whitespace().map(String::from).collect();
    assert_eq!(
        (
            pinned_cells[1].as_str(),
            pinned_cells[2].as_str(),
            pinned_cells[3].as_str()
        ),
        ("1/1", "Running", "0")
    );
    assert_eq!(pinned_cells.last().map(String::as_str), Some("node-a"));
    assert!(line("huge").contains(" Pending "), "{table}");
    assert!(
        line("crash").contains("CrashLoopBackOff") || line("crash").contains("Error"),
        "{table}"
    );
}

/// The Events `kubectl describe` shows for the four PodGroups.
pub fn check_events(cp: &ControlPlane) {
    let events = cp.event_table("default");
    for want in [
        "Scheduled    ssd ",
        "Successfully assigned default/ssd to node-b",
        "FailedScheduling",
        "0/2 nodes are available: 2 Insufficient memory.",
        "Created      pinned",
        "Started      pinned",
        "BackOff",
    ] {
        let found = events.contains(want)
            || events
                .lines()
                .any(|l| want.split_whitespace().all(|w| l.contains(w)));
        assert!(found, "missing event {want:?} in\n{events}");
    }
}
