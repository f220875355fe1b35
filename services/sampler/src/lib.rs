//! The sampler: owns a set of span partitions (through the bus's partition consumer),
//! turns OTLP spans into rows, computes RED metrics and service edges from every span,
//! and writes spans, the trace index and the metrics to ClickHouse in batches. A message
//! is acknowledged only after everything it carried is written; for now every span is
//! kept.

mod config;
mod edges;
mod metrics;
mod red;
mod rows;
mod writer;

pub use config::SamplerConfig;

use anyhow::Context;
use metrics::SamplerMetrics;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use weft_bus::{BatchHandler, Bus, ConsumerConfig, Envelope, Signal};
use weft_model::Partition;
use weft_runtime::health::Readiness;
use weft_runtime::metrics::Registry;
use weft_runtime::shutdown::CancellationToken;
use weft_runtime::tracing_context::TraceContext;
use weft_storage::clickhouse::ClickHouse;
use weft_storage::clickhouse::SpanRow;
use writer::{MessageRef, WriteRequest, Written};

/// The consumer group of the sampler's durable consumers.
pub const CONSUMER_GROUP: &str = "sampler";

/// The wired service.
pub struct Sampler {
    config: SamplerConfig,
    bus: Bus,
    store: ClickHouse,
    metrics: SamplerMetrics,
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
        let metrics = SamplerMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        bus.metrics().register_consuming(&mut registry);
        Ok(Sampler {
            config,
            bus,
            store,
            metrics,
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
        let handler = Arc::new(SpanHandler {
            bus: self.bus.clone(),
            writer_tx,
            metrics: self.metrics.clone(),
            calls: Mutex::new(edges::CallTracker::new(
                self.config.edges.window,
                self.config.edges.max_spans,
            )),
        });
        let consumer = ConsumerConfig {
            group: CONSUMER_GROUP.to_owned(),
            signal: Signal::Spans,
            fetch_batch: self.config.consumer.fetch_batch,
            fetch_wait: self.config.consumer.fetch_wait,
            ack_wait: self.config.consumer.ack_wait,
        };
        let consume = async {
            let result = weft_bus::consume(
                &self.bus,
                consumer,
                &self.config.partitions,
                handler,
                shutdown.clone(),
            )
            .await;
            // Every handler (and with it every sender of the writer) is gone now.
            writer.await.context("the writer panicked")?;
            result.context("consuming span partitions failed")
        };
        let (health, consumed) = tokio::join!(health, consume);
        health.context("health endpoint failed")?;
        consumed
    }
}

/// Turns a batch of span messages into rows and metrics, one write request per message,
/// and waits until the writer has stored them; a message ClickHouse refuses for its data
/// goes to the dead-letter stream, so it neither blocks its partition nor is lost.
struct SpanHandler {
    bus: Bus,
    writer_tx: mpsc::Sender<WriteRequest>,
    metrics: SamplerMetrics,
    /// Spans of recent traces, shared by the partitions (a trace lives in one).
    calls: Mutex<edges::CallTracker>,
}

impl SpanHandler {
    fn rows(&self, partition: Partition, envelope: &Envelope) -> Option<Vec<SpanRow>> {
        let parent = envelope
            .traceparent
            .as_deref()
            .and_then(TraceContext::parse);
        let context = parent.map_or_else(TraceContext::root, |p| p.child());
        let _span = context.span("sampler decode", parent.as_ref()).entered();
        let decoded = ExportTraceServiceRequest::decode(envelope.payload.clone())
            .map_err(|e| format!("invalid protobuf: {e}"))
            .and_then(|request| rows::span_rows(envelope.tenant, request));
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

impl BatchHandler for SpanHandler {
    async fn handle(&self, partition: Partition, batch: Vec<Envelope>) -> bool {
        let mut waiting = Vec::with_capacity(batch.len());
        for envelope in batch {
            let Some(spans) = self.rows(partition, &envelope) else {
                continue;
            };
            let message = envelope.stream_sequence;
            // Metrics count every span the message carried, before any sampling decision.
            let span_metrics = red::span_metrics(message, &spans);
            let edges = {
                let mut calls = self.calls.lock().expect("call tracker lock");
                let edges = calls.observe(std::time::Instant::now(), message, &spans);
                self.metrics.call_tracker_spans.set(calls.held() as i64);
                edges
            };
            // A tail-sampling decision goes here: it keeps some of `spans`; the metrics
            // above stay as they are.
            let (written_tx, written_rx) = oneshot::channel();
            let request = WriteRequest {
                message: MessageRef {
                    sequence: message,
                    redelivered: envelope.redelivered,
                },
                tenant: envelope.tenant,
                spans,
                span_metrics,
                edges,
                written: written_tx,
            };
            if self.writer_tx.send(request).await.is_err() {
                return false;
            }
            waiting.push((envelope, written_rx));
        }
        for (envelope, written_rx) in waiting {
            match written_rx.await {
                Ok(Written::Stored) => {}
                Ok(Written::Refused(reason)) => {
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
                Err(_) => return false,
            }
        }
        true
    }
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
