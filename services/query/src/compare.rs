//! Two traces compared side by side, as Jaeger's trace diff does: each trace's spans are
//! grouped into nodes by their path of (service, operation) from the root, so that the
//! same call tree lines up across the two traces however many spans each call made and
//! whatever their ids. Every node carries, per trace, its span count, errors, total
//! duration and self time (the time not covered by the node's spans' children), and says
//! whether it is only in A, only in B, or in both and then slower, faster or about the same.
//!
//! The cost is linear in the spans of the two traces (plus sorting siblings), and the
//! nodes are at most as many as the spans, so it is bounded by the trace read's limits.

use serde::Serialize;
use std::collections::HashMap;
use weft_model::TraceId;
use weft_storage::clickhouse::{ClickHouseError, SpanRow, TenantTraces, TraceSummary};

/// A node is slower or faster when its total duration changed by at least this share of
/// the larger of its two durations, and by at least [`SIGNIFICANT_NS`]: smaller changes
/// are the jitter of any two runs of the same request.
pub const SIGNIFICANT_SHARE: f64 = 0.10;
pub const SIGNIFICANT_NS: u64 = 100_000;

/// One node's spans in one trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    pub span_count: u64,
    pub error_count: u64,
    /// The sum of the node's spans' durations.
    pub total_duration_ns: u64,
    /// The sum of the node's spans' self times: each span's duration less the union of
    /// its children's stretches (clipped to the span).
    pub self_duration_ns: u64,
    /// The node's earliest span, to link to it.
    pub first_span_id: String,
    /// When that span started, from the start of its trace.
    pub first_start_offset_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    OnlyA,
    OnlyB,
    Slower,
    Faster,
    Same,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::OnlyA => "only_a",
            Change::OnlyB => "only_b",
            Change::Slower => "slower",
            Change::Faster => "faster",
            Change::Same => "same",
        }
    }
}

/// One line of the merged call tree, in preorder: each node follows its parent, siblings
/// by their earliest start in either trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    /// The index of the parent node in the answer; `None` for a root.
    pub parent: Option<usize>,
    pub depth: usize,
    /// Nodes below this one, so a collapsed node can say how many it hides.
    pub descendants: usize,
    pub service: String,
    pub operation: String,
    pub change: Change,
    pub a: Option<Side>,
    pub b: Option<Side>,
    /// B less A (a missing side counts as none and zero).
    pub span_count_difference: i64,
    pub total_duration_difference_ns: i64,
    pub self_duration_difference_ns: i64,
}

/// How many nodes changed in each way.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    pub only_a: usize,
    pub only_b: usize,
    pub slower: usize,
    pub faster: usize,
    pub same: usize,
}

impl Counts {
    pub fn of(nodes: &[Node]) -> Counts {
        let mut counts = Counts::default();
        for node in nodes {
            match node.change {
                Change::OnlyA => counts.only_a += 1,
                Change::OnlyB => counts.only_b += 1,
                Change::Slower => counts.slower += 1,
                Change::Faster => counts.faster += 1,
                Change::Same => counts.same += 1,
            }
        }
        counts
    }
}

/// The traces a comparison names: `a` and `b`, or (from a search's selected rows) two
/// `trace` parameters, the first being A. A missing or empty one is `None`.
pub fn ids(query: Option<&str>) -> Result<(Option<TraceId>, Option<TraceId>), String> {
    let (mut a, mut b, mut selected) = (None, None, Vec::new());
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = value.trim();
        let slot = match key.as_ref() {
            "a" => &mut a,
            "b" => &mut b,
            "trace" => {
                selected.push(value.to_owned());
                continue;
            }
            other => {
                let other: String = other.chars().take(40).collect();
                return Err(format!(
                    "unknown parameter {other:?}: a comparison takes a and b, two trace ids"
                ));
            }
        };
        if slot.is_some() {
            return Err(format!("{key} is given twice"));
        }
        *slot = Some(value.to_owned());
    }
    if !selected.is_empty() {
        if a.is_some() || b.is_some() || selected.len() != 2 {
            return Err(format!(
                "select exactly two traces to compare, not {}",
                selected.len() + usize::from(a.is_some()) + usize::from(b.is_some())
            ));
        }
        b = selected.pop();
        a = selected.pop();
    }
    let parse = |name: &str, text: Option<String>| -> Result<Option<TraceId>, String> {
        match text.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                let shown: String = text.chars().take(80).collect();
                format!(
                    "{name} is not a trace id: {shown:?} (a trace id is 32 hexadecimal characters, not all zero)"
                )
            }),
        }
    };
    Ok((parse("a", a)?, parse("b", b)?))
}

/// Both traces, their summaries and the merged call tree.
pub struct Comparison {
    pub a: TraceSummary,
    pub b: TraceSummary,
    pub nodes: Vec<Node>,
}

pub enum Read {
    Found(Box<Comparison>),
    /// This trace id is not one of the organisation's traces.
    Missing(TraceId),
}

/// Reads both traces through the tenant's store (each with the trace read's limits) at
/// once and compares them.
pub async fn read(
    store: &TenantTraces<'_>,
    a: TraceId,
    b: TraceId,
) -> Result<Read, ClickHouseError> {
    let (found_a, found_b) = tokio::join!(store.trace(a), store.trace(b));
    let Some((a_summary, a_spans)) = found_a? else {
        return Ok(Read::Missing(a));
    };
    let Some((b_summary, b_spans)) = found_b? else {
        return Ok(Read::Missing(b));
    };
    Ok(Read::Found(Box::new(Comparison {
        nodes: compare(&a_spans, &b_spans),
        a: a_summary,
        b: b_summary,
    })))
}

/// A node while it is being built: its key's parent and its two sides.
struct Building<'s> {
    parent: Option<usize>,
    service: &'s str,
    operation: &'s str,
    sides: [Option<Side>; 2],
}

/// The merged call tree of traces `a` and `b`.
pub fn compare(a: &[SpanRow], b: &[SpanRow]) -> Vec<Node> {
    let mut nodes: Vec<Building<'_>> = Vec::new();
    let mut keys: HashMap<(Option<usize>, &str, &str), usize> = HashMap::new();
    for (side, spans) in [a, b].into_iter().enumerate() {
        add_trace(side, spans, &mut nodes, &mut keys);
    }
    order(nodes)
}

/// Adds every span of one trace to the node of its path, walking the trace from its
/// roots (spans whose parent is not stored, and spans in a parent cycle) so that a
/// parent's node is known before its children's.
fn add_trace<'s>(
    side: usize,
    spans: &'s [SpanRow],
    nodes: &mut Vec<Building<'s>>,
    keys: &mut HashMap<(Option<usize>, &'s str, &'s str), usize>,
) {
    let Some(trace_start) = spans.iter().map(|s| s.start_time_unix_nano).min() else {
        return;
    };
    let index: HashMap<[u8; 8], usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match index.get(&span.parent_span_id) {
            Some(&parent) if span.parent_span_id != [0; 8] && parent != i => {
                children[parent].push(i)
            }
            _ => roots.push(i),
        }
    }
    for kids in &mut children {
        kids.sort_by_key(|&k| (spans[k].start_time_unix_nano, spans[k].span_id));
    }
    roots.sort_by_key(|&r| (spans[r].start_time_unix_nano, spans[r].span_id));
    let mut visited = vec![false; spans.len()];
    let mut stack: Vec<(usize, Option<usize>)> = Vec::new();
    let mut next_root = 0;
    loop {
        let Some((i, parent_node)) = stack.pop() else {
            // The next root, then whatever a cycle kept out of reach.
            let root = roots
                .get(next_root)
                .copied()
                .or_else(|| visited.iter().position(|seen| !seen));
            let Some(root) = root else { break };
            next_root += 1;
            if !visited[root] {
                stack.push((root, None));
            }
            continue;
        };
        if std::mem::replace(&mut visited[i], true) {
            continue;
        }
        let span = &spans[i];
        let key = (parent_node, span.service_name.as_str(), span.name.as_str());
        let node = *keys.entry(key).or_insert_with(|| {
            nodes.push(Building {
                parent: parent_node,
                service: &span.service_name,
                operation: &span.name,
                sides: [None, None],
            });
            nodes.len() - 1
        });
        let offset = span.start_time_unix_nano - trace_start;
        let self_ns = self_time(span, children[i].iter().map(|&k| &spans[k]));
        let entry = nodes[node].sides[side].get_or_insert_with(|| Side {
            span_count: 0,
            error_count: 0,
            total_duration_ns: 0,
            self_duration_ns: 0,
            first_span_id: hex::encode(span.span_id),
            first_start_offset_ns: offset,
        });
        entry.span_count += 1;
        entry.error_count += u64::from(span.status_code == 2);
        entry.total_duration_ns = entry.total_duration_ns.saturating_add(span.duration_ns);
        entry.self_duration_ns = entry.self_duration_ns.saturating_add(self_ns);
        if offset < entry.first_start_offset_ns {
            entry.first_start_offset_ns = offset;
            entry.first_span_id = hex::encode(span.span_id);
        }
        stack.extend(children[i].iter().rev().map(|&k| (k, Some(node))));
    }
}

/// A span's duration less the union of its children's stretches within it. `children`
/// come sorted by start.
fn self_time<'s>(span: &SpanRow, children: impl Iterator<Item = &'s SpanRow>) -> u64 {
    let (start, end) = (
        span.start_time_unix_nano,
        span.start_time_unix_nano.saturating_add(span.duration_ns),
    );
    let mut covered = 0;
    let mut reached = start;
    for child in children {
        let child_start = child.start_time_unix_nano.clamp(reached, end);
        let child_end = child
            .start_time_unix_nano
            .saturating_add(child.duration_ns)
            .clamp(reached, end);
        covered += child_end - child_start;
        reached = reached.max(child_end);
    }
    span.duration_ns - covered
}

fn change(a: Option<&Side>, b: Option<&Side>) -> Change {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (a, b) = (a.total_duration_ns, b.total_duration_ns);
            let difference = a.abs_diff(b);
            let significant = difference >= SIGNIFICANT_NS
                && difference as f64 >= SIGNIFICANT_SHARE * a.max(b) as f64;
            match (significant, b > a) {
                (false, _) => Change::Same,
                (true, true) => Change::Slower,
                (true, false) => Change::Faster,
            }
        }
        (Some(_), None) => Change::OnlyA,
        _ => Change::OnlyB,
    }
}

/// The nodes in preorder, siblings by their earliest start in either trace.
fn order(nodes: Vec<Building<'_>>) -> Vec<Node> {
    let earliest = |n: &Building<'_>| {
        n.sides
            .iter()
            .flatten()
            .map(|s| s.first_start_offset_ns)
            .min()
            .unwrap_or(0)
    };
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut roots = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        match node.parent {
            Some(parent) => children[parent].push(i),
            None => roots.push(i),
        }
    }
    let by_start = |list: &mut Vec<usize>| {
        list.sort_by_key(|&i| (earliest(&nodes[i]), nodes[i].service, nodes[i].operation))
    };
    by_start(&mut roots);
    for list in &mut children {
        by_start(list);
    }
    // Parents always precede their children in `nodes`, so an explicit stack suffices
    // and no cycle is possible.
    let mut preorder: Vec<(usize, usize)> = Vec::with_capacity(nodes.len());
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        preorder.push((i, depth));
        stack.extend(children[i].iter().rev().map(|&k| (k, depth + 1)));
    }
    let mut position = vec![0; nodes.len()];
    for (at, &(i, _)) in preorder.iter().enumerate() {
        position[i] = at;
    }
    let mut out: Vec<Node> = preorder
        .iter()
        .map(|&(i, depth)| {
            let node = &nodes[i];
            let [a, b] = &node.sides;
            let value = |side: &Option<Side>, field: fn(&Side) -> u64| {
                side.as_ref().map_or(0, |s| field(s) as i64)
            };
            let difference =
                |field: fn(&Side) -> u64| value(b, field).saturating_sub(value(a, field));
            Node {
                parent: node.parent.map(|p| position[p]),
                depth,
                descendants: 0,
                service: node.service.to_owned(),
                operation: node.operation.to_owned(),
                change: change(a.as_ref(), b.as_ref()),
                span_count_difference: difference(|s| s.span_count),
                total_duration_difference_ns: difference(|s| s.total_duration_ns),
                self_duration_difference_ns: difference(|s| s.self_duration_ns),
                a: a.clone(),
                b: b.clone(),
            }
        })
        .collect();
    // In preorder a node's descendants are the run after it; count them leaves first.
    for at in (0..out.len()).rev() {
        if let Some(parent) = out[at].parent {
            out[parent].descendants += out[at].descendants + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_767_225_600_000_000_000;
    const MS: u64 = 1_000_000;

    fn span(id: u8, parent: u8, service: &str, name: &str, start_ms: u64, ms: u64) -> SpanRow {
        SpanRow {
            tenant_id: uuid::Uuid::nil(),
            trace_id: [1; 16],
            span_id: [id; 8],
            parent_span_id: [parent; 8],
            trace_state: String::new(),
            service_name: service.into(),
            name: name.into(),
            kind: 2,
            start_time: (T0 / 1_000_000_000) as u32,
            start_time_unix_nano: T0 + start_ms * MS,
            duration_ns: ms * MS,
            status_code: 0,
            status_message: String::new(),
            scope_name: String::new(),
            scope_version: String::new(),
            attribute_keys: vec![],
            attribute_values: vec![],
            resource_keys: Vec::new().into(),
            resource_values: Vec::new().into(),
            event_times_unix_nano: vec![],
            event_names: vec![],
            event_attributes: vec![],
            link_trace_ids: vec![],
            link_span_ids: vec![],
            link_attributes: vec![],
            sample_rate: 1.0,
            sampled_by: String::new(),
        }
    }

    fn line(node: &Node) -> (usize, String, Change, Option<u64>, Option<u64>) {
        (
            node.depth,
            format!("{} {}", node.service, node.operation),
            node.change,
            node.a.as_ref().map(|s| s.span_count),
            node.b.as_ref().map(|s| s.span_count),
        )
    }

    #[test]
    fn the_same_call_tree_lines_up_and_differences_are_named() {
        // A: checkout calls auth, charge (20 ms) and two cache reads.
        let a = [
            span(1, 0, "web", "checkout", 0, 100),
            span(2, 1, "auth", "verify", 5, 10),
            span(3, 1, "pay", "charge", 20, 20),
            span(4, 1, "cache", "get", 50, 2),
            span(5, 1, "cache", "get", 55, 2),
        ];
        // B: no auth, charge is slower and calls a fraud check, three cache reads (more
        // time in the cache in all, so slower).
        let b = [
            span(11, 0, "web", "checkout", 0, 200),
            span(13, 11, "pay", "charge", 20, 120),
            span(14, 13, "fraud", "score", 30, 50),
            span(15, 11, "cache", "get", 150, 2),
            span(16, 11, "cache", "get", 155, 2),
            span(17, 11, "cache", "get", 160, 2),
        ];
        let nodes = compare(&a, &b);
        let lines: Vec<_> = nodes.iter().map(line).collect();
        assert_eq!(
            lines,
            [
                (0, "web checkout".into(), Change::Slower, Some(1), Some(1)),
                (1, "auth verify".into(), Change::OnlyA, Some(1), None),
                (1, "pay charge".into(), Change::Slower, Some(1), Some(1)),
                (2, "fraud score".into(), Change::OnlyB, None, Some(1)),
                (1, "cache get".into(), Change::Slower, Some(2), Some(3)),
            ]
        );
        let charge = &nodes[2];
        assert_eq!(charge.parent, Some(0));
        assert_eq!(charge.total_duration_difference_ns, 100 * MS as i64);
        // 120 ms less the 50 ms fraud check, against 20 ms.
        assert_eq!(charge.b.as_ref().unwrap().self_duration_ns, 70 * MS);
        assert_eq!(charge.self_duration_difference_ns, 50 * MS as i64);
        assert_eq!(nodes[4].span_count_difference, 1);
        assert_eq!(nodes[0].descendants, 4);
        assert_eq!(nodes[2].descendants, 1);
        assert_eq!(nodes[3].parent, Some(2));
        assert_eq!(
            nodes[1].a.as_ref().unwrap().first_span_id,
            hex::encode([2u8; 8])
        );
        assert_eq!(
            Counts::of(&nodes),
            Counts {
                only_a: 1,
                only_b: 1,
                slower: 3,
                faster: 0,
                same: 0
            }
        );
    }

    #[test]
    fn a_call_under_another_parent_is_another_node() {
        let a = [
            span(1, 0, "web", "home", 0, 50),
            span(2, 1, "db", "query", 4, 10),
        ];
        let b = [
            span(1, 0, "web", "home", 0, 50),
            span(2, 1, "api", "list", 5, 30),
            span(3, 2, "db", "query", 6, 10),
        ];
        let lines: Vec<_> = compare(&a, &b).iter().map(line).collect();
        assert_eq!(
            lines,
            [
                (0, "web home".into(), Change::Same, Some(1), Some(1)),
                (1, "db query".into(), Change::OnlyA, Some(1), None),
                (1, "api list".into(), Change::OnlyB, None, Some(1)),
                (2, "db query".into(), Change::OnlyB, None, Some(1)),
            ]
        );
    }

    #[test]
    fn the_ids_come_as_a_and_b_or_as_two_selected_traces() {
        let (x, y) = (
            "0af7651916cd43dd8448eb211c80319c",
            "b7ad6b7169203331b7ad6b7169203331",
        );
        let id = |t: &str| Some(t.parse::<TraceId>().unwrap());
        assert_eq!(ids(Some(&format!("a={x}&b={y}"))), Ok((id(x), id(y))));
        assert_eq!(
            ids(Some(&format!("trace={x}&trace={y}"))),
            Ok((id(x), id(y)))
        );
        assert_eq!(ids(Some(&format!("a={x}&b="))), Ok((id(x), None)));
        assert_eq!(ids(None), Ok((None, None)));
        assert!(
            ids(Some("a=xyz"))
                .unwrap_err()
                .contains("a is not a trace id")
        );
        assert!(
            ids(Some(&format!("trace={x}")))
                .unwrap_err()
                .contains("exactly two")
        );
        assert!(
            ids(Some(&format!("a={x}&a={y}")))
                .unwrap_err()
                .contains("twice")
        );
        assert!(ids(Some("c=1")).unwrap_err().contains("unknown parameter"));
    }

    #[test]
    fn self_time_counts_overlapping_children_once_and_clips_them() {
        let parent = span(1, 0, "s", "p", 0, 100);
        let children = [
            span(2, 1, "s", "c", 10, 30),
            span(3, 1, "s", "c", 20, 30),
            span(4, 1, "s", "c", 90, 40),
        ];
        // Covered: 10–50 and 90–100.
        assert_eq!(self_time(&parent, children.iter()), 50 * MS);
    }

    #[test]
    fn jitter_is_the_same_and_orphans_and_cycles_are_roots() {
        let a = [
            span(1, 0, "web", "home", 0, 100),
            span(5, 6, "x", "loop", 10, 1),
            span(6, 5, "y", "loop", 11, 1),
        ];
        let b = [
            span(1, 0, "web", "home", 0, 105),
            span(2, 9, "late", "orphan", 3, 1),
        ];
        let nodes = compare(&a, &b);
        assert_eq!(nodes[0].change, Change::Same, "5 % slower is jitter");
        let roots: Vec<_> = nodes
            .iter()
            .filter(|n| n.parent.is_none())
            .map(|n| n.service.as_str())
            .collect();
        assert_eq!(roots, ["web", "late", "x"]);
        assert_eq!(nodes.len(), 4, "the cycle's two spans, one under the other");
        assert!(compare(&[], &[]).is_empty());
    }
}
