//! The critical path of a trace, as Jaeger computes it: the chain of span sections that
//! determine when the trace ends. From the root's end it walks back in time: the child
//! that finished last before the current point is on the path from its end back to its
//! start, the parent's own time between is on it too, and so on down and back up, until
//! the root's start. Children are first clipped to their parent (a child that outlives its
//! parent cannot delay it past its end; one entirely outside it cannot delay it at all).
//!
//! Iterative, with one cursor per span into its children sorted by end: the point only
//! moves back, so a child passed over is never looked at again, and a 10 000-deep chain
//! or a 10 000-wide fan-out costs O(n log n).

/// A span as the path needs it: its parent's index (in the same list) and its time.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub parent: Option<usize>,
    pub start: u64,
    pub end: u64,
}

/// A stretch of one span (by index) on the critical path, in absolute nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    pub span: usize,
    pub start: u64,
    pub end: u64,
}

/// The critical path of `spans` (parents before their children, as the waterfall orders
/// them), latest section first. Empty without spans.
pub fn critical_path(spans: &[Timing]) -> Vec<Section> {
    // Clip every span to its parent; `None` for spans outside their parent.
    let mut clipped: Vec<Option<(u64, u64)>> = Vec::with_capacity(spans.len());
    for span in spans {
        let bounds = match span.parent {
            None => Some((span.start, span.end.max(span.start))),
            Some(p) => clipped.get(p).copied().flatten().and_then(|(ps, pe)| {
                let (start, end) = (span.start.max(ps), span.end.min(pe));
                (start <= end && span.start <= pe && span.end >= ps).then_some((start, end))
            }),
        };
        clipped.push(bounds);
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    for (i, span) in spans.iter().enumerate() {
        if let (Some(p), Some(_)) = (span.parent, clipped[i])
            && p < spans.len()
        {
            children[p].push(i);
        }
    }
    let end_of = |i: usize| clipped[i].map_or(0, |(_, end)| end);
    for list in &mut children {
        list.sort_by(|a, b| end_of(*b).cmp(&end_of(*a)).then(a.cmp(b)));
    }
    // The root that ends last (the first of them) starts the walk.
    let Some(root) = (0..spans.len())
        .filter(|i| spans[*i].parent.is_none())
        .max_by(|a, b| end_of(*a).cmp(&end_of(*b)).then(b.cmp(a)))
    else {
        return Vec::new();
    };
    let mut next_child = vec![0usize; spans.len()];
    let mut path = Vec::new();
    let (mut span, mut until) = (root, end_of(root));
    loop {
        let (start, _) = clipped[span].expect("spans on the path are within their parents");
        let list = &children[span];
        let cursor = &mut next_child[span];
        while *cursor < list.len() && end_of(list[*cursor]) > until {
            *cursor += 1;
        }
        if *cursor < list.len() {
            let child = list[*cursor];
            *cursor += 1;
            let child_end = end_of(child);
            if child_end < until {
                path.push(Section {
                    span,
                    start: child_end,
                    end: until,
                });
            }
            (span, until) = (child, child_end);
            continue;
        }
        if start < until {
            path.push(Section {
                span,
                start,
                end: until,
            });
        }
        match spans[span].parent {
            Some(parent) if span != root => (span, until) = (parent, start),
            _ => break,
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(parent: Option<usize>, start: u64, end: u64) -> Timing {
        Timing { parent, start, end }
    }

    fn section(span: usize, start: u64, end: u64) -> Section {
        Section { span, start, end }
    }

    #[test]
    fn the_path_follows_the_last_finishing_children() {
        // root 0–100; a 10–40 and b 30–90 overlap, b calls c 40–60; d outlives the root.
        let spans = [
            timing(None, 0, 100),
            timing(Some(0), 10, 40),
            timing(Some(0), 30, 90),
            timing(Some(2), 40, 60),
            timing(Some(0), 95, 120),
            timing(Some(0), 150, 160),
        ];
        assert_eq!(
            critical_path(&spans),
            [
                section(4, 95, 100),
                section(0, 90, 95),
                section(2, 60, 90),
                section(3, 40, 60),
                section(2, 30, 40),
                section(0, 0, 30),
            ],
            "a finished under b, and the span after the root's end cannot delay it"
        );
    }

    #[test]
    fn sequential_children_are_all_on_the_path() {
        let spans = [
            timing(None, 0, 100),
            timing(Some(0), 0, 50),
            timing(Some(0), 50, 100),
        ];
        let on_path: Vec<usize> = critical_path(&spans).iter().map(|s| s.span).collect();
        assert_eq!(on_path, [2, 1]);
    }

    #[test]
    fn a_deep_chain_and_a_wide_fan_out_are_walked_without_recursion() {
        let chain: Vec<Timing> = (0..10_000u64)
            .map(|i| timing(i.checked_sub(1).map(|p| p as usize), i, 20_000 - i))
            .collect();
        let path = critical_path(&chain);
        assert_eq!(path.len(), 2 * 10_000 - 1);
        assert_eq!(path[0], section(0, 19_999, 20_000));
        let mut fan = vec![timing(None, 0, 10_000)];
        fan.extend((0..10_000u64).map(|i| timing(Some(0), i, i + 1)));
        assert_eq!(critical_path(&fan).len(), 10_000);
        assert!(critical_path(&[]).is_empty());
    }
}
