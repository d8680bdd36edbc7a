//! emptyDir volumes: a directory in the pod's directory, or with `medium: Memory` a tmpfs sized as the
//! kubelet sizes it (`calculateEmptyDirMemorySize`, pkg/volume/emptydir/empty_dir.go), so a memory-backed
//! volume can never promise more than the pod may use or the node has. Ownership (`fsGroup`) is the
//! caller's; this module never removes anything.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, PodSpec};

use super::SetUpError;
use crate::api::component::join_component;
use crate::api::resources::{memory_capacity, pod_resources};
use crate::sys;

/// Where a pod keeps emptyDir volumes.
pub fn root(pod_dir: &Path) -> PathBuf {
    pod_dir.join("volumes").join("kubernetes.io~empty-dir")
}

/// Makes the emptyDir `name` (idempotent: an existing one keeps its content) and returns its path.
pub fn prepare(
    pod_dir: &Path,
    name: &str,
    ed: &EmptyDirVolumeSource,
    spec: &PodSpec,
) -> Result<PathBuf, SetUpError> {
    let dir = join_component(&root(pod_dir), name).ok_or_else(|| SetUpError::InvalidName {
        name: name.to_string(),
    })?;
    sys::fs::create_dir_all_mode(&dir, 0o777).map_err(|e| SetUpError::io("create", &dir, e))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).map_err(SetUpError::SetMode)?;
    if ed.medium.as_deref() != Some("Memory") {
        return Ok(dir);
    }
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !sys::mount::is_mountpoint(&info, &dir) {
        let node = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| memory_capacity(&m))
            .ok_or(SetUpError::NodeMemory)?;
        let limit = ed.size_limit.as_ref().and_then(|q| memory_bytes(&q.0));
        let size = memory_size(spec, limit, node);
        sys::mount::tmpfs(&dir, &format!("mode=0777,size={size}"), false)
            .map_err(|e| SetUpError::io("mount tmpfs", &dir, e))?;
    }
    Ok(dir)
}

/// The size of a memory-backed emptyDir: the node's allocatable memory (peapod reserves none, so its
/// capacity), lowered to the pod's memory limit (set when every container has one, as for the pod's
/// cgroup), then to the volume's `sizeLimit`, each only when positive and not larger.
pub fn memory_size(spec: &PodSpec, size_limit: Option<u64>, node_allocatable: u64) -> u64 {
    let pod_limit = pod_resources(spec, -1)
        .memory_limit
        .and_then(|l| u64::try_from(l).ok());
    [pod_limit, size_limit]
        .into_iter()
        .flatten()
        .fold(
            node_allocatable,
            |size, l| if l > 0 && l <= size { l } else { size },
        )
}

/// Bytes of a memory quantity (`64Mi`, `1G`, `1048576`); `None` when it does not parse or is not positive.
pub fn memory_bytes(q: &str) -> Option<u64> {
    let bytes = crate::api::quantity::parse_quantity(q)?.value();
    u64::try_from(bytes).ok().filter(|b| *b > 0)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    const GI: u64 = 1 << 30;

    fn limited(memory: Option<&str>) -> Container {
        let limits = memory.map(|m| [("memory".to_string(), Quantity(m.to_string()))].into());
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                limits,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn spec(containers: Vec<Container>) -> PodSpec {
        PodSpec {
            containers,
            ..Default::default()
        }
    }

    #[test]
    fn memory_size_follows_the_kubelet() {
        let two = spec(vec![limited(Some("64Mi")), limited(Some("32Mi"))]);
        // 1Ei is not larger than what the pod may use: the pod's limit wins.
        assert_eq!(memory_size(&two, memory_bytes("1Ei"), 8 * GI), 96 << 20);
        assert_eq!(memory_size(&two, memory_bytes("8Mi"), 8 * GI), 8 << 20);
        assert_eq!(memory_size(&two, None, 8 * GI), 96 << 20);
        // A container without a limit leaves the pod unlimited: the node's memory bounds it.
        let open = spec(vec![limited(Some("64Mi")), limited(None)]);
        assert_eq!(memory_size(&open, memory_bytes("1Ei"), 8 * GI), 8 * GI);
        assert_eq!(memory_size(&open, memory_bytes("1Gi"), 8 * GI), GI);
        // A pod limit above the node's memory does not raise it.
        let huge = spec(vec![limited(Some("1Pi"))]);
        assert_eq!(memory_size(&huge, None, 8 * GI), 8 * GI);
    }

    #[test]
    fn memory_quantities() {
        assert_eq!(memory_bytes("10Mi"), Some(10 * 1024 * 1024));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(memory_bytes("512"), Some(512));
        assert_eq!(memory_bytes("1.5Ki"), Some(1536));
        assert_eq!(memory_bytes("1Ei"), Some(1 << 60));
        assert_eq!(memory_bytes("lots"), None);
        assert_eq!(memory_bytes("0"), None);
    }
}
