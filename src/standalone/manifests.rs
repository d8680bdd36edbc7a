//! Reading the manifests: every file parsed, defaulted and validated, each pod keyed by its uid (the
//! manifest's own, else one derived from its content and the node, as the kubelet's static pods), with a
//! line per problem naming the file. Duplicate names and uids are refused, never merged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use crate::api::validation::{FieldError, FieldPath};
use crate::api::{defaults, manifest, validation, PodGroup, PodGroupStatus};
use crate::pod::refused::refused_status;
use crate::runtime::layout::derive_id;

/// The pods the manifests ask for, and what was wrong with the rest.
#[derive(Debug, Default)]
pub struct Scan {
    /// Valid pods by uid.
    pub pods: BTreeMap<String, PodGroup>,
    /// Refused pods by uid, with the reason (`InvalidSpec`, or an admission reason) and the status message
    /// (they get a Failed status, nothing runs).
    pub invalid: BTreeMap<String, (PodGroup, &'static str, String)>,
    /// One line per problem, naming the file.
    pub errors: BTreeSet<String>,
    /// Pods ignored because another manifest claimed their uid, by their line in `errors`: they get a
    /// `FailedValidation` event (the kubelet's reason for an ignored static pod), no status of their own.
    pub duplicates: BTreeMap<String, (PodGroup, String)>,
}

/// A stable uid for a manifest's pod on this node (kubelet static pods hash the object and node name).
pub fn manifest_uid(pod: &PodGroup, node: &str) -> String {
    let mut p = pod.clone();
    p.status = None;
    let json = serde_json::to_string(&p).unwrap_or_default();
    let h = derive_id(&[node, &json]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Reads, defaults and validates every manifest.
pub fn scan(paths: &[PathBuf], node: &str) -> Scan {
    let mut out = Scan::default();
    let mut names: HashMap<(String, String), PathBuf> = HashMap::new();
    let mut uids: HashMap<String, (PathBuf, String)> = HashMap::new();
    for path in paths {
        let objects = match manifest::load_path(path) {
            Ok(o) => o,
            Err(e) => {
                out.errors.insert(format!("{e}"));
                continue;
            }
        };
        for (file, result) in objects {
            let mut pod = match result {
                Ok(p) => p,
                Err(e) => {
                    out.errors.insert(e.to_string());
                    continue;
                }
            };
            defaults::apply_defaults(&mut pod);
            pod.spec.pod.node_name.get_or_insert_with(|| node.to_string());
            let ns = pod.namespace_or_default().to_string();
            let name = pod.metadata.name.clone().unwrap_or_default();
            if let Some(first) = names.get(&(ns.clone(), name.clone())) {
                out.errors.insert(format!(
                    "{}: PodGroup {ns}/{name} is already defined in {}; ignoring this one",
                    file.display(),
                    first.display()
                ));
                continue;
            }
            names.insert((ns.clone(), name.clone()), file.clone());
            let derived = manifest_uid(&pod, node);
            let uid = pod
                .metadata
                .uid
                .clone()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| derived.clone());
            if let Some((first, first_key)) = uids.get(&uid) {
                // One pod per uid, as the kubelet keys a source's pods by uid: a second would share the
                // first one's directories, cgroup and status.
                let err = FieldError::duplicate(&FieldPath::new("metadata").child("uid"), uid.as_str());
                let message = format!(
                    "{err}: PodGroup {first_key} in {} has this uid; ignoring this one",
                    first.display()
                );
                let line = format!("{}: PodGroup {ns}/{name}: {message}", file.display());
                out.errors.insert(line.clone());
                out.duplicates.insert(line, (pod, message));
                continue;
            }
            uids.insert(uid.clone(), (file.clone(), format!("{ns}/{name}")));
            pod.metadata.uid = Some(uid.clone());
            match validation::validate(&pod) {
                Ok(()) => {
                    out.pods.insert(uid, pod);
                }
                Err(errs) => {
                    let message = errs.to_string();
                    out.errors
                        .insert(format!("{}: PodGroup {ns}/{name}: {message}", file.display()));
                    // A refused uid names nothing: the refusal is kept under the derived one.
                    let key = if validation::is_valid_uid(&uid) {
                        uid
                    } else {
                        derived
                    };
                    pod.metadata.uid = Some(key.clone());
                    out.invalid.insert(key, (pod, "InvalidSpec", message));
                }
            }
        }
    }
    out
}

/// The status an invalid pod shows: Failed with reason `InvalidSpec` and the validation message.
pub fn invalid_status(pod: &PodGroup, message: &str) -> PodGroupStatus {
    refused_status(pod, "InvalidSpec", message)
}
