//! Test harness for root integration tests: a throw-away node (state and run dirs under a tempdir, its own
//! cgroup parent), the real `peapod` binary, real runc and the busybox test image built offline from the
//! host's busybox-static. Waits poll a condition with a deadline; nothing sleeps to synchronise.
//!
//! Tests run under cargo-nextest, one process per test: the test process makes itself child subreaper so
//! that helpers orphaned by a killed supervisor are reaped here, and `Node::drop` proves nothing leaked
//! (processes, mounts, cgroups) after stopping everything.
#![allow(dead_code)]

pub mod builder;
pub mod chaos;
pub mod cluster;
pub mod host;
pub mod probing;

#[allow(unused_imports)]
pub use builder::{c, pod, sleeper};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use peapod::api::PodGroup;

/// The `peapod` binary under test: `PEAPOD_TEST_BIN` if set (a copy taken right after the build, when the
/// target directory is shared with other checkouts that may rebuild it meanwhile), else cargo's.
pub fn peapod_bin() -> PathBuf {
    match std::env::var_os("PEAPOD_TEST_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_peapod")),
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the busybox test image archives, built once (under a lock) by hack/test-image.sh.
pub fn test_images() -> PathBuf {
    if let Ok(dir) = std::env::var("PEAPOD_TEST_IMAGES") {
        return PathBuf::from(dir);
    }
    let dir = repo_root().join("target/test-images");
    let lock = repo_root().join("target/test-images.lock");
    fs::create_dir_all(repo_root().join("target")).unwrap();
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .unwrap();
    let _guard = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let out = Command::new(repo_root().join("hack/test-image.sh"))
        .arg(&dir)
        .output()
        .expect("run hack/test-image.sh");
    stdout_of_success("hack/test-image.sh failed", out);
    dir
}

/// The busybox image every test uses.
pub const BUSYBOX: &str = "localhost/busybox:1.35.0";

/// Polls `f` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn random_suffix() -> String {
    let mut b = [0u8; 4];
    let _ = fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    hex::encode(b)
}

/// A throw-away node.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub run: PathBuf,
    pub manifests: PathBuf,
    pub cgroup_parent: String,
    pub log: PathBuf,
    /// CNI configuration directory: empty (loopback-only sandboxes) unless a test writes a network there.
    pub cni_conf: PathBuf,
    supervisor: Option<Child>,
}

impl Node {
    /// A node with the busybox image imported.
    pub fn new() -> Node {
        assert!(
            nix::unistd::geteuid().is_root(),
            "root integration tests need root (run them with `make test`)"
        );
        if std::env::var_os("NEXTEST").is_some() {
            // One test per process under nextest: reaping every orphan here cannot steal another test's child.
            nix::sys::prctl::set_child_subreaper(true).unwrap();
        }
        let dir = tempfile::Builder::new().prefix("peapod-test-").tempdir().unwrap();
        let node = Node {
            state: dir.path().join("state"),
            run: dir.path().join("run"),
            manifests: dir.path().join("manifests"),
            cgroup_parent: format!("/peapod-test-{}", random_suffix()),
            log: dir.path().join("supervisor.log"),
            cni_conf: dir.path().join("cni"),
            dir,
            supervisor: None,
        };
        fs::create_dir_all(&node.manifests).unwrap();
        fs::create_dir_all(&node.cni_conf).unwrap();
        node.import(&test_images().join("busybox.oci.tar"));
        node
    }

    /// `peapod image import` of an OCI archive (it must succeed).
    pub fn import(&self, archive: &Path) {
        self.peapod_ok(&["image", "import", archive.to_str().unwrap()]);
    }

    /// Runs a `peapod` command that must succeed; returns its stdout.
    pub fn peapod_ok(&self, args: &[&str]) -> String {
        stdout_of_success(&format!("peapod {args:?}"), self.peapod(args))
    }

    /// A `peapod` command against this node's directories.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(peapod_bin());
        c.env("PEAPOD_STATE_DIR", &self.state)
            .env("PEAPOD_RUN_DIR", &self.run)
            .env("PEAPOD_NODE_NAME", "test-node")
            .env("PEAPOD_LOG", "info")
            .env("PEAPOD_CNI_CONF_DIR", &self.cni_conf)
            // Most suites test host namespaces and hostPath, which the default (baseline) refuses;
            // tests/security*.rs set the level they test.
            .env("PEAPOD_POD_SECURITY_LEVEL", "privileged")
            // This VM's disk reads as nearly full by the kubelet's formula; only the GC tests collect images.
            .env("PEAPOD_IMAGE_GC_HIGH_THRESHOLD", "100")
            .args(args);
        c
    }

    /// Runs a `peapod` command to completion.
    pub fn peapod(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().expect("run peapod")
    }

    /// Starts `peapod run` on the manifest directory.
    pub fn start(&mut self) {
        self.start_env(&[]);
    }

    /// Starts `peapod run` on the manifest directory with extra environment (e.g. a crash point).
    pub fn start_env(&mut self, env: &[(&str, &std::ffi::OsStr)]) {
        self.start_run(&[], env);
    }

    /// Starts `peapod run` on the manifest directory with extra flags and environment.
    pub fn start_run(&mut self, flags: &[&str], env: &[(&str, &std::ffi::OsStr)]) {
        let manifests = self.manifests.to_str().unwrap().to_string();
        let parent = self.cgroup_parent.clone();
        let mut args = vec![
            "run",
            "-f",
            &manifests,
            "--poll-interval",
            "0.2",
            "--cgroup-parent",
            &parent,
        ];
        args.extend_from_slice(flags);
        self.start_with(&args, env);
    }

    /// Starts a supervisor (`run` or `agent`) with these arguments and extra environment.
    pub fn start_with(&mut self, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) {
        assert!(self.supervisor.is_none(), "supervisor already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = self.cmd(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start peapod");
        self.supervisor = Some(child);
    }

    /// The supervisor's pid.
    pub fn supervisor_pid(&self) -> Option<i32> {
        self.supervisor.as_ref().map(|c| c.id() as i32)
    }

    /// Kills the supervisor with SIGKILL, leaving everything it started running.
    pub fn kill9(&mut self) {
        let mut child = self.supervisor.take().expect("supervisor running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits for the supervisor to exit on its own (a crash point) and returns how it ended.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.supervisor.as_mut().expect("supervisor running");
        let status = wait_for("supervisor to exit", timeout, || child.try_wait().unwrap());
        self.supervisor = None;
        status
    }

    /// Every pod's live status (one per name).
    pub fn pods(&self) -> Vec<PodGroup> {
        let mut pods = peapod::standalone::store::StatusStore::new(&self.state).list();
        pods.sort_by_key(|p| p.metadata.deletion_timestamp.is_some());
        let mut seen = std::collections::HashSet::new();
        pods.retain(|p| seen.insert(p.metadata.name.clone()));
        pods
    }

    /// Sends SIGINT and waits for the supervisor to exit (it stops every pod first).
    pub fn stop(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut child = self.supervisor.take().expect("supervisor running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        wait_for("supervisor to exit", timeout, || child.try_wait().unwrap())
    }

    /// Stops the supervisor with SIGINT (it must exit successfully within `timeout`) and asserts that nothing
    /// of this node is left on the host: how every test ends.
    pub fn finish(&mut self, timeout: Duration) {
        let status = self.stop(timeout);
        assert!(status.success(), "the supervisor exited with {status}");
        self.assert_clean();
    }

    /// The supervisor's output so far.
    pub fn supervisor_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Writes a manifest file.
    pub fn apply(&self, file: &str, yaml: &str) {
        let tmp = self.manifests.join(format!(".{file}.tmp"));
        fs::write(&tmp, yaml).unwrap();
        fs::rename(&tmp, self.manifests.join(file)).unwrap();
    }

    /// Removes a manifest file.
    pub fn delete(&self, file: &str) {
        fs::remove_file(self.manifests.join(file)).unwrap();
    }

    /// The pod's current status file, if any (the live incarnation).
    pub fn get(&self, name: &str) -> Option<PodGroup> {
        peapod::standalone::store::StatusStore::new(&self.state).find("default", name)
    }

    /// Waits until the pod satisfies `pred`.
    pub fn wait_pod(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&PodGroup) -> bool,
    ) -> PodGroup {
        wait_for(&format!("pod {name}: {what}"), timeout, || {
            self.get(name).filter(|p| pred(p))
        })
        .clone()
    }

    /// Watches the pod's status file closely (every millisecond) and returns every distinct version seen, oldest
    /// first, until `done` holds for the current one (`None`: the pod is gone) or `timeout` passes (panics).
    /// Conformance invariants are checked over this history, as upstream checks them over watch events.
    pub fn observe(
        &self,
        name: &str,
        timeout: Duration,
        done: impl Fn(Option<&PodGroup>) -> bool,
    ) -> Vec<PodGroup> {
        let mut seen: Vec<PodGroup> = Vec::new();
        let mut last = String::new();
        let deadline = Instant::now() + timeout;
        let mut files = std::collections::HashMap::new();
        loop {
            let now = self.peek(name, &mut files);
            if let Some(p) = &now {
                let json = serde_json::to_string(p).unwrap_or_default();
                if json != last {
                    last = json;
                    seen.push(p.clone());
                }
            }
            if done(now.as_ref()) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} observing pod {name}; last seen: {:#?}",
                seen.last()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `get`, cheap enough to run every millisecond: a status file is parsed only when its bytes changed.
    fn peek(
        &self,
        name: &str,
        files: &mut std::collections::HashMap<PathBuf, (Vec<u8>, Option<PodGroup>)>,
    ) -> Option<PodGroup> {
        let dir = self.state.join("standalone");
        let mut found: Vec<PodGroup> = Vec::new();
        let mut present = std::collections::HashSet::new();
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(bytes) = fs::read(&path) else { continue };
            present.insert(path.clone());
            let cached = files.entry(path).or_insert_with(|| (Vec::new(), None));
            if cached.0 != bytes {
                cached.1 = serde_json::from_slice(&bytes).ok();
                cached.0 = bytes;
            }
            if let Some(p) = &cached.1 {
                if p.metadata.name.as_deref() == Some(name)
                    && p.metadata.namespace.as_deref().unwrap_or("default") == "default"
                {
                    found.push(p.clone());
                }
            }
        }
        files.retain(|p, _| present.contains(p));
        // The live incarnation first, as `StatusStore::find` orders them.
        found.sort_by_key(|p| p.metadata.deletion_timestamp.is_some());
        found.into_iter().next()
    }

    /// Logged Events (`reason`, `message`) about pod `name` from the supervisor log, in order.
    pub fn events(&self, name: &str) -> Vec<(String, String)> {
        let pod = format!("pod=default/{name} ");
        strip_ansi(&self.supervisor_log())
            .lines()
            .filter(|l| l.contains(" event pod=") && l.contains(&pod))
            .filter_map(|l| {
                // `... Warning event pod=default/x object="..." reason=Failed <message>`
                let (reason, message) = l.split_once(" reason=")?.1.split_once(' ')?;
                Some((reason.to_string(), message.to_string()))
            })
            .collect()
    }

    /// `peapod exec` in a container; returns stdout (panics on failure).
    pub fn exec(&self, pod: &str, container: &str, cmd: &[&str]) -> String {
        let mut args = vec!["exec", pod, "-c", container, "--"];
        args.extend_from_slice(cmd);
        let out = self.peapod(&args);
        assert!(
            out.status.success(),
            "exec {cmd:?} in {pod}/{container}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether `peapod exec` of `true` succeeds in the container (it runs).
    pub fn exec_ok(&self, pod: &str, container: &str) -> bool {
        self.peapod(&["exec", pod, "-c", container, "--", "true"])
            .status
            .success()
    }

    /// The pod's cgroup directories on this host (all hierarchies).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        peapod::runtime::cgroup::hierarchies(&info)
            .into_iter()
            .map(|h| h.mount.join(self.cgroup_parent.trim_start_matches('/')))
            .filter(|p| p.exists())
            .collect()
    }

    /// Every process in this node's cgroups (containers and the helpers that moved there).
    pub fn pids_in_cgroups(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in self.cgroup_dirs() {
            for entry in walkdir(&dir) {
                if let Ok(text) = fs::read_to_string(entry.join("cgroup.procs")) {
                    pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
                }
            }
        }
        pids.sort();
        pids.dedup();
        pids
    }

    /// Every process whose command line names this node's directory (supervisor, pause, shims).
    pub fn helper_pids(&self) -> Vec<i32> {
        let marker = self.dir.path().to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                pids.push(pid);
            }
        }
        pids
    }

    fn mounts(&self) -> Vec<String> {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let marker = self.dir.path().to_string_lossy().into_owned();
        peapod::sys::mount::mountinfo_targets(&info)
            .filter(|t| t.starts_with(&marker))
            .collect()
    }

    /// Asserts that nothing of this node is left on the host: processes, mounts, cgroups, sandboxes.
    pub fn assert_clean(&self) {
        reap_orphans();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            reap_orphans();
            let left = self.helper_pids();
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let cmdlines: Vec<String> = left
                    .iter()
                    .map(|pid| {
                        let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                        format!("{pid}: {}", String::from_utf8_lossy(&raw).replace('\0', " "))
                    })
                    .collect();
                panic!("helpers left after 15s: {cmdlines:#?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            self.pids_in_cgroups().is_empty(),
            "container processes left: {:?}",
            self.pids_in_cgroups()
        );
        assert!(self.mounts().is_empty(), "mounts left: {:?}", self.mounts());
        let sandboxes: Vec<_> = fs::read_dir(self.run.join("sandboxes"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(sandboxes.is_empty(), "sandbox dirs left: {sandboxes:?}");
        let pods: Vec<_> = fs::read_dir(self.state.join("pods"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(pods.is_empty(), "pod dirs left: {pods:?}");
        let leftover: Vec<PathBuf> = self
            .cgroup_dirs()
            .into_iter()
            .flat_map(|d| walkdir(&d).into_iter().skip(1))
            .collect();
        assert!(leftover.is_empty(), "pod cgroups left: {leftover:?}");
    }

    /// Forcefully removes whatever a failed test left behind.
    fn force_cleanup(&mut self) {
        if let Some(mut c) = self.supervisor.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in self.pids_in_cgroups().into_iter().chain(self.helper_pids()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        // Never panic here: Drop may run while a failed test unwinds.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            reap_orphans();
            if self.pids_in_cgroups().is_empty() && self.helper_pids().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Release the CNI attachments of sandboxes the test left (their namespaces are still pinned).
        let mut cfg = peapod::runtime::layout::RuntimeConfig::new(
            self.state.clone(),
            self.run.clone(),
            PathBuf::from("runc"),
            peapod_bin(),
        );
        cfg.cni_conf_dir = self.cni_conf.clone();
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(peapod::runtime::sandbox::release_networks(&cfg, |_| false));
        }
        let runc_root = self.run.join("runc");
        if let Ok(entries) = fs::read_dir(&runc_root) {
            for e in entries.flatten() {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["delete", "--force"])
                    .arg(e.file_name())
                    .output();
            }
        }
        let _ = peapod::sys::mount::unmount_all_under(self.dir.path());
        for dir in self.cgroup_dirs() {
            let mut dirs = walkdir(&dir);
            dirs.reverse();
            for d in dirs {
                let _ = fs::remove_dir(d);
            }
        }
        reap_orphans();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.force_cleanup();
    }
}

/// The stdout of a command that must have succeeded (`what` names it if it did not).
pub fn stdout_of_success(what: &str, out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `text` without terminal colour sequences (the supervisor's log has them).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte.
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reaps every exited child of this (subreaper) test process.
pub fn reap_orphans() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    if std::env::var_os("NEXTEST").is_none() {
        return;
    }
    loop {
        match waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// `root` and every directory below it, parents first.
pub fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = fs::read_dir(&out[i]) {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

/// Helpers to read a PodGroup status.
pub mod st {
    use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStateWaiting, ContainerStatus};
    use peapod::api::PodGroup;

    pub fn phase(p: &PodGroup) -> &str {
        p.status
            .as_ref()
            .and_then(|s| s.pod.phase.as_deref())
            .unwrap_or("")
    }

    pub fn display(p: &PodGroup) -> &str {
        p.status
            .as_ref()
            .and_then(|s| s.display_status.as_deref())
            .unwrap_or("")
    }

    pub fn try_container<'a>(p: &'a PodGroup, name: &str) -> Option<&'a ContainerStatus> {
        let s = p.status.as_ref()?;
        s.pod
            .container_statuses
            .iter()
            .flatten()
            .chain(s.pod.init_container_statuses.iter().flatten())
            .find(|c| c.name == name)
    }

    pub fn container<'a>(p: &'a PodGroup, name: &str) -> &'a ContainerStatus {
        try_container(p, name).unwrap_or_else(|| panic!("no status for container {name}"))
    }

    pub fn running(p: &PodGroup, name: &str) -> bool {
        try_container(p, name)
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.running.as_ref())
            .is_some()
    }

    pub fn terminated(p: &PodGroup, name: &str) -> Option<ContainerStateTerminated> {
        try_container(p, name)?.state.as_ref()?.terminated.clone()
    }

    pub fn waiting_reason(p: &PodGroup, name: &str) -> Option<String> {
        waiting(p, name)?.reason
    }

    pub fn waiting(p: &PodGroup, name: &str) -> Option<ContainerStateWaiting> {
        try_container(p, name)?.state.as_ref()?.waiting.clone()
    }

    pub fn last_terminated(p: &PodGroup, name: &str) -> Option<ContainerStateTerminated> {
        try_container(p, name)?.last_state.as_ref()?.terminated.clone()
    }

    pub fn restarts(p: &PodGroup, name: &str) -> i32 {
        try_container(p, name).map(|c| c.restart_count).unwrap_or(-1)
    }

    pub fn condition<'a>(p: &'a PodGroup, t: &str) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
        p.status
            .as_ref()?
            .pod
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == t)
    }
}
