//! What the security suites share: pods written as JSON manifests, the probe every container runs (facts
//! from `/proc/self/status`, `id`, `hostname`, its fds and oom_score_adj), and reading the facts back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{st, Node, BUSYBOX};

pub const T: Duration = Duration::from_secs(60);

/// Prints one `Key: value` line per fact. `/proc/1` is the container's first process (the `sh` running this
/// script): its fds are exactly what the runtime handed the container. (No pipe, redirection or command
/// substitution in that line: the shell would hold extra fds while it runs.)
pub const PROBE: &str = r#"grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
echo "Id: $(id)"
echo "Hostname: $(hostname)"
printf 'Fds: '; ls -x /proc/1/fd
echo "OomScoreAdj: $(cat /proc/1/oom_score_adj)""#;

/// A `kind: Pod` manifest (JSON, which the YAML reader takes) with a short grace period.
pub fn pod(name: &str, mut spec: Value) -> String {
    if spec.get("terminationGracePeriodSeconds").is_none() {
        spec["terminationGracePeriodSeconds"] = json!(2);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}).to_string()
}

/// A busybox container running `script` with `sh -c`, merged with `extra` (securityContext, resources...).
pub fn container(name: &str, script: &str, extra: Value) -> Value {
    let mut c = json!({"name": name, "image": BUSYBOX, "command": ["sh", "-c", script]});
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    c
}

/// Starts `peapod run` at the Pod Security Standards `level`, with extra flags.
pub fn start(node: &mut Node, level: &str, extra: &[&str]) {
    node.start_run(
        extra,
        &[("PEAPOD_POD_SECURITY_LEVEL", std::ffi::OsStr::new(level))],
    );
}

/// The container's log once it has terminated.
pub fn finished_log(node: &Node, pod: &str, container: &str) -> String {
    node.wait_pod(pod, &format!("{container} terminated"), T, |p| {
        st::terminated(p, container).is_some()
    });
    let out = node.peapod(&["logs", pod, "-c", container]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `Key: value` lines of a probe's output.
pub fn facts(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The pod's status reason and message.
pub fn reason_and_message(node: &Node, pod: &str) -> (String, String) {
    let p = node.get(pod).expect("the pod has a status");
    let s = p.status.unwrap_or_default().pod;
    (s.reason.unwrap_or_default(), s.message.unwrap_or_default())
}

/// Whether the process running this test may lower oom_score_adj (CAP_SYS_RESOURCE), and its own value.
pub fn oom_floor() -> i32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap();
    if caps & (1 << 24) != 0 {
        return -1000;
    }
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
