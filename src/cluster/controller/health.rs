//! The agent's HTTP endpoints: `/healthz` (the process serves), `/readyz` (recovered and watching) and
//! `/metrics` (Prometheus text format), on `--metrics-bind-address`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Agent;

/// The agent's metrics.
pub struct Metrics {
    registry: Registry,
    /// Pods with a worker on this node.
    pub pods: Gauge,
    /// Reconciles run.
    pub reconciles: Counter,
    /// Reconciles that failed.
    pub reconcile_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("peapod");
        let pods = Gauge::default();
        let reconciles = Counter::default();
        let reconcile_errors = Counter::default();
        registry.register("pods", "Pods with a worker on this node", pods.clone());
        registry.register("reconciles", "PodGroup reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "PodGroup reconciles that failed",
            reconcile_errors.clone(),
        );
        Metrics {
            registry,
            pods,
            reconciles,
            reconcile_errors,
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves the endpoints until the process ends.
pub async fn serve(addr: SocketAddr, agent: Arc<Agent>) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(a): State<Arc<Agent>>| async move { a.metrics.render() }),
        )
        .with_state(agent);
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "health server failed");
            }
        }
        Err(e) => tracing::error!(address = %addr, error = %e, "cannot serve health endpoints"),
    }
}

async fn readyz(State(agent): State<Arc<Agent>>) -> (StatusCode, &'static str) {
    if agent.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "recovering")
    }
}
