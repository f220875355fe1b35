//! How the explorer writes numbers for people: durations, times, percentages, axis ticks,
//! and the colour each service is drawn in.

use chrono::{DateTime, Utc};

/// Colours in the service palette (`.c0` … `.c11` in `explorer.css`).
pub const PALETTE: u64 = 12;

/// The palette index of a service: a hash of its name, so a service keeps its colour on
/// every page, in every trace and after every deploy.
pub fn colour(service: &str) -> u64 {
    // FNV-1a: stable across processes and Rust versions, unlike `DefaultHasher`.
    let hash = service
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    hash % PALETTE
}

/// A duration with three significant digits at most: `850ns`, `12.5µs`, `250ms`,
/// `1.25s`, `2m 5s`, `3h 20m`.
pub fn duration(ns: u64) -> String {
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    match ns {
        0..US => format!("{ns}ns"),
        US..MS => format!("{}µs", significant(ns as f64 / US as f64)),
        MS..S => format!("{}ms", significant(ns as f64 / MS as f64)),
        S..60_000_000_000 => format!("{}s", significant(ns as f64 / S as f64)),
        60_000_000_000..3_600_000_000_000 => {
            let seconds = ns / S;
            format!("{}m {}s", seconds / 60, seconds % 60)
        }
        _ => {
            let minutes = ns / S / 60;
            format!("{}h {}m", minutes / 60, minutes % 60)
        }
    }
}

/// `value` (below 1000) with at most three significant digits and no trailing zeros.
fn significant(value: f64) -> String {
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    trim_zeros(format!("{value:.decimals$}"))
}

fn trim_zeros(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A share of a whole as a CSS percentage (`12.345`), clamped to 0–100.
pub fn percent(part: f64, whole: f64) -> String {
    let share = if whole > 0.0 {
        (part / whole * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    trim_zeros(format!("{share:.3}"))
}

pub fn datetime(unix_nano: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(i64::try_from(unix_nano).unwrap_or(i64::MAX))
}

/// `2026-01-02 14:03:21.123 UTC`.
pub fn timestamp(unix_nano: u64) -> String {
    datetime(unix_nano)
        .format("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string()
}

/// A step of 1, 2 or 5 times a power of ten that cuts `range` into about `count` parts.
pub fn nice_step(range: f64, count: f64) -> f64 {
    let raw = (range / count).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|n| n * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(1.0)
}

/// A tick of an axis: where it sits and what it says.
pub struct Tick {
    /// A percentage along the axis (CSS `left`), or pixels from the top for a vertical axis.
    pub at: String,
    pub label: String,
}

/// Ticks every nice duration step from 0 to `total` ns, at their percentage of `total`.
pub fn duration_ticks(total: u64) -> Vec<Tick> {
    let total = total.max(1) as f64;
    let step = nice_step(total, 5.0);
    (0..)
        .map(|k| k as f64 * step)
        .take_while(|ns| *ns <= total * 1.0001)
        .map(|ns| Tick {
            at: percent(ns, total),
            label: if ns == 0.0 {
                "0".to_owned()
            } else {
                duration(ns as u64)
            },
        })
        .collect()
}

/// Wall-clock steps for a time axis, smallest first.
const TIME_STEPS_S: [u64; 18] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
];

/// Wall-clock ticks (UTC) inside `[start, end]`, about five of them, as percentages of the
/// window mapped onto `[from, to]` percent.
pub fn time_ticks(start: u64, end: u64, from: f64, to: f64) -> Vec<Tick> {
    let span_s = (end.saturating_sub(start) / 1_000_000_000).max(1);
    let step = TIME_STEPS_S
        .into_iter()
        .find(|step| span_s / step <= 6)
        .unwrap_or_else(|| span_s.div_ceil(6).div_ceil(86400) * 86400);
    let format = if step < 60 {
        "%H:%M:%S"
    } else if step < 86400 {
        "%H:%M"
    } else {
        "%b %d"
    };
    // In nanoseconds, so the first tick is never before a start that falls mid-second.
    let step = step * 1_000_000_000;
    let first = start.div_ceil(step).saturating_mul(step);
    (0..)
        .map_while(|k: u64| first.checked_add(k.checked_mul(step)?))
        .take_while(|ns| *ns <= end)
        .map(|ns| {
            let share = (ns - start) as f64 / end.saturating_sub(start).max(1) as f64;
            Tick {
                at: trim_zeros(format!("{:.3}", from + share * (to - from))),
                label: datetime(ns).format(format).to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        for (ns, text) in [
            (0, "0ns"),
            (850, "850ns"),
            (12_500, "12.5µs"),
            (250_000_000, "250ms"),
            (1_250_000_000, "1.25s"),
            (1_500_000_000, "1.5s"),
            (12_345_678, "12.3ms"),
            (125_000_000_000, "2m 5s"),
            (12_000_000_000_000, "3h 20m"),
        ] {
            assert_eq!(duration(ns), text, "{ns}");
        }
    }

    #[test]
    fn a_service_keeps_its_colour() {
        assert_eq!(colour("checkout"), colour("checkout"));
        assert!(colour("cart") < PALETTE);
        let colours: std::collections::HashSet<u64> =
            ["cart", "checkout", "payment", "frontend", "db", "auth"]
                .iter()
                .map(|s| colour(s))
                .collect();
        assert!(colours.len() >= 4, "names spread over the palette");
    }

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        let ticks = duration_ticks(1_000_000_000);
        let labels: Vec<&str> = ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "200ms", "400ms", "600ms", "800ms", "1s"]);
        assert_eq!(ticks[1].at, "20");
        let instant = duration_ticks(0);
        assert_eq!(instant[0].label, "0");
        assert!(
            instant
                .iter()
                .all(|t| t.at.parse::<f64>().unwrap() <= 100.0)
        );

        let start = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
        let hour = time_ticks(start + 1_000_000_000, start + 3_600_000_000_000, 0.0, 100.0);
        assert_eq!(hour[0].label, "00:10");
        assert!(hour.len() <= 7);
        // A brushed window starts mid-second, just after a tick boundary.
        let brushed = time_ticks(start + 250_000_000, start + 300_000_000_000, 0.0, 100.0);
        assert_eq!(brushed[0].label, "00:01");
        assert!(brushed.iter().all(|t| t.at.parse::<f64>().unwrap() >= 0.0));
        let week = time_ticks(start, start + 7 * 86_400_000_000_000, 0.0, 100.0);
        assert!(week.iter().all(|t| t.label.starts_with("Jan")));
    }

    #[test]
    fn percentages_are_clamped() {
        assert_eq!(percent(1.0, 4.0), "25");
        assert_eq!(percent(5.0, 4.0), "100");
        assert_eq!(percent(1.0, 0.0), "0");
        assert_eq!(percent(1.0, 3.0), "33.333");
    }
}
