//! The tenant-scoped read layer: [`TenantTraces`] can only be made for one tenant and
//! only runs statements from [`super::queries`] with that tenant's filter filled in. It
//! reads traces, and the RED metrics and service edges the sampler writes.

use super::limits::{ReadLimits, RunningRead, TenantGates};
use super::queries::{self, Bind, SpanFilter, TENANT, TraceFilter};
use super::rows::MetricRow;
use super::{ClickHouseError, LogRow, SpanRow};
use serde::Deserialize;
use std::marker::PhantomData;
use weft_model::{TenantId, TraceId};

/// A trace as summarised by the trace index.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Deserialize)]
pub struct TraceSummary {
    pub trace_id: [u8; 16],
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub root_service: String,
    pub root_name: String,
    pub span_count: u64,
    pub error_count: u64,
    pub service_names: Vec<String>,
    /// The trace's sample rate (1 / probability it was kept with) and the sampling rule
    /// that kept it (empty: none, kept whole).
    pub sample_rate: f32,
    pub sampled_by: String,
}

/// An operation (span name) of a service, with its span kind and how often it was seen.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Deserialize)]
pub struct Operation {
    pub name: String,
    pub kind: u8,
    pub spans: u64,
}

/// Span metrics summed over a window for one service or operation (`name`) and span
/// kind: spans, errors, total duration and the merged duration histogram (sparse).
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Deserialize)]
pub struct RedStats {
    pub name: String,
    pub kind: u8,
    pub spans: u64,
    pub errors: u64,
    pub duration_sum_ns: u64,
    pub histogram: (Vec<u16>, Vec<u64>),
}

/// Span metrics of one step of a series and one span kind.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Deserialize)]
pub struct RedPoint {
    /// The step's start, in seconds.
    pub step_start: u32,
    pub kind: u8,
    pub spans: u64,
    pub errors: u64,
    pub duration_sum_ns: u64,
    pub histogram: (Vec<u16>, Vec<u64>),
}

/// Span metrics of one step of a series, one span kind and one service or operation
/// (`name`): a point of one of many series read at once.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Deserialize)]
pub struct NamedRedPoint {
    pub name: String,
    /// The step's start, in seconds.
    pub step_start: u32,
    pub kind: u8,
    pub spans: u64,
    pub errors: u64,
    pub duration_sum_ns: u64,
    pub histogram: (Vec<u16>, Vec<u64>),
}

/// Calls from one service to another, summed over a window.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Deserialize)]
pub struct EdgeStats {
    pub caller_service: String,
    pub callee_service: String,
    pub calls: u64,
    pub errors: u64,
    pub duration_sum_ns: u64,
    pub histogram: (Vec<u16>, Vec<u64>),
}

/// The time window of a metrics read. Metrics are kept per minute, so a read covers the
/// minutes that overlap the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsWindow {
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
}

impl MetricsWindow {
    /// The binds of the window: its first minute and its last second.
    fn binds(&self) -> [Bind; 2] {
        let first = (self.start_unix_nano / NANOS).min(u64::from(u32::MAX));
        [
            Bind::U64(first - first % 60),
            second_ceil(self.end_unix_nano),
        ]
    }
}

/// How much of a tenant's data is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ::clickhouse::Row, Deserialize)]
pub struct StoredCounts {
    pub spans: u64,
    pub distinct_spans: u64,
    pub indexed_spans: u64,
}

/// What the trace index holds of a window: its traces, and their spans weighted by the
/// sample rate each trace was kept with, an estimate of the spans they stand for before
/// sampling.
#[derive(Clone, Copy, Debug, PartialEq, ::clickhouse::Row, Deserialize)]
pub struct StoredTraffic {
    pub traces: u64,
    pub weighted_spans: f64,
}

/// How search results are ordered. Every order ends with the trace id, so that a
/// [`TraceCursor`] names one place in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceSort {
    #[default]
    Newest,
    Longest,
    /// Most error spans first, newest first among equals.
    MostErrors,
}

impl TraceSort {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceSort::Newest => "newest",
            TraceSort::Longest => "longest",
            TraceSort::MostErrors => "errors",
        }
    }
}

/// How an attribute filter compares a value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeTest {
    Equals(String),
    /// The attribute is present with another value (as in TraceQL, a span without the
    /// attribute does not match).
    NotEquals(String),
    Exists,
    /// The value read as a number compares so with the bound; values that are not
    /// numbers never match.
    Above(f64),
    AtLeast(f64),
    Below(f64),
    AtMost(f64),
}

/// A filter on one attribute of a span or of its resource.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeFilter {
    pub key: String,
    pub test: AttributeTest,
}

impl AttributeFilter {
    pub fn equals(key: &str, value: &str) -> AttributeFilter {
        AttributeFilter {
            key: key.to_owned(),
            test: AttributeTest::Equals(value.to_owned()),
        }
    }
}

/// Where a page of search results ended: the sort keys of its last trace. The next page
/// holds the traces strictly after it in the search's order, so a trace is never shown
/// twice or skipped while the traces keep their keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceCursor {
    pub sort: TraceSort,
    /// The trace's start (newest), duration (longest) or error count (most errors).
    pub key: u64,
    /// The trace's start, the second key of most errors.
    pub start_unix_nano: u64,
    pub trace_id: [u8; 16],
}

impl TraceCursor {
    /// The cursor just after `trace` in the order `sort`.
    pub fn after(sort: TraceSort, trace: &TraceSummary) -> TraceCursor {
        let key = match sort {
            TraceSort::Newest => trace.start_time_unix_nano,
            TraceSort::Longest => trace
                .end_time_unix_nano
                .saturating_sub(trace.start_time_unix_nano),
            TraceSort::MostErrors => trace.error_count,
        };
        TraceCursor {
            sort,
            key,
            start_unix_nano: trace.start_time_unix_nano,
            trace_id: trace.trace_id,
        }
    }
}

/// A trace search: a time window, span-level filters (a trace matches when one of its
/// spans matches every one, as in Jaeger) and trace-level ones (its duration, the rule
/// that kept it).
#[derive(Clone, Debug, Default)]
pub struct TraceSearch {
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub service: Option<String>,
    pub operation: Option<String>,
    /// Span kinds (OTLP numbers), any of them; empty: every kind.
    pub kinds: Vec<u8>,
    /// Span duration bounds.
    pub min_duration_ns: Option<u64>,
    pub max_duration_ns: Option<u64>,
    pub errors_only: bool,
    pub attributes: Vec<AttributeFilter>,
    /// Trace duration bounds (first span start to last span end).
    pub min_trace_duration_ns: Option<u64>,
    pub max_trace_duration_ns: Option<u64>,
    /// The sampling rule that kept the trace.
    pub sampled_by: Option<String>,
    pub limit: u32,
    pub sort: TraceSort,
    /// Continue after this trace (of the same sort).
    pub after: Option<TraceCursor>,
}

/// Which traces of a search "what is different" compares with the rest.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceSelection {
    /// Traces with an error span.
    Errors,
    /// Traces lasting at least this long.
    SlowerThan(u64),
    /// A box of the duration-over-time scatter: start time and trace duration bounds.
    Region {
        start_unix_nano: u64,
        end_unix_nano: u64,
        min_duration_ns: u64,
        max_duration_ns: u64,
    },
}

/// How many traces of a search "what is different" compares: the selected ones and the
/// others (the baseline).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ::clickhouse::Row, Deserialize)]
pub struct SelectionCounts {
    pub selected: u64,
    pub baseline: u64,
}

/// The values of one attribute key among a search's traces, each with the number of
/// selected and baseline traces having it on one of their spans. Only the first
/// [`super::queries::DIFFERENCE_VALUES_PER_KEY`] values are listed; `distinct_values`
/// above that marks a high-cardinality key (ids, free text) whose values are not listed
/// completely.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Deserialize)]
pub struct AttributeValues {
    pub key: String,
    pub distinct_values: u64,
    pub values: Vec<String>,
    pub selected: Vec<u64>,
    pub baseline: Vec<u64>,
}

/// How far before a page's end the first read of a log search goes (see
/// [`TenantTraces::logs`]).
const LOG_FIRST_READ_NANOS: u64 = 60 * NANOS;

/// Windows up to this long have their first page's histogram counted per second (at most
/// 21 600 counts); see [`TenantTraces::logs_with_histogram`].
const LOG_SECOND_COUNTS_NANOS: u64 = 6 * 3600 * NANOS;

/// Counts per some seconds summed into steps of `step` seconds (a multiple of theirs).
fn sum_steps(counts: &[LogCount], step: u32) -> Vec<LogCount> {
    let mut steps: Vec<LogCount> = Vec::new();
    for count in counts {
        let step_start = count.step_start / step * step;
        match steps.last_mut() {
            Some(last) if last.step_start == step_start => {
                last.lines += count.lines;
                last.errors += count.errors;
            }
            _ => steps.push(LogCount {
                step_start,
                ..*count
            }),
        }
    }
    steps
}

/// A log search: a time window, optional filters, and where the previous page ended.
#[derive(Clone, Debug, Default)]
pub struct LogSearch {
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub service: Option<String>,
    /// Lines at this OTLP severity number or above.
    pub min_severity: Option<u8>,
    /// Text the body contains, case-insensitively.
    pub text: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<weft_model::SpanId>,
    /// Only lines older than this one (the last line of the previous page).
    pub before: Option<LogCursor>,
    pub limit: u32,
}

/// Where a page of log lines ended: the identity of its last line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogCursor {
    pub time_unix_nano: u64,
    pub message: u64,
    pub message_line: u32,
}

impl LogCursor {
    pub fn of(row: &LogRow) -> LogCursor {
        LogCursor {
            time_unix_nano: row.time_unix_nano,
            message: row.message,
            message_line: row.message_line,
        }
    }
}

/// A line of a bus message that the `logs` table stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ::clickhouse::Row, Deserialize)]
pub struct StoredLogLine {
    pub message: u64,
    pub message_line: u32,
}

/// Trace ids one look-up of stored spans binds at most (35 bytes of statement each).
pub const STORED_SPANS_TRACES_PER_READ: usize = 2_000;

/// A span the store holds, by trace and span id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ::clickhouse::Row, Deserialize)]
pub struct StoredSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

/// Where a page of log lines begins (see [`queries::log_page_start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ::clickhouse::Row, Deserialize)]
pub struct LogPageStart {
    /// Matching lines found, at most the page's limit.
    pub lines: u64,
    /// The second of the oldest of them (0 without lines).
    pub second: u32,
}

/// Log lines of one step of a histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ::clickhouse::Row, Deserialize)]
pub struct LogCount {
    /// The step's start, in seconds.
    pub step_start: u32,
    pub lines: u64,
    /// Lines at severity error or above.
    pub errors: u64,
}

const NANOS: u64 = 1_000_000_000;

/// The whole second at or before `nanos`, and the one at or after it, as bound against
/// `DateTime` columns: 32-bit seconds on 18.16, which end in 2106. Clamped there, so a
/// window reaching past 2106 still matches what is stored instead of overflowing.
fn second_floor(nanos: u64) -> Bind {
    Bind::U64((nanos / NANOS).min(u64::from(u32::MAX)))
}

fn second_ceil(nanos: u64) -> Bind {
    Bind::U64(nanos.div_ceil(NANOS).min(u64::from(u32::MAX)))
}

/// One read as it goes to ClickHouse: a statement of [`super::queries`] with the tenant
/// filled in, its binds in order, and the row type `R` it is fetched as.
///
/// The constructors below are pure and are the only way [`TenantTraces`] reads; the SQL
/// catalogue (`catalog.rs`) calls every one of them too, so the compatibility check sees
/// exactly what is sent. A new read needs a constructor here and an entry there; the
/// test `every_tenant_read_is_catalogued` in `catalog.rs` fails until it has both.
#[derive(Debug)]
pub(super) struct TenantRead<R> {
    sql: String,
    binds: Vec<Bind>,
    row: PhantomData<fn() -> R>,
}

impl<R> TenantRead<R> {
    fn new(tenant: TenantId, template: &str, binds: Vec<Bind>) -> Self {
        assert!(template.contains(TENANT), "unscoped statement: {template}");
        // A formatted UUID is hex and dashes only, so it is safe to inline.
        let sql = template.replace(TENANT, &format!("toUUID('{tenant}')"));
        TenantRead {
            sql,
            binds,
            row: PhantomData,
        }
    }

    /// The client's query with every bind applied; the client substitutes binds before
    /// sending, so its `sql_display()` is the statement as sent (but for `?fields`).
    pub(super) fn query(&self, client: &::clickhouse::Client) -> ::clickhouse::query::Query {
        self.binds
            .iter()
            .fold(client.query(&self.sql), |query, bind| match bind {
                Bind::U64(v) => query.bind(v),
                Bind::Str(v) => query.bind(v),
                Bind::U64s(v) => query.bind(v),
                Bind::Strs(v) => query.bind(v),
                Bind::F64(v) => query.bind(v),
            })
    }
}

/// Where and how reads run: the client and the limits every read carries.
#[derive(Clone, Copy)]
struct Reader<'a> {
    client: &'a ::clickhouse::Client,
    limits: ReadLimits,
}

impl Reader<'_> {
    /// Runs `read` with its limits and a query id of its own; if the caller stops
    /// waiting, the query is killed on the server.
    async fn run<T, F>(
        &self,
        query: ::clickhouse::query::Query,
        fetch: impl FnOnce(::clickhouse::query::Query) -> F,
    ) -> Result<T, ClickHouseError>
    where
        F: std::future::Future<Output = Result<T, ::clickhouse::error::Error>>,
    {
        let running = RunningRead::start(self.client);
        let query = self
            .limits
            .settings()
            .into_iter()
            .fold(query, |query, (name, value)| {
                query.with_setting(name, value)
            })
            .with_setting("query_id", running.query_id());
        let result = fetch(query).await;
        running.finish();
        Ok(result?)
    }
}

impl<R: ::clickhouse::RowOwned + ::clickhouse::RowRead> TenantRead<R> {
    async fn fetch_all(&self, reader: Reader<'_>) -> Result<Vec<R>, ClickHouseError> {
        reader
            .run(self.query(reader.client), |q| q.fetch_all())
            .await
    }

    async fn fetch_optional(&self, reader: Reader<'_>) -> Result<Option<R>, ClickHouseError> {
        reader
            .run(self.query(reader.client), |q| q.fetch_optional())
            .await
    }

    async fn fetch_one(&self, reader: Reader<'_>) -> Result<R, ClickHouseError> {
        reader
            .run(self.query(reader.client), |q| q.fetch_one())
            .await
    }
}

impl TenantRead<TraceSummary> {
    pub(super) fn trace_summary(tenant: TenantId, trace_id: TraceId) -> Self {
        Self::new(
            tenant,
            &queries::trace_summary(),
            vec![Bind::Str(trace_id.to_hex())],
        )
    }

    /// The summaries of the page's traces (`ids` as [`TenantRead::search_page_ids`]
    /// found them), in the search's order.
    pub(super) fn search_page(tenant: TenantId, search: &TraceSearch, ids: Vec<String>) -> Self {
        let binds = vec![
            second_floor(search.start_unix_nano),
            second_ceil(search.end_unix_nano),
            Bind::Strs(ids),
        ];
        Self::new(tenant, &queries::search_page(search.order()), binds)
    }
}

impl TenantRead<String> {
    /// The ids (hex) of the search's page of traces, in its order.
    pub(super) fn search_page_ids(tenant: TenantId, search: &TraceSearch) -> Self {
        let (filter, mut binds) = search.filter(true);
        binds.push(Bind::U64(u64::from(search.limit)));
        Self::new(
            tenant,
            &queries::search_page_ids(&filter, search.order()),
            binds,
        )
    }
}

impl TraceSelection {
    /// The selection as a condition on a trace, with its binds.
    fn condition(&self) -> (&'static str, Vec<Bind>) {
        match *self {
            TraceSelection::Errors => (queries::TRACE_HAS_ERRORS, Vec::new()),
            TraceSelection::SlowerThan(ns) => (queries::TRACE_LASTS_AT_LEAST, vec![Bind::U64(ns)]),
            TraceSelection::Region {
                start_unix_nano,
                end_unix_nano,
                min_duration_ns,
                max_duration_ns,
            } => (
                queries::TRACE_IN_REGION,
                vec![
                    Bind::U64(start_unix_nano),
                    Bind::U64(end_unix_nano),
                    Bind::U64(min_duration_ns),
                    Bind::U64(max_duration_ns),
                ],
            ),
        }
    }
}

impl TenantRead<SelectionCounts> {
    pub(super) fn selection_counts(
        tenant: TenantId,
        search: &TraceSearch,
        selection: &TraceSelection,
    ) -> Self {
        let (filter, matching) = search.filter(false);
        let (selected, mut binds) = selection.condition();
        binds.extend(matching);
        Self::new(tenant, &queries::selection_counts(&filter, selected), binds)
    }
}

impl TenantRead<AttributeValues> {
    /// The attribute values of the search's traces, `ignored` keys left out, reading a
    /// `sample` of each group: at most `wanted` of its `counts` traces.
    pub(super) fn attribute_values(
        tenant: TenantId,
        search: &TraceSearch,
        selection: &TraceSelection,
        ignored: &[&str],
        (counts, wanted): (SelectionCounts, u64),
        sample: queries::TraceSample,
    ) -> Self {
        let (selected, selection_binds) = selection.condition();
        let window = [
            second_floor(search.start_unix_nano),
            second_ceil(search.end_unix_nano),
        ];
        let selected_sample = sample_bind(sample, counts.selected, wanted);
        let baseline_sample = sample_bind(sample, counts.baseline, wanted);
        let (filter, selected_matching) = search.sampled_filter(false, Some(&selected_sample));
        let (_, baseline_matching) = search.sampled_filter(false, Some(&baseline_sample));
        let mut binds = window.to_vec();
        binds.extend(selected_matching);
        binds.extend(selection_binds.iter().cloned());
        binds.push(selected_sample);
        binds.extend(window);
        binds.push(baseline_sample);
        binds.extend(baseline_matching);
        binds.extend(selection_binds);
        binds.push(Bind::Strs(
            ignored.iter().map(|k| (*k).to_owned()).collect(),
        ));
        Self::new(
            tenant,
            &queries::attribute_values(&filter, selected, sample),
            binds,
        )
    }
}

/// The bind of a `sample` of at most `wanted` of `traces` traces: the highest trace id
/// read (the share of the id space to read, as the leading 8 bytes), or the hash modulus.
fn sample_bind(sample: queries::TraceSample, traces: u64, wanted: u64) -> Bind {
    let wanted = wanted.max(1);
    match sample {
        queries::TraceSample::IdRange => {
            let bound = if traces <= wanted {
                u64::MAX
            } else {
                ((u128::from(wanted) << 64) / u128::from(traces)) as u64
            };
            Bind::Str(format!("{bound:016X}FFFFFFFFFFFFFFFF"))
        }
        queries::TraceSample::IdHash => Bind::U64(traces.div_ceil(wanted).max(1)),
    }
}

impl AttributeFilter {
    /// The filter as a span condition, with its binds.
    fn condition(&self) -> (&'static str, Vec<Bind>) {
        let key = || Bind::Str(self.key.clone());
        let twice = |condition, value: Bind| (condition, vec![key(), value.clone(), key(), value]);
        match &self.test {
            AttributeTest::Equals(v) => {
                let value = Bind::Str(v.clone());
                let (condition, pairs) = twice(queries::ATTRIBUTE_IS, value.clone());
                (condition, [vec![value.clone(), value], pairs].concat())
            }
            AttributeTest::NotEquals(v) => twice(queries::ATTRIBUTE_IS_NOT, Bind::Str(v.clone())),
            AttributeTest::Exists => (queries::ATTRIBUTE_EXISTS, vec![key(), key()]),
            AttributeTest::Above(n) => twice(queries::ATTRIBUTE_ABOVE, Bind::F64(*n)),
            AttributeTest::AtLeast(n) => twice(queries::ATTRIBUTE_AT_LEAST, Bind::F64(*n)),
            AttributeTest::Below(n) => twice(queries::ATTRIBUTE_BELOW, Bind::F64(*n)),
            AttributeTest::AtMost(n) => twice(queries::ATTRIBUTE_AT_MOST, Bind::F64(*n)),
        }
    }
}

impl TraceSearch {
    fn order(&self) -> &'static str {
        match self.sort {
            TraceSort::Newest => queries::ORDER_NEWEST,
            TraceSort::Longest => queries::ORDER_LONGEST,
            TraceSort::MostErrors => queries::ORDER_MOST_ERRORS,
        }
    }

    /// The search's filters and their binds in the order of
    /// [`queries::matching_traces`]; `with_cursor` continues after [`Self::after`].
    fn filter(&self, with_cursor: bool) -> (TraceFilter, Vec<Bind>) {
        self.sampled_filter(with_cursor, None)
    }

    /// [`Self::filter`] with the binds in the order of [`queries::matching_traces_of`]
    /// when `sample` is the bind of its sample condition (after each window).
    fn sampled_filter(&self, with_cursor: bool, sample: Option<&Bind>) -> (TraceFilter, Vec<Bind>) {
        let mut filter = TraceFilter::default();
        let spans = &mut filter.spans;
        if let Some(service) = &self.service {
            spans.push(queries::SERVICE_IS, [Bind::Str(service.clone())]);
        }
        if let Some(operation) = &self.operation {
            spans.push(queries::OPERATION_IS, [Bind::Str(operation.clone())]);
        }
        if !self.kinds.is_empty() {
            let kinds = self.kinds.iter().map(|k| u64::from(*k)).collect();
            spans.push(queries::KIND_IN, [Bind::U64s(kinds)]);
        }
        if let Some(min) = self.min_duration_ns {
            spans.push(queries::DURATION_AT_LEAST, [Bind::U64(min)]);
        }
        if let Some(max) = self.max_duration_ns {
            spans.push(queries::DURATION_AT_MOST, [Bind::U64(max)]);
        }
        if self.errors_only {
            spans.push(queries::IS_ERROR, []);
        }
        for attribute in &self.attributes {
            let (condition, binds) = attribute.condition();
            spans.push(condition, binds);
        }
        let traces = &mut filter.traces;
        // The index is read by whole seconds; the trace's start is held to the exact window.
        traces.push(
            queries::TRACE_STARTS_FROM,
            [Bind::U64(self.start_unix_nano)],
        );
        traces.push(queries::TRACE_STARTS_UNTIL, [Bind::U64(self.end_unix_nano)]);
        if let Some(min) = self.min_trace_duration_ns {
            traces.push(queries::TRACE_LASTS_AT_LEAST, [Bind::U64(min)]);
        }
        if let Some(max) = self.max_trace_duration_ns {
            traces.push(queries::TRACE_LASTS_AT_MOST, [Bind::U64(max)]);
        }
        if let Some(rule) = &self.sampled_by {
            traces.push(queries::TRACE_KEPT_BY, [Bind::Str(rule.clone())]);
        }
        if with_cursor && let Some(cursor) = self.after {
            let id = Bind::Str(hex::encode_upper(cursor.trace_id));
            match cursor.sort {
                TraceSort::Newest => {
                    traces.push(queries::AFTER_NEWEST, [Bind::U64(cursor.key), id])
                }
                TraceSort::Longest => {
                    traces.push(queries::AFTER_LONGEST, [Bind::U64(cursor.key), id])
                }
                TraceSort::MostErrors => traces.push(
                    queries::AFTER_MOST_ERRORS,
                    [Bind::U64(cursor.key), Bind::U64(cursor.start_unix_nano), id],
                ),
            }
        }
        let window = [
            second_floor(self.start_unix_nano),
            second_ceil(self.end_unix_nano),
        ];
        let mut binds: Vec<Bind> = window.to_vec();
        binds.extend(sample.cloned());
        if !filter.spans.conditions.is_empty() {
            binds.extend(window.iter().cloned());
            binds.extend(sample.cloned());
            binds.extend(filter.spans.binds.iter().cloned());
        }
        binds.extend(filter.traces.binds.iter().cloned());
        (filter, binds)
    }
}

impl LogSearch {
    /// Where this page ends: the window's end, or the previous page's last line.
    fn page_end(&self) -> u64 {
        self.before.map_or(self.end_unix_nano, |cursor| {
            cursor.time_unix_nano.min(self.end_unix_nano)
        })
    }

    /// The binds of a page read from `read_from_unix_nano` on: the seconds read, the
    /// exact window, the filter's, the limit.
    fn page_binds(&self, read_from_unix_nano: u64) -> (Vec<Bind>, SpanFilter) {
        let (window, filter) = self.filter(true);
        let mut binds = vec![
            second_floor(read_from_unix_nano.max(self.start_unix_nano)),
            window[1].clone(),
            Bind::U64(self.start_unix_nano),
            Bind::U64(self.end_unix_nano),
        ];
        binds.extend(filter.binds.iter().cloned());
        binds.push(Bind::U64(u64::from(self.limit)));
        (binds, filter)
    }

    /// The filters of the search as conditions on `logs`, the window's seconds first.
    fn filter(&self, with_cursor: bool) -> (Vec<Bind>, SpanFilter) {
        let mut filter = SpanFilter::default();
        if let Some(service) = &self.service {
            filter.push(queries::LOG_SERVICE_IS, [Bind::Str(service.clone())]);
        }
        if let Some(severity) = self.min_severity {
            filter.push(
                queries::LOG_SEVERITY_AT_LEAST,
                [Bind::U64(u64::from(severity))],
            );
        }
        if let Some(text) = &self.text {
            filter.push(queries::LOG_BODY_CONTAINS, [Bind::Str(text.clone())]);
        }
        for (key, value) in &self.attributes {
            let (key, value) = (Bind::Str(key.clone()), Bind::Str(value.clone()));
            filter.push(
                queries::LOG_ATTRIBUTE_IS,
                [key.clone(), value.clone(), key, value],
            );
        }
        if let Some(trace_id) = self.trace_id {
            filter.push(queries::LOG_TRACE_IS, [Bind::Str(trace_id.to_hex())]);
        }
        if let Some(span_id) = self.span_id {
            filter.push(queries::LOG_SPAN_IS, [Bind::Str(span_id.to_hex())]);
        }
        let end = if with_cursor {
            self.page_end()
        } else {
            self.end_unix_nano
        };
        if with_cursor && let Some(cursor) = self.before {
            filter.push(
                queries::LOG_BEFORE,
                [
                    Bind::U64(cursor.time_unix_nano),
                    Bind::U64(cursor.time_unix_nano),
                    Bind::U64(cursor.message),
                    Bind::U64(cursor.message),
                    Bind::U64(u64::from(cursor.message_line)),
                ],
            );
        }
        let window = vec![second_floor(self.start_unix_nano), second_ceil(end)];
        (window, filter)
    }
}

impl TenantRead<LogRow> {
    /// A page of `search`, reading only the seconds from `read_from_unix_nano` on (the
    /// window's start, or later for a narrower first read).
    pub(super) fn log_search(
        tenant: TenantId,
        search: &LogSearch,
        read_from_unix_nano: u64,
    ) -> Self {
        let (binds, filter) = search.page_binds(read_from_unix_nano);
        Self::new(tenant, &queries::log_search(&filter), binds)
    }
}

impl TenantRead<LogPageStart> {
    /// Where the page of `search` probably begins: over the whole seconds of its window
    /// from `from_unix_nano`'s (the window's start, or later) up to its cursor's second.
    pub(super) fn log_page_start(
        tenant: TenantId,
        search: &LogSearch,
        from_unix_nano: u64,
    ) -> Self {
        let (_, filter) = search.filter(false);
        let from = second_floor(from_unix_nano.max(search.start_unix_nano));
        let mut binds = vec![from, second_ceil(search.page_end())];
        binds.extend(filter.binds.iter().cloned());
        binds.push(Bind::U64(u64::from(search.limit)));
        Self::new(tenant, &queries::log_page_start(&filter), binds)
    }
}

impl TenantRead<LogCount> {
    pub(super) fn log_histogram(tenant: TenantId, search: &LogSearch, step_seconds: u32) -> Self {
        let (window, filter) = search.filter(false);
        let step = Bind::U64(u64::from(step_seconds.max(1)));
        let mut binds = vec![step.clone(), step];
        binds.extend(window);
        binds.extend(filter.binds.iter().cloned());
        Self::new(tenant, &queries::log_histogram(&filter), binds)
    }
}

impl TenantRead<SpanRow> {
    /// The spans of a trace, within the window its summary gives.
    pub(super) fn trace_spans(tenant: TenantId, trace_id: TraceId, summary: &TraceSummary) -> Self {
        Self::new(
            tenant,
            queries::TRACE_SPANS,
            vec![
                second_floor(summary.start_time_unix_nano),
                second_ceil(summary.end_time_unix_nano),
                Bind::Str(trace_id.to_hex()),
            ],
        )
    }

    /// The spans of several traces, within the window their summaries span.
    pub(super) fn spans_of_traces(tenant: TenantId, traces: &[TraceSummary]) -> Self {
        let start = traces.iter().map(|t| t.start_time_unix_nano).min();
        let end = traces.iter().map(|t| t.end_time_unix_nano).max();
        let ids = traces
            .iter()
            .map(|t| hex::encode_upper(t.trace_id))
            .collect();
        Self::new(
            tenant,
            queries::SPANS_OF_TRACES,
            vec![
                second_floor(start.unwrap_or(0)),
                second_ceil(end.unwrap_or(0)),
                Bind::Strs(ids),
            ],
        )
    }
}

impl TenantRead<StoredSpan> {
    pub(super) fn stored_spans(tenant: TenantId, traces: &[[u8; 16]], seconds: (u32, u32)) -> Self {
        let (first, last) = seconds;
        Self::new(
            tenant,
            queries::STORED_SPANS,
            vec![
                Bind::U64(u64::from(first)),
                Bind::U64(u64::from(last)),
                Bind::Strs(traces.iter().map(hex::encode_upper).collect()),
            ],
        )
    }
}

impl TenantRead<StoredCounts> {
    pub(super) fn stored_counts(tenant: TenantId) -> Self {
        Self::new(tenant, queries::STORED_COUNTS, Vec::new())
    }
}

impl TenantRead<StoredTraffic> {
    pub(super) fn stored_traffic(
        tenant: TenantId,
        start_unix_nano: u64,
        end_unix_nano: u64,
    ) -> Self {
        Self::new(
            tenant,
            queries::STORED_TRAFFIC,
            vec![second_floor(start_unix_nano), second_ceil(end_unix_nano)],
        )
    }
}

impl TenantRead<String> {
    pub(super) fn services(tenant: TenantId, since_unix_nano: u64) -> Self {
        Self::new(
            tenant,
            queries::SERVICES,
            vec![second_floor(since_unix_nano)],
        )
    }
}

impl TenantRead<Operation> {
    pub(super) fn operations(tenant: TenantId, service: &str, since_unix_nano: u64) -> Self {
        Self::new(
            tenant,
            queries::OPERATIONS,
            vec![Bind::Str(service.to_owned()), second_floor(since_unix_nano)],
        )
    }
}

impl TenantRead<RedStats> {
    pub(super) fn service_red(tenant: TenantId, window: MetricsWindow) -> Self {
        Self::new(tenant, &queries::service_red(), window.binds().to_vec())
    }

    pub(super) fn operation_red(tenant: TenantId, service: &str, window: MetricsWindow) -> Self {
        let mut binds = vec![Bind::Str(service.to_owned())];
        binds.extend(window.binds());
        Self::new(tenant, &queries::operation_red(), binds)
    }
}

impl TenantRead<RedPoint> {
    pub(super) fn service_series(
        tenant: TenantId,
        series: &RedSeries,
        window: MetricsWindow,
    ) -> Self {
        let step = Bind::U64(u64::from(series.step_seconds));
        let mut binds = vec![step.clone(), step, Bind::Str(series.service.clone())];
        binds.extend(window.binds());
        if let Some(operation) = &series.operation {
            binds.push(Bind::Str(operation.clone()));
        }
        Self::new(
            tenant,
            &queries::service_series(series.operation.is_some()),
            binds,
        )
    }
}

impl TenantRead<NamedRedPoint> {
    /// Every service's series (`service` `None`), or every operation's of `service`.
    pub(super) fn named_series(
        tenant: TenantId,
        service: Option<&str>,
        step_seconds: u32,
        window: MetricsWindow,
    ) -> Self {
        let step = Bind::U64(u64::from(step_seconds));
        let mut binds = vec![step.clone(), step];
        binds.extend(service.map(|s| Bind::Str(s.to_owned())));
        binds.extend(window.binds());
        Self::new(tenant, &queries::named_series(service.is_some()), binds)
    }
}

impl TenantRead<EdgeStats> {
    pub(super) fn service_edges(tenant: TenantId, window: MetricsWindow) -> Self {
        Self::new(tenant, &queries::service_edges(), window.binds().to_vec())
    }
}

impl TenantRead<StoredLogLine> {
    /// Which lines of `messages` the `logs` table stores, looking at lines between the
    /// seconds `first..=last`.
    pub(super) fn stored_log_lines(
        tenant: TenantId,
        messages: &[u64],
        (first, last): (u32, u32),
    ) -> Self {
        Self::new(
            tenant,
            &queries::stored_log_lines(),
            vec![
                Bind::U64(u64::from(first)),
                Bind::U64(u64::from(last)),
                Bind::U64s(messages.to_vec()),
            ],
        )
    }
}

impl TenantRead<u64> {
    pub(super) fn spans_received(tenant: TenantId, window: MetricsWindow) -> Self {
        Self::new(tenant, &queries::spans_received(), window.binds().to_vec())
    }

    /// Which of `messages` the metrics table `table` counts, looking at the minutes
    /// `first_minute..=last_minute` where their rows are.
    pub(super) fn counted_messages(
        tenant: TenantId,
        table: &'static str,
        messages: &[u64],
        (first_minute, last_minute): (u32, u32),
    ) -> Self {
        Self::new(
            tenant,
            &queries::counted_messages(table),
            vec![
                Bind::U64(u64::from(first_minute)),
                Bind::U64(u64::from(last_minute)),
                Bind::U64s(messages.to_vec()),
            ],
        )
    }
}

/// A series of a service's metrics: one point per step, optionally of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedSeries {
    pub service: String,
    pub operation: Option<String>,
    /// A whole number of minutes.
    pub step_seconds: u32,
}

/// Reads of one tenant's traces and metrics.
pub struct TenantTraces<'a> {
    reader: Reader<'a>,
    tenant: TenantId,
    gates: &'a TenantGates,
}

impl<'a> TenantTraces<'a> {
    pub(super) fn new(
        client: &'a ::clickhouse::Client,
        tenant: TenantId,
        limits: ReadLimits,
        gates: &'a TenantGates,
    ) -> Self {
        TenantTraces {
            reader: Reader { client, limits },
            tenant,
            gates,
        }
    }

    /// One of the tenant's scan slots, for reads that scan rather than seek.
    fn scan_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ClickHouseError> {
        self.gates
            .enter(self.tenant, self.reader.limits.scans_per_tenant)
    }

    /// The summary and all spans of a trace, or `None` when this tenant has no such trace.
    pub async fn trace(
        &self,
        trace_id: TraceId,
    ) -> Result<Option<(TraceSummary, Vec<SpanRow>)>, ClickHouseError> {
        let summary = TenantRead::trace_summary(self.tenant, trace_id)
            .fetch_optional(self.reader)
            .await?;
        let Some(summary) = summary else {
            return Ok(None);
        };
        let spans = TenantRead::trace_spans(self.tenant, trace_id, &summary)
            .fetch_all(self.reader)
            .await?;
        Ok(Some((summary, spans)))
    }

    /// A trace's summary alone, without reading its spans.
    pub async fn trace_summary(
        &self,
        trace_id: TraceId,
    ) -> Result<Option<TraceSummary>, ClickHouseError> {
        TenantRead::trace_summary(self.tenant, trace_id)
            .fetch_optional(self.reader)
            .await
    }

    /// A page of the traces `search` finds: their ids first, then only their summaries
    /// (see [`queries::search_page_ids`]); both reads under the read limits.
    pub async fn search(&self, search: &TraceSearch) -> Result<Vec<TraceSummary>, ClickHouseError> {
        let _slot = self.scan_slot()?;
        let ids = TenantRead::search_page_ids(self.tenant, search)
            .fetch_all(self.reader)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        TenantRead::search_page(self.tenant, search, ids)
            .fetch_all(self.reader)
            .await
    }

    /// How many traces of `search` (its cursor, sort and limit aside) `selection`
    /// selects, and per attribute key (span and resource, `ignored` left out) its values
    /// with the selected and the other traces that carry each, over a sample of at most
    /// `WEFT_QUERY_DIFFERENCE_SAMPLE_TRACES` traces of each group (the empty key counts
    /// the traces sampled): what "what is different" ranks. Two reads, both under the
    /// read limits and one scan slot.
    pub async fn attribute_difference(
        &self,
        search: &TraceSearch,
        selection: &TraceSelection,
        ignored: &[&str],
    ) -> Result<(SelectionCounts, Vec<AttributeValues>), ClickHouseError> {
        let _slot = self.scan_slot()?;
        let counts = TenantRead::selection_counts(self.tenant, search, selection)
            .fetch_one(self.reader)
            .await?;
        if counts.selected == 0 {
            return Ok((counts, Vec::new()));
        }
        let wanted = self.reader.limits.difference_sample_traces;
        let read = |sample| async move {
            TenantRead::attribute_values(
                self.tenant,
                search,
                selection,
                ignored,
                (counts, wanted),
                sample,
            )
            .fetch_all(self.reader)
            .await
        };
        let values = read(queries::TraceSample::IdRange).await?;
        // Ids that are not random in their leading bytes leave a range (nearly) empty:
        // then the sample is taken by hash, at the cost of reading the whole window.
        let sampled = values.iter().find(|v| v.key.is_empty());
        let first = |counts: Option<&Vec<u64>>| counts.and_then(|c| c.first().copied());
        let read_selected = first(sampled.map(|v| &v.selected)).unwrap_or(0);
        let read_baseline = first(sampled.map(|v| &v.baseline)).unwrap_or(0);
        let too_few = |read: u64, traces: u64| traces >= 100 && read * 2 < traces.min(wanted);
        if too_few(read_selected, counts.selected) || too_few(read_baseline, counts.baseline) {
            return Ok((counts, read(queries::TraceSample::IdHash).await?));
        }
        Ok((counts, values))
    }

    /// The spans of some of the tenant's traces (summaries as [`Self::search`] returns
    /// them), in one read ordered by trace. A caller bounds how many spans that is by the
    /// summaries' span counts.
    pub async fn spans_of_traces(
        &self,
        traces: &[TraceSummary],
    ) -> Result<Vec<SpanRow>, ClickHouseError> {
        if traces.is_empty() {
            return Ok(Vec::new());
        }
        let _slot = self.scan_slot()?;
        TenantRead::spans_of_traces(self.tenant, traces)
            .fetch_all(self.reader)
            .await
    }

    /// What the trace index holds of traces starting in the window.
    pub async fn stored_traffic(
        &self,
        start_unix_nano: u64,
        end_unix_nano: u64,
    ) -> Result<StoredTraffic, ClickHouseError> {
        let _slot = self.scan_slot()?;
        TenantRead::stored_traffic(self.tenant, start_unix_nano, end_unix_nano)
            .fetch_one(self.reader)
            .await
    }

    /// Spans the tenant sent in the window, before sampling, from the span metrics.
    pub async fn spans_received(&self, window: MetricsWindow) -> Result<u64, ClickHouseError> {
        let _slot = self.scan_slot()?;
        TenantRead::spans_received(self.tenant, window)
            .fetch_one(self.reader)
            .await
    }

    pub async fn stored_counts(&self) -> Result<StoredCounts, ClickHouseError> {
        TenantRead::stored_counts(self.tenant)
            .fetch_one(self.reader)
            .await
    }

    pub async fn services(&self, since_unix_nano: u64) -> Result<Vec<String>, ClickHouseError> {
        let _slot = self.scan_slot()?;
        TenantRead::services(self.tenant, since_unix_nano)
            .fetch_all(self.reader)
            .await
    }

    pub async fn operations(
        &self,
        service: &str,
        since_unix_nano: u64,
    ) -> Result<Vec<Operation>, ClickHouseError> {
        let _slot = self.scan_slot()?;
        TenantRead::operations(self.tenant, service, since_unix_nano)
            .fetch_all(self.reader)
            .await
    }

    /// RED of every service in the window, by span kind (`name` is the service).
    pub async fn service_red(
        &self,
        window: MetricsWindow,
    ) -> Result<Vec<RedStats>, ClickHouseError> {
        let _slot = self.scan_slot()?;
        TenantRead::service_red(self.tenant, window)
            .fetch_all(self.reader)
            .await
    }

    /// RED of every operation of `service` in the window, by span kind (`name` is the
    /// operation); empty when the service has no metrics there.
    pub async fn operation_red(
        &self,
        service: &str,
        window: MetricsWindow,
    ) -> Result<Vec<RedStats>, ClickHouseError> {
        let _slot = self.scan_slot()?;
        TenantRead::operation_red(self.tenant, service, window)
            .fetch_all(self.reader)
            .await
    }

    /// RED of a service per step and span kind; steps without spans have no point.
    pub async fn service_series(
        &self,
        series: &RedSeries,
        window: MetricsWindow,
    ) -> Result<Vec<RedPoint>, ClickHouseError> {
        let _slot = self.scan_slot()?;
        TenantRead::service_series(self.tenant, series, window)
            .fetch_all(self.reader)
            .await
    }

    /// RED of every service per step and span kind, in one read (`name` is the
    /// service); steps without spans have no point.
    pub async fn services_series(
        &self,
        step_seconds: u32,
        window: MetricsWindow,
    ) -> Result<Vec<NamedRedPoint>, ClickHouseError> {
        let _slot = self.scan_slot()?;
        TenantRead::named_series(self.tenant, None, step_seconds, window)
            .fetch_all(self.reader)
            .await
    }

    /// RED of every operation of `service` per step and span kind, in one read (`name`
    /// is the operation); steps without spans have no point.
    pub async fn operations_series(
        &self,
        service: &str,
        step_seconds: u32,
        window: MetricsWindow,
    ) -> Result<Vec<NamedRedPoint>, ClickHouseError> {
        let _slot = self.scan_slot()?;
        TenantRead::named_series(self.tenant, Some(service), step_seconds, window)
            .fetch_all(self.reader)
            .await
    }

    /// Calls between services in the window.
    pub async fn service_edges(
        &self,
        window: MetricsWindow,
    ) -> Result<Vec<EdgeStats>, ClickHouseError> {
        let _slot = self.scan_slot()?;
        TenantRead::service_edges(self.tenant, window)
            .fetch_all(self.reader)
            .await
    }

    /// Which of `messages` (bus stream sequences) the metrics table of `R` already counts
    /// for this tenant; `minutes` (first, last) bound the minutes of their rows. The
    /// sampler's check before it counts a message that may have been counted before.
    pub async fn counted_messages<R: MetricRow>(
        &self,
        messages: &[u64],
        minutes: (u32, u32),
    ) -> Result<Vec<u64>, ClickHouseError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        TenantRead::counted_messages(self.tenant, R::TABLE, messages, minutes)
            .fetch_all(self.reader)
            .await
    }

    /// Log lines matching `search`, newest first, at most `search.limit`.
    ///
    /// A page of a trace's (or span's) lines is one read of the window. Any other page is
    /// the newest lines before the page's end, and in a busy window they lie in its last
    /// moments: the first read covers only [`LOG_FIRST_READ_NANOS`] before that
    /// end. When that holds no whole page, a narrow read of the window's whole seconds
    /// (the `time` column and the filter's) finds the second where the page begins, and
    /// the page is read from there; should the lines of the last second past the window's
    /// end (or newer than the cursor) have moved that second too late, so the read finds
    /// no whole page, the whole window is read. Either way the answer is that of one read
    /// of the whole window: a read of the seconds from `s` on that finds a page holds
    /// every line of those seconds, and every line before `s` is older than all of them.
    pub async fn logs(&self, search: &LogSearch) -> Result<Vec<LogRow>, ClickHouseError> {
        let _slot = self.scan_slot()?;
        self.log_page(search).await
    }

    /// A page of [`Self::logs`] and, read at the same time under the same scan slot, the
    /// lines matching `search` (its cursor aside) per step of `step_seconds`, steps
    /// without lines left out: the first page of a search.
    ///
    /// The histogram counts every matching line of the window, so when the first read
    /// (the last [`LOG_FIRST_READ_NANOS`]) holds no whole page, the histogram tells where
    /// the page begins, and the page is read from there: one scan of the window's filter
    /// columns instead of two (the histogram's and the narrow read of [`Self::logs`]),
    /// which for a text or attribute filter is most of the cost. Windows up to
    /// [`LOG_SECOND_COUNTS_NANOS`] are counted per second (and the steps summed here), so
    /// the counts give the very second; a longer window's steps are narrowed by a read of
    /// the step where the page begins.
    pub async fn logs_with_histogram(
        &self,
        search: &LogSearch,
        step_seconds: u32,
    ) -> Result<(Vec<LogRow>, Vec<LogCount>), ClickHouseError> {
        let _slot = self.scan_slot()?;
        let step = step_seconds.max(1);
        if search.trace_id.is_some() || search.span_id.is_some() || search.before.is_some() {
            let histogram = TenantRead::log_histogram(self.tenant, search, step);
            return tokio::try_join!(self.log_page(search), histogram.fetch_all(self.reader));
        }
        let window = search.end_unix_nano.saturating_sub(search.start_unix_nano);
        let counted = if window <= LOG_SECOND_COUNTS_NANOS {
            1
        } else {
            step
        };
        let histogram = TenantRead::log_histogram(self.tenant, search, counted);
        let from = search.page_end().saturating_sub(LOG_FIRST_READ_NANOS);
        let first = TenantRead::log_search(self.tenant, search, from);
        let (lines, counts) = tokio::try_join!(
            first.fetch_all(self.reader),
            histogram.fetch_all(self.reader)
        )?;
        let page = if lines.len() >= search.limit as usize || from <= search.start_unix_nano {
            lines
        } else {
            self.page_by_counts(search, lines, &counts, counted).await?
        };
        Ok((page, sum_steps(&counts, step)))
    }

    /// The first page of `search`, whose first read found `lines`, not a whole page;
    /// `counts` are the window's lines per `counted` seconds.
    async fn page_by_counts(
        &self,
        search: &LogSearch,
        lines: Vec<LogRow>,
        counts: &[LogCount],
        counted: u32,
    ) -> Result<Vec<LogRow>, ClickHouseError> {
        let total: u64 = counts.iter().map(|step| step.lines).sum();
        if total <= lines.len() as u64 {
            // The first read found every matching line of the window.
            return Ok(lines);
        }
        // The newest step from which on the steps hold a page; the window's start when
        // the whole window holds none.
        let mut held = 0;
        let begins = counts
            .iter()
            .rev()
            .find(|step| {
                held += step.lines;
                held >= u64::from(search.limit)
            })
            .map_or(search.start_unix_nano, |step| {
                (u64::from(step.step_start) * NANOS).max(search.start_unix_nano)
            });
        if begins <= search.start_unix_nano {
            return TenantRead::log_search(self.tenant, search, search.start_unix_nano)
                .fetch_all(self.reader)
                .await;
        }
        if counted == 1 {
            let page = TenantRead::log_search(self.tenant, search, begins)
                .fetch_all(self.reader)
                .await?;
            if page.len() >= search.limit as usize {
                return Ok(page);
            }
        } else if let Some(page) = self.full_page_from(search, begins).await? {
            // A step can hold millions of lines: a narrow read of the seconds from its
            // start found the second where the page begins.
            return Ok(page);
        }
        // The counts are of whole seconds: lines of the last second past the window's
        // end counted where the page begins, which is then earlier.
        self.log_page_from_start(search, lines).await
    }

    /// The page of `search` if the seconds from `from_unix_nano` on hold a whole page: a
    /// narrow read of them finds the second where it begins, and it is read from there.
    async fn full_page_from(
        &self,
        search: &LogSearch,
        from_unix_nano: u64,
    ) -> Result<Option<Vec<LogRow>>, ClickHouseError> {
        let start = TenantRead::log_page_start(self.tenant, search, from_unix_nano)
            .fetch_one(self.reader)
            .await?;
        if start.lines < u64::from(search.limit) {
            return Ok(None);
        }
        let page = TenantRead::log_search(self.tenant, search, u64::from(start.second) * NANOS)
            .fetch_all(self.reader)
            .await?;
        Ok((page.len() >= search.limit as usize).then_some(page))
    }

    async fn log_page(&self, search: &LogSearch) -> Result<Vec<LogRow>, ClickHouseError> {
        if search.trace_id.is_some() || search.span_id.is_some() {
            // A trace's lines are few and anywhere in its window: one read, whose id
            // condition ClickHouse checks first (PREWHERE), finds them.
            return TenantRead::log_search(self.tenant, search, search.start_unix_nano)
                .fetch_all(self.reader)
                .await;
        }
        let from = search.page_end().saturating_sub(LOG_FIRST_READ_NANOS);
        let lines = TenantRead::log_search(self.tenant, search, from)
            .fetch_all(self.reader)
            .await?;
        if lines.len() >= search.limit as usize || from <= search.start_unix_nano {
            return Ok(lines);
        }
        self.log_page_from_start(search, lines).await
    }

    /// The page of `search` when `lines`, read from some time before its end, hold no
    /// whole page: from the second where a narrow read finds it begins, or the window.
    async fn log_page_from_start(
        &self,
        search: &LogSearch,
        lines: Vec<LogRow>,
    ) -> Result<Vec<LogRow>, ClickHouseError> {
        let start = TenantRead::log_page_start(self.tenant, search, search.start_unix_nano)
            .fetch_one(self.reader)
            .await?;
        if start.lines as usize <= lines.len() {
            // The first read found every matching line of the window.
            return Ok(lines);
        }
        let page = TenantRead::log_search(self.tenant, search, u64::from(start.second) * NANOS)
            .fetch_all(self.reader)
            .await?;
        if page.len() >= search.limit as usize {
            return Ok(page);
        }
        // Lines of the last second past the window's end or newer than the cursor counted
        // where the page begins, which is then earlier: read the whole window.
        TenantRead::log_search(self.tenant, search, search.start_unix_nano)
            .fetch_all(self.reader)
            .await
    }

    /// Which spans of `traces` the store holds for this tenant; `seconds` (first, last)
    /// bound their start times. The sampler's check before it writes spans that may have
    /// been written before (a redelivered message, an INSERT whose answer was lost);
    /// their trace index rows were stored with them.
    pub async fn stored_spans(
        &self,
        traces: &[[u8; 16]],
        seconds: (u32, u32),
    ) -> Result<Vec<StoredSpan>, ClickHouseError> {
        let mut stored = Vec::new();
        // The ids are bound as text in the statement, which ClickHouse parses only up to
        // `max_query_size` (256 KiB by default): a writer batch holds tens of thousands
        // of traces, so they are looked up a few thousand at a time.
        for traces in traces.chunks(STORED_SPANS_TRACES_PER_READ) {
            stored.extend(
                TenantRead::stored_spans(self.tenant, traces, seconds)
                    .fetch_all(self.reader)
                    .await?,
            );
        }
        Ok(stored)
    }

    /// Which lines (message, line) of `messages` (bus stream sequences) the `logs` table
    /// stores for this tenant; `seconds` (first, last) bound the times of their lines.
    /// The sampler's check before it writes a message that may have been written before.
    pub async fn stored_log_lines(
        &self,
        messages: &[u64],
        seconds: (u32, u32),
    ) -> Result<Vec<StoredLogLine>, ClickHouseError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        TenantRead::stored_log_lines(self.tenant, messages, seconds)
            .fetch_all(self.reader)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use queries::TraceSample::{IdHash, IdRange};

    #[test]
    fn a_sample_reads_its_share_of_the_id_space_or_of_the_hashes() {
        let all = Bind::Str("F".repeat(32));
        assert_eq!(sample_bind(IdRange, 50, 100), all);
        assert_eq!(sample_bind(IdRange, 100, 100), all);
        assert_eq!(
            sample_bind(IdRange, 400, 100),
            Bind::Str("4000000000000000FFFFFFFFFFFFFFFF".to_owned())
        );
        assert_eq!(
            sample_bind(IdRange, 3_000_000, 10_000),
            Bind::Str(format!("{:016X}FFFFFFFFFFFFFFFF", u64::MAX / 300))
        );
        assert_eq!(sample_bind(IdHash, 50, 100), Bind::U64(1));
        assert_eq!(sample_bind(IdHash, 401, 100), Bind::U64(5));
    }
}
