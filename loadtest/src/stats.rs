//! What happened to the requests of a run: counts, failures by kind, per-tenant tallies
//! and client latency histograms.

use crate::transport::{Failure, FailureClass, FailureKind, Outcome};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies are recorded in microseconds, up to an hour, to three significant digits.
const LATENCY_MAX_MICROS: u64 = 3_600_000_000;
const LATENCY_DIGITS: u8 = 3;

pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, LATENCY_DIGITS)
        .expect("valid histogram bounds")
}

/// What one request carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    pub tenant: usize,
    pub traces: u64,
    pub spans: u64,
    /// Encoded size before compression.
    pub payload_bytes: u64,
}

/// Failures of one kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureTally {
    pub class: FailureClass,
    pub count: u64,
    /// What the first of them said.
    pub example: String,
}

/// Requests of one tenant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantTally {
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub spans_accepted: u64,
}

/// Counts since the last progress line.
#[derive(Clone, Debug)]
pub struct Window {
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub spans_sent: u64,
    pub latency: Histogram<u64>,
}

impl Window {
    fn new() -> Self {
        Self {
            requests_ok: 0,
            requests_failed: 0,
            spans_sent: 0,
            latency: latency_histogram(),
        }
    }
}

/// A change between exporting successfully and failing, worth telling a demo's user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    FirstAccepted,
    StartedFailing(Failure),
    Recovered,
}

#[derive(Clone, Debug)]
pub struct Stats {
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub traces_sent: u64,
    pub spans_sent: u64,
    pub spans_accepted: u64,
    pub spans_rejected: u64,
    pub payload_bytes: u64,
    /// What the first partial success said about its rejected spans.
    pub rejection_example: Option<String>,
    pub failures: BTreeMap<FailureKind, FailureTally>,
    pub tenants: Vec<TenantTally>,
    pub latency_ok: Histogram<u64>,
    pub latency_failed: Histogram<u64>,
    window: Window,
    /// Whether the last request succeeded; `None` before the first answer.
    healthy: Option<bool>,
}

impl Stats {
    pub fn new(tenants: usize) -> Self {
        Self {
            requests_ok: 0,
            requests_failed: 0,
            traces_sent: 0,
            spans_sent: 0,
            spans_accepted: 0,
            spans_rejected: 0,
            payload_bytes: 0,
            rejection_example: None,
            failures: BTreeMap::new(),
            tenants: vec![TenantTally::default(); tenants],
            latency_ok: latency_histogram(),
            latency_failed: latency_histogram(),
            window: Window::new(),
            healthy: None,
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests_ok + self.requests_failed
    }

    /// Records one finished request; returns a change of health, if it is one.
    pub fn record(
        &mut self,
        sent: Sent,
        outcome: &Outcome,
        latency: Duration,
    ) -> Option<Transition> {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.traces_sent += sent.traces;
        self.spans_sent += sent.spans;
        self.payload_bytes += sent.payload_bytes;
        self.window.spans_sent += sent.spans;
        self.window.latency.saturating_record(micros);
        let tenant = &mut self.tenants[sent.tenant];
        let was_healthy = self.healthy;
        match outcome {
            Outcome::Accepted {
                rejected_spans,
                message,
            } => {
                let rejected = (*rejected_spans).min(sent.spans);
                self.requests_ok += 1;
                self.window.requests_ok += 1;
                self.spans_rejected += rejected;
                self.spans_accepted += sent.spans - rejected;
                tenant.requests_ok += 1;
                tenant.spans_accepted += sent.spans - rejected;
                if rejected > 0 && self.rejection_example.is_none() {
                    self.rejection_example = Some(message.clone().unwrap_or_default());
                }
                self.latency_ok.saturating_record(micros);
                self.healthy = Some(true);
                match was_healthy {
                    None => Some(Transition::FirstAccepted),
                    Some(false) => Some(Transition::Recovered),
                    Some(true) => None,
                }
            }
            Outcome::Failed(failure) => {
                self.requests_failed += 1;
                self.window.requests_failed += 1;
                tenant.requests_failed += 1;
                self.failures
                    .entry(failure.kind)
                    .or_insert_with(|| FailureTally {
                        class: failure.kind.class(),
                        count: 0,
                        example: failure.detail.clone(),
                    })
                    .count += 1;
                self.latency_failed.saturating_record(micros);
                self.healthy = Some(false);
                (was_healthy != Some(false)).then(|| Transition::StartedFailing(failure.clone()))
            }
        }
    }

    /// The counts since the previous call, for a progress line.
    pub fn take_window(&mut self) -> Window {
        std::mem::replace(&mut self.window, Window::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(rejected_spans: u64) -> Outcome {
        Outcome::Accepted {
            rejected_spans,
            message: (rejected_spans > 0).then(|| "too old".to_owned()),
        }
    }

    fn failed(kind: FailureKind, detail: &str) -> Outcome {
        Outcome::Failed(Failure {
            kind,
            detail: detail.to_owned(),
        })
    }

    fn sent(tenant: usize, spans: u64) -> Sent {
        Sent {
            tenant,
            traces: 1,
            spans,
            payload_bytes: spans * 100,
        }
    }

    #[test]
    fn counts_requests_spans_and_failures_by_kind() {
        let mut stats = Stats::new(2);
        let ms = Duration::from_millis;
        stats.record(sent(0, 10), &ok(0), ms(2));
        stats.record(sent(1, 10), &ok(4), ms(3));
        stats.record(
            sent(0, 10),
            &failed(FailureKind::Http(429), "slow down"),
            ms(1),
        );
        stats.record(sent(1, 10), &failed(FailureKind::Http(429), "later"), ms(1));
        stats.record(sent(0, 10), &failed(FailureKind::Connect, "refused"), ms(1));

        assert_eq!((stats.requests_ok, stats.requests_failed), (2, 3));
        assert_eq!(stats.spans_sent, 50);
        assert_eq!(stats.spans_accepted, 16);
        assert_eq!(stats.spans_rejected, 4);
        assert_eq!(stats.payload_bytes, 5_000);
        assert_eq!(stats.rejection_example.as_deref(), Some("too old"));
        let throttled = &stats.failures[&FailureKind::Http(429)];
        assert_eq!(throttled.count, 2);
        assert_eq!(throttled.example, "slow down");
        assert_eq!(throttled.class, FailureClass::Server);
        assert_eq!(
            stats.failures[&FailureKind::Connect].class,
            FailureClass::Transport
        );
        assert_eq!(
            stats.tenants[1],
            TenantTally {
                requests_ok: 1,
                requests_failed: 1,
                spans_accepted: 6
            }
        );
        assert_eq!(stats.latency_ok.len(), 2);
        assert_eq!(stats.latency_failed.len(), 3);
    }

    #[test]
    fn reports_changes_of_health_once() {
        let mut stats = Stats::new(1);
        let down = failed(FailureKind::Connect, "refused");
        let at = Duration::from_millis(1);
        assert_eq!(
            stats.record(sent(0, 1), &down, at),
            Some(Transition::StartedFailing(Failure {
                kind: FailureKind::Connect,
                detail: "refused".into()
            }))
        );
        assert_eq!(stats.record(sent(0, 1), &down, at), None);
        assert_eq!(
            stats.record(sent(0, 1), &ok(0), at),
            Some(Transition::Recovered)
        );
        assert_eq!(stats.record(sent(0, 1), &ok(0), at), None);

        let mut fresh = Stats::new(1);
        assert_eq!(
            fresh.record(sent(0, 1), &ok(0), at),
            Some(Transition::FirstAccepted)
        );
    }

    #[test]
    fn the_window_restarts_after_each_read() {
        let mut stats = Stats::new(1);
        stats.record(sent(0, 7), &ok(0), Duration::from_millis(5));
        let window = stats.take_window();
        assert_eq!((window.requests_ok, window.spans_sent), (1, 7));
        assert_eq!(window.latency.len(), 1);
        let empty = stats.take_window();
        assert_eq!(
            (empty.requests_ok, empty.spans_sent, empty.latency.len()),
            (0, 0, 0)
        );
        assert_eq!(stats.spans_sent, 7, "totals are kept");
    }
}
