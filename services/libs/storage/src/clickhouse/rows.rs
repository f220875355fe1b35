//! Row types of the ClickHouse tables, fields in table column order (see the module note
//! on validation). Ids are binary; attributes are parallel key/value arrays.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

/// A row type stored in one table, inserted with its fields as the column list. Public
/// only as the bound of [`MetricRow`]; the module is private, so no one else names it.
pub trait Table: ::clickhouse::RowOwned + ::clickhouse::RowWrite {
    const TABLE: &'static str;
}

impl Table for SpanRow {
    const TABLE: &'static str = "spans";
}

impl Table for SpanMetricRow {
    const TABLE: &'static str = "span_metrics";
}

impl Table for ServiceEdgeRow {
    const TABLE: &'static str = "service_edges";
}

impl Table for LogRow {
    const TABLE: &'static str = "logs";
}

/// One stored log record (`logs` table).
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Serialize, Deserialize)]
pub struct LogRow {
    #[serde(with = "::clickhouse::serde::uuid")]
    pub tenant_id: uuid::Uuid,
    /// The record's time in whole seconds, for partitioning and the sort key.
    pub time: u32,
    /// When it happened (or, when the sender did not say, when it was observed).
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    /// All zeros when the record belongs to no trace (or span).
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// OTLP `SeverityNumber`: 1–4 trace, 5–8 debug, 9–12 info, 13–16 warn, 17–20 error,
    /// 21–24 fatal; 0 unspecified.
    pub severity_number: u8,
    pub severity_text: String,
    pub body: String,
    pub service_name: String,
    pub scope_name: String,
    pub scope_version: String,
    pub attribute_keys: Vec<String>,
    pub attribute_values: Vec<String>,
    pub resource_keys: Vec<String>,
    pub resource_values: Vec<String>,
    /// The bus message (stream sequence) that carried the record, and its place there.
    pub message: u64,
    pub message_line: u32,
}

/// One stored span (`spans` table).
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Serialize, Deserialize)]
pub struct SpanRow {
    #[serde(with = "::clickhouse::serde::uuid")]
    pub tenant_id: uuid::Uuid,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// All zeros for a root span.
    pub parent_span_id: [u8; 8],
    pub trace_state: String,
    pub service_name: String,
    pub name: String,
    /// OTLP `SpanKind` number.
    pub kind: u8,
    /// Start in whole seconds, for partitioning and the sort key.
    pub start_time: u32,
    pub start_time_unix_nano: u64,
    pub duration_ns: u64,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: u8,
    pub status_message: String,
    pub scope_name: String,
    pub scope_version: String,
    pub attribute_keys: Vec<String>,
    pub attribute_values: Vec<String>,
    /// Shared by the spans of one resource: a message's spans hold one copy.
    pub resource_keys: Arc<[String]>,
    pub resource_values: Arc<[String]>,
    pub event_times_unix_nano: Vec<u64>,
    pub event_names: Vec<String>,
    /// One JSON object per event.
    pub event_attributes: Vec<String>,
    pub link_trace_ids: Vec<[u8; 16]>,
    pub link_span_ids: Vec<[u8; 8]>,
    /// One JSON object per link.
    pub link_attributes: Vec<String>,
    /// 1 / probability with which the trace was kept; 1.0 when every trace is kept.
    pub sample_rate: f32,
    /// The sampling rule that kept the trace; empty when none decided (kept whole).
    pub sampled_by: String,
}

impl weft_model::sampling::SpanFacts for SpanRow {
    fn name(&self) -> &str {
        &self.name
    }

    fn service(&self) -> &str {
        &self.service_name
    }

    fn start_unix_nano(&self) -> u64 {
        self.start_time_unix_nano
    }

    fn duration_ns(&self) -> u64 {
        self.duration_ns
    }

    fn status(&self) -> weft_model::StatusCode {
        weft_model::StatusCode::from_otlp(i32::from(self.status_code))
    }

    fn kind(&self) -> weft_model::SpanKind {
        weft_model::SpanKind::from_otlp(i32::from(self.kind))
    }

    fn is_root(&self) -> bool {
        self.parent_span_id == [0; 8]
    }

    fn attribute(&self, key: &str) -> Option<&str> {
        let find = |keys: &[String], values: &'_ [String]| -> Option<usize> {
            keys.iter()
                .position(|k| k == key)
                .filter(|&i| i < values.len())
        };
        if let Some(i) = find(&self.attribute_keys, &self.attribute_values) {
            return Some(&self.attribute_values[i]);
        }
        find(&self.resource_keys, &self.resource_values).map(|i| self.resource_values[i].as_str())
    }
}

/// Part of one trace's summary (`trace_index` table, which ClickHouse fills from the
/// spans of each INSERT: migration 0008); queries sum a trace's rows.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Serialize, Deserialize)]
pub struct TraceIndexRow {
    #[serde(with = "::clickhouse::serde::uuid")]
    pub tenant_id: uuid::Uuid,
    pub trace_id: [u8; 16],
    pub start_time: u32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    /// Empty unless this part contains the root span.
    pub root_service: String,
    pub root_name: String,
    pub span_count: u32,
    pub error_count: u32,
    pub service_names: Vec<String>,
    /// As on the trace's spans.
    pub sample_rate: f32,
    pub sampled_by: String,
}

/// The columns of a span that are read without the whole row, beyond its facts: what a
/// trace's index row is summed from, and what the sampler's metrics count. Spans as rows
/// and packed both have them.
pub trait SpanColumns: weft_model::sampling::SpanFacts {
    fn tenant(&self) -> uuid::Uuid;
    fn trace(&self) -> [u8; 16];
    fn span(&self) -> [u8; 8];
    fn parent(&self) -> [u8; 8];
    /// The start in whole seconds (the `start_time` column).
    fn second(&self) -> u32;
    /// The numbers as stored, which [`weft_model::sampling::SpanFacts`] reads as enums.
    fn kind_number(&self) -> u8;
    fn status_number(&self) -> u8;
    fn rate(&self) -> f32;
    fn rule(&self) -> &str;

    fn error(&self) -> bool {
        self.status_number() == weft_model::StatusCode::Error as u8
    }
}

impl SpanColumns for SpanRow {
    fn tenant(&self) -> uuid::Uuid {
        self.tenant_id
    }
    fn trace(&self) -> [u8; 16] {
        self.trace_id
    }
    fn span(&self) -> [u8; 8] {
        self.span_id
    }
    fn parent(&self) -> [u8; 8] {
        self.parent_span_id
    }
    fn second(&self) -> u32 {
        self.start_time
    }
    fn kind_number(&self) -> u8 {
        self.kind
    }
    fn status_number(&self) -> u8 {
        self.status_code
    }
    fn rate(&self) -> f32 {
        self.sample_rate
    }
    fn rule(&self) -> &str {
        &self.sampled_by
    }
}

impl SpanColumns for super::PackedSpan {
    fn tenant(&self) -> uuid::Uuid {
        self.tenant_id()
    }
    fn trace(&self) -> [u8; 16] {
        self.trace_id()
    }
    fn span(&self) -> [u8; 8] {
        self.span_id()
    }
    fn parent(&self) -> [u8; 8] {
        self.parent_span_id()
    }
    fn second(&self) -> u32 {
        self.start_time()
    }
    fn kind_number(&self) -> u8 {
        self.kind()
    }
    fn status_number(&self) -> u8 {
        self.status_code()
    }
    fn rate(&self) -> f32 {
        self.sample_rate()
    }
    fn rule(&self) -> &str {
        self.sampled_by()
    }
}

impl TraceIndexRow {
    /// Summarises spans of one tenant into one index row per trace.
    pub fn summarise<S: SpanColumns>(spans: &[S]) -> Vec<TraceIndexRow> {
        let mut by_trace: std::collections::HashMap<(uuid::Uuid, [u8; 16]), TraceIndexRow> =
            std::collections::HashMap::new();
        for span in spans {
            let start = span.start_unix_nano();
            let end = start.saturating_add(span.duration_ns());
            let start_time = span.second();
            let row = by_trace
                .entry((span.tenant(), span.trace()))
                .or_insert_with(|| TraceIndexRow {
                    tenant_id: span.tenant(),
                    trace_id: span.trace(),
                    start_time,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    root_service: String::new(),
                    root_name: String::new(),
                    span_count: 0,
                    error_count: 0,
                    service_names: Vec::new(),
                    sample_rate: span.rate(),
                    sampled_by: span.rule().to_owned(),
                });
            if start < row.start_time_unix_nano {
                row.start_time_unix_nano = start;
                row.start_time = start_time;
            }
            row.end_time_unix_nano = row.end_time_unix_nano.max(end);
            if span.is_root() {
                span.service().clone_into(&mut row.root_service);
                span.name().clone_into(&mut row.root_name);
            }
            row.span_count += 1;
            row.error_count += u32::from(span.error());
            if !row.service_names.iter().any(|s| s == span.service()) {
                row.service_names.push(span.service().to_owned());
            }
        }
        by_trace.into_values().collect()
    }
}

/// A row of a metrics table. Rows of one key add up, as the table's SummingMergeTree
/// folds them. A table holds two kinds of row: metrics (`message` 0), and markers, one per
/// bus message and minute it counted (`message` its stream sequence, every counter 0 but
/// `messages`), written in the same INSERT as the metrics they vouch for. A marker's key
/// is its own, so merges never fold markers into a growing list.
pub trait MetricRow: Table + Clone + Send + Sync + 'static {
    type Key: Ord;
    fn key(&self) -> Self::Key;
    fn minute(&self) -> u32;
    /// The marker saying that this row's minute of the table counts bus message `message`.
    fn marker(&self, message: u64) -> Self;
    /// Takes in a row of the same key: counters summed, the sparse maps' entries
    /// appended as they come (see [`MetricRow::normalise`]).
    fn absorb(&mut self, other: Self);

    /// Sorts the sparse maps by key and sums the entries of equal keys.
    fn normalise(&mut self);

    /// Adds a row of the same key.
    fn add(&mut self, other: Self) {
        self.absorb(other);
        self.normalise();
    }

    /// The rows summed by key: what one INSERT of them stores, in key order. Each key's
    /// maps are sorted once at the end, so combining the rows of many messages costs
    /// O(n log n), not a merge per row (which grows with the message ids of a key).
    fn combine(rows: impl IntoIterator<Item = Self>) -> Vec<Self> {
        let mut by_key: BTreeMap<Self::Key, Self> = BTreeMap::new();
        for row in rows {
            match by_key.entry(row.key()) {
                Entry::Vacant(entry) => {
                    entry.insert(row);
                }
                Entry::Occupied(mut entry) => entry.get_mut().absorb(row),
            }
        }
        by_key
            .into_values()
            .map(|mut row| {
                row.normalise();
                row
            })
            .collect()
    }
}

/// Sorts a sparse map (`keys`, `values`) by key and sums the values of equal keys, as
/// ClickHouse's merges keep it. Already sorted and distinct (the usual case): untouched.
fn normalise_sparse<K: Ord + Copy>(keys: &mut Vec<K>, values: &mut Vec<u64>) {
    if keys.windows(2).all(|w| w[0] < w[1]) {
        return;
    }
    let mut pairs: Vec<(K, u64)> = keys.iter().copied().zip(values.iter().copied()).collect();
    pairs.sort_unstable_by_key(|&(key, _)| key);
    keys.clear();
    values.clear();
    for (key, value) in pairs {
        match keys.last() {
            Some(last) if *last == key => *values.last_mut().expect("one value per key") += value,
            _ => {
                keys.push(key);
                values.push(value);
            }
        }
    }
}

/// Spans of one tenant, minute, service, operation, span kind and status code
/// (`span_metrics` table), counted before any sampling decision.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Serialize, Deserialize)]
pub struct SpanMetricRow {
    #[serde(with = "::clickhouse::serde::uuid")]
    pub tenant_id: uuid::Uuid,
    /// The start of the minute the spans started in, in seconds.
    pub minute: u32,
    /// 0 on a row of metrics; on a marker, the bus message (stream sequence) it marks.
    pub message: u64,
    pub service_name: String,
    pub operation: String,
    pub kind: u8,
    pub status_code: u8,
    pub spans: u64,
    /// Spans with status error (all of them or none, as the status is part of the key).
    pub errors: u64,
    pub duration_sum_ns: u64,
    /// The duration histogram, sparse: see [`super::histogram`].
    #[serde(rename = "durationMap.bucket")]
    pub duration_buckets: Vec<u16>,
    #[serde(rename = "durationMap.count")]
    pub duration_counts: Vec<u64>,
    /// 1 on a marker, 0 on metrics: a row whose summed columns are all 0 is dropped by
    /// SummingMergeTree's merges, so a marker needs one that is not.
    pub messages: u64,
}

impl MetricRow for SpanMetricRow {
    type Key = (uuid::Uuid, u32, u64, String, String, u8, u8);

    fn key(&self) -> Self::Key {
        (
            self.tenant_id,
            self.minute,
            self.message,
            self.service_name.clone(),
            self.operation.clone(),
            self.kind,
            self.status_code,
        )
    }

    fn minute(&self) -> u32 {
        self.minute
    }

    fn marker(&self, message: u64) -> Self {
        SpanMetricRow {
            tenant_id: self.tenant_id,
            minute: self.minute,
            message,
            service_name: String::new(),
            operation: String::new(),
            kind: 0,
            status_code: 0,
            spans: 0,
            errors: 0,
            duration_sum_ns: 0,
            duration_buckets: Vec::new(),
            duration_counts: Vec::new(),
            messages: 1,
        }
    }

    fn absorb(&mut self, other: Self) {
        self.spans += other.spans;
        self.errors += other.errors;
        self.duration_sum_ns = self.duration_sum_ns.saturating_add(other.duration_sum_ns);
        self.duration_buckets.extend(other.duration_buckets);
        self.duration_counts.extend(other.duration_counts);
        self.messages += other.messages;
    }

    fn normalise(&mut self) {
        normalise_sparse(&mut self.duration_buckets, &mut self.duration_counts);
    }
}

/// Calls from one service to another in one minute (`service_edges` table), counted
/// before any sampling decision. Latency and errors are the callee's span's.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Serialize, Deserialize)]
pub struct ServiceEdgeRow {
    #[serde(with = "::clickhouse::serde::uuid")]
    pub tenant_id: uuid::Uuid,
    /// The start of the minute the callee's span started in, in seconds.
    pub minute: u32,
    /// 0 on a row of metrics; on a marker, the bus message (stream sequence) it marks.
    pub message: u64,
    pub caller_service: String,
    pub callee_service: String,
    pub calls: u64,
    pub errors: u64,
    pub duration_sum_ns: u64,
    #[serde(rename = "durationMap.bucket")]
    pub duration_buckets: Vec<u16>,
    #[serde(rename = "durationMap.count")]
    pub duration_counts: Vec<u64>,
    /// 1 on a marker, 0 on metrics (see [`SpanMetricRow::messages`]).
    pub messages: u64,
}

impl MetricRow for ServiceEdgeRow {
    type Key = (uuid::Uuid, u32, u64, String, String);

    fn key(&self) -> Self::Key {
        (
            self.tenant_id,
            self.minute,
            self.message,
            self.caller_service.clone(),
            self.callee_service.clone(),
        )
    }

    fn minute(&self) -> u32 {
        self.minute
    }

    fn marker(&self, message: u64) -> Self {
        ServiceEdgeRow {
            tenant_id: self.tenant_id,
            minute: self.minute,
            message,
            caller_service: String::new(),
            callee_service: String::new(),
            calls: 0,
            errors: 0,
            duration_sum_ns: 0,
            duration_buckets: Vec::new(),
            duration_counts: Vec::new(),
            messages: 1,
        }
    }

    fn absorb(&mut self, other: Self) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.duration_sum_ns = self.duration_sum_ns.saturating_add(other.duration_sum_ns);
        self.duration_buckets.extend(other.duration_buckets);
        self.duration_counts.extend(other.duration_counts);
        self.messages += other.messages;
    }

    fn normalise(&mut self) {
        normalise_sparse(&mut self.duration_buckets, &mut self.duration_counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(service: &str, buckets: Vec<u16>, counts: Vec<u64>) -> SpanMetricRow {
        let spans = counts.iter().sum();
        SpanMetricRow {
            tenant_id: uuid::Uuid::nil(),
            minute: 600,
            message: 0,
            service_name: service.into(),
            operation: "GET /".into(),
            kind: 2,
            status_code: 0,
            spans,
            errors: 0,
            duration_sum_ns: spans * 10,
            duration_buckets: buckets,
            duration_counts: counts,
            messages: 0,
        }
    }

    #[test]
    fn metric_rows_of_one_key_add_up_bucket_by_bucket_and_markers_stay_apart() {
        let cart = metric("cart", vec![7], vec![1]);
        let combined = SpanMetricRow::combine([
            metric("checkout", vec![3, 200], vec![1, 2]),
            cart.marker(9),
            cart.clone(),
            metric("checkout", vec![200, 300], vec![1, 1]),
            cart.marker(4),
            cart.marker(9),
        ]);
        assert_eq!(combined.len(), 4);
        assert_eq!(combined[0].service_name, "cart");
        let checkout = &combined[1];
        assert_eq!((checkout.spans, checkout.duration_sum_ns), (5, 50));
        assert_eq!(checkout.duration_buckets, [3, 200, 300]);
        assert_eq!(checkout.duration_counts, [1, 3, 1]);
        let markers: Vec<(u64, u64, u64)> = combined[2..]
            .iter()
            .map(|m| (m.message, m.messages, m.spans))
            .collect();
        assert_eq!(markers, [(4, 1, 0), (9, 2, 0)]);
    }
}

#[cfg(test)]
mod sparse_tests {
    use super::normalise_sparse;

    #[test]
    fn sparse_maps_sort_and_sum_equal_keys() {
        let (mut keys, mut values) = (vec![1u16, 4, 9, 0, 4, 10], vec![1u64, 2, 3, 5, 5, 5]);
        normalise_sparse(&mut keys, &mut values);
        assert_eq!((keys, values), (vec![0, 1, 4, 9, 10], vec![5, 1, 7, 3, 5]));
        let (mut keys, mut values) = (vec![1u64, 2, 3], vec![1u64, 1, 1]);
        normalise_sparse(&mut keys, &mut values);
        assert_eq!((keys, values), (vec![1, 2, 3], vec![1, 1, 1]));
    }
}
