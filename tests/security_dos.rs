//! Root integration tests of denial of service within the kubelet's semantics (issue 18, findings 4 and 5):
//! a pod with many containers deleted while it starts, a memory-backed emptyDir sized like the kubelet
//! sizes it, a termination-message file a container cannot grow without bound, hostPaths refused before
//! they are created, half-deleted pod directories finished at start-up, and managed /etc files a container
//! cannot grow without bound (and which a recreated sandbox writes afresh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod security_probe;

use std::time::Duration;

use serde_json::{json, Value};

use common::{st, strip_ansi, wait_for, Node};
use security_probe::{container, pod, start, T};

/// Containers in the pod deleted while it starts: enough that starting them all takes seconds.
const MANY: usize = 60;

#[test]
fn deleting_a_pod_cancels_its_pending_container_starts() {
    let mut node = Node::new();
    let script = "trap 'exit 0' TERM; sleep 300 & wait";
    let containers: Vec<Value> = (0..MANY)
        .map(|i| container(&format!("c{i}"), script, json!({})))
        .collect();
    node.apply("many.yaml", &pod("many", json!({"containers": containers})));
    start(&mut node, "baseline", &[]);
    let started = |log: &str| log.lines().filter(|l| is_event(l, "Started")).count();
    wait_for("the first containers to start", T, || {
        (started(&node.supervisor_log()) >= 2).then_some(())
    });
    node.delete("many.yaml");
    wait_for("the pod to be gone", Duration::from_secs(300), || {
        node.get("many").is_none().then_some(())
    });
    let log = strip_ansi(&node.supervisor_log());
    let (before, after) = log
        .split_once("manifest gone or changed: stopping pod")
        .expect("the supervisor logged the stop request");
    // The start under way when the request came may finish; nothing starts after it.
    let late = started(after);
    assert!(
        late <= 1,
        "{late} containers started after the stop was requested"
    );
    let total = started(before) + late;
    assert!(total < MANY, "every container started: {total}");
    let killed = log.lines().filter(|l| is_event(l, "Killing")).count();
    assert_eq!(killed, total, "every started container was stopped");
    node.finish(T);
}

/// Whether a supervisor log line is an Event with this reason about a container.
fn is_event(line: &str, reason: &str) -> bool {
    line.contains(" event pod=") && line.contains(&format!(" reason={reason} "))
}

/// The `size=` option of the tmpfs at `mount_point`, from a container's `/proc/mounts` lines.
fn tmpfs_size(mounts: &str, mount_point: &str) -> String {
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(mount_point))
        .unwrap_or_else(|| panic!("{mount_point} is not mounted:\n{mounts}"));
    line.split([' ', ','])
        .find_map(|o| o.strip_prefix("size="))
        .unwrap_or_else(|| panic!("no size in {line}"))
        .to_string()
}

#[test]
fn memory_empty_dirs_are_bounded_by_the_pods_limit_and_the_nodes_memory() {
    let mut node = Node::new();
    let volumes = json!([
        {"name": "huge", "emptyDir": {"medium": "Memory", "sizeLimit": "1Ei"}},
        {"name": "small", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
    ]);
    let mounts = json!([{"name": "huge", "mountPath": "/huge"}, {"name": "small", "mountPath": "/small"}]);
    let script = "grep -E ' /(huge|small) ' /proc/mounts";
    let limited = json!({"volumeMounts": mounts,
        "resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}});
    let open = json!({"volumeMounts": mounts});
    for (name, extra) in [("limited", limited), ("open", open)] {
        let spec = json!({"restartPolicy": "Never", "volumes": volumes,
            "containers": [container("c", script, extra)]});
        node.apply(&format!("{name}.yaml"), &pod(name, spec));
    }
    start(&mut node, "baseline", &[]);
    let limited = security_probe::finished_log(&node, "limited", "c");
    assert_eq!(tmpfs_size(&limited, "/huge"), "65536k", "the pod's limit");
    assert_eq!(tmpfs_size(&limited, "/small"), "8192k", "the volume's sizeLimit");
    let open = security_probe::finished_log(&node, "open", "c");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let node_kib = peapod::runtime::resources::memory_capacity(&meminfo).unwrap() / 1024;
    assert_eq!(
        tmpfs_size(&open, "/huge"),
        format!("{node_kib}k"),
        "the node's memory"
    );
    assert_eq!(tmpfs_size(&open, "/small"), "8192k");
    node.finish(T);
}

#[test]
fn a_container_cannot_grow_its_termination_message_file_without_bound() {
    let mut node = Node::new();
    // 1 MiB into the file, then what the container saw.
    let script = "yes peapod | head -c 1048576 > /dev/termination-log; echo \"Status: $?\"; \
        echo \"Size: $(wc -c < /dev/termination-log)\"";
    let spec = json!({"restartPolicy": "Never", "containers": [container("c", script, json!({}))]});
    node.apply("grow.yaml", &pod("grow", spec));
    start(&mut node, "baseline", &[]);
    let facts = security_probe::facts(&security_probe::finished_log(&node, "grow", "c"));
    let cap = peapod::runtime::termination::MAX_TERMINATION_LOG;
    assert_ne!(facts["Status"], "0", "the write past the cap failed");
    let size: u64 = facts["Size"].parse().unwrap();
    assert!(size <= cap, "the container's view: {size} bytes");
    // On the host the file never held more than the cap (the write failed at it), and once the message is in
    // the exit record the shim unmounts its tmpfs: the host keeps nothing of it.
    let p = node.get("grow").unwrap();
    let uid = p.metadata.uid.clone().unwrap();
    let mount = node.state.join(format!("pods/{uid}/containers/c/0/termination"));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !peapod::sys::mount::is_mountpoint(&mountinfo, &mount),
        "the termination tmpfs is unmounted after the exit"
    );
    assert!(
        !mount.join("termination-log").exists(),
        "nothing of the message is left on the host"
    );
    // The status still shows the first 4096 bytes, as the kubelet's does.
    let message = st::terminated(&p, "c").unwrap().message.unwrap_or_default();
    assert_eq!(message.len(), 4096);
    assert!(message.starts_with("peapod\npeapod\n"), "{message:.40}");
    node.finish(T);
}

#[test]
fn host_paths_at_or_above_peapods_directories_are_refused_before_anything_is_created() {
    let mut node = Node::new();
    let link = node.dir.path().join("innocent-looking");
    std::os::unix::fs::symlink(&node.run, &link).unwrap();
    let inside_state = node.state.join("made-by-a-pod");
    let inside_run = link.join("file-by-a-pod");
    let volume = |path: &std::path::Path, typ: &str| {
        json!({"volumes": [{"name": "v", "hostPath": {"path": path, "type": typ}}],
               "containers": [container("c", "ls /v", json!({"volumeMounts": [{"name": "v", "mountPath": "/v"}]}))]})
    };
    let cases = [
        (
            "create-dir",
            volume(&inside_state.join("sub"), "DirectoryOrCreate"),
            "is inside",
        ),
        ("create-file", volume(&inside_run, "FileOrCreate"), "is inside"),
        ("untyped", volume(&inside_state, ""), "is inside"),
        ("ancestor", volume(node.dir.path(), "Directory"), "contains"),
        ("root", volume(std::path::Path::new("/"), ""), "contains"),
    ];
    for (name, spec, _) in &cases {
        node.apply(&format!("{name}.yaml"), &pod(name, spec.clone()));
    }
    start(&mut node, "privileged", &[]);
    for (name, _, relation) in &cases {
        let what = format!("pod {name} refused its hostPath");
        wait_for(&what, T, || {
            strip_ansi(&node.supervisor_log())
                .lines()
                .any(|l| {
                    l.contains(&format!("pod=default/{name} "))
                        && l.contains("FailedMount")
                        && l.contains(&format!("{relation} peapod's directory"))
                })
                .then_some(())
        });
        let p = node.get(name).unwrap();
        assert!(!st::running(&p, "c"), "{name}");
    }
    assert!(!inside_state.exists(), "nothing was created in the state dir");
    assert!(!node.run.join("file-by-a-pod").exists(), "nor in the run dir");
    node.finish(T);
}

/// Clears the immutable flag under `dir` when dropped, so that a failed test leaves a removable tempdir.
struct Immutable(std::path::PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(&self.0)
            .output();
    }
}

fn chattr(flag: &str, path: &std::path::Path) {
    let out = std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "chattr {flag} {}: {out:?}", path.display());
}

/// The file called `name` somewhere below `dir`.
fn find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            return Some(path);
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        }
    }
    None
}

#[test]
fn a_pod_directory_that_cannot_be_removed_is_finished_at_the_next_start() {
    let mut node = Node::new();
    let _unpin = Immutable(node.state.clone());
    let script = "echo x > /scratch/stuck; trap 'exit 0' TERM; sleep 300 & wait";
    let mounts = json!({"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]});
    let spec = json!({"volumes": [{"name": "scratch", "emptyDir": {}}],
        "containers": [container("c", script, mounts)]});
    node.apply("stuck.yaml", &pod("stuck", spec));
    start(&mut node, "baseline", &[]);
    let p = node.wait_pod("stuck", "running", T, |p| st::running(p, "c"));
    let uid = p.metadata.uid.unwrap();
    let pods = node.state.join("pods");
    let file = pods.join(format!("{uid}/volumes/kubernetes.io~empty-dir/scratch/stuck"));
    wait_for("the container's file", T, || file.exists().then_some(()));
    // A file that cannot be unlinked makes the removal fail part way.
    chattr("+i", &file);
    node.delete("stuck.yaml");
    wait_for("the pod to be gone", T, || {
        node.get("stuck").is_none().then_some(())
    });
    assert!(
        !pods.join(&uid).exists(),
        "the pod directory is not left under its live name"
    );
    let left = pods.join(format!(".deleting-{uid}"));
    let stuck = find(&left, "stuck").expect("the unremovable file waits under .deleting-");
    assert!(node.stop(T).success());
    // Whatever blocked the removal is gone; the next start finishes it.
    chattr("-i", &stuck);
    start(&mut node, "baseline", &[]);
    wait_for("the leftover to be removed", T, || (!left.exists()).then_some(()));
    node.finish(T);
}

#[test]
fn a_container_cannot_grow_the_pods_etc_hosts_without_bound() {
    let mut node = Node::new();
    // 1 MiB appended to the pod's /etc/hosts, then what the container saw; another container reads it after.
    let grow = "yes peapod | head -c 1048576 >> /etc/hosts; echo \"Status: $?\"; \
        echo \"Size: $(wc -c < /etc/hosts)\"";
    let idle = "trap 'exit 0' TERM; sleep 300 & wait";
    let spec = json!({"restartPolicy": "Never",
        "hostAliases": [{"ip": "10.9.8.7", "hostnames": ["alias.test"]}],
        "initContainers": [container("grow", grow, json!({}))],
        "containers": [container("read", idle, json!({}))]});
    node.apply("grow.yaml", &pod("grow", spec));
    start(&mut node, "baseline", &[]);
    let p = node.wait_pod("grow", "read running", T, |p| st::running(p, "read"));
    let out = node.peapod(&["logs", "grow", "-c", "grow"]);
    let facts = security_probe::facts(&String::from_utf8_lossy(&out.stdout));
    let cap = peapod::runtime::sandbox::MIN_ETC_CAPACITY;
    assert_ne!(facts["Status"], "0", "the write past the cap failed");
    let size: u64 = facts["Size"].parse().unwrap();
    assert!(size <= cap, "the container's view: {size} bytes");
    // The other container reads the pod's managed file, aliases included.
    let hosts = node.exec("grow", "read", &["cat", "/etc/hosts"]);
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n"),
        "{hosts:.80}"
    );
    assert!(hosts.contains("10.9.8.7\talias.test\n"), "{hosts:.400}");
    // On the host, the file holds no more than the cap, in bytes and in blocks.
    let uid = p.metadata.uid.clone().unwrap();
    let id = sandbox_id(&node, &uid).unwrap();
    let file = node.run.join(format!("sandboxes/{id}/etc/hosts"));
    let meta = std::fs::metadata(&file).unwrap();
    assert!(meta.len() <= cap, "{} bytes on the host", meta.len());
    assert!(
        std::os::unix::fs::MetadataExt::blocks(&meta) * 512 <= cap,
        "blocks on the host"
    );
    node.finish(T);
}

/// The id of the pod's current sandbox, from its persistent pointer.
fn sandbox_id(node: &Node, uid: &str) -> Option<String> {
    let pointer = std::fs::read(node.state.join(format!("pods/{uid}/sandbox.json"))).ok()?;
    let pointer: Value = serde_json::from_slice(&pointer).ok()?;
    pointer["id"].as_str().map(String::from)
}

#[test]
fn a_recreated_sandbox_writes_its_etc_files_afresh_and_unmounts_the_old_ones() {
    let mut node = Node::new();
    // The first run edits /etc/hosts; the emptyDir, which outlives the sandbox, remembers it did.
    let script = "[ -e /d/done ] || { echo edited-by-the-pod >> /etc/hosts; : > /d/done; }; \
        trap 'exit 0' TERM; sleep 300 & wait";
    let mounts = json!({"volumeMounts": [{"name": "d", "mountPath": "/d"}]});
    let spec = json!({"volumes": [{"name": "d", "emptyDir": {}}],
        "containers": [container("c", script, mounts)]});
    node.apply("edit.yaml", &pod("edit", spec));
    start(&mut node, "baseline", &[]);
    let p = node.wait_pod("edit", "running", T, |p| st::running(p, "c"));
    let uid = p.metadata.uid.unwrap();
    let old = sandbox_id(&node, &uid).unwrap();
    let old_dir = node.run.join(format!("sandboxes/{old}"));
    wait_for("the edit", T, || {
        let hosts = std::fs::read_to_string(old_dir.join("etc/hosts")).ok()?;
        hosts.contains("edited-by-the-pod").then_some(())
    });
    // The pause process dies: the kubelet's SandboxChanged, a new sandbox with its own files.
    let record: Value =
        serde_json::from_slice(&std::fs::read(old_dir.join("sandbox.json")).unwrap()).unwrap();
    let pause = nix::unistd::Pid::from_raw(record["pause"]["pid"].as_i64().unwrap() as i32);
    nix::sys::signal::kill(pause, nix::sys::signal::Signal::SIGKILL).unwrap();
    let new = wait_for("a new sandbox", T, || {
        sandbox_id(&node, &uid).filter(|id| *id != old)
    });
    node.wait_pod("edit", "running again", T, |p| {
        st::restarts(p, "c") >= 1 && st::running(p, "c")
    });
    let hosts = node.exec("edit", "c", &["cat", "/etc/hosts"]);
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n"),
        "{hosts:.80}"
    );
    assert!(
        !hosts.contains("edited-by-the-pod"),
        "the old edit is gone:\n{hosts}"
    );
    assert!(node.run.join(format!("sandboxes/{new}/etc/hosts")).exists());
    // The old sandbox's tmpfs is unmounted with its directory.
    wait_for("the old sandbox's directory to go", T, || {
        (!old_dir.exists()).then_some(())
    });
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&*old_dir.to_string_lossy()),
        "old mounts left"
    );
    node.finish(T);
}
