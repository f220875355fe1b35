//! Owning partitions: one durable pull consumer per partition of a signal, pulling
//! batches, handing them to a [`BatchHandler`], keeping them alive with progress acks
//! while the handler works, and acknowledging them only once the handler says that
//! everything they carried is durable. The sampler and alerting both consume this way.

use crate::metrics::PartitionLabels;
use crate::{Bus, BusError, Signal, TENANT_HEADER, TRACEPARENT_HEADER};
use async_nats::jetstream::{self, AckKind, consumer::pull};
use bytes::Bytes;
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use weft_model::{Partition, PartitionSet, TenantId};
use weft_runtime::shutdown::CancellationToken;

/// How a consumer group reads a signal.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The durable consumers' group name (`sampler`, `alerting`): replicas of one group
    /// share a partition's consumer, different groups each see every message.
    pub group: String,
    pub signal: Signal,
    pub fetch_batch: usize,
    pub fetch_wait: Duration,
    /// How long JetStream waits for an ack before redelivering; progress acks are sent
    /// every half of it while a batch is being handled.
    pub ack_wait: Duration,
    /// Messages of one partition handed to the handler and not yet acknowledged, at most
    /// (at least `fetch_batch`).
    pub max_in_flight: usize,
}

/// One message as the bus carried it: the tenant from its header, the OTLP payload, and
/// the W3C trace context of the request that published it. A handler that holds the
/// envelope for long (the sampler, until its traces are decided) may drop the payload
/// once it is decoded: the message stays in the stream until it is acknowledged, and
/// [`crate::Bus::dead_letter`] reads it back from there by its sequence.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub tenant: TenantId,
    pub payload: Bytes,
    pub traceparent: Option<String>,
    /// Whether JetStream delivered this message before (a crash or a failed write).
    pub redelivered: bool,
    /// The message's sequence in its stream: the same on every delivery and unique in
    /// the stream, so it identifies the message (for counting it once). 0 if JetStream
    /// sent no delivery info, which it always does for a pull consumer.
    pub stream_sequence: u64,
}

/// What a consumer group does with a pulled batch of one partition.
pub trait BatchHandler: Send + Sync + 'static {
    /// Resolves `true` once everything `batch` carried is durable, so the messages may be
    /// acknowledged; `false` leaves them to be redelivered (for example on shutdown).
    fn handle(
        &self,
        partition: Partition,
        batch: Vec<Envelope>,
    ) -> impl Future<Output = bool> + Send;
}

/// Consumes `partitions` of `config.signal` until `shutdown`, each partition in its own
/// task; returns once every partition has stopped. Waits for the streams to exist first.
pub async fn consume<H: BatchHandler>(
    bus: &Bus,
    config: ConsumerConfig,
    partitions: &PartitionSet,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    if !bus.ensure_streams_until_ready(&shutdown).await {
        return Ok(());
    }
    let stream = bus
        .jetstream
        .get_stream(bus.subjects.stream(config.signal))
        .await
        .map_err(|e| BusError::Stream(e.to_string()))?;
    let mut tasks = JoinSet::new();
    for partition in partitions.iter() {
        let owner = PartitionOwner {
            bus: bus.clone(),
            config: config.clone(),
            partition,
            handler: handler.clone(),
            labels: PartitionLabels {
                signal: config.signal.as_str(),
                partition: partition.0,
            },
        };
        tasks.spawn(owner.run(stream.clone(), shutdown.clone()));
    }
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                shutdown.cancel();
                result = Err(error);
            }
            Err(panic) => {
                shutdown.cancel();
                result = Err(BusError::Consumer(format!(
                    "a partition task panicked: {panic}"
                )));
            }
        }
    }
    result
}

struct PartitionOwner<H> {
    bus: Bus,
    config: ConsumerConfig,
    partition: Partition,
    handler: Arc<H>,
    labels: PartitionLabels,
}

impl<H: BatchHandler> PartitionOwner<H> {
    async fn run(
        self,
        stream: jetstream::stream::Stream,
        shutdown: CancellationToken,
    ) -> Result<(), BusError> {
        let subjects = self.bus.subjects();
        let name = subjects.consumer(&self.config.group, self.config.signal, self.partition);
        let max_in_flight = self.config.max_in_flight.max(self.config.fetch_batch);
        let consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: subjects.partition(self.config.signal, self.partition),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    max_ack_pending: max_in_flight as i64,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| BusError::Consumer(format!("failed to create consumer {name}: {e}")))?;
        tracing::info!(partition = self.partition.0, consumer = %name, "consuming");
        let owner = Arc::new(self);
        // Batches are handled side by side: a handler may hold a batch for seconds (the
        // sampler waits for its traces' decisions), and the partition keeps flowing
        // meanwhile, up to `max_in_flight` unacknowledged messages.
        let in_flight = Arc::new(Semaphore::new(max_in_flight));
        let mut handling: JoinSet<Result<(), BusError>> = JoinSet::new();
        let mut result = Ok(());
        while !shutdown.is_cancelled() {
            while let Some(done) = handling.try_join_next() {
                if let Err(error) = joined(done) {
                    result = Err(error);
                    break;
                }
            }
            if result.is_err() {
                break;
            }
            let room = tokio::select! {
                _ = shutdown.cancelled() => break,
                room = in_flight.clone().acquire_many_owned(owner.config.fetch_batch as u32) => {
                    room.expect("the semaphore is never closed")
                }
            };
            let batch = tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = owner.pull(&consumer) => batch,
            };
            match batch {
                Ok(messages) if messages.is_empty() => {}
                Ok(messages) => {
                    // Hold a slot per message pulled until it is acknowledged or left.
                    drop(room);
                    let slots = in_flight
                        .clone()
                        .try_acquire_many_owned(messages.len() as u32)
                        .expect("the slots were just released by this loop alone");
                    let owner = owner.clone();
                    handling.spawn(async move {
                        let processed = owner.process(messages).await;
                        drop(slots);
                        processed
                    });
                }
                Err(error) => {
                    tracing::warn!(partition = owner.partition.0, %error, "pull failed, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
        // Handlers resolve once what they hold is durable, or at shutdown with `false`.
        while let Some(done) = handling.join_next().await {
            if let Err(error) = joined(done) {
                result = Err(error);
            }
        }
        result
    }

    async fn pull(
        &self,
        consumer: &jetstream::consumer::Consumer<pull::Config>,
    ) -> Result<Vec<jetstream::Message>, BusError> {
        let mut batch = consumer
            .batch()
            .max_messages(self.config.fetch_batch)
            .expires(self.config.fetch_wait)
            .messages()
            .await
            .map_err(|e| BusError::Consumer(format!("pull request failed: {e}")))?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            messages.push(message.map_err(|e| BusError::Consumer(format!("pull failed: {e}")))?);
        }
        Ok(messages)
    }

    async fn process(&self, messages: Vec<jetstream::Message>) -> Result<(), BusError> {
        let metrics = self.bus.metrics();
        let mut envelopes = Vec::with_capacity(messages.len());
        let mut carried = Vec::with_capacity(messages.len());
        for mut message in messages {
            let info = message
                .info()
                .ok()
                .map(|i| (i.delivered, i.pending, i.stream_sequence));
            if let Some((_, pending, _)) = info {
                metrics
                    .consumer_lag
                    .get_or_create(&self.labels)
                    .set(pending as i64);
            }
            let redelivered = info.is_some_and(|(delivered, _, _)| delivered > 1);
            if redelivered {
                metrics.redeliveries.get_or_create(&self.labels).inc();
            }
            match tenant_of(&message) {
                Ok(tenant) => {
                    // Only the envelope holds the payload; the message kept to be
                    // acknowledged does not, so a handler can let it go.
                    let payload = std::mem::take(&mut message.message.payload);
                    envelopes.push(Envelope {
                        tenant,
                        payload,
                        traceparent: header(&message, TRACEPARENT_HEADER),
                        redelivered,
                        stream_sequence: info.map_or(0, |(_, _, sequence)| sequence),
                    });
                    carried.push(message);
                }
                Err(reason) => {
                    // Only Weft's ingest publishes here and it always sets the header; a
                    // message without one would block the partition, so it is terminated
                    // and logged where an operator can find it.
                    tracing::error!(partition = self.partition.0, %reason, subject = %message.subject, "terminating a message without a tenant");
                    let _ = message.ack_with(AckKind::Term).await;
                }
            }
        }
        if carried.is_empty() {
            return Ok(());
        }
        let handled = self.handler.handle(self.partition, envelopes);
        tokio::pin!(handled);
        let mut keep_alive = tokio::time::interval(self.config.ack_wait / 2);
        keep_alive.tick().await;
        let durable = loop {
            tokio::select! {
                durable = &mut handled => break durable,
                _ = keep_alive.tick() => {
                    for message in &carried {
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                }
            }
        };
        if !durable {
            return Ok(());
        }
        for message in &carried {
            message
                .ack()
                .await
                .map_err(|e| BusError::Consumer(format!("failed to acknowledge a message: {e}")))?;
        }
        self.bus
            .client
            .flush()
            .await
            .map_err(|e| BusError::Consumer(format!("failed to flush acknowledgements: {e}")))?;
        metrics
            .messages_consumed
            .get_or_create(&self.labels)
            .inc_by(carried.len() as u64);
        Ok(())
    }
}

fn joined(done: Result<Result<(), BusError>, tokio::task::JoinError>) -> Result<(), BusError> {
    match done {
        Ok(processed) => processed,
        Err(panic) => Err(BusError::Consumer(format!(
            "a batch handler panicked: {panic}"
        ))),
    }
}

fn header(message: &jetstream::Message, name: &str) -> Option<String> {
    Some(message.headers.as_ref()?.get(name)?.as_str().to_owned())
}

fn tenant_of(message: &jetstream::Message) -> Result<TenantId, String> {
    header(message, TENANT_HEADER)
        .ok_or("missing tenant header")?
        .parse::<TenantId>()
        .map_err(|e| e.to_string())
}
