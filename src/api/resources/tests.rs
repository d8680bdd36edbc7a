use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::*;

fn c(req: &[(&str, &str)], lim: &[(&str, &str)]) -> Container {
    let map = |v: &[(&str, &str)]| {
        (!v.is_empty()).then(|| {
            v.iter()
                .map(|(k, q)| (k.to_string(), Quantity(q.to_string())))
                .collect()
        })
    };
    Container {
        resources: Some(ResourceRequirements {
            requests: map(req),
            limits: map(lim),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod(containers: Vec<Container>, init: Vec<Container>) -> PodSpec {
    PodSpec {
        containers,
        init_containers: (!init.is_empty()).then_some(init),
        ..Default::default()
    }
}

fn guaranteed(cpu: &str, mem: &str) -> Container {
    c(&[("cpu", cpu), ("memory", mem)], &[("cpu", cpu), ("memory", mem)])
}

#[test]
fn qos_classes_follow_get_pod_qos() {
    let cases = [
        (pod(vec![c(&[], &[])], vec![]), QosClass::BestEffort),
        (
            pod(vec![c(&[("ephemeral-storage", "1Gi")], &[])], vec![]),
            QosClass::BestEffort,
        ),
        (
            pod(vec![guaranteed("500m", "64Mi")], vec![]),
            QosClass::Guaranteed,
        ),
        (
            pod(vec![guaranteed("500m", "64Mi"), c(&[], &[])], vec![]),
            QosClass::Burstable,
        ),
        (
            pod(vec![guaranteed("1", "1Gi")], vec![c(&[], &[])]),
            QosClass::Burstable,
        ),
        (pod(vec![c(&[("cpu", "100m")], &[])], vec![]), QosClass::Burstable),
        (
            pod(
                vec![c(
                    &[("cpu", "100m"), ("memory", "1Mi")],
                    &[("cpu", "200m"), ("memory", "1Mi")],
                )],
                vec![],
            ),
            QosClass::Burstable,
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(QosClass::of(&spec), want, "{spec:?}");
    }
    assert_eq!(QosClass::Guaranteed.cgroup_dir(), None);
    assert_eq!(QosClass::Burstable.cgroup_dir(), Some("burstable"));
    assert_eq!(QosClass::BestEffort.cgroup_dir(), Some("besteffort"));
}

#[test]
fn pod_resources_follow_resource_config_for_pod() {
    // Guaranteed: everything, summed over the app containers.
    let g = pod_resources(
        &pod(
            vec![guaranteed("250m", "64Mi"), guaranteed("250m", "32Mi")],
            vec![],
        ),
        -1,
    );
    assert_eq!(
        g,
        PodResources {
            cpu_shares: 512,
            cpu_quota: Some(50_000),
            memory_limit: Some(96 << 20),
            pids_limit: None,
        }
    );
    // Burstable: a quota only when every container has a cpu limit; memory likewise.
    let b = pod_resources(
        &pod(
            vec![
                c(&[("cpu", "100m")], &[("cpu", "200m"), ("memory", "16Mi")]),
                c(&[("cpu", "100m")], &[("cpu", "300m")]),
            ],
            vec![],
        ),
        64,
    );
    assert_eq!(
        b,
        PodResources {
            cpu_shares: 204,
            cpu_quota: Some(50_000),
            memory_limit: None,
            pids_limit: Some(64),
        }
    );
    // An init container asking for more than the app containers together sets the pod's value.
    let init = pod_resources(
        &pod(
            vec![c(&[("cpu", "100m")], &[("memory", "16Mi")])],
            vec![c(&[("cpu", "2")], &[("memory", "1Gi")])],
        ),
        0,
    );
    assert_eq!(init.cpu_shares, 2048);
    assert_eq!(init.memory_limit, Some(1 << 30));
    // BestEffort: minimum shares and nothing else.
    assert_eq!(
        pod_resources(&pod(vec![c(&[], &[])], vec![]), 10),
        PodResources {
            cpu_shares: 2,
            pids_limit: Some(10),
            ..Default::default()
        }
    );
}

#[test]
fn cpu_conversions() {
    assert_eq!(milli_cpu_to_shares(0), 2);
    assert_eq!(milli_cpu_to_shares(1), 2);
    assert_eq!(milli_cpu_to_shares(250), 256);
    assert_eq!(milli_cpu_to_shares(1_000_000), 262_144);
    assert_eq!(milli_cpu_to_quota(1), 1000);
    assert_eq!(milli_cpu_to_quota(1500), 150_000);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
}

#[test]
fn oom_score_adj_follows_the_kubelet_policy() {
    let gib = 1u64 << 30;
    let g = pod(vec![guaranteed("1", "1Gi")], vec![]);
    assert_eq!(oom_score_adj(&g, &g.containers[0], 4 * gib), -997);
    let be = pod(vec![c(&[], &[])], vec![]);
    assert_eq!(oom_score_adj(&be, &be.containers[0], 4 * gib), 1000);
    let burst = |mem: &str| pod(vec![c(&[("memory", mem)], &[])], vec![]);
    let b = burst("1Gi");
    assert_eq!(oom_score_adj(&b, &b.containers[0], 4 * gib), 750);
    let tiny = burst("1");
    assert_eq!(oom_score_adj(&tiny, &tiny.containers[0], 4 * gib), 999);
    let huge = burst("8Gi");
    assert_eq!(oom_score_adj(&huge, &huge.containers[0], 4 * gib), 3);
    let mut critical = burst("1Gi");
    critical.priority_class_name = Some("system-node-critical".into());
    assert_eq!(oom_score_adj(&critical, &critical.containers[0], 4 * gib), -997);
    assert_eq!(clamp_oom_score_adj(-997, 0), 0);
    assert_eq!(clamp_oom_score_adj(-997, -1000), -997);
    assert_eq!(clamp_oom_score_adj(750, 0), 750);
}

#[test]
fn memory_capacity_from_meminfo() {
    assert_eq!(
        memory_capacity("MemTotal:        8036180 kB\nMemFree: 1 kB\n"),
        Some(8_036_180 * 1024)
    );
    assert_eq!(memory_capacity("MemFree: 1 kB\n"), None);
    assert_eq!(memory_capacity("MemTotal: lots kB\n"), None);
}
