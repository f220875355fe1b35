//! OTLP ingest: accepts traces and logs over gRPC and HTTP (protobuf or JSON, optionally gzip),
//! resolves the API key to a tenant, admits the request against the tenant's rate,
//! validates items, splits each request by trace-id partition and answers only after
//! JetStream has acknowledged every part. Log lines of structured loggers arrive as JSON
//! lines too (`jsonlines.rs`).

mod config;
mod export;
mod grpc;
mod http;
mod jsonlines;
mod metrics;
mod rate;
mod signal;
mod split;
mod usage;

pub use config::IngestConfig;

use anyhow::Context;
use export::Exporter;
use std::sync::Arc;
use tokio::net::TcpListener;
use weft_bus::{Bus, KeyRevoked};
use weft_runtime::metrics::Registry;
use weft_runtime::service::bind;
use weft_runtime::shutdown::{CancellationToken, draining};
use weft_storage::postgres::{KeyCache, Postgres};

/// How long the last usage counts may take to reach PostgreSQL on shutdown.
const USAGE_FLUSH_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The ports ingest serves on.
pub struct IngestListeners {
    /// OTLP/HTTP, `/healthz`, `/readyz` and `/metrics`.
    pub http: TcpListener,
    /// OTLP/gRPC.
    pub grpc: TcpListener,
}

impl IngestListeners {
    pub async fn bind(config: &IngestConfig) -> anyhow::Result<Self> {
        Ok(IngestListeners {
            http: bind(config.http_addr, "OTLP/HTTP").await?,
            grpc: bind(config.grpc_addr, "OTLP/gRPC").await?,
        })
    }
}

/// The wired service: the export pipeline behind both front ends, and what runs beside
/// them (usage flushing, key revocations).
pub struct Ingest {
    exporter: Arc<Exporter>,
    bus: Bus,
    postgres: Postgres,
    registry: Arc<Registry>,
    config: IngestConfig,
}

impl Ingest {
    /// Connects to NATS and PostgreSQL (both lazily, so the service starts and reports
    /// itself not ready while they come up) and builds the pipeline. Binds no port.
    pub async fn build(config: IngestConfig) -> anyhow::Result<Ingest> {
        let bus = Bus::connect(config.bus.clone())
            .await
            .context("failed to connect to NATS")?;
        let postgres = Postgres::connect_lazy(&config.postgres)
            .context("failed to configure the PostgreSQL pool")?;
        let keys = KeyCache::new(postgres.clone(), config.key_cache_ttl, 100_000);
        let exporter = Arc::new(Exporter::new(
            bus.clone(),
            postgres.clone(),
            keys,
            config.limits,
        ));
        let mut registry = Registry::default();
        exporter.metrics.register(&mut registry);
        exporter.keys().register_metrics(&mut registry);
        bus.metrics().register_publishing(&mut registry);
        Ok(Ingest {
            exporter,
            bus,
            postgres,
            registry: Arc::new(registry),
            config,
        })
    }

    /// OTLP/HTTP plus `/healthz`, `/readyz` and `/metrics`.
    pub fn http_router(&self) -> axum::Router {
        http::router(self.exporter.clone())
            .merge(weft_runtime::health::routes(
                self.exporter.clone(),
                self.registry.clone(),
            ))
            .layer(axum::middleware::from_fn(
                weft_runtime::tracing_context::http,
            ))
    }

    /// Serves both front ends until `shutdown`, then drains in-flight requests and
    /// writes the last usage counts: a graceful restart loses no count.
    pub async fn serve(
        self,
        listeners: IngestListeners,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let revocations = self
            .bus
            .subscribe::<KeyRevoked>()
            .await
            .context("failed to subscribe to key revocations")?;
        let exporter = self.exporter.clone();
        let forget = tokio::spawn(revocations.follow(shutdown.clone(), move |revoked| {
            if let Some(digest) = revoked.digest() {
                exporter.keys().forget(&digest);
            }
        }));
        let streams = {
            let (bus, shutdown) = (self.bus.clone(), shutdown.clone());
            tokio::spawn(async move { bus.ensure_streams_until_ready(&shutdown).await })
        };
        // Stopped only after both servers have answered their last request.
        let drained = CancellationToken::new();
        let usage = {
            let (exporter, postgres, drained) = (
                self.exporter.clone(),
                self.postgres.clone(),
                drained.clone(),
            );
            let interval = self.config.usage_flush_interval;
            tokio::spawn(async move {
                exporter
                    .usage
                    .run(postgres, interval, drained, USAGE_FLUSH_GRACE)
                    .await;
            })
        };
        tracing::info!(
            http = %listeners.http.local_addr()?,
            grpc = %listeners.grpc.local_addr()?,
            "ingest listening"
        );
        let http = axum::serve(listeners.http, self.http_router())
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let grpc = grpc::serve(
            grpc::routes(self.exporter.clone()),
            listeners.grpc,
            shutdown.clone(),
        );
        let (http, grpc) = tokio::join!(
            draining("ingest", "open OTLP/HTTP connections", &shutdown, http),
            draining("ingest", "open OTLP/gRPC connections", &shutdown, grpc),
        );
        drained.cancel();
        draining("ingest", "the last usage counts", &shutdown, usage)
            .await
            .context("the usage flusher panicked")?;
        draining("ingest", "the revocation listener", &shutdown, forget)
            .await
            .context("the revocation listener panicked")?;
        streams.abort();
        http.context("OTLP/HTTP server failed")?;
        grpc.context("OTLP/gRPC server failed")?;
        Ok(())
    }
}
