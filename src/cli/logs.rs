//! `peapod logs`: a container's log, like `kubectl logs` (follow across rotation, `--previous`, `--tail`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use k8s_openapi::api::core::v1::ContainerStatus;
use k8s_openapi::jiff::Timestamp;

use super::{CliError, Global};
use crate::api::PodGroup;
use crate::runtime::layout::RuntimeConfig;
use crate::runtime::log::{read_logs, LogOptions};
use crate::standalone::store::StatusStore;

/// Arguments of `peapod logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// PodGroup name.
    pub name: String,
    /// Container name [default: the kubectl.kubernetes.io/default-container annotation, or the first].
    #[arg(short = 'c', long, env = "PEAPOD_CONTAINER")]
    pub container: Option<String>,
    /// Namespace.
    #[arg(short = 'n', long, env = "PEAPOD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Keep streaming until the container exits.
    #[arg(short = 'f', long, env = "PEAPOD_FOLLOW")]
    pub follow: bool,
    /// The previous instance of the container.
    #[arg(short = 'p', long, env = "PEAPOD_PREVIOUS")]
    pub previous: bool,
    /// Lines from the end to show (-1: all).
    #[arg(long, env = "PEAPOD_TAIL", default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Prefix each line with its RFC 3339 timestamp.
    #[arg(long, env = "PEAPOD_TIMESTAMPS")]
    pub timestamps: bool,
    /// Only lines newer than this duration (e.g. 30s, 5m, 2h).
    #[arg(long, env = "PEAPOD_SINCE", value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Stop after this many bytes.
    #[arg(long, env = "PEAPOD_LIMIT_BYTES")]
    pub limit_bytes: Option<usize>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("invalid duration {s:?} (use s, m or h)")),
    };
    Ok(Duration::from_secs(secs))
}

/// Finds a pod by namespace and name in the status files.
/// Finds a pod by namespace and name: in the standalone status files, else among the pods an agent runs on
/// this node (their checkpoints).
pub fn find_pod(global: &Global, namespace: &str, name: &str) -> Result<PodGroup, CliError> {
    StatusStore::new(&global.state_dir)
        .find(namespace, name)
        .or_else(|| {
            crate::pod::worker::checkpointed_pods_in(&global.state_dir.join("pods"))
                .into_iter()
                .find(|p| p.metadata.name.as_deref() == Some(name) && p.namespace_or_default() == namespace)
        })
        .ok_or_else(|| CliError(format!("podgroups.peapod.dev {name:?} not found")))
}

/// Picks the container: the one asked for, else the default one, telling the user as kubectl does.
pub fn pick_container(pod: &PodGroup, asked: Option<&str>) -> Result<String, CliError> {
    let spec = &pod.spec.pod;
    let all: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| c.name.as_str())
        .collect();
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    if let Some(c) = asked {
        if all.contains(&c) {
            return Ok(c.to_string());
        }
        return Err(CliError(format!("container {c} is not valid for pod {pod_name}")));
    }
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
        .cloned();
    let chosen = annotated
        .filter(|a| all.contains(&a.as_str()))
        .or_else(|| spec.containers.first().map(|c| c.name.clone()));
    let chosen = chosen.ok_or_else(|| CliError(format!("pod {pod_name} has no containers")))?;
    if spec.containers.len() > 1 {
        let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        eprintln!("Defaulted container {chosen:?} out of: {}", names.join(", "));
    }
    Ok(chosen)
}

/// The status of a container by name, init containers included.
pub fn container_status<'a>(pod: &'a PodGroup, name: &str) -> Option<&'a ContainerStatus> {
    let st = pod.status.as_ref()?;
    st.pod
        .container_statuses
        .iter()
        .flatten()
        .chain(st.pod.init_container_statuses.iter().flatten())
        .find(|s| s.name == name)
}

/// `peapod logs`.
pub fn logs(global: &Global, args: &LogsArgs) -> Result<ExitCode, CliError> {
    let pod = find_pod(global, &args.namespace, &args.name)?;
    let container = pick_container(&pod, args.container.as_deref())?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let status = container_status(&pod, &container);
    let restarts = status.map(|s| s.restart_count).unwrap_or(0).max(0) as u32;
    let has_instance = status.and_then(|s| s.container_id.as_ref()).is_some();
    let attempt = if args.previous {
        let has_previous = status
            .and_then(|s| s.last_state.as_ref())
            .and_then(|l| l.terminated.as_ref())
            .is_some();
        if !has_previous || restarts == 0 {
            return Err(CliError(format!(
                "previous terminated container {container:?} in pod {:?} not found",
                args.name
            )));
        }
        restarts - 1
    } else {
        restarts
    };
    // The supervisor's own layout: the same checked components, so a stored name cannot lead elsewhere.
    let layout = RuntimeConfig::new(
        global.state_dir.clone(),
        global.run_dir.clone(),
        global.oci_runtime.clone(),
        Default::default(),
    );
    let dir = layout.container_log_dir(&args.namespace, &args.name, &uid, &container);
    let file = format!("{attempt}.log");
    if !dir.join(&file).exists() {
        let waiting = status
            .and_then(|s| s.state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone());
        return Err(match (has_instance, waiting) {
            (false, Some(reason)) => CliError(format!(
                "container {container:?} in pod {:?} is waiting to start: {reason}",
                args.name
            )),
            _ => CliError(format!(
                "no log for container {container:?} in pod {:?}",
                args.name
            )),
        });
    }
    let opts = LogOptions {
        follow: args.follow && !args.previous,
        tail: usize::try_from(args.tail).ok(),
        timestamps: args.timestamps,
        since: args.since.and_then(|d| {
            Timestamp::now()
                .checked_sub(k8s_openapi::jiff::SignedDuration::try_from(d).ok()?)
                .ok()
        }),
        limit_bytes: args.limit_bytes,
        stream: None,
    };
    let instance = layout.instance_dir(&uid, &container, attempt);
    let stop = move || !instance.exists() || instance.join(crate::runtime::record::EXITED).exists();
    let mut out = std::io::stdout().lock();
    read_logs(&dir, &file, &opts, &mut out, &stop).map_err(|e| CliError::context("read log", e))?;
    Ok(ExitCode::SUCCESS)
}
