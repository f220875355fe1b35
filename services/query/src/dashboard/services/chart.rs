//! Charts of the services pages, drawn on the server as SVG: sparklines for the tables,
//! and the latency-percentile and throughput charts of a service, with their scales,
//! ticks, legends and hover titles.
//!
//! A chart's plot is an SVG in a fixed coordinate space ([`PLOT_W`] × [`PLOT_H`]) that
//! stretches to the width of its box (`preserveAspectRatio="none"`, strokes that do not
//! scale), and its tick labels are HTML placed by percentage beside it, so the text stays
//! crisp and legible at 390 px as at 1480 px.

use super::super::traces::format::{self, Tick};

/// The plot's coordinate space.
pub const PLOT_W: f64 = 1000.0;
pub const PLOT_H: f64 = 200.0;
/// A sparkline's coordinate space.
const SPARK_W: f64 = 100.0;
const SPARK_H: f64 = 24.0;

/// A step of 1, 2 or 5 times a power of ten (any, below 1 too) that cuts `range` into
/// about `count` parts.
fn nice_step(range: f64, count: f64) -> f64 {
    let raw = range / count;
    if raw.is_nan() || raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|n| n * magnitude)
        .find(|step| *step >= raw * 0.999_999)
        .unwrap_or(10.0 * magnitude)
}

/// A value axis from 0 to a round maximum at or above the peak, ticked every `step`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValueAxis {
    pub max: f64,
    pub step: f64,
}

impl ValueAxis {
    /// About four ticks above 0. A peak of 0 (nothing to draw) gets the axis `0..floor`,
    /// so an empty chart still has a scale; `floor` is the smallest maximum an axis has.
    pub fn fit(peak: f64, floor: f64) -> ValueAxis {
        let peak = if peak.is_finite() {
            peak.max(floor)
        } else {
            floor
        };
        let step = nice_step(peak, 4.0);
        let max = (peak / step - 1e-9).ceil().max(1.0) * step;
        ValueAxis { max, step }
    }

    /// The ticks from 0 to the maximum.
    pub fn ticks(&self) -> Vec<f64> {
        let count = (self.max / self.step).round() as u32;
        (0..=count).map(|k| f64::from(k) * self.step).collect()
    }

    /// Where `value` sits, from 0 (bottom) to 1 (top), clamped.
    pub fn share(&self, value: f64) -> f64 {
        (value / self.max).clamp(0.0, 1.0)
    }
}

/// Decimals that show `value` with about three significant digits, trailing zeros cut.
fn significant(value: f64) -> String {
    let decimals = match value.abs() {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        v if v >= 1.0 => 2,
        _ => 3,
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A request rate for people: `12.5/s` from one a second up, `4.2/min` below.
pub fn rate(per_second: f64) -> String {
    let per_minute = per_second * 60.0;
    match per_second {
        r if r <= 0.0 => "0".to_owned(),
        r if r >= 1.0 => format!("{}/s", significant(r)),
        _ if per_minute >= 0.01 => format!("{}/min", significant(per_minute)),
        _ => "<0.01/min".to_owned(),
    }
}

/// An error rate for people: `0%`, `<0.1%`, `2.5%`, `100%`.
pub fn error_rate(share: f64) -> String {
    match share * 100.0 {
        p if p <= 0.0 => "0%".to_owned(),
        p if p < 0.1 => "<0.1%".to_owned(),
        p => format!("{}%", significant(p)),
    }
}

/// A step of a series in words: `1 min`, `24 min`, `2 h 48 min`, `1 d`.
pub fn step_label(seconds: u32) -> String {
    let minutes = seconds / 60;
    let parts = [
        (minutes / 1440, "d"),
        (minutes / 60 % 24, "h"),
        (minutes % 60, "min"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    if words.is_empty() {
        format!("{seconds} s")
    } else {
        words.join(" ")
    }
}

/// Rates of an axis in one unit: per second when the peak reaches one a second,
/// otherwise per minute; returns the multiplier from per-second and the unit.
fn rate_unit(peak_per_second: f64) -> (f64, &'static str) {
    if peak_per_second >= 1.0 {
        (1.0, "/s")
    } else {
        (60.0, "/min")
    }
}

/// One line of a series: a value per step, `None` where there is none (no requests, so
/// no latency). Isolated points get a dot, since a line needs two.
fn path(
    values: &[Option<f64>],
    x: impl Fn(usize) -> f64,
    y: impl Fn(f64) -> f64,
) -> (String, String) {
    let (mut line, mut dots) = (String::new(), String::new());
    for (i, value) in values.iter().enumerate() {
        let Some(value) = value else { continue };
        let (px, py) = (x(i), y(*value));
        let before = i > 0 && values[i - 1].is_some();
        let after = values.get(i + 1).is_some_and(Option::is_some);
        line.push_str(&format!(
            "{}{px:.1} {py:.1}",
            if before { " L" } else { " M" }
        ));
        if !before && !after {
            dots.push_str(&format!(" M{px:.1} {py:.1} l0 0"));
        }
    }
    (line.trim_start().to_owned(), dots.trim_start().to_owned())
}

/// A drawn line: its CSS class (and legend key), the path and its dots.
pub struct Line {
    pub class: &'static str,
    pub d: String,
    pub dots: String,
}

/// A bar of the throughput chart, in plot coordinates.
pub struct Bar {
    pub class: &'static str,
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
}

/// The hover target of a step: the whole height of the plot, with its numbers.
pub struct Column {
    pub x: String,
    pub w: String,
    pub title: String,
}

/// A horizontal grid line: where it sits in the plot, and its label's place in percent
/// from the top.
pub struct GridLine {
    pub y: String,
    pub at: String,
    pub label: String,
}

/// A chart over time: lines or bars, a value axis with grid lines, a time axis.
pub struct Chart {
    pub lines: Vec<Line>,
    pub bars: Vec<Bar>,
    pub columns: Vec<Column>,
    pub grid: Vec<GridLine>,
    pub x_ticks: Vec<Tick>,
    /// What the value axis measures, with its unit.
    pub unit: String,
    /// Whether nothing is drawn (no requests in the window).
    pub empty: bool,
}

/// One step of a series, as the charts read it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepStats {
    pub start_unix_nano: u64,
    pub requests: u64,
    pub errors: u64,
    /// Nanoseconds; `None` without requests.
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
}

/// The steps of a chart and where they sit on its time axis.
pub struct Timeline<'a> {
    pub steps: &'a [StepStats],
    pub step_ns: u64,
}

impl Timeline<'_> {
    fn bounds(&self) -> (u64, u64) {
        let first = self.steps.first().map_or(0, |s| s.start_unix_nano);
        let last = self.steps.last().map_or(0, |s| s.start_unix_nano) + self.step_ns;
        (first, last.max(first + 1))
    }

    /// The left edge of step `i` in plot coordinates.
    fn x(&self, i: usize) -> f64 {
        i as f64 * self.width()
    }

    fn width(&self) -> f64 {
        PLOT_W / self.steps.len().max(1) as f64
    }

    fn x_ticks(&self) -> Vec<Tick> {
        let (start, end) = self.bounds();
        format::time_ticks(start, end, 0.0, 100.0)
    }

    fn columns(&self) -> Vec<Column> {
        let step_s = self.step_ns as f64 / 1e9;
        self.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let start = format::datetime(step.start_unix_nano);
                let end = format::datetime(step.start_unix_nano + self.step_ns);
                let mut title = format!(
                    "{} – {} UTC\n{} request{} ({}) · {} error{} ({})",
                    start.format("%b %d %H:%M"),
                    end.format("%H:%M"),
                    step.requests,
                    if step.requests == 1 { "" } else { "s" },
                    rate(step.requests as f64 / step_s),
                    step.errors,
                    if step.errors == 1 { "" } else { "s" },
                    error_rate(share(step.errors, step.requests)),
                );
                if let (Some(p50), Some(p95), Some(p99)) = (step.p50, step.p95, step.p99) {
                    title.push_str(&format!(
                        "\np50 {} · p95 {} · p99 {}",
                        format::duration(p50),
                        format::duration(p95),
                        format::duration(p99)
                    ));
                }
                Column {
                    x: format!("{:.2}", self.x(i)),
                    w: format!("{:.2}", self.width()),
                    title,
                }
            })
            .collect()
    }

    fn grid(axis: &ValueAxis, label: impl Fn(f64) -> String) -> Vec<GridLine> {
        axis.ticks()
            .into_iter()
            .map(|value| {
                let from_top = 1.0 - axis.share(value);
                GridLine {
                    y: format!("{:.1}", from_top * PLOT_H),
                    at: format!("{:.2}", from_top * 100.0),
                    label: label(value),
                }
            })
            .collect()
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Which percentile of a step a line draws.
type Pick = fn(&StepStats) -> Option<u64>;

/// The p50, p95 and p99 lines of a series over time, on a duration axis from 0.
pub fn latency(timeline: &Timeline) -> Chart {
    let peak = timeline
        .steps
        .iter()
        .filter_map(|s| s.p99)
        .max()
        .unwrap_or(0);
    let axis = ValueAxis::fit(peak as f64, 1_000_000.0);
    let y = |ns: f64| (1.0 - axis.share(ns)) * PLOT_H;
    let half = timeline.width() / 2.0;
    let x = |i: usize| timeline.x(i) + half;
    // p99 last and dashed (in the style sheet): where few requests make it equal p95,
    // both stay visible.
    let picks: [(&'static str, Pick); 3] =
        [("p50", |s| s.p50), ("p95", |s| s.p95), ("p99", |s| s.p99)];
    let lines = picks
        .into_iter()
        .map(|(class, pick)| {
            let values: Vec<Option<f64>> = timeline
                .steps
                .iter()
                .map(|s| pick(s).map(|ns| ns as f64))
                .collect();
            let (d, dots) = path(&values, x, y);
            Line { class, d, dots }
        })
        .collect();
    Chart {
        lines,
        bars: Vec::new(),
        columns: timeline.columns(),
        grid: Timeline::grid(&axis, |ns| {
            if ns == 0.0 {
                "0".to_owned()
            } else {
                format::duration(ns as u64)
            }
        }),
        x_ticks: timeline.x_ticks(),
        unit: "Latency".to_owned(),
        empty: peak == 0,
    }
}

/// Requests per step as bars, their errors as red bars in front, on a rate axis.
pub fn throughput(timeline: &Timeline) -> Chart {
    let step_s = (timeline.step_ns as f64 / 1e9).max(1.0);
    let peak = timeline.steps.iter().map(|s| s.requests).max().unwrap_or(0) as f64 / step_s;
    let (factor, unit) = rate_unit(peak);
    let axis = ValueAxis::fit(peak * factor, 1.0);
    let width = timeline.width();
    let gap = (width * 0.15).min(6.0);
    let mut bars = Vec::new();
    for (i, step) in timeline.steps.iter().enumerate() {
        for (class, count) in [("requests", step.requests), ("errors", step.errors)] {
            if count == 0 {
                continue;
            }
            let height = axis.share(count as f64 / step_s * factor) * PLOT_H;
            bars.push(Bar {
                class,
                x: format!("{:.2}", timeline.x(i) + gap / 2.0),
                y: format!("{:.2}", PLOT_H - height),
                w: format!("{:.2}", width - gap),
                h: format!("{height:.2}"),
            });
        }
    }
    let label = |value: f64| {
        if value == 0.0 {
            "0".to_owned()
        } else {
            format!("{}{unit}", significant(value))
        }
    };
    Chart {
        lines: Vec::new(),
        bars,
        columns: timeline.columns(),
        grid: Timeline::grid(&axis, label),
        x_ticks: timeline.x_ticks(),
        unit: format!("Requests and errors, per {}", &unit[1..]),
        empty: peak == 0.0,
    }
}

/// A small chart of a table cell: one or more lines (class, path, dots of lone points),
/// scaled to their common peak.
pub struct Sparkline {
    pub lines: Vec<(&'static str, String, String)>,
    pub title: String,
}

/// A sparkline of `series` (class and values per step, `None` for no value), all on one
/// scale from 0 to their common peak.
pub fn sparkline(series: &[(&'static str, Vec<Option<f64>>)], title: String) -> Sparkline {
    let peak = series
        .iter()
        .flat_map(|(_, values)| values.iter().flatten())
        .fold(0.0_f64, |peak, v| peak.max(*v));
    let steps = series.first().map_or(0, |(_, v)| v.len()).max(1);
    let x = |i: usize| (i as f64 + 0.5) * SPARK_W / steps as f64;
    // A flat series lies on the floor; a margin keeps the stroke inside the box.
    let y = |v: f64| {
        let share = if peak > 0.0 { v / peak } else { 0.0 };
        SPARK_H - 2.0 - share * (SPARK_H - 4.0)
    };
    Sparkline {
        lines: series
            .iter()
            .map(|(class, values)| {
                let (line, dots) = path(values, x, y);
                (*class, line, dots)
            })
            .collect(),
        title,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers_above_the_peak() {
        let axis = ValueAxis::fit(0.37, 0.01);
        assert_eq!(
            axis,
            ValueAxis {
                max: 0.4,
                step: 0.1
            }
        );
        assert_eq!(axis.ticks().len(), 5);
        let ms = ValueAxis::fit(183_000_000.0, 1_000_000.0);
        assert_eq!((ms.max, ms.step), (200_000_000.0, 50_000_000.0));
        assert_eq!(ms.share(100_000_000.0), 0.5);
        assert_eq!(ms.share(1e12), 1.0, "clamped");
        let exact = ValueAxis::fit(40.0, 1.0);
        assert_eq!(
            (exact.max, exact.step),
            (40.0, 10.0),
            "a round peak is the top"
        );
        let empty = ValueAxis::fit(0.0, 1.0);
        assert_eq!(empty.ticks(), [0.0, 0.5, 1.0]);
        assert!(ValueAxis::fit(f64::NAN, 1.0).max >= 1.0);
    }

    #[test]
    fn steps_read_like_people_write_them() {
        assert_eq!(step_label(60), "1 min");
        assert_eq!(step_label(24 * 60), "24 min");
        assert_eq!(step_label(168 * 60), "2 h 48 min");
        assert_eq!(step_label(86_400), "1 d");
    }

    #[test]
    fn rates_and_shares_read_like_people_write_them() {
        for (per_second, text) in [
            (0.0, "0"),
            (12.345, "12.3/s"),
            (1.0, "1/s"),
            (250.4, "250/s"),
            (0.5, "30/min"),
            (1.0 / 60.0, "1/min"),
            (3.0 / 3600.0, "0.05/min"),
            (1e-6, "<0.01/min"),
        ] {
            assert_eq!(rate(per_second), text, "{per_second}");
        }
        for (share, text) in [
            (0.0, "0%"),
            (0.0004, "<0.1%"),
            (0.025, "2.5%"),
            (1.0 / 3.0, "33.3%"),
            (1.0, "100%"),
        ] {
            assert_eq!(error_rate(share), text, "{share}");
        }
    }

    fn steps(requests: &[u64]) -> Vec<StepStats> {
        let start = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
        requests
            .iter()
            .enumerate()
            .map(|(i, &requests)| StepStats {
                start_unix_nano: start + i as u64 * 60_000_000_000,
                requests,
                errors: requests / 4,
                p50: (requests > 0).then_some(10_000_000 * requests),
                p95: (requests > 0).then_some(20_000_000 * requests),
                p99: (requests > 0).then_some(30_000_000 * requests),
            })
            .collect()
    }

    #[test]
    fn latency_lines_break_where_there_were_no_requests() {
        let steps = steps(&[1, 2, 0, 4, 0]);
        let chart = latency(&Timeline {
            steps: &steps,
            step_ns: 60_000_000_000,
        });
        let p99 = chart.lines.iter().find(|l| l.class == "p99").unwrap();
        // 120 ms peak: an axis to 150 ms; points in the middle of their steps.
        assert_eq!(p99.d, "M100.0 160.0 L300.0 120.0 M700.0 40.0");
        assert_eq!(p99.dots, "M700.0 40.0 l0 0", "the lone point gets a dot");
        let labels: Vec<&str> = chart.grid.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(labels, ["0", "50ms", "100ms", "150ms"]);
        assert_eq!(chart.grid[0].at, "100.00", "0 at the bottom");
        assert_eq!(chart.columns.len(), 5);
        assert!(
            chart.columns[1].title.starts_with(
                "Jan 01 00:01 – 00:02 UTC\n2 requests (2/min) · 0 errors (0%)\np50 20ms"
            ),
            "{}",
            chart.columns[1].title
        );
        let ticks: Vec<&str> = chart.x_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            ticks,
            ["00:00", "00:01", "00:02", "00:03", "00:04", "00:05"]
        );
        assert!(!chart.empty);
    }

    #[test]
    fn throughput_bars_use_per_minute_below_one_a_second() {
        let steps = steps(&[30, 0, 8]);
        let chart = throughput(&Timeline {
            steps: &steps,
            step_ns: 60_000_000_000,
        });
        assert_eq!(chart.unit, "Requests and errors, per min");
        let labels: Vec<&str> = chart.grid.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(labels, ["0", "10/min", "20/min", "30/min"]);
        let tallest = chart.bars.iter().find(|b| b.class == "requests").unwrap();
        assert_eq!((tallest.y.as_str(), tallest.h.as_str()), ("0.00", "200.00"));
        assert_eq!(chart.bars.len(), 4, "two steps with requests and errors");
        let fast = steps
            .iter()
            .map(|s| StepStats {
                requests: s.requests * 10,
                ..s.clone()
            })
            .collect::<Vec<_>>();
        let per_second = throughput(&Timeline {
            steps: &fast,
            step_ns: 60_000_000_000,
        });
        assert_eq!(per_second.grid.last().unwrap().label, "6/s");
        let nothing = throughput(&Timeline {
            steps: &steps[1..2],
            step_ns: 60_000_000_000,
        });
        assert!(nothing.empty && nothing.bars.is_empty());
    }

    #[test]
    fn sparklines_share_one_scale() {
        let spark = sparkline(
            &[
                ("p99", vec![Some(4.0), None, Some(2.0), Some(2.0)]),
                ("p50", vec![Some(1.0), None, Some(1.0), Some(1.0)]),
            ],
            "title".into(),
        );
        assert_eq!(spark.lines[0].1, "M12.5 2.0 M62.5 12.0 L87.5 12.0");
        assert_eq!(spark.lines[0].2, "M12.5 2.0 l0 0", "a lone point is a dot");
        assert_eq!(spark.lines[1].1, "M12.5 17.0 M62.5 17.0 L87.5 17.0");
        let flat = sparkline(&[("rate", vec![Some(0.0), Some(0.0)])], String::new());
        assert_eq!(
            (flat.lines[0].1.as_str(), flat.lines[0].2.as_str()),
            ("M25.0 22.0 L75.0 22.0", "")
        );
    }
}
