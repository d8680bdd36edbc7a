//! The node heartbeat: a Lease `peapod-node-<node>` in the agent's namespace, renewed every 10 seconds
//! with server-side apply. The scheduler treats a node whose lease has expired as lost.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

/// How often the lease is renewed.
pub const RENEW: Duration = Duration::from_secs(10);
/// How long a lease stays valid without renewal.
pub const DURATION_SECONDS: i32 = 40;

/// The name of a node's heartbeat lease.
pub fn lease_name(node: &str) -> String {
    format!("peapod-node-{node}")
}

/// Renews the node's lease until the task is dropped; failures are retried at the next tick.
pub async fn heartbeat(client: Client, namespace: String, node: String) {
    let api: Api<Lease> = Api::namespaced(client, &namespace);
    let name = lease_name(&node);
    let mut tick = tokio::time::interval(RENEW);
    loop {
        tick.tick().await;
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(node.clone()),
                lease_duration_seconds: Some(DURATION_SECONDS),
                renew_time: Some(MicroTime(Timestamp::now())),
                ..Default::default()
            }),
        };
        let mut body = serde_json::to_value(&lease).unwrap_or_default();
        body["apiVersion"] = "coordination.k8s.io/v1".into();
        body["kind"] = "Lease".into();
        match api
            .patch(&name, &PatchParams::apply("peapod").force(), &Patch::Apply(body))
            .await
        {
            Ok(_) => tracing::debug!(lease = %name, "renewed node lease"),
            Err(e) => tracing::warn!(lease = %name, error = %e, "failed to renew node lease"),
        }
    }
}

/// Whether a lease is still valid at `now`.
pub fn is_fresh(lease: &Lease, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else {
        return false;
    };
    let (Some(renewed), Some(secs)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return false;
    };
    now.as_second() - renewed.0.as_second() <= i64::from(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness() {
        let now = Timestamp::from_second(1_700_000_100).unwrap();
        let lease = |ago: i64, dur: i32| Lease {
            metadata: Default::default(),
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(Timestamp::from_second(1_700_000_100 - ago).unwrap())),
                lease_duration_seconds: Some(dur),
                ..Default::default()
            }),
        };
        assert!(is_fresh(&lease(10, 40), now));
        assert!(!is_fresh(&lease(41, 40), now));
        assert!(!is_fresh(&Lease::default(), now));
    }
}
