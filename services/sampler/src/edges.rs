//! Service edges: which service calls which, how often, how often failing and how fast,
//! found in every span before any sampling decision.
//!
//! A call is a span whose parent belongs to another service, or a server (consumer) span
//! whose parent is a client (producer) span, even of the same service. Its caller is the
//! parent's service, its callee the span's own; its latency and error are the callee
//! span's. The two spans of a call usually come from different processes and so in
//! different bus messages, possibly with the child first: [`CallTracker`] remembers the
//! spans of each trace for a window and counts a call once both sides have been seen, in
//! the message that completes the pair.
//!
//! What must stay true: a child span's call is counted at most once while its trace is
//! remembered, however often the span is delivered. The memory is bounded by a window
//! since a trace was first seen and by a number of spans held; a pair whose sides arrive
//! further apart than that, or across a restart of the sampler, is not counted.

use crate::red::minute_of;
use foldhash::{HashMap, HashMapExt, HashSet};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use weft_model::SpanKind;
use weft_storage::clickhouse::{DurationHistogram, ServiceEdgeRow, SpanColumns};

type TraceKey = (uuid::Uuid, [u8; 16]);

/// A span as a side of a call: its service (an index into its trace's services) and kind.
#[derive(Clone, Copy)]
struct Side {
    service: usize,
    kind: SpanKind,
}

/// A child span whose parent has not been seen yet.
struct Callee {
    span_id: [u8; 8],
    side: Side,
    minute: u32,
    duration_ns: u64,
    error: bool,
}

#[derive(Default)]
struct TraceCalls {
    services: Vec<String>,
    spans: HashMap<[u8; 8], Side>,
    /// Children waiting for their parent, by the parent's span id.
    orphans: HashMap<[u8; 8], Vec<Callee>>,
    /// Children whose call was counted.
    counted: HashSet<[u8; 8]>,
}

impl TraceCalls {
    fn service(&mut self, name: &str) -> usize {
        match self.services.iter().position(|s| s == name) {
            Some(index) => index,
            None => {
                self.services.push(name.to_owned());
                self.services.len() - 1
            }
        }
    }

    /// What the trace holds, as counted against the tracker's bound.
    fn held(&self) -> usize {
        self.spans.len() + self.counted.len() + self.orphans.values().map(Vec::len).sum::<usize>()
    }
}

/// One call, with service names.
struct Call {
    tenant: uuid::Uuid,
    minute: u32,
    caller: String,
    callee: String,
    duration_ns: u64,
    error: bool,
}

fn is_call(parent: Side, child: Side) -> bool {
    parent.service != child.service
        || (matches!(parent.kind, SpanKind::Client | SpanKind::Producer)
            && matches!(child.kind, SpanKind::Server | SpanKind::Consumer))
}

/// The spans of recent traces, as sides of calls.
pub struct CallTracker {
    window: Duration,
    max_held: usize,
    traces: HashMap<TraceKey, TraceCalls>,
    /// Traces by when they were first seen, oldest first.
    arrivals: VecDeque<(Instant, TraceKey)>,
    held: usize,
}

impl CallTracker {
    /// Remembers each trace for `window` after its first span, and at most `max_held`
    /// spans in all (the oldest traces are forgotten first).
    pub fn new(window: Duration, max_held: usize) -> CallTracker {
        CallTracker {
            window,
            max_held,
            traces: HashMap::new(),
            arrivals: VecDeque::new(),
            held: 0,
        }
    }

    /// Takes in the spans of a bus message and returns the calls they complete, one row
    /// per tenant, minute, caller and callee.
    pub fn observe<S: SpanColumns>(&mut self, now: Instant, spans: &[S]) -> Vec<ServiceEdgeRow> {
        self.forget_older_than(now.checked_sub(self.window));
        for span in spans {
            let key = (span.tenant(), span.trace());
            let trace = self.traces.entry(key).or_insert_with(|| {
                self.arrivals.push_back((now, key));
                TraceCalls::default()
            });
            let side = Side {
                service: trace.service(span.service()),
                kind: SpanKind::from_otlp(i32::from(span.kind_number())),
            };
            if trace.spans.insert(span.span(), side).is_none() {
                self.held += 1;
            }
        }
        let mut calls = Vec::new();
        for span in spans {
            let Some(trace) = self.traces.get_mut(&(span.tenant(), span.trace())) else {
                continue;
            };
            let (tenant, span_id, parent) = (span.tenant(), span.span(), span.parent());
            let side = trace.spans[&span_id];
            // Children that arrived before this span.
            for child in trace.orphans.remove(&span_id).unwrap_or_default() {
                self.held -= 1;
                self.held += usize::from(trace.counted.insert(child.span_id));
                if is_call(side, child.side) {
                    calls.push(call(tenant, trace, side, &child));
                }
            }
            if parent == [0; 8] || trace.counted.contains(&span_id) {
                continue;
            }
            let child = Callee {
                span_id,
                side,
                minute: minute_of(span.second()),
                duration_ns: span.duration_ns(),
                error: span.error(),
            };
            match trace.spans.get(&parent).copied() {
                Some(parent) => {
                    trace.counted.insert(span_id);
                    self.held += 1;
                    if is_call(parent, side) {
                        calls.push(call(tenant, trace, parent, &child));
                    }
                }
                None => {
                    let waiting = trace.orphans.entry(parent).or_default();
                    if waiting.iter().all(|w| w.span_id != span_id) {
                        waiting.push(child);
                        self.held += 1;
                    }
                }
            }
        }
        while self.held > self.max_held && self.forget_oldest() {}
        edge_rows(calls)
    }

    /// Spans (and counted calls) held, against the bound.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Forgets the traces first seen before `cutoff`.
    fn forget_older_than(&mut self, cutoff: Option<Instant>) {
        let Some(cutoff) = cutoff else {
            return;
        };
        while self
            .arrivals
            .front()
            .is_some_and(|(seen, _)| *seen < cutoff)
        {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) -> bool {
        let Some((_, key)) = self.arrivals.pop_front() else {
            return false;
        };
        if let Some(trace) = self.traces.remove(&key) {
            self.held -= trace.held();
        }
        true
    }
}

fn call(tenant: uuid::Uuid, trace: &TraceCalls, caller: Side, callee: &Callee) -> Call {
    Call {
        tenant,
        minute: callee.minute,
        caller: trace.services[caller.service].clone(),
        callee: trace.services[callee.side.service].clone(),
        duration_ns: callee.duration_ns,
        error: callee.error,
    }
}

#[derive(Default)]
struct Counts {
    calls: u64,
    errors: u64,
    duration_sum_ns: u64,
    histogram: DurationHistogram,
}

fn edge_rows(calls: Vec<Call>) -> Vec<ServiceEdgeRow> {
    let mut by_key: HashMap<(uuid::Uuid, u32, String, String), Counts> = HashMap::new();
    for call in calls {
        let counts = by_key
            .entry((call.tenant, call.minute, call.caller, call.callee))
            .or_default();
        counts.calls += 1;
        counts.errors += u64::from(call.error);
        counts.duration_sum_ns = counts.duration_sum_ns.saturating_add(call.duration_ns);
        counts.histogram.record(call.duration_ns);
    }
    by_key
        .into_iter()
        .map(
            |((tenant_id, minute, caller_service, callee_service), counts)| {
                let (duration_buckets, duration_counts) = counts.histogram.to_sparse();
                ServiceEdgeRow {
                    tenant_id,
                    minute,
                    message: 0,
                    caller_service,
                    callee_service,
                    calls: counts.calls,
                    errors: counts.errors,
                    duration_sum_ns: counts.duration_sum_ns,
                    duration_buckets,
                    duration_counts,
                    messages: 0,
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::red::tests::span;

    const SERVER: u8 = 2;
    const CLIENT: u8 = 3;
    const INTERNAL: u8 = 1;

    fn tracker() -> CallTracker {
        CallTracker::new(Duration::from_secs(60), 1000)
    }

    fn summary(rows: &[ServiceEdgeRow]) -> Vec<(&str, &str, u64, u64)> {
        let mut summary: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.caller_service.as_str(),
                    r.callee_service.as_str(),
                    r.calls,
                    r.errors,
                )
            })
            .collect();
        summary.sort_unstable();
        summary
    }

    /// checkout's server span 1 calls through its client span 2 payments' server span 3,
    /// which has an internal child 4; a second trace calls payments directly, failing.
    fn checkout(trace: u8) -> Vec<weft_storage::clickhouse::SpanRow> {
        vec![
            span(
                (trace, 1, 0),
                ("checkout", "POST /checkout", SERVER),
                (600, 90, false),
            ),
            span(
                (trace, 2, 1),
                ("checkout", "charge", CLIENT),
                (600, 80, false),
            ),
        ]
    }

    fn payments(trace: u8, error: bool) -> Vec<weft_storage::clickhouse::SpanRow> {
        vec![
            span(
                (trace, 3, 2),
                ("payments", "POST /charge", SERVER),
                (601, 70, error),
            ),
            span(
                (trace, 4, 3),
                ("payments", "db", INTERNAL),
                (601, 10, false),
            ),
        ]
    }

    #[test]
    fn a_call_is_counted_once_whichever_side_comes_first() {
        let now = Instant::now();
        let mut calls = tracker();
        let parent_first = [checkout(1), payments(1, false)].concat();
        assert_eq!(
            summary(&calls.observe(now, &parent_first)),
            [("checkout", "payments", 1, 0)]
        );
        // The child first, in an earlier message: counted by the parent's message.
        assert!(calls.observe(now, &payments(2, true)).is_empty());
        let completed = calls.observe(now, &checkout(2));
        assert_eq!(summary(&completed), [("checkout", "payments", 1, 1)]);
        assert_eq!(completed[0].minute, 600);
        assert_eq!(completed[0].duration_sum_ns, 70_000_000);
        // Seen again (a redelivery), neither side counts the call again.
        assert!(calls.observe(now, &payments(2, true)).is_empty());
        assert!(calls.observe(now, &checkout(2)).is_empty());
        assert!(calls.observe(now, &parent_first).is_empty());
    }

    #[test]
    fn client_and_server_spans_of_one_service_are_a_call() {
        let spans = [
            span((1, 1, 0), ("gateway", "GET /", SERVER), (600, 9, false)),
            span((1, 2, 1), ("gateway", "proxy", CLIENT), (600, 8, false)),
            span(
                (1, 3, 2),
                ("gateway", "GET /internal", SERVER),
                (600, 7, false),
            ),
            span((1, 4, 3), ("gateway", "render", INTERNAL), (600, 1, false)),
        ];
        assert_eq!(
            summary(&tracker().observe(Instant::now(), &spans)),
            [("gateway", "gateway", 1, 0)]
        );
    }

    #[test]
    fn traces_are_forgotten_after_the_window_and_past_the_bound() {
        let start = Instant::now();
        let mut calls = tracker();
        assert!(calls.observe(start, &payments(1, false)).is_empty());
        let later = start + Duration::from_secs(61);
        assert!(calls.observe(later, &checkout(1)).is_empty(), "forgotten");
        assert_eq!(calls.traces.len(), 1);
        assert_eq!(calls.held, 3, "spans 1 and 2, and 2's call counted");

        let mut small = CallTracker::new(Duration::from_secs(60), 5);
        small.observe(start, &payments(1, false));
        small.observe(start, &payments(2, false));
        assert_eq!(small.traces.len(), 1, "the oldest trace made room");
        assert!(small.held <= 5);
        assert_eq!(
            summary(&small.observe(start, &checkout(2))),
            [("checkout", "payments", 1, 0)]
        );
    }
}
