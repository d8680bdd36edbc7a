//! What the probe suites (lifecycle_probes*.rs) share: a one-container Pod, the supervisor's Events, and
//! readiness, start and sampling checks on a pod's status.

use std::time::{Duration, Instant};

use super::builder::ContainerBuilder;
use super::{c, pod, st, Node};

/// How long a probe suite waits for a graceful stop.
const T: Duration = Duration::from_secs(60);

/// A Pod with one container and a grace period of `grace` seconds.
pub fn probed(name: &str, grace: i64, container: ContainerBuilder) -> String {
    pod(name).grace(grace).container(container).manifest()
}

/// A new node running `probed(name, grace, container)` from `<name>.yaml`.
pub fn start_probed(name: &str, grace: i64, container: ContainerBuilder) -> Node {
    let mut node = Node::new();
    node.apply(&format!("{name}.yaml"), &probed(name, grace, container));
    node.start();
    node
}

/// A container running `script` with `sh -c`.
pub fn container(name: &str, script: &str) -> ContainerBuilder {
    c(name).sh(script)
}

/// Whether the supervisor logged an event with `reason` whose line contains `fragment`.
pub fn has_event(node: &Node, reason: &str, fragment: &str) -> bool {
    node.supervisor_log()
        .lines()
        .any(|l| l.contains(&format!("reason={reason}")) && l.contains(fragment))
}

/// Asserts that the supervisor logged an event with `reason` whose line contains `fragment`.
pub fn assert_event(node: &Node, reason: &str, fragment: &str) {
    assert!(has_event(node, reason, fragment), "{}", node.supervisor_log());
}

/// Asserts that the supervisor logged no event with `reason` whose line contains `fragment`.
pub fn assert_no_event(node: &Node, reason: &str, fragment: &str) {
    assert!(!has_event(node, reason, fragment), "{}", node.supervisor_log());
}

pub fn ready(p: &peapod::api::PodGroup, c: &str) -> bool {
    st::try_container(p, c).is_some_and(|s| s.ready)
}

pub fn started(p: &peapod::api::PodGroup, c: &str) -> bool {
    st::try_container(p, c).and_then(|s| s.started) == Some(true)
}

/// Samples the pod for `seconds` and asserts `pred` held at every sample.
pub fn holds_for(
    node: &Node,
    name: &str,
    seconds: u64,
    what: &str,
    pred: impl Fn(&peapod::api::PodGroup) -> bool,
) {
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let p = node.get(name).expect("pod status");
        assert!(pred(&p), "{what}: {:?}", p.status);
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn finish(mut node: Node) {
    node.finish(T);
}
