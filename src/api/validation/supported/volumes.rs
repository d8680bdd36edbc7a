//! Volume sources peapod implements: emptyDir and hostPath. Part of `supported`, split out for
//! length; the same rule holds: the struct is destructured exhaustively and every source is decided.

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, Volume};

use crate::api::field::NOT_SUPPORTED_BY_PEAPOD;

use super::forbid;
use crate::api::field::{FieldError, FieldPath};

/// Every source a volume sets, in the order Kubernetes checks them, with whether peapod implements
/// it. A volume type is enabled by flipping its `false` to `true`.
pub fn volume_sources(v: &Volume) -> Vec<(&'static str, bool)> {
    let Volume {
        aws_elastic_block_store,
        azure_disk,
        azure_file,
        cephfs,
        cinder,
        config_map,
        csi,
        downward_api,
        empty_dir,
        ephemeral,
        fc,
        flex_volume,
        flocker,
        gce_persistent_disk,
        git_repo,
        glusterfs,
        host_path,
        image,
        iscsi,
        name: _,
        nfs,
        persistent_volume_claim,
        photon_persistent_disk,
        portworx_volume,
        projected,
        quobyte,
        rbd,
        scale_io,
        secret,
        storageos,
        vsphere_volume,
    } = v;
    let all = [
        ("emptyDir", empty_dir.is_some(), true),
        ("hostPath", host_path.is_some(), true),
        ("gitRepo", git_repo.is_some(), false),
        ("gcePersistentDisk", gce_persistent_disk.is_some(), false),
        ("awsElasticBlockStore", aws_elastic_block_store.is_some(), false),
        ("secret", secret.is_some(), false),
        ("nfs", nfs.is_some(), false),
        ("iscsi", iscsi.is_some(), false),
        ("glusterfs", glusterfs.is_some(), false),
        ("flocker", flocker.is_some(), false),
        ("persistentVolumeClaim", persistent_volume_claim.is_some(), false),
        ("rbd", rbd.is_some(), false),
        ("cinder", cinder.is_some(), false),
        ("cephfs", cephfs.is_some(), false),
        ("quobyte", quobyte.is_some(), false),
        ("downwardAPI", downward_api.is_some(), false),
        ("fc", fc.is_some(), false),
        ("flexVolume", flex_volume.is_some(), false),
        ("configMap", config_map.is_some(), false),
        ("azureFile", azure_file.is_some(), false),
        ("vsphereVolume", vsphere_volume.is_some(), false),
        ("photonPersistentDisk", photon_persistent_disk.is_some(), false),
        ("portworxVolume", portworx_volume.is_some(), false),
        ("azureDisk", azure_disk.is_some(), false),
        ("storageos", storageos.is_some(), false),
        ("projected", projected.is_some(), false),
        ("scaleIO", scale_io.is_some(), false),
        ("csi", csi.is_some(), false),
        ("ephemeral", ephemeral.is_some(), false),
        ("image", image.is_some(), false),
    ];
    all.into_iter()
        .filter(|(_, set, _)| *set)
        .map(|(name, _, implemented)| (name, implemented))
        .collect()
}

/// Volume: rejects every source peapod does not implement, and emptyDir fields it ignores.
pub fn volume(v: &Volume, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (name, implemented) in volume_sources(v) {
        forbid(errs, path, name, !implemented);
    }
    if let Some(EmptyDirVolumeSource {
        medium,
        mode,
        size_limit,
    }) = &v.empty_dir
    {
        let ed = path.child("emptyDir");
        forbid(errs, &ed, "mode", mode.is_some());
        // The kubelet enforces a disk emptyDir's sizeLimit by eviction, which peapod does not do; for
        // medium Memory it is the tmpfs size and is enforced.
        let disk = medium.as_deref().unwrap_or("").is_empty();
        if size_limit.is_some() && disk {
            errs.push(FieldError::forbidden(
                &ed.child("sizeLimit"),
                &format!("{NOT_SUPPORTED_BY_PEAPOD}: sizeLimit is enforced only for medium Memory"),
            ));
        }
    }
}
