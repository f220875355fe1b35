//! One generated trace as a tree of operations: sized to a span count, given a failure or
//! a slow operation, laid out in time so that every child lies inside its parent, and
//! turned into OTLP spans.
//!
//! Nodes live in an arena in creation order and a child is always created after its
//! parent, so the last node is always a leaf: truncating the arena keeps a valid tree.

use crate::shop::Service;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{Span, Status, status};
use rand::Rng;

/// What an operation is; decides its timing, how it can fail and whether it can be slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    HttpServer,
    HttpClient,
    Database,
    Cache,
    /// A call to a system outside the shop (the payment provider).
    External,
    Internal,
}

impl Category {
    /// Where a failure or a slowdown starts: operations that do real work, not the
    /// HTTP plumbing around them.
    fn does_work(self) -> bool {
        matches!(
            self,
            Category::Database | Category::Cache | Category::External | Category::Internal
        )
    }
}

pub type NodeId = usize;

const MICROS: u64 = 1_000;
const MILLIS: u64 = 1_000_000;

/// W3C `sampled` trace flag.
const FLAG_SAMPLED: u32 = 0x01;
/// OTLP span flags: whether the parent is remote is known (bit 8), and it is (bit 9).
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// Extra time of the slow operation in a slow trace.
pub const SLOW_EXTRA_NS: std::ops::Range<u64> = 800 * MILLIS..3_000 * MILLIS;

/// One operation of the trace.
#[derive(Clone, Debug)]
pub struct Node {
    pub service: Service,
    pub name: String,
    pub kind: SpanKind,
    pub category: Category,
    pub parent: Option<NodeId>,
    pub attributes: Vec<KeyValue>,
    /// `http.response.status_code`, rendered when the span is emitted so that a failure
    /// can still change it.
    pub http_status: Option<i64>,
    /// Own time before the first child (for a leaf: its whole work).
    pub lead_ns: u64,
    /// Own time between two sequential children.
    pub gap_ns: u64,
    /// Own time after the last child.
    pub tail_ns: u64,
    /// Children run concurrently rather than one after the other.
    pub parallel: bool,
    /// The exception this operation raised, if the failure started here.
    pub exception: Option<Exception>,
    /// Status ERROR: set on the failing operation and on every operation that waited on it.
    pub failed: bool,
}

/// The `exception` event of a failing operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    pub kind: &'static str,
    pub message: &'static str,
}

/// The trace under construction.
#[derive(Clone, Debug, Default)]
pub struct TraceTree {
    nodes: Vec<Node>,
}

impl TraceTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id]
    }

    /// Adds an operation; its own time is drawn from what its category usually costs.
    pub fn add<R: Rng>(
        &mut self,
        rng: &mut R,
        parent: Option<NodeId>,
        service: Service,
        category: Category,
        name: String,
        attributes: Vec<KeyValue>,
    ) -> NodeId {
        debug_assert!(parent.is_none_or(|p| p < self.nodes.len()));
        let kind = match category {
            Category::HttpServer => SpanKind::Server,
            Category::HttpClient | Category::Database | Category::Cache | Category::External => {
                SpanKind::Client
            }
            Category::Internal => SpanKind::Internal,
        };
        // Lead is the work of a leaf or the set-up before the first call; the ranges are
        // skewed towards their low end like real latency distributions.
        let (lead, gap, tail) = match category {
            Category::HttpServer => ((30, 400), (5, 120), (20, 300)),
            // Network and (de)serialisation on each side of the remote handler.
            Category::HttpClient => ((80, 700), (0, 0), (60, 500)),
            Category::Database => ((300, 6_000), (0, 0), (0, 0)),
            Category::Cache => ((60, 900), (0, 0), (0, 0)),
            Category::External => ((25_000, 250_000), (0, 0), (500, 3_000)),
            Category::Internal => ((20, 1_500), (5, 80), (10, 200)),
        };
        self.nodes.push(Node {
            service,
            name,
            kind,
            category,
            parent,
            attributes,
            http_status: None,
            lead_ns: skewed_micros(rng, lead),
            gap_ns: skewed_micros(rng, gap),
            tail_ns: skewed_micros(rng, tail),
            parallel: false,
            exception: None,
            failed: false,
        });
        self.nodes.len() - 1
    }

    /// Drops the most recently added operations so that at most `len` remain.
    pub fn truncate(&mut self, len: usize) {
        self.nodes.truncate(len.max(1));
    }

    fn children(&self) -> Vec<Vec<NodeId>> {
        let mut children = vec![Vec::new(); self.nodes.len()];
        for (id, node) in self.nodes.iter().enumerate() {
            if let Some(parent) = node.parent {
                children[parent].push(id);
            }
        }
        children
    }

    fn leaves(&self) -> Vec<bool> {
        let mut leaf = vec![true; self.nodes.len()];
        for node in &self.nodes {
            if let Some(parent) = node.parent {
                leaf[parent] = false;
            }
        }
        leaf
    }

    /// Makes one working operation fail, and every operation above it report the error
    /// (HTTP ones with a 5xx), as an uncaught failure does in a real system.
    pub fn inject_failure<R: Rng>(&mut self, rng: &mut R) {
        let candidates: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&id| self.nodes[id].category.does_work())
            .collect();
        let origin = if candidates.is_empty() {
            self.nodes.len() - 1
        } else {
            candidates[rng.random_range(0..candidates.len())]
        };
        let node = &mut self.nodes[origin];
        node.exception = Some(exception_for(node.category, rng));
        if node.category == Category::External {
            node.http_status = Some(503);
        }
        let mut current = Some(origin);
        while let Some(id) = current {
            let node = &mut self.nodes[id];
            node.failed = true;
            if id != origin && node.http_status.is_some() {
                node.http_status = Some(500);
            }
            current = node.parent;
        }
    }

    /// Makes one working leaf take much longer, which makes the whole trace slow.
    pub fn inject_slowness<R: Rng>(&mut self, rng: &mut R) {
        let leaves = self.leaves();
        let working: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&id| leaves[id] && self.nodes[id].category.does_work())
            .collect();
        let chosen = if working.is_empty() {
            self.nodes.len() - 1
        } else {
            working[rng.random_range(0..working.len())]
        };
        self.nodes[chosen].lead_ns += rng.random_range(SLOW_EXTRA_NS);
    }

    /// Start and end (Unix nanoseconds) of every node, the root ending just before `now`.
    ///
    /// Durations are summed bottom-up (children come after parents in the arena), then
    /// start times are handed out top-down, so each child lies inside its parent.
    pub fn layout<R: Rng>(&self, rng: &mut R, now_unix_nanos: u64) -> Vec<(u64, u64)> {
        let children = self.children();
        let count = self.nodes.len();
        // Concurrent calls are not issued at the very same instant.
        let stagger = |index: usize| index as u64 * 15 * MICROS;
        let mut duration = vec![0_u64; count];
        for id in (0..count).rev() {
            let node = &self.nodes[id];
            let kids = &children[id];
            let inner = if node.parallel {
                kids.iter()
                    .enumerate()
                    .map(|(i, &kid)| stagger(i) + duration[kid])
                    .max()
                    .unwrap_or(0)
            } else {
                kids.iter().map(|&kid| duration[kid]).sum::<u64>()
                    + node.gap_ns * kids.len().saturating_sub(1) as u64
            };
            duration[id] = node.lead_ns + inner + node.tail_ns;
        }

        let mut times = vec![(0_u64, 0_u64); count];
        if count == 0 {
            return times;
        }
        // The trace was just exported: it ended a few milliseconds ago.
        let export_delay = rng.random_range(MILLIS..20 * MILLIS);
        let root_start = now_unix_nanos.saturating_sub(duration[0] + export_delay);
        times[0] = (root_start, root_start + duration[0]);
        for id in 0..count {
            let node = &self.nodes[id];
            let mut cursor = times[id].0 + node.lead_ns;
            for (i, &kid) in children[id].iter().enumerate() {
                let start = if node.parallel {
                    cursor + stagger(i)
                } else {
                    cursor
                };
                times[kid] = (start, start + duration[kid]);
                if !node.parallel {
                    cursor = start + duration[kid] + node.gap_ns;
                }
            }
        }
        times
    }

    /// The OTLP spans of this trace with their services, in arena order.
    pub fn into_spans<R: Rng>(
        self,
        rng: &mut R,
        now_unix_nanos: u64,
        trace_id: [u8; 16],
        extra_attributes: &[String],
    ) -> Vec<(Service, Span)> {
        let times = self.layout(rng, now_unix_nanos);
        let span_ids: Vec<[u8; 8]> = (0..self.nodes.len()).map(|_| nonzero_id(rng)).collect();
        let services: Vec<Service> = self.nodes.iter().map(|node| node.service).collect();
        self.nodes
            .into_iter()
            .enumerate()
            .map(|(id, node)| {
                let (start, end) = times[id];
                let remote_parent = node.parent.is_some_and(|p| services[p] != node.service);
                let mut flags = FLAG_SAMPLED;
                if node.parent.is_some() {
                    flags |= FLAG_HAS_IS_REMOTE;
                    if remote_parent {
                        flags |= FLAG_IS_REMOTE;
                    }
                }
                let mut attributes = node.attributes;
                attributes.reserve(extra_attributes.len() + 1);
                if let Some(code) = node.http_status {
                    attributes.push(int_attr("http.response.status_code", code));
                }
                attributes.extend(
                    extra_attributes
                        .iter()
                        .enumerate()
                        .map(|(i, key)| extra_attribute(rng, i, key)),
                );
                let events = node
                    .exception
                    .as_ref()
                    .map(|exception| exception_event(exception, end))
                    .into_iter()
                    .collect();
                let status = node.failed.then(|| Status {
                    code: status::StatusCode::Error as i32,
                    message: node
                        .exception
                        .as_ref()
                        .map(|exception| exception.message.to_owned())
                        .unwrap_or_default(),
                });
                let span = Span {
                    trace_id: trace_id.to_vec(),
                    span_id: span_ids[id].to_vec(),
                    trace_state: String::new(),
                    parent_span_id: node
                        .parent
                        .map(|p| span_ids[p].to_vec())
                        .unwrap_or_default(),
                    flags,
                    name: node.name,
                    kind: node.kind as i32,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes,
                    dropped_attributes_count: 0,
                    events,
                    dropped_events_count: 0,
                    links: Vec::new(),
                    dropped_links_count: 0,
                    status,
                };
                (node.service, span)
            })
            .collect()
    }
}

/// A uniformly random id that is not all zeroes (OTLP treats zero ids as invalid).
pub fn nonzero_id<R: Rng, const N: usize>(rng: &mut R) -> [u8; N] {
    loop {
        let id: [u8; N] = rng.random();
        if id.iter().any(|&b| b != 0) {
            return id;
        }
    }
}

/// A duration in `[low, high)` microseconds, as nanoseconds, denser near `low`.
fn skewed_micros<R: Rng>(rng: &mut R, (low, high): (u64, u64)) -> u64 {
    if high <= low {
        return low * MICROS;
    }
    let unit: f64 = rng.random();
    low * MICROS + ((high - low) as f64 * unit * unit * MICROS as f64) as u64
}

fn exception_for<R: Rng>(category: Category, rng: &mut R) -> Exception {
    let choices: &[Exception] = match category {
        Category::Database => &[
            Exception {
                kind: "tokio_postgres::error::Error",
                message: "db error: ERROR: deadlock detected",
            },
            Exception {
                kind: "tokio_postgres::error::Error",
                message: "db error: ERROR: canceling statement due to statement timeout",
            },
        ],
        Category::Cache => &[Exception {
            kind: "redis::RedisError",
            message: "connection reset by peer (os error 104)",
        }],
        Category::External => &[Exception {
            kind: "PaymentProviderError",
            message: "payment provider answered 503 Service Unavailable",
        }],
        Category::Internal => &[
            Exception {
                kind: "CardDeclined",
                message: "card declined: insufficient funds",
            },
            Exception {
                kind: "InvariantViolation",
                message: "reservation expired before confirmation",
            },
        ],
        Category::HttpServer | Category::HttpClient => &[Exception {
            kind: "HandlerError",
            message: "request handler failed",
        }],
    };
    choices[rng.random_range(0..choices.len())].clone()
}

fn exception_event(exception: &Exception, at: u64) -> Event {
    Event {
        time_unix_nano: at,
        name: "exception".to_owned(),
        attributes: vec![
            str_attr("exception.type", exception.kind),
            str_attr("exception.message", exception.message),
            str_attr(
                "exception.stacktrace",
                &format!(
                    "{}: {}\n   at shop::handlers::handle (src/handlers.rs:118)\n   at shop::server::serve (src/server.rs:64)",
                    exception.kind, exception.message
                ),
            ),
        ],
        dropped_attributes_count: 0,
    }
}

/// One of the `--attributes` extras: types rotate so every attribute kind is exercised.
fn extra_attribute<R: Rng>(rng: &mut R, index: usize, key: &str) -> KeyValue {
    let value = match index % 4 {
        0 => any_value::Value::StringValue(format!("{:016x}", rng.random::<u64>())),
        1 => any_value::Value::IntValue(rng.random_range(0..1_000_000)),
        2 => any_value::Value::BoolValue(rng.random()),
        _ => any_value::Value::DoubleValue(rng.random_range(0.0..1_000.0)),
    };
    KeyValue {
        key: key.to_owned(),
        key_strindex: 0,
        value: Some(AnyValue { value: Some(value) }),
    }
}

pub fn str_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
    }
}

pub fn int_attr(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
    }
}

pub fn double_attr(key: &str, value: f64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::DoubleValue(value)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const NOW: u64 = 1_800_000_000_000_000_000;

    /// root → (a → (a1, a2), b) with b's children concurrent.
    fn small_tree(rng: &mut SmallRng) -> TraceTree {
        let mut tree = TraceTree::new();
        let root = tree.add(
            rng,
            None,
            Service::Frontend,
            Category::HttpServer,
            "root".into(),
            vec![],
        );
        let a = tree.add(
            rng,
            Some(root),
            Service::Frontend,
            Category::HttpClient,
            "a".into(),
            vec![],
        );
        let a_server = tree.add(
            rng,
            Some(a),
            Service::Cart,
            Category::HttpServer,
            "a".into(),
            vec![],
        );
        tree.add(
            rng,
            Some(a_server),
            Service::Cart,
            Category::Cache,
            "a1".into(),
            vec![],
        );
        tree.add(
            rng,
            Some(a_server),
            Service::Cart,
            Category::Database,
            "a2".into(),
            vec![],
        );
        let b = tree.add(
            rng,
            Some(root),
            Service::Frontend,
            Category::Internal,
            "b".into(),
            vec![],
        );
        tree.node_mut(b).parallel = true;
        tree.add(
            rng,
            Some(b),
            Service::Frontend,
            Category::Database,
            "b1".into(),
            vec![],
        );
        tree.add(
            rng,
            Some(b),
            Service::Frontend,
            Category::Database,
            "b2".into(),
            vec![],
        );
        tree
    }

    #[test]
    fn children_lie_inside_parents_and_siblings_run_in_order() {
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..200 {
            let tree = small_tree(&mut rng);
            let times = tree.layout(&mut rng, NOW);
            for (id, node) in tree.nodes().iter().enumerate() {
                let (start, end) = times[id];
                assert!(start <= end);
                assert!(end < NOW, "the trace ended before now");
                if let Some(parent) = node.parent {
                    let (p_start, p_end) = times[parent];
                    assert!(
                        p_start <= start && end <= p_end,
                        "node {id} outside its parent"
                    );
                }
            }
            // a1 and a2 run one after the other; b1 and b2 overlap.
            assert!(times[3].1 <= times[4].0);
            assert!(times[7].0 < times[6].1);
        }
    }

    #[test]
    fn a_failure_marks_the_origin_with_an_exception_and_every_ancestor_failed() {
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..100 {
            let mut tree = small_tree(&mut rng);
            tree.inject_failure(&mut rng);
            let origins: Vec<NodeId> = (0..tree.len())
                .filter(|&id| tree.nodes()[id].exception.is_some())
                .collect();
            assert_eq!(origins.len(), 1);
            let origin = origins[0];
            assert!(tree.nodes()[origin].category.does_work());
            let mut current = Some(origin);
            while let Some(id) = current {
                assert!(tree.nodes()[id].failed);
                current = tree.nodes()[id].parent;
            }
            let spans = tree.into_spans(&mut rng, NOW, [1; 16], &[]);
            let root = &spans[0].1;
            assert_eq!(
                root.status.as_ref().map(|s| s.code),
                Some(status::StatusCode::Error as i32)
            );
            let with_event: Vec<&Span> = spans
                .iter()
                .map(|(_, span)| span)
                .filter(|span| span.events.iter().any(|event| event.name == "exception"))
                .collect();
            assert_eq!(with_event.len(), 1);
            assert!(!with_event[0].status.as_ref().unwrap().message.is_empty());
        }
    }

    #[test]
    fn a_slow_trace_lasts_at_least_the_slowdown() {
        let mut rng = SmallRng::seed_from_u64(5);
        let mut tree = small_tree(&mut rng);
        tree.inject_slowness(&mut rng);
        let times = tree.layout(&mut rng, NOW);
        assert!(times[0].1 - times[0].0 >= SLOW_EXTRA_NS.start);
    }

    #[test]
    fn truncating_keeps_a_valid_tree() {
        let mut rng = SmallRng::seed_from_u64(11);
        for len in 1..=8 {
            let mut tree = small_tree(&mut rng);
            tree.truncate(len);
            assert_eq!(tree.len(), len);
            assert!(
                tree.nodes()
                    .iter()
                    .all(|node| node.parent.is_none_or(|p| p < len))
            );
        }
    }

    /// Yields only zero bits for its first `zeroes` draws.
    struct ZeroesFirst {
        zeroes: u32,
        inner: SmallRng,
    }

    impl rand::RngCore for ZeroesFirst {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }

        fn next_u64(&mut self) -> u64 {
            if self.zeroes > 0 {
                self.zeroes -= 1;
                0
            } else {
                self.inner.next_u64()
            }
        }

        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for byte in dst {
                *byte = self.next_u64() as u8;
            }
        }
    }

    #[test]
    fn ids_are_never_zero() {
        // The first id drawn would be all zeroes: it must be redrawn.
        let mut rng = ZeroesFirst {
            zeroes: 20,
            inner: SmallRng::seed_from_u64(1),
        };
        let trace_id: [u8; 16] = nonzero_id(&mut rng);
        assert!(trace_id.iter().any(|&b| b != 0));
        assert_eq!(
            rng.zeroes, 0,
            "the all-zero draw was discarded, then redrawn"
        );

        let mut rng = SmallRng::seed_from_u64(0);
        for _ in 0..1_000 {
            let trace_id: [u8; 16] = nonzero_id(&mut rng);
            let span_id: [u8; 8] = nonzero_id(&mut rng);
            assert!(trace_id.iter().any(|&b| b != 0));
            assert!(span_id.iter().any(|&b| b != 0));
        }
    }

    #[test]
    fn span_flags_say_whether_the_parent_is_remote() {
        let mut rng = SmallRng::seed_from_u64(9);
        let spans = small_tree(&mut rng).into_spans(&mut rng, NOW, [2; 16], &[]);
        assert_eq!(spans[0].1.flags, FLAG_SAMPLED);
        // The cart server span's parent is the frontend's client span.
        assert_eq!(
            spans[2].1.flags,
            FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE
        );
        assert_eq!(spans[3].1.flags, FLAG_SAMPLED | FLAG_HAS_IS_REMOTE);
    }
}
