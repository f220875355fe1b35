//! The time range of the explorer's pages, as the URL carries it: a preset `lookback`
//! counting back from now, or `lookback=custom` with `start` and `end` (RFC 3339, or
//! `YYYY-MM-DDTHH:MM[:SS]` as a `datetime-local` input sends it, read as UTC). The search
//! page keeps it among its filters; the services pages and the map show it in their
//! header. Both read it here, and both hand it to the API's parsers as `start`/`end` or
//! `lookback`, so a range means the same window on every page.

use super::format;
use chrono::{DateTime, NaiveDateTime};

/// The lookback choices, as (value, label).
pub const LOOKBACKS: [(&str, &str); 5] = [
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("6h", "Last 6 hours"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
];
pub const CUSTOM: &str = "custom";
const DEFAULT_LOOKBACK: &str = "1h";

/// The range as the URL gave it, kept as text so that a form shows it again as it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// A preset of [`LOOKBACKS`], another duration, or [`CUSTOM`].
    pub lookback: String,
    /// As a `datetime-local` input shows it (UTC), when the range is custom.
    pub start: String,
    pub end: String,
    /// The times as the URL gave them: a brushed range is finer than the inputs show.
    given: (String, String),
}

impl TimeRange {
    /// Takes `key=value` when it belongs to the range; `false` leaves it to the caller.
    pub fn take(&mut self, key: &str, value: &str) -> bool {
        match key {
            "lookback" => self.lookback = value.to_owned(),
            "start" => (self.start, self.given.0) = (local_input(value), value.to_owned()),
            "end" => (self.end, self.given.1) = (local_input(value), value.to_owned()),
            _ => return false,
        }
        true
    }

    /// Settles what was taken: a preset counts back from now (and drops the times), a
    /// custom range is its start and end. Times without a lookback (as the scatter's
    /// brush writes them) make a custom range; nothing at all is the last hour.
    pub fn settle(&mut self) {
        let custom = self.lookback == CUSTOM
            || self.lookback.is_empty() && !(self.start.is_empty() && self.end.is_empty());
        if custom {
            self.lookback = CUSTOM.to_owned();
        } else {
            self.start.clear();
            self.end.clear();
            self.given = Default::default();
            if self.lookback.is_empty() {
                self.lookback = DEFAULT_LOOKBACK.to_owned();
            }
        }
    }

    pub fn is_custom(&self) -> bool {
        self.lookback == CUSTOM
    }

    pub fn lookback_is_preset(&self) -> bool {
        LOOKBACKS.iter().any(|(value, _)| *value == self.lookback)
    }

    /// The range in the API's parameters (`start` and `end` as RFC 3339, or `lookback`),
    /// for `crate::params`. Empty times are left out (`end` then means now).
    pub fn api_pairs(&self) -> Vec<(&'static str, String)> {
        if self.is_custom() {
            [("start", &self.given.0), ("end", &self.given.1)]
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(key, value)| (key, rfc3339_input(value)))
                .collect()
        } else {
            vec![("lookback", self.lookback.clone())]
        }
    }

    /// The range as a query string of the pages (`lookback=1h`, or the custom times), so
    /// links between pages keep it.
    pub fn query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        out.append_pair("lookback", &self.lookback);
        if self.is_custom() {
            for (key, value) in [("start", &self.given.0), ("end", &self.given.1)] {
                if !value.is_empty() {
                    out.append_pair(key, value);
                }
            }
        }
        out.finish()
    }
}

/// An error of the API's parsers as a page says it: a sentence.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// Formats a `datetime-local` input accepts, read as UTC.
const LOCAL_FORMATS: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"];

fn naive(value: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.naive_utc())
        .or_else(|| {
            LOCAL_FORMATS
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        })
}

/// A time of the URL as the `datetime-local` input shows it; text it cannot read stays
/// as it is, so the error message and the field agree.
pub fn local_input(value: &str) -> String {
    naive(value).map_or_else(
        || value.to_owned(),
        |t| t.format("%Y-%m-%dT%H:%M:%S").to_string(),
    )
}

/// A time of the form as RFC 3339 for the API's parsers.
pub fn rfc3339_input(value: &str) -> String {
    naive(value).map_or_else(
        || value.to_owned(),
        |t| t.and_utc().format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
    )
}

/// A window in words: `Dec 01, 12:18:43 – 12:33:43 UTC`, with the day on both ends
/// when they differ.
pub fn describe(start_unix_nano: u64, end_unix_nano: u64) -> String {
    let (start, end) = (
        format::datetime(start_unix_nano),
        format::datetime(end_unix_nano),
    );
    if start.date_naive() == end.date_naive() {
        format!(
            "{}, {} – {} UTC",
            start.format("%b %d"),
            start.format("%H:%M:%S"),
            end.format("%H:%M:%S")
        )
    } else {
        format!(
            "{} – {} UTC",
            start.format("%b %d %H:%M"),
            end.format("%b %d %H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(query: &str) -> TimeRange {
        let mut range = TimeRange::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            assert!(range.take(&key, &value), "{key} belongs to the range");
        }
        range.settle();
        range
    }

    #[test]
    fn a_range_is_a_preset_or_custom_times() {
        let empty = range("");
        assert_eq!(
            (empty.lookback.as_str(), empty.query()),
            ("1h", "lookback=1h".to_owned())
        );
        assert_eq!(empty.api_pairs(), [("lookback", "1h".to_owned())]);

        let preset = range("lookback=15m&start=2026-01-01T10:00");
        assert!(preset.start.is_empty() && preset.lookback_is_preset());

        let brushed = range("start=2026-01-01T10:00:00.250Z&end=2026-01-01T10:05");
        assert!(brushed.is_custom());
        assert_eq!(brushed.start, "2026-01-01T10:00:00");
        assert_eq!(
            brushed.query(),
            "lookback=custom&start=2026-01-01T10%3A00%3A00.250Z&end=2026-01-01T10%3A05",
            "links keep the times as given"
        );
        assert_eq!(
            brushed.api_pairs(),
            [
                ("start", "2026-01-01T10:00:00.250Z".to_owned()),
                ("end", "2026-01-01T10:05:00Z".to_owned())
            ]
        );
        let open_ended = range("lookback=custom&start=2026-01-01T10:00&end=");
        assert_eq!(open_ended.api_pairs().len(), 1, "no end: until now");
        assert!(!TimeRange::default().take("sort", "name"));
    }

    #[test]
    fn the_window_is_said_briefly() {
        let start = 1_767_261_600_000_000_000; // 2026-01-01T10:00:00Z
        assert_eq!(
            describe(start, start + 3_600_000_000_000),
            "Jan 01, 10:00:00 – 11:00:00 UTC"
        );
        assert_eq!(
            describe(start, start + 2 * 86_400_000_000_000),
            "Jan 01 10:00 – Jan 03 10:00 UTC"
        );
    }
}
