//! Helpers to read a PodGroup status: phase, STATUS column, container states, restarts, conditions.

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStateWaiting, ContainerStatus};
use peapod::api::PodGroup;

pub fn phase(p: &PodGroup) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.pod.phase.as_deref())
        .unwrap_or("")
}

pub fn display(p: &PodGroup) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.display_status.as_deref())
        .unwrap_or("")
}

pub fn try_container<'a>(p: &'a PodGroup, name: &str) -> Option<&'a ContainerStatus> {
    let s = p.status.as_ref()?;
    s.pod
        .container_statuses
        .iter()
        .flatten()
        .chain(s.pod.init_container_statuses.iter().flatten())
        .find(|c| c.name == name)
}

pub fn container<'a>(p: &'a PodGroup, name: &str) -> &'a ContainerStatus {
    try_container(p, name).unwrap_or_else(|| panic!("no status for container {name}"))
}

pub fn running(p: &PodGroup, name: &str) -> bool {
    try_container(p, name)
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.running.as_ref())
        .is_some()
}

pub fn terminated(p: &PodGroup, name: &str) -> Option<ContainerStateTerminated> {
    try_container(p, name)?.state.as_ref()?.terminated.clone()
}

pub fn waiting_reason(p: &PodGroup, name: &str) -> Option<String> {
    waiting(p, name)?.reason
}

pub fn waiting(p: &PodGroup, name: &str) -> Option<ContainerStateWaiting> {
    try_container(p, name)?.state.as_ref()?.waiting.clone()
}

pub fn last_terminated(p: &PodGroup, name: &str) -> Option<ContainerStateTerminated> {
    try_container(p, name)?.last_state.as_ref()?.terminated.clone()
}

pub fn restarts(p: &PodGroup, name: &str) -> i32 {
    try_container(p, name).map(|c| c.restart_count).unwrap_or(-1)
}

pub fn condition<'a>(p: &'a PodGroup, t: &str) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    p.status
        .as_ref()?
        .pod
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
}
