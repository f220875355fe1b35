//! Log search over the JSON API (`GET /api/v1/logs`, read key): a time window and
//! filters (service, severity at or above, text, attributes, trace, span), newest first
//! with cursor paging, a histogram of counts per step, and a trace's lines grouped by
//! span. The dashboard's logs page parses and reads through the same functions.

use super::{ApiState, store_error};
use crate::auth::ReadTenant;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use weft_model::{SpanId, TenantId, TraceId};
use weft_runtime::config::parse_duration;
use weft_runtime::{ApiError, ErrorKind};
use weft_storage::clickhouse::{
    ClickHouse, ClickHouseError, LogCount, LogCursor, LogRow, LogSearch,
};

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/logs", get(search_logs))
}

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
const MAX_ATTRIBUTE_FILTERS: usize = 20;
const MAX_TEXT_CHARS: usize = 1024;
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);
/// How far a trace's lines are looked for when no window is given and the trace is not
/// in the index (its spans may be sampled away; its logs never are).
const TRACE_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);
/// Lines may be written a little before or after their trace's spans.
const TRACE_SLACK_NANOS: u64 = 15 * 60 * 1_000_000_000;
/// Steps a histogram has when no `step` is given.
const HISTOGRAM_STEPS: u64 = 60;
const MAX_HISTOGRAM_STEPS: u64 = 1440;

/// A parsed `GET /api/v1/logs` (or `/logs` page) query.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    pub search: LogSearch,
    /// Whether the window was given (`start`, `end` or `lookback`).
    pub windowed: bool,
    /// The histogram's step; 0 chooses one from the window.
    pub step_seconds: u32,
    /// Group the lines by span.
    pub by_span: bool,
}

fn bad(name: &str, value: &str, expected: &str) -> ApiError {
    let value: String = value.chars().take(100).collect();
    ApiError::new(
        ErrorKind::InvalidArgument,
        format!("invalid {name} {value:?}: expected {expected}"),
    )
}

fn now_nanos() -> u64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64
}

fn time(name: &str, value: &str) -> Result<u64, ApiError> {
    let parsed = chrono::DateTime::parse_from_rfc3339(value)
        .map_err(|_| bad(name, value, "an RFC 3339 time"))?;
    u64::try_from(parsed.timestamp_nanos_opt().unwrap_or(-1))
        .map_err(|_| bad(name, value, "a time after 1970"))
}

/// The OTLP severity number a name or number stands for: the lowest number of its range.
pub fn severity(value: &str) -> Option<u8> {
    if let Ok(number) = value.parse::<u8>() {
        return (1..=24).contains(&number).then_some(number);
    }
    Some(match value.to_ascii_lowercase().as_str() {
        "trace" => 1,
        "debug" => 5,
        "info" => 9,
        "warn" | "warning" => 13,
        "error" => 17,
        "fatal" => 21,
        _ => return None,
    })
}

fn cursor(value: &str) -> Option<LogCursor> {
    let mut parts = value.split('-');
    let cursor = LogCursor {
        time_unix_nano: parts.next()?.parse().ok()?,
        message: parts.next()?.parse().ok()?,
        message_line: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(cursor)
}

pub fn cursor_text(cursor: &LogCursor) -> String {
    format!(
        "{}-{}-{}",
        cursor.time_unix_nano, cursor.message, cursor.message_line
    )
}

/// Parses the query string: `start`, `end` (RFC 3339) or `lookback` (default 1h),
/// `service`, `severity` (a name or OTLP number), `q` (text the body contains), `attr`
/// (key=value, repeatable), `trace_id`, `span_id`, `limit`, `cursor`, `step`, and
/// `group=span`. Empty values are ignored, so a form can send every field.
pub fn parse(query: Option<&str>) -> Result<LogQuery, ApiError> {
    let mut parsed = LogQuery {
        search: LogSearch {
            limit: DEFAULT_LIMIT,
            ..LogSearch::default()
        },
        ..LogQuery::default()
    };
    let (mut start, mut end, mut lookback) = (None, None, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = value.trim();
        if value.chars().count() > MAX_TEXT_CHARS {
            return Err(ApiError::new(
                ErrorKind::InvalidArgument,
                format!("{key} is longer than {MAX_TEXT_CHARS} characters"),
            ));
        }
        if value.is_empty() {
            continue;
        }
        let search = &mut parsed.search;
        match key.as_ref() {
            "start" => start = Some(time("start", value)?),
            "end" => end = Some(time("end", value)?),
            "lookback" => {
                lookback = Some(
                    parse_duration(value)
                        .map_err(|_| bad("lookback", value, "a duration such as 15m or 6h"))?,
                )
            }
            "service" => search.service = Some(value.to_owned()),
            "severity" => {
                search.min_severity = Some(severity(value).ok_or_else(|| {
                    bad(
                        "severity",
                        value,
                        "trace, debug, info, warn, error, fatal or a number from 1 to 24",
                    )
                })?)
            }
            "q" => search.text = Some(value.to_owned()),
            "attr" => {
                if search.attributes.len() == MAX_ATTRIBUTE_FILTERS {
                    return Err(ApiError::new(
                        ErrorKind::InvalidArgument,
                        format!("too many attr filters: at most {MAX_ATTRIBUTE_FILTERS}"),
                    ));
                }
                let (k, v) = value
                    .split_once('=')
                    .filter(|(k, _)| !k.trim().is_empty())
                    .ok_or_else(|| bad("attr", value, "key=value"))?;
                search
                    .attributes
                    .push((k.trim().to_owned(), v.trim().to_owned()));
            }
            "trace_id" => {
                search.trace_id = Some(
                    value
                        .parse::<TraceId>()
                        .map_err(|_| bad("trace_id", value, "32 hex digits"))?,
                )
            }
            "span_id" => {
                search.span_id = Some(
                    value
                        .parse::<SpanId>()
                        .map_err(|_| bad("span_id", value, "16 hex digits"))?,
                )
            }
            "limit" => {
                search.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| bad("limit", value, "a number from 1 to 1000"))?
            }
            "cursor" => {
                search.before = Some(
                    cursor(value)
                        .ok_or_else(|| bad("cursor", value, "the next_cursor of a page"))?,
                )
            }
            "step" => {
                let step = parse_duration(value)
                    .ok()
                    .filter(|d| d.as_secs() >= 1)
                    .ok_or_else(|| bad("step", value, "a duration of at least 1s"))?;
                parsed.step_seconds = u32::try_from(step.as_secs()).unwrap_or(u32::MAX);
            }
            "group" => {
                parsed.by_span = match value {
                    "span" => true,
                    "none" => false,
                    _ => return Err(bad("group", value, "span or none")),
                }
            }
            other => {
                return Err(bad(
                    "parameter",
                    other,
                    "one of start, end, lookback, service, severity, q, attr, trace_id, span_id, limit, cursor, step, group",
                ));
            }
        }
    }
    parsed.windowed = start.is_some() || end.is_some() || lookback.is_some();
    let search = &mut parsed.search;
    search.end_unix_nano = end.unwrap_or_else(now_nanos);
    let default_lookback = if search.trace_id.is_some() {
        TRACE_LOOKBACK
    } else {
        DEFAULT_LOOKBACK
    };
    search.start_unix_nano = start.unwrap_or_else(|| {
        search
            .end_unix_nano
            .saturating_sub(lookback.unwrap_or(default_lookback).as_nanos() as u64)
    });
    if search.start_unix_nano > search.end_unix_nano {
        return Err(ApiError::new(
            ErrorKind::InvalidArgument,
            "start must not be after end",
        ));
    }
    if parsed.step_seconds > 0 {
        let steps = (search.end_unix_nano - search.start_unix_nano)
            / (u64::from(parsed.step_seconds) * 1_000_000_000);
        if steps > MAX_HISTOGRAM_STEPS {
            return Err(ApiError::new(
                ErrorKind::InvalidArgument,
                format!(
                    "step makes more than {MAX_HISTOGRAM_STEPS} histogram steps: use a longer step"
                ),
            ));
        }
    }
    Ok(parsed)
}

/// A histogram step of at least a second that gives about [`HISTOGRAM_STEPS`] steps,
/// rounded to a length people read easily.
pub fn auto_step(search: &LogSearch) -> u32 {
    let span = (search.end_unix_nano - search.start_unix_nano) / 1_000_000_000;
    let wanted = (span / HISTOGRAM_STEPS).max(1);
    const NICE: [u64; 16] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400,
    ];
    let step = NICE.iter().copied().find(|s| *s >= wanted).unwrap_or(86400);
    step as u32
}

/// One log line as the API and the dashboard show it.
#[derive(Clone, Debug, Serialize)]
pub struct LogLineView {
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// As a string: JSON numbers lose nanoseconds.
    pub time_unix_nano: String,
    /// Empty when the line belongs to no trace (or span).
    pub trace_id: String,
    pub span_id: String,
    pub severity_number: u8,
    pub severity_text: String,
    pub body: String,
    pub service: String,
    pub scope: String,
    pub attributes: BTreeMap<String, String>,
    pub resource: BTreeMap<String, String>,
}

fn pairs(keys: &[String], values: &[String]) -> BTreeMap<String, String> {
    keys.iter().cloned().zip(values.iter().cloned()).collect()
}

impl From<&LogRow> for LogLineView {
    fn from(row: &LogRow) -> Self {
        let time = chrono::DateTime::from_timestamp_nanos(
            i64::try_from(row.time_unix_nano).unwrap_or(i64::MAX),
        );
        LogLineView {
            time: time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            time_unix_nano: row.time_unix_nano.to_string(),
            trace_id: if row.trace_id == [0; 16] {
                String::new()
            } else {
                hex::encode(row.trace_id)
            },
            span_id: if row.span_id == [0; 8] {
                String::new()
            } else {
                hex::encode(row.span_id)
            },
            severity_number: row.severity_number,
            severity_text: row.severity_text.clone(),
            body: row.body.clone(),
            service: row.service_name.clone(),
            scope: row.scope_name.clone(),
            attributes: pairs(&row.attribute_keys, &row.attribute_values),
            resource: pairs(&row.resource_keys, &row.resource_values),
        }
    }
}

/// A histogram step.
#[derive(Clone, Debug, Serialize)]
pub struct LogBucketView {
    /// The step's start, RFC 3339.
    pub start: String,
    pub start_unix: u32,
    pub count: u64,
    pub errors: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogHistogramView {
    pub step_seconds: u32,
    pub buckets: Vec<LogBucketView>,
}

/// The lines of one span (`span_id` empty: lines of the trace outside any span).
#[derive(Clone, Debug, Serialize)]
pub struct SpanLogsView {
    pub span_id: String,
    pub logs: Vec<LogLineView>,
}

/// An answer of `GET /api/v1/logs`.
#[derive(Clone, Debug, Serialize)]
pub struct LogPage {
    pub start: String,
    pub end: String,
    pub logs: Vec<LogLineView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// On the first page only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub histogram: Option<LogHistogramView>,
    /// With `group=span`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spans: Option<Vec<SpanLogsView>>,
}

fn rfc3339(nanos: u64) -> String {
    chrono::DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Every step of the window, with zero where no line fell.
fn histogram(search: &LogSearch, step: u32, counts: &[LogCount]) -> LogHistogramView {
    let step = step.max(1);
    let first = (search.start_unix_nano / 1_000_000_000) as u32 / step * step;
    let last = (search.end_unix_nano / 1_000_000_000) as u32;
    let by_start: BTreeMap<u32, &LogCount> = counts.iter().map(|c| (c.step_start, c)).collect();
    let mut buckets = Vec::new();
    let mut at = first;
    while at <= last {
        let count = by_start.get(&at);
        buckets.push(LogBucketView {
            start: rfc3339(u64::from(at) * 1_000_000_000),
            start_unix: at,
            count: count.map_or(0, |c| c.lines),
            errors: count.map_or(0, |c| c.errors),
        });
        at = match at.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    LogHistogramView {
        step_seconds: step,
        buckets,
    }
}

/// Reads a page of lines, and on the first page the histogram, for one tenant.
pub async fn read_scoped(
    store: &ClickHouse,
    tenant: TenantId,
    mut query: LogQuery,
) -> Result<LogPage, ClickHouseError> {
    let reader = store.tenant(tenant);
    // A trace's lines lie around the trace: look there unless told where to look.
    if let (Some(trace_id), false) = (query.search.trace_id, query.windowed)
        && let Some((summary, _)) = reader.trace(trace_id).await?
    {
        query.search.start_unix_nano = summary
            .start_time_unix_nano
            .saturating_sub(TRACE_SLACK_NANOS);
        query.search.end_unix_nano = summary.end_time_unix_nano.saturating_add(TRACE_SLACK_NANOS);
    }
    // The first page comes with the histogram of the whole window, read alongside it.
    let (rows, histogram) = match query.search.before {
        Some(_) => (reader.logs(&query.search).await?, None),
        None => {
            let step = if query.step_seconds > 0 {
                query.step_seconds
            } else {
                auto_step(&query.search)
            };
            let (rows, counts) = reader.logs_with_histogram(&query.search, step).await?;
            (rows, Some(histogram(&query.search, step, &counts)))
        }
    };
    let next_cursor = (rows.len() == query.search.limit as usize)
        .then(|| rows.last().map(|row| cursor_text(&LogCursor::of(row))))
        .flatten();
    let logs: Vec<LogLineView> = rows.iter().map(LogLineView::from).collect();
    let spans = query.by_span.then(|| {
        let mut spans: Vec<SpanLogsView> = Vec::new();
        // Each span's lines oldest first, spans in the order of their first line.
        for line in logs.iter().rev() {
            match spans.iter_mut().find(|s| s.span_id == line.span_id) {
                Some(span) => span.logs.push(line.clone()),
                None => spans.push(SpanLogsView {
                    span_id: line.span_id.clone(),
                    logs: vec![line.clone()],
                }),
            }
        }
        spans
    });
    Ok(LogPage {
        start: rfc3339(query.search.start_unix_nano),
        end: rfc3339(query.search.end_unix_nano),
        logs,
        next_cursor,
        histogram,
        spans,
    })
}

async fn search_logs(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    RawQuery(query): RawQuery,
) -> Result<Json<LogPage>, ApiError> {
    let query = parse(query.as_deref())?;
    let page = read_scoped(&state.store, tenant, query)
        .await
        .map_err(store_error)?;
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_parse_and_bad_ones_are_named() {
        let q = parse(Some(
            "service=checkout&severity=warn&q=declined&attr=customer%3D42&attr=region%3Deu&limit=5&group=span&lookback=15m&trace_id=",
        ))
        .unwrap();
        assert_eq!(q.search.service.as_deref(), Some("checkout"));
        assert_eq!(q.search.min_severity, Some(13));
        assert_eq!(q.search.text.as_deref(), Some("declined"));
        assert_eq!(q.search.attributes.len(), 2);
        assert_eq!(q.search.limit, 5);
        assert!(q.by_span && q.windowed);
        assert_eq!(
            q.search.end_unix_nano - q.search.start_unix_nano,
            15 * 60 * 1_000_000_000
        );
        let c = parse(Some("cursor=1700000000000000000-42-3")).unwrap();
        assert_eq!(
            c.search.before,
            Some(LogCursor {
                time_unix_nano: 1_700_000_000_000_000_000,
                message: 42,
                message_line: 3
            })
        );
        for bad in [
            "severity=loud",
            "trace_id=xyz",
            "span_id=12",
            "cursor=abc",
            "limit=0",
            "attr=novalue",
            "colour=red",
            "step=1s&lookback=7d",
        ] {
            let error = parse(Some(bad)).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn a_trace_without_a_window_is_looked_for_over_a_week() {
        let q = parse(Some("trace_id=0af7651916cd43dd8448eb211c80319c")).unwrap();
        assert!(!q.windowed);
        assert_eq!(
            q.search.end_unix_nano - q.search.start_unix_nano,
            TRACE_LOOKBACK.as_nanos() as u64
        );
    }

    #[test]
    fn the_histogram_has_every_step_of_the_window() {
        let search = LogSearch {
            start_unix_nano: 1_000 * 1_000_000_000,
            end_unix_nano: 1_300 * 1_000_000_000,
            ..LogSearch::default()
        };
        let counts = [LogCount {
            step_start: 1_080,
            lines: 7,
            errors: 2,
        }];
        let view = histogram(&search, 60, &counts);
        assert_eq!(view.buckets.len(), 6);
        assert_eq!(view.buckets[0].start_unix, 960);
        assert_eq!((view.buckets[2].count, view.buckets[2].errors), (7, 2));
        assert_eq!(auto_step(&search), 5);
    }
}
