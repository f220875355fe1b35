//! `/healthz` (the process is alive), `/readyz` (its dependencies answer) and
//! `/metrics` (Prometheus text), mounted by every service on its health port.

use crate::metrics::{self, Registry};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A readiness probe: `Ok` when the service can do its work, otherwise what is missing.
pub trait Readiness: Send + Sync + 'static {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

#[derive(Clone)]
struct Health {
    readiness: Arc<dyn Readiness>,
    registry: Arc<Registry>,
}

/// Routes for `/healthz`, `/readyz` and `/metrics`, to be merged into a service's router.
pub fn routes(readiness: Arc<dyn Readiness>, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(Health {
            readiness,
            registry,
        })
}

async fn ready(State(health): State<Health>) -> (StatusCode, String) {
    match health.readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(missing) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {missing}"),
        ),
    }
}

async fn render_metrics(State(health): State<Health>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&health.registry),
    )
}
