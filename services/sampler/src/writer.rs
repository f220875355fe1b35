//! The writer: collects rows from every partition consumer and writes them to ClickHouse
//! in batches, retrying with backoff while ClickHouse is unavailable. A batch's senders
//! are told only after both its spans and its trace index rows are stored.

use crate::config::WriterConfig;
use crate::metrics::{SamplerMetrics, TableLabels};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::{ClickHouse, SpanRow, TraceIndexRow};

/// Rows of some bus messages; `written` fires once they are durable. Dropping it unfired
/// means "not written": the sender must not acknowledge its messages.
pub struct WriteRequest {
    pub spans: Vec<SpanRow>,
    pub written: oneshot::Sender<()>,
}

pub fn spawn(
    store: ClickHouse,
    config: WriterConfig,
    metrics: SamplerMetrics,
    shutdown: CancellationToken,
) -> (mpsc::Sender<WriteRequest>, JoinHandle<()>) {
    let (requests_tx, requests_rx) = mpsc::channel(1024);
    let writer = Writer { store, metrics };
    let handle = tokio::spawn(run(writer, config, requests_rx, shutdown));
    (requests_tx, handle)
}

struct Writer {
    store: ClickHouse,
    metrics: SamplerMetrics,
}

impl Writer {
    /// One timed INSERT into `table`.
    async fn insert(
        &self,
        table: &'static str,
        spans: &[SpanRow],
        index: &[TraceIndexRow],
    ) -> Result<(), weft_storage::clickhouse::ClickHouseError> {
        let labels = TableLabels { table };
        let started = Instant::now();
        let result = self.store.insert_traces(spans, index).await;
        match &result {
            Ok(()) => self
                .metrics
                .write_seconds
                .get_or_create(&labels)
                .observe(started.elapsed().as_secs_f64()),
            Err(_) => {
                self.metrics.write_failures.get_or_create(&labels).inc();
            }
        }
        result
    }
}

async fn run(
    store: Writer,
    config: WriterConfig,
    mut requests_rx: mpsc::Receiver<WriteRequest>,
    shutdown: CancellationToken,
) {
    let mut pending: Vec<WriteRequest> = Vec::new();
    let mut pending_spans = 0usize;
    let mut deadline = Instant::now();
    loop {
        let flush_due = tokio::select! {
            request = requests_rx.recv() => match request {
                Some(request) => {
                    if pending.is_empty() {
                        deadline = Instant::now() + config.flush_interval;
                    }
                    pending_spans += request.spans.len();
                    pending.push(request);
                    pending_spans >= config.max_batch_spans
                }
                None => {
                    flush(&store, std::mem::take(&mut pending), &shutdown, config.shutdown_grace).await;
                    return;
                }
            },
            _ = tokio::time::sleep_until(deadline), if !pending.is_empty() => true,
            _ = shutdown.cancelled(), if !pending.is_empty() => true,
        };
        if flush_due {
            flush(
                &store,
                std::mem::take(&mut pending),
                &shutdown,
                config.shutdown_grace,
            )
            .await;
            pending_spans = 0;
        }
    }
}

/// Writes the batch, retrying until it succeeds; after shutdown, retries only for the
/// grace period and then gives the batch up to redelivery.
async fn flush(
    store: &Writer,
    batch: Vec<WriteRequest>,
    shutdown: &CancellationToken,
    grace: Duration,
) {
    if batch.is_empty() {
        return;
    }
    // The rows move into one batch; only the acknowledgement senders stay behind.
    let mut spans: Vec<SpanRow> = Vec::with_capacity(batch.iter().map(|r| r.spans.len()).sum());
    let mut written = Vec::with_capacity(batch.len());
    for request in batch {
        spans.extend(request.spans);
        written.push(request.written);
    }
    let index = TraceIndexRow::summarise(&spans);
    let mut spans_written = false;
    let mut delay = Duration::from_millis(100);
    let mut give_up_at: Option<Instant> = None;
    loop {
        // Spans and index are separate INSERTs: once the spans are in, a retry writes
        // only the index, so no span is stored twice.
        let result = if spans_written {
            store.insert("trace_index", &[], &index).await
        } else {
            match store.insert("spans", &spans, &[]).await {
                Ok(()) => {
                    spans_written = true;
                    store.insert("trace_index", &[], &index).await
                }
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, spans = spans.len(), retry_in = ?delay, "clickhouse write failed");
                if shutdown.is_cancelled() {
                    let give_up = *give_up_at.get_or_insert_with(|| Instant::now() + grace);
                    if Instant::now() >= give_up {
                        tracing::warn!(
                            spans = spans.len(),
                            "shutting down with an unwritten batch; it will be redelivered"
                        );
                        return;
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    store.metrics.spans_written.inc_by(spans.len() as u64);
    store.metrics.batch_spans.observe(spans.len() as f64);
    tracing::debug!(spans = spans.len(), traces = index.len(), "batch written");
    for sender in written {
        let _ = sender.send(());
    }
}
