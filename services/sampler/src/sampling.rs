//! Tail sampling: spans wait here, per tenant and trace, until their trace is due for a
//! decision; the tenant's policy then keeps or drops the trace whole. A trace is due once
//! the decision wait has passed since its first span arrived, or earlier once its root
//! span has arrived and no span came for the quiet time, or at once (oldest first) when
//! the buffer is over its span or byte limit.
//!
//! Every span of a trace reaches one sampler (the partition is a hash of the trace id), so
//! each trace is decided once. Spans arriving after the decision follow it through a
//! bounded decision cache; a trace whose decision has left the cache is counted as a miss
//! and its late spans are decided on their own.
//!
//! Nothing is acknowledged here: [`TraceSampler::admit`] answers with a receiver that
//! resolves once the spans are decided and, if kept, stored. A dropped receiver's sender
//! (shutdown) means "not stored": the bus message is left for redelivery, and the next
//! owner of the partition rebuilds the trace from the stream.

use crate::config::SamplingConfig;
use crate::metrics::{DecisionLabels, OutcomeLabels, SamplerMetrics};
use crate::policies::PolicyCache;
use crate::writer::{MessageRef, WriteRequest, Written};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Notify, mpsc, oneshot};
use weft_model::TenantId;
use weft_model::sampling::trace_hash;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::PackedSpan;

type TraceKey = (TenantId, [u8; 16]);

/// A trace's decision as late spans follow it.
#[derive(Clone, Debug)]
pub struct Decided {
    pub keep: bool,
    pub sample_rate: f32,
    pub rule: Arc<str>,
}

impl Decided {
    /// Marks spans with their trace's sample rate and rule.
    pub fn stamp(&self, spans: &mut [PackedSpan]) {
        for span in spans {
            span.stamp(self.sample_rate, &self.rule);
        }
    }
}

/// Spans of one trace waiting for its decision.
struct Pending {
    first_seen: Instant,
    last_seen: Instant,
    root_seen: bool,
    spans: Vec<PackedSpan>,
    bytes: usize,
    /// One per admission (bus message and trace): told once the trace's fate is durable.
    waiters: Vec<oneshot::Sender<Written>>,
}

/// Decisions of recent traces, bounded; evicted keys leave a 64-bit trace hash behind (as
/// many as the cache holds) so that a late span of an evicted trace is counted as a miss.
struct DecisionCache {
    capacity: usize,
    decisions: HashMap<TraceKey, Decided>,
    order: VecDeque<TraceKey>,
    evicted: HashSet<u64>,
    evicted_order: VecDeque<u64>,
}

impl DecisionCache {
    fn new(capacity: usize) -> Self {
        DecisionCache {
            capacity: capacity.max(1),
            decisions: HashMap::new(),
            order: VecDeque::new(),
            evicted: HashSet::new(),
            evicted_order: VecDeque::new(),
        }
    }

    fn insert(&mut self, key: TraceKey, decided: Decided) {
        if self.decisions.insert(key, decided).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.decisions.remove(&old);
            let hash = key_hash(&old);
            if self.evicted.insert(hash) {
                self.evicted_order.push_back(hash);
            }
            while self.evicted_order.len() > self.capacity {
                if let Some(gone) = self.evicted_order.pop_front() {
                    self.evicted.remove(&gone);
                }
            }
        }
    }

    fn was_evicted(&self, key: &TraceKey) -> bool {
        self.evicted.contains(&key_hash(key))
    }
}

fn key_hash(key: &TraceKey) -> u64 {
    let tenant = key.0.as_uuid().as_u64_pair();
    trace_hash(&key.1) ^ tenant.0.rotate_left(17) ^ tenant.1
}

/// What a trigger made due.
#[derive(Clone, Copy)]
enum Trigger {
    Wait,
    Quiet,
    Memory,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Wait => "wait",
            Trigger::Quiet => "quiet",
            Trigger::Memory => "memory",
        }
    }
}

struct Buffer {
    traces: HashMap<TraceKey, Pending>,
    /// Traces in the order their first span arrived (entries of decided traces are
    /// skipped when they come up: a trace's entry is its own while `first_seen` matches).
    arrivals: VecDeque<(TraceKey, Instant)>,
    /// Traces whose root has arrived, by the time their last span did (stale entries are
    /// skipped the same way, by `last_seen`).
    quiet: VecDeque<(TraceKey, Instant)>,
    spans: usize,
    bytes: usize,
    decided: DecisionCache,
    /// Set when the decision loop stops: nothing admitted after it would ever be decided.
    closed: bool,
}

/// Kept spans per second per tenant, for a policy's cap.
#[derive(Default)]
struct KeptThisSecond {
    seconds: HashMap<TenantId, (u64, u64)>,
}

impl KeptThisSecond {
    /// Whether `spans` more fit under `cap` in the current second; counts them if so.
    fn take(&mut self, tenant: TenantId, spans: usize, cap: u32) -> bool {
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let entry = self.seconds.entry(tenant).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        // A trace larger than the whole cap is kept when the second is still empty, so a
        // big trace is not dropped forever.
        if entry.1 > 0 && entry.1 + spans as u64 > u64::from(cap) {
            return false;
        }
        entry.1 += spans as u64;
        true
    }
}

/// How spans of one trace in one message were admitted.
pub enum Admitted {
    /// Buffered: the receiver resolves once the trace is decided and stored.
    Waiting(oneshot::Receiver<Written>),
    /// The trace was decided already; the caller writes kept late spans itself.
    Late(Decided, Vec<PackedSpan>),
}

pub struct TraceSampler {
    config: SamplingConfig,
    buffer: Mutex<Buffer>,
    wake: Notify,
    metrics: SamplerMetrics,
}

impl TraceSampler {
    pub fn new(config: SamplingConfig, metrics: SamplerMetrics) -> Arc<TraceSampler> {
        Arc::new(TraceSampler {
            buffer: Mutex::new(Buffer {
                traces: HashMap::new(),
                arrivals: VecDeque::new(),
                quiet: VecDeque::new(),
                spans: 0,
                bytes: 0,
                decided: DecisionCache::new(config.decision_cache),
                closed: false,
            }),
            config,
            wake: Notify::new(),
            metrics,
        })
    }

    /// Takes spans of one trace (of one tenant) that one bus message carried.
    pub fn admit(&self, tenant: TenantId, trace_id: [u8; 16], spans: Vec<PackedSpan>) -> Admitted {
        let key = (tenant, trace_id);
        let now = Instant::now();
        let root = spans.iter().any(|s| s.parent_span_id() == [0; 8]);
        let bytes: usize = spans.iter().map(PackedSpan::held_bytes).sum();
        let count = spans.len();
        let (rx, over) = {
            let mut buffer = self.buffer.lock().expect("trace buffer");
            if buffer.closed {
                // Stopping: the sender goes at once, so the message is left for
                // redelivery instead of waiting for a decision that never comes.
                return Admitted::Waiting(oneshot::channel().1);
            }
            if let Some(decided) = buffer.decided.decisions.get(&key) {
                let decided = decided.clone();
                drop(buffer);
                let outcome = OutcomeLabels {
                    decision: if decided.keep { "kept" } else { "dropped" },
                };
                self.metrics
                    .late_spans
                    .get_or_create(&outcome)
                    .inc_by(count as u64);
                self.metrics
                    .spans_sampled
                    .get_or_create(&outcome)
                    .inc_by(count as u64);
                return Admitted::Late(decided, spans);
            }
            let (tx, rx) = oneshot::channel();
            let buffer = &mut *buffer;
            let pending = match buffer.traces.entry(key) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    if buffer.decided.was_evicted(&key) {
                        self.metrics.decision_cache_misses.inc();
                    }
                    buffer.arrivals.push_back((key, now));
                    entry.insert(Pending {
                        first_seen: now,
                        last_seen: now,
                        root_seen: false,
                        spans: Vec::new(),
                        bytes: 0,
                        waiters: Vec::new(),
                    })
                }
            };
            pending.last_seen = now;
            pending.root_seen |= root;
            pending.spans.extend(spans);
            pending.bytes += bytes;
            pending.waiters.push(tx);
            if pending.root_seen {
                buffer.quiet.push_back((key, now));
            }
            buffer.spans += count;
            buffer.bytes += bytes;
            let over = buffer.spans > self.config.max_buffered_spans
                || buffer.bytes > self.config.max_buffered_bytes;
            self.gauges(buffer);
            (rx, over)
        };
        if over {
            self.wake.notify_one();
        }
        Admitted::Waiting(rx)
    }

    fn gauges(&self, buffer: &Buffer) {
        self.metrics.buffered_spans.set(buffer.spans as i64);
        self.metrics.buffered_bytes.set(buffer.bytes as i64);
        self.metrics.buffered_traces.set(buffer.traces.len() as i64);
    }

    /// Takes the traces due at `now` out of the buffer, oldest first.
    fn take_due(&self, now: Instant) -> Vec<(TraceKey, Pending, Trigger)> {
        let mut buffer = self.buffer.lock().expect("trace buffer");
        let buffer = &mut *buffer;
        let mut due = Vec::new();
        let mut take = |buffer: &mut Buffer, key: TraceKey, trigger: Trigger| {
            if let Some(pending) = buffer.traces.remove(&key) {
                buffer.spans -= pending.spans.len();
                buffer.bytes -= pending.bytes;
                due.push((key, pending, trigger));
            }
        };
        while let Some(&(key, first_seen)) = buffer.arrivals.front() {
            let current = buffer.traces.get(&key).map(|p| p.first_seen);
            if current != Some(first_seen) {
                buffer.arrivals.pop_front();
                continue;
            }
            let full = buffer.spans > self.config.max_buffered_spans
                || buffer.bytes > self.config.max_buffered_bytes;
            if first_seen + self.config.decision_wait <= now {
                buffer.arrivals.pop_front();
                take(buffer, key, Trigger::Wait);
            } else if full {
                buffer.arrivals.pop_front();
                take(buffer, key, Trigger::Memory);
            } else {
                break;
            }
        }
        while let Some(&(key, last_seen)) = buffer.quiet.front() {
            if last_seen + self.config.quiet_time > now {
                break;
            }
            buffer.quiet.pop_front();
            if buffer.traces.get(&key).map(|p| p.last_seen) == Some(last_seen) {
                take(buffer, key, Trigger::Quiet);
            }
        }
        self.gauges(buffer);
        due
    }

    /// Decides due traces until `shutdown`, sending kept ones to the writer. At shutdown
    /// whatever is still buffered is dropped undecided: its messages are not acknowledged.
    pub async fn run(
        self: Arc<Self>,
        policies: Arc<PolicyCache>,
        writer_tx: mpsc::Sender<Vec<WriteRequest>>,
        shutdown: CancellationToken,
    ) {
        let tick = (self.config.quiet_time / 2)
            .min(self.config.decision_wait / 10)
            .max(std::time::Duration::from_millis(10));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut capped = KeptThisSecond::default();
        'deciding: loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
                _ = self.wake.notified() => {}
            }
            // One write batch per round: a request per kept trace (so ClickHouse refusing
            // one trace's rows isolates that trace), sent together.
            let mut kept = Vec::new();
            for ((tenant, trace_id), pending, trigger) in self.take_due(Instant::now()) {
                let policy = policies.get(tenant).await;
                let decision = policy.decide(&trace_id, &pending.spans);
                let mut keep = decision.keep;
                if keep
                    && let Some(cap) = policy.max_kept_spans_per_second
                    && !capped.take(tenant, pending.spans.len(), cap)
                {
                    keep = false;
                    self.metrics.traces_capped.inc();
                }
                let decided = Decided {
                    keep,
                    sample_rate: if keep {
                        decision.sample_rate as f32
                    } else {
                        0.0
                    },
                    rule: decision
                        .rule
                        .map_or_else(|| Arc::from(""), |rule| Arc::from(policy.rule_name(rule))),
                };
                self.record(tenant, trace_id, &decided, trigger, pending.spans.len());
                let Pending {
                    mut spans, waiters, ..
                } = pending;
                if !keep {
                    for waiter in waiters {
                        let _ = waiter.send(Written::Stored);
                    }
                    continue;
                }
                decided.stamp(&mut spans);
                let (written_tx, written_rx) = oneshot::channel();
                kept.push(WriteRequest {
                    message: MessageRef {
                        sequence: 0,
                        redelivered: false,
                    },
                    tenant,
                    spans,
                    span_metrics: Vec::new(),
                    edges: Vec::new(),
                    written: written_tx,
                });
                tokio::spawn(async move {
                    // A writer that gives up (shutdown) drops the sender, and with it
                    // these waiters: their messages stay unacknowledged.
                    if let Ok(written) = written_rx.await {
                        for waiter in waiters {
                            let _ = waiter.send(written.clone());
                        }
                    }
                });
            }
            if !kept.is_empty() && writer_tx.send(kept).await.is_err() {
                break 'deciding;
            }
        }
        self.close();
    }

    /// Stops admitting: undecided traces are forgotten, and so are spans admitted later
    /// (by batches still being handled when the decision loop stopped). Their waiters see
    /// the senders go, so their messages are not acknowledged and the stream delivers
    /// them again.
    fn close(&self) {
        let mut buffer = self.buffer.lock().expect("trace buffer");
        buffer.closed = true;
        let undecided = buffer.traces.len();
        buffer.traces.clear();
        buffer.arrivals.clear();
        buffer.quiet.clear();
        (buffer.spans, buffer.bytes) = (0, 0);
        self.gauges(&buffer);
        if undecided > 0 {
            tracing::info!(
                traces = undecided,
                "stopping with undecided traces; they will be redelivered"
            );
        }
    }

    fn record(
        &self,
        tenant: TenantId,
        trace_id: [u8; 16],
        decided: &Decided,
        trigger: Trigger,
        spans: usize,
    ) {
        let decision = if decided.keep { "kept" } else { "dropped" };
        self.metrics
            .traces_decided
            .get_or_create(&DecisionLabels {
                decision,
                trigger: trigger.as_str(),
            })
            .inc();
        self.metrics
            .spans_sampled
            .get_or_create(&OutcomeLabels { decision })
            .inc_by(spans as u64);
        self.buffer
            .lock()
            .expect("trace buffer")
            .decided
            .insert((tenant, trace_id), decided.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::red::tests::span;
    use std::time::Duration;

    fn config() -> SamplingConfig {
        SamplingConfig {
            decision_wait: Duration::from_secs(10),
            quiet_time: Duration::from_secs(1),
            max_buffered_spans: 1000,
            max_buffered_bytes: 1 << 30,
            decision_cache: 100,
            policy_ttl: Duration::from_secs(30),
            default_policy: weft_model::sampling::SamplingPolicy::default(),
        }
    }

    /// `n` spans of trace `trace`, none of them the root.
    fn spans(trace: u8, n: u8) -> Vec<PackedSpan> {
        (0..n)
            .map(|i| span((trace, 10 + i, 1), ("checkout", "work", 1), (1, 5, false)))
            .map(|row| PackedSpan::from_row(&row))
            .collect()
    }

    fn root(trace: u8) -> PackedSpan {
        PackedSpan::from_row(&span(
            (trace, 1, 0),
            ("checkout", "GET /", 2),
            (1, 50, false),
        ))
    }

    fn tenant() -> TenantId {
        TenantId::new(uuid::Uuid::nil())
    }

    fn waiting(admitted: Admitted) -> oneshot::Receiver<Written> {
        match admitted {
            Admitted::Waiting(rx) => rx,
            Admitted::Late(..) => panic!("expected to wait for a decision"),
        }
    }

    fn due_traces(sampler: &TraceSampler, at: Instant) -> Vec<(u8, usize, &'static str)> {
        sampler
            .take_due(at)
            .into_iter()
            .map(|((_, id), pending, trigger)| (id[0], pending.spans.len(), trigger.as_str()))
            .collect()
    }

    #[test]
    fn a_trace_waits_for_the_decision_wait_or_for_quiet_after_its_root() {
        let sampler = TraceSampler::new(config(), SamplerMetrics::default());
        let start = Instant::now();
        let _a = waiting(sampler.admit(tenant(), [1; 16], spans(1, 2)));
        let _b = waiting(sampler.admit(tenant(), [2; 16], spans(2, 1)));
        let _b_root = waiting(sampler.admit(tenant(), [2; 16], vec![root(2)]));
        let _a_more = waiting(sampler.admit(tenant(), [1; 16], spans(1, 1)));
        assert!(due_traces(&sampler, start).is_empty());
        // Trace 2 has its root and went quiet; trace 1 has no root and keeps waiting.
        let quiet = Instant::now() + Duration::from_secs(1);
        assert_eq!(due_traces(&sampler, quiet), vec![(2, 2, "quiet")]);
        let waited = Instant::now() + Duration::from_secs(10);
        assert_eq!(due_traces(&sampler, waited), vec![(1, 3, "wait")]);
        assert!(due_traces(&sampler, waited + Duration::from_secs(60)).is_empty());
        let buffer = sampler.buffer.lock().unwrap();
        assert_eq!((buffer.spans, buffer.bytes, buffer.traces.len()), (0, 0, 0));
    }

    #[test]
    fn once_closed_the_buffer_lets_go_of_waiting_spans_and_of_spans_admitted_later() {
        let sampler = TraceSampler::new(config(), SamplerMetrics::default());
        let mut before = waiting(sampler.admit(tenant(), [4; 16], spans(4, 2)));
        sampler.close();
        assert_eq!(before.try_recv(), Err(oneshot::error::TryRecvError::Closed));
        // A batch still being handled when the decision loop stopped admits afterwards;
        // it must not wait for a decision that never comes.
        let mut after = waiting(sampler.admit(tenant(), [5; 16], spans(5, 1)));
        assert_eq!(after.try_recv(), Err(oneshot::error::TryRecvError::Closed));
        assert!(due_traces(&sampler, Instant::now() + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn a_span_after_the_root_restarts_the_quiet_time() {
        let sampler = TraceSampler::new(config(), SamplerMetrics::default());
        let _root = waiting(sampler.admit(tenant(), [3; 16], vec![root(3)]));
        std::thread::sleep(Duration::from_millis(30));
        let _child = waiting(sampler.admit(tenant(), [3; 16], spans(3, 1)));
        let after_root = Instant::now() + Duration::from_millis(985);
        assert!(due_traces(&sampler, after_root).is_empty());
        let after_child = Instant::now() + Duration::from_secs(1);
        assert_eq!(due_traces(&sampler, after_child), vec![(3, 2, "quiet")]);
    }

    #[test]
    fn over_the_span_limit_the_oldest_traces_are_decided_early() {
        let sampler = TraceSampler::new(
            SamplingConfig {
                max_buffered_spans: 5,
                ..config()
            },
            SamplerMetrics::default(),
        );
        let mut receivers = Vec::new();
        for trace in 1..=4 {
            receivers.push(waiting(sampler.admit(
                tenant(),
                [trace; 16],
                spans(trace, 2),
            )));
        }
        // 8 spans buffered: the two oldest traces go, leaving 4.
        assert_eq!(
            due_traces(&sampler, Instant::now()),
            vec![(1, 2, "memory"), (2, 2, "memory")]
        );
        assert_eq!(sampler.buffer.lock().unwrap().spans, 4);
        let bytes = SamplingConfig {
            max_buffered_bytes: 1,
            ..config()
        };
        let sampler = TraceSampler::new(bytes, SamplerMetrics::default());
        let _rx = waiting(sampler.admit(tenant(), [9; 16], spans(9, 1)));
        assert_eq!(due_traces(&sampler, Instant::now()), vec![(9, 1, "memory")]);
    }

    #[test]
    fn late_spans_follow_the_cached_decision_and_an_evicted_one_is_a_miss() {
        let metrics = SamplerMetrics::default();
        let sampler = TraceSampler::new(
            SamplingConfig {
                decision_cache: 2,
                ..config()
            },
            metrics.clone(),
        );
        let kept = Decided {
            keep: true,
            sample_rate: 10.0,
            rule: Arc::from("keep 10% of the rest"),
        };
        sampler.record(tenant(), [1; 16], &kept, Trigger::Wait, 3);
        match sampler.admit(tenant(), [1; 16], spans(1, 1)) {
            Admitted::Late(decided, mut late) => {
                decided.stamp(&mut late);
                assert_eq!(late[0].sample_rate(), 10.0);
                assert_eq!(late[0].sampled_by(), "keep 10% of the rest");
            }
            Admitted::Waiting(_) => panic!("the decision is cached"),
        }
        // Another tenant's trace with the same id is its own trace.
        let other = TenantId::new(uuid::Uuid::from_u128(7));
        let _rx = waiting(sampler.admit(other, [1; 16], spans(1, 1)));
        assert_eq!(metrics.decision_cache_misses.get(), 0);
        // Two more decisions push trace 1 out of a cache of two.
        for trace in [2, 3] {
            sampler.record(tenant(), [trace; 16], &kept, Trigger::Wait, 1);
        }
        let _rx = waiting(sampler.admit(tenant(), [1; 16], spans(1, 1)));
        assert_eq!(metrics.decision_cache_misses.get(), 1);
        let outcome = |decision| OutcomeLabels { decision };
        assert_eq!(metrics.late_spans.get_or_create(&outcome("kept")).get(), 1);
    }

    #[test]
    fn the_cap_counts_kept_spans_per_second_and_tenant() {
        let mut kept = KeptThisSecond::default();
        let (a, b) = (tenant(), TenantId::new(uuid::Uuid::from_u128(9)));
        // A trace larger than the cap fits into an empty second; nothing fits after it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        if now.subsec_millis() > 900 {
            std::thread::sleep(Duration::from_millis(120));
        }
        assert!(kept.take(a, 6, 10));
        assert!(kept.take(a, 4, 10));
        assert!(!kept.take(a, 1, 10));
        assert!(kept.take(b, 10, 10), "each tenant has its own cap");
    }
}
