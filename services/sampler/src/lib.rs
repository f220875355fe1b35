//! The sampler: owns a set of span partitions (one durable JetStream pull consumer each),
//! turns OTLP spans into rows, and writes them with the trace index to ClickHouse in
//! batches. A message is acknowledged only after everything it carried is written; for
//! now every span is kept.

mod config;
mod consumer;
mod rows;
mod writer;

pub use config::SamplerConfig;

use anyhow::Context;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use weft_bus::Bus;
use weft_runtime::health::Readiness;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::ClickHouse;

/// Runs the consumers and the writer until `shutdown`, then drains: in-flight batches
/// are written and acknowledged before returning.
pub async fn run(config: SamplerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let bus = Bus::connect(config.bus.clone())
        .await
        .context("failed to connect to NATS")?;
    let store = ClickHouse::new(config.clickhouse.clone());
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("failed to bind the health endpoint on {}", config.http_addr))?;
    let readiness: Arc<dyn Readiness> = Arc::new(SamplerReadiness {
        bus: bus.clone(),
        store: store.clone(),
    });
    let health = axum::serve(listener, weft_runtime::health::routes(readiness))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tracing::info!(addr = %config.http_addr, partitions = config.partitions.len(), "sampler starting");
    let (health, work) = tokio::join!(health, consume(config, bus, store, shutdown));
    health.context("health endpoint failed")?;
    work
}

/// The consumers and the writer, without the health endpoint; tests mount this.
pub async fn consume(
    config: SamplerConfig,
    bus: Bus,
    store: ClickHouse,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let stream = loop {
        match bus.ensure_streams().await {
            Ok(stream) => break stream,
            Err(error) => {
                tracing::warn!(%error, "span stream not ready, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let (writer_tx, writer) = writer::spawn(store, config.writer, shutdown.clone());
    let mut consumers = tokio::task::JoinSet::new();
    for partition in config.partitions.iter() {
        let consumer = consumer::PartitionConsumer::new(
            bus.clone(),
            stream.clone(),
            partition,
            config.consumer,
            writer_tx.clone(),
        );
        consumers.spawn(consumer.run(shutdown.clone()));
    }
    drop(writer_tx);
    while let Some(result) = consumers.join_next().await {
        result.context("a partition consumer panicked")??;
    }
    writer.await.context("the writer panicked")?;
    Ok(())
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
