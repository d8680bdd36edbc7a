//! The node's side of a pod's resources. The kubelet's rules themselves (QoS class, pod cgroup settings,
//! `oom_score_adj`) are pure and live in `api::resources`, re-exported here for the runtime's callers;
//! this module adds what reads the host: the lowest `oom_score_adj` we may set.

pub use crate::api::resources::*;

/// Bit of CAP_SYS_RESOURCE in a capability mask.
const CAP_SYS_RESOURCE: u32 = 24;
/// oom_score_adj of the pause and shim processes (containerd's `defaultSandboxOOMAdj`).
pub const HELPER_OOM_SCORE_ADJ: i32 = -998;

/// The lowest `oom_score_adj` processes we start may get: -1000 with CAP_SYS_RESOURCE, else our own value.
pub fn oom_score_adj_floor() -> i32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let has_sys_resource = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0);
    if has_sys_resource {
        return -1000;
    }
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(BEST_EFFORT_OOM_SCORE_ADJ)
}
