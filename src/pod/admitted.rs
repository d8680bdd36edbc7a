//! The spec a front end admitted for a pod (validation, the Pod update rules, Pod Security), recorded in
//! the pod's directory as `admitted.json` before any worker runs it, so that every later edit is judged
//! against it after any restart; and how a refused edit is worded and shown. Pure apart from the file.

use kube::ResourceExt;

use super::checkpoint::POD_CHECKPOINT;
use crate::api::validation::ValidationErrors;
use crate::api::{PodGroup, PodGroupStatus};
use crate::runtime::layout::{is_safe_component, RuntimeConfig};

/// File name, in a pod's directory, of the pod as its front end last admitted it (validation, the Pod
/// update rules and Pod Security): every later edit is judged against it, across supervisor restarts.
pub const ADMITTED: &str = "admitted.json";

/// The admitted pod could not be recorded.
#[derive(Debug, thiserror::Error)]
#[error("cannot record the admitted spec of pod {uid} in {path}: {source}")]
pub struct AdmittedError {
    /// Pod uid.
    pub uid: String,
    /// The file.
    pub path: std::path::PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// What of a pod is admitted: identity, labels, annotations and spec (no status, no server bookkeeping).
pub fn admitted_part(pod: &PodGroup) -> PodGroup {
    let m = &pod.metadata;
    PodGroup {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            labels: m.labels.clone(),
            annotations: m.annotations.clone(),
            ..Default::default()
        },
        spec: pod.spec.clone(),
        status: None,
    }
}

/// Whether two versions of a pod admit the same: identity, labels, annotations and spec.
pub fn same_admission(a: &PodGroup, b: &PodGroup) -> bool {
    let (a, b) = (admitted_part(a), admitted_part(b));
    a.metadata == b.metadata && a.spec == b.spec
}

/// Records `pod` as admitted (atomically: temporary file, fsync, rename) before any worker runs it.
pub fn write_admitted(cfg: &RuntimeConfig, pod: &PodGroup) -> Result<(), AdmittedError> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let dir = cfg.pod_dir(&uid);
    let path = dir.join(ADMITTED);
    let unsafe_uid = || std::io::Error::other(format!("unsafe pod uid {uid:?}"));
    let result = if is_safe_component(&uid) {
        crate::sys::fs::create_dir_all_mode(&dir, 0o700)
            .and_then(|()| crate::sys::fs::write_json_atomic(&path, &admitted_part(pod)))
    } else {
        Err(unsafe_uid())
    };
    result.map_err(|source| AdmittedError { uid, path, source })
}

/// The pod as last admitted on this node: `admitted.json`, else (state written before it existed) the spec
/// of the worker's checkpoint, which only ever held admitted specs. `None` when neither exists.
pub fn load_admitted(cfg: &RuntimeConfig, uid: &str) -> Option<PodGroup> {
    if !is_safe_component(uid) {
        return None;
    }
    let dir = cfg.pod_dir(uid);
    let read = |name: &str| match crate::sys::fs::read_json::<PodGroup>(&dir.join(name)) {
        Ok(pod) => pod.filter(|p| p.metadata.uid.as_deref() == Some(uid)),
        Err(e) => {
            tracing::warn!(uid, file = name, error = %e, "unreadable admitted spec");
            None
        }
    };
    read(ADMITTED)
        .or_else(|| read(POD_CHECKPOINT))
        .map(|p| admitted_part(&p))
}

/// Annotation prefixes Pod Security Admission re-evaluates an update for.
const SECURITY_ANNOTATIONS: [&str; 2] = [
    "seccomp.security.alpha.kubernetes.io/",
    "container.apparmor.security.beta.kubernetes.io/",
];

/// What the API server says of an update the Pod update rules refuse.
pub fn invalid_message(pod: &PodGroup, errs: &ValidationErrors) -> String {
    format!("PodGroup {:?} is invalid: {errs}", pod.name_any())
}

/// What Pod Security Admission says of an update it refuses (`violation` is `violates PodSecurity ...`).
pub fn forbidden_message(pod: &PodGroup, violation: &str) -> String {
    format!("PodGroup {:?} is forbidden: {violation}", pod.name_any())
}

/// Whether Pod Security Admission evaluates this update (`isSignificantPodUpdate`): a container image or a
/// seccomp/AppArmor annotation changed.
pub fn significant(old: &PodGroup, new: &PodGroup) -> bool {
    let images = |p: &PodGroup| -> Vec<Option<String>> {
        let spec = &p.spec.pod;
        spec.init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .map(|c| c.image.clone())
            .collect()
    };
    let security = |p: &PodGroup| -> Vec<(String, String)> {
        p.annotations()
            .iter()
            .filter(|(k, _)| SECURITY_ANNOTATIONS.iter().any(|pre| k.starts_with(pre)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    images(old) != images(new) || security(old) != security(new)
}

/// `status` with the refusal as its message, unless it has one of its own (a terminal reason).
pub fn with_refusal(mut status: PodGroupStatus, refusal: Option<&str>) -> PodGroupStatus {
    if let (Some(message), None) = (refusal, &status.pod.message) {
        status.pod.message = Some(message.to_string());
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(image: &str, annotations: serde_json::Value) -> PodGroup {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "peapod.dev/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "annotations": annotations},
            "spec": {"containers": [{"name": "c", "image": image}]},
        }))
        .unwrap()
    }

    #[test]
    fn images_and_security_annotations_make_an_update_significant() {
        let base = pod("a:1", serde_json::json!({"x": "1"}));
        assert!(!significant(&base, &pod("a:1", serde_json::json!({"x": "2"}))));
        assert!(significant(&base, &pod("a:2", serde_json::json!({"x": "1"}))));
        let apparmor =
            serde_json::json!({"x": "1", "container.apparmor.security.beta.kubernetes.io/c": "unconfined"});
        assert!(significant(&base, &pod("a:1", apparmor)));
    }

    #[test]
    fn a_refusal_never_hides_a_terminal_message() {
        let mut status = PodGroupStatus::default();
        assert_eq!(
            with_refusal(status.clone(), Some("refused"))
                .pod
                .message
                .as_deref(),
            Some("refused")
        );
        status.pod.message = Some("deadline".into());
        assert_eq!(
            with_refusal(status, Some("refused")).pod.message.as_deref(),
            Some("deadline")
        );
    }

    #[test]
    fn the_admitted_spec_survives_on_disk_and_falls_back_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RuntimeConfig::under(dir.path());
        let mut ran = pod("a:1", serde_json::json!({}));
        ran.metadata.resource_version = Some("7".into());
        ran.status = Some(PodGroupStatus::default());
        assert!(load_admitted(&cfg, "u").is_none());
        // State written before admitted.json existed: the worker's checkpoint holds the admitted spec.
        std::fs::create_dir_all(cfg.pod_dir("u")).unwrap();
        crate::sys::fs::write_json_atomic(&cfg.pod_dir("u").join(POD_CHECKPOINT), &ran).unwrap();
        let fallback = load_admitted(&cfg, "u").unwrap();
        assert!(same_admission(&fallback, &ran));
        assert_eq!(fallback.metadata.resource_version, None);
        assert_eq!(fallback.status, None);
        let newer = pod("a:2", serde_json::json!({}));
        write_admitted(&cfg, &newer).unwrap();
        let loaded = load_admitted(&cfg, "u").unwrap();
        assert!(same_admission(&loaded, &newer));
        assert!(!same_admission(&loaded, &ran));
        // Another pod's file, or a hostile uid, is never taken.
        assert!(load_admitted(&cfg, "v").is_none());
        let mut evil = newer.clone();
        evil.metadata.uid = Some("../u".into());
        let err = write_admitted(&cfg, &evil).unwrap_err();
        assert!(err.to_string().contains("unsafe pod uid"), "{err}");
        assert!(load_admitted(&cfg, "../u").is_none());
    }
}
