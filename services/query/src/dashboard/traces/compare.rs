//! The comparison page's model: both traces' headers and the merged call tree of
//! [`crate::compare`] as rows ready for the template, each row saying how many groups it
//! closes so that nested `<details>` fold every subtree without JavaScript.

use super::format;
use super::search::Chip;
use crate::compare::{Change, Comparison, Counts, Node, Side};
use weft_storage::clickhouse::TraceSummary;

/// One trace's header on the page.
pub struct TraceHead {
    pub trace_id: String,
    pub root: Option<Chip>,
    pub root_name: String,
    pub started: String,
    pub duration: String,
    pub spans: u64,
    pub errors: u64,
}

impl TraceHead {
    pub fn new(summary: &TraceSummary) -> TraceHead {
        TraceHead {
            trace_id: hex::encode(summary.trace_id),
            root: (!summary.root_service.is_empty()).then(|| Chip::new(&summary.root_service)),
            root_name: summary.root_name.clone(),
            started: format::timestamp(summary.start_time_unix_nano),
            duration: format::duration(
                summary
                    .end_time_unix_nano
                    .saturating_sub(summary.start_time_unix_nano),
            ),
            spans: summary.span_count,
            errors: summary.error_count,
        }
    }
}

/// One node's spans in one trace, as a cell of its row.
pub struct Cell {
    pub spans: u64,
    pub errors: u64,
    pub total: String,
    pub self_time: String,
    /// The node's total duration as a share of the largest total on the page (percent).
    pub bar: String,
    /// The node's first span on its trace's page.
    pub href: String,
}

pub struct Row {
    pub depth: usize,
    pub descendants: usize,
    /// How many open subtrees end after this row.
    pub closes: usize,
    pub service: String,
    pub colour: u64,
    pub operation: String,
    /// `only_a`, `only_b`, `slower`, `faster` or `same` (the CSS class).
    pub change: &'static str,
    /// The change in words, empty when the node is about the same.
    pub label: &'static str,
    pub a: Option<Cell>,
    pub b: Option<Cell>,
    /// B less A: total duration (`+100ms`), its share of A's (`+500%`), spans (`+1 span`).
    pub difference: String,
    pub share: String,
    pub span_difference: String,
}

impl Row {
    pub fn has_children(&self) -> bool {
        self.descendants > 0
    }
}

fn signed_duration(ns: i64) -> String {
    match ns {
        0 => "±0".to_owned(),
        ns if ns > 0 => format!("+{}", format::duration(ns.unsigned_abs())),
        ns => format!("\u{2212}{}", format::duration(ns.unsigned_abs())),
    }
}

fn cell(side: &Side, trace_id: &str, largest: u64) -> Cell {
    Cell {
        spans: side.span_count,
        errors: side.error_count,
        total: format::duration(side.total_duration_ns),
        self_time: format::duration(side.self_duration_ns),
        bar: format::percent(side.total_duration_ns as f64, largest as f64),
        href: format!("/traces/{trace_id}#span={}", side.first_span_id),
    }
}

/// `+1 span`, `−3 spans`; empty for no change.
fn span_difference(difference: i64) -> String {
    let plural = if difference.unsigned_abs() == 1 {
        ""
    } else {
        "s"
    };
    match difference {
        0 => String::new(),
        d if d > 0 => format!("+{d} span{plural}"),
        d => format!("\u{2212}{} span{plural}", d.unsigned_abs()),
    }
}

fn label(change: Change) -> &'static str {
    match change {
        Change::OnlyA => "only in A",
        Change::OnlyB => "only in B",
        Change::Slower => "slower",
        Change::Faster => "faster",
        Change::Same => "",
    }
}

fn share(node: &Node) -> String {
    match (&node.a, &node.b) {
        (Some(a), Some(_)) if a.total_duration_ns > 0 => {
            let share =
                node.total_duration_difference_ns as f64 / a.total_duration_ns as f64 * 100.0;
            if share.abs() < 0.5 {
                String::new()
            } else if share > 0.0 {
                format!("+{share:.0}%")
            } else {
                format!("\u{2212}{:.0}%", share.abs())
            }
        }
        _ => String::new(),
    }
}

/// Nodes one page shows at most, in preorder: a browser stays responsive, and the API
/// has every node.
pub const PAGE_NODES: usize = 5_000;

/// The rows of the first `limit` nodes. When the tree is cut, the last row closes every
/// subtree still open, so the page's nesting stays whole.
pub fn rows(comparison: &Comparison, limit: usize) -> Vec<Row> {
    let (a_id, b_id) = (
        hex::encode(comparison.a.trace_id),
        hex::encode(comparison.b.trace_id),
    );
    let nodes = &comparison.nodes;
    let largest = nodes
        .iter()
        .flat_map(|n| [&n.a, &n.b])
        .flatten()
        .map(|s| s.total_duration_ns)
        .max()
        .unwrap_or(0);
    let mut rows: Vec<Row> = nodes
        .iter()
        .take(limit)
        .enumerate()
        .map(|(at, node)| {
            // The subtrees that end here: this node's own when it has children none,
            // else each ancestor (and itself, a leaf closes nothing) whose last
            // descendant this is.
            let next_depth = nodes.get(at + 1).map_or(0, |n| n.depth);
            let closes = if node.descendants > 0 {
                0
            } else {
                node.depth.saturating_sub(next_depth)
            };
            Row {
                depth: node.depth,
                descendants: node.descendants,
                closes,
                colour: format::colour(&node.service),
                service: node.service.clone(),
                operation: node.operation.clone(),
                change: node.change.as_str(),
                label: label(node.change),
                a: node.a.as_ref().map(|s| cell(s, &a_id, largest)),
                b: node.b.as_ref().map(|s| cell(s, &b_id, largest)),
                difference: signed_duration(node.total_duration_difference_ns),
                share: share(node),
                span_difference: span_difference(node.span_count_difference),
            }
        })
        .collect();
    if rows.len() < nodes.len()
        && let Some(last) = rows.last_mut()
    {
        last.closes = last.depth + usize::from(last.has_children());
    }
    rows
}

/// The counts of changed nodes, for the page's legend.
pub fn counts(comparison: &Comparison) -> Counts {
    Counts::of(&comparison.nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(depth: usize, descendants: usize) -> Node {
        Node {
            parent: None,
            depth,
            descendants,
            service: "s".into(),
            operation: "o".into(),
            change: Change::Same,
            a: None,
            b: None,
            span_count_difference: 0,
            total_duration_difference_ns: 0,
            self_duration_difference_ns: 0,
        }
    }

    #[test]
    fn every_opened_subtree_is_closed_once() {
        // 0 { 1 { 2 } 3 { 4 { 5 } } } 6
        let summary = TraceSummary {
            trace_id: [1; 16],
            start_time_unix_nano: 0,
            end_time_unix_nano: 0,
            root_service: String::new(),
            root_name: String::new(),
            span_count: 0,
            error_count: 0,
            service_names: Vec::new(),
            sample_rate: 1.0,
            sampled_by: String::new(),
        };
        let comparison = Comparison {
            a: summary.clone(),
            b: summary,
            nodes: vec![
                node(0, 5),
                node(1, 1),
                node(2, 0),
                node(1, 2),
                node(2, 1),
                node(3, 0),
                node(0, 0),
            ],
        };
        let closes: Vec<usize> = rows(&comparison, usize::MAX)
            .iter()
            .map(|r| r.closes)
            .collect();
        assert_eq!(closes, [0, 0, 1, 0, 0, 3, 0]);
        let opened = rows(&comparison, usize::MAX)
            .iter()
            .filter(|r| r.has_children())
            .count();
        assert_eq!(closes.iter().sum::<usize>(), opened);
        // Cut after the fifth node (depth 2, with a child): it closes itself and both
        // ancestors.
        let cut = rows(&comparison, 5);
        let closes: Vec<usize> = cut.iter().map(|r| r.closes).collect();
        assert_eq!(closes, [0, 0, 1, 0, 3]);
        let opened = cut.iter().filter(|r| r.has_children()).count();
        assert_eq!(closes.iter().sum::<usize>(), opened);
    }

    #[test]
    fn differences_are_signed() {
        assert_eq!(signed_duration(100_000_000), "+100ms");
        assert_eq!(signed_duration(-2_500_000), "\u{2212}2.5ms");
        assert_eq!(signed_duration(0), "±0");
        assert_eq!(span_difference(1), "+1 span");
        assert_eq!(span_difference(-3), "\u{2212}3 spans");
        assert_eq!(span_difference(0), "");
    }
}
