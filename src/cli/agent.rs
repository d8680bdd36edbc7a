//! `peapod agent`: the DaemonSet agent. Same runtime as `peapod run`, fed by the PodGroups bound to this node.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::run::{prepare_node, runtime_config, shutdown_signal, NodeArgs};
use super::{CliError, Global};
use crate::cluster::controller::{self, AgentOptions};
use crate::cluster::scheduler;
use crate::pod::worker::Context;

/// Arguments of `peapod agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent's namespace, where its leases live (the chart sets it from the downward API).
    #[arg(long, env = "PEAPOD_NAMESPACE", default_value = "peapod-system")]
    pub namespace: String,
    /// Address of /healthz, /readyz and /metrics (empty: none).
    #[arg(long, env = "PEAPOD_METRICS_BIND_ADDRESS", default_value = ":9474")]
    pub metrics_bind_address: String,
    /// Take part in leader election and schedule unbound PodGroups.
    #[arg(long, env = "PEAPOD_SCHEDULER", default_value_t = true, action = clap::ArgAction::Set)]
    pub scheduler: bool,
    /// How this node runs pods.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Parses `:9474`, `0.0.0.0:9474`, `[::1]:9474`.
pub fn bind_address(s: &str) -> Result<Option<SocketAddr>, CliError> {
    if s.is_empty() {
        return Ok(None);
    }
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map(Some)
        .map_err(|e| CliError::context(format!("--metrics-bind-address {s:?}"), e))
}

/// `peapod agent`.
pub fn agent(global: &Global, args: AgentArgs) -> Result<ExitCode, CliError> {
    let cfg = runtime_config(global, &args.node)?;
    let _lock = prepare_node(&cfg)?;
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| CliError::context("become child subreaper", e))?;
    let metrics_addr = bind_address(&args.metrics_bind_address)?;
    let (images, gc_policy) = super::image::node_images(&cfg, &args.node)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::context("start runtime", e))?;
    rt.block_on(async move {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| CliError::context("connect to the API server", e))?;
        let node = cfg.node_name.clone();
        let recorder = Arc::new(controller::events::ApiRecorder::start(
            client.clone(),
            "peapod",
            &node,
        ));
        let images = Arc::new(images.with_pull_secrets(Arc::new(
            controller::pull_secrets::ApiPullSecrets::new(client.clone()),
        )));
        super::image::spawn_image_gc(images.clone(), &cfg, gc_policy);
        let ctx = Arc::new(Context {
            runtime: cfg,
            images,
            recorder,
        });
        let opts = AgentOptions {
            node: node.clone(),
            namespace: args.namespace,
            metrics_addr,
        };
        tracing::info!(node = %node, namespace = %opts.namespace, "peapod agent started");
        if args.scheduler {
            tokio::spawn(scheduler::run(
                client.clone(),
                opts.namespace.clone(),
                node.clone(),
            ));
        }
        controller::run(ctx, client, opts, shutdown_signal()).await;
        Ok::<(), CliError>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses() {
        assert_eq!(
            bind_address(":9474").unwrap(),
            Some("0.0.0.0:9474".parse().unwrap())
        );
        assert_eq!(bind_address("[::1]:1").unwrap(), Some("[::1]:1".parse().unwrap()));
        assert_eq!(bind_address("").unwrap(), None);
        assert!(bind_address("nope").is_err());
    }
}
