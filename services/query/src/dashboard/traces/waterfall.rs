//! The trace page's model: the header, the waterfall rows (in the order of
//! [`crate::view::OrderedTrace`]: depth-first, siblings by start time), the critical
//! path of the whole trace and the detail of every span, ready for the template so that
//! a 10 000-span trace renders in one pass.
//!
//! Resource attributes are shown once per distinct resource rather than in every span's
//! detail: the spans of one process share them, and repeating them would multiply the
//! page's size.

use super::critical_path::{Section, Timing, critical_path};
use super::format::{self, Tick};
use super::search::Chip;
use crate::view::{OrderedTrace, SpanView, TraceView};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use weft_storage::clickhouse::{SpanRow, TraceSummary};

/// Spans one page shows at most, in waterfall order; a larger trace continues on the
/// next pages (as the API pages it), so no page grows past what a browser handles well.
pub const PAGE_SPANS: usize = 10_000;
/// Event markers drawn on one bar, at most; the detail lists every event.
const MARKERS_PER_SPAN: usize = 20;
/// Where a bar's duration label flips from after the bar to before it (percent), and how
/// far from the left a bar must start for the label to fit before it; otherwise the
/// label goes inside the bar's end.
const LABEL_FLIP: f64 = 78.0;
const LABEL_ROOM: f64 = 12.0;

pub struct Header {
    pub trace_id: String,
    pub root: Option<Chip>,
    pub root_name: String,
    pub started: String,
    pub duration: String,
    pub spans: usize,
    pub errors: usize,
    pub services: Vec<ServiceCount>,
    /// "1 in N" when the trace was kept by sampling at a rate above 1.
    pub sample_rate: Option<String>,
    /// Levels of nesting in the whole trace.
    pub depth: usize,
}

/// Where this page sits in a trace of more than [`PAGE_SPANS`] spans.
pub struct PageNav {
    /// The page's first and last span, counted from 1, of `total`.
    pub first: usize,
    pub last: usize,
    pub total: usize,
    /// The offsets of the pages before and after, when there are.
    pub previous: Option<usize>,
    pub next: Option<usize>,
}

pub struct ServiceCount {
    pub chip: Chip,
    pub spans: usize,
}

/// One line of the waterfall.
pub struct Row {
    pub id: String,
    pub depth: usize,
    /// Descendants, so a collapsed row can say how many spans it hides.
    pub descendants: usize,
    pub service: String,
    pub colour: u64,
    pub name: String,
    pub error: bool,
    pub left: String,
    pub width: String,
    pub duration: String,
    /// Where the duration label sits: after the bar, or before or inside it when the bar
    /// ends near the right edge (the CSS class, empty for after).
    pub label: &'static str,
    /// Where the label is anchored: the bar's start when before it, else its end.
    pub label_at: String,
    pub markers: Vec<Marker>,
    /// The stretches of this span on the trace's critical path, as (left, width) in
    /// percent of the trace.
    pub critical: Vec<(String, String)>,
}

pub struct Marker {
    pub at: String,
    pub exception: bool,
}

pub struct Attribute {
    pub key: String,
    pub value: String,
}

pub struct Exception {
    pub kind: String,
    pub message: String,
    pub stacktrace: String,
}

pub struct Event {
    pub name: String,
    pub offset: String,
    pub attributes: Vec<Attribute>,
    pub exception: Option<Exception>,
}

pub struct Link {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: Vec<Attribute>,
}

/// Everything about one span, shown in the panel when its row is selected.
pub struct Detail {
    pub id: String,
    pub parent_id: Option<String>,
    pub service: String,
    pub colour: u64,
    pub name: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub status_message: String,
    pub error: bool,
    pub duration: String,
    pub offset: String,
    pub started: String,
    pub attributes: Vec<Attribute>,
    pub scope_name: String,
    pub scope_version: String,
    pub events: Vec<Event>,
    pub links: Vec<Link>,
    pub trace_state: String,
    pub resource: usize,
}

/// The attributes one or more spans' process reported.
pub struct Resource {
    pub index: usize,
    pub service: String,
    pub colour: u64,
    pub attributes: Vec<Attribute>,
    pub spans: usize,
}

pub struct Waterfall {
    pub header: Header,
    /// `None` when the whole trace is on this page.
    pub page: Option<PageNav>,
    pub ticks: Vec<Tick>,
    pub rows: Vec<Row>,
    pub details: Vec<Detail>,
    pub resources: Vec<Resource>,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn attributes(map: &Map<String, Value>) -> Vec<Attribute> {
    map.iter()
        .map(|(key, value)| Attribute {
            key: key.clone(),
            value: text(value),
        })
        .collect()
}

fn object(value: &Value) -> Vec<Attribute> {
    value.as_object().map(attributes).unwrap_or_default()
}

fn nanos(text: &str) -> u64 {
    text.parse().unwrap_or(0)
}

/// For each span in waterfall order, the index just past its subtree: the next span
/// that is not deeper. One pass with a stack, so a 10 000-deep chain costs no more than
/// a flat trace.
fn subtree_ends(spans: &[SpanView]) -> Vec<usize> {
    let mut ends = vec![spans.len(); spans.len()];
    let mut open: Vec<usize> = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        while let Some(&top) = open.last() {
            if spans[top].depth < span.depth {
                break;
            }
            ends[top] = i;
            open.pop();
        }
        open.push(i);
    }
    ends
}

/// The critical path of the whole trace, by span (hex id): it is computed over every
/// stored span, so a page shows the stretches of its spans even when their parents or
/// the spans that delay them are on another page. Only the timing of each span is read.
fn critical_sections(trace: &OrderedTrace) -> HashMap<String, Vec<Section>> {
    let mut index: HashMap<[u8; 8], usize> = HashMap::with_capacity(trace.order.len());
    let mut ids = Vec::with_capacity(trace.order.len());
    let mut timings = Vec::with_capacity(trace.order.len());
    for &(i, _) in &trace.order {
        let span = &trace.spans[i];
        if index.contains_key(&span.span_id) {
            // Stored twice by a redelivery: one span.
            continue;
        }
        // In waterfall order a parent comes before its children, as the path needs.
        let parent = index.get(&span.parent_span_id).copied();
        index.insert(span.span_id, timings.len());
        ids.push(span.span_id);
        timings.push(Timing {
            parent,
            start: span.start_time_unix_nano,
            end: span.start_time_unix_nano + span.duration_ns,
        });
    }
    let mut sections: HashMap<String, Vec<Section>> = HashMap::new();
    for section in critical_path(&timings) {
        sections
            .entry(hex::encode(ids[section.span]))
            .or_default()
            .push(section);
    }
    sections
}

/// Builds the page of one trace that starts `offset` spans into its waterfall order.
pub fn build(summary: &TraceSummary, spans: Vec<SpanRow>, offset: usize) -> Waterfall {
    let trace = OrderedTrace::new(spans);
    // The header speaks of the whole trace, each stored span counted once.
    let mut distinct = HashSet::with_capacity(trace.spans.len());
    let mut service_spans: HashMap<String, usize> = HashMap::new();
    let (mut errors, mut sample_rate) = (0, 1.0_f32);
    for span in &trace.spans {
        sample_rate = sample_rate.max(span.sample_rate);
        if distinct.insert(span.span_id) {
            *service_spans.entry(span.service_name.clone()).or_default() += 1;
            errors += usize::from(span.status_code == weft_model::StatusCode::Error as u8);
        }
    }
    let stored = trace.spans.len();
    let depth = trace.order.iter().map(|&(_, d)| d + 1).max().unwrap_or(0);
    let mut critical = critical_sections(&trace);
    // A trace that fits one page is shown whole; a larger one a page at a time, turning
    // only that page's spans into views.
    let (view, page): (TraceView, Option<PageNav>) = if stored <= PAGE_SPANS && offset == 0 {
        (trace.page(summary, 0, usize::MAX).trace, None)
    } else {
        let paged = trace.page(summary, offset, PAGE_SPANS);
        let nav = PageNav {
            first: (offset + 1).min(stored),
            last: (offset + paged.trace.spans.len()).min(stored),
            total: stored,
            previous: (offset > 0).then(|| offset.saturating_sub(PAGE_SPANS)),
            next: paged.next_span_offset,
        };
        (paged.trace, Some(nav))
    };
    // At-least-once delivery can store a span twice; it is shown once.
    let mut seen = HashSet::with_capacity(view.spans.len());
    let spans: Vec<SpanView> = view
        .spans
        .into_iter()
        .filter(|span| seen.insert(span.span_id.clone()))
        .collect();

    let t0 = summary.start_time_unix_nano;
    let total = summary.end_time_unix_nano.saturating_sub(t0).max(1);
    let whole = total as f64;
    let mut resources: Vec<Resource> = Vec::new();
    let mut resource_of: HashMap<Vec<(String, String)>, usize> = HashMap::new();
    let mut rows = Vec::with_capacity(spans.len());
    let mut details = Vec::with_capacity(spans.len());

    let subtree_ends = subtree_ends(&spans);
    for (i, span) in spans.iter().enumerate() {
        let start = nanos(&span.start_time_unix_nano).saturating_sub(t0);
        let colour = format::colour(&span.service_name);
        let error = span.status.code == "error";

        let descendants = subtree_ends[i] - i - 1;
        let left = start as f64;
        let end = (start + span.duration_ns) as f64;
        let label = if end / whole * 100.0 <= LABEL_FLIP {
            ""
        } else if left / whole * 100.0 >= LABEL_ROOM {
            "before"
        } else {
            "inside"
        };
        let events: Vec<Event> = span
            .events
            .iter()
            .map(|event| {
                let attributes = object(&event.attributes);
                let find = |key: &str| {
                    attributes
                        .iter()
                        .find(|a| a.key == key)
                        .map(|a| a.value.clone())
                        .unwrap_or_default()
                };
                let exception = (event.name == "exception").then(|| Exception {
                    kind: find("exception.type"),
                    message: find("exception.message"),
                    stacktrace: find("exception.stacktrace"),
                });
                Event {
                    name: event.name.clone(),
                    offset: format::duration(
                        nanos(&event.time_unix_nano)
                            .saturating_sub(nanos(&span.start_time_unix_nano)),
                    ),
                    attributes,
                    exception,
                }
            })
            .collect();
        let markers = span
            .events
            .iter()
            .take(MARKERS_PER_SPAN)
            .map(|event| Marker {
                at: format::percent(
                    nanos(&event.time_unix_nano).saturating_sub(t0) as f64,
                    whole,
                ),
                exception: event.name == "exception",
            })
            .collect();
        rows.push(Row {
            id: span.span_id.clone(),
            depth: span.depth,
            descendants,
            service: span.service_name.clone(),
            colour,
            name: span.name.clone(),
            error,
            left: format::percent(left, whole),
            width: format::percent(span.duration_ns as f64, whole),
            duration: format::duration(span.duration_ns),
            label,
            label_at: format::percent(if label == "before" { left } else { end }, whole),
            markers,
            critical: critical
                .remove(&span.span_id)
                .unwrap_or_default()
                .iter()
                .map(|section| {
                    (
                        format::percent(section.start.saturating_sub(t0) as f64, whole),
                        format::percent((section.end - section.start) as f64, whole),
                    )
                })
                .collect(),
        });

        let resource_key: Vec<(String, String)> = span
            .resource_attributes
            .iter()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect();
        let resource = *resource_of.entry(resource_key).or_insert_with(|| {
            resources.push(Resource {
                index: resources.len(),
                service: span.service_name.clone(),
                colour,
                attributes: attributes(&span.resource_attributes),
                spans: 0,
            });
            resources.len() - 1
        });
        resources[resource].spans += 1;
        details.push(Detail {
            id: span.span_id.clone(),
            parent_id: span.parent_span_id.clone(),
            service: span.service_name.clone(),
            colour,
            name: span.name.clone(),
            kind: span.kind,
            status: span.status.code,
            status_message: span.status.message.clone(),
            error,
            duration: format::duration(span.duration_ns),
            offset: format::duration(start),
            started: format::timestamp(nanos(&span.start_time_unix_nano)),
            attributes: attributes(&span.attributes),
            scope_name: span.scope.name.clone(),
            scope_version: span.scope.version.clone(),
            events,
            links: span
                .links
                .iter()
                .map(|link| Link {
                    trace_id: link.trace_id.clone(),
                    span_id: link.span_id.clone(),
                    attributes: object(&link.attributes),
                })
                .collect(),
            trace_state: span.trace_state.clone(),
            resource,
        });
    }

    let mut services: Vec<ServiceCount> = service_spans
        .iter()
        .map(|(name, spans)| ServiceCount {
            chip: Chip::new(name),
            spans: *spans,
        })
        .collect();
    services.sort_by(|a, b| b.spans.cmp(&a.spans).then(a.chip.name.cmp(&b.chip.name)));
    let header = Header {
        trace_id: view.summary.trace_id.clone(),
        root: (!summary.root_service.is_empty()).then(|| Chip::new(&summary.root_service)),
        root_name: summary.root_name.clone(),
        started: format::timestamp(t0),
        duration: format::duration(summary.end_time_unix_nano.saturating_sub(t0)),
        spans: distinct.len(),
        errors,
        services,
        sample_rate: (sample_rate > 1.0).then(|| format!("1 in {}", sample_rate.round())),
        depth,
    };
    Waterfall {
        header,
        page,
        ticks: format::duration_ticks(total),
        rows,
        details,
        resources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_767_225_600_000_000_000;

    fn span(id: u8, parent: u8, service: &str, name: &str, start_ms: u64, ms: u64) -> SpanRow {
        SpanRow {
            tenant_id: uuid::Uuid::nil(),
            trace_id: [1; 16],
            span_id: [id; 8],
            parent_span_id: [parent; 8],
            trace_state: String::new(),
            service_name: service.into(),
            name: name.into(),
            kind: 2,
            start_time: (T0 / 1_000_000_000) as u32,
            start_time_unix_nano: T0 + start_ms * 1_000_000,
            duration_ns: ms * 1_000_000,
            status_code: 0,
            status_message: String::new(),
            scope_name: "lib".into(),
            scope_version: "1".into(),
            attribute_keys: vec!["http.route".into()],
            attribute_values: vec!["/x".into()],
            resource_keys: vec!["service.name".to_owned()].into(),
            resource_values: vec![service.to_owned()].into(),
            event_times_unix_nano: vec![],
            event_names: vec![],
            event_attributes: vec![],
            link_trace_ids: vec![],
            link_span_ids: vec![],
            link_attributes: vec![],
            sample_rate: 1.0,
            sampled_by: String::new(),
        }
    }

    fn summary(spans: &[SpanRow]) -> TraceSummary {
        let index = weft_storage::clickhouse::TraceIndexRow::summarise(spans);
        TraceSummary {
            trace_id: [1; 16],
            start_time_unix_nano: index[0].start_time_unix_nano,
            end_time_unix_nano: index[0].end_time_unix_nano,
            root_service: index[0].root_service.clone(),
            root_name: index[0].root_name.clone(),
            span_count: spans.len() as u64,
            error_count: 0,
            service_names: index[0].service_names.clone(),
            sample_rate: 1.0,
            sampled_by: String::new(),
        }
    }

    #[test]
    fn rows_nest_and_bars_sit_at_their_share_of_the_trace() {
        let mut failing = span(4, 2, "payment", "charge", 50, 40);
        failing.status_code = 2;
        failing.event_names = vec!["exception".into()];
        failing.event_times_unix_nano = vec![T0 + 80_000_000];
        failing.event_attributes =
            vec![r#"{"exception.type":"CardDeclined","exception.message":"no funds"}"#.into()];
        failing.sample_rate = 4.0;
        let spans = vec![
            span(1, 0, "checkout", "POST /checkout", 0, 100),
            span(3, 1, "cart", "load cart", 5, 10),
            span(2, 1, "checkout", "pay", 40, 55),
            failing,
            // Stored twice by a redelivery.
            span(3, 1, "cart", "load cart", 5, 10),
        ];
        let page = build(&summary(&spans), spans, 0);
        let names: Vec<(&str, usize, usize)> = page
            .rows
            .iter()
            .map(|r| (r.name.as_str(), r.depth, r.descendants))
            .collect();
        assert_eq!(
            names,
            [
                ("POST /checkout", 0, 3),
                ("load cart", 1, 0),
                ("pay", 1, 1),
                ("charge", 2, 0)
            ]
        );
        let charge = &page.rows[3];
        assert_eq!((charge.left.as_str(), charge.width.as_str()), ("50", "40"));
        assert!(charge.error);
        assert_eq!((charge.label, charge.label_at.as_str()), ("before", "50"));
        assert_eq!(
            (page.rows[0].label, page.rows[0].label_at.as_str()),
            ("inside", "100")
        );
        assert_eq!(charge.markers[0].at, "80");
        assert!(charge.markers[0].exception);
        assert_eq!(
            (page.rows[1].label, page.rows[1].label_at.as_str()),
            ("", "15")
        );

        let detail = &page.details[3];
        assert_eq!(detail.parent_id.as_deref(), Some("0202020202020202"));
        let exception = detail.events[0].exception.as_ref().unwrap();
        assert_eq!(
            (exception.kind.as_str(), exception.message.as_str()),
            ("CardDeclined", "no funds")
        );
        assert_eq!(detail.events[0].offset, "30ms");
        assert_eq!(detail.offset, "50ms");

        assert_eq!(page.resources.len(), 3, "one per service here");
        assert_eq!(page.resources[page.details[2].resource].spans, 2);
        let header = &page.header;
        assert_eq!((header.spans, header.errors, header.depth), (4, 1, 3));
        assert!(page.page.is_none(), "one page holds it");
        assert_eq!(header.duration, "100ms");
        assert_eq!(header.sample_rate.as_deref(), Some("1 in 4"));
        assert_eq!(header.services[0].chip.name, "checkout");
        assert_eq!(header.services[0].spans, 2);
        let ticks: Vec<&str> = page.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(ticks, ["0", "20ms", "40ms", "60ms", "80ms", "100ms"]);
    }

    #[test]
    fn a_trace_larger_than_a_page_is_shown_a_page_at_a_time() {
        let root = span(1, 0, "api", "POST /import", 0, 100);
        let mut spans = vec![root];
        for i in 0..PAGE_SPANS as u64 + 4 {
            let mut row = span(2, 1, "db", "INSERT", 1 + i % 90, 1);
            row.span_id = (i + 2).to_be_bytes();
            row.status_code = u8::from(i % 1000 == 0) * 2;
            spans.push(row);
        }
        let summary = summary(&spans);
        let first = build(&summary, spans.clone(), 0);
        assert_eq!(first.rows.len(), PAGE_SPANS);
        let nav = first.page.as_ref().unwrap();
        assert_eq!(
            (nav.first, nav.last, nav.total),
            (1, PAGE_SPANS, PAGE_SPANS + 5)
        );
        assert_eq!((nav.previous, nav.next), (None, Some(PAGE_SPANS)));
        assert_eq!(
            first.header.spans,
            PAGE_SPANS + 5,
            "the header counts the whole trace"
        );
        assert_eq!(first.header.errors, 11);
        assert_eq!(first.header.depth, 2, "the depth of the whole trace");
        let second = build(&summary, spans, PAGE_SPANS);
        assert_eq!(second.rows.len(), 5);
        let nav = second.page.unwrap();
        assert_eq!((nav.first, nav.last), (PAGE_SPANS + 1, PAGE_SPANS + 5));
        assert_eq!((nav.previous, nav.next), (Some(0), None));
    }

    #[test]
    fn a_later_page_shows_the_critical_path_of_the_whole_trace() {
        // The root's early children fill the first page; the late call that holds up the
        // root's end, and its query, are on the second, their parent on the first.
        let mut spans = vec![span(1, 0, "api", "POST /import", 0, 1000)];
        for i in 0..PAGE_SPANS as u64 {
            let mut row = span(2, 1, "db", "INSERT", i % 300, 1);
            row.span_id = (i + 16).to_be_bytes();
            spans.push(row);
        }
        spans.push(span(3, 1, "api", "notify", 500, 450));
        spans.push(span(4, 3, "mail", "send", 600, 300));
        let summary = summary(&spans);
        let second = build(&summary, spans.clone(), PAGE_SPANS);
        let marks = |name: &str| -> Vec<(String, String)> {
            second
                .rows
                .iter()
                .find(|r| r.name == name)
                .unwrap()
                .critical
                .clone()
        };
        let stretch = |left: &str, width: &str| (left.to_owned(), width.to_owned());
        assert_eq!(second.rows.len(), 3);
        assert_eq!(marks("notify"), [stretch("90", "5"), stretch("50", "10")]);
        assert_eq!(marks("send"), [stretch("60", "30")]);
        let first = build(&summary, spans, 0);
        assert_eq!(
            first.rows[0].critical[0],
            stretch("95", "5"),
            "the root's own time after the call, on the first page"
        );
    }

    #[test]
    fn zz_measure_build() {
        for (total, offset) in [(10_000usize, 0usize), (10_000, 1), (20_000, 10_000)] {
            let mut spans = Vec::with_capacity(total);
            for i in 0..total {
                let mut d = 0u64;
                let mut j = i;
                while j > 0 {
                    j = (j - 1) / 8;
                    d += 1;
                }
                let mut row = span(
                    1,
                    0,
                    ["a", "b", "c", "d", "e", "f"][i % 6],
                    "op",
                    d * 2 + (i as u64 % 50),
                    (400 >> d).max(1),
                );
                row.span_id = (i as u64 + 1).to_be_bytes();
                row.parent_span_id = if i == 0 {
                    [0; 8]
                } else {
                    (((i - 1) / 8) as u64 + 1).to_be_bytes()
                };
                spans.push(row);
            }
            let summary = summary(&spans);
            let mut times = Vec::new();
            let mut cp = 0;
            for _ in 0..15 {
                let input = spans.clone();
                let started = std::time::Instant::now();
                let page = build(&summary, input, offset);
                times.push(started.elapsed().as_secs_f64() * 1e3);
                cp = page.rows.iter().map(|r| r.critical.len()).sum::<usize>();
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "BUILD total={total} offset={offset} cp={cp} min {:.1} ms median {:.1} ms",
                times[0], times[7]
            );
        }
    }
}
