//! The trace search page's model: the form as the user filled it in (every filter is a
//! query parameter, so a URL holds the whole search), the results table and the
//! duration-over-time scatter.
//!
//! The form speaks the JSON API's parameters (`crate::params::search` parses them) plus
//! what only a page needs: `q` (a pasted trace id jumps to its page), `lookback=custom`
//! (use `start` and `end`), times as a `datetime-local` input sends them (UTC), and empty
//! fields, which an HTML form always sends.

use super::format::{self, Tick};
use super::range::{self, TimeRange};
use crate::params;
use weft_model::TraceId;
use weft_storage::clickhouse::{TraceSearch, TraceSummary};

pub const LIMITS: [u32; 6] = [20, 50, 100, 200, 500, 1000];

/// The form as submitted, kept as text so that the page shows it again as it was.
#[derive(Default)]
pub struct SearchForm {
    pub q: String,
    pub range: TimeRange,
    pub service: String,
    pub operation: String,
    pub kind: String,
    pub min_duration: String,
    pub max_duration: String,
    pub min_trace_duration: String,
    pub max_trace_duration: String,
    pub errors_only: bool,
    /// As the `attr` parameter writes them (`key=value`, `key>N`, …).
    pub attributes: Vec<String>,
    pub sampled_by: String,
    pub sort: String,
    pub limit: String,
    /// Whether this is a later page (the URL carries a cursor).
    pub paged: bool,
}

/// The span kinds of the form, as (value, label).
pub const KINDS: [(&str, &str); 6] = [
    ("server", "Server"),
    ("client", "Client"),
    ("producer", "Producer"),
    ("consumer", "Consumer"),
    ("internal", "Internal"),
    ("unspecified", "Unspecified"),
];

/// The sort orders of the form, as (value, label).
pub const SORTS: [(&str, &str); 3] = [
    ("newest", "Newest first"),
    ("longest", "Longest first"),
    ("errors", "Most errors first"),
];

impl SearchForm {
    pub fn limit_is(&self, limit: &u32) -> bool {
        self.limit == limit.to_string()
    }

    pub fn limit_is_listed(&self) -> bool {
        LIMITS.iter().any(|limit| self.limit_is(limit))
    }

    /// Whether any filter narrows the search beyond the time window.
    pub fn has_filters(&self) -> bool {
        !(self.service.is_empty()
            && self.operation.is_empty()
            && self.kind.is_empty()
            && self.min_duration.is_empty()
            && self.max_duration.is_empty()
            && self.min_trace_duration.is_empty()
            && self.max_trace_duration.is_empty()
            && !self.errors_only
            && self.attributes.is_empty()
            && self.sampled_by.is_empty())
    }

    pub fn kind_is(&self, kind: &&str) -> bool {
        self.kind == *kind
    }

    pub fn kind_is_listed(&self) -> bool {
        self.kind.is_empty() || KINDS.iter().any(|(value, _)| *value == self.kind)
    }

    pub fn sort_is(&self, sort: &&str) -> bool {
        self.sort == *sort
    }

    /// The order in words, for the results' heading.
    pub fn sort_label(&self) -> &'static str {
        match self.sort.as_str() {
            "longest" => "longest first",
            "errors" => "most errors first",
            _ => "newest first",
        }
    }
}

/// What the query string asks for, besides the form to show.
pub enum Request {
    /// `q` held a trace id.
    Jump(TraceId),
    Search(Box<TraceSearch>),
    /// Why the form cannot be searched, in a sentence naming the field.
    Invalid(String),
}

/// Reads the page's query string into the form and, through the API's parser, a search.
pub fn parse(query: Option<&str>) -> (SearchForm, Request) {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
        .collect();
    let mut form = SearchForm::default();
    for (key, value) in &pairs {
        if form.range.take(key, value) {
            continue;
        }
        let value = value.clone();
        match key.as_str() {
            "q" => form.q = value,
            "service" => form.service = value,
            "operation" => form.operation = value,
            "kind" => form.kind = value,
            "min_duration" => form.min_duration = value,
            "max_duration" => form.max_duration = value,
            "min_trace_duration" => form.min_trace_duration = value,
            "max_trace_duration" => form.max_trace_duration = value,
            "sampled_by" => form.sampled_by = value,
            "cursor" => form.paged = !value.is_empty(),
            "error" => form.errors_only = matches!(value.as_str(), "true" | "1" | "on"),
            "attr" if !value.is_empty() => form.attributes.push(value),
            "sort" => form.sort = value,
            "limit" => form.limit = value,
            _ => {}
        }
    }
    if !form.q.is_empty() {
        let request = match form.q.parse::<TraceId>() {
            Ok(trace_id) => Request::Jump(trace_id),
            Err(_) => {
                let shown: String = form.q.chars().take(80).collect();
                Request::Invalid(format!(
                    "\u{201c}{shown}\u{201d} is not a trace id: paste the 32 hexadecimal characters of one."
                ))
            }
        };
        return (form, request);
    }
    form.range.settle();
    if form.sort.is_empty() {
        form.sort = "newest".to_owned();
    }
    if form.limit.is_empty() {
        form.limit = params::DEFAULT_LIMIT.to_string();
    }
    let mut api = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form.range.api_pairs() {
        api.append_pair(key, &value);
    }
    for (key, value) in &pairs {
        let value = match key.as_str() {
            "q" | "lookback" | "start" | "end" => continue,
            _ if value.is_empty() => continue,
            "error" if value == "on" => "true".to_owned(),
            _ => value.clone(),
        };
        api.append_pair(key, &value);
    }
    let request = match params::search(Some(&api.finish())) {
        Ok(search) => Request::Search(Box::new(search)),
        Err(error) => Request::Invalid(range::sentence(&error.message)),
    };
    (form, request)
}

/// A service drawn in its colour.
pub struct Chip {
    pub name: String,
    pub colour: u64,
}

impl Chip {
    pub fn new(name: &str) -> Chip {
        Chip {
            name: name.to_owned(),
            colour: format::colour(name),
        }
    }
}

/// One row of the results table.
pub struct ResultRow {
    pub trace_id: String,
    pub short_id: String,
    pub time: String,
    /// The day, on the first row and where it changes from the row above.
    pub date: Option<String>,
    pub started: String,
    /// Empty while the root span has not arrived.
    pub root: Option<Chip>,
    pub root_name: String,
    pub duration: String,
    /// Duration as a percentage of the longest result's.
    pub bar: String,
    pub spans: u64,
    pub errors: u64,
    pub services: Vec<Chip>,
    /// The sample rate (each stored trace stands for this many), and the rule that kept it.
    pub sample_rate: String,
    pub sampled_by: String,
}

/// A sample rate as the table shows it: `1`, `4`, `12.5`.
pub fn sample_rate(rate: f32) -> String {
    let rate = f64::from(rate.max(1.0));
    if (rate - rate.round()).abs() < 0.05 {
        format!("{}", rate.round())
    } else {
        format!("{rate:.1}")
    }
}

fn trace_duration(trace: &TraceSummary) -> u64 {
    trace
        .end_time_unix_nano
        .saturating_sub(trace.start_time_unix_nano)
}

pub fn rows(traces: &[TraceSummary]) -> Vec<ResultRow> {
    let longest = traces.iter().map(trace_duration).max().unwrap_or(0);
    let mut day_above = None;
    traces
        .iter()
        .map(|trace| {
            let start = format::datetime(trace.start_time_unix_nano);
            let day = start.format("%b %d").to_string();
            let date = (day_above.as_ref() != Some(&day)).then(|| day.clone());
            day_above = Some(day);
            let trace_id = hex::encode(trace.trace_id);
            let mut services = trace.service_names.clone();
            services.sort();
            ResultRow {
                short_id: trace_id[..8].to_owned(),
                trace_id,
                time: start.format("%H:%M:%S%.3f").to_string(),
                date,
                started: format::timestamp(trace.start_time_unix_nano),
                root: (!trace.root_service.is_empty()).then(|| Chip::new(&trace.root_service)),
                root_name: trace.root_name.clone(),
                duration: format::duration(trace_duration(trace)),
                bar: format::percent(trace_duration(trace) as f64, longest as f64),
                spans: trace.span_count,
                errors: trace.error_count,
                services: services.iter().map(|s| Chip::new(s)).collect(),
                sample_rate: sample_rate(trace.sample_rate),
                sampled_by: trace.sampled_by.clone(),
            }
        })
        .collect()
}

/// Where the scatter's plot sits in its SVG: x in percent of the width (so circles stay
/// round at any width), y in pixels. `explorer.js` reads these off the SVG to brush.
const X0: f64 = 1.0;
const X1: f64 = 99.0;
const TOP: f64 = 14.0;
const PLOT_HEIGHT: f64 = 130.0;
pub const SCATTER_HEIGHT: f64 = 170.0;

pub struct Point {
    pub x: String,
    pub y: String,
    pub href: String,
    pub title: String,
    pub error: bool,
}

/// Trace duration over start time, server-rendered as SVG.
pub struct Scatter {
    pub points: Vec<Point>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    /// The window (ns, as text: beyond what a JavaScript number holds exactly).
    pub t0: String,
    pub t1: String,
    /// `linear` (from 0) or `log`; the durations at the bottom and top of the plot, ns.
    pub scale: &'static str,
    pub y_min: u64,
    pub y_max: u64,
    pub x0: f64,
    pub x1: f64,
    pub top: f64,
    pub plot_height: f64,
    pub bottom: f64,
    pub height: f64,
}

/// Durations spreading over more than this factor are drawn on a logarithmic axis, so a
/// few slow outliers do not flatten every other trace onto the floor.
const LOG_SPREAD: f64 = 50.0;

/// The scatter's vertical axis, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
enum DurationAxis {
    /// From 0 to a round maximum, ticks every `step`.
    Linear { max: f64, step: f64 },
    /// Whole decades from `min` to `max`.
    Log { min: f64, max: f64 },
}

impl DurationAxis {
    fn fit(durations: impl Iterator<Item = u64> + Clone) -> DurationAxis {
        let longest = durations.clone().max().unwrap_or(0).max(1_000_000) as f64;
        let shortest = durations.min().unwrap_or(0).max(1_000) as f64;
        if longest / shortest > LOG_SPREAD {
            DurationAxis::Log {
                min: 10f64.powf(shortest.log10().floor()),
                max: 10f64.powf(longest.log10().ceil()),
            }
        } else {
            let step = format::nice_step(longest, 3.0);
            DurationAxis::Linear {
                max: (longest / step).ceil() * step,
                step,
            }
        }
    }

    /// Where `ns` sits, from 0 (bottom) to 1 (top).
    fn share(&self, ns: u64) -> f64 {
        match *self {
            DurationAxis::Linear { max, .. } => ns as f64 / max,
            DurationAxis::Log { min, max } => {
                ((ns as f64).max(min).log10() - min.log10()) / (max.log10() - min.log10())
            }
        }
    }

    fn ticks(&self) -> Vec<u64> {
        match *self {
            DurationAxis::Linear { max, step } => (0..)
                .map(|k| k as f64 * step)
                .take_while(|ns| *ns <= max)
                .map(|ns| ns as u64)
                .collect(),
            DurationAxis::Log { min, max } => {
                let decades = (max / min).log10().round() as i32;
                // Few decades: a tick at 3 × each as well, so the axis has enough labels.
                let steps: &[f64] = if decades < 3 { &[1.0, 3.0] } else { &[1.0] };
                (0..=decades)
                    .flat_map(|d| steps.iter().map(move |s| min * 10f64.powi(d) * s))
                    .take_while(|ns| *ns <= max * 1.0001)
                    .map(|ns| ns.round() as u64)
                    .collect()
            }
        }
    }
}

pub fn scatter(search: &TraceSearch, traces: &[TraceSummary]) -> Scatter {
    let (t0, t1) = (
        search.start_unix_nano,
        search.end_unix_nano.max(search.start_unix_nano + 1),
    );
    let axis = DurationAxis::fit(traces.iter().map(trace_duration));
    let y = |ns: u64| TOP + (1.0 - axis.share(ns)) * PLOT_HEIGHT;
    let points = traces
        .iter()
        .map(|trace| {
            let share = (trace.start_time_unix_nano.saturating_sub(t0)) as f64 / (t1 - t0) as f64;
            let duration = trace_duration(trace);
            let root = if trace.root_service.is_empty() {
                "root span not received".to_owned()
            } else {
                format!("{}: {}", trace.root_service, trace.root_name)
            };
            let errors = match trace.error_count {
                0 => String::new(),
                1 => ", 1 error".to_owned(),
                n => format!(", {n} errors"),
            };
            Point {
                x: format!("{:.3}", X0 + share.clamp(0.0, 1.0) * (X1 - X0)),
                y: format!("{:.1}", y(duration)),
                href: format!("/traces/{}", hex::encode(trace.trace_id)),
                title: format!(
                    "{root}\n{} · {} spans{errors}\n{}",
                    format::duration(duration),
                    trace.span_count,
                    format::timestamp(trace.start_time_unix_nano)
                ),
                error: trace.error_count > 0,
            }
        })
        .collect();
    let y_ticks = axis
        .ticks()
        .into_iter()
        .map(|ns| Tick {
            at: format!("{:.1}", y(ns)),
            label: if ns == 0 {
                "0".to_owned()
            } else {
                format::duration(ns)
            },
        })
        .collect();
    let (scale, y_min, y_max) = match axis {
        DurationAxis::Linear { max, .. } => ("linear", 0, max as u64),
        DurationAxis::Log { min, max } => ("log", min as u64, max as u64),
    };
    Scatter {
        points,
        x_ticks: format::time_ticks(t0, t1, X0, X1),
        y_ticks,
        t0: t0.to_string(),
        t1: t1.to_string(),
        scale,
        y_min,
        y_max,
        x0: X0,
        x1: X1,
        top: TOP,
        plot_height: PLOT_HEIGHT,
        bottom: TOP + PLOT_HEIGHT,
        height: SCATTER_HEIGHT,
    }
}

/// The query string of this search with `key` set to `value` (for the sort links); a
/// cursor belongs to one order and one page, so it is dropped.
pub fn with(query: Option<&str>, key: &str, value: &str) -> String {
    let mut out = without(query, &[key, "cursor"]);
    out.append_pair(key, value);
    out.finish()
}

/// The query string of this search without the parameters `keys` (nor empty ones).
pub fn without(query: Option<&str>, keys: &[&str]) -> form_urlencoded::Serializer<'static, String> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !keys.contains(&k.as_ref()) && !v.is_empty() {
            out.append_pair(&k, &v);
        }
    }
    out
}

/// A duration as the form's fields take it, to two significant figures: `450ms`, `1.2s`.
pub fn duration_param(ns: u64) -> String {
    let (value, unit) = match ns {
        n if n >= 1_000_000_000 => (n as f64 / 1e9, "s"),
        n if n >= 1_000_000 => (n as f64 / 1e6, "ms"),
        n => (n as f64 / 1e3, "us"),
    };
    let digits = if value >= 10.0 { 0 } else { 1 };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{unit}")
}

/// The duration most results are faster than (their 90th percentile, to two figures):
/// where "what is different about the slow ones" starts.
pub fn slow_threshold(traces: &[TraceSummary]) -> Option<String> {
    let mut durations: Vec<u64> = traces.iter().map(trace_duration).collect();
    if durations.len() < 2 {
        return None;
    }
    durations.sort_unstable();
    let at = durations[(durations.len() * 9 / 10).min(durations.len() - 1)];
    (at > 0).then(|| duration_param(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_storage::clickhouse::TraceSort;

    fn form(query: &str) -> (SearchForm, Result<TraceSearch, String>) {
        match parse(Some(query)) {
            (form, Request::Search(search)) => (form, Ok(*search)),
            (form, Request::Invalid(message)) => (form, Err(message)),
            (_, Request::Jump(id)) => panic!("{query} jumped to {id}"),
        }
    }

    #[test]
    fn a_pasted_trace_id_jumps() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        match parse(Some(&format!("q=+{id}+&service=x"))) {
            (_, Request::Jump(trace_id)) => assert_eq!(trace_id.to_hex(), id),
            _ => panic!("no jump"),
        }
        let (filled, result) = form("q=not-an-id");
        assert_eq!(filled.q, "not-an-id");
        assert!(result.unwrap_err().contains("is not a trace id"));
    }

    #[test]
    fn an_empty_form_is_the_last_hour_newest_first() {
        let (filled, result) = form(
            "q=&lookback=1h&start=&end=&service=&operation=&min_duration=&max_duration=&attr=&sort=newest&limit=20",
        );
        let search = result.unwrap();
        assert_eq!(
            search.end_unix_nano - search.start_unix_nano,
            3_600_000_000_000
        );
        assert_eq!((search.limit, search.sort), (20, TraceSort::Newest));
        assert!(!filled.has_filters());
        assert!(filled.attributes.is_empty());
    }

    #[test]
    fn every_filter_reaches_the_search() {
        let (filled, result) = form(
            "lookback=24h&service=cart&operation=GET+%2Fcart&min_duration=250ms&max_duration=1.5s&error=true&attr=user%3Du1&attr=region%3Deu&sort=longest&limit=50",
        );
        let search = result.unwrap();
        assert_eq!(search.service.as_deref(), Some("cart"));
        assert_eq!(search.operation.as_deref(), Some("GET /cart"));
        assert_eq!(search.min_duration_ns, Some(250_000_000));
        assert_eq!(search.max_duration_ns, Some(1_500_000_000));
        assert!(search.errors_only && filled.errors_only);
        assert_eq!(search.attributes.len(), 2);
        assert_eq!((search.limit, search.sort), (50, TraceSort::Longest));
        assert_eq!(filled.attributes, ["user=u1", "region=eu"]);
    }

    #[test]
    fn a_custom_range_reads_local_inputs_as_utc_and_a_preset_wins_over_it() {
        let (filled, result) =
            form("lookback=custom&start=2026-01-01T10:00&end=2026-01-01T11:30:15");
        let search = result.unwrap();
        assert_eq!(search.start_unix_nano, 1_767_261_600_000_000_000);
        assert_eq!(
            search.end_unix_nano - search.start_unix_nano,
            5_415_000_000_000
        );
        assert_eq!(filled.range.start, "2026-01-01T10:00:00");
        assert!(filled.range.is_custom());

        let (filled, result) = form("start=2026-01-01T10:00:00.250Z&end=2026-01-01T10:05:00Z");
        assert_eq!(result.unwrap().start_unix_nano, 1_767_261_600_250_000_000);
        assert!(
            filled.range.is_custom(),
            "a brushed URL carries no lookback"
        );

        let (filled, result) = form("lookback=15m&start=2026-01-01T10:00&end=2026-01-01T11:00");
        let search = result.unwrap();
        assert_eq!(
            search.end_unix_nano - search.start_unix_nano,
            900_000_000_000
        );
        assert!(filled.range.start.is_empty() && !filled.range.is_custom());
    }

    #[test]
    fn bad_fields_are_named_in_a_sentence() {
        for (query, needle) in [
            ("min_duration=fast", "Invalid min_duration \"fast\""),
            ("lookback=custom&start=yesterday", "Invalid start"),
            ("attr=novalue", "Invalid attr"),
            ("limit=5000", "Invalid limit"),
        ] {
            let (_, result) = form(query);
            let message = result.unwrap_err();
            assert!(message.starts_with(needle), "{query}: {message}");
            assert!(message.ends_with('.'), "{message}");
        }
    }

    #[test]
    fn spread_out_durations_get_a_logarithmic_axis() {
        let ms = |n: u64| n * 1_000_000;
        let axis = DurationAxis::fit([ms(3), ms(40), ms(9_000)].into_iter());
        assert_eq!(
            axis,
            DurationAxis::Log {
                min: ms(1) as f64,
                max: ms(10_000) as f64
            }
        );
        assert_eq!(
            axis.ticks(),
            [ms(1), ms(10), ms(100), ms(1_000), ms(10_000)]
        );
        assert_eq!(axis.share(ms(100)), 0.5);
        assert_eq!(
            axis.share(0),
            0.0,
            "shorter than the axis sits on its floor"
        );
        let close = DurationAxis::fit([ms(3), ms(50), ms(2)].into_iter());
        assert_eq!(close.ticks(), [0, ms(20), ms(40), ms(60)]);
        let two = DurationAxis::fit([1_500_000, ms(90)].into_iter());
        assert_eq!(two.ticks(), [ms(1), ms(3), ms(10), ms(30), ms(100)]);
    }

    #[test]
    fn sort_links_keep_the_search() {
        assert_eq!(
            with(
                Some("service=a+b&sort=newest&q=&cursor=x"),
                "sort",
                "longest"
            ),
            "service=a+b&sort=longest"
        );
    }

    #[test]
    fn thresholds_and_rates_read_as_the_form_writes_them() {
        assert_eq!(duration_param(452_300_000), "452ms");
        assert_eq!(duration_param(1_240_000_000), "1.2s");
        assert_eq!(duration_param(3_000_000_000), "3s");
        assert_eq!(duration_param(7_500), "7.5us");
        for ns in [452_300_000, 1_240_000_000, 7_500] {
            assert!(weft_runtime::config::parse_duration(&duration_param(ns)).is_ok());
        }
        let traces: Vec<TraceSummary> = (1..=10).map(|i| trace(0, i * 100_000_000, 0)).collect();
        assert_eq!(slow_threshold(&traces).as_deref(), Some("1s"));
        assert_eq!(slow_threshold(&traces[..1]), None);
        assert_eq!(
            (sample_rate(1.0).as_str(), sample_rate(4.0).as_str()),
            ("1", "4")
        );
        assert_eq!(sample_rate(12.5), "12.5");
    }

    fn trace(start: u64, duration: u64, errors: u64) -> TraceSummary {
        TraceSummary {
            trace_id: [7; 16],
            start_time_unix_nano: start,
            end_time_unix_nano: start + duration,
            root_service: "checkout".into(),
            root_name: "POST /checkout".into(),
            span_count: 3,
            error_count: errors,
            service_names: vec!["payment".into(), "checkout".into()],
            sample_rate: 1.0,
            sampled_by: String::new(),
        }
    }

    #[test]
    fn the_scatter_places_traces_by_time_and_duration() {
        let search = TraceSearch {
            start_unix_nano: 1_000_000_000_000,
            end_unix_nano: 1_060_000_000_000,
            ..TraceSearch::default()
        };
        let traces = [
            trace(1_030_000_000_000, 400_000_000, 1),
            trace(1_000_000_000_000, 100_000_000, 0),
        ];
        let chart = scatter(&search, &traces);
        assert_eq!((chart.scale, chart.y_max), ("linear", 400_000_000));
        assert_eq!(chart.points[0].x, "50.000");
        assert_eq!(chart.points[0].y, format!("{TOP:.1}"));
        assert!(chart.points[0].error && !chart.points[1].error);
        assert!(chart.points[0].title.contains("400ms · 3 spans, 1 error"));
        assert_eq!(chart.points[1].x, "1.000");
        let labels: Vec<&str> = chart.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "200ms", "400ms"]);

        let table = rows(&traces);
        assert_eq!(table[0].date.as_deref(), Some("Jan 01"));
        assert_eq!(table[1].date, None, "the same day is not repeated");
        assert_eq!(table[0].bar, "100");
        assert_eq!(table[1].bar, "25");
        let services: Vec<&str> = table[0].services.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(services, ["checkout", "payment"]);
    }
}
