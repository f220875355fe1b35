//! The query service: the JSON API over one tenant's traces (trace by id, search,
//! services and operations), authenticated with read-scope API keys. It reads ClickHouse
//! through the tenant-scoped layer and PostgreSQL for keys; it never writes spans.

mod api;
mod auth;
mod config;
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
}

/// The whole HTTP surface: API and health endpoints.
pub fn router(config: &QueryConfig) -> anyhow::Result<axum::Router> {
    let postgres = Postgres::connect_lazy(&config.postgres)
        .context("failed to configure the PostgreSQL pool")?;
    let state = Arc::new(QueryState {
        store: ClickHouse::new(config.clickhouse.clone()),
        keys: KeyCache::new(postgres.clone(), config.key_cache_ttl, 100_000),
        postgres,
    });
    Ok(api::routes(state.clone()).merge(weft_runtime::health::routes(state)))
}

pub async fn serve(config: QueryConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let router = router(&config)?;
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
