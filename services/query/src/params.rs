//! Query-string parameters of the search and metrics APIs, parsed by hand so that `attr`
//! can repeat and every bad value gets a message naming the parameter.

use chrono::{DateTime, Utc};
use std::time::Duration;
use weft_model::SpanKind;
use weft_runtime::config::parse_duration;
use weft_runtime::{ApiError, ErrorKind};
use weft_storage::clickhouse::{
    AttributeFilter, AttributeTest, MetricsWindow, TraceCursor, TraceSearch, TraceSelection,
    TraceSort,
};

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

/// An attribute filter as the `attr` parameter writes it: `key=value`, `key!=value`,
/// `key exists`, or a number compared with `>`, `>=`, `<`, `<=` (`duration.ms>250`).
/// The operator is the first `=`, `!`, `<` or `>` of the text, so a value may hold any
/// of them (`query=a=b`).
pub fn attribute_filter(text: &str) -> Result<AttributeFilter, ApiError> {
    const EXPECTED: &str =
        "key=value, key!=value, key exists, or key>N, key>=N, key<N, key<=N with a number N";
    if let Some(key) = text.strip_suffix(" exists") {
        let key = key.trim();
        if !key.is_empty() && !key.contains(['=', '!', '<', '>']) {
            return Ok(AttributeFilter {
                key: key.to_owned(),
                test: AttributeTest::Exists,
            });
        }
    }
    let at = text
        .find(['=', '!', '<', '>'])
        .ok_or_else(|| bad("attr", text, EXPECTED))?;
    let key = text[..at].trim();
    if key.is_empty() {
        return Err(bad("attr", text, EXPECTED));
    }
    let rest = &text[at..];
    let (operator, value) = ["!=", ">=", "<=", "=", ">", "<"]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|value| (*op, value.trim())))
        .ok_or_else(|| bad("attr", text, EXPECTED))?;
    let number = || {
        value
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| bad("attr", text, &format!("a number after {operator}")))
    };
    let test = match operator {
        "=" => AttributeTest::Equals(value.to_owned()),
        "!=" => AttributeTest::NotEquals(value.to_owned()),
        ">" => AttributeTest::Above(number()?),
        ">=" => AttributeTest::AtLeast(number()?),
        "<" => AttributeTest::Below(number()?),
        _ => AttributeTest::AtMost(number()?),
    };
    Ok(AttributeFilter {
        key: key.to_owned(),
        test,
    })
}

/// An attribute filter written back as the `attr` parameter reads it.
pub fn attribute_text(filter: &AttributeFilter) -> String {
    let key = &filter.key;
    match &filter.test {
        AttributeTest::Equals(v) => format!("{key}={v}"),
        AttributeTest::NotEquals(v) => format!("{key}!={v}"),
        AttributeTest::Exists => format!("{key} exists"),
        AttributeTest::Above(n) => format!("{key}>{n}"),
        AttributeTest::AtLeast(n) => format!("{key}>={n}"),
        AttributeTest::Below(n) => format!("{key}<{n}"),
        AttributeTest::AtMost(n) => format!("{key}<={n}"),
    }
}

fn sort(value: &str) -> Result<TraceSort, ApiError> {
    match value {
        "newest" | "" => Ok(TraceSort::Newest),
        "longest" => Ok(TraceSort::Longest),
        "errors" => Ok(TraceSort::MostErrors),
        _ => Err(bad("sort", value, "newest, longest or errors")),
    }
}

/// Where a page of results ended, as the `cursor` parameter carries it:
/// `sort.key.start.trace_id.window_start.window_end`. It pins the window (a `lookback`
/// would otherwise move with the clock between pages) and names the last trace shown.
pub struct PageCursor {
    pub after: TraceCursor,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
}

impl PageCursor {
    /// The cursor after `last`, the last trace of a page of `search`.
    pub fn after(search: &TraceSearch, last: &weft_storage::clickhouse::TraceSummary) -> Self {
        PageCursor {
            after: TraceCursor::after(search.sort, last),
            start_unix_nano: search.start_unix_nano,
            end_unix_nano: search.end_unix_nano,
        }
    }

    pub fn text(&self) -> String {
        let c = &self.after;
        format!(
            "{}.{}.{}.{}.{}.{}",
            c.sort.as_str(),
            c.key,
            c.start_unix_nano,
            hex::encode(c.trace_id),
            self.start_unix_nano,
            self.end_unix_nano
        )
    }

    fn parse(text: &str) -> Result<PageCursor, ApiError> {
        let invalid = || bad("cursor", text, "the next_cursor of a previous page");
        let parts: Vec<&str> = text.split('.').collect();
        let [sort_name, key, start, id, window_start, window_end] = parts[..] else {
            return Err(invalid());
        };
        let number = |part: &str| part.parse::<u64>().map_err(|_| invalid());
        let mut trace_id = [0u8; 16];
        hex::decode_to_slice(id, &mut trace_id).map_err(|_| invalid())?;
        let cursor = PageCursor {
            after: TraceCursor {
                sort: sort(sort_name).map_err(|_| invalid())?,
                key: number(key)?,
                start_unix_nano: number(start)?,
                trace_id,
            },
            start_unix_nano: number(window_start)?,
            end_unix_nano: number(window_end)?,
        };
        if cursor.start_unix_nano > cursor.end_unix_nano {
            return Err(invalid());
        }
        Ok(cursor)
    }
}

/// The parameters of a trace search, as `search` lists them.
pub const SEARCH_PARAMETERS: &str = "one of start, end, lookback, service, operation, kind, min_duration, max_duration, min_trace_duration, max_trace_duration, error, attr, sampled_by, limit, sort, cursor";

/// Parses `start`, `end`, `lookback`, `service`, `operation`, `kind` (span kinds,
/// comma-separated), `min_duration` and `max_duration` (of a span), `min_trace_duration`
/// and `max_trace_duration`, `error`, `attr` (repeatable, see [`attribute_filter`]),
/// `sampled_by`, `limit`, `sort` (`newest`, `longest`, `errors`) and `cursor` (a
/// previous page's `next_cursor`, which also fixes the window).
pub fn search(query: Option<&str>) -> Result<TraceSearch, ApiError> {
    let mut search = TraceSearch {
        limit: DEFAULT_LIMIT,
        ..TraceSearch::default()
    };
    let (mut start, mut end, mut lookback, mut cursor) = (None, None, None, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = value.trim();
        if value.chars().count() > MAX_TEXT_CHARS {
            return Err(ApiError::new(
                ErrorKind::InvalidArgument,
                format!("{key} is longer than {MAX_TEXT_CHARS} characters"),
            ));
        }
        let text = || (!value.is_empty()).then(|| value.to_owned());
        let nanos = |name: &str| -> Result<Option<u64>, ApiError> {
            Ok(Some(duration(name, value)?.as_nanos() as u64))
        };
        match key.as_ref() {
            "start" => start = Some(time("start", value)?),
            "end" => end = Some(time("end", value)?),
            "lookback" => lookback = Some(duration("lookback", value)?),
            "service" => search.service = text(),
            "operation" => search.operation = text(),
            "kind" => {
                search.kinds = match value {
                    "" | "all" => Vec::new(),
                    _ => kinds(value)?,
                }
            }
            "min_duration" => search.min_duration_ns = nanos("min_duration")?,
            "max_duration" => search.max_duration_ns = nanos("max_duration")?,
            "min_trace_duration" => search.min_trace_duration_ns = nanos("min_trace_duration")?,
            "max_trace_duration" => search.max_trace_duration_ns = nanos("max_trace_duration")?,
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
                search.attributes.push(attribute_filter(value)?);
            }
            "sampled_by" => search.sampled_by = text(),
            "limit" => {
                search.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| bad("limit", value, "a number from 1 to 1000"))?;
            }
            "sort" => search.sort = sort(value)?,
            "cursor" if !value.is_empty() => cursor = Some(PageCursor::parse(value)?),
            "cursor" => {}
            other => return Err(bad("parameter", other, SEARCH_PARAMETERS)),
        }
    }
    search.end_unix_nano = end.unwrap_or_else(now_nanos);
    search.start_unix_nano = start.unwrap_or_else(|| {
        search
            .end_unix_nano
            .saturating_sub(lookback.unwrap_or(DEFAULT_LOOKBACK).as_nanos() as u64)
    });
    if let Some(cursor) = cursor {
        if cursor.after.sort != search.sort {
            return Err(ApiError::new(
                ErrorKind::InvalidArgument,
                format!(
                    "invalid cursor: it continues a search sorted by {}, not by {}",
                    cursor.after.sort.as_str(),
                    search.sort.as_str()
                ),
            ));
        }
        search.start_unix_nano = cursor.start_unix_nano;
        search.end_unix_nano = cursor.end_unix_nano;
        search.after = Some(cursor.after);
    }
    if search.start_unix_nano > search.end_unix_nano {
        return Err(ApiError::new(
            ErrorKind::InvalidArgument,
            "start must not be after end",
        ));
    }
    for (min, max, name) in [
        (
            search.min_duration_ns,
            search.max_duration_ns,
            "min_duration must not exceed max_duration",
        ),
        (
            search.min_trace_duration_ns,
            search.max_trace_duration_ns,
            "min_trace_duration must not exceed max_trace_duration",
        ),
    ] {
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            return Err(ApiError::new(ErrorKind::InvalidArgument, name));
        }
    }
    Ok(search)
}

/// The parameters "what is different" adds to a search's.
const SELECTION_PARAMETERS: [&str; 6] = [
    "selection",
    "threshold",
    "selected_start",
    "selected_end",
    "selected_min_duration",
    "selected_max_duration",
];

/// A "what is different" request split in two: the search's query (without `cursor`,
/// which does not apply) and the selection's parameters.
pub fn split_selection(query: Option<&str>) -> (String, Vec<(String, String)>) {
    let mut rest = form_urlencoded::Serializer::new(String::new());
    let mut given = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if SELECTION_PARAMETERS.contains(&key.as_ref()) {
            given.push((key.into_owned(), value.trim().to_owned()));
        } else if key != "cursor" {
            rest.append_pair(&key, &value);
        }
    }
    (rest.finish(), given)
}

/// Parses a "what is different" request: a search (as [`search`]; its `sort` and
/// `limit` do not matter) and which of its traces to compare with the rest (see
/// [`selection`]).
pub fn difference(query: Option<&str>) -> Result<(TraceSearch, TraceSelection), ApiError> {
    let (rest, given) = split_selection(query);
    let search = self::search(Some(&rest))?;
    let selection = selection(&given, &search)?;
    Ok((search, selection))
}

/// Which traces of `search` to compare with the rest: `selection=errors`,
/// `selection=slow` with `threshold` (a trace duration), or `selection=region` with any
/// of `selected_start`, `selected_end` (RFC 3339) and `selected_min_duration`,
/// `selected_max_duration` (a box of the scatter).
pub fn selection(
    given: &[(String, String)],
    search: &TraceSearch,
) -> Result<TraceSelection, ApiError> {
    let get = |name: &str| {
        given
            .iter()
            .rev()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    };
    let nanos = |name: &str| -> Result<Option<u64>, ApiError> {
        get(name)
            .map(|v| duration(name, v).map(|d| d.as_nanos() as u64))
            .transpose()
    };
    let kind = get("selection").ok_or_else(|| {
        ApiError::new(
            ErrorKind::InvalidArgument,
            "missing selection: expected errors, slow or region",
        )
    })?;
    let selection = match kind {
        "errors" => TraceSelection::Errors,
        "slow" => TraceSelection::SlowerThan(nanos("threshold")?.ok_or_else(|| {
            ApiError::new(
                ErrorKind::InvalidArgument,
                "missing threshold: selection=slow needs the trace duration it starts at, such as threshold=500ms",
            )
        })?),
        "region" => {
            let start = get("selected_start")
                .map(|v| time("selected_start", v))
                .transpose()?;
            let end = get("selected_end")
                .map(|v| time("selected_end", v))
                .transpose()?;
            let (min, max) = (
                nanos("selected_min_duration")?,
                nanos("selected_max_duration")?,
            );
            if start.is_none() && end.is_none() && min.is_none() && max.is_none() {
                return Err(ApiError::new(
                    ErrorKind::InvalidArgument,
                    "selection=region needs selected_start, selected_end, selected_min_duration or selected_max_duration",
                ));
            }
            let region = TraceSelection::Region {
                start_unix_nano: start.unwrap_or(search.start_unix_nano),
                end_unix_nano: end.unwrap_or(search.end_unix_nano),
                min_duration_ns: min.unwrap_or(0),
                max_duration_ns: max.unwrap_or(u64::MAX),
            };
            if start > end && end.is_some() || min > max && max.is_some() {
                return Err(ApiError::new(
                    ErrorKind::InvalidArgument,
                    "the selected region must not end before it starts",
                ));
            }
            region
        }
        other => return Err(bad("selection", other, "errors, slow or region")),
    };
    Ok(selection)
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
            vec![
                AttributeFilter::equals("user", "u1"),
                AttributeFilter::equals("region", "eu")
            ]
        );
        assert_eq!((s.limit, s.sort), (5, TraceSort::Longest));
        assert_eq!(s.end_unix_nano - s.start_unix_nano, 3600 * 1_000_000_000);

        let s = search(Some(
            "kind=server,client&min_trace_duration=1s&max_trace_duration=2m&sampled_by=keep+errors&sort=errors",
        ))
        .unwrap();
        assert_eq!(s.kinds, [2, 3]);
        assert_eq!(s.min_trace_duration_ns, Some(1_000_000_000));
        assert_eq!(s.max_trace_duration_ns, Some(120_000_000_000));
        assert_eq!(s.sampled_by.as_deref(), Some("keep errors"));
        assert_eq!(s.sort, TraceSort::MostErrors);
        assert!(search(Some("kind=all")).unwrap().kinds.is_empty());
    }

    #[test]
    fn attribute_filters_read_every_operator_and_write_back() {
        for (text, key, test) in [
            (
                "http.route=/a=b",
                "http.route",
                AttributeTest::Equals("/a=b".into()),
            ),
            (
                "region != eu",
                "region",
                AttributeTest::NotEquals("eu".into()),
            ),
            ("user.id exists", "user.id", AttributeTest::Exists),
            ("retries>2", "retries", AttributeTest::Above(2.0)),
            ("retries>=2.5", "retries", AttributeTest::AtLeast(2.5)),
            ("size<-1", "size", AttributeTest::Below(-1.0)),
            ("size<=1e3", "size", AttributeTest::AtMost(1000.0)),
            ("empty=", "empty", AttributeTest::Equals(String::new())),
        ] {
            let filter = attribute_filter(text).unwrap();
            assert_eq!((filter.key.as_str(), &filter.test), (key, &test), "{text}");
            assert_eq!(
                attribute_filter(&attribute_text(&filter)).unwrap(),
                filter,
                "{text} round-trips"
            );
        }
        for bad in ["novalue", "=x", "a!b", "n>fast", "n<=", " exists", "n>inf"] {
            let error = attribute_filter(bad).unwrap_err();
            assert!(
                error.message.starts_with("invalid attr"),
                "{bad}: {}",
                error.message
            );
        }
        assert!(
            attribute_filter("n>fast")
                .unwrap_err()
                .message
                .contains("a number after >")
        );
    }

    #[test]
    fn a_cursor_continues_its_search_in_its_window() {
        let first = search(Some("lookback=1h&sort=longest")).unwrap();
        let last = weft_storage::clickhouse::TraceSummary {
            trace_id: [0xab; 16],
            start_time_unix_nano: first.start_unix_nano + 5,
            end_time_unix_nano: first.start_unix_nano + 105,
            root_service: String::new(),
            root_name: String::new(),
            span_count: 1,
            error_count: 0,
            service_names: Vec::new(),
            sample_rate: 1.0,
            sampled_by: String::new(),
        };
        let text = PageCursor::after(&first, &last).text();
        let next = search(Some(&format!("lookback=5m&sort=longest&cursor={text}"))).unwrap();
        assert_eq!(
            (next.start_unix_nano, next.end_unix_nano),
            (first.start_unix_nano, first.end_unix_nano),
            "the window of the first page, not the lookback"
        );
        let after = next.after.unwrap();
        assert_eq!((after.key, after.trace_id), (100, [0xab; 16]));
        let other = search(Some(&format!("cursor={text}"))).unwrap_err();
        assert!(
            other.message.contains("sorted by longest, not by newest"),
            "{}",
            other.message
        );
        for broken in ["x", "newest.1.2.zz.3.4", "newest.1.2.3.4.5.6.7"] {
            let error = search(Some(&format!("cursor={broken}"))).unwrap_err();
            assert!(error.message.starts_with("invalid cursor"), "{broken}");
        }
    }

    #[test]
    fn a_difference_needs_a_selection() {
        let (s, selection) = difference(Some("service=cart&selection=errors&limit=5")).unwrap();
        assert_eq!(
            (s.service.as_deref(), selection),
            (Some("cart"), TraceSelection::Errors)
        );
        let (_, slow) = difference(Some("selection=slow&threshold=1.5s")).unwrap();
        assert_eq!(slow, TraceSelection::SlowerThan(1_500_000_000));
        let (s, region) = difference(Some(
            "start=2026-01-01T00:00:00Z&end=2026-01-01T01:00:00Z&selection=region&selected_start=2026-01-01T00:30:00Z&selected_min_duration=2s",
        ))
        .unwrap();
        assert_eq!(
            region,
            TraceSelection::Region {
                start_unix_nano: s.start_unix_nano + 1_800_000_000_000,
                end_unix_nano: s.end_unix_nano,
                min_duration_ns: 2_000_000_000,
                max_duration_ns: u64::MAX,
            }
        );
        for (query, needle) in [
            ("", "missing selection"),
            ("selection=fast", "invalid selection"),
            ("selection=slow", "missing threshold"),
            ("selection=slow&threshold=soon", "invalid threshold"),
            ("selection=region", "selection=region needs"),
            (
                "selection=region&selected_start=noon",
                "invalid selected_start",
            ),
            (
                "selection=region&selected_min_duration=2s&selected_max_duration=1s",
                "must not end before it starts",
            ),
            (
                "selection=errors&colour=red",
                "invalid parameter \"colour\"",
            ),
        ] {
            let error = difference(Some(query)).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidArgument, "{query}");
            assert!(error.message.contains(needle), "{query}: {}", error.message);
        }
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
            ("kind=sever", "kind"),
            ("min_trace_duration=long", "min_trace_duration"),
            (
                "min_trace_duration=2s&max_trace_duration=1s",
                "min_trace_duration",
            ),
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
