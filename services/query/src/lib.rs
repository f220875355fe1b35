//! The query service: the dashboard (sign-up, login, onboarding, API keys, members) and the JSON
//! API over one tenant's traces (trace by id, search, services and operations),
//! authenticated with read-scope API keys. It reads ClickHouse
//! through the tenant-scoped layer and PostgreSQL for keys; it never writes spans.

mod api;
mod auth;
mod config;
mod dashboard;
mod metrics;
mod params;
mod view;

pub use config::QueryConfig;

use anyhow::Context;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use weft_runtime::health::Readiness;
use weft_runtime::metrics::Registry;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::ClickHouse;
use weft_storage::postgres::{KeyCache, Postgres};

/// Shared state of the handlers.
pub struct QueryState {
    pub(crate) store: ClickHouse,
    pub(crate) postgres: Postgres,
    pub(crate) keys: KeyCache,
    pub(crate) dashboard: dashboard::Dashboard,
}

/// The wired service: its state, and the connection revocations arrive on.
pub struct Query {
    state: Arc<QueryState>,
    bus: weft_bus::Bus,
    metrics: metrics::QueryMetrics,
    registry: Arc<Registry>,
}

impl Query {
    /// Connects to NATS (retrying in the background) and PostgreSQL (lazily), and sets
    /// up the ClickHouse client. Binds no port.
    pub async fn build(config: QueryConfig) -> anyhow::Result<Query> {
        let postgres = Postgres::connect_lazy(&config.postgres)
            .context("failed to configure the PostgreSQL pool")?;
        let bus = weft_bus::Bus::connect(config.bus.clone())
            .await
            .context("failed to connect to NATS")?;
        let secret = match &config.session_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                tracing::warn!(
                    "WEFT_SESSION_SECRET is unset: sessions end when this process stops and do not work across replicas"
                );
                let mut secret = vec![0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
                secret
            }
        };
        let state = Arc::new(QueryState {
            store: ClickHouse::new(config.clickhouse.clone()),
            keys: KeyCache::new(postgres.clone(), config.key_cache_ttl, 100_000),
            postgres,
            dashboard: dashboard::Dashboard {
                sessions: dashboard::SessionKeys::new(
                    &secret,
                    config.session_ttl,
                    config.secure_cookies,
                ),
                bus: bus.clone(),
                ingest_http_url: config.public_ingest_http_url.clone(),
                ingest_grpc_url: config.public_ingest_grpc_url.clone(),
            },
        });
        let metrics = metrics::QueryMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        state.keys.register_metrics(&mut registry);
        Ok(Query {
            state,
            bus,
            metrics,
            registry: Arc::new(registry),
        })
    }

    /// The whole HTTP surface: dashboard, API, health and metrics endpoints.
    pub fn router(&self) -> axum::Router {
        let readiness: Arc<dyn Readiness> = self.state.clone();
        api::routes(self.state.clone())
            .merge(dashboard::routes(self.state.clone()))
            .route_layer(axum::middleware::from_fn_with_state(
                self.metrics.clone(),
                metrics::time_requests,
            ))
            .merge(weft_runtime::health::routes(
                readiness,
                self.registry.clone(),
            ))
            .layer(axum::middleware::from_fn(
                weft_runtime::tracing_context::http,
            ))
    }

    /// Serves until `shutdown`, then drains in-flight requests. Every replica forgets a
    /// revoked read key at once, not after its cache TTL.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let revocations = self
            .bus
            .subscribe::<weft_bus::KeyRevoked>()
            .await
            .context("failed to subscribe to key revocations")?;
        let state = self.state.clone();
        let forget = tokio::spawn(revocations.follow(shutdown.clone(), move |revoked| {
            if let Some(digest) = revoked.digest() {
                state.keys.forget(&digest);
            }
        }));
        tracing::info!(addr = %listener.local_addr()?, "query listening");
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        forget.await.context("the revocation listener panicked")?;
        served.context("query server failed")
    }
}

impl Readiness for QueryState {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            self.store
                .ping()
                .await
                .map_err(|_| "clickhouse".to_owned())?;
            self.postgres
                .ping()
                .await
                .map_err(|_| "postgres".to_owned())
        })
    }
}
