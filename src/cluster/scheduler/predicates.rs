//! The scheduler's filters and score, pure functions ported from kube-scheduler's default plugins in their
//! order (NodeUnschedulable, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit), with its reason
//! strings so `FailedScheduling` reads the same: `0/3 nodes are available: 1 Insufficient memory, 2 node(s)
//! didn't match Pod's node affinity/selector.` Nodes without a live peapod agent are filtered first.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{
    Container, Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};

use crate::api::quantity::parse_quantity;

/// Requested or allocatable resources, in the units the kubelet counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Millicores.
    pub milli_cpu: i128,
    /// Bytes.
    pub memory: i128,
    /// Pods.
    pub pods: i128,
}

impl Resources {
    fn add(&mut self, o: Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.pods += o.pods;
    }
}

/// A host port taken on a node: protocol, port, host IP (`0.0.0.0` when unset).
pub type HostPort = (String, i32, String);

/// What the scheduler knows about a node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The Node object.
    pub node: Node,
    /// A peapod agent renews its lease.
    pub live: bool,
    /// Requests of the pods and PodGroups already on it.
    pub requested: Resources,
    /// Host ports already taken.
    pub ports: HashSet<HostPort>,
}

impl NodeInfo {
    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// Allocatable resources (capacity when allocatable is absent).
    pub fn allocatable(&self) -> Resources {
        let status = self.node.status.clone().unwrap_or_default();
        let list = status.allocatable.or(status.capacity).unwrap_or_default();
        let get = |k: &str| list.get(k).and_then(|q| parse_quantity(&q.0));
        Resources {
            milli_cpu: get("cpu").map(|q| q.milli_value()).unwrap_or(0),
            memory: get("memory").map(|q| q.value()).unwrap_or(0),
            pods: get("pods").map(|q| q.value()).unwrap_or(110),
        }
    }
}

/// Why a node was rejected, as kube-scheduler words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// No peapod agent runs there.
    NoAgent,
    /// `spec.unschedulable` (cordoned).
    Unschedulable,
    /// A NoSchedule/NoExecute taint the pod does not tolerate.
    Taint(String, String),
    /// nodeSelector or required node affinity.
    Affinity,
    /// Host ports in use.
    Ports,
    /// Not enough of these resources (`cpu`, `memory`, `pods`).
    Insufficient(Vec<&'static str>),
}

impl Reject {
    /// The reason strings this rejection contributes to the message.
    pub fn reasons(&self) -> Vec<String> {
        match self {
            Reject::NoAgent => vec!["node(s) had no running peapod agent".into()],
            Reject::Unschedulable => vec!["node(s) were unschedulable".into()],
            Reject::Taint(k, v) => vec![format!("node(s) had untolerated taint {{{k}: {v}}}")],
            Reject::Affinity => vec!["node(s) didn't match Pod's node affinity/selector".into()],
            Reject::Ports => vec!["node(s) didn't have free ports for the requested pod ports".into()],
            Reject::Insufficient(rs) => rs
                .iter()
                .map(|r| {
                    if *r == "pods" {
                        "Too many pods".to_string()
                    } else {
                        format!("Insufficient {r}")
                    }
                })
                .collect(),
        }
    }
}

/// kube-scheduler's `FitError` message for `rejects` over `nodes` nodes.
pub fn fit_error(nodes: usize, rejects: &[Reject]) -> String {
    let mut histogram: BTreeMap<String, usize> = BTreeMap::new();
    for r in rejects {
        for reason in r.reasons() {
            *histogram.entry(reason).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = histogram.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    if parts.is_empty() {
        format!("0/{nodes} nodes are available.")
    } else {
        format!("0/{nodes} nodes are available: {}.", parts.join(", "))
    }
}

fn container_requests(c: &Container) -> Resources {
    let requests = c
        .resources
        .as_ref()
        .and_then(|r| r.requests.clone())
        .unwrap_or_default();
    let get = |k: &str| requests.get(k).and_then(|q| parse_quantity(&q.0));
    Resources {
        milli_cpu: get("cpu").map(|q| q.milli_value()).unwrap_or(0),
        memory: get("memory").map(|q| q.value()).unwrap_or(0),
        pods: 0,
    }
}

/// The pod's effective requests: the larger of the regular containers' sum and each init container's,
/// plus one pod (kube-scheduler `computePodResourceRequest`).
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let mut sum = Resources::default();
    for c in &spec.containers {
        sum.add(container_requests(c));
    }
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        sum.milli_cpu = sum.milli_cpu.max(r.milli_cpu);
        sum.memory = sum.memory.max(r.memory);
    }
    sum.pods = 1;
    sum
}

/// Host ports a pod asks for.
pub fn pod_ports(spec: &PodSpec) -> Vec<HostPort> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|p| *p > 0)?;
            Some((
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port,
                p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
            ))
        })
        .collect()
}

fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == taint.effect);
        let key_ok = t.key.as_deref().is_none_or(|k| k.is_empty()) && t.operator.as_deref() == Some("Exists")
            || t.key.as_deref() == Some(taint.key.as_str());
        let value_ok = match t.operator.as_deref() {
            Some("Exists") => true,
            _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        };
        effect_ok && key_ok && value_ok
    })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.clone().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref();
    let exprs = term.match_expressions.iter().flatten();
    let fields = term.match_fields.iter().flatten();
    let has_any = term.match_expressions.as_ref().is_some_and(|v| !v.is_empty())
        || term.match_fields.as_ref().is_some_and(|v| !v.is_empty());
    has_any
        && exprs
            .clone()
            .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .clone()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, name))
}

/// nodeSelector and required node affinity.
pub fn matches_affinity(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref());
    match required {
        Some(sel) => sel.node_selector_terms.iter().any(|t| term_matches(t, node)),
        None => true,
    }
}

/// Runs the filters in kube-scheduler's order; the first that fails decides.
pub fn filter(spec: &PodSpec, info: &NodeInfo) -> Result<(), Reject> {
    if !info.live {
        return Err(Reject::NoAgent);
    }
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    let node_spec = info.node.spec.clone().unwrap_or_default();
    if node_spec.unschedulable == Some(true) {
        let unschedulable = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if !tolerates(&tolerations, &unschedulable) {
            return Err(Reject::Unschedulable);
        }
    }
    for taint in node_spec.taints.iter().flatten() {
        if matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute") && !tolerates(&tolerations, taint) {
            return Err(Reject::Taint(
                taint.key.clone(),
                taint.value.clone().unwrap_or_default(),
            ));
        }
    }
    if !matches_affinity(spec, &info.node) {
        return Err(Reject::Affinity);
    }
    for (proto, port, ip) in pod_ports(spec) {
        let clash = info
            .ports
            .iter()
            .any(|(p, n, i)| *p == proto && *n == port && (i == &ip || i == "0.0.0.0" || ip == "0.0.0.0"));
        if clash {
            return Err(Reject::Ports);
        }
    }
    let want = pod_requests(spec);
    let alloc = info.allocatable();
    let mut short = Vec::new();
    if info.requested.pods + want.pods > alloc.pods {
        short.push("pods");
    }
    if want.milli_cpu > 0 && info.requested.milli_cpu + want.milli_cpu > alloc.milli_cpu {
        short.push("cpu");
    }
    if want.memory > 0 && info.requested.memory + want.memory > alloc.memory {
        short.push("memory");
    }
    if !short.is_empty() {
        return Err(Reject::Insufficient(short));
    }
    Ok(())
}

/// LeastAllocated over cpu and memory (0..=100), counting unset requests as kube-scheduler's scoring
/// defaults (100m, 200Mi).
pub fn score(spec: &PodSpec, info: &NodeInfo) -> i128 {
    let mut want = pod_requests(spec);
    if want.milli_cpu == 0 {
        want.milli_cpu = 100;
    }
    if want.memory == 0 {
        want.memory = 200 << 20;
    }
    let alloc = info.allocatable();
    let free = |cap: i128, used: i128| {
        if cap <= 0 {
            0
        } else {
            ((cap - used).max(0) * 100) / cap
        }
    };
    (free(alloc.milli_cpu, info.requested.milli_cpu + want.milli_cpu)
        + free(alloc.memory, info.requested.memory + want.memory))
        / 2
}

#[cfg(test)]
#[path = "predicates_tests.rs"]
mod tests;
