//! The sampler's metric names and families (the bus adds consumer lag and redeliveries).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use weft_runtime::metrics::Registry;

pub const SPANS_WRITTEN: &str = "weft_sampler_spans_written";
pub const BATCH_SPANS: &str = "weft_sampler_batch_spans";
pub const WRITE_SECONDS: &str = "weft_clickhouse_write_seconds";
pub const WRITE_FAILURES: &str = "weft_clickhouse_write_failures";
pub const MESSAGES_REFUSED: &str = "weft_sampler_messages_refused";
pub const MESSAGES_DEAD_LETTERED: &str = "weft_sampler_messages_dead_lettered";
pub const METRIC_ROWS_WRITTEN: &str = "weft_sampler_metric_rows_written";
pub const MESSAGES_ALREADY_COUNTED: &str = "weft_sampler_messages_already_counted";
pub const METRIC_ROWS_REFUSED: &str = "weft_sampler_metric_rows_refused";
pub const CALL_TRACKER_SPANS: &str = "weft_sampler_call_tracker_spans";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: &'static str,
}

fn write_buckets() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

#[derive(Clone)]
pub struct SamplerMetrics {
    pub spans_written: Counter,
    pub batch_spans: Histogram,
    pub write_seconds: Family<TableLabels, Histogram, fn() -> Histogram>,
    pub write_failures: Family<TableLabels, Counter>,
    pub messages_refused: Counter,
    /// Messages whose rows ClickHouse refused, kept in the dead-letter stream.
    pub requests_refused: Counter,
    /// Rows written to a metrics table (`span_metrics`, `service_edges`).
    pub metric_rows_written: Family<TableLabels, Counter>,
    /// Messages seen again whose metrics a table already counts, so not counted twice.
    pub messages_already_counted: Family<TableLabels, Counter>,
    /// Metric rows ClickHouse refused for their data, dropped.
    pub metric_rows_refused: Family<TableLabels, Counter>,
    /// Spans the service-edge tracker holds.
    pub call_tracker_spans: Gauge,
}

impl Default for SamplerMetrics {
    fn default() -> Self {
        SamplerMetrics {
            spans_written: Counter::default(),
            // 1 to about 260 000 spans.
            batch_spans: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            write_seconds: Family::new_with_constructor(write_buckets),
            write_failures: Family::default(),
            messages_refused: Counter::default(),
            requests_refused: Counter::default(),
            metric_rows_written: Family::default(),
            messages_already_counted: Family::default(),
            metric_rows_refused: Family::default(),
            call_tracker_spans: Gauge::default(),
        }
    }
}

impl SamplerMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            SPANS_WRITTEN,
            "Spans written to ClickHouse",
            self.spans_written.clone(),
        );
        registry.register(
            BATCH_SPANS,
            "Spans per ClickHouse write batch",
            self.batch_spans.clone(),
        );
        registry.register(
            WRITE_SECONDS,
            "Time of one ClickHouse INSERT, by table",
            self.write_seconds.clone(),
        );
        registry.register(
            WRITE_FAILURES,
            "ClickHouse INSERTs that failed and were retried, by table",
            self.write_failures.clone(),
        );
        registry.register(
            MESSAGES_REFUSED,
            "Bus messages dropped because ingest could not have published them",
            self.messages_refused.clone(),
        );
        registry.register(
            MESSAGES_DEAD_LETTERED,
            "Bus messages ClickHouse refused for their data, kept in the dead-letter stream",
            self.requests_refused.clone(),
        );
        registry.register(
            METRIC_ROWS_WRITTEN,
            "Rows written to a metrics table, by table",
            self.metric_rows_written.clone(),
        );
        registry.register(
            MESSAGES_ALREADY_COUNTED,
            "Bus messages seen again whose metrics the table already counted, by table",
            self.messages_already_counted.clone(),
        );
        registry.register(
            METRIC_ROWS_REFUSED,
            "Metric rows ClickHouse refused for their data and that were dropped, by table",
            self.metric_rows_refused.clone(),
        );
        registry.register(
            CALL_TRACKER_SPANS,
            "Spans the service-edge tracker remembers",
            self.call_tracker_spans.clone(),
        );
    }
}
