//! A real control plane for cluster tests: etcd and kube-apiserver v1.20 on loopback (hack/control-plane.sh,
//! the apiserver built from Debian's source package), the Helm chart installed with helm, fake Node objects,
//! and agents authenticated with tokens of the chart's ServiceAccount, so the chart's RBAC is exactly what
//! they run with.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use peapod::api::PodGroup;

use super::{wait_for, Node};

mod status;
#[allow(unused_imports)]
pub use status::{assert_caught_up, deletion_versions, has_event, raw_container};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str) -> PathBuf {
    repo().join("hack").join(name)
}

/// Namespace the chart is installed in.
pub const SYSTEM_NS: &str = "peapod-system";

/// etcd + kube-apiserver, with the chart installed.
pub struct ControlPlane {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl ControlPlane {
    /// Starts a control plane and installs the chart.
    pub fn up() -> ControlPlane {
        let dir = tempfile::Builder::new().prefix("peapod-cp-").tempdir().unwrap();
        let out = Command::new(script("control-plane.sh"))
            .arg("up")
            .arg(dir.path())
            .output()
            .unwrap();
        super::stdout_of_success("control plane", out);
        let cp = ControlPlane {
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
        };
        let helm = Command::new(script("helm.sh")).output().unwrap();
        let helm = super::stdout_of_success("helm.sh", helm).trim().to_string();
        let out = Command::new(helm)
            .env("KUBECONFIG", &cp.kubeconfig)
            .args(["install", "peapod"])
            .arg(repo().join("charts/peapod"))
            .args(["-n", SYSTEM_NS, "--create-namespace"])
            .output()
            .unwrap();
        super::stdout_of_success("helm install", out);
        wait_for("CRD established", Duration::from_secs(60), || {
            let o = cp.kubectl(&[
                "get",
                "crd",
                "podgroups.peapod.dev",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
            ]);
            (String::from_utf8_lossy(&o.stdout) == "True").then_some(())
        });
        cp
    }

    /// Runs kubectl with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs kubectl and returns stdout, panicking on failure.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        super::stdout_of_success(&format!("kubectl {args:?}"), self.kubectl(args))
    }

    /// `kubectl apply -f -` of a YAML text.
    pub fn apply(&self, yaml: &str) {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A PodGroup from the API, if it exists.
    pub fn get(&self, ns: &str, name: &str) -> Option<PodGroup> {
        let o = self.kubectl(&["get", "podgroup", name, "-n", ns, "-o", "json"]);
        if !o.status.success() {
            return None;
        }
        serde_json::from_slice(&o.stdout).ok()
    }

    /// Waits until the PodGroup satisfies `pred`.
    pub fn wait_pg(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&PodGroup) -> bool,
    ) -> PodGroup {
        wait_for(&format!("podgroup {ns}/{name}: {what}"), timeout, || {
            self.get(ns, name).filter(|p| pred(p))
        })
    }

    /// Creates a Node with these labels and allocatable resources, ready for scheduling.
    pub fn node(&self, name: &str, labels: &[(&str, &str)], cpu: &str, memory: &str) {
        let labels: String = labels
            .iter()
            .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
            .collect();
        self.apply(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\n{labels}status:\n  capacity: {{cpu: \"{cpu}\", memory: {memory}, pods: \"110\"}}\n  allocatable: {{cpu: \"{cpu}\", memory: {memory}, pods: \"110\"}}\n"
        ));
        // The admission plugin taints new nodes not-ready; a node lifecycle controller would clear it once the
        // kubelet reports Ready. There is neither here.
        let _ = self.kubectl(&["taint", "nodes", name, "node.kubernetes.io/not-ready:NoSchedule-"]);
    }

    /// A kubeconfig authenticating as the chart's ServiceAccount (`kubectl create token`).
    pub fn agent_kubeconfig(&self) -> PathBuf {
        let token = self.kubectl_ok(&["create", "token", "peapod", "-n", SYSTEM_NS, "--duration", "2h"]);
        let server = self.kubectl_ok(&["config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"]);
        let ca = self.kubectl_ok(&[
            "config",
            "view",
            "--raw",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ]);
        let path = self.dir.path().join("agent.kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: cp, cluster: {{server: {server}, certificate-authority-data: {ca}}}}}]\nusers: [{{name: agent, user: {{token: {}}}}}]\ncontexts: [{{name: agent, context: {{cluster: cp, user: agent}}}}]\ncurrent-context: agent\n",
                token.trim()
            ),
        )
        .unwrap();
        path
    }

    /// Stops etcd and the API server (their data stays).
    pub fn stop(&self) {
        self.control_plane_sh("down");
    }

    /// Starts them again on the same ports.
    pub fn start(&self) {
        self.control_plane_sh("up");
    }

    /// `hack/control-plane.sh <verb> <dir>`, which must succeed.
    fn control_plane_sh(&self, verb: &str) {
        let out = Command::new(script("control-plane.sh"))
            .arg(verb)
            .arg(self.dir.path())
            .output()
            .unwrap();
        super::stdout_of_success(&format!("control plane {verb}"), out);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(script("control-plane.sh"))
            .arg("down")
            .arg(self.dir.path())
            .output();
    }
}

/// Starts `peapod agent` for `node_name` on a test node.
pub fn start_agent(node: &mut Node, kubeconfig: &Path, node_name: &str) {
    start_agent_env(node, kubeconfig, node_name, &[]);
}

/// Starts `peapod agent` for `node_name` on a test node, with extra environment.
pub fn start_agent_env(node: &mut Node, kubeconfig: &Path, node_name: &str, env: &[(&str, &OsStr)]) {
    let port = free_port();
    let mut env = env.to_vec();
    env.push(("KUBECONFIG", kubeconfig.as_os_str()));
    node.start_with(
        &[
            "agent",
            "--node-name",
            node_name,
            "--namespace",
            SYSTEM_NS,
            "--metrics-bind-address",
            &format!("127.0.0.1:{port}"),
            "--cgroup-parent",
            &node.cgroup_parent.clone(),
        ],
        &env,
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A control plane with one fake node, `node-a`, and its agent: for tests of what one node reports.
pub struct OneNode {
    pub cp: ControlPlane,
    pub node: Node,
}

/// The fake node of [`OneNode`].
pub const NODE_A: &str = "node-a";

impl OneNode {
    /// Starts the control plane, creates `node-a` and starts its agent, waiting for its first heartbeat.
    pub fn up() -> OneNode {
        Self::up_env(&[])
    }

    /// `up`, with extra environment for the agent.
    pub fn up_env(env: &[(&str, &OsStr)]) -> OneNode {
        let cp = ControlPlane::up();
        cp.node(NODE_A, &[], "2", "4Gi");
        let kubeconfig = cp.agent_kubeconfig();
        let mut node = Node::new();
        start_agent_env(&mut node, &kubeconfig, NODE_A, env);
        wait_for("the agent heartbeating", Duration::from_secs(90), || {
            let leases = cp.kubectl_ok(&["get", "leases", "-n", SYSTEM_NS, "-o", "name"]);
            leases.contains(&format!("peapod-node-{NODE_A}")).then_some(())
        });
        OneNode { cp, node }
    }

    /// Deletes every PodGroup, waits for them to go, stops the agent and checks the node is clean.
    pub fn finish(mut self) {
        let t = Duration::from_secs(90);
        self.cp
            .kubectl_ok(&["delete", "podgroups", "--all", "-A", "--wait=false"]);
        wait_for("every PodGroup deleted", t, || {
            let left = self.cp.kubectl_ok(&["get", "podgroups", "-A", "-o", "name"]);
            left.trim().is_empty().then_some(())
        });
        self.node.finish(t);
    }

    /// `assert_status_writes_ok`, then `finish`: how a test of one node's statuses ends.
    pub fn finish_with_status_writes_ok(self) {
        self.assert_status_writes_ok();
        self.finish();
    }

    /// Checks that the API server took every status the agent wrote (a refused write is logged and retried).
    pub fn assert_status_writes_ok(&self) {
        let log = self.node.supervisor_log();
        assert!(
            !log.contains("failed to write status"),
            "the API server refused a status write:\n{log}"
        );
    }
}

impl ControlPlane {
    /// A PodGroup exactly as the API returns it (`kubectl get -o json`), if it exists.
    pub fn get_json(&self, ns: &str, name: &str) -> Option<serde_json::Value> {
        let o = self.kubectl(&["get", "podgroup", name, "-n", ns, "-o", "json"]);
        if !o.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&o.stdout).expect("kubectl get -o json prints JSON"))
    }

    /// The items of `kubectl get RESOURCE -n NS -o json` (`events`, `events.v1.events.k8s.io`, ...).
    pub fn items(&self, resource: &str, ns: &str) -> Vec<serde_json::Value> {
        let out = self.kubectl_ok(&["get", resource, "-n", ns, "-o", "json"]);
        let list: serde_json::Value = serde_json::from_str(&out).expect("kubectl get -o json prints JSON");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// The Events of namespace `ns` as `kubectl get events` prints them: REASON, OBJECT and MESSAGE columns.
    pub fn event_table(&self, ns: &str) -> String {
        self.kubectl_ok(&[
            "get",
            "events",
            "-n",
            ns,
            "-o",
            "custom-columns=REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message",
        ])
    }

    /// The core/v1 Events about PodGroup `name` (what `kubectl get events` and `kubectl describe` show).
    pub fn events_about(&self, ns: &str, name: &str) -> Vec<serde_json::Value> {
        self.items("events", ns)
            .into_iter()
            .filter(|e| e["involvedObject"]["kind"] == "PodGroup" && e["involvedObject"]["name"] == name)
            .collect()
    }

    /// Watches one PodGroup (`kubectl get --watch --output-watch-events`), runs `act` once the watch has seen
    /// the object, and returns every `(event type, object)` seen up to and including its DELETED event.
    pub fn watch_until_deleted(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
        act: impl FnOnce(),
    ) -> Vec<(String, serde_json::Value)> {
        use std::io::BufReader;
        use std::process::Stdio;
        use std::sync::mpsc;

        let mut child = Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args([
                "get",
                "podgroup",
                name,
                "-n",
                ns,
                "--watch",
                "--output-watch-events",
                "-o",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel::<serde_json::Value>();
        let reader = std::thread::spawn(move || {
            for v in serde_json::Deserializer::from_reader(stdout).into_iter::<serde_json::Value>() {
                let Ok(v) = v else { break };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut act = Some(act);
        let outcome = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(v) => {
                    let kind = v["type"].as_str().unwrap_or_default().to_string();
                    seen.push((kind.clone(), v["object"].clone()));
                    if let Some(act) = act.take() {
                        act();
                    }
                    if kind == "DELETED" {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        let _ = reader.join();
        if let Err(e) = outcome {
            let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
            panic!("watch of podgroup {ns}/{name}: no DELETED event ({e}); saw {kinds:?}");
        }
        seen
    }
}
