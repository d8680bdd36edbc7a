//! The restricted checks (policy/check_*.go, latest versions), and the seccomp check baseline shares.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{PodSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    containers, containers_named, containers_that, forbid_containers, forbidden, join_quote, pluralize,
    valid_seccomp,
};
use crate::api::pss::Forbidden;

pub(super) fn allow_privilege_escalation(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let names = containers_that(spec, |c| {
        c.security_context
            .as_ref()
            .and_then(|s| s.allow_privilege_escalation)
            != Some(false)
    });
    forbid_containers(
        "allowPrivilegeEscalation != false",
        &names,
        "must set securityContext.allowPrivilegeEscalation=false",
    )
}

pub(super) fn capabilities(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let Some(requested) = c.security_context.as_ref().and_then(|s| s.capabilities.as_ref()) else {
            missing_drop.push(c.name.clone());
            continue;
        };
        if !requested.drop.iter().flatten().any(|d| d == "ALL") {
            missing_drop.push(c.name.clone());
        }
        let extra: Vec<&String> = requested
            .add
            .iter()
            .flatten()
            .filter(|a| a.as_str() != "NET_BIND_SERVICE")
            .collect();
        if !extra.is_empty() {
            adding.push(c.name.clone());
            caps.extend(extra.into_iter().cloned());
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_named(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        let caps: Vec<String> = caps.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&adding),
            join_quote(&caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    forbidden("unrestricted capabilities", details.join("; "))
}

/// The source type restricted refuses (`None`: an allowed one).
fn restricted_type(v: &Volume) -> Option<&'static str> {
    let allowed = v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.image.is_some()
        || v.persistent_volume_claim.is_some()
        || v.projected.is_some()
        || v.secret.is_some();
    if allowed {
        return None;
    }
    let types = [
        ("hostPath", v.host_path.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("rbd", v.rbd.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("fc", v.fc.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("storageos", v.storageos.is_some()),
    ];
    Some(types.iter().find(|(_, set)| *set).map_or("unknown", |(t, _)| t))
}

/// `volume "a" uses restricted volume type "hostPath"`.
pub(super) fn volumes_detail(names: &[String], types: &[String]) -> String {
    format!(
        "{} {} {} {} {}",
        pluralize("volume", "volumes", names.len()),
        join_quote(names),
        pluralize("uses", "use", names.len()),
        pluralize("restricted volume type", "restricted volume types", types.len()),
        join_quote(types)
    )
}

pub(super) fn volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let mut names = Vec::new();
    let mut types = BTreeSet::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(t) = restricted_type(v) {
            names.push(v.name.clone());
            types.insert(t.to_string());
        }
    }
    if names.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    forbidden("restricted volume types", volumes_detail(&names, &types))
}

/// The shape shared by runAsNonRoot and seccompProfile: the pod and containers that set a bad value, and
/// (restricted only) the containers that set nothing while the pod sets nothing good either.
struct Setters {
    pod_bad: bool,
    pod_good: bool,
    explicit: Vec<String>,
    implicit: Vec<String>,
}

impl Setters {
    fn bad_setters(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.pod_bad {
            out.push("pod".to_string());
        }
        if !self.explicit.is_empty() {
            out.push(containers_named(&self.explicit));
        }
        out
    }
}

pub(super) fn run_as_non_root(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let pod = spec.security_context.as_ref().and_then(|s| s.run_as_non_root);
    let mut s = Setters {
        pod_bad: pod == Some(false),
        pod_good: pod == Some(true),
        explicit: Vec::new(),
        implicit: Vec::new(),
    };
    for c in containers(spec) {
        match c.security_context.as_ref().and_then(|sc| sc.run_as_non_root) {
            Some(false) => s.explicit.push(c.name.clone()),
            Some(true) => {}
            None if !s.pod_good => s.implicit.push(c.name.clone()),
            None => {}
        }
    }
    let reason = "runAsNonRoot != true";
    let setters = s.bad_setters();
    if !setters.is_empty() {
        let detail = format!(
            "{} must not set securityContext.runAsNonRoot=false",
            setters.join(" and ")
        );
        return forbidden(reason, detail);
    }
    if s.implicit.is_empty() {
        return None;
    }
    let detail = format!(
        "pod or {} must set securityContext.runAsNonRoot=true",
        containers_named(&s.implicit)
    );
    forbidden(reason, detail)
}

pub(super) fn run_as_user(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let pod_bad = spec.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0);
    let explicit: Vec<String> = containers(spec)
        .filter(|c| c.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0))
        .map(|c| c.name.clone())
        .collect();
    let s = Setters {
        pod_bad,
        pod_good: false,
        explicit,
        implicit: Vec::new(),
    };
    let setters = s.bad_setters();
    if setters.is_empty() {
        return None;
    }
    let detail = format!("{} must not set runAsUser=0", setters.join(" and "));
    forbidden("runAsUser=0", detail)
}

pub(super) fn seccomp_profile(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    seccomp_setters(spec, true)
}

/// seccompProfile_baseline (`require` false: only explicit bad types) and seccompProfile_restricted
/// (`require` true: every container must also end up with RuntimeDefault or Localhost).
pub(super) fn seccomp_setters(spec: &PodSpec, require: bool) -> Option<Forbidden> {
    let mut values = BTreeSet::new();
    let pod = spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    let mut s = Setters {
        pod_bad: false,
        pod_good: false,
        explicit: Vec::new(),
        implicit: Vec::new(),
    };
    if let Some(p) = pod {
        if valid_seccomp(&p.type_) {
            s.pod_good = true;
        } else {
            s.pod_bad = true;
            values.insert(p.type_.clone());
        }
    }
    for c in containers(spec) {
        match c
            .security_context
            .as_ref()
            .and_then(|sc| sc.seccomp_profile.as_ref())
        {
            Some(p) if !valid_seccomp(&p.type_) => {
                s.explicit.push(c.name.clone());
                values.insert(p.type_.clone());
            }
            Some(_) => {}
            None if !s.pod_good => s.implicit.push(c.name.clone()),
            None => {}
        }
    }
    let setters = s.bad_setters();
    if !setters.is_empty() {
        let values: Vec<String> = values.into_iter().collect();
        let detail = format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&values)
        );
        return forbidden("seccompProfile", detail);
    }
    if !require || s.implicit.is_empty() {
        return None;
    }
    let detail = format!(
        "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
        containers_named(&s.implicit)
    );
    forbidden("seccompProfile", detail)
}
