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
mod clean;
pub mod cluster;
pub mod cni;
pub mod host;
pub mod probing;
pub mod st;
mod watch;

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
    /// CNI configuration directory: empty (loopback-only sandboxes) unless a test writes a network there
    /// (see `cni::bridge_network`).
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
