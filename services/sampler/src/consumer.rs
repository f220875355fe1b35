//! One partition's durable pull consumer: pull a batch of messages, hand their rows to
//! the writer, keep the messages alive with progress acks while the write is retried,
//! and acknowledge them once written.

use crate::config::ConsumerConfig;
use crate::rows::span_rows;
use crate::writer::WriteRequest;
use anyhow::Context;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use weft_bus::{Bus, TENANT_HEADER};
use weft_model::{Partition, TenantId};
use weft_runtime::shutdown::CancellationToken;

pub struct PartitionConsumer {
    bus: Bus,
    stream: jetstream::stream::Stream,
    partition: Partition,
    config: ConsumerConfig,
    writer_tx: mpsc::Sender<WriteRequest>,
}

impl PartitionConsumer {
    pub fn new(
        bus: Bus,
        stream: jetstream::stream::Stream,
        partition: Partition,
        config: ConsumerConfig,
        writer_tx: mpsc::Sender<WriteRequest>,
    ) -> Self {
        PartitionConsumer {
            bus,
            stream,
            partition,
            config,
            writer_tx,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let name = self.bus.subjects().sampler_consumer(self.partition);
        let consumer: jetstream::consumer::Consumer<pull::Config> = self
            .stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: self.bus.subjects().spans(self.partition),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    max_ack_pending: (self.config.fetch_batch * 2) as i64,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("failed to create consumer {name}: {e}"))?;
        tracing::info!(partition = self.partition.0, consumer = %name, "consuming");
        while !shutdown.is_cancelled() {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = self.pull(&consumer) => batch,
            };
            match batch {
                Ok(messages) if messages.is_empty() => {}
                Ok(messages) => self.process(messages).await?,
                Err(error) => {
                    tracing::warn!(partition = self.partition.0, %error, "pull failed, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
        Ok(())
    }

    async fn pull(
        &self,
        consumer: &jetstream::consumer::Consumer<pull::Config>,
    ) -> anyhow::Result<Vec<jetstream::Message>> {
        let mut batch = consumer
            .batch()
            .max_messages(self.config.fetch_batch)
            .expires(self.config.fetch_wait)
            .messages()
            .await
            .context("pull request failed")?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            messages.push(message.map_err(|e| anyhow::anyhow!("pull failed: {e}"))?);
        }
        Ok(messages)
    }

    async fn process(&self, messages: Vec<jetstream::Message>) -> anyhow::Result<()> {
        let mut spans = Vec::new();
        let mut carried = Vec::with_capacity(messages.len());
        for message in messages {
            match decode(&message) {
                Ok((tenant, request)) => {
                    spans.extend(span_rows(tenant, request));
                    carried.push(message);
                }
                Err(reason) => {
                    // A message that can never be decoded would block the partition
                    // forever; it is terminated, and logged so it can be found.
                    tracing::error!(partition = self.partition.0, %reason, subject = %message.subject, "dropping undecodable message");
                    let _ = message.ack_with(AckKind::Term).await;
                }
            }
        }
        if carried.is_empty() {
            return Ok(());
        }
        let (written_tx, mut written_rx) = oneshot::channel();
        self.writer_tx
            .send(WriteRequest {
                spans,
                written: written_tx,
            })
            .await
            .context("the writer stopped")?;
        let mut keep_alive = tokio::time::interval(self.config.ack_wait / 3);
        keep_alive.tick().await;
        let written = loop {
            tokio::select! {
                written = &mut written_rx => break written.is_ok(),
                _ = keep_alive.tick() => {
                    for message in &carried {
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                }
            }
        };
        if !written {
            // Shutdown gave up on the write: leave the messages for redelivery.
            return Ok(());
        }
        for message in &carried {
            message
                .ack()
                .await
                .map_err(|e| anyhow::anyhow!("failed to acknowledge a message: {e}"))?;
        }
        self.bus
            .client()
            .flush()
            .await
            .context("failed to flush acknowledgements")?;
        tracing::debug!(
            partition = self.partition.0,
            messages = carried.len(),
            "acknowledged"
        );
        Ok(())
    }
}

fn decode(message: &jetstream::Message) -> Result<(TenantId, ExportTraceServiceRequest), String> {
    let tenant = message
        .headers
        .as_ref()
        .and_then(|h| h.get(TENANT_HEADER))
        .ok_or("missing tenant header")?
        .as_str()
        .parse::<TenantId>()
        .map_err(|e| e.to_string())?;
    let request = ExportTraceServiceRequest::decode(message.payload.clone())
        .map_err(|e| format!("invalid protobuf: {e}"))?;
    Ok((tenant, request))
}
