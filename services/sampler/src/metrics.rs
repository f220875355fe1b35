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
pub const SPANS_ALREADY_STORED: &str = "weft_sampler_spans_already_stored";
pub const METRIC_ROWS_REFUSED: &str = "weft_sampler_metric_rows_refused";
pub const CALL_TRACKER_SPANS: &str = "weft_sampler_call_tracker_spans";
pub const TRACES_DECIDED: &str = "weft_sampler_traces_decided";
pub const SPANS_SAMPLED: &str = "weft_sampler_spans_sampled";
pub const LATE_SPANS: &str = "weft_sampler_late_spans";
pub const DECISION_CACHE_MISSES: &str = "weft_sampler_decision_cache_misses";
pub const TRACES_CAPPED: &str = "weft_sampler_traces_capped";
pub const BUFFERED_SPANS: &str = "weft_sampler_buffered_spans";
pub const BUFFERED_BYTES: &str = "weft_sampler_buffered_bytes";
pub const BUFFERED_TRACES: &str = "weft_sampler_buffered_traces";
pub const POLICY_LOADS: &str = "weft_sampler_policy_loads";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: &'static str,
}

/// A sampling decision: `kept` or `dropped`, and what made it due: `wait` (the decision
/// wait passed), `quiet` (the root span ended and the trace went quiet) or `memory` (the
/// buffer was full, so the oldest traces were decided early).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub decision: &'static str,
    pub trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub decision: &'static str,
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
    /// Spans (of redelivered messages, or of an INSERT whose answer was lost) found
    /// stored already and not written again.
    pub spans_already_stored: Counter,
    /// Metric rows ClickHouse refused for their data, dropped.
    pub metric_rows_refused: Family<TableLabels, Counter>,
    /// Spans the service-edge tracker holds.
    pub call_tracker_spans: Gauge,
    pub traces_decided: Family<DecisionLabels, Counter>,
    /// Spans by the decision of their trace (late spans included).
    pub spans_sampled: Family<OutcomeLabels, Counter>,
    /// Spans that arrived after their trace was decided and followed the decision.
    pub late_spans: Family<OutcomeLabels, Counter>,
    /// Traces seen again after their decision left the decision cache: their late spans
    /// are decided on their own.
    pub decision_cache_misses: Counter,
    /// Traces a rule kept that the tenant's cap of kept spans per second dropped.
    pub traces_capped: Counter,
    pub buffered_spans: Gauge,
    pub buffered_bytes: Gauge,
    pub buffered_traces: Gauge,
    /// Policy lookups in PostgreSQL, by outcome (`found`, `default`, `failed`).
    pub policy_loads: Family<OutcomeLabels, Counter>,
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
            spans_already_stored: Counter::default(),
            metric_rows_refused: Family::default(),
            call_tracker_spans: Gauge::default(),
            traces_decided: Family::default(),
            spans_sampled: Family::default(),
            late_spans: Family::default(),
            decision_cache_misses: Counter::default(),
            traces_capped: Counter::default(),
            buffered_spans: Gauge::default(),
            buffered_bytes: Gauge::default(),
            buffered_traces: Gauge::default(),
            policy_loads: Family::default(),
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
            SPANS_ALREADY_STORED,
            "Spans of redelivered messages or of INSERTs whose answer was lost, found stored already and not written again",
            self.spans_already_stored.clone(),
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
        registry.register(
            TRACES_DECIDED,
            "Traces decided, by decision and by what made the decision due",
            self.traces_decided.clone(),
        );
        registry.register(
            SPANS_SAMPLED,
            "Spans by the sampling decision of their trace",
            self.spans_sampled.clone(),
        );
        registry.register(
            LATE_SPANS,
            "Spans that arrived after their trace was decided, by that decision",
            self.late_spans.clone(),
        );
        registry.register(
            DECISION_CACHE_MISSES,
            "Traces seen again after their decision left the decision cache",
            self.decision_cache_misses.clone(),
        );
        registry.register(
            TRACES_CAPPED,
            "Traces a rule kept that the tenant's cap of kept spans per second dropped",
            self.traces_capped.clone(),
        );
        registry.register(
            BUFFERED_SPANS,
            "Spans waiting for their trace's sampling decision",
            self.buffered_spans.clone(),
        );
        registry.register(
            BUFFERED_BYTES,
            "Estimated memory of the spans waiting for a decision",
            self.buffered_bytes.clone(),
        );
        registry.register(
            BUFFERED_TRACES,
            "Traces waiting for a sampling decision",
            self.buffered_traces.clone(),
        );
        registry.register(
            POLICY_LOADS,
            "Sampling policy lookups in PostgreSQL, by outcome",
            self.policy_loads.clone(),
        );
    }
}
