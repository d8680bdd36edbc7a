//! The status of a pod refused before anything of it ran (an invalid spec, or one this node does not
//! admit), shown the way the kubelet shows a rejected pod: phase Failed with the reason and message. Both
//! front ends (`standalone`, `cluster::controller`) show refusals with it. Pure.

use crate::api::{PodGroup, PodGroupStatus};

/// The status a refused pod shows: Failed with the reason and message (the kubelet's rejected pods).
pub fn refused_status(pod: &PodGroup, reason: &str, message: &str) -> PodGroupStatus {
    let mut status = PodGroupStatus::default();
    status.pod.phase = Some("Failed".into());
    status.pod.reason = Some(reason.into());
    status.pod.message = Some(message.to_string());
    super::printer::fill_columns(pod, &mut status, false);
    status
}
