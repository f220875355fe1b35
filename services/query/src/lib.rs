//! The query service: the dashboard (sign-up, login, onboarding, API keys, members) and the JSON
//! API over one tenant's traces (trace by id, search, services and operations),
//! authenticated with read-scope API keys. It reads ClickHouse
//! through the tenant-scoped layer and PostgreSQL for keys; it never writes spans.

mod api;
mod auth;
mod config;
mod dashboard;
mod params;
mod view;

pub use config::QueryConfig;

use anyhow::Context;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use weft_runtime::health::Readiness;
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

/// The whole HTTP surface: dashboard, API and health endpoints.
pub async fn router(config: &QueryConfig) -> anyhow::Result<axum::Router> {
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
            bus,
            ingest_http_url: config.public_ingest_http_url.clone(),
            ingest_grpc_url: config.public_ingest_grpc_url.clone(),
        },
    });
    // Every replica forgets a revoked read key at once, not after its cache TTL.
    let revocations = Arc::downgrade(&state);
    state
        .dashboard
        .bus
        .on_key_revoked(move |digest| {
            if let Some(state) = revocations.upgrade() {
                state.keys.forget(&digest);
            }
        })
        .await
        .context("failed to subscribe to key revocations")?;
    Ok(api::routes(state.clone())
        .merge(dashboard::routes(state.clone()))
        .merge(weft_runtime::health::routes(state)))
}

pub async fn serve(config: QueryConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let router = router(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("failed to bind the query API on {}", config.http_addr))?;
    tracing::info!(addr = %config.http_addr, "query listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("query server failed")
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
