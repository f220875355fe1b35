//! RED metrics of one bus message: its spans counted per tenant, minute, service,
//! operation, span kind and status code, with errors, total duration and a duration
//! histogram. Computed from every span the message carried, before any sampling
//! decision, so the rates and percentiles do not depend on what is kept.

use foldhash::{HashMap, HashMapExt};
use weft_storage::clickhouse::{DurationHistogram, SpanColumns, SpanMetricRow};

/// The start of the minute of a second.
pub fn minute_of(second: u32) -> u32 {
    second - second % 60
}

#[derive(Default)]
struct Counts {
    spans: u64,
    errors: u64,
    duration_sum_ns: u64,
    histogram: DurationHistogram,
}

/// One row per key of the spans of a bus message.
pub fn span_metrics<S: SpanColumns>(spans: &[S]) -> Vec<SpanMetricRow> {
    let mut by_key: HashMap<(uuid::Uuid, u32, &str, &str, u8, u8), Counts> = HashMap::new();
    for span in spans {
        let counts = by_key
            .entry((
                span.tenant(),
                minute_of(span.second()),
                span.service(),
                span.name(),
                span.kind_number(),
                span.status_number(),
            ))
            .or_default();
        counts.spans += 1;
        counts.errors += u64::from(span.error());
        counts.duration_sum_ns = counts.duration_sum_ns.saturating_add(span.duration_ns());
        counts.histogram.record(span.duration_ns());
    }
    by_key
        .into_iter()
        .map(
            |((tenant_id, minute, service, operation, kind, status_code), counts)| {
                let (duration_buckets, duration_counts) = counts.histogram.to_sparse();
                SpanMetricRow {
                    tenant_id,
                    minute,
                    message: 0,
                    service_name: service.to_owned(),
                    operation: operation.to_owned(),
                    kind,
                    status_code,
                    spans: counts.spans,
                    errors: counts.errors,
                    duration_sum_ns: counts.duration_sum_ns,
                    duration_buckets,
                    duration_counts,
                    messages: 0,
                }
            },
        )
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use weft_storage::clickhouse::MetricRow;

    /// A span of `service` named `name` starting at `second`, lasting `duration_ms`.
    pub(crate) fn span(
        (trace, id, parent): (u8, u8, u8),
        (service, name, kind): (&str, &str, u8),
        (second, duration_ms, error): (u32, u64, bool),
    ) -> weft_storage::clickhouse::SpanRow {
        weft_storage::clickhouse::SpanRow {
            tenant_id: uuid::Uuid::nil(),
            trace_id: [trace; 16],
            span_id: [id; 8],
            parent_span_id: [parent; 8],
            trace_state: String::new(),
            service_name: service.into(),
            name: name.into(),
            kind,
            start_time: second,
            start_time_unix_nano: u64::from(second) * 1_000_000_000,
            duration_ns: duration_ms * 1_000_000,
            status_code: if error { 2 } else { 0 },
            status_message: String::new(),
            scope_name: String::new(),
            scope_version: String::new(),
            attribute_keys: Vec::new(),
            attribute_values: Vec::new(),
            resource_keys: Vec::new().into(),
            resource_values: Vec::new().into(),
            event_times_unix_nano: Vec::new(),
            event_names: Vec::new(),
            event_attributes: Vec::new(),
            link_trace_ids: Vec::new(),
            link_span_ids: Vec::new(),
            link_attributes: Vec::new(),
            sample_rate: 1.0,
            sampled_by: String::new(),
        }
    }

    #[test]
    fn every_span_is_counted_under_its_minute_and_key() {
        let spans = [
            span((1, 1, 0), ("checkout", "POST", 2), (600, 10, false)),
            span((2, 2, 0), ("checkout", "POST", 2), (659, 30, false)),
            span((3, 3, 0), ("checkout", "POST", 2), (660, 20, false)),
            span((4, 4, 0), ("checkout", "POST", 2), (661, 40, true)),
        ];
        let rows = SpanMetricRow::combine(span_metrics(&spans));
        let summary: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.minute,
                    r.status_code,
                    r.spans,
                    r.errors,
                    r.duration_sum_ns,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (600, 0, 2, 0, 40_000_000),
                (660, 0, 1, 0, 20_000_000),
                (660, 2, 1, 1, 40_000_000)
            ]
        );
        assert_eq!(rows[0].duration_counts.iter().sum::<u64>(), 2);
    }
}
