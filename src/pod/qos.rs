//! The pod's QoS class, computed as k8s.io/kubernetes pkg/apis/core/v1/helper/qos `ComputePodQOS` does:
//! only cpu and memory count, over init and regular containers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;

use crate::api::quantity::parse_quantity;

/// `Guaranteed`, `Burstable` or `BestEffort`.
pub fn pod_qos(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let res = c.resources.clone().unwrap_or_default();
        for (name, q) in res.requests.iter().flatten() {
            let Some(name) = supported(name) else { continue };
            if let Some(v) = parse_quantity(&q.0).map(|p| p.nanos()).filter(|v| *v > 0) {
                *requests.entry(name).or_default() += v;
            }
        }
        let mut found = Vec::new();
        for (name, q) in res.limits.iter().flatten() {
            let Some(name) = supported(name) else { continue };
            if let Some(v) = parse_quantity(&q.0).map(|p| p.nanos()).filter(|v| *v > 0) {
                found.push(name);
                *limits.entry(name).or_default() += v;
            }
        }
        if !(found.contains(&"cpu") && found.contains(&"memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().all(|(k, v)| limits.get(k) == Some(v)) && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

fn supported(name: &str) -> Option<&'static str> {
    match name {
        "cpu" => Some("cpu"),
        "memory" => Some("memory"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

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

    #[test]
    fn qos_classes() {
        let spec = |cs: Vec<Container>| PodSpec {
            containers: cs,
            ..Default::default()
        };
        assert_eq!(pod_qos(&spec(vec![c(&[], &[])])), "BestEffort");
        assert_eq!(
            pod_qos(&spec(vec![c(&[("ephemeral-storage", "1Gi")], &[])])),
            "BestEffort"
        );
        let g = c(
            &[("cpu", "500m"), ("memory", "64Mi")],
            &[("cpu", "0.5"), ("memory", "64Mi")],
        );
        assert_eq!(pod_qos(&spec(vec![g.clone()])), "Guaranteed");
        assert_eq!(pod_qos(&spec(vec![g.clone(), c(&[], &[])])), "Burstable");
        assert_eq!(pod_qos(&spec(vec![c(&[("cpu", "100m")], &[])])), "Burstable");
        assert_eq!(
            pod_qos(&spec(vec![c(
                &[("cpu", "100m"), ("memory", "1Mi")],
                &[("cpu", "200m"), ("memory", "1Mi")]
            )])),
            "Burstable"
        );
    }
}
