//! Root integration tests of single containers: identity and security settings, termination messages,
//! image pull policies, logs, exec, deadlines and manifest edits, with the kubelet's reasons and messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::builder::{ContainerBuilder, PodBuilder};
use common::{c, pod, st, wait_for, Node};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// A `restartPolicy: Never` Pod with a 2 s grace period and one container.
fn once(name: &str, container: ContainerBuilder) -> String {
    pod(name).restart_never().grace(2).container(container).manifest()
}

/// A `restartPolicy: Always` Pod with a 2 s grace period.
fn always(name: &str) -> PodBuilder {
    pod(name).restart_always().grace(2)
}

#[test]
fn run_as_user_group_and_non_root_follow_the_kubelet() {
    let ids = pod("ids")
        .restart_never()
        .grace(2)
        .security(json!({"supplementalGroups": [3000]}))
        .container(
            c("c")
                .sh("id; grep -E \"^(CapEff|NoNewPrivs)\" /proc/self/status")
                .security(json!({"runAsUser": 1000, "runAsGroup": 2000})),
        );
    let mut node = Node::new();
    node.apply("ids.yaml", &ids.manifest());
    let root = c("c").command(["id"]).security(json!({"runAsNonRoot": true}));
    node.apply("root.yaml", &once("root", root));
    let ro = c("c")
        .command(["touch", "/x"])
        .security(json!({"readOnlyRootFilesystem": true}));
    node.apply("ro.yaml", &once("ro", ro));
    node.start();
    node.wait_pod("ids", "Succeeded", T, |p| st::phase(p) == "Succeeded");
    let out = String::from_utf8_lossy(&node.peapod(&["logs", "ids"]).stdout).into_owned();
    assert!(
        out.starts_with("uid=1000(app) gid=2000 groups=2000,3000"),
        "{out}"
    );
    assert!(
        out.contains("CapEff:\t0000000000000000"),
        "non-root has no effective capabilities: {out}"
    );
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    let p = node.wait_pod("root", "CreateContainerConfigError", T, |p| {
        st::waiting_reason(p, "c").as_deref() == Some("CreateContainerConfigError")
    });
    let msg = st::waiting(&p, "c").unwrap().message.unwrap();
    assert!(
        msg.starts_with("container has runAsNonRoot and image will run as root (pod: \"root_default("),
        "{msg}"
    );
    assert_eq!(st::phase(&p), "Pending");
    let p = node.wait_pod("ro", "Failed", T, |p| st::phase(p) == "Failed");
    assert_eq!(
        st::terminated(&p, "c").unwrap().exit_code,
        1,
        "read-only rootfs refuses writes"
    );
    node.finish(T);
}

/// Ports runtime.go "on terminated container should report termination message ...".
#[test]
fn termination_messages_from_file_and_from_logs() {
    let file = c("c")
        .sh("echo -n DONE > /dev/termination-custom-log")
        .set("terminationMessagePath", json!("/dev/termination-custom-log"))
        .security(json!({"runAsUser": 10000}));
    let mut node = Node::new();
    node.apply("file.yaml", &once("msg-file", file));
    let fallback = |script: &str| {
        c("c")
            .sh(script)
            .set("terminationMessagePolicy", json!("FallbackToLogsOnError"))
    };
    node.apply("logs.yaml", &once("msg-logs", fallback("echo -n DONE; exit 1")));
    node.apply("quiet.yaml", &once("msg-quiet", fallback("echo -n DONE")));
    node.start();
    let msg = |name: &str| {
        let p = node.wait_pod(name, "terminated", T, |p| st::terminated(p, "c").is_some());
        st::terminated(&p, "c").unwrap().message
    };
    assert_eq!(
        msg("msg-file").as_deref(),
        Some("DONE"),
        "non-root writes the file at a custom path"
    );
    assert_eq!(
        msg("msg-logs").as_deref(),
        Some("DONE"),
        "falls back to the log on error"
    );
    assert_eq!(msg("msg-quiet"), None, "no fallback when the container succeeds");
    node.finish(T);
}

#[test]
fn pull_policies_and_missing_images() {
    let never = c("c").image("localhost/not-imported:1").pull_policy("Never");
    let mut node = Node::new();
    node.apply("never.yaml", &always("never").container(never).manifest());
    let short = c("c").image("nosuchimage:1");
    node.apply("short.yaml", &always("short").container(short).manifest());
    node.start();
    let p = node.wait_pod("never", "ErrImageNeverPull", T, |p| {
        st::waiting_reason(p, "c").as_deref() == Some("ErrImageNeverPull")
    });
    let w = st::waiting(&p, "c").unwrap();
    assert_eq!(
        w.message.as_deref(),
        Some("Container image \"localhost/not-imported:1\" is not present with pull policy of Never")
    );
    assert_eq!(st::display(&p), "ErrImageNeverPull");
    // A short name with no default registry cannot be pulled: ErrImagePull, then ImagePullBackOff.
    let p = node.wait_pod("short", "ImagePullBackOff", T, |p| {
        st::waiting_reason(p, "c").as_deref() == Some("ImagePullBackOff")
    });
    assert_eq!(st::phase(&p), "Pending");
    let log = node.supervisor_log();
    assert!(
        log.contains("Failed to pull image \\\"nosuchimage:1\\\"")
            || log.contains("Failed to pull image \"nosuchimage:1\""),
        "{log}"
    );
    node.finish(T);
}

#[test]
fn logs_previous_tail_and_exec_exit_codes() {
    let mut node = Node::new();
    // /tmp is in the container's writable layer, which a new instance does not keep: use a volume.
    let chatty = always("chatty").empty_dir("state").container(
        c("c")
            .sh("for i in 1 2 3; do echo line $i; done; echo err >&2; if [ -f /state/ran ]; then sleep 3600; fi; touch /state/ran; exit 2")
            .mount("state", "/state"),
    );
    node.apply("chatty.yaml", &chatty.manifest());
    node.start();
    node.wait_pod("chatty", "second instance running", T, |p| {
        st::running(p, "c") && st::restarts(p, "c") == 1
    });
    let text = |args: &[&str]| node.peapod_ok(args);
    let current = wait_for("current log", T, || {
        let t = text(&["logs", "chatty"]);
        (t.lines().count() == 4).then_some(t)
    });
    assert_eq!(current, "line 1\nline 2\nline 3\nerr\n");
    assert_eq!(
        text(&["logs", "chatty", "--previous"]),
        "line 1\nline 2\nline 3\nerr\n"
    );
    assert_eq!(text(&["logs", "chatty", "--tail", "2"]), "line 3\nerr\n");
    let stamped = text(&["logs", "chatty", "--tail", "1", "--timestamps"]);
    assert!(stamped.ends_with(" err\n") && stamped.len() > 30, "{stamped}");
    let p = node.get("chatty").unwrap();
    let last = st::last_terminated(&p, "c").unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));
    // exec propagates exit codes; a missing container is an error.
    let out = node.peapod(&["exec", "chatty", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!node
        .peapod(&["exec", "chatty", "-c", "nope", "--", "true"])
        .status
        .success());
    assert!(!node.peapod(&["logs", "missing"]).status.success());
    node.finish(T);
}

#[test]
fn active_deadline_and_manifest_edits() {
    let mut node = Node::new();
    let sleep = |secs: &str| c("c").command(["sleep", secs]);
    let deadline = always("deadline")
        .set("activeDeadlineSeconds", json!(2))
        .container(sleep("3600"));
    node.apply("deadline.yaml", &deadline.manifest());
    node.apply("edit.yaml", &always("edit").container(sleep("3600")).manifest());
    node.start();
    // The phase turns Failed as the kubelet reports it, before the container is stopped.
    let p = node.wait_pod("deadline", "DeadlineExceeded", T, |p| {
        st::phase(p) == "Failed" && st::terminated(p, "c").is_some()
    });
    let s = p.status.as_ref().unwrap();
    assert_eq!(s.pod.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        s.pod.message.as_deref(),
        Some("Pod was active on the node longer than the specified deadline")
    );
    // kubectl prints the killed container's reason over the pod's, as for any failed pod.
    assert_eq!(st::terminated(&p, "c").map(|t| t.exit_code), Some(137));

    let first = node.wait_pod("edit", "running", T, |p| st::running(p, "c"));
    node.apply("edit.yaml", &always("edit").container(sleep("7200")).manifest());
    let second = node.wait_pod("edit", "replaced", T, |p| {
        p.metadata.uid != first.metadata.uid && st::running(p, "c")
    });
    assert_ne!(
        st::container(&second, "c").container_id,
        st::container(&first, "c").container_id
    );
    wait_for("old incarnation gone", T, || {
        let all = peapod::standalone::store::StatusStore::new(&node.state).list();
        (all.iter()
            .filter(|p| p.metadata.name.as_deref() == Some("edit"))
            .count()
            == 1)
            .then_some(())
    });
    node.delete("edit.yaml");
    wait_for("edited pod removed", T, || {
        node.get("edit").is_none().then_some(())
    });
    node.finish(T);
}

#[test]
fn crash_loop_backoff_doubles_from_ten_seconds() {
    use std::collections::BTreeMap;
    let crash = pod("crash")
        .restart_always()
        .grace(5)
        .container(c("crash").sh("echo attempt; exit 3"));
    let mut node = Node::new();
    node.apply("crash.yaml", &crash.podgroup_manifest());
    node.start();
    // Start and finish times by attempt, from whichever status field holds them at each look.
    let mut started: BTreeMap<i32, k8s_openapi::jiff::Timestamp> = BTreeMap::new();
    let mut finished: BTreeMap<i32, k8s_openapi::jiff::Timestamp> = BTreeMap::new();
    let mut first_backoff_message = None;
    wait_for("attempt 3 to start", Duration::from_secs(90), || {
        let p = node.get("crash")?;
        let c = st::try_container(&p, "crash")?;
        let rc = c.restart_count;
        let state = c.state.clone().unwrap_or_default();
        let mut seen: Vec<(i32, &k8s_openapi::api::core::v1::ContainerStateTerminated)> = Vec::new();
        if let Some(t) = &state.terminated {
            seen.push((rc, t));
        }
        if let Some(t) = c.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
            // While waiting the last state is this attempt's end; otherwise the previous attempt's.
            seen.push((if state.waiting.is_some() { rc } else { rc - 1 }, t));
        }
        for (attempt, t) in seen {
            if let Some(s) = &t.started_at {
                started.insert(attempt, s.0);
            }
            if let Some(f) = &t.finished_at {
                finished.insert(attempt, f.0);
            }
        }
        if let Some(r) = &state.running {
            if let Some(s) = &r.started_at {
                started.insert(rc, s.0);
            }
        }
        if let Some(w) = &state.waiting {
            if w.reason.as_deref() == Some("CrashLoopBackOff") && first_backoff_message.is_none() {
                first_backoff_message = w.message.clone();
            }
        }
        (started.contains_key(&3) && finished.contains_key(&2)).then_some(())
    });
    let p = node.get("crash").unwrap();
    assert_eq!(
        st::phase(&p),
        "Running",
        "an Always pod restarting its container stays Running"
    );
    let msg = first_backoff_message.expect("CrashLoopBackOff seen");
    assert!(
        msg.starts_with("back-off 10s restarting failed container=crash pod=crash_default("),
        "{msg}"
    );
    // The kubelet restarts at once after the first exit, then waits 10 s, then 20 s.
    let gap = |a: i32| (started[&(a + 1)].as_millisecond() - finished[&a].as_millisecond()) as f64 / 1000.0;
    if finished.contains_key(&1) && started.contains_key(&2) {
        assert!(
            (9.5..16.0).contains(&gap(1)),
            "attempt 2 started {}s after attempt 1 finished; want ~10s",
            gap(1)
        );
    }
    assert!(
        (19.5..26.0).contains(&gap(2)),
        "attempt 3 started {}s after attempt 2 finished; want ~20s",
        gap(2)
    );
    node.finish(T);
}
