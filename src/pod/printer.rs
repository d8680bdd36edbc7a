//! The columns `kubectl get pods` prints (READY, STATUS, RESTARTS), computed from a status exactly as
//! kubectl's `printPod` does (pkg/printers/internalversion/printers.go), so the CRD's printer columns and
//! `peapod get` show what users are used to: `Init:0/2`, `CrashLoopBackOff`, `Completed`, `Terminating`.

use k8s_openapi::api::core::v1::{Container, ContainerStateTerminated, ContainerStatus, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::plan;
use crate::api::{PodGroup, PodGroupStatus};

/// The printed columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// `ready/total`.
    pub ready: String,
    /// The STATUS column.
    pub status: String,
    /// Restart count.
    pub restarts: i32,
    /// When the last restart happened (the finish time of the newest last state).
    pub last_restart: Option<Timestamp>,
}

fn later(a: Option<Timestamp>, b: Option<&Time>) -> Option<Timestamp> {
    match (a, b.map(|t| t.0)) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// Restarts as kubectl adds them up: their count and the newest last-state finish.
#[derive(Debug, Clone, Copy, Default)]
struct Restarts {
    count: i32,
    last: Option<Timestamp>,
}

impl Restarts {
    fn add(&mut self, c: &ContainerStatus) {
        self.count += c.restart_count;
        let last_finish = c
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .and_then(|t| t.finished_at.as_ref());
        self.last = later(self.last, last_finish);
    }
}

/// kubectl's reason for a terminated container: its reason, else `Signal:N`, else `ExitCode:N`.
fn terminated_reason(t: &ContainerStateTerminated, prefix: &str) -> String {
    match t.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => format!("{prefix}{r}"),
        None => match t.signal.filter(|s| *s != 0) {
            Some(sig) => format!("{prefix}Signal:{sig}"),
            None => format!("{prefix}ExitCode:{}", t.exit_code),
        },
    }
}

fn has_condition(st: &PodStatus, type_: &str) -> bool {
    st.conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

fn is_sidecar(init_specs: &[Container], name: &str) -> bool {
    init_specs.iter().any(|c| c.name == name && plan::is_sidecar(c))
}

/// The init containers' part: the STATUS while one of them is initializing (`Init:1/2`, `Init:Error`),
/// `None` once none is; restarts of all init containers and of the sidecars alone; ready sidecars.
fn init_columns(
    init_specs: &[Container],
    st: &PodStatus,
    all: &mut Restarts,
    sidecars: &mut Restarts,
    ready: &mut usize,
) -> Option<String> {
    for (i, c) in st.init_container_statuses.iter().flatten().enumerate() {
        all.add(c);
        let sidecar = is_sidecar(init_specs, &c.name);
        if sidecar {
            sidecars.add(c);
        }
        let state = c.state.clone().unwrap_or_default();
        return Some(match (&state.terminated, &state.waiting) {
            (Some(t), _) if t.exit_code == 0 => continue,
            _ if sidecar && c.started == Some(true) => {
                if c.ready {
                    *ready += 1;
                }
                continue;
            }
            (Some(t), _) => terminated_reason(t, "Init:"),
            (None, Some(w))
                if w.reason
                    .as_deref()
                    .is_some_and(|r| !r.is_empty() && r != "PodInitializing") =>
            {
                format!("Init:{}", w.reason.as_deref().unwrap_or(""))
            }
            _ => format!("Init:{i}/{}", init_specs.len()),
        });
    }
    None
}

/// The regular containers' part: the STATUS (`reason` unless a container says otherwise), their
/// restarts added to `restarts`, ready containers to `ready`.
fn regular_columns(st: &PodStatus, mut reason: String, restarts: &mut Restarts, ready: &mut usize) -> String {
    let mut has_running = false;
    for c in st.container_statuses.iter().flatten().rev() {
        restarts.add(c);
        let state = c.state.clone().unwrap_or_default();
        if let Some(r) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.clone())
            .filter(|r| !r.is_empty())
        {
            reason = r;
        } else if let Some(t) = &state.terminated {
            reason = terminated_reason(t, "");
        } else if c.ready && state.running.is_some() {
            has_running = true;
            *ready += 1;
        }
    }
    if reason == "Completed" && has_running {
        reason = if has_condition(st, "Ready") {
            "Running"
        } else {
            "NotReady"
        }
        .to_string();
    }
    reason
}

/// Computes the columns for `pod` with `status`; `deleting` is true once a delete was requested.
pub fn columns(pod: &PodGroup, status: &PodGroupStatus, deleting: bool) -> Columns {
    let spec = &pod.spec.pod;
    let st = &status.pod;
    let phase = st.phase.clone().unwrap_or_else(|| "Pending".to_string());
    let mut reason = st
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| phase.clone());
    let init_specs = spec.init_containers.as_deref().unwrap_or_default();
    let total = spec.containers.len()
        + init_specs
            .iter()
            .filter(|c| is_sidecar(init_specs, &c.name))
            .count();
    let mut ready = 0usize;
    let (mut restarts, mut sidecar_restarts) = (Restarts::default(), Restarts::default());
    let initializing = init_columns(init_specs, st, &mut restarts, &mut sidecar_restarts, &mut ready);
    if let Some(init_reason) = &initializing {
        reason = init_reason.clone();
    }
    if initializing.is_none() || has_condition(st, "Initialized") {
        restarts = sidecar_restarts;
        reason = regular_columns(st, reason, &mut restarts, &mut ready);
    }
    let terminal = matches!(phase.as_str(), "Succeeded" | "Failed");
    if deleting && st.reason.as_deref() == Some("NodeLost") {
        reason = "Unknown".to_string();
    } else if deleting && !terminal {
        reason = "Terminating".to_string();
    }
    Columns {
        ready: format!("{ready}/{total}"),
        status: reason,
        restarts: restarts.count,
        last_restart: restarts.last,
    }
}

/// Stores the columns in the status fields the CRD's printer columns read.
pub fn fill_columns(pod: &PodGroup, status: &mut PodGroupStatus, deleting: bool) {
    let c = columns(pod, status, deleting);
    status.ready_containers = Some(c.ready);
    status.display_status = Some(c.status);
    status.restarts = Some(c.restarts);
}

/// kubectl's RESTARTS cell: `3 (2m ago)` once there was a restart.
pub fn restarts_cell(c: &Columns, now: Timestamp) -> String {
    match c.last_restart {
        Some(t) if c.restarts != 0 => format!("{} ({} ago)", c.restarts, human_duration(now, t)),
        _ => c.restarts.to_string(),
    }
}

/// kubectl's short human duration (`translateTimestampSince`): `45s`, `3m2s`, `5h`, `2d`.
pub fn human_duration(now: Timestamp, then: Timestamp) -> String {
    let secs = (now.as_second() - then.as_second()).max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        units(m, "m", secs % 60, "s")
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        units(h, "h", m % 60, "m")
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        units(d, "d", h % 24, "h")
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        units(d / 365, "y", d % 365, "d")
    } else {
        format!("{}y", d / 365)
    }
}

/// `3h` or `3h5m`: the larger unit alone when the smaller one is zero.
fn units(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{small}{small_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        let t = |s: i64| Timestamp::from_second(1_700_000_000 + s).unwrap();
        let now = t(0);
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (7200, "120m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
        ];
        for (ago, want) in cases {
            assert_eq!(human_duration(now, t(-ago)), want, "{ago}s ago");
        }
    }
}
