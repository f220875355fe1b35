//! Query configuration from `WEFT_*` variables.

use std::net::SocketAddr;
use std::time::Duration;
use weft_bus::BusConfig;
use weft_runtime::config::{ConfigError, Env};
use weft_storage::clickhouse::ClickHouseConfig;
use weft_storage::postgres::PostgresConfig;

#[derive(Clone, Debug)]
pub struct QueryConfig {
    pub http_addr: SocketAddr,
    pub clickhouse: ClickHouseConfig,
    pub postgres: PostgresConfig,
    pub key_cache_ttl: Duration,
    /// Where key revocations are announced.
    pub bus: BusConfig,
    /// Signs session tokens and CSRF tokens; random per process when unset.
    pub session_secret: Option<String>,
    pub session_ttl: Duration,
    /// Marks cookies `Secure`; on whenever the dashboard is served over HTTPS.
    pub secure_cookies: bool,
    /// The ingest endpoints shown to users on the set-up page.
    pub public_ingest_http_url: String,
    pub public_ingest_grpc_url: String,
}

impl QueryConfig {
    /// Reads `WEFT_QUERY_HTTP_ADDR` (default `0.0.0.0:8080`), `WEFT_KEY_CACHE_TTL` (`5s`),
    /// `WEFT_SESSION_SECRET` (random per process), `WEFT_SESSION_TTL` (`12h`),
    /// `WEFT_SECURE_COOKIES` (`false`), `WEFT_PUBLIC_INGEST_HTTP_URL` and
    /// `WEFT_PUBLIC_INGEST_GRPC_URL`, and the ClickHouse, database and bus variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let config = QueryConfig {
            http_addr: env.get(
                "WEFT_QUERY_HTTP_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 8080)),
            )?,
            clickhouse: ClickHouseConfig::from_env(env)?,
            postgres: PostgresConfig::from_env(env)?,
            key_cache_ttl: env.duration("WEFT_KEY_CACHE_TTL", Duration::from_secs(5))?,
            bus: BusConfig::from_env(env)?,
            session_secret: env.raw("WEFT_SESSION_SECRET").map(str::to_owned),
            session_ttl: env.duration("WEFT_SESSION_TTL", Duration::from_secs(12 * 3600))?,
            secure_cookies: env.get("WEFT_SECURE_COOKIES", false)?,
            public_ingest_http_url: env
                .string("WEFT_PUBLIC_INGEST_HTTP_URL", "http://127.0.0.1:4318"),
            public_ingest_grpc_url: env
                .string("WEFT_PUBLIC_INGEST_GRPC_URL", "http://127.0.0.1:4317"),
        };
        env.check(
            "WEFT_SESSION_SECRET",
            config.session_secret.as_ref().is_none_or(|s| s.len() >= 32),
            "must be at least 32 characters",
        )?;
        Ok(config)
    }
}
