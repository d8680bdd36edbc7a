//! A real control plane for cluster tests: etcd and kube-apiserver v1.20 on loopback (hack/control-plane.sh,
//! the apiserver built from Debian's source package), the Helm chart installed with helm, fake Node objects,
//! and agents authenticated with tokens of the chart's ServiceAccount, so the chart's RBAC is exactly what
//! they run with.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use peapod::api::PodGroup;

use super::{wait_for, Node};

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
        assert!(
            out.status.success(),
            "control plane: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cp = ControlPlane {
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
        };
        let helm = Command::new(script("helm.sh")).output().unwrap();
        assert!(
            helm.status.success(),
            "helm.sh: {}",
            String::from_utf8_lossy(&helm.stderr)
        );
        let helm = String::from_utf8_lossy(&helm.stdout).trim().to_string();
        let out = Command::new(helm)
            .env("KUBECONFIG", &cp.kubeconfig)
            .args(["install", "peapod"])
            .arg(repo().join("charts/peapod"))
            .args(["-n", SYSTEM_NS, "--create-namespace"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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
        let o = self.kubectl(args);
        assert!(
            o.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
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
        let out = Command::new(script("control-plane.sh"))
            .arg("down")
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "control plane down: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts them again on the same ports.
    pub fn start(&self) {
        let out = Command::new(script("control-plane.sh"))
            .arg("up")
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "control plane up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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
    let port = free_port();
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
        &[("KUBECONFIG", kubeconfig.as_os_str())],
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
        let cp = ControlPlane::up();
        cp.node(NODE_A, &[], "2", "4Gi");
        let kubeconfig = cp.agent_kubeconfig();
        let mut node = Node::new();
        start_agent(&mut node, &kubeconfig, NODE_A);
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
        assert!(self.node.stop(t).success());
        self.node.assert_clean();
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
