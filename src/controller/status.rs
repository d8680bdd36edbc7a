//! Writing status back: every report of a pod worker ends up as one server-side apply of the whole status
//! (field manager `peapod`), bursts coalesced, failures retried with backoff so status catches up after an
//! API outage. A finished (terminated and cleaned up) pod also loses its finalizer, which lets the API
//! server delete it.

use std::collections::HashMap;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::mpsc;

use crate::api::{PodGroup, PodGroupStatus, FINALIZER};

/// Field manager of everything peapod writes to a PodGroup's status.
pub const FIELD_MANAGER: &str = "peapod";
/// How long a burst of reports is gathered before writing.
const COALESCE: Duration = Duration::from_millis(200);
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A status to write.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Uid the status belongs to (a recreated object with the same name must not get it).
    pub uid: String,
    /// The status.
    pub status: PodGroupStatus,
    /// Remove the finalizer once the status is written.
    pub release: bool,
}

/// Applies `status` to the PodGroup with server-side apply.
pub async fn apply_status(client: &Client, u: &StatusUpdate) -> Result<(), kube::Error> {
    let api: Api<PodGroup> = Api::namespaced(client.clone(), &u.namespace);
    let body = json!({
        "apiVersion": "peapod.dev/v1alpha1",
        "kind": "PodGroup",
        "metadata": { "name": u.name, "uid": u.uid },
        "status": u.status,
    });
    api.patch_status(
        &u.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map(|_| ())
}

/// Removes peapod's finalizer with a JSON patch that checks it is still where it was seen.
pub async fn remove_finalizer(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<(), kube::Error> {
    let api: Api<PodGroup> = Api::namespaced(client.clone(), namespace);
    let pg = match api.get(name).await {
        Ok(pg) => pg,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    if pg.metadata.uid.as_deref() != Some(uid) {
        return Ok(());
    }
    let finalizers = pg.metadata.finalizers.clone().unwrap_or_default();
    let Some(i) = finalizers.iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let patch: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": format!("/metadata/finalizers/{i}"), "value": FINALIZER },
        { "op": "remove", "path": format!("/metadata/finalizers/{i}") },
    ]))
    .map_err(kube::Error::SerdeError)?;
    match api
        .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether an API error is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Writes every update it receives, coalescing by uid and retrying failures.
pub async fn writer(client: Client, mut rx: mpsc::UnboundedReceiver<StatusUpdate>) {
    let mut pending: HashMap<String, StatusUpdate> = HashMap::new();
    let mut backoff = Duration::from_secs(1);
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(u) => merge(&mut pending, u),
                None => return,
            }
        }
        // Gather the rest of a burst (or wait out the backoff after a failure, still gathering).
        let wait = tokio::time::sleep(if backoff > Duration::from_secs(1) {
            backoff
        } else {
            COALESCE
        });
        tokio::pin!(wait);
        loop {
            tokio::select! {
                u = rx.recv() => match u {
                    Some(u) => merge(&mut pending, u),
                    None => break,
                },
                _ = &mut wait => break,
            }
        }
        let mut failed = false;
        for (uid, u) in std::mem::take(&mut pending) {
            let result = write_one(&client, &u).await;
            if let Err(e) = result {
                tracing::warn!(pod = %format!("{}/{}", u.namespace, u.name), error = %e, "failed to write status; will retry");
                failed = true;
                pending.entry(uid).or_insert(u);
            }
        }
        backoff = if failed {
            (backoff * 2).min(MAX_BACKOFF)
        } else {
            Duration::from_secs(1)
        };
    }
}

fn merge(pending: &mut HashMap<String, StatusUpdate>, u: StatusUpdate) {
    let release = u.release || pending.get(&u.uid).is_some_and(|p| p.release);
    pending.insert(u.uid.clone(), StatusUpdate { release, ..u });
}

async fn write_one(client: &Client, u: &StatusUpdate) -> Result<(), kube::Error> {
    match apply_status(client, u).await {
        Ok(()) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(e),
    }
    if u.release {
        remove_finalizer(client, &u.namespace, &u.name, &u.uid).await?;
        tracing::info!(pod = %format!("{}/{}", u.namespace, u.name), "released finalizer");
    }
    Ok(())
}
