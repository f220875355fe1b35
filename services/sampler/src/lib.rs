//! The sampler: owns a set of span partitions (through the bus's partition consumer),
//! turns OTLP spans into rows, and writes them with the trace index to ClickHouse in
//! batches. A message is acknowledged only after everything it carried is written; for
//! now every span is kept.

mod config;
mod metrics;
mod rows;
mod writer;

pub use config::SamplerConfig;

use anyhow::Context;
use metrics::SamplerMetrics;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use weft_bus::{BatchHandler, Bus, ConsumerConfig, Envelope, Signal};
use weft_model::Partition;
use weft_runtime::health::Readiness;
use weft_runtime::metrics::Registry;
use weft_runtime::shutdown::CancellationToken;
use weft_runtime::tracing_context::{self, TraceContext};
use weft_storage::clickhouse::ClickHouse;
use writer::WriteRequest;

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
            writer_tx,
            metrics: self.metrics.clone(),
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

/// Turns a batch of span messages into rows and waits until the writer has stored them.
struct SpanHandler {
    writer_tx: mpsc::Sender<WriteRequest>,
    metrics: SamplerMetrics,
}

impl BatchHandler for SpanHandler {
    async fn handle(&self, partition: Partition, batch: Vec<Envelope>) -> bool {
        let mut spans = Vec::new();
        for envelope in batch {
            let parent = envelope
                .traceparent
                .as_deref()
                .and_then(TraceContext::parse);
            let decoded = tracing_context::within("sampler decode", parent, async {
                let request = ExportTraceServiceRequest::decode(envelope.payload)
                    .map_err(|e| format!("invalid protobuf: {e}"))?;
                rows::span_rows(envelope.tenant, request)
            })
            .await;
            match decoded {
                Ok(rows) => spans.extend(rows),
                Err(reason) => {
                    // Only ingest publishes here, after validating every span; a message
                    // that breaks that would stop the partition for good if retried.
                    self.metrics.messages_refused.inc();
                    tracing::error!(partition = partition.0, tenant_id = %envelope.tenant, %reason, "dropping a message ingest could not have published");
                }
            }
        }
        if spans.is_empty() {
            return true;
        }
        let (written_tx, written_rx) = oneshot::channel();
        let request = WriteRequest {
            spans,
            written: written_tx,
        };
        if self.writer_tx.send(request).await.is_err() {
            return false;
        }
        written_rx.await.is_ok()
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
