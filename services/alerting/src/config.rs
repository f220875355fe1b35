//! Alerting configuration from `WEFT_*` variables.

use std::net::SocketAddr;
use std::time::Duration;
use weft_bus::BusConfig;
use weft_model::PartitionSet;
use weft_model::alerting::TargetPolicy;
use weft_runtime::config::{ConfigError, Env};
use weft_storage::clickhouse::ClickHouseConfig;
use weft_storage::postgres::PostgresConfig;

pub use weft_mail::{SmtpConfig, SmtpTls};

/// How deliveries are sent and retried.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// How often due deliveries are claimed.
    pub poll_interval: Duration,
    /// Attempts per delivery before it is given up as failed.
    pub max_attempts: i32,
    /// The first retry waits this long; each next one twice as long (at most 10 min).
    pub retry_base: Duration,
    /// Timeout of one attempt (HTTP request or SMTP conversation).
    pub timeout: Duration,
    /// How long a notification waits for its example trace to be stored.
    pub trace_wait: Duration,
    /// Whether webhooks and Slack may be sent to internal addresses
    /// (`WEFT_ALERTING_ALLOW_PRIVATE_TARGETS`), checked after DNS resolution.
    pub targets: TargetPolicy,
}

#[derive(Clone, Debug)]
pub struct AlertingConfig {
    pub http_addr: SocketAddr,
    pub bus: BusConfig,
    pub clickhouse: ClickHouseConfig,
    pub postgres: PostgresConfig,
    pub partitions: PartitionSet,
    pub fetch_batch: usize,
    pub fetch_wait: Duration,
    pub ack_wait: Duration,
    /// How often aggregate rules are evaluated.
    pub eval_interval: Duration,
    /// How long a tenant's span rules are trusted without an announcement.
    pub rule_ttl: Duration,
    /// This replica's name in claims; unique per replica.
    pub replica_id: String,
    /// The dashboard's address, for the links in notifications.
    pub public_url: String,
    pub delivery: DeliveryConfig,
    pub smtp: SmtpConfig,
}

impl AlertingConfig {
    /// Reads `WEFT_ALERTING_HTTP_ADDR` (default `127.0.0.1:8082`),
    /// `WEFT_ALERTING_PARTITIONS` (`all`), `WEFT_ALERTING_FETCH_BATCH` (256),
    /// `WEFT_ALERTING_FETCH_WAIT` (`500ms`), `WEFT_ALERTING_ACK_WAIT` (`30s`),
    /// `WEFT_ALERTING_EVAL_INTERVAL` (`15s`), `WEFT_ALERTING_RULE_TTL` (`30s`),
    /// `WEFT_ALERTING_REPLICA_ID` (random), `WEFT_PUBLIC_URL` (`http://127.0.0.1:8080`),
    /// `WEFT_ALERTING_DELIVERY_POLL` (`1s`), `WEFT_ALERTING_MAX_ATTEMPTS` (6),
    /// `WEFT_ALERTING_RETRY_BASE` (`5s`), `WEFT_ALERTING_DELIVERY_TIMEOUT` (`10s`),
    /// `WEFT_ALERTING_TRACE_WAIT` (`30s`), the `WEFT_SMTP_*` variables (see
    /// [`SmtpConfig::from_env`]), and the bus, ClickHouse and PostgreSQL variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let bus = BusConfig::from_env(env)?;
        let spec = env.string("WEFT_ALERTING_PARTITIONS", "all");
        let partitions = PartitionSet::parse(&spec, bus.partitions).map_err(|e| ConfigError {
            name: "WEFT_ALERTING_PARTITIONS".to_owned(),
            value: spec.clone(),
            reason: e.to_string(),
        })?;
        let config = AlertingConfig {
            http_addr: env.get(
                "WEFT_ALERTING_HTTP_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 8082)),
            )?,
            clickhouse: ClickHouseConfig::from_env(env)?,
            postgres: PostgresConfig::from_env(env)?,
            partitions,
            fetch_batch: env.get("WEFT_ALERTING_FETCH_BATCH", 256)?,
            fetch_wait: env.duration("WEFT_ALERTING_FETCH_WAIT", Duration::from_millis(500))?,
            ack_wait: env.duration("WEFT_ALERTING_ACK_WAIT", Duration::from_secs(30))?,
            eval_interval: env.duration("WEFT_ALERTING_EVAL_INTERVAL", Duration::from_secs(15))?,
            rule_ttl: env.duration("WEFT_ALERTING_RULE_TTL", Duration::from_secs(30))?,
            replica_id: env.string(
                "WEFT_ALERTING_REPLICA_ID",
                &format!(
                    "alerting-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                ),
            ),
            public_url: env
                .string("WEFT_PUBLIC_URL", "http://127.0.0.1:8080")
                .trim_end_matches('/')
                .to_owned(),
            delivery: DeliveryConfig {
                poll_interval: env
                    .duration("WEFT_ALERTING_DELIVERY_POLL", Duration::from_secs(1))?,
                max_attempts: env.get("WEFT_ALERTING_MAX_ATTEMPTS", 6)?,
                retry_base: env.duration("WEFT_ALERTING_RETRY_BASE", Duration::from_secs(5))?,
                timeout: env.duration("WEFT_ALERTING_DELIVERY_TIMEOUT", Duration::from_secs(10))?,
                trace_wait: env.duration("WEFT_ALERTING_TRACE_WAIT", Duration::from_secs(30))?,
                targets: TargetPolicy::from_allow_private(
                    env.get("WEFT_ALERTING_ALLOW_PRIVATE_TARGETS", false)?,
                ),
            },
            smtp: SmtpConfig::from_env(env)?,
            bus,
        };
        env.check(
            "WEFT_ALERTING_FETCH_BATCH",
            config.fetch_batch > 0,
            "must be at least 1",
        )?;
        env.check(
            "WEFT_ALERTING_ACK_WAIT",
            config.ack_wait >= Duration::from_secs(3),
            "must be at least 3s",
        )?;
        env.check(
            "WEFT_ALERTING_EVAL_INTERVAL",
            config.eval_interval >= Duration::from_millis(100)
                && config.eval_interval <= Duration::from_secs(3600),
            "must be between 100ms and 1h",
        )?;
        env.check(
            "WEFT_ALERTING_MAX_ATTEMPTS",
            (1..=50).contains(&config.delivery.max_attempts),
            "must be between 1 and 50",
        )?;
        env.check(
            "WEFT_ALERTING_RETRY_BASE",
            config.delivery.retry_base >= Duration::from_millis(10),
            "must be at least 10ms",
        )?;
        env.check(
            "WEFT_ALERTING_PARTITIONS",
            !config.partitions.is_empty(),
            "must name a partition",
        )?;
        env.check(
            "WEFT_PUBLIC_URL",
            config.public_url.starts_with("http://") || config.public_url.starts_with("https://"),
            "must be an http or https URL",
        )?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_and_bad_values_are_named() {
        let config = AlertingConfig::from_env(&Env::default()).unwrap();
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8082");
        assert_eq!(config.eval_interval, Duration::from_secs(15));
        let env = Env::from_pairs([("WEFT_ALERTING_EVAL_INTERVAL", "1ms")]);
        let error = AlertingConfig::from_env(&env).unwrap_err().to_string();
        assert!(error.contains("WEFT_ALERTING_EVAL_INTERVAL"), "{error}");
        let env = Env::from_pairs([("WEFT_SMTP_TLS", "maybe")]);
        let error = AlertingConfig::from_env(&env).unwrap_err().to_string();
        assert!(error.contains("WEFT_SMTP_TLS"), "{error}");
    }
}
