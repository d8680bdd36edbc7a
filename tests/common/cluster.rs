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
