//! The checks of `exit_codes_restarts_and_termination_messages` and `failed_init_containers_fail_or_hold_the_pod`:
//! what `kubectl` shows for each PodGroup they apply.

use super::common::cluster::{has_event, ControlPlane, OneNode};
use super::common::{c as container, st, wait_for};
use super::{podgroup, terminated, NS, T};
use serde_json::json;

/// RestartNever: init2 fails once, the pod is Failed, the app container never ran.
pub fn check_init_never(cp: &ControlPlane) {
    let p = cp.wait_pg(NS, "init-never", "Failed", T, |p| st::phase(p) == "Failed");
    let t1 = terminated(&p, "init1");
    assert_eq!((t1.exit_code, t1.reason.as_deref()), (0, Some("Completed")));
    let t2 = terminated(&p, "init2");
    assert_eq!((t2.exit_code, t2.reason.as_deref()), (3, Some("Error")));
    assert_eq!(t2.message.as_deref(), Some("init2 gave up"));
    assert_eq!(st::restarts(&p, "init2"), 0);
    assert_eq!(st::waiting_reason(&p, "app").as_deref(), Some("PodInitializing"));
    assert_eq!(st::container(&p, "app").image_id, "");
    let cond = st::condition(&p, "Initialized").unwrap();
    assert_eq!(
        (
            cond.status.as_str(),
            cond.reason.as_deref(),
            cond.message.as_deref()
        ),
        (
            "False",
            Some("ContainersNotInitialized"),
            Some("containers with incomplete status: [init2]")
        )
    );
    assert_eq!(st::display(&p), "Init:Error");
    let table = cp.kubectl_ok(&["get", "podgroup", "init-never", "--no-headers"]);
    assert!(table.contains(" Init:Error "), "{table}");
}

/// The init containers' Events: both of init-never's started, its app never did; init-always's init1 backs
/// off and its init2 never starts.
pub fn check_init_events(c: &OneNode) {
    let events = c.cp.events_about(NS, "init-never");
    for f in ["init1", "init2"] {
        let path = format!("spec.initContainers{{{f}}}");
        assert!(has_event(&events, "Started", Some(&path)), "{f}: {events:#?}");
    }
    assert!(
        !has_event(&events, "Started", Some("spec.containers{app}")),
        "the app container never starts: {events:#?}"
    );
    let events = wait_for("BackOff event of init1", T, || {
        let e = c.cp.events_about(NS, "init-always");
        has_event(&e, "BackOff", Some("spec.initContainers{init1}")).then_some(e)
    });
    assert!(!has_event(&events, "Started", Some("spec.initContainers{init2}")));
}

/// Exit codes, restart counts, last states and termination messages (file, custom path as non-root, and
/// FallbackToLogsOnError) in the API status and in `kubectl get`.
/// `exit42` (Never, exits 42), `onfailure` (fails once with a message in its log, then succeeds with a
/// message file), `custom-path` (a message at a custom path, as non-root) and `crash` (Always, exits 2).
pub fn apply_exit_podgroups(cp: &ControlPlane) {
    let exit42 = podgroup("exit42")
        .restart_never()
        .container(container("c").sh("exit 42"));
    cp.apply(&exit42.podgroup_manifest());
    // First run fails with a message only in its log, the second succeeds and writes the message file.
    let twice = "n=$(cat /state/n 2>/dev/null || echo 0); echo $((n+1)) > /state/n; if [ $n -eq 0 ]; then echo -n first run failed; exit 1; fi; echo -n OK > /dev/termination-log";
    let onfailure = podgroup("onfailure")
        .restart_on_failure()
        .empty_dir("state")
        .container(
            container("c")
                .sh(twice)
                .set("terminationMessagePolicy", json!("FallbackToLogsOnError"))
                .mount("state", "/state"),
        );
    cp.apply(&onfailure.podgroup_manifest());
    let custom_path = podgroup("custom-path").restart_never().container(
        container("c")
            .sh("echo -n DONE > /dev/termination-custom-log")
            .set("terminationMessagePath", json!("/dev/termination-custom-log"))
            .security(json!({"runAsUser": 10000})),
    );
    cp.apply(&custom_path.podgroup_manifest());
    cp.apply(
        &podgroup("crash")
            .container(container("c").sh("exit 2"))
            .podgroup_manifest(),
    );
}

/// OnFailure: restarted once after the failure (its message from the log), then Succeeded with the file's.
pub fn check_onfailure(cp: &ControlPlane) {
    let p = cp.wait_pg(NS, "onfailure", "Succeeded", T, |p| st::phase(p) == "Succeeded");
    assert_eq!(st::restarts(&p, "c"), 1);
    let t = terminated(&p, "c");
    assert_eq!(
        (t.exit_code, t.reason.as_deref(), t.message.as_deref()),
        (0, Some("Completed"), Some("OK"))
    );
    let last = st::container(&p, "c")
        .last_state
        .clone()
        .and_then(|s| s.terminated)
        .unwrap();
    assert_eq!(
        (last.exit_code, last.reason.as_deref(), last.message.as_deref()),
        (1, Some("Error"), Some("first run failed"))
    );
    assert_ne!(last.container_id, t.container_id, "a restart is a new container");
}

/// What `kubectl get podgroups` prints for the four.
pub fn check_exit_table(cp: &ControlPlane) {
    let table = cp.kubectl_ok(&["get", "podgroups", "--no-headers"]);
    let row = |name: &str| -> Vec<String> {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in\n{table}"));
        line.split_whitespace().map(String::from).collect()
    };
    assert_eq!(row("exit42")[1..4], ["0/1", "Error", "0"]);
    assert_eq!(row("onfailure")[1..4], ["0/1", "Completed", "1"]);
    assert_eq!(row("custom-path")[1..4], ["0/1", "Completed", "0"]);
    // The crash-looping container runs for a moment each attempt: read its row between two runs.
    let crash = wait_for("crash's row between two runs", T, || {
        let table = cp.kubectl_ok(&["get", "podgroup", "crash", "--no-headers"]);
        let cells: Vec<String> = table.split_whitespace().map(String::from).collect();
        (cells.get(2).map(String::as_str) != Some("Running")).then_some(cells)
    });
    assert!(
        ["CrashLoopBackOff", "Error"].contains(&crash[2].as_str()),
        "{crash:?}"
    );
    assert!(crash[3].parse::<i32>().unwrap() >= 2, "{crash:?}");
}
