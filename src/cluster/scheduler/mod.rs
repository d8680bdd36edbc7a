//! The scheduler, run inside the agent DaemonSet with one active replica (Lease leader election through
//! kube-lease-manager). While leader, it binds every PodGroup without `spec.nodeName` to a node with a live
//! agent (kube-scheduler's filters and least-allocated score), reports `PodScheduled=False` and
//! `FailedScheduling` when none fits, keeps the `peapod.dev/node` label equal to `spec.nodeName`, marks the
//! PodGroups of a node whose agent lease expired as `NodeLost`, and releases the finalizers of PodGroups
//! whose Node was deleted so their deletion cannot hang.

pub mod predicates;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use serde_json::json;

use crate::api::{PodGroup, PodGroupStatus, NODE_LABEL};
use crate::cluster::lease::{is_fresh, lease_name};
use crate::cluster::status::{apply_status, is_not_found, remove_finalizer, StatusUpdate};
use predicates::{filter, fit_error, pod_ports, pod_requests, score, NodeInfo, Reject, Resources};

/// How often the leader looks for work.
const PASS: Duration = Duration::from_secs(1);
/// Name of the leader lease.
pub const LEADER_LEASE: &str = "peapod-scheduler";

/// Runs leader election and, while leader, scheduling passes; never returns.
pub async fn run(client: Client, namespace: String, identity: String) {
    let reporter = Reporter {
        controller: "peapod-scheduler".into(),
        instance: Some(identity.clone()),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let mut memory = Memory::default();
    loop {
        let params = LeaseParams::new(identity.clone(), 15, 5);
        let built = LeaseManagerBuilder::new(client.clone(), LEADER_LEASE)
            .with_namespace(namespace.clone())
            .with_parameters(params)
            .build()
            .await;
        let manager = match built {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start leader election; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let (mut leader, task) = manager.watch().await;
        loop {
            if *leader.borrow() {
                if let Err(e) = pass(&client, &namespace, &recorder, &mut memory).await {
                    tracing::warn!(error = %e, "scheduling pass failed");
                    memory.reachable_since = None;
                }
            }
            tokio::select! {
                changed = leader.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    tracing::info!(leader = *leader.borrow(), identity = %identity, "scheduler leadership changed");
                }
                _ = tokio::time::sleep(PASS) => {}
            }
            if task.is_finished() {
                break;
            }
        }
        tracing::warn!("leader election stopped; restarting it");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// What the leader remembers between passes so it does not repeat itself.
#[derive(Default)]
struct Memory {
    /// Last FailedScheduling message per PodGroup uid.
    failed: HashMap<String, String>,
    /// PodGroups already marked NodeLost.
    lost: HashSet<String>,
    /// Since when the leader has reached the API server without a failed pass. Node leases look expired to a
    /// leader that could not see them being renewed (its own outage, or a new leader): as the node lifecycle
    /// controller goes by when it observed a heartbeat, no node is called lost until its agent has had
    /// [`NODE_LOST_GRACE`] of reachable API server to renew.
    reachable_since: Option<std::time::Instant>,
}

/// How long a leader must have reached the API server before it marks a node lost: two lease renewals.
const NODE_LOST_GRACE: Duration = Duration::from_secs(2 * crate::cluster::lease::RENEW.as_secs());

async fn pass(
    client: &Client,
    namespace: &str,
    recorder: &Recorder,
    memory: &mut Memory,
) -> Result<(), kube::Error> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let leases = Api::<Lease>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let groups = Api::<PodGroup>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let settled = memory
        .reachable_since
        .get_or_insert_with(std::time::Instant::now)
        .elapsed()
        >= NODE_LOST_GRACE;
    let now = Timestamp::now();
    let fresh: HashSet<String> = leases
        .iter()
        .filter(|l| is_fresh(l, now))
        .filter_map(|l| l.spec.as_ref()?.holder_identity.clone())
        .filter(|holder| {
            leases
                .iter()
                .any(|l| l.metadata.name.as_deref() == Some(lease_name(holder).as_str()))
        })
        .collect();
    let known: HashSet<String> = leases.iter().filter_map(|l| l.metadata.name.clone()).collect();
    let node_names: HashSet<String> = nodes.iter().filter_map(|n| n.metadata.name.clone()).collect();
    let mut infos: Vec<NodeInfo> = nodes
        .into_iter()
        .map(|node| {
            let name = node.metadata.name.clone().unwrap_or_default();
            NodeInfo {
                live: fresh.contains(&name),
                node,
                requested: Resources::default(),
                ports: HashSet::new(),
            }
        })
        .collect();
    account(&mut infos, &groups, &pods);

    for pg in &groups {
        let uid = pg.metadata.uid.clone().unwrap_or_default();
        if pg.metadata.deletion_timestamp.is_some() {
            // A PodGroup whose node is gone would wait for a finalizer nobody will remove.
            if let Some(n) = pg
                .spec
                .pod
                .node_name
                .as_deref()
                .filter(|n| !node_names.contains(*n))
            {
                tracing::info!(pod = %pg.key(), node = n, "node deleted: releasing the finalizer");
                remove_finalizer(client, &pg.namespace().unwrap_or_default(), &pg.name_any(), &uid).await?;
            }
            continue;
        }
        match pg.spec.pod.node_name.clone() {
            Some(n) => {
                keep_label(client, pg, &n).await?;
                let lost = settled && known.contains(&lease_name(&n)) && !fresh.contains(&n);
                if lost && !terminal(pg) && memory.lost.insert(uid.clone()) {
                    mark_lost(client, pg, &n).await?;
                } else if !lost {
                    memory.lost.remove(&uid);
                }
            }
            None => schedule(client, recorder, memory, pg, &mut infos).await?,
        }
    }
    Ok(())
}

fn terminal(pg: &PodGroup) -> bool {
    matches!(
        pg.status.as_ref().and_then(|s| s.pod.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Adds the requests and host ports of everything already bound to each node.
fn account(infos: &mut [NodeInfo], groups: &[PodGroup], pods: &[Pod]) {
    let specs = groups.iter().filter(|g| !terminal(g)).map(|g| &g.spec.pod).chain(
        pods.iter()
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .filter_map(|p| p.spec.as_ref()),
    );
    for spec in specs {
        let Some(n) = spec.node_name.as_deref() else {
            continue;
        };
        if let Some(info) = infos.iter_mut().find(|i| i.name() == n) {
            let r = pod_requests(spec);
            info.requested.milli_cpu += r.milli_cpu;
            info.requested.memory += r.memory;
            info.requested.pods += 1;
            info.ports.extend(pod_ports(spec));
        }
    }
}

async fn schedule(
    client: &Client,
    recorder: &Recorder,
    memory: &mut Memory,
    pg: &PodGroup,
    infos: &mut [NodeInfo],
) -> Result<(), kube::Error> {
    if pg
        .spec
        .pod
        .scheduler_name
        .as_deref()
        .is_some_and(|s| !s.is_empty() && s != "default-scheduler")
    {
        return Ok(());
    }
    // Requests default to limits, as the API server would have done for a Pod.
    let mut defaulted = pg.clone();
    crate::api::defaults::apply_defaults(&mut defaulted);
    let spec = defaulted.spec.pod;
    let mut rejects: Vec<Reject> = Vec::new();
    let mut best: Option<(i128, usize)> = None;
    for (i, info) in infos.iter().enumerate() {
        match filter(&spec, info) {
            Ok(()) => {
                let s = score(&spec, info);
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, i));
                }
            }
            Err(r) => rejects.push(r),
        }
    }
    let uid = pg.metadata.uid.clone().unwrap_or_default();
    let reference = pg.object_ref(&());
    let Some((_, i)) = best else {
        let message = fit_error(infos.len(), &rejects);
        if memory.failed.get(&uid) != Some(&message) {
            memory.failed.insert(uid.clone(), message.clone());
            publish(
                recorder,
                &reference,
                EventType::Warning,
                "FailedScheduling",
                &message,
            )
            .await;
            let status = unschedulable_status(pg, &message);
            let update = StatusUpdate {
                namespace: pg.namespace().unwrap_or_default(),
                name: pg.name_any(),
                uid,
                status,
                release: false,
            };
            apply_status(client, &update).await?;
        }
        return Ok(());
    };
    let node = infos[i].name().to_string();
    bind(client, pg, &node).await?;
    let r = pod_requests(&spec);
    infos[i].requested.milli_cpu += r.milli_cpu;
    infos[i].requested.memory += r.memory;
    infos[i].requested.pods += 1;
    infos[i].ports.extend(pod_ports(&spec));
    memory.failed.remove(&uid);
    let message = format!(
        "Successfully assigned {}/{} to {node}",
        pg.namespace().unwrap_or_default(),
        pg.name_any()
    );
    tracing::info!(pod = %pg.key(), node = %node, "scheduled");
    publish(recorder, &reference, EventType::Normal, "Scheduled", &message).await;
    Ok(())
}

async fn publish(
    recorder: &Recorder,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    message: &str,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(message.into()),
        action: "Scheduling".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, reference).await {
        tracing::debug!(error = %e, "failed to publish scheduler event");
    }
}

/// Binds by setting `spec.nodeName` and the node label, only if the object did not change meanwhile.
async fn bind(client: &Client, pg: &PodGroup, node: &str) -> Result<(), kube::Error> {
    let api: Api<PodGroup> = Api::namespaced(client.clone(), &pg.namespace().unwrap_or_default());
    let patch = json!({
        "metadata": { "resourceVersion": pg.metadata.resource_version, "labels": { NODE_LABEL: node } },
        "spec": { "nodeName": node },
    });
    match api
        .patch(&pg.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Keeps `peapod.dev/node` equal to a user-set `spec.nodeName`, so the node's agent sees the PodGroup.
async fn keep_label(client: &Client, pg: &PodGroup, node: &str) -> Result<(), kube::Error> {
    if pg.labels().get(NODE_LABEL).map(String::as_str) == Some(node) {
        return Ok(());
    }
    let api: Api<PodGroup> = Api::namespaced(client.clone(), &pg.namespace().unwrap_or_default());
    let patch = json!({ "metadata": { "labels": { NODE_LABEL: node } } });
    match api
        .patch(&pg.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: Some(Time(Timestamp::now())),
        ..Default::default()
    }
}

fn unschedulable_status(pg: &PodGroup, message: &str) -> PodGroupStatus {
    let mut status = PodGroupStatus::default();
    status.pod.phase = Some("Pending".into());
    status.pod.conditions = Some(vec![condition("PodScheduled", "False", "Unschedulable", message)]);
    status.pod.qos_class = Some(crate::api::resources::QosClass::of(&pg.spec.pod).as_str().into());
    crate::pod::printer::fill_columns(pg, &mut status, false);
    status
}

/// The node's agent stopped renewing its lease: the PodGroup's state is unknown (node lifecycle controller).
async fn mark_lost(client: &Client, pg: &PodGroup, node: &str) -> Result<(), kube::Error> {
    tracing::warn!(pod = %pg.key(), node, "node lost");
    let mut status = pg.status.clone().unwrap_or_default();
    status.pod.phase = Some("Unknown".into());
    status.pod.reason = Some("NodeLost".into());
    status.pod.message = Some(format!(
        "Node {node} which was running pod {} is unresponsive",
        pg.name_any()
    ));
    let mut conditions: Vec<PodCondition> = status.pod.conditions.take().unwrap_or_default();
    conditions.retain(|c| c.type_ != "Ready");
    conditions.push(condition(
        "Ready",
        "Unknown",
        "NodeLost",
        "the node's peapod agent stopped renewing its lease",
    ));
    status.pod.conditions = Some(conditions);
    crate::pod::printer::fill_columns(pg, &mut status, false);
    let update = StatusUpdate {
        namespace: pg.namespace().unwrap_or_default(),
        name: pg.name_any(),
        uid: pg.metadata.uid.clone().unwrap_or_default(),
        status,
        release: false,
    };
    apply_status(client, &update).await
}
