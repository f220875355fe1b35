//! Query configuration from `WEFT_*` variables.

use std::net::SocketAddr;
use std::time::Duration;
use weft_runtime::config::{ConfigError, Env};
use weft_storage::clickhouse::ClickHouseConfig;
use weft_storage::postgres::PostgresConfig;

#[derive(Clone, Debug)]
pub struct QueryConfig {
    pub http_addr: SocketAddr,
    pub clickhouse: ClickHouseConfig,
    pub postgres: PostgresConfig,
    pub key_cache_ttl: Duration,
}

impl QueryConfig {
    /// Reads `WEFT_QUERY_HTTP_ADDR` (default `0.0.0.0:8080`), `WEFT_KEY_CACHE_TTL` (`5s`),
    /// and the ClickHouse and database variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(QueryConfig {
            http_addr: env.get(
                "WEFT_QUERY_HTTP_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 8080)),
            )?,
            clickhouse: ClickHouseConfig::from_env(env)?,
            postgres: PostgresConfig::from_env(env)?,
            key_cache_ttl: env.duration("WEFT_KEY_CACHE_TTL", Duration::from_secs(5))?,
        })
    }
}
