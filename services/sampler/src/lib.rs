//! The sampler: owns a set of span partitions (through the bus's partition consumer),
//! turns OTLP spans into rows, computes RED metrics and service edges from every span
//! before sampling, holds spans per trace until the tenant's policy decides the trace
//! (`sampling.rs`), and writes kept spans, the trace index and the metrics to ClickHouse
//! in batches. A message is acknowledged only after every span it carried is decided and
//! everything kept, and its metrics, are written. It also owns the same partitions of the
//! log stream and stores every log record (`logs.rs`; logs are never sampled).

mod claims;
mod config;
mod edges;
mod logs;
mod metrics;
mod policies;
mod red;
mod rows;
mod sampling;
mod wire;
mod writer;

pub use config::{SamplerConfig, SamplingConfig};

use anyhow::Context;
use metrics::SamplerMetrics;
use policies::PolicyCache;
use sampling::{Admitted, TraceSampler};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use weft_bus::{BatchHandler, Bus, ConsumerConfig, Envelope, Signal};
use weft_bus::{PolicyChanged, RuleChanged};
use weft_model::Partition;
use weft_runtime::health::Readiness;
use weft_runtime::metrics::Registry;
use weft_runtime::shutdown::{CancellationToken, draining};
use weft_runtime::tracing_context::TraceContext;
use weft_storage::clickhouse::ClickHouse;
use weft_storage::clickhouse::PackedSpan;
use weft_storage::postgres::Postgres;
use writer::{MessageRef, WriteRequest, Written};

/// The consumer group of the sampler's durable consumers.
pub const CONSUMER_GROUP: &str = "sampler";

/// The wired service.
pub struct Sampler {
    config: SamplerConfig,
    bus: Bus,
    store: ClickHouse,
    postgres: Postgres,
    metrics: SamplerMetrics,
    log_metrics: logs::LogMetrics,
    registry: Arc<Registry>,
}

impl Sampler {
    /// Connects to NATS (retrying in the background) and sets up the ClickHouse client.
    /// Binds no port.
    pub async fn build(config: SamplerConfig) -> anyhow::Result<Sampler> {
        let bus = Bus::connect(config.bus.clone())
            .await
            .context("failed to connect to NATS")?;
        let store = ClickHouse::new(config.clickhouse.clone());
        let postgres =
            Postgres::connect_lazy(&config.postgres).context("invalid PostgreSQL settings")?;
        let metrics = SamplerMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let log_metrics = logs::LogMetrics::default();
        log_metrics.register(&mut registry);
        bus.metrics().register_consuming(&mut registry);
        Ok(Sampler {
            config,
            bus,
            store,
            postgres,
            metrics,
            log_metrics,
            registry: Arc::new(registry),
        })
    }

    /// `/healthz`, `/readyz` and `/metrics`.
    pub fn health_router(&self) -> axum::Router {
        let readiness: Arc<dyn Readiness> = Arc::new(SamplerReadiness {
            bus: self.bus.clone(),
            store: self.store.clone(),
        });
        weft_runtime::health::routes(readiness, self.registry.clone())
    }

    /// Consumes the owned partitions until `shutdown`, then drains: batches in flight are
    /// written and acknowledged (or, past the grace period, left for redelivery).
    pub async fn serve(
        self,
        health: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        tracing::info!(
            addr = %health.local_addr()?,
            partitions = self.config.partitions.len(),
            "sampler starting"
        );
        let health = axum::serve(health, self.health_router())
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let (writer_tx, writer) = writer::spawn(
            self.store.clone(),
            self.config.writer,
            self.metrics.clone(),
            shutdown.clone(),
        );
        let policies = Arc::new(PolicyCache::new(
            self.postgres.clone(),
            &self.config.sampling.default_policy,
            self.config.sampling.policy_ttl,
            self.metrics.clone(),
        ));
        // Subscribed before consuming, so no change made after the first decision is missed.
        let follow = match self.bus.subscribe::<PolicyChanged>().await {
            Ok(changes) => {
                let policies = policies.clone();
                Some(tokio::spawn(changes.follow(
                    shutdown.clone(),
                    move |changed| {
                        tracing::info!(tenant_id = %changed.tenant_id, "sampling policy changed");
                        policies.forget(changed.tenant_id);
                    },
                )))
            }
            Err(error) => {
                tracing::warn!(%error, "cannot follow policy changes; policies refresh after their TTL");
                None
            }
        };
        // Span-duration alert rules are part of what is kept (see `policies.rs`).
        let follow_rules = match self.bus.subscribe::<RuleChanged>().await {
            Ok(changes) => {
                let policies = policies.clone();
                Some(tokio::spawn(changes.follow(
                    shutdown.clone(),
                    move |changed| {
                        policies.forget(changed.tenant_id);
                    },
                )))
            }
            Err(error) => {
                tracing::warn!(%error, "cannot follow alert rule changes; policies refresh after their TTL");
                None
            }
        };
        let sampler = TraceSampler::new(self.config.sampling.clone(), self.metrics.clone());
        let deciding = tokio::spawn(sampler.clone().run(
            policies,
            writer_tx.clone(),
            shutdown.clone(),
        ));
        let handler = Arc::new(SpanHandler {
            bus: self.bus.clone(),
            writer_tx,
            sampler,
            metrics: self.metrics.clone(),
            calls: Mutex::new(edges::CallTracker::new(
                self.config.edges.window,
                self.config.edges.max_spans,
            )),
            store: self.store.clone(),
            claims: Default::default(),
            checks: tokio::sync::Semaphore::new(logs::STORED_CHECKS),
            shutdown: shutdown.clone(),
        });
        let consumer = ConsumerConfig {
            group: CONSUMER_GROUP.to_owned(),
            signal: Signal::Spans,
            fetch_batch: self.config.consumer.fetch_batch,
            max_in_flight: self.config.consumer.max_in_flight,
            fetch_wait: self.config.consumer.fetch_wait,
            ack_wait: self.config.consumer.ack_wait,
        };
        // Logs are never sampled; the same partitions' log streams are written as they come.
        let log_handler = Arc::new(logs::LogHandler {
            bus: self.bus.clone(),
            store: self.store.clone(),
            metrics: self.log_metrics.clone(),
            shutdown: shutdown.clone(),
            grace: self.config.writer.shutdown_grace,
            checks: tokio::sync::Semaphore::new(logs::STORED_CHECKS),
            claims: Default::default(),
        });
        let log_consumer = ConsumerConfig {
            signal: Signal::Logs,
            ..consumer.clone()
        };
        let consume_logs = async {
            weft_bus::consume(
                &self.bus,
                log_consumer,
                &self.config.partitions,
                log_handler,
                shutdown.clone(),
            )
            .await
            .context("consuming log partitions failed")
        };
        let consume = async {
            let consumed = draining(
                "sampler",
                "the span consumer",
                &shutdown,
                weft_bus::consume(
                    &self.bus,
                    consumer,
                    &self.config.partitions,
                    handler,
                    shutdown.clone(),
                ),
            )
            .await;
            // Every handler is gone now; the decisions stop with the shutdown, and with
            // them the last sender of the writer.
            draining("sampler", "the decision loop", &shutdown, deciding)
                .await
                .context("the decision loop panicked")?;
            for follow in [follow, follow_rules].into_iter().flatten() {
                draining("sampler", "the policy listeners", &shutdown, follow)
                    .await
                    .context("following policy changes panicked")?;
            }
            draining("sampler", "the writer", &shutdown, writer)
                .await
                .context("the writer panicked")?;
            consumed.context("consuming span partitions failed")
        };
        // What every consumer of the sampler's partitions acknowledged leaves the streams.
        let trim = self.bus.trim_until(
            &[Signal::Spans, Signal::Logs],
            CONSUMER_GROUP,
            self.bus.config().trim_interval,
            shutdown.clone(),
        );
        let (health, consumed, logs_consumed, ()) = tokio::join!(
            draining("sampler", "the health endpoint", &shutdown, health),
            consume,
            draining("sampler", "the log consumer", &shutdown, consume_logs),
            draining("sampler", "the stream trim", &shutdown, trim),
        );
        health.context("health endpoint failed")?;
        consumed?;
        logs_consumed
    }
}

/// Turns a batch of span messages into rows and metrics and hands the spans to the trace
/// sampler; resolves once every span of every message is decided and everything kept, and
/// the metrics, are stored. A message ClickHouse refuses for its data goes to the
/// dead-letter stream, so it neither blocks its partition nor is lost.
struct SpanHandler {
    bus: Bus,
    writer_tx: mpsc::Sender<Vec<WriteRequest>>,
    sampler: Arc<TraceSampler>,
    metrics: SamplerMetrics,
    /// Spans of recent traces, shared by the partitions (a trace lives in one).
    calls: Mutex<edges::CallTracker>,
    store: ClickHouse,
    /// The messages batches are handling now.
    claims: claims::Claims,
    /// Look-ups of stored spans, at most [`logs::STORED_CHECKS`] at a time.
    checks: tokio::sync::Semaphore,
    shutdown: CancellationToken,
}

impl SpanHandler {
    fn rows(&self, partition: Partition, envelope: &Envelope) -> Option<Vec<PackedSpan>> {
        let parent = envelope
            .traceparent
            .as_deref()
            .and_then(TraceContext::parse);
        let context = parent.map_or_else(TraceContext::root, |p| p.child());
        let _span = context.span("sampler decode", parent.as_ref()).entered();
        // Read in place into rows: one allocation a span, held until its trace is decided.
        let decoded = wire::pack_request(envelope.tenant, &envelope.payload);
        match decoded {
            Ok(rows) => Some(rows),
            Err(reason) => {
                // Only ingest publishes here, after validating every span; a message that
                // breaks that would stop the partition for good if retried.
                self.metrics.messages_refused.inc();
                tracing::error!(partition = partition.0, tenant_id = %envelope.tenant, %reason, "dropping a message ingest could not have published");
                None
            }
        }
    }
}

/// A request for rows that need no decision (a message's metrics, late spans of a trace
/// decided already), and the receiver told once they are stored.
fn request(
    message: MessageRef,
    tenant: weft_model::TenantId,
    spans: Vec<PackedSpan>,
    span_metrics: Vec<weft_storage::clickhouse::SpanMetricRow>,
    edges: Vec<weft_storage::clickhouse::ServiceEdgeRow>,
) -> (WriteRequest, oneshot::Receiver<Written>) {
    let (written, written_rx) = oneshot::channel();
    let request = WriteRequest {
        message,
        tenant,
        spans,
        span_metrics,
        edges,
        written,
    };
    (request, written_rx)
}

impl BatchHandler for SpanHandler {
    async fn handle(&self, partition: Partition, batch: Vec<Envelope>) -> bool {
        let claim = self
            .claims
            .claim(batch.iter().map(|e| e.stream_sequence))
            .await;
        let mut messages = Vec::with_capacity(batch.len());
        for mut envelope in batch {
            let Some(spans) = self.rows(partition, &envelope) else {
                continue;
            };
            // The spans are packed: the payload would only be held as long (for a dead
            // letter, which reads it back from the stream instead).
            envelope.payload = bytes::Bytes::new();
            let unsure = claim.unsure(&envelope);
            messages.push((envelope, spans, unsure));
        }
        let Some(stored) = self.stored_already(&messages).await else {
            return false;
        };
        let mut waiting = Vec::with_capacity(messages.len());
        // The batch's writes go to the writer in one send.
        let mut writes = Vec::with_capacity(messages.len());
        for (envelope, mut spans, unsure) in messages {
            let message = MessageRef {
                sequence: envelope.stream_sequence,
                redelivered: unsure,
            };
            // Metrics count every span the message carried, before any sampling decision
            // (counted once per message by the writer, however often it comes).
            let span_metrics = red::span_metrics(&spans);
            let edges = {
                let mut calls = self.calls.lock().expect("call tracker lock");
                let edges = calls.observe(std::time::Instant::now(), &spans);
                self.metrics.call_tracker_spans.set(calls.held() as i64);
                edges
            };
            if unsure {
                let before = spans.len();
                spans.retain(|span| !stored.holds(span));
                let left_out = before - spans.len();
                if left_out > 0 {
                    self.metrics.spans_already_stored.inc_by(left_out as u64);
                    tracing::info!(partition = partition.0, tenant_id = %envelope.tenant, message = envelope.stream_sequence, spans = left_out, "spans of a redelivered message are stored already");
                }
            }
            let (counting, counted) =
                request(message, envelope.tenant, Vec::new(), span_metrics, edges);
            writes.push(counting);
            let mut outcomes = vec![counted];
            for (trace_id, spans) in by_trace(spans) {
                match self.sampler.admit(envelope.tenant, trace_id, spans) {
                    Admitted::Waiting(decided) => outcomes.push(decided),
                    Admitted::Late(decided, _) if !decided.keep => {}
                    Admitted::Late(decided, mut spans) => {
                        decided.stamp(&mut spans);
                        let late = MessageRef {
                            sequence: 0,
                            redelivered: false,
                        };
                        let (write, stored) =
                            request(late, envelope.tenant, spans, Vec::new(), Vec::new());
                        writes.push(write);
                        outcomes.push(stored);
                    }
                }
            }
            waiting.push((envelope, outcomes));
        }
        if !writes.is_empty() && self.writer_tx.send(writes).await.is_err() {
            return false;
        }
        for (envelope, outcomes) in waiting {
            let mut refused = None;
            for outcome in outcomes {
                match outcome.await {
                    Ok(Written::Stored) => {}
                    Ok(Written::Refused(reason)) => refused = Some(reason),
                    Err(_) => return false,
                }
            }
            if let Some(reason) = refused {
                if let Err(error) = self
                    .bus
                    .dead_letter(Signal::Spans, &envelope, &reason)
                    .await
                {
                    tracing::warn!(%error, "dead-letter stream unavailable; the message will be redelivered");
                    return false;
                }
                tracing::error!(partition = partition.0, tenant_id = %envelope.tenant, %reason, "message kept in the dead-letter stream");
            }
        }
        true
    }
}

impl SpanHandler {
    /// Which spans of the messages that may have been stored before (see
    /// [`claims`]) the store holds; asked again until ClickHouse answers, `None` once
    /// the sampler stops.
    async fn stored_already(
        &self,
        messages: &[(Envelope, Vec<PackedSpan>, bool)],
    ) -> Option<writer::StoredSpans> {
        let mut unsure: Vec<&PackedSpan> = Vec::new();
        for (_, spans, _) in messages.iter().filter(|(_, _, unsure)| *unsure) {
            unsure.extend(spans);
        }
        if unsure.is_empty() {
            return Some(writer::StoredSpans::default());
        }
        let _check = self.checks.acquire().await.expect("never closed");
        let mut delay = Duration::from_millis(100);
        loop {
            match writer::stored_spans(&self.store, unsure.iter().copied()).await {
                Ok(stored) => return Some(stored),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?delay, "cannot look up the spans of redelivered messages");
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// The spans of a message grouped by trace, in the order the traces first appear.
fn by_trace(spans: Vec<PackedSpan>) -> Vec<([u8; 16], Vec<PackedSpan>)> {
    let mut traces: Vec<([u8; 16], Vec<PackedSpan>)> = Vec::new();
    for span in spans {
        let trace_id = span.trace_id();
        // A message usually holds few traces, often one; a linear look-up beats a map.
        match traces.iter_mut().rev().find(|(id, _)| *id == trace_id) {
            Some((_, group)) => group.push(span),
            None => traces.push((trace_id, vec![span])),
        }
    }
    traces
}

struct SamplerReadiness {
    bus: Bus,
    store: ClickHouse,
}

impl Readiness for SamplerReadiness {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            if !self.bus.is_connected() {
                return Err("nats".to_owned());
            }
            self.store.ping().await.map_err(|_| "clickhouse".to_owned())
        })
    }
}
