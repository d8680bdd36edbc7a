//! What the controller and the scheduler both write to the API server: a PodGroup's status (one server-side
//! apply of the whole status, field manager `peapod`) and the release of peapod's finalizer, with the error
//! classes that decide whether a write is retried.

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::api::{PodGroup, PodGroupStatus, FINALIZER};

/// Field manager of everything peapod writes to a PodGroup's status.
pub const FIELD_MANAGER: &str = "peapod";
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

/// Whether the request never got an answer (connection refused or reset, TLS, timeout): the API server is
/// away, as opposed to refusing the write.
pub fn is_unreachable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Service(_) | kube::Error::HyperError(_))
}

/// Whether an API error says the resource's endpoint is not served yet (a 404 "the server could not find the
/// requested resource" right after an API server starts, until it serves the CRD): a server not ready, to be
/// retried at the pace of an unreachable one.
pub fn is_not_served(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 && s.message.contains("could not find the requested resource"))
}

/// Whether an API error is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether an API error says the object `name` itself is gone (a 404 naming it). Right after an API server
/// starts, a custom resource's endpoint answers 404 "the server could not find the requested resource" until
/// its CRD is served: that is a server not ready yet, and the write must be retried, not dropped.
pub fn is_gone(e: &kube::Error, name: &str) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 && s.message.contains(&format!("\"{name}\" not found")))
}
