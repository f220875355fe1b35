//! Every SQL statement that reads tenant data. Each carries the `{tenant}` marker wherever
//! it reads a table; [`super::TenantTraces`] replaces it with the caller's tenant id and
//! refuses a statement without it, so no read can forget the tenant filter.

/// Marker replaced by `toUUID('<tenant id>')`.
pub const TENANT: &str = "{tenant}";

/// The summary columns of a trace, aggregated over its index rows.
const SUMMARY_COLUMNS: &str = "trace_id, \
     min(start_time_unix_nano) AS trace_start, \
     max(end_time_unix_nano) AS trace_end, \
     anyIf(root_service, root_service != '') AS root_svc, \
     anyIf(root_name, root_service != '') AS root_op, \
     sum(span_count) AS spans, \
     sum(error_count) AS errors, \
     groupUniqArrayArray(service_names) AS services, \
     max(sample_rate) AS rate, \
     anyIf(sampled_by, sampled_by != '') AS rule";

pub fn trace_summary() -> String {
    format!(
        "SELECT {SUMMARY_COLUMNS} FROM trace_index \
         WHERE tenant_id = {TENANT} AND trace_id = unhex(?) GROUP BY trace_id"
    )
}

/// Spans of one trace; binds: window start second, window end second, trace id hex.
pub const TRACE_SPANS: &str = "SELECT ?fields FROM spans \
     WHERE tenant_id = {tenant} AND start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
     AND trace_id = unhex(?) ORDER BY start_time_unix_nano, span_id";

/// Spans of several traces; binds: window start second, window end second, the trace
/// ids as upper-case hex (an array). `hex` of the stored id is compared, because 18.16
/// binds no binary array.
pub const SPANS_OF_TRACES: &str = "SELECT ?fields FROM spans \
     WHERE tenant_id = {tenant} AND start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
     AND has(?, hex(trace_id)) ORDER BY trace_id, start_time_unix_nano, span_id";

/// What the trace index holds of a window: distinct traces, and their spans each
/// weighted by its trace's sample rate; binds: window start second, window end second.
pub const STORED_TRAFFIC: &str = "SELECT uniqExact(trace_id), toFloat64(sum(span_count * sample_rate)) \
     FROM trace_index \
     WHERE tenant_id = {tenant} AND start_time >= toDateTime(?) AND start_time <= toDateTime(?)";

/// Services seen since a second; binds: since second.
pub const SERVICES: &str = "SELECT DISTINCT service_name FROM spans \
     WHERE tenant_id = {tenant} AND start_time >= toDateTime(?) ORDER BY service_name";

/// Operations of a service since a second; binds: service, since second.
pub const OPERATIONS: &str = "SELECT name, kind, count() FROM spans \
     WHERE tenant_id = {tenant} AND service_name = ? AND start_time >= toDateTime(?) \
     GROUP BY name, kind ORDER BY name, kind";

/// The sums of span metric rows and their merged duration histogram, as
/// [`super::RedStats`] reads them.
const RED_COLUMNS: &str = "sum(spans), sum(errors), sum(duration_sum_ns), \
     sumMap(durationMap.bucket, durationMap.count)";

/// The minutes of a metrics table; binds: first minute, last second.
const MINUTES: &str = "minute >= toDateTime(?) AND minute <= toDateTime(?)";

/// The rows of metrics (not the markers of counted messages, see [`super::MetricRow`]) of
/// some minutes; binds: first minute, last second.
const METRICS: &str = "message = 0 AND minute >= toDateTime(?) AND minute <= toDateTime(?)";

/// RED of every service by span kind; binds: the window's minutes.
pub fn service_red() -> String {
    format!(
        "SELECT service_name, kind, {RED_COLUMNS} FROM span_metrics \
         WHERE tenant_id = {TENANT} AND {METRICS} \
         GROUP BY service_name, kind ORDER BY service_name, kind"
    )
}

/// RED of every operation of a service by span kind; binds: service, the window's minutes.
pub fn operation_red() -> String {
    format!(
        "SELECT operation, kind, {RED_COLUMNS} FROM span_metrics \
         WHERE tenant_id = {TENANT} AND service_name = ? AND {METRICS} \
         GROUP BY operation, kind ORDER BY operation, kind"
    )
}

/// RED of a service (or one of its operations) per step and span kind; binds: step
/// seconds twice, service, the window's minutes, then the operation when `by_operation`.
pub fn service_series(by_operation: bool) -> String {
    let operation = if by_operation {
        " AND operation = ?"
    } else {
        ""
    };
    format!(
        "SELECT toUInt32(intDiv(toUInt32(minute), ?) * ?) AS step_start, kind, {RED_COLUMNS} \
         FROM span_metrics WHERE tenant_id = {TENANT} AND service_name = ? AND {METRICS}{operation} \
         GROUP BY step_start, kind ORDER BY step_start, kind"
    )
}

/// Spans received in a window, before sampling (the span metrics count every span);
/// binds: the window's minutes.
pub fn spans_received() -> String {
    format!("SELECT sum(spans) FROM span_metrics WHERE tenant_id = {TENANT} AND {METRICS}")
}

/// RED per step and span kind of every service (`by_operation` false) or of every
/// operation of one service (true), for many small charts in one read; binds: step
/// seconds twice, then the service when `by_operation`, then the window's minutes.
pub fn named_series(by_operation: bool) -> String {
    let (name, service) = if by_operation {
        ("operation", " AND service_name = ?")
    } else {
        ("service_name", "")
    };
    format!(
        "SELECT {name}, toUInt32(intDiv(toUInt32(minute), ?) * ?) AS step_start, kind, {RED_COLUMNS} \
         FROM span_metrics WHERE tenant_id = {TENANT}{service} AND {METRICS} \
         GROUP BY {name}, step_start, kind ORDER BY {name}, step_start, kind"
    )
}

/// Calls between services; binds: the window's minutes.
pub fn service_edges() -> String {
    format!(
        "SELECT caller_service, callee_service, sum(calls), sum(errors), sum(duration_sum_ns), \
         sumMap(durationMap.bucket, durationMap.count) FROM service_edges \
         WHERE tenant_id = {TENANT} AND {METRICS} \
         GROUP BY caller_service, callee_service ORDER BY caller_service, callee_service"
    )
}

/// Which of some bus messages a metrics table already counts; binds: the minutes of
/// their rows, the message ids. `table` is a [`super::MetricRow`]'s table name.
pub fn counted_messages(table: &str) -> String {
    format!(
        "SELECT DISTINCT message FROM {table} \
         WHERE tenant_id = {TENANT} AND {MINUTES} AND has(?, message) ORDER BY message"
    )
}

/// How much of a tenant's data is stored: spans, distinct spans, and spans counted by
/// the trace index (equal when nothing was written twice). Current ClickHouse types a
/// scalar subquery as `Nullable`, which RowBinary marks with an extra byte; `ifNull`
/// gives `UInt64` there as on 18.16, as [`super::StoredCounts`] reads it.
pub const STORED_COUNTS: &str = "SELECT \
     ifNull((SELECT count() FROM spans WHERE tenant_id = {tenant}), 0), \
     ifNull((SELECT uniqExact(trace_id, span_id) FROM spans WHERE tenant_id = {tenant}), 0), \
     ifNull((SELECT sum(span_count) FROM trace_index WHERE tenant_id = {tenant}), 0)";

/// Stops a read that its reader abandoned; binds: the read's query id. Runs on the
/// server, not per tenant: it names one query id Weft generated.
pub const KILL_QUERY: &str = "KILL QUERY WHERE query_id = ? ASYNC";

/// One value bound to a `?` of a built statement, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Bind {
    U64(u64),
    Str(String),
    /// An array literal.
    U64s(Vec<u64>),
    Strs(Vec<String>),
}

/// Span-level filters of a search, as SQL conditions on `spans` with their binds.
#[derive(Default)]
pub struct SpanFilter {
    pub conditions: Vec<&'static str>,
    pub binds: Vec<Bind>,
}

impl SpanFilter {
    pub fn push(&mut self, condition: &'static str, binds: impl IntoIterator<Item = Bind>) {
        self.conditions.push(condition);
        self.binds.extend(binds);
    }
}

pub const SERVICE_IS: &str = "service_name = ?";
pub const OPERATION_IS: &str = "name = ?";
pub const DURATION_AT_LEAST: &str = "duration_ns >= ?";
pub const DURATION_AT_MOST: &str = "duration_ns <= ?";
/// `weft_model::StatusCode::Error` (checked by a test below).
pub const IS_ERROR: &str = "status_code = 2";
/// Matches a span or resource attribute; binds: key, value, key, value.
pub const ATTRIBUTE_IS: &str = "(arrayExists((k, v) -> k = ? AND v = ?, attribute_keys, attribute_values) \
     OR arrayExists((k, v) -> k = ? AND v = ?, resource_keys, resource_values))";

/// Trace search over the index, optionally narrowed to traces with a matching span.
/// Binds: window start and end seconds for the index, then (with span filters) window
/// start and end seconds for spans and the filter binds, then the limit.
pub fn search(span_filter: &SpanFilter, order_by: &str) -> String {
    let mut sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM trace_index \
         WHERE tenant_id = {TENANT} AND start_time >= toDateTime(?) AND start_time <= toDateTime(?)"
    );
    if !span_filter.conditions.is_empty() {
        sql.push_str(&format!(
            " AND trace_id IN (SELECT trace_id FROM spans WHERE tenant_id = {TENANT} \
             AND start_time >= toDateTime(?) AND start_time <= toDateTime(?) AND {})",
            span_filter.conditions.join(" AND ")
        ));
    }
    sql.push_str(&format!(" GROUP BY trace_id ORDER BY {order_by} LIMIT ?"));
    sql
}

/// Log lines newest first; binds: window start and end seconds, the filter binds, then
/// the limit. A filter of [`LOG_BEFORE`] continues a page.
pub fn log_search(filter: &SpanFilter) -> String {
    format!(
        "SELECT ?fields FROM logs \
         WHERE tenant_id = {TENANT} AND time >= toDateTime(?) AND time <= toDateTime(?){} \
         ORDER BY time_unix_nano DESC, message DESC, message_line DESC LIMIT ?",
        and_all(filter)
    )
}

/// Log lines per step of `step` seconds, and how many of them are errors or worse;
/// binds: step seconds twice, window start and end seconds, the filter binds.
pub fn log_histogram(filter: &SpanFilter) -> String {
    format!(
        "SELECT toUInt32(intDiv(toUInt32(time), ?) * ?) AS step_start, count(), \
         countIf(severity_number >= 17) FROM logs \
         WHERE tenant_id = {TENANT} AND time >= toDateTime(?) AND time <= toDateTime(?){} \
         GROUP BY step_start ORDER BY step_start",
        and_all(filter)
    )
}

/// Which lines of some bus messages the `logs` table stores, as (message, line); binds:
/// window start and end seconds of their lines, the message ids.
pub fn stored_log_lines() -> String {
    format!(
        "SELECT DISTINCT message, message_line FROM logs WHERE tenant_id = {TENANT} \
         AND time >= toDateTime(?) AND time <= toDateTime(?) AND has(?, message) \
         ORDER BY message, message_line"
    )
}

fn and_all(filter: &SpanFilter) -> String {
    filter
        .conditions
        .iter()
        .map(|condition| format!(" AND {condition}"))
        .collect()
}

pub const LOG_SERVICE_IS: &str = "service_name = ?";
pub const LOG_SEVERITY_AT_LEAST: &str = "severity_number >= ?";
/// Case-insensitive; binds: the text.
pub const LOG_BODY_CONTAINS: &str = "positionCaseInsensitiveUTF8(body, ?) > 0";
/// Binds: the id as hex.
pub const LOG_TRACE_IS: &str = "trace_id = unhex(?)";
pub const LOG_SPAN_IS: &str = "span_id = unhex(?)";
/// Lines strictly older than a cursor (time, message, line); binds: time, time, message,
/// message, line.
pub const LOG_BEFORE: &str = "(time_unix_nano < ? OR (time_unix_nano = ? AND \
     (message < ? OR (message = ? AND message_line < ?))))";

pub const ORDER_NEWEST: &str = "trace_start DESC";
pub const ORDER_LONGEST: &str = "trace_end - trace_start DESC";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_filter_uses_the_error_status() {
        let error = weft_model::StatusCode::Error as u8;
        assert_eq!(IS_ERROR, format!("status_code = {error}"));
    }

    #[test]
    fn every_statement_is_tenant_scoped_on_every_table_it_reads() {
        let mut filter = SpanFilter::default();
        filter.push(SERVICE_IS, [Bind::Str("x".into())]);
        let statements = [
            trace_summary(),
            TRACE_SPANS.to_owned(),
            SPANS_OF_TRACES.to_owned(),
            STORED_TRAFFIC.to_owned(),
            SERVICES.to_owned(),
            OPERATIONS.to_owned(),
            STORED_COUNTS.to_owned(),
            search(&SpanFilter::default(), ORDER_NEWEST),
            search(&filter, ORDER_LONGEST),
            service_red(),
            operation_red(),
            service_series(false),
            service_series(true),
            named_series(false),
            named_series(true),
            service_edges(),
            spans_received(),
            counted_messages("span_metrics"),
            counted_messages("service_edges"),
            log_search(&SpanFilter::default()),
            log_search(&filter),
            log_histogram(&filter),
            stored_log_lines(),
        ];
        for sql in statements {
            assert_eq!(
                sql.matches(" FROM ").count(),
                sql.matches("tenant_id = {tenant}").count(),
                "every FROM needs its own tenant filter: {sql}"
            );
        }
    }
}
