//! Table tests of the scheduler's filters, score and messages.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, NodeSpec, NodeStatus, ResourceRequirements, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn node(name: &str, labels: &[(&str, &str)], cpu: &str, mem: &str) -> NodeInfo {
    let alloc: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", mem), ("pods", "110")]
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect();
    NodeInfo {
        node: Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(alloc),
                ..Default::default()
            }),
        },
        live: true,
        requested: Resources::default(),
        ports: HashSet::new(),
    }
}

fn pod(cpu: &str, mem: &str) -> PodSpec {
    let req: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", mem)]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect();
    PodSpec {
        containers: vec![Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(req),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn message_has_the_scheduler_shape() {
    let msg = fit_error(
        3,
        &[
            Reject::Insufficient(vec!["memory"]),
            Reject::Affinity,
            Reject::Affinity,
        ],
    );
    assert_eq!(msg, "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector.");
    assert_eq!(fit_error(0, &[]), "0/0 nodes are available.");
}

#[test]
fn resources_fit_and_init_containers_take_the_max() {
    let n = node("a", &[], "2", "4Gi");
    assert!(filter(&pod("1", "1Gi"), &n).is_ok());
    assert_eq!(
        filter(&pod("3", "1Gi"), &n),
        Err(Reject::Insufficient(vec!["cpu"]))
    );
    assert_eq!(
        filter(&pod("3", "100Gi"), &n),
        Err(Reject::Insufficient(vec!["cpu", "memory"]))
    );
    let mut busy = node("b", &[], "2", "4Gi");
    busy.requested = Resources {
        milli_cpu: 1500,
        memory: 0,
        pods: 1,
    };
    assert_eq!(
        filter(&pod("600m", ""), &busy),
        Err(Reject::Insufficient(vec!["cpu"]))
    );
    let mut with_init = pod("100m", "");
    with_init.init_containers = Some(vec![Container {
        name: "i".into(),
        resources: Some(ResourceRequirements {
            requests: Some([("cpu".to_string(), Quantity("3".into()))].into()),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    assert_eq!(pod_requests(&with_init).milli_cpu, 3000);
    assert!(filter(&with_init, &n).is_err());
}

#[test]
fn selectors_and_affinity() {
    let n = node("node-b", &[("disk", "ssd"), ("rank", "5")], "2", "4Gi");
    let mut p = pod("", "");
    p.node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
    assert!(filter(&p, &n).is_ok());
    p.node_selector = Some([("disk".to_string(), "hdd".to_string())].into());
    assert_eq!(filter(&p, &n), Err(Reject::Affinity));

    let req = |key: &str, op: &str, values: &[&str]| NodeSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: Some(values.iter().map(|s| s.to_string()).collect()),
    };
    let affinity = |terms: Vec<NodeSelectorTerm>| Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: terms,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut p = pod("", "");
    p.affinity = Some(affinity(vec![NodeSelectorTerm {
        match_expressions: Some(vec![req("rank", "Gt", &["3"])]),
        ..Default::default()
    }]));
    assert!(filter(&p, &n).is_ok());
    p.affinity = Some(affinity(vec![
        NodeSelectorTerm {
            match_expressions: Some(vec![req("disk", "NotIn", &["ssd"])]),
            ..Default::default()
        },
        NodeSelectorTerm {
            match_fields: Some(vec![req("metadata.name", "In", &["node-b"])]),
            ..Default::default()
        },
    ]));
    assert!(filter(&p, &n).is_ok(), "terms are ORed");
    p.affinity = Some(affinity(vec![NodeSelectorTerm {
        match_expressions: Some(vec![req("gpu", "Exists", &[])]),
        ..Default::default()
    }]));
    assert_eq!(filter(&p, &n), Err(Reject::Affinity));
}

#[test]
fn taints_cordons_and_liveness() {
    let mut tainted = node("t", &[], "2", "4Gi");
    tainted.node.spec = Some(NodeSpec {
        taints: Some(vec![Taint {
            key: "dedicated".into(),
            value: Some("db".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let p = pod("", "");
    assert_eq!(
        filter(&p, &tainted),
        Err(Reject::Taint("dedicated".into(), "db".into()))
    );
    assert_eq!(
        Reject::Taint("dedicated".into(), "db".into()).reasons(),
        vec!["node(s) had untolerated taint {dedicated: db}"]
    );
    let mut tolerant = pod("", "");
    tolerant.tolerations = Some(vec![Toleration {
        key: Some("dedicated".into()),
        operator: Some("Equal".into()),
        value: Some("db".into()),
        ..Default::default()
    }]);
    assert!(filter(&tolerant, &tainted).is_ok());
    tolerant.tolerations = Some(vec![Toleration {
        operator: Some("Exists".into()),
        ..Default::default()
    }]);
    assert!(
        filter(&tolerant, &tainted).is_ok(),
        "an empty key with Exists tolerates everything"
    );

    let mut cordoned = node("c", &[], "2", "4Gi");
    cordoned.node.spec = Some(NodeSpec {
        unschedulable: Some(true),
        ..Default::default()
    });
    assert_eq!(filter(&p, &cordoned), Err(Reject::Unschedulable));
    let mut dead = node("d", &[], "2", "4Gi");
    dead.live = false;
    assert_eq!(filter(&p, &dead), Err(Reject::NoAgent));
}

#[test]
fn host_ports_conflict() {
    let mut n = node("a", &[], "2", "4Gi");
    n.ports.insert(("TCP".into(), 8080, "0.0.0.0".into()));
    let mut p = pod("", "");
    p.containers[0].ports = Some(vec![ContainerPort {
        container_port: 80,
        host_port: Some(8080),
        ..Default::default()
    }]);
    assert_eq!(filter(&p, &n), Err(Reject::Ports));
    p.containers[0].ports = Some(vec![ContainerPort {
        container_port: 80,
        host_port: Some(8081),
        ..Default::default()
    }]);
    assert!(filter(&p, &n).is_ok());
}

#[test]
fn least_allocated_prefers_the_emptier_node() {
    let empty = node("a", &[], "4", "8Gi");
    let mut busy = node("b", &[], "4", "8Gi");
    busy.requested = Resources {
        milli_cpu: 3000,
        memory: 6 << 30,
        pods: 3,
    };
    let p = pod("500m", "512Mi");
    assert!(score(&p, &empty) > score(&p, &busy));
}
