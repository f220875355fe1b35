//! The writer: collects rows from every partition consumer and writes them to ClickHouse
//! in batches, retrying with backoff while ClickHouse is unavailable. A request's sender
//! is told only after both its spans and its trace index rows are stored.
//!
//! One batch that can never be stored must not stop storage for every partition and
//! tenant sharing the writer. A failure ClickHouse gives because of the data itself (see
//! [`refused_for_its_data`]) is not retried: the batch is halved, request by request,
//! until the requests that fail are isolated; those are refused (their senders keep the
//! messages in the dead-letter stream) and everything else is written.

use crate::config::WriterConfig;
use crate::metrics::{SamplerMetrics, TableLabels};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::{ClickHouse, ClickHouseError, SpanRow, TraceIndexRow};

/// What became of a request's rows.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Stored,
    /// ClickHouse refuses these rows for what they contain; retrying cannot help.
    Refused(String),
}

/// The rows of one bus message; `written` fires once their fate is durable. Dropping it
/// unfired means "not written": the sender must not acknowledge its message.
pub struct WriteRequest {
    pub spans: Vec<SpanRow>,
    pub written: oneshot::Sender<Written>,
}

pub fn spawn(
    store: ClickHouse,
    config: WriterConfig,
    metrics: SamplerMetrics,
    shutdown: CancellationToken,
) -> (mpsc::Sender<WriteRequest>, JoinHandle<()>) {
    let (requests_tx, requests_rx) = mpsc::channel(1024);
    let writer = Writer {
        store,
        metrics,
        shutdown,
        grace: config.shutdown_grace,
    };
    let handle = tokio::spawn(run(writer, config, requests_rx));
    (requests_tx, handle)
}

/// ClickHouse error codes that mean "these rows can never be inserted" (parse and type
/// errors, values a table's expressions reject). Anything else (network, timeouts,
/// memory, too many parts, a missing table while migrations run) is worth retrying.
const DATA_ERROR_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  // ATTEMPT_TO_READ_AFTER_EOF
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    128, // TOO_LARGE_ARRAY_SIZE
    131, // TOO_LARGE_STRING_SIZE
    190, // SIZES_OF_ARRAYS_DOESNT_MATCH
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
];

/// The server's reason when ClickHouse refused an INSERT because of its rows. Code 252
/// is "too many parts" (retry: merges catch up) except for "too many partitions for a
/// single INSERT block", which no retry fixes.
pub fn refused_for_its_data(error: &ClickHouseError) -> Option<String> {
    let code = error.server_code()?;
    let text = error.to_string();
    let data_error = DATA_ERROR_CODES.contains(&code)
        || (code == 252 && text.to_ascii_lowercase().contains("partitions for"));
    data_error.then_some(text)
}

struct Writer {
    store: ClickHouse,
    metrics: SamplerMetrics,
    shutdown: CancellationToken,
    grace: Duration,
}

/// Requests written together: their rows moved into one vector, with each request's row
/// count so a failing group can be split back at request boundaries.
struct Group {
    spans: Vec<SpanRow>,
    parts: Vec<(usize, oneshot::Sender<Written>)>,
}

impl Group {
    fn of(requests: Vec<WriteRequest>) -> Group {
        let mut spans = Vec::with_capacity(requests.iter().map(|r| r.spans.len()).sum());
        let mut parts = Vec::with_capacity(requests.len());
        for request in requests {
            parts.push((request.spans.len(), request.written));
            spans.extend(request.spans);
        }
        Group { spans, parts }
    }

    fn halves(mut self) -> (Group, Group) {
        let second_parts = self.parts.split_off(self.parts.len() / 2);
        let first_rows: usize = self.parts.iter().map(|(rows, _)| rows).sum();
        let second_spans = self.spans.split_off(first_rows);
        (
            self,
            Group {
                spans: second_spans,
                parts: second_parts,
            },
        )
    }

    fn tell(self, written: impl Fn() -> Written) {
        for (_, sender) in self.parts {
            let _ = sender.send(written());
        }
    }
}

/// How one attempt to store a group ended.
enum Attempt {
    Stored,
    Refused(String),
    /// Shutdown's grace period ran out; the messages are left for redelivery.
    GaveUp,
}

impl Writer {
    /// One timed INSERT.
    async fn insert(
        &self,
        table: &'static str,
        spans: &[SpanRow],
        index: &[TraceIndexRow],
    ) -> Result<(), ClickHouseError> {
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

    /// Writes the batch, isolating requests ClickHouse refuses for their data.
    async fn flush(&self, batch: Vec<WriteRequest>) {
        if batch.is_empty() {
            return;
        }
        let mut groups = vec![Group::of(batch)];
        while let Some(group) = groups.pop() {
            match self.store_group(&group).await {
                Attempt::Stored => group.tell(|| Written::Stored),
                Attempt::Refused(reason) if group.parts.len() == 1 => {
                    self.metrics.requests_refused.inc();
                    tracing::error!(spans = group.spans.len(), %reason, "clickhouse refuses a message's spans");
                    group.tell(|| Written::Refused(reason.clone()));
                }
                Attempt::Refused(_) => {
                    let (first, second) = group.halves();
                    groups.push(second);
                    groups.push(first);
                }
                // Dropping the senders leaves every unwritten message for redelivery.
                Attempt::GaveUp => return,
            }
        }
    }

    /// Writes spans, then their trace index rows, retrying what may succeed later; after
    /// shutdown, retries only for the grace period.
    async fn store_group(&self, group: &Group) -> Attempt {
        let index = TraceIndexRow::summarise(&group.spans);
        let mut spans_written = false;
        let mut delay = Duration::from_millis(100);
        let mut give_up_at: Option<Instant> = None;
        loop {
            // Spans and index are separate INSERTs: once the spans are in, a retry writes
            // only the index, so no span is stored twice.
            if !spans_written {
                match self.insert("spans", &group.spans, &[]).await {
                    Ok(()) => spans_written = true,
                    Err(error) => match refused_for_its_data(&error) {
                        Some(reason) => return Attempt::Refused(reason),
                        None => {
                            tracing::warn!(%error, spans = group.spans.len(), retry_in = ?delay, "clickhouse write failed")
                        }
                    },
                }
            }
            if spans_written {
                match self.insert("trace_index", &[], &index).await {
                    Ok(()) => break,
                    Err(error) => {
                        tracing::warn!(%error, traces = index.len(), retry_in = ?delay, "clickhouse index write failed");
                    }
                }
            }
            if self.shutdown.is_cancelled() {
                let give_up = *give_up_at.get_or_insert_with(|| Instant::now() + self.grace);
                if Instant::now() >= give_up {
                    tracing::warn!(
                        spans = group.spans.len(),
                        "shutting down with an unwritten batch; it will be redelivered"
                    );
                    return Attempt::GaveUp;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        self.metrics.spans_written.inc_by(group.spans.len() as u64);
        self.metrics.batch_spans.observe(group.spans.len() as f64);
        tracing::debug!(
            spans = group.spans.len(),
            traces = index.len(),
            "batch written"
        );
        Attempt::Stored
    }
}

async fn run(writer: Writer, config: WriterConfig, mut requests_rx: mpsc::Receiver<WriteRequest>) {
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
                    writer.flush(std::mem::take(&mut pending)).await;
                    return;
                }
            },
            _ = tokio::time::sleep_until(deadline), if !pending.is_empty() => true,
            _ = writer.shutdown.cancelled(), if !pending.is_empty() => true,
        };
        if flush_due {
            writer.flush(std::mem::take(&mut pending)).await;
            pending_spans = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_response(text: &str) -> ClickHouseError {
        ClickHouseError::Client(::clickhouse::error::Error::BadResponse(text.to_owned()))
    }

    #[test]
    fn only_errors_about_the_data_are_final() {
        let old = "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero";
        let new = "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100). (TOO_MANY_PARTS)";
        assert!(refused_for_its_data(&bad_response(old)).is_some());
        assert!(refused_for_its_data(&bad_response(new)).is_some());
        for retry in [
            "Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts. (TOO_MANY_PARTS)",
            "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)",
            "Code: 60, e.displayText() = DB::Exception: Table weft.spans doesn't exist.",
            "no code at all",
        ] {
            assert_eq!(refused_for_its_data(&bad_response(retry)), None, "{retry}");
        }
    }
}
