//! The NATS JetStream layout of Weft: subject and stream names under a configurable
//! prefix, stream set-up, the tenant header, and publishing with a bounded number of
//! unacknowledged publishes.

mod subjects;

pub use subjects::Subjects;

use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, connection::State};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use weft_model::{Partition, TenantId};
use weft_runtime::config::{ConfigError, Env};

/// Header carrying the tenant id of a message.
pub const TENANT_HEADER: &str = "Weft-Tenant";

/// Why the bus could not take a message.
#[derive(Debug, thiserror::Error)]
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
            max_bytes: 8 << 30,
            replicas: 1,
            publish_timeout: Duration::from_secs(5),
            max_pending_publishes: 512,
        }
    }
}

impl BusConfig {
    /// Reads `WEFT_NATS_URL`, `WEFT_BUS_PREFIX`, `WEFT_PARTITIONS`, `WEFT_STREAM_MAX_AGE`,
    /// `WEFT_STREAM_MAX_BYTES`, `WEFT_STREAM_REPLICAS`, `WEFT_PUBLISH_TIMEOUT` and
    /// `WEFT_MAX_PENDING_PUBLISHES`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = BusConfig::default();
        let config = BusConfig {
            url: env.string("WEFT_NATS_URL", &d.url),
            prefix: env.string("WEFT_BUS_PREFIX", &d.prefix),
            partitions: env.get("WEFT_PARTITIONS", d.partitions)?,
            max_age: env.duration("WEFT_STREAM_MAX_AGE", d.max_age)?,
            max_bytes: env.bytes("WEFT_STREAM_MAX_BYTES", d.max_bytes as usize)? as i64,
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
    streams_ready: Arc<AtomicBool>,
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
            streams_ready: Arc::new(AtomicBool::new(false)),
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

    /// Creates the span stream if it does not exist (idempotent; safe from every replica).
    pub async fn ensure_streams(&self) -> Result<stream::Stream, BusError> {
        let stream = self
            .jetstream
            .get_or_create_stream(stream::Config {
                name: self.subjects.spans_stream(),
                subjects: vec![self.subjects.spans_all()],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::New,
                max_age: self.config.max_age,
                max_bytes: self.config.max_bytes,
                num_replicas: self.config.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::Stream(e.to_string()))?;
        self.streams_ready.store(true, Ordering::Relaxed);
        Ok(stream)
    }

    /// Keeps trying [`Bus::ensure_streams`] in the background until it succeeds.
    pub fn ensure_streams_in_background(&self) {
        let bus = self.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            while let Err(error) = bus.ensure_streams().await {
                tracing::warn!(%error, "span stream not ready, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
    }

    /// Publishes one batch of spans of one tenant and partition and waits for JetStream's
    /// acknowledgement: only then is the batch durable.
    pub async fn publish_spans(
        &self,
        tenant: TenantId,
        partition: Partition,
        payload: Bytes,
    ) -> Result<(), BusError> {
        if !self.is_connected() {
            return Err(BusError::Disconnected);
        }
        let _permit = self
            .publish_permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let mut headers = HeaderMap::new();
        headers.insert(TENANT_HEADER, tenant.to_string().as_str());
        let timeout = self.config.publish_timeout;
        let publish = async {
            let ack = self
                .jetstream
                .publish_with_headers(self.subjects.spans(partition), headers, payload)
                .await
                .map_err(|e| BusError::Publish(e.to_string()))?;
            ack.await.map_err(|e| BusError::Publish(e.to_string()))
        };
        match tokio::time::timeout(timeout, publish).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(BusError::AckTimeout(timeout)),
        }
    }

    /// Tells every cache of API keys (on every replica) that a key was revoked. Plain
    /// NATS: a replica that misses it still drops the key when its cache entry expires.
    pub async fn announce_key_revoked(&self, digest: &[u8; 32]) -> Result<(), BusError> {
        self.client
            .publish(self.subjects.key_revocations(), hex::encode(digest).into())
            .await
            .map_err(|e| BusError::Publish(e.to_string()))?;
        self.client
            .flush()
            .await
            .map_err(|e| BusError::Publish(e.to_string()))
    }

    /// Calls `forget` with the digest of every key revoked from now on, until the
    /// connection is dropped.
    pub async fn on_key_revoked(
        &self,
        forget: impl Fn([u8; 32]) + Send + 'static,
    ) -> Result<(), BusError> {
        let mut revocations = self
            .client
            .subscribe(self.subjects.key_revocations())
            .await
            .map_err(|e| BusError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            while let Some(message) = futures::StreamExt::next(&mut revocations).await {
                match hex::decode(&message.payload)
                    .ok()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                {
                    Some(digest) => forget(digest),
                    None => tracing::warn!("ignoring a malformed key revocation"),
                }
            }
        });
        Ok(())
    }

    /// Deletes this prefix's streams; used by tests to leave nothing behind.
    pub async fn delete_streams(&self) -> Result<(), BusError> {
        match self
            .jetstream
            .delete_stream(self.subjects.spans_stream())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(BusError::Stream(e.to_string())),
        }
    }
}
