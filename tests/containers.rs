//! Root integration tests of single containers: identity and security settings, termination messages,
//! image pull policies, logs, exec, deadlines and manifest edits, with the kubelet's reasons and messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{st, wait_for, Node, BUSYBOX};

const T: Duration = Duration::from_secs(60);

fn pod(name: &str, policy: &str, containers: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 2\n  containers:\n{containers}")
}

#[test]
fn run_as_user_group_and_non_root_follow_the_kubelet() {
    let mut node = Node::new();
    let ids = format!(
        "  - name: c\n    image: {BUSYBOX}\n    command: [sh, -c, 'id; grep -E \"^(CapEff|NoNewPrivs)\" /proc/self/status']\n    securityContext: {{runAsUser: 1000, runAsGroup: 2000}}\n"
    );
    node.apply(
        "ids.yaml",
        &pod("ids", "Never", &ids).replace(
            "  containers:",
            "  securityContext: {supplementalGroups: [3000]}\n  containers:",
        ),
    );
    let root = format!(
        "  - name: c\n    image: {BUSYBOX}\n    command: [id]\n    securityContext: {{runAsNonRoot: true}}\n"
    );
    node.apply("root.yaml", &pod("root", "Never", &root));
    let ro = format!("  - name: c\n    image: {BUSYBOX}\n    command: [touch, /x]\n    securityContext: {{readOnlyRootFilesystem: true}}\n");
    node.apply("ro.yaml", &pod("ro", "Never", &ro));
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
    let msg = st::container(&p, "c")
        .state
        .as_ref()
        .unwrap()
        .waiting
        .as_ref()
        .unwrap()
        .message
        .clone()
        .unwrap();
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
    assert!(node.stop(T).success());
    node.assert_clean();
}

/// Ports runtime.go "on terminated container should report termination message ...".
#[test]
fn termination_messages_from_file_and_from_logs() {
    let mut node = Node::new();
    let file = format!("  - name: c\n    image: {BUSYBOX}\n    command: [sh, -c, 'echo -n DONE > /dev/termination-custom-log']\n    terminationMessagePath: /dev/termination-custom-log\n    securityContext: {{runAsUser: 10000}}\n");
    node.apply("file.yaml", &pod("msg-file", "Never", &file));
    let logs = format!("  - name: c\n    image: {BUSYBOX}\n    command: [sh, -c, 'echo -n DONE; exit 1']\n    terminationMessagePolicy: FallbackToLogsOnError\n");
    node.apply("logs.yaml", &pod("msg-logs", "Never", &logs));
    let quiet = format!("  - name: c\n    image: {BUSYBOX}\n    command: [sh, -c, 'echo -n DONE']\n    terminationMessagePolicy: FallbackToLogsOnError\n");
    node.apply("quiet.yaml", &pod("msg-quiet", "Never", &quiet));
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
    assert!(node.stop(T).success());
    node.assert_clean();
}

#[test]
fn pull_policies_and_missing_images() {
    let mut node = Node::new();
    let never = "  - name: c\n    image: localhost/not-imported:1\n    imagePullPolicy: Never\n".to_string();
    node.apply("never.yaml", &pod("never", "Always", &never));
    let short = "  - name: c\n    image: nosuchimage:1\n".to_string();
    node.apply("short.yaml", &pod("short", "Always", &short));
    node.start();
    let p = node.wait_pod("never", "ErrImageNeverPull", T, |p| {
        st::waiting_reason(p, "c").as_deref() == Some("ErrImageNeverPull")
    });
    let w = st::container(&p, "c")
        .state
        .as_ref()
        .unwrap()
        .waiting
        .clone()
        .unwrap();
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
    assert!(node.stop(T).success());
    node.assert_clean();
}

#[test]
fn logs_previous_tail_and_exec_exit_codes() {
    let mut node = Node::new();
    let c = format!("  - name: c\n    image: {BUSYBOX}\n    command: [sh, -c, 'for i in 1 2 3; do echo line $i; done; echo err >&2; if [ -f /tmp/ran ]; then sleep 3600; fi; touch /tmp/ran; exit 2']\n");
    // /tmp is in the container's writable layer, which a new instance does not keep: use a volume.
    let spec = pod(
        "chatty",
        "Always",
        &c.replace("/tmp/ran", "/state/ran").replace(
            "    command:",
            "    volumeMounts: [{name: state, mountPath: /state}]\n    command:",
        ),
    )
    .replace(
        "  containers:",
        "  volumes: [{name: state, emptyDir: {}}]\n  containers:",
    );
    node.apply("chatty.yaml", &spec);
    node.start();
    node.wait_pod("chatty", "second instance running", T, |p| {
        st::running(p, "c") && st::restarts(p, "c") == 1
    });
    let text = |args: &[&str]| {
        let out = node.peapod(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
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
    let last = st::container(&p, "c")
        .last_state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));
    // exec propagates exit codes; a missing container is an error.
    let out = node.peapod(&["exec", "chatty", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!node
        .peapod(&["exec", "chatty", "-c", "nope", "--", "true"])
        .status
        .success());
    assert!(!node.peapod(&["logs", "missing"]).status.success());
    assert!(node.stop(T).success());
    node.assert_clean();
}

#[test]
fn active_deadline_and_manifest_edits() {
    let mut node = Node::new();
    let c = format!("  - name: c\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n");
    node.apply(
        "deadline.yaml",
        &pod("deadline", "Always", &c).replace("  containers:", "  activeDeadlineSeconds: 2\n  containers:"),
    );
    node.apply("edit.yaml", &pod("edit", "Always", &c));
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
    node.apply(
        "edit.yaml",
        &pod("edit", "Always", &c.replace("'3600'", "'7200'")),
    );
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
    assert!(node.stop(T).success());
    node.assert_clean();
}
