//! The logs page: the filters of `GET /api/v1/logs` in a form whose URL holds the whole
//! query, a count histogram (server-rendered SVG, errors marked), and the lines newest
//! first, each opening (without JavaScript) to all its attributes, with a link to its
//! trace opened at its span. Read through the signed-in organisation's tenant scope,
//! with the same parsing and limits as the API.

use super::DashboardState;
use super::error::DashboardError;
use super::extract::SignedIn;
use super::render::{Layout, render};
use super::traces::{range, refusal, with_timing};
use crate::api::logs::{self as api, LogLineView, LogPage};
use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::time::Instant;

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/logs", get(logs_page))
        .route("/static/logs.css", get(stylesheet))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../../../frontend/static/logs.css"),
    )
}

pub const SEVERITIES: [(&str, &str); 7] = [
    ("", "Any severity"),
    ("trace", "Trace and above"),
    ("debug", "Debug and above"),
    ("info", "Info and above"),
    ("warn", "Warn and above"),
    ("error", "Error and above"),
    ("fatal", "Fatal"),
];
pub const LIMITS: [&str; 4] = ["50", "100", "200", "500"];

/// The form as the URL gave it, echoed back as typed.
#[derive(Debug, Default)]
struct LogForm {
    service: String,
    severity: String,
    q: String,
    attributes: Vec<String>,
    trace_id: String,
    span_id: String,
    lookback: String,
    limit: String,
}

impl LogForm {
    fn parse(query: Option<&str>) -> LogForm {
        let mut form = LogForm {
            lookback: "1h".to_owned(),
            limit: "100".to_owned(),
            ..LogForm::default()
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim().to_owned();
            match key.as_ref() {
                "service" => form.service = value,
                "severity" => form.severity = value,
                "q" => form.q = value,
                "attr" if !value.is_empty() => form.attributes.push(value),
                "trace_id" => form.trace_id = value,
                "span_id" => form.span_id = value,
                "lookback" if !value.is_empty() => form.lookback = value,
                "limit" if !value.is_empty() => form.limit = value,
                _ => {}
            }
        }
        form
    }

    fn has_filters(&self) -> bool {
        !(self.service.is_empty()
            && self.severity.is_empty()
            && self.q.is_empty()
            && self.attributes.is_empty()
            && self.trace_id.is_empty()
            && self.span_id.is_empty())
    }

    fn lookback_is_preset(&self) -> bool {
        range::LOOKBACKS.iter().any(|(v, _)| *v == self.lookback)
    }
}

/// One bar of the histogram, in percent of the chart's width and pixels of its height.
struct Bar {
    x: f64,
    width: f64,
    y: f64,
    height: f64,
    error_y: f64,
    error_height: f64,
    title: String,
}

struct Histogram {
    bars: Vec<Bar>,
    max: u64,
    first: String,
    last: String,
    step: String,
    total: u64,
}

const CHART_HEIGHT: f64 = 96.0;

fn histogram(page: &LogPage) -> Option<Histogram> {
    let view = page.histogram.as_ref()?;
    let max = view.buckets.iter().map(|b| b.count).max().unwrap_or(0);
    let count = view.buckets.len().max(1) as f64;
    let scale = |n: u64| {
        if max == 0 {
            0.0
        } else {
            n as f64 / max as f64 * CHART_HEIGHT
        }
    };
    let bars = view
        .buckets
        .iter()
        .enumerate()
        .map(|(i, bucket)| {
            let height = scale(bucket.count);
            let error_height = scale(bucket.errors);
            Bar {
                x: i as f64 / count * 100.0,
                width: (100.0 / count * 0.8).max(0.1),
                y: CHART_HEIGHT - height,
                height,
                error_y: CHART_HEIGHT - error_height,
                error_height,
                title: format!(
                    "{}: {} line{}, {} error{}",
                    bucket.start.replace('T', " ").trim_end_matches('Z'),
                    bucket.count,
                    if bucket.count == 1 { "" } else { "s" },
                    bucket.errors,
                    if bucket.errors == 1 { "" } else { "s" },
                ),
            }
        })
        .collect();
    let label = |s: &str| s.replace('T', " ").chars().take(16).collect::<String>();
    Some(Histogram {
        bars,
        max,
        first: view
            .buckets
            .first()
            .map_or_else(String::new, |b| label(&b.start)),
        last: view
            .buckets
            .last()
            .map_or_else(String::new, |b| label(&b.start)),
        step: humantime(view.step_seconds),
        total: view.buckets.iter().map(|b| b.count).sum(),
    })
}

fn humantime(seconds: u32) -> String {
    match seconds {
        s if s % 86400 == 0 => format!("{} d", s / 86400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// A line as the page shows it.
pub(super) struct Line {
    pub view: LogLineView,
    /// `HH:MM:SS.mmm` and the date, UTC.
    pub clock: String,
    pub date: String,
    /// `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `none`: the badge's class.
    pub level: &'static str,
    pub trace_href: Option<String>,
}

/// The log lines of one trace, for its page: all of them, and each span's.
#[derive(Default)]
pub(super) struct TraceLogs {
    pub lines: Vec<Line>,
    /// The lines were not read (the page still shows the trace).
    pub unavailable: bool,
    /// More lines than the page lists.
    pub truncated: bool,
}

/// Lines a trace page lists, at most.
const TRACE_PAGE_LINES: u32 = 500;
/// Lines may be written a little before or after their trace's spans.
const TRACE_SLACK_NANOS: u64 = 15 * 60 * 1_000_000_000;

impl TraceLogs {
    /// The lines of a trace around its time, oldest first. A failure to read them is
    /// logged and shown as such; it never fails the trace page.
    pub async fn read(
        store: &weft_storage::clickhouse::ClickHouse,
        tenant: weft_model::TenantId,
        summary: &weft_storage::clickhouse::TraceSummary,
    ) -> TraceLogs {
        let Ok(trace_id) = weft_model::TraceId::from_bytes(&summary.trace_id) else {
            return TraceLogs::default();
        };
        let search = weft_storage::clickhouse::LogSearch {
            start_unix_nano: summary
                .start_time_unix_nano
                .saturating_sub(TRACE_SLACK_NANOS),
            end_unix_nano: summary.end_time_unix_nano.saturating_add(TRACE_SLACK_NANOS),
            trace_id: Some(trace_id),
            limit: TRACE_PAGE_LINES,
            ..Default::default()
        };
        match store.tenant(tenant).logs(&search).await {
            Ok(rows) => TraceLogs {
                truncated: rows.len() == TRACE_PAGE_LINES as usize,
                lines: rows
                    .iter()
                    .rev()
                    .map(|r| line(LogLineView::from(r)))
                    .collect(),
                unavailable: false,
            },
            Err(error) => {
                tracing::warn!(%error, trace_id = %trace_id, "could not read the trace's log lines");
                TraceLogs {
                    unavailable: true,
                    ..TraceLogs::default()
                }
            }
        }
    }

    /// The lines logged under span `id`, oldest first.
    pub fn of_span(&self, id: &str) -> Vec<&Line> {
        self.lines.iter().filter(|l| l.view.span_id == id).collect()
    }
}

fn level_class(number: u8) -> &'static str {
    match number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => "none",
    }
}

pub(super) fn line(view: LogLineView) -> Line {
    let (date, clock) = view
        .time
        .split_once('T')
        .map(|(d, t)| {
            let clock: String = t.trim_end_matches('Z').chars().take(12).collect();
            (d.to_owned(), clock)
        })
        .unwrap_or_default();
    let trace_href = (!view.trace_id.is_empty()).then(|| {
        if view.span_id.is_empty() {
            format!("/traces/{}", view.trace_id)
        } else {
            format!("/traces/{}#span={}", view.trace_id, view.span_id)
        }
    });
    Line {
        level: level_class(view.severity_number),
        clock,
        date,
        trace_href,
        view,
    }
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    layout: Layout,
    form: LogForm,
    lookbacks: [(&'static str, &'static str); 5],
    severities: [(&'static str, &'static str); 7],
    limits: [&'static str; 4],
    error: Option<String>,
    chart: Option<Histogram>,
    lines: Vec<Line>,
    window: String,
    /// The URL of the next (older) page.
    older: Option<String>,
    /// Whether this page continues an earlier one.
    paged: bool,
    first_page: String,
}

/// The query string with `cursor` set to `cursor` (or removed).
fn with_cursor(query: Option<&str>, cursor: Option<&str>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key != "cursor" {
            out.append_pair(&key, &value);
        }
    }
    if let Some(cursor) = cursor {
        out.append_pair("cursor", cursor);
    }
    format!("/logs?{}", out.finish())
}

async fn logs_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let form = LogForm::parse(query.as_deref());
    let started = Instant::now();
    let (mut status, mut error, mut found) = (StatusCode::OK, None, None);
    match api::parse(query.as_deref()) {
        Err(invalid) => {
            status = StatusCode::BAD_REQUEST;
            error = Some(invalid.message.clone());
        }
        Ok(parsed) => {
            let paged = parsed.search.before.is_some();
            match api::read_scoped(&state.store, user.tenant, parsed).await {
                Ok(page) => found = Some((page, paged)),
                Err(failure) => {
                    let (refused, message) = refusal(failure)?;
                    (status, error) = (refused, Some(message));
                }
            }
        }
    }
    let store_time = started.elapsed();
    let (chart, lines, window, older, paged) = match found {
        Some((page, paged)) => {
            let chart = histogram(&page);
            let older = page
                .next_cursor
                .as_deref()
                .map(|cursor| with_cursor(query.as_deref(), Some(cursor)));
            let window = format!(
                "{} – {} UTC",
                page.start
                    .replace('T', " ")
                    .chars()
                    .take(19)
                    .collect::<String>(),
                page.end
                    .replace('T', " ")
                    .chars()
                    .take(19)
                    .collect::<String>()
            );
            let lines = page.logs.into_iter().map(line).collect();
            (chart, lines, window, older, paged)
        }
        None => (None, Vec::new(), String::new(), None, false),
    };
    let page = LogsPage {
        layout: user.layout(&state),
        lookbacks: range::LOOKBACKS,
        severities: SEVERITIES,
        limits: LIMITS,
        error,
        chart,
        lines,
        window,
        older,
        paged,
        first_page: with_cursor(query.as_deref(), None),
        form,
    };
    let rendering = Instant::now();
    let response = render(status, &page);
    Ok(with_timing(response, store_time, rendering.elapsed()))
}
