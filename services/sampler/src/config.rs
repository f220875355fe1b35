//! Sampler configuration from `WEFT_*` variables.

use std::net::SocketAddr;
use std::time::Duration;
use weft_bus::BusConfig;
use weft_model::PartitionSet;
use weft_model::sampling::SamplingPolicy;
use weft_runtime::config::{ConfigError, Env};
use weft_storage::clickhouse::ClickHouseConfig;
use weft_storage::postgres::PostgresConfig;

/// How each partition consumer pulls.
#[derive(Clone, Copy, Debug)]
pub struct ConsumerConfig {
    /// Messages per pull request.
    pub fetch_batch: usize,
    /// Unacknowledged messages per partition, at most: a message waits for the decisions
    /// of its traces, so this many may be waiting at once.
    pub max_in_flight: usize,
    /// How long a pull waits for messages when the partition is quiet.
    pub fetch_wait: Duration,
    /// JetStream redelivers a message not acknowledged (or marked in progress) this long.
    pub ack_wait: Duration,
}

/// When the writer flushes.
#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    pub flush_interval: Duration,
    pub max_batch_spans: usize,
    /// How long shutdown waits for a pending write before leaving it to redelivery.
    pub shutdown_grace: Duration,
}

/// How long and how much the service-edge tracker remembers (see `edges.rs`).
#[derive(Clone, Copy, Debug)]
pub struct EdgeConfig {
    /// A trace's spans are remembered this long after its first span arrived.
    pub window: Duration,
    /// Spans remembered in all; past it the oldest traces are forgotten.
    pub max_spans: usize,
}

/// How traces wait for their decision (see `sampling.rs`).
#[derive(Clone, Debug)]
pub struct SamplingConfig {
    /// A trace is decided this long after its first span arrived at the latest.
    pub decision_wait: Duration,
    /// ... or earlier, once its root span arrived and no span came for this long.
    pub quiet_time: Duration,
    /// Past either limit the oldest traces are decided early.
    pub max_buffered_spans: usize,
    pub max_buffered_bytes: usize,
    /// Decided traces remembered, so their late spans follow the decision.
    pub decision_cache: usize,
    /// How long a tenant's policy is trusted without an announcement.
    pub policy_ttl: Duration,
    /// The policy of tenants without one of their own.
    pub default_policy: SamplingPolicy,
}

#[derive(Clone, Debug)]
pub struct SamplerConfig {
    pub http_addr: SocketAddr,
    pub bus: BusConfig,
    pub clickhouse: ClickHouseConfig,
    pub partitions: PartitionSet,
    pub consumer: ConsumerConfig,
    pub writer: WriterConfig,
    pub edges: EdgeConfig,
    pub sampling: SamplingConfig,
    pub postgres: PostgresConfig,
}

impl SamplerConfig {
    /// Reads `WEFT_SAMPLER_HTTP_ADDR` (default `0.0.0.0:8081`), `WEFT_SAMPLER_PARTITIONS`
    /// (`all`, or a list like `0-7,12`), `WEFT_SAMPLER_FETCH_BATCH` (512),
    /// `WEFT_SAMPLER_FETCH_WAIT` (`500ms`), `WEFT_SAMPLER_ACK_WAIT` (`30s`),
    /// `WEFT_SAMPLER_FLUSH_INTERVAL` (`1s`), `WEFT_SAMPLER_MAX_BATCH_SPANS` (100000),
    /// `WEFT_SAMPLER_SHUTDOWN_GRACE` (`10s`), `WEFT_SAMPLER_EDGE_WINDOW` (`1m`),
    /// `WEFT_SAMPLER_EDGE_MAX_SPANS` (500000), `WEFT_SAMPLER_MAX_IN_FLIGHT` (20000),
    /// `WEFT_SAMPLER_DECISION_WAIT` (`10s`), `WEFT_SAMPLER_QUIET_TIME` (`2s`),
    /// `WEFT_SAMPLER_MAX_BUFFERED_SPANS` (1000000), `WEFT_SAMPLER_MAX_BUFFERED_BYTES`
    /// (1 GiB), `WEFT_SAMPLER_DECISION_CACHE` (1000000), `WEFT_SAMPLER_POLICY_TTL` (`30s`),
    /// `WEFT_SAMPLER_DEFAULT_POLICY`, and the bus, ClickHouse and PostgreSQL variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let bus = BusConfig::from_env(env)?;
        let spec = env.string("WEFT_SAMPLER_PARTITIONS", "all");
        let partitions = PartitionSet::parse(&spec, bus.partitions).map_err(|e| ConfigError {
            name: "WEFT_SAMPLER_PARTITIONS".to_owned(),
            value: spec.clone(),
            reason: e.to_string(),
        })?;
        let config = SamplerConfig {
            http_addr: env.get(
                "WEFT_SAMPLER_HTTP_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 8081)),
            )?,
            clickhouse: ClickHouseConfig::from_env(env)?,
            partitions,
            consumer: ConsumerConfig {
                fetch_batch: env.get("WEFT_SAMPLER_FETCH_BATCH", 512)?,
                max_in_flight: env.get("WEFT_SAMPLER_MAX_IN_FLIGHT", 20_000)?,
                fetch_wait: env.duration("WEFT_SAMPLER_FETCH_WAIT", Duration::from_millis(500))?,
                ack_wait: env.duration("WEFT_SAMPLER_ACK_WAIT", Duration::from_secs(30))?,
            },
            writer: WriterConfig {
                flush_interval: env
                    .duration("WEFT_SAMPLER_FLUSH_INTERVAL", Duration::from_secs(1))?,
                max_batch_spans: env.get("WEFT_SAMPLER_MAX_BATCH_SPANS", 100_000)?,
                shutdown_grace: env
                    .duration("WEFT_SAMPLER_SHUTDOWN_GRACE", Duration::from_secs(10))?,
            },
            edges: EdgeConfig {
                window: env.duration("WEFT_SAMPLER_EDGE_WINDOW", Duration::from_secs(60))?,
                max_spans: env.get("WEFT_SAMPLER_EDGE_MAX_SPANS", 500_000)?,
            },
            sampling: SamplingConfig {
                decision_wait: env
                    .duration("WEFT_SAMPLER_DECISION_WAIT", Duration::from_secs(10))?,
                quiet_time: env.duration("WEFT_SAMPLER_QUIET_TIME", Duration::from_secs(2))?,
                max_buffered_spans: env.get("WEFT_SAMPLER_MAX_BUFFERED_SPANS", 1_000_000)?,
                max_buffered_bytes: env.get("WEFT_SAMPLER_MAX_BUFFERED_BYTES", 1 << 30)?,
                decision_cache: env.get("WEFT_SAMPLER_DECISION_CACHE", 1_000_000)?,
                policy_ttl: env.duration("WEFT_SAMPLER_POLICY_TTL", Duration::from_secs(30))?,
                default_policy: default_policy(env)?,
            },
            postgres: PostgresConfig::from_env(env)?,
            bus,
        };
        env.check(
            "WEFT_SAMPLER_FETCH_BATCH",
            config.consumer.fetch_batch > 0,
            "must be at least 1",
        )?;
        env.check(
            "WEFT_SAMPLER_ACK_WAIT",
            config.consumer.ack_wait >= Duration::from_secs(3),
            "must be at least 3s",
        )?;
        env.check(
            "WEFT_SAMPLER_DECISION_WAIT",
            config.sampling.decision_wait >= Duration::from_millis(100),
            "must be at least 100ms",
        )?;
        env.check(
            "WEFT_SAMPLER_QUIET_TIME",
            config.sampling.quiet_time >= Duration::from_millis(20)
                && config.sampling.quiet_time <= config.sampling.decision_wait,
            "must be at least 20ms and at most the decision wait",
        )?;
        env.check(
            "WEFT_SAMPLER_MAX_IN_FLIGHT",
            config.consumer.max_in_flight >= config.consumer.fetch_batch,
            "must be at least WEFT_SAMPLER_FETCH_BATCH",
        )?;
        env.check(
            "WEFT_SAMPLER_EDGE_MAX_SPANS",
            config.edges.max_spans > 0,
            "must be at least 1",
        )?;
        env.check(
            "WEFT_SAMPLER_PARTITIONS",
            !config.partitions.is_empty(),
            "must name a partition",
        )?;
        Ok(config)
    }
}

/// `WEFT_SAMPLER_DEFAULT_POLICY`: the JSON of the policy for tenants without their own
/// (by default keep errors, keep slow traces, keep 10 % of the rest), or `keep-all`.
fn default_policy(env: &Env) -> Result<SamplingPolicy, ConfigError> {
    const NAME: &str = "WEFT_SAMPLER_DEFAULT_POLICY";
    let text = env.string(NAME, "");
    match text.trim() {
        "" => Ok(SamplingPolicy::default()),
        "keep-all" => Ok(SamplingPolicy::keep_all()),
        json => SamplingPolicy::from_json(json.as_bytes()).map_err(|e| ConfigError {
            name: NAME.to_owned(),
            value: text.clone(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_checked_against_the_partition_count() {
        let config = SamplerConfig::from_env(&Env::default()).unwrap();
        assert_eq!(config.partitions.len(), 16);
        let env = Env::from_pairs([("WEFT_PARTITIONS", "4"), ("WEFT_SAMPLER_PARTITIONS", "2-5")]);
        let error = SamplerConfig::from_env(&env).unwrap_err().to_string();
        assert!(error.contains("WEFT_SAMPLER_PARTITIONS"), "{error}");
        assert!(error.contains("out of range"), "{error}");
    }

    #[test]
    fn the_default_policy_is_checked_at_start() {
        let config = SamplerConfig::from_env(&Env::default()).unwrap();
        assert_eq!(config.sampling.default_policy, SamplingPolicy::default());
        let env = Env::from_pairs([("WEFT_SAMPLER_DEFAULT_POLICY", "keep-all")]);
        let config = SamplerConfig::from_env(&env).unwrap();
        assert_eq!(config.sampling.default_policy, SamplingPolicy::keep_all());
        let env = Env::from_pairs([(
            "WEFT_SAMPLER_DEFAULT_POLICY",
            r#"{"rules": [{"name": "x", "probability": 2}]}"#,
        )]);
        let error = SamplerConfig::from_env(&env).unwrap_err().to_string();
        assert!(error.contains("rules[0].probability"), "{error}");
    }
}
