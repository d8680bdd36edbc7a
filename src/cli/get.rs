//! `peapod get`: PodGroups as `kubectl get pods` prints them, from the standalone status files.

use std::process::ExitCode;

use clap::Args;
use k8s_openapi::jiff::Timestamp;

use super::{CliError, Global};
use crate::api::PodGroup;
use crate::pod::printer::{columns, human_duration, restarts_cell};
use crate::standalone::store::StatusStore;

/// Arguments of `peapod get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Only this PodGroup.
    pub name: Option<String>,
    /// Namespace.
    #[arg(short = 'n', long, env = "PEAPOD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// List PodGroups of every namespace.
    #[arg(short = 'A', long, env = "PEAPOD_ALL_NAMESPACES")]
    pub all_namespaces: bool,
    /// Output format: wide, yaml or json.
    #[arg(short = 'o', long, env = "PEAPOD_OUTPUT", value_parser = ["wide", "yaml", "json", "name"])]
    pub output: Option<String>,
}

/// `peapod get`.
pub fn get(global: &Global, args: &GetArgs) -> Result<ExitCode, CliError> {
    let store = StatusStore::new(&global.state_dir);
    // Standalone status files, then what an agent runs on this node (its pod checkpoints).
    let mut all = store.list();
    for p in crate::pod::worker::checkpointed_pods_in(&global.state_dir.join("pods")) {
        if !all.iter().any(|q| q.metadata.uid == p.metadata.uid) {
            all.push(p);
        }
    }
    let mut pods: Vec<PodGroup> = all
        .into_iter()
        .filter(|p| args.all_namespaces || p.namespace_or_default() == args.namespace)
        .collect();
    if let Some(name) = &args.name {
        pods.retain(|p| p.metadata.name.as_deref() == Some(name.as_str()));
        // The live incarnation only, as the API would hold one object per name.
        pods.truncate(1);
        if pods.is_empty() {
            return Err(CliError(format!("podgroups.peapod.dev {name:?} not found")));
        }
    }
    match args.output.as_deref() {
        Some("yaml") => {
            let out = if args.name.is_some() {
                to_yaml(&pods[0])?
            } else {
                to_yaml(&list(&pods))?
            };
            print!("{out}");
        }
        Some("json") => {
            let out = if args.name.is_some() {
                serde_json::to_string_pretty(&pods[0])
            } else {
                serde_json::to_string_pretty(&list(&pods))
            };
            println!("{}", out.map_err(|e| CliError::context("encode", e))?);
        }
        Some("name") => {
            for p in &pods {
                println!("podgroup.peapod.dev/{}", p.metadata.name.as_deref().unwrap_or(""));
            }
        }
        other => {
            if pods.is_empty() {
                let scope = if args.all_namespaces {
                    String::new()
                } else {
                    format!(" in {} namespace", args.namespace)
                };
                eprintln!("No resources found{scope}.");
                return Ok(ExitCode::SUCCESS);
            }
            print!(
                "{}",
                table(
                    &pods,
                    other == Some("wide"),
                    args.all_namespaces,
                    Timestamp::now()
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(pods: &[PodGroup]) -> serde_json::Value {
    serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": pods, "metadata": { "resourceVersion": "" } })
}

fn to_yaml<T: serde::Serialize>(v: &T) -> Result<String, CliError> {
    serde_saphyr::to_string(v).map_err(|e| CliError::context("encode", e))
}

/// The `kubectl get pods` table: columns padded to their widest cell plus three spaces.
pub fn table(pods: &[PodGroup], wide: bool, namespaces: bool, now: Timestamp) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<&str> = Vec::new();
    if namespaces {
        header.push("NAMESPACE");
    }
    header.extend(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    if wide {
        header.extend(["IP", "NODE"]);
    }
    rows.push(header.iter().map(|s| s.to_string()).collect());
    for p in pods {
        let status = p.status.clone().unwrap_or_default();
        let c = columns(p, &status, p.metadata.deletion_timestamp.is_some());
        let age = p
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| human_duration(now, t.0))
            .unwrap_or_else(|| "<unknown>".into());
        let mut row = Vec::new();
        if namespaces {
            row.push(p.namespace_or_default().to_string());
        }
        row.extend([
            p.metadata.name.clone().unwrap_or_default(),
            c.ready.clone(),
            c.status.clone(),
            restarts_cell(&c, now),
            age,
        ]);
        if wide {
            row.push(
                status
                    .pod
                    .pod_ip
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "<none>".into()),
            );
            row.push(p.spec.pod.node_name.clone().unwrap_or_else(|| "<none>".into()));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let last = r.len() - 1;
        for (i, cell) in r.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    #[test]
    fn table_aligns_like_kubectl() {
        let now = Timestamp::from_second(1_700_000_100).unwrap();
        let mut p = PodGroup {
            metadata: ObjectMeta {
                name: Some("two-containers".into()),
                creation_timestamp: Some(Time(Timestamp::from_second(1_700_000_000).unwrap())),
                ..Default::default()
            },
            spec: Default::default(),
            status: None,
        };
        p.spec.pod.containers = vec![Default::default(), Default::default()];
        let out = table(&[p], false, false, now);
        assert_eq!(out, "NAME             READY   STATUS    RESTARTS   AGE\ntwo-containers   0/2     Pending   0          100s\n");
    }
}
