//! The columns `kubectl get pods` prints (READY, STATUS, RESTARTS), computed from a status exactly as
//! kubectl's `printPod` does (pkg/printers/internalversion/printers.go), so the CRD's printer columns and
//! `peapod get` show what users are used to: `Init:0/2`, `CrashLoopBackOff`, `Completed`, `Terminating`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

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
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| c.name == name && crate::api::is_sidecar(c))
    };
    let total = spec.containers.len() + init_specs.iter().filter(|c| is_sidecar(&c.name)).count();
    let (mut ready, mut restarts, mut sidecar_restarts) = (0usize, 0i32, 0i32);
    let (mut last_restart, mut sidecar_last_restart) = (None, None);

    let mut initializing = false;
    for (i, c) in st.init_container_statuses.iter().flatten().enumerate() {
        restarts += c.restart_count;
        let last_finish = c
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .and_then(|t| t.finished_at.as_ref());
        last_restart = later(last_restart, last_finish);
        if is_sidecar(&c.name) {
            sidecar_restarts += c.restart_count;
            sidecar_last_restart = later(sidecar_last_restart, last_finish);
        }
        let state = c.state.clone().unwrap_or_default();
        match (&state.terminated, &state.waiting) {
            (Some(t), _) if t.exit_code == 0 => continue,
            _ if is_sidecar(&c.name) && c.started == Some(true) => {
                if c.ready {
                    ready += 1;
                }
                continue;
            }
            (Some(t), _) => {
                reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                    Some(r) => format!("Init:{r}"),
                    None => match t.signal.filter(|s| *s != 0) {
                        Some(sig) => format!("Init:Signal:{sig}"),
                        None => format!("Init:ExitCode:{}", t.exit_code),
                    },
                };
            }
            (None, Some(w))
                if w.reason
                    .as_deref()
                    .is_some_and(|r| !r.is_empty() && r != "PodInitializing") =>
            {
                reason = format!("Init:{}", w.reason.as_deref().unwrap_or(""));
            }
            _ => reason = format!("Init:{i}/{}", init_specs.len()),
        }
        initializing = true;
        break;
    }

    let initialized = st
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Initialized" && c.status == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        for c in st.container_statuses.iter().flatten().rev() {
            restarts += c.restart_count;
            let last_finish = c
                .last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .and_then(|t| t.finished_at.as_ref());
            last_restart = later(last_restart, last_finish);
            let state = c.state.clone().unwrap_or_default();
            if let Some(r) = state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .filter(|r| !r.is_empty())
            {
                reason = r;
            } else if let Some(t) = &state.terminated {
                reason = match t.reason.clone().filter(|r| !r.is_empty()) {
                    Some(r) => r,
                    None => match t.signal.filter(|s| *s != 0) {
                        Some(sig) => format!("Signal:{sig}"),
                        None => format!("ExitCode:{}", t.exit_code),
                    },
                };
            } else if c.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let has_ready = st
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            reason = if has_ready { "Running" } else { "NotReady" }.to_string();
        }
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
        restarts,
        last_restart,
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
        if secs % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", secs % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{}y", d / 365)
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
