//! Log records from the bus to ClickHouse. Logs are never sampled: every record ingest
//! accepted is stored, once. The sampler owns the log partitions beside the span
//! partitions (the same set), and a batch of log messages is acknowledged only after one
//! INSERT has stored all of its lines.
//!
//! Exactly once as readers see it: every row names its bus message (stream sequence)
//! and its place in it. Before a batch that holds a redelivered message is written, or
//! after an INSERT whose outcome is unknown, the handler asks ClickHouse which of those
//! lines it stores already and leaves them out.
//!
//! A batch ClickHouse refuses for its data is halved until the refused messages are
//! isolated; those go to the dead-letter stream, everything else is written.

use crate::claims::{Claim, Claims};
use crate::wire::logs::pack_logs;
use prometheus_client::metrics::counter::Counter;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use weft_bus::{BatchHandler, Bus, Envelope, Signal};
use weft_model::{Partition, TenantId};
use weft_runtime::metrics::Registry;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::{ClickHouse, ClickHouseError, PackedLogs, StoredLogLine};

pub const LOGS_WRITTEN: &str = "weft_sampler_logs_written";
pub const LOG_LINES_ALREADY_STORED: &str = "weft_sampler_log_lines_already_stored";
pub const LOG_MESSAGES_DEAD_LETTERED: &str = "weft_sampler_log_messages_dead_lettered";
pub const LOG_WRITE_FAILURES: &str = "weft_sampler_log_write_failures";

#[derive(Clone, Default)]
pub struct LogMetrics {
    pub written: Counter,
    pub already_stored: Counter,
    pub dead_lettered: Counter,
    pub write_failures: Counter,
}

impl LogMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            LOGS_WRITTEN,
            "Log lines written to ClickHouse",
            self.written.clone(),
        );
        registry.register(
            LOG_LINES_ALREADY_STORED,
            "Log lines of redelivered messages found stored already, not written again",
            self.already_stored.clone(),
        );
        registry.register(
            LOG_MESSAGES_DEAD_LETTERED,
            "Log messages ClickHouse refused for their data, kept in the dead-letter stream",
            self.dead_lettered.clone(),
        );
        registry.register(
            LOG_WRITE_FAILURES,
            "Failed INSERTs of log lines (retried)",
            self.write_failures.clone(),
        );
    }
}

/// The log partitions' batch handler: decodes, writes with retries, acknowledges.
pub struct LogHandler {
    pub bus: Bus,
    pub store: ClickHouse,
    pub metrics: LogMetrics,
    pub shutdown: CancellationToken,
    /// How long a write is retried after shutdown before it is left to redelivery.
    pub grace: Duration,
    /// Checks of which lines are stored already, at most [`STORED_CHECKS`] at a time: they
    /// read a window of the table, and come in a crowd after ClickHouse failed writes.
    pub checks: tokio::sync::Semaphore,
    /// The messages batches are handling now.
    pub claims: Claims,
}

/// Checks of stored lines one sampler runs side by side, at most.
pub const STORED_CHECKS: usize = 2;

/// How long a lost INSERT may keep running before the write is retried later.
pub const INSERT_END_WAIT: Duration = Duration::from_secs(60);

/// The lines of one message.
struct Part {
    envelope: Envelope,
    rows: PackedLogs,
    /// Delivered before, or part of an INSERT whose outcome is unknown: some of its lines
    /// may be stored already.
    unsure: bool,
}

enum Attempt {
    Stored,
    Refused(String),
    GaveUp,
}

impl LogHandler {
    fn decode(&self, partition: Partition, envelope: &Envelope) -> Option<PackedLogs> {
        match pack_logs(envelope.tenant, envelope.stream_sequence, &envelope.payload) {
            Ok(rows) => Some(rows),
            Err(reason) => {
                tracing::error!(partition = partition.0, tenant_id = %envelope.tenant, %reason, "dropping a log message ingest could not have published");
                None
            }
        }
    }

    /// Leaves out the lines of unsure parts that ClickHouse stores already.
    async fn leave_out_stored(&self, parts: &mut [Part]) -> Result<(), ClickHouseError> {
        let mut by_tenant: HashMap<TenantId, Vec<usize>> = HashMap::new();
        for (index, part) in parts.iter().enumerate() {
            if part.unsure && part.envelope.stream_sequence != 0 && !part.rows.is_empty() {
                by_tenant
                    .entry(part.envelope.tenant)
                    .or_default()
                    .push(index);
            }
        }
        for (tenant, indices) in by_tenant {
            let messages: Vec<u64> = indices
                .iter()
                .map(|&i| parts[i].envelope.stream_sequence)
                .collect();
            let (mut first, mut last) = (u32::MAX, 0);
            for (low, high) in indices.iter().filter_map(|&i| parts[i].rows.seconds()) {
                first = first.min(low);
                last = last.max(high);
            }
            let _check = self.checks.acquire().await.expect("never closed");
            let stored: HashSet<StoredLogLine> = self
                .store
                .tenant(tenant)
                .stored_log_lines(&messages, (first, last))
                .await?
                .into_iter()
                .collect();
            for &i in &indices {
                let part = &mut parts[i];
                let before = part.rows.len();
                let message = part.rows.message();
                part.rows.retain_lines(|message_line| {
                    !stored.contains(&StoredLogLine {
                        message,
                        message_line,
                    })
                });
                let left_out = (before - part.rows.len()) as u64;
                if left_out > 0 {
                    self.metrics.already_stored.inc_by(left_out);
                    tracing::info!(tenant_id = %tenant, message = part.envelope.stream_sequence, lines = left_out, "redelivered log lines are stored already");
                }
                part.unsure = false;
            }
        }
        Ok(())
    }

    /// Stores the parts' lines as one INSERT, retrying what may succeed later.
    async fn store(&self, parts: &mut [Part]) -> Attempt {
        let mut delay = Duration::from_millis(100);
        let mut give_up_at: Option<tokio::time::Instant> = None;
        // An INSERT whose outcome is unknown, and that must have ended before the check.
        let mut lost: Option<String> = None;
        loop {
            let checked = match &lost {
                Some(query_id) => self.store.await_query_end(query_id, INSERT_END_WAIT).await,
                None => Ok(()),
            };
            let checked = match checked {
                Ok(()) => self.leave_out_stored(parts).await,
                Err(error) => Err(error),
            };
            let result: Result<(), ClickHouseError> = match checked {
                Ok(()) => {
                    let query_id = format!("weft-logs-{}", uuid::Uuid::new_v4().simple());
                    let lines: usize = parts.iter().map(|p| p.rows.len()).sum();
                    let messages: Vec<&PackedLogs> = parts.iter().map(|p| &p.rows).collect();
                    match self.store.insert_packed_logs(&messages, &query_id).await {
                        Ok(()) => {
                            self.metrics.written.inc_by(lines as u64);
                            return Attempt::Stored;
                        }
                        Err(error) => {
                            if let Some(reason) = error.refused_rows() {
                                return Attempt::Refused(reason);
                            }
                            // The INSERT may have been applied before the answer was lost,
                            // or may still be running.
                            for part in parts.iter_mut() {
                                part.unsure = true;
                            }
                            lost = Some(query_id);
                            Err(error)
                        }
                    }
                }
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                self.metrics.write_failures.inc();
                tracing::warn!(%error, table = "logs", retry_in = ?delay, "clickhouse write failed");
            }
            if self.shutdown.is_cancelled() {
                let give_up =
                    *give_up_at.get_or_insert_with(|| tokio::time::Instant::now() + self.grace);
                if tokio::time::Instant::now() >= give_up {
                    tracing::warn!(
                        "shutting down with unwritten log lines; they will be redelivered"
                    );
                    return Attempt::GaveUp;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

impl BatchHandler for LogHandler {
    async fn handle(&self, partition: Partition, batch: Vec<Envelope>) -> bool {
        let claim = self
            .claims
            .claim(batch.iter().map(|e| e.stream_sequence))
            .await;
        self.handle_claimed(partition, batch, &claim).await
    }
}

impl LogHandler {
    async fn handle_claimed(
        &self,
        partition: Partition,
        batch: Vec<Envelope>,
        claim: &Claim<'_>,
    ) -> bool {
        let mut parts: Vec<Part> = Vec::with_capacity(batch.len());
        let mut seen = HashSet::new();
        for envelope in batch {
            // A copy of a message earlier in the batch is acknowledged with it.
            if envelope.stream_sequence != 0 && !seen.insert(envelope.stream_sequence) {
                continue;
            }
            if let Some(rows) = self.decode(partition, &envelope) {
                parts.push(Part {
                    unsure: claim.unsure(&envelope),
                    envelope,
                    rows,
                });
            }
        }
        // Groups of parts still to store, as (start, end) indices; a refused group is
        // halved.
        let mut groups = vec![(0, parts.len())];
        let mut refused = Vec::new();
        while let Some((start, end)) = groups.pop() {
            if start == end {
                continue;
            }
            match self.store(&mut parts[start..end]).await {
                Attempt::Stored => {}
                Attempt::Refused(reason) if end - start == 1 => refused.push((start, reason)),
                Attempt::Refused(_) => {
                    let middle = start + (end - start) / 2;
                    groups.push((middle, end));
                    groups.push((start, middle));
                }
                Attempt::GaveUp => return false,
            }
        }
        for (index, reason) in refused {
            let envelope = &parts[index].envelope;
            if let Err(error) = self.bus.dead_letter(Signal::Logs, envelope, &reason).await {
                tracing::warn!(%error, "dead-letter stream unavailable; the log message will be redelivered");
                return false;
            }
            self.metrics.dead_lettered.inc();
            tracing::error!(partition = partition.0, tenant_id = %envelope.tenant, %reason, "log message kept in the dead-letter stream");
        }
        true
    }
}

/// The rows of a message decoded by `prost`: what `wire::logs` must give, packed.
#[cfg(test)]
pub(crate) mod decoded {
    use crate::rows::{UNKNOWN_SERVICE, columns, service_name, text};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use weft_model::{TenantId, severity_name};
    use weft_storage::clickhouse::LogRow;

    /// Rows for every log record of one bus message (`message`: its stream sequence).
    /// Ingest validated ids and times; an id of a wrong length means the message did not
    /// come from ingest, and it is refused whole.
    pub(crate) fn log_rows(
        tenant: TenantId,
        message: u64,
        request: ExportLogsServiceRequest,
    ) -> Result<Vec<LogRow>, String> {
        fn id<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
            if bytes.is_empty() {
                return Ok([0; N]);
            }
            bytes
                .try_into()
                .map_err(|_| format!("{what} of {} bytes on the bus", bytes.len()))
        }
        let mut rows = Vec::new();
        let mut line = 0u32;
        for resource_logs in request.resource_logs {
            let resource = resource_logs
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            let service = service_name(&resource).unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
            let (resource_keys, resource_values) = columns(&resource);
            for scope_logs in resource_logs.scope_logs {
                let (scope_name, scope_version) = scope_logs
                    .scope
                    .map(|s| (s.name, s.version))
                    .unwrap_or_default();
                for record in scope_logs.log_records {
                    let time_unix_nano = if record.time_unix_nano != 0 {
                        record.time_unix_nano
                    } else {
                        record.observed_time_unix_nano
                    };
                    let (attribute_keys, attribute_values) = columns(&record.attributes);
                    let severity_text = if record.severity_text.is_empty() {
                        severity_name(record.severity_number).to_owned()
                    } else {
                        record.severity_text
                    };
                    rows.push(LogRow {
                        tenant_id: tenant.as_uuid(),
                        time: u32::try_from(time_unix_nano / 1_000_000_000).unwrap_or(u32::MAX),
                        time_unix_nano,
                        observed_time_unix_nano: record.observed_time_unix_nano,
                        trace_id: id(&record.trace_id, "trace id")?,
                        span_id: id(&record.span_id, "span id")?,
                        severity_number: u8::try_from(record.severity_number.clamp(0, 24))
                            .unwrap_or(0),
                        severity_text,
                        body: text(record.body.as_ref()),
                        service_name: service.clone(),
                        scope_name: scope_name.clone(),
                        scope_version: scope_version.clone(),
                        attribute_keys,
                        attribute_values,
                        resource_keys: resource_keys.clone(),
                        resource_values: resource_values.clone(),
                        message,
                        message_line: line,
                    });
                    line += 1;
                }
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message as _;

    fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.to_owned())),
            }),
            ..Default::default()
        }
    }

    fn request(bodies: &[&str]) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: bodies
                        .iter()
                        .map(|body| LogRecord {
                            time_unix_nano: 1_764_590_000_000_000_000,
                            body: Some(AnyValue {
                                value: Some(Value::StringValue((*body).to_owned())),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// Against the ClickHouse of `WEFT_TEST_CLICKHOUSE_URL` (a database of its own) and
    /// the NATS of `WEFT_TEST_NATS_URL` (a prefix of its own).
    #[tokio::test]
    async fn a_redelivered_message_is_stored_once() {
        let store = ClickHouse::new(weft_storage::clickhouse::ClickHouseConfig {
            url: std::env::var("WEFT_TEST_CLICKHOUSE_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:8123".into()),
            database: format!("weft_test_{}", uuid::Uuid::new_v4().simple()),
            ..Default::default()
        });
        store.migrate().await.unwrap();
        let bus = Bus::connect(weft_bus::BusConfig {
            url: std::env::var("WEFT_TEST_NATS_URL")
                .unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
            prefix: format!("weft_test_{}", uuid::Uuid::new_v4().simple()),
            ..Default::default()
        })
        .await
        .unwrap();
        let handler = LogHandler {
            bus,
            store: store.clone(),
            metrics: LogMetrics::default(),
            shutdown: CancellationToken::new(),
            grace: Duration::from_secs(1),
            checks: tokio::sync::Semaphore::new(STORED_CHECKS),
            claims: Claims::default(),
        };
        let tenant = TenantId::random();
        let envelope = |sequence: u64, redelivered: bool, bodies: &[&str]| Envelope {
            tenant,
            payload: request(bodies).encode_to_vec().into(),
            traceparent: None,
            redelivered,
            stream_sequence: sequence,
        };
        // Message 7 and, in the same batch, a copy delivered again; then message 8.
        assert!(
            handler
                .handle(
                    Partition(0),
                    vec![
                        envelope(7, false, &["a", "b"]),
                        envelope(7, true, &["a", "b"]),
                        envelope(8, false, &["c"]),
                    ],
                )
                .await
        );
        // Both again (a sampler died before acknowledging them), and message 9, new
        // although delivered before.
        assert!(
            handler
                .handle(
                    Partition(1),
                    vec![
                        envelope(8, true, &["c"]),
                        envelope(7, true, &["a", "b"]),
                        envelope(9, true, &["d"]),
                    ],
                )
                .await
        );
        let search = weft_storage::clickhouse::LogSearch {
            start_unix_nano: 1_764_589_000_000_000_000,
            end_unix_nano: 1_764_591_000_000_000_000,
            limit: 100,
            ..Default::default()
        };
        let lines = store.tenant(tenant).logs(&search).await.unwrap();
        let mut bodies: Vec<&str> = lines.iter().map(|l| l.body.as_str()).collect();
        bodies.sort_unstable();
        assert_eq!(bodies, ["a", "b", "c", "d"]);
        // The copy in the first batch went with the original; the second batch found
        // messages 7 and 8 stored.
        assert_eq!(handler.metrics.already_stored.get(), 3);

        // JetStream delivers message 10 again while its first delivery is still being
        // handled (neither delivery says it was redelivered before the other began):
        // the second waits for the first, finds its lines and stores none again.
        let (first, second) = tokio::join!(
            handler.handle(Partition(2), vec![envelope(10, false, &["e", "f"])]),
            handler.handle(Partition(2), vec![envelope(10, false, &["e", "f"])]),
        );
        assert!(first && second);
        let lines = store.tenant(tenant).logs(&search).await.unwrap();
        let mut bodies: Vec<&str> = lines.iter().map(|l| l.body.as_str()).collect();
        bodies.sort_unstable();
        assert_eq!(bodies, ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(handler.metrics.already_stored.get(), 5);
        assert!(handler.claims.is_empty(), "claims are let go");
        store.drop_database().await.unwrap();
    }

    #[test]
    fn records_become_rows_numbered_within_their_message() {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![string("service.name", "checkout")],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        LogRecord {
                            time_unix_nano: 5_000_000_000,
                            severity_number: 17,
                            body: Some(AnyValue {
                                value: Some(Value::StringValue("card declined".into())),
                            }),
                            attributes: vec![string("customer", "42")],
                            trace_id: vec![1; 16],
                            span_id: vec![2; 8],
                            ..Default::default()
                        },
                        LogRecord {
                            observed_time_unix_nano: 7_000_000_000,
                            severity_text: "notice".into(),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let tenant = TenantId::random();
        let rows = decoded::log_rows(tenant, 9, request).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].service_name, "checkout");
        assert_eq!(rows[0].severity_text, "ERROR");
        assert_eq!(rows[0].body, "card declined");
        assert_eq!((rows[0].trace_id, rows[0].span_id), ([1; 16], [2; 8]));
        assert_eq!(rows[0].attribute_keys, ["customer"]);
        assert_eq!((rows[0].message, rows[0].message_line), (9, 0));
        assert_eq!((rows[1].time, rows[1].time_unix_nano), (7, 7_000_000_000));
        assert_eq!(rows[1].severity_text, "notice");
        assert_eq!((rows[1].trace_id, rows[1].message_line), ([0; 16], 1));
    }
}
