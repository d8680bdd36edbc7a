//! Root integration tests of `peapod run` with real runc, namespaces, cgroups and the busybox test image:
//! the sandbox, lifecycle, restart policies, crash recovery and graceful stop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{c, pod, st, wait_for, Node};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

#[test]
fn two_containers_share_localhost_volume_and_hostname() {
    let web = pod("web")
        .empty_dir("shared")
        .container(
            c("writer")
                .sh("echo hello from $(hostname) > /pod-data/index.html; exec httpd -f -p 8080 -h /pod-data")
                .mount("shared", "/pod-data"),
        )
        .container(
            c("reader")
                .sh("trap \"exit 0\" TERM; while true; do wget -q -O /tmp/page http://localhost:8080/ ; sleep 0.2; done")
                .mount_ro("shared", "/pod-data"),
        );
    let mut node = Node::new();
    node.apply("web.yaml", &web.manifest());
    node.start();
    let p = node.wait_pod("web", "both containers running", T, |p| {
        st::running(p, "writer") && st::running(p, "reader")
    });
    assert_eq!(st::phase(&p), "Running");
    assert_eq!(
        p.status.as_ref().unwrap().ready_containers.as_deref(),
        Some("2/2")
    );
    assert_eq!(st::condition(&p, "Ready").unwrap().status, "True");
    assert_eq!(
        st::condition(&p, "PodReadyToStartContainers").unwrap().status,
        "True"
    );

    // localhost is shared: the reader fetched the writer's page over 127.0.0.1.
    let page = wait_for("reader to fetch the page", T, || {
        let out = node.peapod(&["exec", "web", "-c", "reader", "--", "cat", "/tmp/page"]);
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && !s.is_empty()).then_some(s)
    });
    assert_eq!(page.trim(), "hello from web");
    // The volume is shared, and read-only where asked.
    assert_eq!(
        node.exec("web", "reader", &["cat", "/pod-data/index.html"])
            .trim(),
        "hello from web"
    );
    let ro = node.peapod(&["exec", "web", "-c", "reader", "--", "touch", "/pod-data/x"]);
    assert!(!ro.status.success(), "readOnly volume mount must refuse writes");
    // Hostname (UTS) and IPC namespaces are shared; PID namespaces are not.
    assert_eq!(node.exec("web", "reader", &["hostname"]).trim(), "web");
    assert_eq!(node.exec("web", "writer", &["hostname"]).trim(), "web");
    let ipc = |c: &str| node.exec("web", c, &["readlink", "/proc/self/ns/ipc"]);
    assert_eq!(ipc("reader"), ipc("writer"));
    let pidns = |c: &str| node.exec("web", c, &["readlink", "/proc/1/ns/pid"]);
    assert_ne!(pidns("reader"), pidns("writer"));
    assert_ne!(
        node.exec("web", "reader", &["readlink", "/proc/self/ns/net"]),
        std::fs::read_link("/proc/self/ns/net").unwrap().to_string_lossy() + "\n"
    );
    // kubelet-managed /etc/hosts.
    let hosts = node.exec("web", "reader", &["cat", "/etc/hosts"]);
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"),
        "{hosts}"
    );

    let get = node.peapod(&["get"]);
    let table = String::from_utf8_lossy(&get.stdout);
    assert!(
        table.starts_with("NAME   READY   STATUS    RESTARTS   AGE\nweb    2/2     Running   0 "),
        "{table}"
    );

    node.finish(T);
}

#[test]
fn init_containers_run_one_by_one_before_the_app() {
    let init = pod("init")
        .restart_never()
        .grace(5)
        .empty_dir("work")
        .init(c("init1").sh("echo one >> /work/log").mount("work", "/work"))
        .init(
            c("init2")
                .sh("test \"$(cat /work/log)\" = one && echo two >> /work/log")
                .mount("work", "/work"),
        )
        .container(
            c("app")
                .sh("cat /work/log; echo app >> /work/log")
                .mount("work", "/work"),
        );
    let mut node = Node::new();
    node.apply("init.yaml", &init.podgroup_manifest());
    node.start();
    let p = node.wait_pod("init", "Succeeded", T, |p| st::phase(p) == "Succeeded");
    for c in ["init1", "init2", "app"] {
        let t = st::terminated(&p, c).unwrap_or_else(|| panic!("{c} not terminated"));
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")), "{c}");
    }
    let init = p
        .status
        .as_ref()
        .unwrap()
        .pod
        .init_container_statuses
        .as_ref()
        .unwrap();
    assert!(
        init.iter().all(|s| s.ready),
        "succeeded init containers are ready"
    );
    let finish = |c: &str| st::terminated(&p, c).unwrap().finished_at.unwrap().0;
    let start = |c: &str| st::terminated(&p, c).unwrap().started_at.unwrap().0;
    assert!(
        finish("init1") <= start("init2") && finish("init2") <= start("app"),
        "ordering"
    );
    let cond = st::condition(&p, "Initialized").unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_deref()),
        ("True", Some("PodCompleted"))
    );
    let logs = node.peapod(&["logs", "init", "-c", "app"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "one\ntwo\n");
    node.finish(T);
}

/// Ports runtime.go "Container Runtime blackbox test when starting a container that exits should run with
/// the expected status": the container fails on its first run, succeeds on its second, then loops.
#[test]
fn restart_policies_give_the_kubelet_statuses() {
    let mut node = Node::new();
    let script = "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; if [ $n -eq 1 ]; then exit 1; fi; if [ $n -eq 2 ]; then exit 0; fi; while true; do sleep 1; done";
    for policy in ["Always", "OnFailure", "Never"] {
        let name = format!("exits-{}", policy.to_lowercase());
        let exits = pod(&name)
            .restart(policy)
            .grace(5)
            .volume("state", json!({"emptyDir": {"medium": "Memory"}}))
            .container(c("c").sh(script).mount("state", "/state"));
        node.apply(&format!("{name}.yaml"), &exits.podgroup_manifest());
    }
    node.start();
    // Always: restarted after the failure and after the success; runs with restartCount 2.
    let p = node.wait_pod(
        "exits-always",
        "running after two restarts",
        Duration::from_secs(90),
        |p| st::running(p, "c") && st::restarts(p, "c") == 2,
    );
    assert_eq!(st::phase(&p), "Running");
    assert!(st::container(&p, "c").ready);
    // OnFailure: restarted once after the failure, then Succeeded.
    let p = node.wait_pod("exits-onfailure", "Succeeded", Duration::from_secs(90), |p| {
        st::phase(p) == "Succeeded"
    });
    assert_eq!(st::container(&p, "c").restart_count, 1);
    assert_eq!(st::terminated(&p, "c").unwrap().exit_code, 0);
    let last = st::last_terminated(&p, "c").unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    // Never: not restarted; Failed.
    let p = node.wait_pod("exits-never", "Failed", T, |p| st::phase(p) == "Failed");
    assert_eq!(st::container(&p, "c").restart_count, 0);
    assert_eq!(st::terminated(&p, "c").unwrap().exit_code, 1);
    assert_eq!(st::display(&p), "Error");
    node.finish(T);
}

#[test]
fn kill9_of_the_supervisor_keeps_containers_and_reports_exits() {
    let survivor = pod("survivor")
        .restart_never()
        .grace(5)
        .container(c("long").sh("while true; do sleep 1; done"))
        .container(c("short").sh("sleep 3; exit 7"));
    let mut node = Node::new();
    node.apply("survivor.yaml", &survivor.podgroup_manifest());
    node.start();
    let before = node.wait_pod("survivor", "both running", T, |p| {
        st::running(p, "long") && st::running(p, "short")
    });
    let long_id = st::container(&before, "long").container_id.clone().unwrap();
    let long_pid = node.exec("survivor", "long", &["sh", "-c", "echo $PPID"]);
    // The helpers moved into the pod's cgroup (a BestEffort pod's, like the kubelet's layout): stopping
    // whatever started them cannot kill them.
    let helpers = format!(
        "{}/besteffort/pod{}/helpers",
        node.cgroup_parent,
        before.metadata.uid.as_deref().unwrap()
    );
    let shims = std::fs::read_dir(node.run.join("shims")).unwrap();
    for record in shims.flatten() {
        let id: serde_json::Value = serde_json::from_slice(&std::fs::read(record.path()).unwrap()).unwrap();
        let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", id["pid"])).unwrap();
        assert!(
            cgroup.lines().any(|l| l.ends_with(&helpers)),
            "shim not in {helpers}: {cgroup}"
        );
    }
    node.kill9();
    // The short container exits while nobody supervises.
    let shim_dir = node
        .state
        .join("pods")
        .join(before.metadata.uid.as_deref().unwrap())
        .join("containers/short/0");
    wait_for("short container to exit unsupervised", T, || {
        shim_dir.join("exited.json").exists().then_some(())
    });
    node.start();
    let after = node.wait_pod("survivor", "exit reported after restart", T, |p| {
        st::terminated(p, "short").is_some()
    });
    let t = st::terminated(&after, "short").unwrap();
    assert_eq!(
        (t.exit_code, t.reason.as_deref()),
        (7, Some("Error")),
        "the real exit code"
    );
    assert_eq!(
        st::container(&after, "short").restart_count,
        0,
        "Never: nothing starts twice"
    );
    assert!(st::running(&after, "long"));
    assert_eq!(
        st::container(&after, "long").container_id.as_deref(),
        Some(long_id.as_str()),
        "same instance"
    );
    assert_eq!(
        node.exec("survivor", "long", &["sh", "-c", "echo $PPID"]),
        long_pid
    );
    let instances = std::fs::read_dir(shim_dir.parent().unwrap()).unwrap().count();
    assert_eq!(instances, 1, "short ran exactly once");
    node.finish(T);
}

#[test]
fn graceful_stop_honours_the_grace_period() {
    let mut node = Node::new();
    let spec = |grace: i64, cmd: &str| {
        pod(&format!("p{grace}"))
            .grace(grace)
            .container(c("c").sh(cmd))
            .manifest()
    };
    // Traps SIGTERM and exits at once; ignores SIGTERM (PID 1 without a handler) and needs SIGKILL.
    node.apply(
        "polite.yaml",
        &spec(30, "trap \"exit 0\" TERM; while true; do sleep 0.1; done"),
    );
    node.apply("stubborn.yaml", &spec(3, "while true; do sleep 0.1; done"));
    node.start();
    node.wait_pod("p30", "running", T, |p| st::running(p, "c"));
    node.wait_pod("p3", "running", T, |p| st::running(p, "c"));
    // Deadlines far below the 30 s default: a pod that exits on SIGTERM stops at once, a pod that ignores it
    // is killed once its own 3 s grace period is over, not after the default.
    let well_below_default = Duration::from_secs(15);
    node.delete("polite.yaml");
    wait_for("polite pod gone at once", well_below_default, || {
        node.get("p30").is_none().then_some(())
    });
    let t1 = std::time::Instant::now();
    node.delete("stubborn.yaml");
    let seen = node.observe("p3", well_below_default, |p| p.is_none());
    let took = t1.elapsed();
    assert!(
        took >= Duration::from_millis(2900),
        "SIGKILL came before the 3 s grace period: {took:?}"
    );
    let last = seen.last().expect("the stubborn pod's last status");
    let t = st::terminated(last, "c").expect("terminated before removal");
    assert_eq!(
        (t.exit_code, t.reason.as_deref()),
        (137, Some("Error")),
        "killed by SIGKILL"
    );
    node.finish(T);
}

#[test]
fn bad_manifests_are_reported_and_others_keep_running() {
    let mut node = Node::new();
    let always = |name: &str| pod(name).restart_always().grace(5);
    let sleeper = || c("c").command(["sleep", "3600"]);
    node.apply(
        "good.yaml",
        &always("good").container(sleeper()).podgroup_manifest(),
    );
    let dup = always("dup").container(c("c")).container(c("c"));
    node.apply("dup.yaml", &dup.podgroup_manifest());
    let typo = always("typo").container(c("c").set("comand", json!(["x"])));
    node.apply("typo.yaml", &typo.podgroup_manifest());
    node.apply("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [\n");
    node.start();
    node.wait_pod("good", "running", T, |p| st::running(p, "c"));
    let dup = node.wait_pod("dup", "InvalidSpec", T, |p| st::display(p) == "InvalidSpec");
    assert_eq!(st::phase(&dup), "Failed");
    let msg = dup.status.as_ref().unwrap().pod.message.clone().unwrap();
    assert!(
        msg.contains("spec.containers[1].name: Duplicate value: \"c\""),
        "{msg}"
    );
    let log = wait_for("errors logged", T, || {
        let l = node.supervisor_log();
        (l.contains("typo.yaml") && l.contains("broken.yaml") && l.contains("dup.yaml")).then_some(l)
    });
    assert!(
        log.contains("unknown field \"spec.containers[0].comand\""),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    // Fixing the manifest makes it run; the good pod was never disturbed.
    let good_id = st::container(&node.get("good").unwrap(), "c")
        .container_id
        .clone();
    node.apply(
        "dup.yaml",
        &always("dup").container(sleeper()).podgroup_manifest(),
    );
    node.wait_pod("dup", "running once fixed", T, |p| st::running(p, "c"));
    assert_eq!(
        st::container(&node.get("good").unwrap(), "c").container_id,
        good_id
    );
    node.finish(T);
}
