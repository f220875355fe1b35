//! The JSON shapes of the API. Nanosecond timestamps are strings (as in OTLP/JSON) since
//! they exceed what a JavaScript number holds exactly; durations are numbers.

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use weft_storage::clickhouse::{DurationHistogram, MetricsWindow, SpanRow, TraceSummary};

#[derive(Serialize)]
pub struct TraceSummaryView {
    pub trace_id: String,
    pub root_service: String,
    pub root_name: String,
    pub start_time_unix_nano: String,
    pub duration_ns: u64,
    pub span_count: u64,
    pub error_count: u64,
    pub services: Vec<String>,
    /// 1 / the probability the trace was kept with: each stored trace stands for this
    /// many like it.
    pub sample_rate: f32,
    /// The sampling rule that kept the trace; `null` for traces kept whole by no rule.
    pub sampled_by: Option<String>,
}

impl From<&TraceSummary> for TraceSummaryView {
    fn from(t: &TraceSummary) -> Self {
        let mut services = t.service_names.clone();
        services.sort();
        TraceSummaryView {
            trace_id: hex::encode(t.trace_id),
            root_service: t.root_service.clone(),
            root_name: t.root_name.clone(),
            start_time_unix_nano: t.start_time_unix_nano.to_string(),
            duration_ns: t.end_time_unix_nano.saturating_sub(t.start_time_unix_nano),
            span_count: t.span_count,
            error_count: t.error_count,
            services,
            sample_rate: t.sample_rate,
            sampled_by: (!t.sampled_by.is_empty()).then(|| t.sampled_by.clone()),
        }
    }
}

#[derive(Serialize)]
pub struct TraceView {
    #[serde(flatten)]
    pub summary: TraceSummaryView,
    /// In waterfall order: each span follows its parent, siblings by start time.
    pub spans: Vec<SpanView>,
}

#[derive(Serialize)]
pub struct SpanView {
    pub span_id: String,
    pub parent_span_id: Option<String>,
    /// Distance from the root; spans whose parent is missing start a new root at 0.
    pub depth: usize,
    pub service_name: String,
    pub name: String,
    pub kind: &'static str,
    pub start_time_unix_nano: String,
    pub end_time_unix_nano: String,
    pub duration_ns: u64,
    pub status: StatusView,
    pub attributes: Map<String, Value>,
    pub resource_attributes: Map<String, Value>,
    pub scope: ScopeView,
    pub events: Vec<EventView>,
    pub links: Vec<LinkView>,
    pub trace_state: String,
    /// As on the trace: the sample rate and rule of the decision that kept the span.
    pub sample_rate: f32,
    pub sampled_by: Option<String>,
}

#[derive(Serialize)]
pub struct StatusView {
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
pub struct ScopeView {
    pub name: String,
    pub version: String,
}

#[derive(Serialize)]
pub struct EventView {
    pub time_unix_nano: String,
    pub name: String,
    pub attributes: Value,
}

#[derive(Serialize)]
pub struct LinkView {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: Value,
}

/// Spans (or calls) summed for one line of a metrics answer.
#[derive(Clone, Debug, Default)]
pub struct Red {
    pub count: u64,
    pub errors: u64,
    pub duration_sum_ns: u64,
    pub histogram: DurationHistogram,
}

impl Red {
    /// Adds a row read from ClickHouse: counts, total duration, sparse histogram.
    pub fn add(
        &mut self,
        count: u64,
        errors: u64,
        duration_sum_ns: u64,
        histogram: &(Vec<u16>, Vec<u64>),
    ) {
        self.count += count;
        self.errors += errors;
        self.duration_sum_ns = self.duration_sum_ns.saturating_add(duration_sum_ns);
        self.histogram.add_sparse(&histogram.0, &histogram.1);
    }

    fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        }
    }

    /// Per second over a window of `seconds`.
    fn rate(&self, seconds: f64) -> f64 {
        self.count as f64 / seconds
    }

    fn latency(&self) -> LatencyView {
        let ms = |ns: u64| (ns as f64 / 1_000.0).round() / 1_000.0;
        LatencyView {
            mean_ms: (self.count > 0).then(|| ms(self.duration_sum_ns / self.count)),
            p50_ms: self.histogram.quantile(0.50).map(ms),
            p95_ms: self.histogram.quantile(0.95).map(ms),
            p99_ms: self.histogram.quantile(0.99).map(ms),
        }
    }

    /// Requests, errors, rates and latency over a window of `seconds`.
    pub fn view(&self, seconds: f64) -> RedView {
        RedView {
            requests: self.count,
            errors: self.errors,
            error_rate: self.error_rate(),
            rate_per_second: self.rate(seconds),
            latency: self.latency(),
        }
    }
}

/// Every step of a series over `window`, empty: the step starts (seconds since 1970,
/// multiples of the step) from the one holding the window's start to the one holding its
/// end, so a chart needs no gap filling.
pub fn empty_steps(window: MetricsWindow, step_seconds: u32) -> BTreeMap<u64, Red> {
    let step = u64::from(step_seconds.max(60));
    let first = window.start_unix_nano / 1_000_000_000 / step * step;
    let last = window.end_unix_nano / 1_000_000_000;
    (first..=last)
        .step_by(step as usize)
        .map(|start| (start, Red::default()))
        .collect()
}

/// Durations in milliseconds (to the microsecond), `null` without spans. Percentiles come
/// from the stored histograms, within 3.125 % of the exact ones.
#[derive(Serialize)]
pub struct LatencyView {
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Serialize)]
pub struct RedView {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rate_per_second: f64,
    #[serde(flatten)]
    pub latency: LatencyView,
}

/// A service: RED of its requests (spans of the requested kinds), and all its spans.
#[derive(Serialize)]
pub struct ServiceView {
    pub service: String,
    #[serde(flatten)]
    pub red: RedView,
    pub spans: u64,
}

/// An operation (span name and kind) of a service.
#[derive(Serialize)]
pub struct OperationView {
    pub name: String,
    pub kind: &'static str,
    #[serde(flatten)]
    pub red: RedView,
}

impl OperationView {
    pub fn new(name: &str, kind: u8, red: RedView) -> OperationView {
        OperationView {
            name: name.to_owned(),
            kind: kind_name(kind),
            red,
        }
    }
}

/// One step of a series; rates are per second of the step.
#[derive(Serialize)]
pub struct PointView {
    pub start_time_unix_nano: String,
    #[serde(flatten)]
    pub red: RedView,
}

/// Calls from one service to another.
#[derive(Serialize)]
pub struct EdgeView {
    pub caller: String,
    pub callee: String,
    pub calls: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rate_per_second: f64,
    #[serde(flatten)]
    pub latency: LatencyView,
}

impl EdgeView {
    pub fn new(caller: &str, callee: &str, red: &Red, seconds: f64) -> EdgeView {
        EdgeView {
            caller: caller.to_owned(),
            callee: callee.to_owned(),
            calls: red.count,
            errors: red.errors,
            error_rate: red.error_rate(),
            rate_per_second: red.rate(seconds),
            latency: red.latency(),
        }
    }
}

fn kind_name(kind: u8) -> &'static str {
    weft_model::SpanKind::from_otlp(i32::from(kind)).as_str()
}

fn attribute_map(keys: &[String], values: &[String]) -> Map<String, Value> {
    keys.iter()
        .cloned()
        .zip(values.iter().map(|v| Value::String(v.clone())))
        .collect()
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::Object(Map::new()))
}

fn span_view(span: &SpanRow, depth: usize) -> SpanView {
    SpanView {
        span_id: hex::encode(span.span_id),
        parent_span_id: (span.parent_span_id != [0; 8]).then(|| hex::encode(span.parent_span_id)),
        depth,
        sample_rate: span.sample_rate,
        sampled_by: (!span.sampled_by.is_empty()).then(|| span.sampled_by.clone()),
        service_name: span.service_name.clone(),
        name: span.name.clone(),
        kind: kind_name(span.kind),
        start_time_unix_nano: span.start_time_unix_nano.to_string(),
        end_time_unix_nano: (span.start_time_unix_nano + span.duration_ns).to_string(),
        duration_ns: span.duration_ns,
        status: StatusView {
            code: weft_model::StatusCode::from_otlp(i32::from(span.status_code)).as_str(),
            message: span.status_message.clone(),
        },
        attributes: attribute_map(&span.attribute_keys, &span.attribute_values),
        resource_attributes: attribute_map(&span.resource_keys, &span.resource_values),
        scope: ScopeView {
            name: span.scope_name.clone(),
            version: span.scope_version.clone(),
        },
        events: span
            .event_names
            .iter()
            .enumerate()
            .map(|(i, name)| EventView {
                time_unix_nano: span
                    .event_times_unix_nano
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
                name: name.clone(),
                attributes: parse_json(span.event_attributes.get(i).map_or("{}", String::as_str)),
            })
            .collect(),
        links: span
            .link_trace_ids
            .iter()
            .enumerate()
            .map(|(i, trace_id)| LinkView {
                trace_id: hex::encode(trace_id),
                span_id: span
                    .link_span_ids
                    .get(i)
                    .map(hex::encode)
                    .unwrap_or_default(),
                attributes: parse_json(span.link_attributes.get(i).map_or("{}", String::as_str)),
            })
            .collect(),
        trace_state: span.trace_state.clone(),
    }
}

/// The waterfall order of `spans`: depth-first from each root, siblings by start time, as
/// (index into `spans`, depth). `spans` is sorted by start time first. Spans whose parent
/// is not stored (yet) are shown as roots rather than hidden.
fn waterfall_order(spans: &mut [SpanRow]) -> Vec<(usize, usize)> {
    spans.sort_by_key(|s| (s.start_time_unix_nano, s.span_id));
    let ids: std::collections::HashSet<[u8; 8]> = spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<[u8; 8], Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        if span.parent_span_id != [0; 8]
            && ids.contains(&span.parent_span_id)
            && span.parent_span_id != span.span_id
        {
            children.entry(span.parent_span_id).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    let mut ordered = Vec::with_capacity(spans.len());
    let mut visited = vec![false; spans.len()];
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut visited[i], true) {
            continue;
        }
        ordered.push((i, depth));
        if let Some(kids) = children.get(&spans[i].span_id) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    // Spans in a parent cycle are unreachable from any root; show them rather than lose them.
    for (i, seen) in visited.iter().enumerate() {
        if !seen {
            ordered.push((i, 0));
        }
    }
    ordered
}

/// One page of a trace: the spans at `offset..offset + limit` of its waterfall order.
/// Only the page's spans are turned into views, so a 50 000-span trace costs a page's
/// worth of JSON, not the whole trace's.
#[derive(Serialize)]
pub struct TracePage {
    #[serde(flatten)]
    pub trace: TraceView,
    pub span_offset: usize,
    /// Where the next page starts; `None` on the last one.
    pub next_span_offset: Option<usize>,
}

/// Every stored span of a trace (sorted by start time) with its waterfall order, so that
/// what needs the whole trace (the critical path, the depth) and a page of it are
/// computed from one ordering.
pub struct OrderedTrace {
    pub spans: Vec<SpanRow>,
    /// (index into `spans`, depth), as [`waterfall_order`] gives it.
    pub order: Vec<(usize, usize)>,
}

impl OrderedTrace {
    pub fn new(mut spans: Vec<SpanRow>) -> OrderedTrace {
        let order = waterfall_order(&mut spans);
        OrderedTrace { spans, order }
    }

    /// The spans at `offset..offset + limit` of the waterfall order, as views.
    pub fn page(&self, summary: &TraceSummary, offset: usize, limit: usize) -> TracePage {
        let end = offset.saturating_add(limit).min(self.order.len());
        let page = self.order.get(offset..end).unwrap_or_default();
        TracePage {
            trace: TraceView {
                summary: summary.into(),
                spans: page
                    .iter()
                    .map(|&(i, depth)| span_view(&self.spans[i], depth))
                    .collect(),
            },
            span_offset: offset,
            next_span_offset: (end < self.order.len()).then_some(end),
        }
    }
}

pub fn trace_page(
    summary: &TraceSummary,
    spans: Vec<SpanRow>,
    offset: usize,
    limit: usize,
) -> TracePage {
    OrderedTrace::new(spans).page(summary, offset, limit)
}
