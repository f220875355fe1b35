//! Ingest configuration from `WEFT_*` variables.

use std::net::SocketAddr;
use std::time::Duration;
use weft_bus::BusConfig;
use weft_runtime::config::{ConfigError, Env};
use weft_storage::postgres::PostgresConfig;

/// Request size limits, applied before and after decompression.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest HTTP body as sent (compressed when gzip).
    pub max_request_bytes: usize,
    /// Largest request after decompression; also the gRPC message limit.
    pub max_decompressed_bytes: usize,
    /// Spans per second a tenant may send to this replica, unless it has its own limit.
    pub spans_per_second: u32,
    /// Log records per second a tenant may send to this replica, unless it has its own
    /// limit; counted apart from spans, so logs never use up the span budget.
    pub logs_per_second: u32,
    /// Log bytes per second (uncompressed export bodies) a tenant may send to this
    /// replica, unless it has its own limit; checked beside the record rate.
    pub log_bytes_per_second: u64,
    /// How far ahead of this replica's clock an item's times may be.
    pub max_future_skew: Duration,
}

#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub bus: BusConfig,
    pub postgres: PostgresConfig,
    pub limits: Limits,
    /// How long a resolved API key is trusted before it is looked up again.
    pub key_cache_ttl: Duration,
    /// How often counted usage is written to PostgreSQL.
    pub usage_flush_interval: Duration,
}

impl IngestConfig {
    /// Reads `WEFT_INGEST_GRPC_ADDR` (default `0.0.0.0:4317`), `WEFT_INGEST_HTTP_ADDR`
    /// (`0.0.0.0:4318`), `WEFT_INGEST_MAX_REQUEST_BYTES` (`4MiB`),
    /// `WEFT_INGEST_MAX_DECOMPRESSED_BYTES` (`16MiB`), `WEFT_TENANT_SPANS_PER_SECOND`
    /// (100000), `WEFT_TENANT_LOGS_PER_SECOND` (100000), `WEFT_TENANT_LOG_BYTES_PER_SECOND`
    /// (`50MiB`), `WEFT_KEY_CACHE_TTL` (`5s`), and the bus and database variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let config = IngestConfig {
            grpc_addr: env.get(
                "WEFT_INGEST_GRPC_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 4317)),
            )?,
            http_addr: env.get(
                "WEFT_INGEST_HTTP_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 4318)),
            )?,
            bus: BusConfig::from_env(env)?,
            postgres: PostgresConfig::from_env(env)?,
            limits: Limits {
                max_request_bytes: env.bytes("WEFT_INGEST_MAX_REQUEST_BYTES", 4 << 20)?,
                max_decompressed_bytes: env
                    .bytes("WEFT_INGEST_MAX_DECOMPRESSED_BYTES", 16 << 20)?,
                spans_per_second: env.get("WEFT_TENANT_SPANS_PER_SECOND", 100_000)?,
                logs_per_second: env.get("WEFT_TENANT_LOGS_PER_SECOND", 100_000)?,
                log_bytes_per_second: env.bytes("WEFT_TENANT_LOG_BYTES_PER_SECOND", 50 << 20)?
                    as u64,
                max_future_skew: env
                    .duration("WEFT_INGEST_MAX_FUTURE_SKEW", Duration::from_secs(3600))?,
            },
            key_cache_ttl: env.duration("WEFT_KEY_CACHE_TTL", Duration::from_secs(5))?,
            usage_flush_interval: env
                .duration("WEFT_USAGE_FLUSH_INTERVAL", Duration::from_secs(10))?,
        };
        env.check(
            "WEFT_TENANT_SPANS_PER_SECOND",
            config.limits.spans_per_second > 0,
            "must be at least 1",
        )?;
        env.check(
            "WEFT_TENANT_LOGS_PER_SECOND",
            config.limits.logs_per_second > 0,
            "must be at least 1",
        )?;
        env.check(
            "WEFT_TENANT_LOG_BYTES_PER_SECOND",
            config.limits.log_bytes_per_second > 0,
            "must be at least 1B",
        )?;
        // ClickHouse 18.16 stores times in 32-bit seconds, which end in 2106.
        env.check(
            "WEFT_INGEST_MAX_FUTURE_SKEW",
            config.limits.max_future_skew <= Duration::from_secs(366 * 24 * 3600),
            "must be at most 366d",
        )?;
        env.check(
            "WEFT_INGEST_MAX_DECOMPRESSED_BYTES",
            config.limits.max_decompressed_bytes >= config.limits.max_request_bytes,
            "must be at least WEFT_INGEST_MAX_REQUEST_BYTES",
        )?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_locally_and_bad_values_are_refused() {
        let config = IngestConfig::from_env(&Env::default()).unwrap();
        assert_eq!(config.grpc_addr.port(), 4317);
        assert_eq!(config.limits.max_request_bytes, 4 << 20);
        assert_eq!(config.limits.log_bytes_per_second, 50 << 20);
        let own = Env::from_pairs([("WEFT_TENANT_LOG_BYTES_PER_SECOND", "2MiB")]);
        assert_eq!(
            IngestConfig::from_env(&own)
                .unwrap()
                .limits
                .log_bytes_per_second,
            2 << 20
        );
        for bad in ["0", "lots", "5 parsecs"] {
            let bad = Env::from_pairs([("WEFT_TENANT_LOG_BYTES_PER_SECOND", bad)]);
            let error = IngestConfig::from_env(&bad).unwrap_err().to_string();
            assert!(
                error.contains("WEFT_TENANT_LOG_BYTES_PER_SECOND"),
                "{error}"
            );
        }
        let bad = Env::from_pairs([("WEFT_INGEST_MAX_DECOMPRESSED_BYTES", "1KiB")]);
        assert!(
            IngestConfig::from_env(&bad)
                .unwrap_err()
                .to_string()
                .contains("at least")
        );
        let bad = Env::from_pairs([("WEFT_INGEST_HTTP_ADDR", "nowhere")]);
        assert!(IngestConfig::from_env(&bad).is_err());
    }
}
