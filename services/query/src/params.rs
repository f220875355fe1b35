//! Query-string parameters of the search and metrics APIs, parsed by hand so that `attr`
//! can repeat and every bad value gets a message naming the parameter.

use chrono::{DateTime, Utc};
use std::time::Duration;
use weft_model::SpanKind;
use weft_runtime::config::parse_duration;
use weft_runtime::{ApiError, ErrorKind};
use weft_storage::clickhouse::{MetricsWindow, TraceSearch, TraceSort};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 1000;
/// `attr` filters one search may carry; each costs a scan of both attribute arrays.
pub const MAX_ATTRIBUTE_FILTERS: usize = 20;
/// Characters of one text value (a service, an operation, an attribute key or value).
pub const MAX_TEXT_CHARS: usize = 1024;
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);

fn bad(name: &str, value: &str, expected: &str) -> ApiError {
    let value: String = value.chars().take(100).collect();
    ApiError::new(
        ErrorKind::InvalidArgument,
        format!("invalid {name} {value:?}: expected {expected}"),
    )
}

fn time(name: &str, value: &str) -> Result<u64, ApiError> {
    let parsed =
        DateTime::parse_from_rfc3339(value).map_err(|_| bad(name, value, "an RFC 3339 time"))?;
    u64::try_from(
        parsed
            .with_timezone(&Utc)
            .timestamp_nanos_opt()
            .unwrap_or(-1),
    )
    .map_err(|_| bad(name, value, "a time after 1970"))
}

fn duration(name: &str, value: &str) -> Result<Duration, ApiError> {
    parse_duration(value).map_err(|_| bad(name, value, "a duration such as 250ms, 1.5s or 2m"))
}

pub(crate) fn now_nanos() -> u64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64
}

/// Points one metrics series may have.
pub const MAX_POINTS: u64 = 1440;
/// Points a series has when no `step` is given (at least a minute apart).
const DEFAULT_POINTS: u64 = 60;
/// The span kinds that count as a service's requests unless `kind` says otherwise: the
/// spans that start work in a service.
pub const ENTRY_KINDS: [SpanKind; 2] = [SpanKind::Server, SpanKind::Consumer];
const ALL_KINDS: [SpanKind; 6] = [
    SpanKind::Unspecified,
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];

/// The metrics endpoints, by what each accepts beyond the window (`start`, `end`,
/// `lookback`): `kind` for services and series, `step` and `operation` for series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsEndpoint {
    Services,
    Operations,
    Series,
    /// The series of every service at once: `kind` and `step`, no `operation`.
    AllSeries,
    ServiceMap,
}

/// The parameters of a metrics read.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsQuery {
    pub window: MetricsWindow,
    /// Span kinds that count as requests (OTLP numbers).
    pub kinds: Vec<u8>,
    /// The step of a series, a whole number of minutes.
    pub step_seconds: u32,
    pub operation: Option<String>,
}

impl MetricsQuery {
    /// The window's length in seconds, at least one, for rates.
    pub fn seconds(&self) -> f64 {
        ((self.window.end_unix_nano - self.window.start_unix_nano) as f64 / 1e9).max(1.0)
    }
}

fn kinds(value: &str) -> Result<Vec<u8>, ApiError> {
    if value == "all" {
        return Ok(ALL_KINDS.iter().map(|k| *k as u8).collect());
    }
    value
        .split(',')
        .map(|name| {
            ALL_KINDS
                .iter()
                .find(|kind| kind.as_str() == name.trim())
                .map(|kind| *kind as u8)
                .ok_or_else(|| {
                    bad(
                        "kind",
                        value,
                        "all, or span kinds separated by commas (unspecified, internal, server, client, producer, consumer)",
                    )
                })
        })
        .collect()
}

/// Parses the window (`start`, `end` as RFC 3339, or `lookback` before `end`, default
/// 1h) and what `endpoint` accepts besides.
pub fn metrics(query: Option<&str>, endpoint: MetricsEndpoint) -> Result<MetricsQuery, ApiError> {
    let (mut start, mut end, mut lookback, mut step) = (None, None, None, None);
    let mut parsed = MetricsQuery {
        window: MetricsWindow {
            start_unix_nano: 0,
            end_unix_nano: 0,
        },
        kinds: ENTRY_KINDS.iter().map(|k| *k as u8).collect(),
        step_seconds: 60,
        operation: None,
    };
    let takes_kind = matches!(
        endpoint,
        MetricsEndpoint::Services | MetricsEndpoint::Series | MetricsEndpoint::AllSeries
    );
    let is_series = matches!(
        endpoint,
        MetricsEndpoint::Series | MetricsEndpoint::AllSeries
    );
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = value.trim();
        if value.chars().count() > MAX_TEXT_CHARS {
            return Err(ApiError::new(
                ErrorKind::InvalidArgument,
                format!("{key} is longer than {MAX_TEXT_CHARS} characters"),
            ));
        }
        match key.as_ref() {
            "start" => start = Some(time("start", value)?),
            "end" => end = Some(time("end", value)?),
            "lookback" => lookback = Some(duration("lookback", value)?),
            "kind" if takes_kind => parsed.kinds = kinds(value)?,
            "step" if is_series => step = Some((duration("step", value)?, value.to_owned())),
            "operation" if endpoint == MetricsEndpoint::Series => {
                parsed.operation = (!value.is_empty()).then(|| value.to_owned())
            }
            other => {
                let expected = match endpoint {
                    MetricsEndpoint::Services => "one of start, end, lookback, kind",
                    MetricsEndpoint::Series => "one of start, end, lookback, kind, step, operation",
                    MetricsEndpoint::AllSeries => "one of start, end, lookback, kind, step",
                    MetricsEndpoint::Operations | MetricsEndpoint::ServiceMap => {
                        "one of start, end, lookback"
                    }
                };
                return Err(bad("parameter", other, expected));
            }
        }
    }
    let end = end.unwrap_or_else(now_nanos);
    let start = start.unwrap_or_else(|| {
        end.saturating_sub(lookback.unwrap_or(DEFAULT_LOOKBACK).as_nanos() as u64)
    });
    if start > end {
        return Err(ApiError::new(
            ErrorKind::InvalidArgument,
            "start must not be after end",
        ));
    }
    parsed.window = MetricsWindow {
        start_unix_nano: start,
        end_unix_nano: end,
    };
    let window_seconds = (end - start).div_ceil(1_000_000_000).max(1);
    let step_seconds = match step {
        Some((step, text)) => {
            let seconds = step.as_secs();
            if seconds < 60 || seconds % 60 != 0 || step.subsec_nanos() != 0 {
                return Err(bad(
                    "step",
                    &text,
                    "a whole number of minutes, such as 1m or 5m",
                ));
            }
            if window_seconds.div_ceil(seconds) > MAX_POINTS {
                return Err(ApiError::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "step {text:?} gives more than {MAX_POINTS} points: use a longer step or a shorter window"
                    ),
                ));
            }
            seconds
        }
        None => window_seconds.div_ceil(DEFAULT_POINTS).div_ceil(60).max(1) * 60,
    };
    parsed.step_seconds = u32::try_from(step_seconds).unwrap_or(u32::MAX / 60 * 60);
    Ok(parsed)
}

/// Spans one trace-by-id answer carries at most; larger traces are read in pages.
pub const MAX_SPANS_PER_PAGE: usize = 10_000;

/// `span_offset` (default 0) and `span_limit` (1 to 10 000, default 10 000) of a
/// trace-by-id request.
pub fn span_page(query: Option<&str>) -> Result<(usize, usize), ApiError> {
    let (mut offset, mut limit) = (0, MAX_SPANS_PER_PAGE);
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "span_offset" => {
                offset = value
                    .parse()
                    .map_err(|_| bad("span_offset", &value, "a whole number"))?;
            }
            "span_limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_SPANS_PER_PAGE).contains(l))
                    .ok_or_else(|| bad("span_limit", &value, "a number from 1 to 10000"))?;
            }
            other => return Err(bad("parameter", other, "span_offset or span_limit")),
        }
    }
    Ok((offset, limit))
}

/// Parses `start`, `end`, `lookback`, `service`, `operation`, `min_duration`,
/// `max_duration`, `error`, `attr` (repeatable, `key=value`), `limit` and `sort`.
pub fn search(query: Option<&str>) -> Result<TraceSearch, ApiError> {
    let mut search = TraceSearch {
        limit: DEFAULT_LIMIT,
        ..TraceSearch::default()
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
        let text = || (!value.is_empty()).then(|| value.to_owned());
        match key.as_ref() {
            "start" => start = Some(time("start", value)?),
            "end" => end = Some(time("end", value)?),
            "lookback" => lookback = Some(duration("lookback", value)?),
            "service" => search.service = text(),
            "operation" => search.operation = text(),
            "min_duration" => {
                search.min_duration_ns = Some(duration("min_duration", value)?.as_nanos() as u64)
            }
            "max_duration" => {
                search.max_duration_ns = Some(duration("max_duration", value)?.as_nanos() as u64)
            }
            "error" => {
                search.errors_only = match value {
                    "true" | "1" => true,
                    "false" | "0" | "" => false,
                    _ => return Err(bad("error", value, "true or false")),
                }
            }
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
            "limit" => {
                search.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| bad("limit", value, "a number from 1 to 1000"))?;
            }
            "sort" => {
                search.sort = match value {
                    "newest" | "" => TraceSort::Newest,
                    "longest" => TraceSort::Longest,
                    _ => return Err(bad("sort", value, "newest or longest")),
                }
            }
            other => {
                return Err(bad(
                    "parameter",
                    other,
                    "one of start, end, lookback, service, operation, min_duration, max_duration, error, attr, limit, sort",
                ));
            }
        }
    }
    search.end_unix_nano = end.unwrap_or_else(now_nanos);
    search.start_unix_nano = start.unwrap_or_else(|| {
        search
            .end_unix_nano
            .saturating_sub(lookback.unwrap_or(DEFAULT_LOOKBACK).as_nanos() as u64)
    });
    if search.start_unix_nano > search.end_unix_nano {
        return Err(ApiError::new(
            ErrorKind::InvalidArgument,
            "start must not be after end",
        ));
    }
    if let (Some(min), Some(max)) = (search.min_duration_ns, search.max_duration_ns)
        && min > max
    {
        return Err(ApiError::new(
            ErrorKind::InvalidArgument,
            "min_duration must not exceed max_duration",
        ));
    }
    Ok(search)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_parameters_parse_and_repeat() {
        let s = search(Some(
            "service=cart&operation=GET%20%2Fcart&min_duration=250ms&error=true&attr=user%3Du1&attr=region=eu&limit=5&sort=longest&start=2026-01-01T00:00:00Z&end=2026-01-01T01:00:00Z",
        ))
        .unwrap();
        assert_eq!(s.service.as_deref(), Some("cart"));
        assert_eq!(s.operation.as_deref(), Some("GET /cart"));
        assert_eq!(s.min_duration_ns, Some(250_000_000));
        assert!(s.errors_only);
        assert_eq!(
            s.attributes,
            vec![("user".into(), "u1".into()), ("region".into(), "eu".into())]
        );
        assert_eq!((s.limit, s.sort), (5, TraceSort::Longest));
        assert_eq!(s.end_unix_nano - s.start_unix_nano, 3600 * 1_000_000_000);
    }

    #[test]
    fn metrics_parameters_parse_per_endpoint() {
        let q = metrics(
            Some("start=2026-01-01T00:00:00Z&end=2026-01-01T06:00:00Z&kind=server,client&step=15m&operation=GET%20%2F"),
            MetricsEndpoint::Series,
        )
        .unwrap();
        assert_eq!(q.kinds, [2, 3]);
        assert_eq!(q.step_seconds, 900);
        assert_eq!(q.operation.as_deref(), Some("GET /"));
        assert_eq!(q.seconds(), 6.0 * 3600.0);
        let q = metrics(Some("lookback=1h"), MetricsEndpoint::Services).unwrap();
        assert_eq!(q.kinds, [2, 5], "server and consumer spans by default");
        assert_eq!(q.seconds(), 3600.0);
        assert_eq!(q.step_seconds, 60);
        let day = metrics(Some("lookback=1d"), MetricsEndpoint::Series).unwrap();
        assert_eq!(day.step_seconds, 24 * 60, "about 60 points");
        assert_eq!(
            metrics(Some("kind=all"), MetricsEndpoint::Services)
                .unwrap()
                .kinds,
            [0, 1, 2, 3, 4, 5]
        );
        for (query, endpoint, needle) in [
            ("kind=server", MetricsEndpoint::Operations, "kind"),
            ("step=1m", MetricsEndpoint::Services, "step"),
            ("kind=sever", MetricsEndpoint::Services, "kind"),
            ("step=90s", MetricsEndpoint::Series, "step"),
            ("step=30s", MetricsEndpoint::Series, "step"),
            (
                "lookback=2d&step=1m",
                MetricsEndpoint::Series,
                "more than 1440 points",
            ),
            ("lookback=soon", MetricsEndpoint::ServiceMap, "lookback"),
            ("service=x", MetricsEndpoint::ServiceMap, "service"),
        ] {
            let error = metrics(Some(query), endpoint).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidArgument, "{query}");
            assert!(error.message.contains(needle), "{query}: {}", error.message);
        }
    }

    #[test]
    fn bad_parameters_name_themselves() {
        for (query, needle) in [
            ("limit=0", "limit"),
            ("limit=abc", "limit"),
            ("min_duration=fast", "min_duration"),
            ("start=yesterday", "start"),
            ("attr=novalue", "attr"),
            ("sort=random", "sort"),
            ("error=maybe", "error"),
            ("colour=red", "colour"),
            ("min_duration=2s&max_duration=1s", "min_duration"),
            (&"attr=k=v&".repeat(21), "too many attr filters: at most 20"),
            (
                &format!("service={}", "s".repeat(1025)),
                "service is longer than 1024",
            ),
            (
                "start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z",
                "start",
            ),
        ] {
            let error = search(Some(query)).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidArgument, "{query}");
            assert!(error.message.contains(needle), "{query}: {}", error.message);
        }
    }
}
