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

/// Spans of one trace, from the trace-sorted copy of `spans` (the window only prunes
/// partitions); binds: window start second, window end second, trace id hex.
pub const TRACE_SPANS: &str = "SELECT ?fields FROM spans_by_trace \
     WHERE tenant_id = {tenant} AND start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
     AND trace_id = unhex(?) ORDER BY start_time_unix_nano, span_id";

/// Spans of several traces, from the trace-sorted copy of `spans`; binds: window start
/// second, window end second, the trace ids as hex (an array). 18.16 binds no binary
/// array, so the ids are unhexed in a subquery, which the primary key can use.
pub const SPANS_OF_TRACES: &str = "SELECT ?fields FROM spans_by_trace \
     WHERE tenant_id = {tenant} AND start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
     AND trace_id IN (SELECT toFixedString(unhex(arrayJoin(?)), 16)) ORDER BY trace_id, start_time_unix_nano, span_id";

/// Which spans of some traces the trace-sorted copy of `spans` stores, as (trace id,
/// span id); binds: window start second, window end second, the trace ids as hex (an
/// array). The sampler's check before it writes spans that may have been written before.
pub const STORED_SPANS: &str = "SELECT DISTINCT trace_id, span_id FROM spans_by_trace \
     WHERE tenant_id = {tenant} AND start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
     AND trace_id IN (SELECT toFixedString(unhex(arrayJoin(?)), 16))";

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
/// Whether the query with an id still runs (not tenant data: the server's own table).
pub const QUERY_RUNNING: &str = "SELECT count() FROM system.processes WHERE query_id = ?";

/// One value bound to a `?` of a built statement, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Bind {
    U64(u64),
    Str(String),
    /// An array literal.
    U64s(Vec<u64>),
    Strs(Vec<String>),
    F64(f64),
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
/// Span kind is one of a list; binds: the kinds (an array).
pub const KIND_IN: &str = "has(?, kind)";
/// Matches a span or resource attribute; binds: value, value, key, value, key, value.
/// The value's presence is tested first: one array column each, which spares most rows
/// the pairwise test (at 31 M log lines, a count went from 2.75 to 1.65 s).
pub const ATTRIBUTE_IS: &str = "((has(attribute_values, ?) OR has(resource_values, ?)) \
     AND (arrayExists((k, v) -> k = ? AND v = ?, attribute_keys, attribute_values) \
     OR arrayExists((k, v) -> k = ? AND v = ?, resource_keys, resource_values)))";
/// A span or resource attribute is present with another value; binds: key, value, key, value.
pub const ATTRIBUTE_IS_NOT: &str = "(arrayExists((k, v) -> k = ? AND v != ?, attribute_keys, attribute_values) \
     OR arrayExists((k, v) -> k = ? AND v != ?, resource_keys, resource_values))";
/// A span or resource attribute is present; binds: key, key.
pub const ATTRIBUTE_EXISTS: &str = "(has(attribute_keys, ?) OR has(resource_keys, ?))";
/// A span or resource attribute read as a number compares with a bound (text that is
/// not a number never matches); binds: key, bound, key, bound.
pub const ATTRIBUTE_ABOVE: &str = "(arrayExists((k, v) -> k = ? AND ifNull(toFloat64OrNull(v) > ?, 0), attribute_keys, attribute_values) \
     OR arrayExists((k, v) -> k = ? AND ifNull(toFloat64OrNull(v) > ?, 0), resource_keys, resource_values))";
pub const ATTRIBUTE_AT_LEAST: &str = "(arrayExists((k, v) -> k = ? AND ifNull(toFloat64OrNull(v) >= ?, 0), attribute_keys, attribute_values) \
     OR arrayExists((k, v) -> k = ? AND ifNull(toFloat64OrNull(v) >= ?, 0), resource_keys, resource_values))";
pub const ATTRIBUTE_BELOW: &str = "(arrayExists((k, v) -> k = ? AND ifNull(toFloat64OrNull(v) < ?, 0), attribute_keys, attribute_values) \
     OR arrayExists((k, v) -> k = ? AND ifNull(toFloat64OrNull(v) < ?, 0), resource_keys, resource_values))";
pub const ATTRIBUTE_AT_MOST: &str = "(arrayExists((k, v) -> k = ? AND ifNull(toFloat64OrNull(v) <= ?, 0), attribute_keys, attribute_values) \
     OR arrayExists((k, v) -> k = ? AND ifNull(toFloat64OrNull(v) <= ?, 0), resource_keys, resource_values))";

/// Conditions on a trace, over the aggregated index rows of one trace id (`HAVING`).
pub const TRACE_STARTS_FROM: &str = "min(start_time_unix_nano) >= ?";
pub const TRACE_STARTS_UNTIL: &str = "min(start_time_unix_nano) <= ?";
pub const TRACE_LASTS_AT_LEAST: &str = "max(end_time_unix_nano) - min(start_time_unix_nano) >= ?";
pub const TRACE_LASTS_AT_MOST: &str = "max(end_time_unix_nano) - min(start_time_unix_nano) <= ?";
pub const TRACE_KEPT_BY: &str = "anyIf(sampled_by, sampled_by != '') = ?";
pub const TRACE_HAS_ERRORS: &str = "sum(error_count) > 0";
/// A trace within a box of the scatter; binds: first and last start, shortest and
/// longest duration (ns).
pub const TRACE_IN_REGION: &str = "(min(start_time_unix_nano) >= ? AND min(start_time_unix_nano) <= ? \
     AND max(end_time_unix_nano) - min(start_time_unix_nano) >= ? \
     AND max(end_time_unix_nano) - min(start_time_unix_nano) <= ?)";
/// Traces after a cursor in each order (ids compared as upper-case hex, the order of the
/// bytes); binds: the cursor's keys, then its trace id.
pub const AFTER_NEWEST: &str = "(min(start_time_unix_nano), hex(trace_id)) < (?, ?)";
pub const AFTER_LONGEST: &str =
    "(max(end_time_unix_nano) - min(start_time_unix_nano), hex(trace_id)) < (?, ?)";
pub const AFTER_MOST_ERRORS: &str =
    "(sum(error_count), min(start_time_unix_nano), hex(trace_id)) < (?, ?, ?)";

/// What a trace search filters: conditions on spans (a trace matches when one span
/// meets them all) and on the trace itself.
#[derive(Default)]
pub struct TraceFilter {
    pub spans: SpanFilter,
    pub traces: SpanFilter,
}

impl TraceFilter {
    /// Whether the filter asks for nothing but a trace start within the window.
    pub fn is_only_the_window(&self) -> bool {
        self.spans.conditions.is_empty()
            && self
                .traces
                .conditions
                .iter()
                .all(|condition| [TRACE_STARTS_FROM, TRACE_STARTS_UNTIL].contains(condition))
    }
}

/// The traces of the index that match a filter, as the tail of a statement grouped by
/// trace (`FROM trace_index … GROUP BY trace_id HAVING …`). Binds: window start and end
/// seconds for the index, then (with span conditions) window start and end seconds for
/// spans and the span binds, then the trace binds.
pub fn matching_traces(filter: &TraceFilter) -> String {
    matching_traces_of(filter, None)
}

/// [`matching_traces`] of only the traces a `sample` condition on the trace id keeps:
/// the condition holds for all of a trace's rows or for none, so applying it before the
/// grouping keeps the same traces and builds a set of the sample's size, not of every
/// matching trace. Binds: window start and end seconds for the index, the sample's bind,
/// then (with span conditions) window start and end seconds for spans, the sample's bind
/// again and the span binds, then the trace binds.
fn matching_traces_of(filter: &TraceFilter, sample: Option<&str>) -> String {
    let sampled = sample.map(|s| format!(" AND {s}")).unwrap_or_default();
    let mut sql = format!(
        "FROM trace_index \
         WHERE tenant_id = {TENANT} AND start_time >= toDateTime(?) AND start_time <= toDateTime(?){sampled}"
    );
    if !filter.spans.conditions.is_empty() {
        sql.push_str(&format!(
            " AND trace_id IN (SELECT trace_id FROM spans WHERE tenant_id = {TENANT} \
             AND start_time >= toDateTime(?) AND start_time <= toDateTime(?){sampled} AND {})",
            filter.spans.conditions.join(" AND ")
        ));
    }
    sql.push_str(" GROUP BY trace_id");
    if !filter.traces.conditions.is_empty() {
        sql.push_str(" HAVING ");
        sql.push_str(&filter.traces.conditions.join(" AND "));
    }
    sql
}

/// Trace search over the index, first step: the ids (hex) of the page's traces, found over
/// the window with only the aggregates that filter and order them. Numbers are cheap to
/// group by the hundreds of thousands; the summary's strings and arrays are not (grouping
/// them for every trace of an hour cost 1 s at 725 000 traces, the ids 0.1 s), so only
/// the page's traces are summarised, by [`search_page`]. Two statements rather than one
/// with a subquery, because ClickHouse 18.16 applies the read limits to the outer query
/// alone. Binds: those of [`matching_traces`], then the limit.
pub fn search_page_ids(filter: &TraceFilter, order_by: &str) -> String {
    format!(
        "SELECT hex(trace_id) FROM (SELECT trace_id, min(start_time_unix_nano) AS trace_start, \
         max(end_time_unix_nano) AS trace_end, sum(error_count) AS errors {} \
         ORDER BY {order_by} LIMIT ?)",
        matching_traces(filter)
    )
}

/// Trace search, second step: the summaries of the page's traces, from the same rows of
/// the window as [`search_page_ids`] read (the index is sorted by trace id, so this reads
/// a few granules). Binds: window start and end seconds, the trace ids as hex (an array).
pub fn search_page(order_by: &str) -> String {
    format!(
        "SELECT {SUMMARY_COLUMNS} FROM trace_index \
         WHERE tenant_id = {TENANT} AND start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
         AND trace_id IN (SELECT toFixedString(unhex(arrayJoin(?)), 16)) \
         GROUP BY trace_id ORDER BY {order_by}"
    )
}

/// Values listed per attribute key by [`attribute_values`]; a key with more is one of
/// high cardinality (ids, free text), which "what is different" leaves out.
pub const DIFFERENCE_VALUES_PER_KEY: usize = 200;

/// Traces of each group (selected, baseline) whose spans [`attribute_values`] reads at
/// most, unless `WEFT_QUERY_DIFFERENCE_SAMPLE_TRACES` says otherwise: larger groups are
/// sampled by trace id, which keeps shares unbiased (within about 1.4 percentage points,
/// at 95 %, at this size) and the read's cost bounded at any traffic. 10 000 took 2.86 s
/// for an hour of 11.9 M spans on two cores, 5 000 1.92 s, with the same ranking.
pub const DIFFERENCE_SAMPLE_TRACES: u64 = 5_000;

/// How many traces matching a filter are selected and how many are not; `selected` is a
/// trace condition. Binds: the selection's binds, then those of [`matching_traces`].
pub fn selection_counts(filter: &TraceFilter, selected: &str) -> String {
    format!(
        "SELECT countIf(in_selection), countIf(NOT in_selection) \
         FROM (SELECT trace_id, ({selected}) AS in_selection {})",
        matching_traces(filter)
    )
}

/// How [`attribute_values`] samples the traces of a group larger than the sample size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceSample {
    /// The traces whose id is at most a bound (bind: the bound as 32 hex digits). Trace
    /// ids are random, so the traces below a bound are a fair sample, and in the
    /// trace-sorted `spans_by_trace` they are adjacent: the read skips every other trace.
    IdRange,
    /// The traces whose `cityHash64(trace_id)` is a multiple of a modulus (bind: the
    /// modulus): a fair sample whatever the ids look like, but a read of every span of
    /// the window. For ids that are not random in their leading bytes (AWS X-Ray's begin
    /// with the time), where a range finds too few traces.
    IdHash,
}

impl TraceSample {
    fn condition(self) -> &'static str {
        match self {
            TraceSample::IdRange => "trace_id <= toFixedString(unhex(?), 16)",
            TraceSample::IdHash => "cityHash64(trace_id) % ? = 0",
        }
    }
}

/// For every attribute key (span and resource) of the spans of the traces matching a
/// filter: how many values it has, and per value (one more than
/// [`DIFFERENCE_VALUES_PER_KEY`] of them at most) the selected and the other traces with a
/// span carrying it. A trace is counted once per value however many of its spans carry it.
/// Only a sample of each group's traces is read (see [`TraceSample`]); the empty key with
/// the empty value (which every span carries here) counts the traces read of each group.
///
/// Without filters, the other traces are those with spans in the window that are not
/// selected; a trace that began before the window counts there when its spans reach into
/// it, where the trace index alone leaves it out.
///
/// Binds: the window start and end seconds for spans, those of [`matching_traces_of`]
/// with the selected group's sample and the selection's (the selected traces), the
/// selected group's sample bind; then the window again, the other group's sample bind,
/// those of [`matching_traces_of`] with its sample and the selection's again; then the
/// keys left out (an array).
pub fn attribute_values(filter: &TraceFilter, selected: &str, sample: TraceSample) -> String {
    let sample = sample.condition();
    let matching = matching_traces_of(filter, Some(sample));
    let and = if filter.traces.conditions.is_empty() {
        " HAVING "
    } else {
        " AND "
    };
    let n = DIFFERENCE_VALUES_PER_KEY + 1;
    // The other traces: without filters, every trace of the window that is not selected
    // (one small set to leave out, rather than the window's every trace to look up);
    // with filters, the matching traces that are not selected.
    let baseline = if filter.is_only_the_window() {
        format!("trace_id NOT IN (SELECT trace_id {matching}{and}{selected})")
    } else {
        format!("trace_id IN (SELECT trace_id {matching}{and}NOT ({selected}))")
    };
    let columns = "trace_id, arrayConcat(attribute_keys, resource_keys, ['']) AS keys, \
         arrayConcat(attribute_values, resource_values, ['']) AS vals";
    let window = format!(
        "FROM spans_by_trace WHERE tenant_id = {TENANT} AND start_time >= toDateTime(?) \
         AND start_time <= toDateTime(?)"
    );
    format!(
        "SELECT key, count(), groupArray({n})(value), groupArray({n})(selected_traces), \
         groupArray({n})(baseline_traces) FROM (\
         SELECT key, value, uniqIf(trace_id, in_selection = 1) AS selected_traces, \
         uniqIf(trace_id, in_selection = 0) AS baseline_traces FROM (\
         SELECT {columns}, 1 AS in_selection {window} \
         AND trace_id IN (SELECT trace_id {matching}{and}{selected}) AND {sample} \
         UNION ALL \
         SELECT {columns}, 0 AS in_selection {window} AND {sample} AND {baseline}) \
         ARRAY JOIN keys AS key, vals AS value WHERE NOT has(CAST(? AS Array(String)), key) \
         GROUP BY key, value) \
         GROUP BY key ORDER BY key"
    )
}

/// Log lines newest first; binds: the seconds read (first and last, which bound the
/// granules read through the sort key), the window's exact first and last nanosecond, the
/// filter binds, then the limit. A filter of [`LOG_BEFORE`] continues a page.
pub fn log_search(filter: &SpanFilter) -> String {
    format!(
        "SELECT ?fields FROM logs \
         WHERE tenant_id = {TENANT} AND time >= toDateTime(?) AND time <= toDateTime(?) \
         AND time_unix_nano >= ? AND time_unix_nano <= ?{} \
         ORDER BY time_unix_nano DESC, message DESC, message_line DESC LIMIT ?",
        and_all(filter)
    )
}

/// Where a page of log lines probably begins: of the newest matching lines (at most the
/// limit) of some whole seconds, how many there are and the second of the oldest; binds:
/// the first and last second, the filter binds (without a cursor), the limit. It reads
/// only the `time` column besides the filter's (the window's exact nanoseconds and the
/// cursor would add the nanosecond column, which costs more than the rest), so it costs a
/// fraction of a page read of the same seconds.
pub fn log_page_start(filter: &SpanFilter) -> String {
    format!(
        "SELECT count(), toUInt32(min(line_time)) FROM (SELECT time AS line_time FROM logs \
         WHERE tenant_id = {TENANT} AND time >= toDateTime(?) AND time <= toDateTime(?){} \
         ORDER BY time DESC LIMIT ?)",
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
///
/// The messages are a set (`IN`), not an array searched per row (`has`): a batch after a
/// failed write holds hundreds of messages and its window millions of lines, and `has`
/// compared each line with each message (1.26 s against 0.027 s for 400 messages over
/// 2.9 M lines; under load those checks piled up until ClickHouse refused every query).
pub fn stored_log_lines() -> String {
    format!(
        "SELECT DISTINCT message, message_line FROM logs WHERE tenant_id = {TENANT} \
         AND time >= toDateTime(?) AND time <= toDateTime(?) \
         AND message IN (SELECT arrayJoin(CAST(? AS Array(UInt64)))) \
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
/// A log line's own or its resource's attribute is `key = value`, by the hashes of
/// migration 0007: the line's attribute hashes, or its resource among the tenant's
/// resources that have the attribute (no string of `logs` is read); binds: key, value,
/// key, value. `{tenant}` is [`TENANT`], filled in with the rest of the statement.
pub const LOG_ATTRIBUTE_IS: &str = "(has(attribute_hashes, cityHash64(?, ?)) \
     OR resource_hash IN (SELECT resource_hash FROM log_resources WHERE tenant_id = {tenant} \
     AND arrayExists((k, v) -> k = ? AND v = ?, resource_keys, resource_values)))";
/// Case-insensitive; binds: the text.
pub const LOG_BODY_CONTAINS: &str = "positionCaseInsensitiveUTF8(body, ?) > 0";
/// Binds: the id as hex.
pub const LOG_TRACE_IS: &str = "trace_id = unhex(?)";
pub const LOG_SPAN_IS: &str = "span_id = unhex(?)";
/// Lines strictly older than a cursor (time, message, line); binds: time, time, message,
/// message, line.
pub const LOG_BEFORE: &str = "(time_unix_nano < ? OR (time_unix_nano = ? AND \
     (message < ? OR (message = ? AND message_line < ?))))";

pub const ORDER_NEWEST: &str = "trace_start DESC, trace_id DESC";
pub const ORDER_LONGEST: &str = "trace_end - trace_start DESC, trace_id DESC";
pub const ORDER_MOST_ERRORS: &str = "errors DESC, trace_start DESC, trace_id DESC";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_attribute_filter_is_tenant_scoped() {
        assert!(LOG_ATTRIBUTE_IS.contains(&format!("tenant_id = {TENANT}")));
    }

    #[test]
    fn the_error_filter_uses_the_error_status() {
        let error = weft_model::StatusCode::Error as u8;
        assert_eq!(IS_ERROR, format!("status_code = {error}"));
    }

    #[test]
    fn every_statement_is_tenant_scoped_on_every_table_it_reads() {
        let mut filter = SpanFilter::default();
        filter.push(SERVICE_IS, [Bind::Str("x".into())]);
        let mut traces = TraceFilter::default();
        traces.traces.push(TRACE_STARTS_FROM, [Bind::U64(1)]);
        let mut both = TraceFilter::default();
        both.spans.push(SERVICE_IS, [Bind::Str("x".into())]);
        both.traces.push(TRACE_KEPT_BY, [Bind::Str("x".into())]);
        let statements = [
            trace_summary(),
            TRACE_SPANS.to_owned(),
            SPANS_OF_TRACES.to_owned(),
            STORED_SPANS.to_owned(),
            STORED_TRAFFIC.to_owned(),
            SERVICES.to_owned(),
            OPERATIONS.to_owned(),
            STORED_COUNTS.to_owned(),
            search_page_ids(&TraceFilter::default(), ORDER_NEWEST),
            search_page_ids(&traces, ORDER_LONGEST),
            search_page_ids(&both, ORDER_MOST_ERRORS),
            search_page(ORDER_NEWEST),
            selection_counts(&both, TRACE_HAS_ERRORS),
            attribute_values(
                &TraceFilter::default(),
                TRACE_HAS_ERRORS,
                TraceSample::IdRange,
            ),
            attribute_values(&both, TRACE_IN_REGION, TraceSample::IdHash),
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
            // A `FROM (subquery)` reads no table; every table read has its filter.
            assert_eq!(
                sql.matches(" FROM ").count() - sql.matches(" FROM (").count(),
                sql.matches("tenant_id = {tenant}").count(),
                "every FROM needs its own tenant filter: {sql}"
            );
        }
    }
}
