//! What a pod's spec asks of the node's cgroups, computed the kubelet's way: the QoS class (which decides
//! where the pod cgroup lives and what `status.qosClass` shows), the pod-level cgroup settings
//! (`ResourceConfigForPod` in pkg/kubelet/cm/helpers_linux.go), and each container's `oom_score_adj`
//! (pkg/kubelet/qos/policy.go).
//!
//! Pure: the one host reader (our own `oom_score_adj` floor) is in `runtime::resources`, which re-exports
//! this module. Writing cgroup files is `runtime::cgroup`'s job; container-level limits are `runtime::spec`'s.

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::api::quantity::parse_quantity;

/// CFS period the kubelet uses (100 ms, in µs).
pub const CPU_PERIOD: u64 = 100_000;
/// Smallest CFS quota the kubelet sets (1 ms, in µs).
const MIN_QUOTA: i64 = 1_000;
/// Smallest cpu.shares value (`MinShares`), also what BestEffort pods get.
pub const MIN_SHARES: u64 = 2;
/// Largest cpu.shares value (`MaxShares`).
const MAX_SHARES: u64 = 262_144;
/// oom_score_adj of Guaranteed and node-critical containers.
pub const GUARANTEED_OOM_SCORE_ADJ: i32 = -997;
/// oom_score_adj of BestEffort containers.
pub const BEST_EFFORT_OOM_SCORE_ADJ: i32 = 1000;

/// A pod's QoS class (`GetPodQOS`): only cpu and memory count, over init and regular containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    /// Every container has cpu and memory limits equal to its requests.
    Guaranteed,
    /// Anything in between.
    Burstable,
    /// No cpu or memory request or limit anywhere.
    BestEffort,
}

impl QosClass {
    /// The class of `spec`.
    pub fn of(spec: &PodSpec) -> QosClass {
        let mut requests = [0i128; 2];
        let mut limits = [0i128; 2];
        let mut any_request = [false; 2];
        let mut any_limit = [false; 2];
        let mut guaranteed = true;
        for c in all_containers(spec) {
            let mut limited = [false; 2];
            for (i, name) in ["cpu", "memory"].into_iter().enumerate() {
                if let Some(v) = quantity(c, name, false).filter(|v| *v > 0) {
                    requests[i] += v;
                    any_request[i] = true;
                }
                if let Some(v) = quantity(c, name, true).filter(|v| *v > 0) {
                    limits[i] += v;
                    any_limit[i] = true;
                    limited[i] = true;
                }
            }
            guaranteed &= limited == [true, true];
        }
        if any_request == [false, false] && any_limit == [false, false] {
            return QosClass::BestEffort;
        }
        let same = (0..2).all(|i| !any_request[i] || (any_limit[i] && requests[i] == limits[i]));
        if guaranteed && same && any_request == any_limit {
            QosClass::Guaranteed
        } else {
            QosClass::Burstable
        }
    }

    /// `Guaranteed`, `Burstable` or `BestEffort`.
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }

    /// The QoS cgroup below the cgroup parent (`None`: Guaranteed pods live directly in it).
    pub fn cgroup_dir(self) -> Option<&'static str> {
        match self {
            QosClass::Guaranteed => None,
            QosClass::Burstable => Some("burstable"),
            QosClass::BestEffort => Some("besteffort"),
        }
    }
}

/// The settings of a pod cgroup (`ResourceConfig`); `None` leaves the kernel's default (unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodResources {
    /// cpu.shares (v1) / cpu.weight after conversion (v2).
    pub cpu_shares: u64,
    /// CFS quota in µs per `CPU_PERIOD`.
    pub cpu_quota: Option<i64>,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
    /// Most processes (`--pod-pids-limit`; `None` for unlimited).
    pub pids_limit: Option<i64>,
}

/// `ResourceConfigForPod`: shares from the summed requests, a quota only when every container has a cpu
/// limit, a memory limit only when every container has one (both always for Guaranteed pods), 2 shares for
/// BestEffort. `pids_limit` below 1 means unlimited, like the kubelet's `podPidsLimit` of -1.
pub fn pod_resources(spec: &PodSpec, pids_limit: i64) -> PodResources {
    let pids_limit = (pids_limit > 0).then_some(pids_limit);
    let qos = QosClass::of(spec);
    if qos == QosClass::BestEffort {
        return PodResources {
            cpu_shares: MIN_SHARES,
            pids_limit,
            ..Default::default()
        };
    }
    let every = |name: &str| all_containers(spec).all(|c| quantity(c, name, true).is_some_and(|v| v > 0));
    let cpu_request = pod_total(spec, "cpu", false);
    let cpu_limit = pod_total(spec, "cpu", true);
    let memory_limit = pod_total(spec, "memory", true) / 1_000_000_000;
    let guaranteed = qos == QosClass::Guaranteed;
    PodResources {
        cpu_shares: milli_cpu_to_shares(cpu_request / 1_000_000),
        cpu_quota: (guaranteed || every("cpu")).then(|| milli_cpu_to_quota(cpu_limit / 1_000_000)),
        memory_limit: (guaranteed || every("memory"))
            .then(|| i64::try_from(memory_limit).unwrap_or(i64::MAX)),
        pids_limit,
    }
}

/// `MilliCPUToShares`: `milli * 1024 / 1000`, at least 2, at most 262144.
pub fn milli_cpu_to_shares(milli: i128) -> u64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    let shares = u64::try_from(milli.saturating_mul(1024) / 1000).unwrap_or(MAX_SHARES);
    shares.clamp(MIN_SHARES, MAX_SHARES)
}

/// `MilliCPUToQuota` over the 100 ms period, at least 1 ms.
pub fn milli_cpu_to_quota(milli: i128) -> i64 {
    let quota = milli.saturating_mul(i128::from(CPU_PERIOD)) / 1000;
    i64::try_from(quota).unwrap_or(i64::MAX).max(MIN_QUOTA)
}

/// cpu.shares as a cgroup v2 cpu.weight, the conversion runc 1.1 uses (`ConvertCPUSharesToCgroupV2Value`).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// The kubelet's `GetContainerOOMScoreAdjust`: -997 for Guaranteed and node-critical pods, 1000 for
/// BestEffort, and for Burstable `1000 - 1000 * memoryRequest / capacity` kept within [3, 999].
pub fn oom_score_adj(spec: &PodSpec, container: &Container, memory_capacity: u64) -> i32 {
    if spec.priority_class_name.as_deref() == Some("system-node-critical") {
        return GUARANTEED_OOM_SCORE_ADJ;
    }
    match QosClass::of(spec) {
        QosClass::Guaranteed => return GUARANTEED_OOM_SCORE_ADJ,
        QosClass::BestEffort => return BEST_EFFORT_OOM_SCORE_ADJ,
        QosClass::Burstable => {}
    }
    let request = quantity(container, "memory", false).unwrap_or(0).max(0) / 1_000_000_000;
    let capacity = i128::from(memory_capacity.max(1));
    let adj = 1000 - (1000 * request) / capacity;
    let floor = i128::from(1000 + GUARANTEED_OOM_SCORE_ADJ);
    if adj < floor {
        return 1000 + GUARANTEED_OOM_SCORE_ADJ;
    }
    if adj == i128::from(BEST_EFFORT_OOM_SCORE_ADJ) {
        return BEST_EFFORT_OOM_SCORE_ADJ - 1;
    }
    i32::try_from(adj).unwrap_or(BEST_EFFORT_OOM_SCORE_ADJ - 1)
}

/// A wanted `oom_score_adj` raised to what this node lets us set: without CAP_SYS_RESOURCE the kernel refuses
/// values below the current one, and the OCI runtime would then fail the start.
pub fn clamp_oom_score_adj(wanted: i32, floor: i32) -> i32 {
    wanted.clamp(floor.max(-1000), 1000)
}

/// The node's memory in bytes, from a `/proc/meminfo` text (`MemTotal`).
pub fn memory_capacity(meminfo: &str) -> Option<u64> {
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    kib.checked_mul(1024)
}

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
}

/// A container's request or limit of `name`, in nano-units.
fn quantity(c: &Container, name: &str, limit: bool) -> Option<i128> {
    let res = c.resources.as_ref()?;
    let map = if limit { &res.limits } else { &res.requests };
    map.as_ref()?
        .get(name)
        .and_then(|q| parse_quantity(&q.0))
        .map(|q| q.nanos())
}

/// `PodRequests`/`PodLimits` for one resource: the sum over the app containers, or the largest init
/// container's when that is more (init containers run one at a time, before the others).
fn pod_total(spec: &PodSpec, name: &str, limit: bool) -> i128 {
    let apps: i128 = spec
        .containers
        .iter()
        .filter_map(|c| quantity(c, name, limit))
        .filter(|v| *v > 0)
        .sum();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .filter_map(|c| quantity(c, name, limit))
        .max()
        .unwrap_or(0);
    apps.max(init)
}

#[cfg(test)]
mod tests;
