//! The NATS JetStream layout of Weft: one stream per signal (spans, logs) partitioned by
//! trace id, subject and stream names under a configurable prefix, the tenant and trace
//! context headers, publishing with a bounded number of unacknowledged publishes, typed
//! control announcements, and the one way to own partitions and consume them.

mod consumer;
mod control;
pub mod metrics;
mod publish;
mod subjects;
mod trim;

pub use consumer::{BatchHandler, ConsumerConfig, Envelope, consume};
pub use control::{ControlMessage, ControlSubscription, KeyRevoked, PolicyChanged, RuleChanged};
pub use metrics::BusMetrics;
pub use subjects::{Signal, Subjects};

use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, connection::State};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use weft_runtime::config::{ConfigError, Env};
use weft_runtime::shutdown::CancellationToken;

/// Header carrying the tenant id of a message.
pub const TENANT_HEADER: &str = "Weft-Tenant";
/// Header carrying the W3C trace context of the request that published a message.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Header of a dead-lettered message: why it could not be stored.
pub const DEAD_LETTER_REASON_HEADER: &str = "Weft-Dead-Letter-Reason";

/// Why the bus could not take a message.
#[derive(Clone, Debug, thiserror::Error)]
pub enum BusError {
    #[error("nats is not connected")]
    Disconnected,
    #[error("jetstream did not acknowledge within {0:?}")]
    AckTimeout(Duration),
    #[error("jetstream publish failed: {0}")]
    Publish(String),
    #[error("jetstream stream set-up failed: {0}")]
    Stream(String),
    #[error("nats connection failed: {0}")]
    Connect(String),
    #[error("jetstream consumer failed: {0}")]
    Consumer(String),
}

/// Where the bus is and how it is laid out.
#[derive(Clone, Debug)]
pub struct BusConfig {
    pub url: String,
    /// Prefix of every subject and stream, so several stacks can share one server.
    pub prefix: String,
    pub partitions: u16,
    /// Unconsumed messages older than this are dropped by JetStream.
    pub max_age: Duration,
    /// When the stream holds this much, publishes fail (and ingest answers 503) rather
    /// than dropping accepted data.
    pub max_bytes: i64,
    /// The limit of the dead-letter stream (JetStream reserves it up front).
    pub dead_letter_max_bytes: i64,
    /// How often a consuming service purges what every consumer has acknowledged, so
    /// `max_bytes` bounds the backlog, not what ever passed through.
    pub trim_interval: Duration,
    pub replicas: usize,
    pub publish_timeout: Duration,
    pub max_pending_publishes: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            prefix: "weft".to_owned(),
            partitions: 16,
            max_age: Duration::from_secs(7 * 24 * 3600),
            // JetStream reserves each file stream's limit from the server's store up front:
            // two signals and the dead letters reserve 8.5 GiB in all by default.
            max_bytes: 4 << 30,
            dead_letter_max_bytes: 512 << 20,
            trim_interval: Duration::from_secs(10),
            replicas: 1,
            publish_timeout: Duration::from_secs(5),
            max_pending_publishes: 512,
        }
    }
}

impl BusConfig {
    /// Reads `WEFT_NATS_URL`, `WEFT_BUS_PREFIX`, `WEFT_PARTITIONS`, `WEFT_STREAM_MAX_AGE`,
    /// `WEFT_STREAM_MAX_BYTES`, `WEFT_DEADLETTER_MAX_BYTES`, `WEFT_STREAM_TRIM_INTERVAL`, `WEFT_STREAM_REPLICAS`,
    /// `WEFT_PUBLISH_TIMEOUT` and
    /// `WEFT_MAX_PENDING_PUBLISHES`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = BusConfig::default();
        let config = BusConfig {
            url: env.string("WEFT_NATS_URL", &d.url),
            prefix: env.string("WEFT_BUS_PREFIX", &d.prefix),
            partitions: env.get("WEFT_PARTITIONS", d.partitions)?,
            max_age: env.duration("WEFT_STREAM_MAX_AGE", d.max_age)?,
            max_bytes: env.bytes("WEFT_STREAM_MAX_BYTES", d.max_bytes as usize)? as i64,
            dead_letter_max_bytes: env.bytes(
                "WEFT_DEADLETTER_MAX_BYTES",
                d.dead_letter_max_bytes as usize,
            )? as i64,
            trim_interval: env.duration("WEFT_STREAM_TRIM_INTERVAL", d.trim_interval)?,
            replicas: env.get("WEFT_STREAM_REPLICAS", d.replicas)?,
            publish_timeout: env.duration("WEFT_PUBLISH_TIMEOUT", d.publish_timeout)?,
            max_pending_publishes: env
                .get("WEFT_MAX_PENDING_PUBLISHES", d.max_pending_publishes)?,
        };
        env.check(
            "WEFT_PARTITIONS",
            config.partitions > 0,
            "must be at least 1",
        )?;
        env.check(
            "WEFT_BUS_PREFIX",
            !config.prefix.is_empty()
                && config
                    .prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "must be letters, digits, '-' or '_'",
        )?;
        env.check(
            "WEFT_MAX_PENDING_PUBLISHES",
            config.max_pending_publishes > 0,
            "must be at least 1",
        )?;
        Ok(config)
    }

    pub fn subjects(&self) -> Subjects {
        Subjects::new(&self.prefix)
    }
}

/// A connection to NATS with the JetStream context and the publish budget.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: BusConfig,
    subjects: Subjects,
    publish_permits: Arc<Semaphore>,
    lanes: Arc<publish::Lanes>,
    streams_ready: Arc<AtomicBool>,
    metrics: BusMetrics,
}

impl Bus {
    /// Connects, retrying in the background when NATS is not up yet, so a service can
    /// start and report itself not ready instead of exiting.
    pub async fn connect(config: BusConfig) -> Result<Bus, BusError> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .connect(config.url.as_str())
            .await
            .map_err(|e| BusError::Connect(e.to_string()))?;
        let jetstream = jetstream::new(client.clone());
        Ok(Bus {
            client,
            jetstream,
            subjects: config.subjects(),
            publish_permits: Arc::new(Semaphore::new(config.max_pending_publishes)),
            lanes: Arc::default(),
            streams_ready: Arc::new(AtomicBool::new(false)),
            metrics: BusMetrics::default(),
            config,
        })
    }

    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Largest message the server accepts.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// Whether the streams exist and the connection is up.
    pub fn is_ready(&self) -> bool {
        self.is_connected() && self.streams_ready.load(Ordering::Relaxed)
    }

    pub fn metrics(&self) -> &BusMetrics {
        &self.metrics
    }

    /// Creates the stream of every signal that does not exist yet (idempotent; safe from
    /// every replica).
    pub async fn ensure_streams(&self) -> Result<(), BusError> {
        let streams = Signal::ALL
            .iter()
            .map(|signal| {
                (
                    self.subjects.stream(*signal),
                    self.subjects.all_partitions(*signal),
                    self.config.max_bytes,
                )
            })
            .chain([(
                self.subjects.dead_letter_stream(),
                self.subjects.dead_letter_all(),
                self.config.dead_letter_max_bytes,
            )]);
        for (name, subjects, max_bytes) in streams {
            self.jetstream
                .get_or_create_stream(stream::Config {
                    name,
                    subjects: vec![subjects],
                    retention: stream::RetentionPolicy::Limits,
                    storage: stream::StorageType::File,
                    discard: stream::DiscardPolicy::New,
                    max_age: self.config.max_age,
                    max_bytes,
                    num_replicas: self.config.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| BusError::Stream(e.to_string()))?;
        }
        self.streams_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Retries [`Bus::ensure_streams`] with backoff until it succeeds (`true`) or
    /// `shutdown` comes first (`false`).
    pub async fn ensure_streams_until_ready(&self, shutdown: &CancellationToken) -> bool {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.ensure_streams().await {
                Ok(()) => return true,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?delay, "streams not ready, retrying")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Keeps a consumed message that can never be stored in the dead-letter stream, with
    /// its tenant, trace context and `reason`, and waits for JetStream's acknowledgement.
    /// An envelope whose payload its handler dropped is read back from the stream by its
    /// sequence (it is there until acknowledged).
    pub async fn dead_letter(
        &self,
        signal: Signal,
        envelope: &Envelope,
        reason: &str,
    ) -> Result<(), BusError> {
        let mut headers = HeaderMap::new();
        headers.insert(TENANT_HEADER, envelope.tenant.to_string().as_str());
        if let Some(traceparent) = &envelope.traceparent {
            headers.insert(TRACEPARENT_HEADER, traceparent.as_str());
        }
        // Header values are one line; the full reason is in the sampler's log.
        let reason: String = reason
            .chars()
            .take(512)
            .filter(|c| !c.is_control())
            .collect();
        headers.insert(DEAD_LETTER_REASON_HEADER, reason.as_str());
        let payload = if envelope.payload.is_empty() && envelope.stream_sequence != 0 {
            self.jetstream
                .get_stream(self.subjects.stream(signal))
                .await
                .map_err(|e| BusError::Stream(e.to_string()))?
                .get_raw_message(envelope.stream_sequence)
                .await
                .map_err(|e| BusError::Stream(format!("reading a message back: {e}")))?
                .payload
        } else {
            envelope.payload.clone()
        };
        let publish = async {
            self.jetstream
                .publish_with_headers(self.subjects.dead_letter(signal), headers, payload)
                .await
                .map_err(|e| BusError::Publish(e.to_string()))?
                .await
                .map_err(|e| BusError::Publish(e.to_string()))
        };
        match tokio::time::timeout(self.config.publish_timeout, publish).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(BusError::AckTimeout(self.config.publish_timeout)),
        }
    }

    /// Deletes this prefix's streams; used by tests to leave nothing behind.
    pub async fn delete_streams(&self) -> Result<(), BusError> {
        let names = Signal::ALL
            .iter()
            .map(|signal| self.subjects.stream(*signal))
            .chain([self.subjects.dead_letter_stream()]);
        for name in names {
            match self.jetstream.delete_stream(name).await {
                Ok(_) => {}
                Err(e) if e.to_string().contains("not found") => {}
                Err(e) => return Err(BusError::Stream(e.to_string())),
            }
        }
        Ok(())
    }
}
