//! The RED tables of the services pages: one row per service (or per operation and span
//! kind) with its requests, rate, errors and percentiles over the window, sparklines of
//! the same per step, and the sort order the URL asks for.
//!
//! A service's requests are its server and consumer spans (the spans that start work in
//! it), as in the API. A service without any (a batch job, a database seen only through
//! its client spans) is measured by all its spans instead, and says so, rather than
//! showing a row of zeros.

use super::super::traces::format;
use super::chart::{self, Sparkline, StepStats};
use crate::params::ENTRY_KINDS;
use crate::view::{Red, empty_steps};
use std::collections::BTreeMap;
use weft_storage::clickhouse::{MetricsWindow, NamedRedPoint, RedStats};

/// Error rates from which a row, a node or an edge is marked: amber, then red.
const WARN_RATE: f64 = 0.01;
const ERROR_RATE: f64 = 0.05;

/// `""`, `"warn"` or `"err"`: how an error rate is coloured.
pub fn health(errors: u64, requests: u64) -> &'static str {
    let rate = if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    };
    if rate >= ERROR_RATE {
        "err"
    } else if rate > WARN_RATE {
        "warn"
    } else {
        ""
    }
}

/// The kinds that count as requests of a service whose spans are of `kinds`: its entry
/// spans, or all of them when it has none.
pub fn request_kinds(kinds: impl IntoIterator<Item = u8>) -> (Vec<u8>, bool) {
    let entry: Vec<u8> = ENTRY_KINDS.iter().map(|k| *k as u8).collect();
    let kinds: Vec<u8> = kinds.into_iter().collect();
    if kinds.iter().any(|k| entry.contains(k)) {
        (entry, false)
    } else {
        (kinds, true)
    }
}

/// The numbers a chart draws of one step.
pub fn step_stats(start_seconds: u64, red: &Red) -> StepStats {
    StepStats {
        start_unix_nano: start_seconds * 1_000_000_000,
        requests: red.count,
        errors: red.errors,
        p50: red.histogram.quantile(0.50),
        p95: red.histogram.quantile(0.95),
        p99: red.histogram.quantile(0.99),
    }
}

/// A latency cell: the value in nanoseconds (for `<data value>`) and as people read it.
pub struct Latency {
    pub ns: Option<u64>,
    pub text: String,
}

impl Latency {
    fn of(ns: Option<u64>) -> Latency {
        Latency {
            ns,
            text: ns.map_or_else(|| "—".to_owned(), format::duration),
        }
    }

    pub fn value(&self) -> String {
        self.ns.map(|ns| ns.to_string()).unwrap_or_default()
    }
}

/// One line of a RED table.
pub struct RedRow {
    pub name: String,
    /// The span kind, on operation rows.
    pub kind: &'static str,
    pub href: String,
    pub colour: u64,
    /// Measured by all spans: the service has no server or consumer spans.
    pub all_spans: bool,
    pub requests: u64,
    pub rate: String,
    pub errors: u64,
    pub error_rate: String,
    pub health: &'static str,
    pub p50: Latency,
    pub p95: Latency,
    pub p99: Latency,
    pub spark_rate: Sparkline,
    pub spark_errors: Sparkline,
    pub spark_latency: Sparkline,
    per_second: f64,
    error_share: f64,
}

/// What one line measures: the sums over the window and per step.
#[derive(Default)]
pub struct Measured {
    pub total: Red,
    pub steps: BTreeMap<u64, Red>,
    pub all_spans: bool,
}

impl Measured {
    fn add_total(&mut self, row: &RedStats) {
        self.total
            .add(row.spans, row.errors, row.duration_sum_ns, &row.histogram);
    }

    fn add_step(&mut self, row: &NamedRedPoint) {
        self.steps
            .entry(u64::from(row.step_start))
            .or_default()
            .add(row.spans, row.errors, row.duration_sum_ns, &row.histogram);
    }
}

/// Every service's measure: totals from `red`, steps from `series`, counting the
/// kinds [`request_kinds`] picks for each service.
pub fn measure_services(
    red: &[RedStats],
    series: &[NamedRedPoint],
    window: MetricsWindow,
    step_seconds: u32,
) -> BTreeMap<String, Measured> {
    let mut kinds: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for row in red {
        kinds.entry(&row.name).or_default().push(row.kind);
    }
    let chosen: BTreeMap<&str, (Vec<u8>, bool)> = kinds
        .into_iter()
        .map(|(name, kinds)| (name, request_kinds(kinds)))
        .collect();
    let mut out: BTreeMap<String, Measured> = BTreeMap::new();
    for (name, (_, all_spans)) in &chosen {
        out.insert(
            (*name).to_owned(),
            Measured {
                steps: empty_steps(window, step_seconds),
                all_spans: *all_spans,
                ..Measured::default()
            },
        );
    }
    for row in red {
        if let Some(measured) = out
            .get_mut(&row.name)
            .filter(|_| chosen[row.name.as_str()].0.contains(&row.kind))
        {
            measured.add_total(row);
        }
    }
    for row in series {
        let Some((kinds, _)) = chosen.get(row.name.as_str()) else {
            continue;
        };
        if let Some(measured) = out.get_mut(&row.name).filter(|_| kinds.contains(&row.kind)) {
            measured.add_step(row);
        }
    }
    out
}

/// Every operation's measure (by name and kind): all its spans count.
pub fn measure_operations(
    red: &[RedStats],
    series: &[NamedRedPoint],
    window: MetricsWindow,
    step_seconds: u32,
) -> BTreeMap<(String, u8), Measured> {
    let mut out: BTreeMap<(String, u8), Measured> = BTreeMap::new();
    for row in red {
        out.entry((row.name.clone(), row.kind))
            .or_insert_with(|| Measured {
                steps: empty_steps(window, step_seconds),
                ..Measured::default()
            })
            .add_total(row);
    }
    for row in series {
        if let Some(measured) = out.get_mut(&(row.name.clone(), row.kind)) {
            measured.add_step(row);
        }
    }
    out
}

/// The ratio of errors to requests, 0 without requests.
pub fn share(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    }
}

/// A table row of `measured`, over a window of `seconds` and steps of `step_seconds`.
pub fn row(
    name: &str,
    kind: &'static str,
    href: String,
    measured: &Measured,
    seconds: f64,
    step_seconds: u32,
) -> RedRow {
    let red = &measured.total;
    let steps: Vec<StepStats> = measured
        .steps
        .iter()
        .map(|(start, red)| step_stats(*start, red))
        .collect();
    let step = chart::step_label(step_seconds);
    let per_step = |pick: &dyn Fn(&StepStats) -> Option<f64>| -> Vec<Option<f64>> {
        steps.iter().map(pick).collect()
    };
    let ms = |ns: Option<u64>| ns.map(|ns| ns as f64 / 1e6);
    let peak = steps.iter().map(|s| s.requests).max().unwrap_or(0);
    let worst = steps
        .iter()
        .filter(|s| s.requests > 0)
        .map(|s| share(s.errors, s.requests))
        .fold(0.0, f64::max);
    let slowest = steps.iter().filter_map(|s| s.p99).max();
    let per_second = red.count as f64 / seconds.max(1.0);
    RedRow {
        name: name.to_owned(),
        kind,
        href,
        colour: format::colour(name),
        all_spans: measured.all_spans,
        requests: red.count,
        rate: chart::rate(per_second),
        errors: red.errors,
        error_rate: chart::error_rate(share(red.errors, red.count)),
        health: health(red.errors, red.count),
        p50: Latency::of(red.histogram.quantile(0.50)),
        p95: Latency::of(red.histogram.quantile(0.95)),
        p99: Latency::of(red.histogram.quantile(0.99)),
        spark_rate: chart::sparkline(
            &[("rate", per_step(&|s| Some(s.requests as f64)))],
            format!("Requests per {step}: at most {peak}"),
        ),
        spark_errors: chart::sparkline(
            &[(
                if red.errors == 0 {
                    "no-errors"
                } else {
                    "errors"
                },
                per_step(&|s| (s.requests > 0).then(|| share(s.errors, s.requests))),
            )],
            format!(
                "Error rate per {step}: at most {}",
                chart::error_rate(worst)
            ),
        ),
        spark_latency: chart::sparkline(
            &[
                ("p99", per_step(&|s| ms(s.p99))),
                ("p95", per_step(&|s| ms(s.p95))),
                ("p50", per_step(&|s| ms(s.p50))),
            ],
            format!(
                "p50, p95 and p99 per {step}: p99 at most {}",
                slowest.map_or_else(|| "—".to_owned(), format::duration)
            ),
        ),
        per_second,
        error_share: share(red.errors, red.count),
    }
}

/// The columns a table sorts by, as the URL names them, and whether each sorts
/// ascending unless told otherwise.
pub const SORTS: [(&str, bool); 6] = [
    ("name", true),
    ("rate", false),
    ("errors", false),
    ("p50", false),
    ("p95", false),
    ("p99", false),
];

/// A sort order: a column of [`SORTS`] and a direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sort {
    pub column: &'static str,
    pub ascending: bool,
}

impl Sort {
    /// `sort` and `dir` (`asc` or `desc`) of the URL; unknown values fall back to names
    /// ascending, as a table without a choice is shown.
    pub fn parse(sort: &str, dir: &str) -> Sort {
        let (column, ascending) = SORTS
            .iter()
            .find(|(name, _)| *name == sort)
            .copied()
            .unwrap_or(SORTS[0]);
        let ascending = match dir {
            "asc" => true,
            "desc" => false,
            _ => ascending,
        };
        Sort { column, ascending }
    }

    /// The order a column's header link asks for: the other direction on the current
    /// column, the column's own default on another.
    pub fn toggled(&self, column: &str) -> (&'static str, &'static str) {
        let next = if self.column == column {
            Sort {
                ascending: !self.ascending,
                ..self.clone()
            }
        } else {
            Sort::parse(column, "")
        };
        (next.column, if next.ascending { "asc" } else { "desc" })
    }

    pub fn apply(&self, rows: &mut [RedRow]) {
        let latency = |l: &Latency| l.ns.map_or(-1.0, |ns| ns as f64);
        let key = |row: &RedRow| -> f64 {
            match self.column {
                "rate" => row.per_second,
                "errors" => row.error_share,
                "p50" => latency(&row.p50),
                "p95" => latency(&row.p95),
                "p99" => latency(&row.p99),
                _ => 0.0,
            }
        };
        rows.sort_by(|a, b| {
            let order = key(a)
                .total_cmp(&key(b))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.kind.cmp(b.kind));
            if self.ascending {
                order
            } else {
                order.reverse()
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_storage::clickhouse::DurationHistogram;

    fn stats(name: &str, kind: u8, durations_ms: &[u64], errors: u64) -> RedStats {
        let mut histogram = DurationHistogram::default();
        for ms in durations_ms {
            histogram.record(ms * 1_000_000);
        }
        RedStats {
            name: name.to_owned(),
            kind,
            spans: durations_ms.len() as u64,
            errors,
            duration_sum_ns: durations_ms.iter().sum::<u64>() * 1_000_000,
            histogram: histogram.to_sparse(),
        }
    }

    #[test]
    fn services_without_entry_spans_are_measured_by_all_their_spans() {
        let window = MetricsWindow {
            start_unix_nano: 1_767_225_600_000_000_000,
            end_unix_nano: 1_767_225_600_000_000_000 + 600_000_000_000,
        };
        let red = [
            stats("api", 2, &[10, 20, 30, 40], 1),
            stats("api", 3, &[5, 5], 0),
            stats("db", 3, &[1, 2, 3], 0),
        ];
        let measured = measure_services(&red, &[], window, 60);
        assert_eq!(measured["api"].total.count, 4, "server spans only");
        assert!(!measured["api"].all_spans);
        assert_eq!(
            measured["db"].total.count, 3,
            "all of the client-only db's spans"
        );
        assert!(measured["db"].all_spans);
        assert_eq!(
            measured["api"].steps.len(),
            11,
            "every minute of the window, both ends"
        );
        let row = row(
            "api",
            "",
            "/services/api".into(),
            &measured["api"],
            600.0,
            60,
        );
        assert_eq!((row.requests, row.errors), (4, 1));
        assert_eq!(row.error_rate, "25%");
        assert_eq!(row.health, "err");
        assert_eq!(row.rate, "0.4/min");
        assert_eq!(
            row.p50.text, "20.4ms",
            "the middle of the bucket holding 20 ms"
        );
        assert_eq!(
            row.p99.ns,
            DurationHistogram::from_sparse(&red[0].histogram.0, &red[0].histogram.1).quantile(0.99)
        );
    }

    fn named(name: &str, p95_ns: u64, per_second: f64) -> RedRow {
        let mut measured = Measured::default();
        let mut histogram = DurationHistogram::default();
        histogram.record(p95_ns);
        measured.total.add(1, 0, p95_ns, &histogram.to_sparse());
        let mut row = row(name, "", String::new(), &measured, 1.0, 60);
        row.per_second = per_second;
        row
    }

    #[test]
    fn tables_sort_by_the_column_the_url_names() {
        let mut rows = vec![
            named("b", 300, 1.0),
            named("a", 100, 3.0),
            named("c", 200, 2.0),
        ];
        let names = |rows: &[RedRow]| rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        Sort::parse("", "").apply(&mut rows);
        assert_eq!(names(&rows), ["a", "b", "c"]);
        Sort::parse("p95", "").apply(&mut rows);
        assert_eq!(names(&rows), ["b", "c", "a"], "slowest first");
        Sort::parse("rate", "asc").apply(&mut rows);
        assert_eq!(names(&rows), ["b", "c", "a"]);
        assert_eq!(Sort::parse("bogus", "sideways"), Sort::parse("name", "asc"));
        let current = Sort::parse("p95", "desc");
        assert_eq!(current.toggled("p95"), ("p95", "asc"));
        assert_eq!(current.toggled("name"), ("name", "asc"));
        assert_eq!(current.toggled("errors"), ("errors", "desc"));
    }

    #[test]
    fn error_rates_are_coloured_from_one_and_five_percent() {
        assert_eq!(health(0, 0), "");
        assert_eq!(health(1, 100), "");
        assert_eq!(health(2, 100), "warn");
        assert_eq!(health(5, 100), "err");
    }
}
