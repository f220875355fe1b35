//! OTLP ingest: accepts traces over gRPC and HTTP (protobuf or JSON, optionally gzip),
//! resolves the API key to a tenant, validates spans, splits each request by trace-id
//! partition and answers only after JetStream has acknowledged every part.

mod config;
mod export;
mod grpc;
mod http;
mod rate;
mod split;
mod usage;

pub use config::IngestConfig;
pub use export::Exporter;
pub use grpc::serve as serve_grpc;

use anyhow::Context;
use std::sync::Arc;
use weft_bus::Bus;
use weft_runtime::health::Readiness;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::postgres::{KeyCache, Postgres};

/// The wired service: the shared export pipeline behind both front ends.
pub struct Ingest {
    exporter: Arc<Exporter>,
}

impl Ingest {
    /// Connects to NATS and PostgreSQL (both lazily, so the service starts and reports
    /// itself not ready while they come up) and builds the pipeline.
    pub async fn build(config: &IngestConfig) -> anyhow::Result<Ingest> {
        let bus = Bus::connect(config.bus.clone())
            .await
            .context("failed to connect to NATS")?;
        bus.ensure_streams_in_background();
        let postgres = Postgres::connect_lazy(&config.postgres)
            .context("failed to configure the PostgreSQL pool")?;
        let keys = KeyCache::new(postgres.clone(), config.key_cache_ttl, 100_000);
        let exporter = Arc::new(Exporter::new(
            bus.clone(),
            postgres.clone(),
            keys,
            config.limits,
        ));
        exporter
            .usage
            .flush_every(postgres, config.usage_flush_interval);
        let forget = exporter.clone();
        bus.on_key_revoked(move |digest| forget.forget_key(&digest))
            .await
            .context("failed to subscribe to key revocations")?;
        Ok(Ingest { exporter })
    }

    /// OTLP/HTTP plus `/healthz` and `/readyz`.
    pub fn http_router(&self) -> axum::Router {
        http::router(self.exporter.clone())
    }

    /// OTLP/gRPC `TraceService`.
    pub fn grpc_routes(&self) -> tonic::service::Routes {
        grpc::routes(self.exporter.clone())
    }

    pub fn readiness(&self) -> Arc<dyn Readiness> {
        self.exporter.clone()
    }
}

/// Serves both front ends until `shutdown` is cancelled, then drains in-flight requests.
pub async fn serve(config: IngestConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let ingest = Ingest::build(&config).await?;
    let http_listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("failed to bind OTLP/HTTP on {}", config.http_addr))?;
    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| format!("failed to bind OTLP/gRPC on {}", config.grpc_addr))?;
    tracing::info!(http = %config.http_addr, grpc = %config.grpc_addr, "ingest listening");
    let http = axum::serve(http_listener, ingest.http_router())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let grpc = grpc::serve(ingest.grpc_routes(), grpc_listener, shutdown.clone());
    let (http, grpc) = tokio::join!(http, grpc);
    http.context("OTLP/HTTP server failed")?;
    grpc.context("OTLP/gRPC server failed")?;
    Ok(())
}
