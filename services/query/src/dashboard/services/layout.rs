//! The service map's layout, computed on the server: a layered drawing of the caller →
//! callee graph (Sugiyama's method, as Graphviz's `dot` does it, kept small).
//!
//! 1. Cycles are broken by a depth-first search from the services nobody calls, in name
//!    order: an edge back to a service still on the search's stack is drawn reversed.
//!    The same graph therefore always breaks at the same edges.
//! 2. Layers by longest path from the roots: a service sits one layer right of its
//!    deepest caller, so every (unreversed) edge points from a lower to a higher layer.
//! 3. An edge spanning several layers passes through a dummy slot in each layer between,
//!    so it is routed around the services of those layers instead of through them.
//! 4. Each layer is ordered by the barycentre of its neighbours in the layer before
//!    (sweeping right) and after (sweeping left), keeping the order with the fewest
//!    crossings; ties keep the previous order, so the result is deterministic.
//! 5. Vertical positions: each slot is pulled towards its neighbours' mean, then pushed
//!    apart to keep a minimum gap, so edges run as straight as the order allows.
//!
//! What must stay true (tested): no two slots of a layer overlap, every edge that is not
//! reversed goes from a lower to a higher layer, and the same input (in any order) gives
//! the same layout.

use std::collections::{BTreeMap, BTreeSet};

/// A service box's size and the space between layers and between boxes, in pixels.
pub const NODE_W: f64 = 168.0;
pub const NODE_H: f64 = 46.0;
/// Room between two layers for the edges' curves and their labels: one column of labels,
/// or two where more than [`CROWDED_GAP`] edges cross.
pub const GAP_X: f64 = 156.0;
pub const WIDE_GAP_X: f64 = 220.0;
const CROWDED_GAP: usize = 4;
const GAP_Y: f64 = 34.0;
/// An edge passing through a layer keeps this much room from its neighbours.
const DUMMY_GAP: f64 = 20.0;
const SWEEPS: usize = 12;
const STRAIGHTEN_PASSES: usize = 6;

/// Where an edge of the input is drawn: through these points, left to right along its
/// layers (for a reversed edge, from the callee's layer to the caller's).
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// The caller and callee, as indices into [`Layout::nodes`].
    pub from: usize,
    pub to: usize,
    /// Drawn against its direction to break a cycle.
    pub reversed: bool,
    /// The centre of every slot of the route, from the left end to the right one: the
    /// two services and the dummy slots between.
    pub points: Vec<(f64, f64)>,
}

/// A service's place: its layer, its rank in the layer and the centre of its box.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    pub name: String,
    pub layer: usize,
    pub rank: usize,
    pub x: f64,
    pub y: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub nodes: Vec<Placed>,
    pub routes: Vec<Route>,
    /// Services that call themselves (drawn as a loop on their box).
    pub loops: Vec<usize>,
    pub layers: usize,
    /// The width of the gap after each layer but the last.
    pub gaps: Vec<f64>,
    pub width: f64,
    pub height: f64,
}

/// A slot of a layer: a service, or a point an edge passes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Node(usize),
    Dummy,
}

/// Lays out `nodes` (service names) and `edges` (caller, callee) with the margin
/// `margin` around the drawing. Duplicate edges are drawn once; edges naming a service
/// missing from `nodes` add it.
pub fn layout(nodes: &[String], edges: &[(String, String)], margin: f64) -> Layout {
    let names: BTreeSet<&str> = nodes
        .iter()
        .map(String::as_str)
        .chain(edges.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]))
        .collect();
    let names: Vec<&str> = names.into_iter().collect();
    let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let n = names.len();
    let mut calls: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut loops = BTreeSet::new();
    for (caller, callee) in edges {
        let (a, b) = (index[caller.as_str()], index[callee.as_str()]);
        if a == b {
            loops.insert(a);
        } else {
            calls.insert((a, b));
        }
    }
    let calls: Vec<(usize, usize)> = calls.into_iter().collect();
    let reversed = back_edges(n, &calls);
    // The graph as drawn: every edge from a lower to a higher layer.
    let dag: Vec<(usize, usize)> = calls
        .iter()
        .zip(&reversed)
        .map(|(&(a, b), &r)| if r { (b, a) } else { (a, b) })
        .collect();
    let layer_of = longest_path_layers(n, &dag);
    let layers = layer_of.iter().max().map_or(0, |l| l + 1);

    // Slots per layer, and each drawn edge's chain of slots (layer, slot id).
    let mut slots: Vec<Vec<Slot>> = vec![Vec::new(); layers];
    let mut slot_of_node = vec![(0, 0); n];
    for (node, &layer) in layer_of.iter().enumerate() {
        slot_of_node[node] = (layer, slots[layer].len());
        slots[layer].push(Slot::Node(node));
    }
    let mut chains: Vec<Vec<(usize, usize)>> = Vec::new();
    for &(a, b) in &dag {
        let mut chain = vec![slot_of_node[a]];
        let between = slots
            .iter_mut()
            .enumerate()
            .take(layer_of[b])
            .skip(layer_of[a] + 1);
        for (layer, slots) in between {
            chain.push((layer, slots.len()));
            slots.push(Slot::Dummy);
        }
        chain.push(slot_of_node[b]);
        chains.push(chain);
    }
    // Links between slots of adjacent layers, by slot id.
    let mut links: Vec<Vec<(usize, usize)>> = vec![Vec::new(); layers.saturating_sub(1)];
    for chain in &chains {
        for pair in chain.windows(2) {
            links[pair[0].0].push((pair[0].1, pair[1].1));
        }
    }
    let order = order_layers(&slots, &links);
    let ys = vertical_positions(&slots, &order, &links);

    let gaps: Vec<f64> = links
        .iter()
        .map(|links| {
            if links.len() > CROWDED_GAP {
                WIDE_GAP_X
            } else {
                GAP_X
            }
        })
        .collect();
    let lefts: Vec<f64> = (0..layers)
        .map(|layer| margin + layer as f64 * NODE_W + gaps[..layer].iter().sum::<f64>())
        .collect();
    let x_of = |layer: usize| lefts[layer] + NODE_W / 2.0;
    let top = ys
        .iter()
        .zip(&slots)
        .flat_map(|(layer, kinds)| {
            layer
                .iter()
                .zip(kinds)
                .map(|(y, kind)| y - extent(*kind) / 2.0)
        })
        .fold(f64::INFINITY, f64::min);
    let top = if top.is_finite() { top } else { 0.0 };
    let y_of = |layer: usize, slot: usize| ys[layer][slot] - top + margin;
    let placed: Vec<Placed> = (0..n)
        .map(|node| {
            let (layer, slot) = slot_of_node[node];
            Placed {
                name: names[node].to_owned(),
                layer,
                rank: order[layer].iter().position(|&s| s == slot).unwrap_or(0),
                x: x_of(layer),
                y: y_of(layer, slot),
            }
        })
        .collect();
    let routes = calls
        .iter()
        .zip(&reversed)
        .zip(&chains)
        .map(|((&(from, to), &reversed), chain)| Route {
            from,
            to,
            reversed,
            points: chain.iter().map(|&(l, s)| (x_of(l), y_of(l, s))).collect(),
        })
        .collect();
    let bottom = placed
        .iter()
        .map(|p| p.y + NODE_H / 2.0)
        .chain(
            ys.iter()
                .enumerate()
                .flat_map(|(l, layer)| (0..layer.len()).map(move |s| (l, s)))
                .map(|(l, s)| y_of(l, s)),
        )
        .fold(0.0, f64::max);
    Layout {
        nodes: placed,
        routes,
        loops: loops.into_iter().collect(),
        layers,
        width: 2.0 * margin + layers as f64 * NODE_W + gaps.iter().sum::<f64>(),
        gaps,
        height: bottom + margin,
    }
}

/// Which of `edges` (sorted, no self-loops) a depth-first search finds going back to a
/// service on its stack: the services nobody calls first, then any left (cycles
/// without an entry), each in name order, neighbours in name order.
fn back_edges(n: usize, edges: &[(usize, usize)]) -> Vec<bool> {
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    let mut called = vec![false; n];
    for (e, &(a, b)) in edges.iter().enumerate() {
        out[a].push((b, e));
        called[b] = true;
    }
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        OnStack,
        Done,
    }
    let mut state = vec![State::New; n];
    let mut reversed = vec![false; edges.len()];
    let starts = (0..n).filter(|&v| !called[v]).chain(0..n);
    for start in starts {
        if state[start] != State::New {
            continue;
        }
        // (node, next neighbour to look at)
        let mut stack = vec![(start, 0)];
        state[start] = State::OnStack;
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            if let Some(&(to, edge)) = out[node].get(top.1) {
                top.1 += 1;
                match state[to] {
                    State::New => {
                        state[to] = State::OnStack;
                        stack.push((to, 0));
                    }
                    State::OnStack => reversed[edge] = true,
                    State::Done => {}
                }
            } else {
                state[node] = State::Done;
                stack.pop();
            }
        }
    }
    reversed
}

/// The layer of every node of an acyclic graph: 0 for sources, otherwise one more than
/// its deepest predecessor.
fn longest_path_layers(n: usize, dag: &[(usize, usize)]) -> Vec<usize> {
    let mut incoming = vec![0usize; n];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in dag {
        incoming[b] += 1;
        out[a].push(b);
    }
    let mut layer = vec![0usize; n];
    let mut ready: BTreeSet<usize> = (0..n).filter(|&v| incoming[v] == 0).collect();
    while let Some(node) = ready.pop_first() {
        for &next in &out[node] {
            layer[next] = layer[next].max(layer[node] + 1);
            incoming[next] -= 1;
            if incoming[next] == 0 {
                ready.insert(next);
            }
        }
    }
    layer
}

/// Crossings between two adjacent layers' links, given both layers' positions.
fn crossings(links: &[(usize, usize)], left: &[usize], right: &[usize]) -> usize {
    let mut count = 0;
    for (i, &(a, b)) in links.iter().enumerate() {
        for &(c, d) in &links[i + 1..] {
            let (pa, pc, pb, pd) = (left[a], left[c], right[b], right[d]);
            if (pa < pc && pb > pd) || (pa > pc && pb < pd) {
                count += 1;
            }
        }
    }
    count
}

/// Positions (rank in its layer) of every slot, from an order (slot ids by rank).
fn positions(order: &[Vec<usize>]) -> Vec<Vec<usize>> {
    order
        .iter()
        .map(|layer| {
            let mut pos = vec![0; layer.len()];
            for (rank, &slot) in layer.iter().enumerate() {
                pos[slot] = rank;
            }
            pos
        })
        .collect()
}

fn total_crossings(order: &[Vec<usize>], links: &[Vec<(usize, usize)>]) -> usize {
    let pos = positions(order);
    links
        .iter()
        .enumerate()
        .map(|(l, links)| crossings(links, &pos[l], &pos[l + 1]))
        .sum()
}

/// The order of every layer (slot ids by rank) with few crossings: barycentre sweeps,
/// right then left, keeping the best order seen.
fn order_layers(slots: &[Vec<Slot>], links: &[Vec<(usize, usize)>]) -> Vec<Vec<usize>> {
    let mut order: Vec<Vec<usize>> = slots.iter().map(|l| (0..l.len()).collect()).collect();
    let mut best = (total_crossings(&order, links), order.clone());
    for sweep in 0..SWEEPS {
        let rightwards = sweep % 2 == 0;
        let layers: Vec<usize> = if rightwards {
            (1..order.len()).collect()
        } else {
            (0..order.len().saturating_sub(1)).rev().collect()
        };
        for layer in layers {
            let pos = positions(&order);
            let neighbours = |slot: usize| -> Vec<usize> {
                if rightwards {
                    links[layer - 1]
                        .iter()
                        .filter(|(_, b)| *b == slot)
                        .map(|(a, _)| pos[layer - 1][*a])
                        .collect()
                } else {
                    links[layer]
                        .iter()
                        .filter(|(a, _)| *a == slot)
                        .map(|(_, b)| pos[layer + 1][*b])
                        .collect()
                }
            };
            let mut keyed: Vec<(f64, usize, usize)> = order[layer]
                .iter()
                .enumerate()
                .map(|(rank, &slot)| {
                    let near = neighbours(slot);
                    let key = if near.is_empty() {
                        rank as f64
                    } else {
                        near.iter().sum::<usize>() as f64 / near.len() as f64
                    };
                    (key, rank, slot)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            order[layer] = keyed.into_iter().map(|(_, _, slot)| slot).collect();
        }
        let count = total_crossings(&order, links);
        if count < best.0 {
            best = (count, order.clone());
        }
    }
    best.1
}

/// The height a slot takes in its layer.
fn extent(slot: Slot) -> f64 {
    match slot {
        Slot::Node(_) => NODE_H,
        Slot::Dummy => 0.0,
    }
}

/// The least distance between the centres of two neighbouring slots.
fn separation(a: Slot, b: Slot) -> f64 {
    let gap = if a == Slot::Dummy || b == Slot::Dummy {
        DUMMY_GAP
    } else {
        GAP_Y
    };
    (extent(a) + extent(b)) / 2.0 + gap
}

/// The vertical centre of every slot (by layer and slot id): packed in rank order,
/// layers centred on each other, then pulled towards the mean of their neighbours a
/// few times, always keeping the separation in rank order.
fn vertical_positions(
    slots: &[Vec<Slot>],
    order: &[Vec<usize>],
    links: &[Vec<(usize, usize)>],
) -> Vec<Vec<f64>> {
    let packed = |layer: usize, desired: &dyn Fn(usize) -> f64| -> Vec<f64> {
        let ranks = &order[layer];
        let kinds: Vec<Slot> = ranks.iter().map(|&s| slots[layer][s]).collect();
        let mut y: Vec<f64> = ranks.iter().map(|&s| desired(s)).collect();
        // Push down what overlaps the slot above, then up what overlaps the one below,
        // then down again: slots keep their order and their separation.
        for i in 1..y.len() {
            y[i] = y[i].max(y[i - 1] + separation(kinds[i - 1], kinds[i]));
        }
        let mean_shift = {
            let desired_mean =
                ranks.iter().map(|&s| desired(s)).sum::<f64>() / y.len().max(1) as f64;
            let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
            desired_mean - mean
        };
        for v in &mut y {
            *v += mean_shift;
        }
        for i in 1..y.len() {
            y[i] = y[i].max(y[i - 1] + separation(kinds[i - 1], kinds[i]));
        }
        let mut by_slot = vec![0.0; ranks.len()];
        for (rank, &slot) in ranks.iter().enumerate() {
            by_slot[slot] = y[rank];
        }
        by_slot
    };
    // Start: each layer stacked in rank order and centred on the tallest.
    let stacked: Vec<Vec<f64>> = (0..slots.len())
        .map(|layer| {
            let ranks = &order[layer];
            let mut by_slot = vec![0.0; ranks.len()];
            let mut y = 0.0;
            for (rank, &slot) in ranks.iter().enumerate() {
                if rank > 0 {
                    y += separation(slots[layer][ranks[rank - 1]], slots[layer][slot]);
                }
                by_slot[slot] = y;
            }
            by_slot
        })
        .collect();
    let height = |layer: &Vec<f64>| layer.iter().cloned().fold(0.0, f64::max);
    let tallest = stacked.iter().map(height).fold(0.0, f64::max);
    let mut ys: Vec<Vec<f64>> = stacked
        .iter()
        .map(|layer| {
            let shift = (tallest - height(layer)) / 2.0;
            layer.iter().map(|y| y + shift).collect()
        })
        .collect();
    for pass in 0..STRAIGHTEN_PASSES {
        let rightwards = pass % 2 == 0;
        let layers: Vec<usize> = if rightwards {
            (1..slots.len()).collect()
        } else {
            (0..slots.len().saturating_sub(1)).rev().collect()
        };
        for layer in layers {
            let current = ys[layer].clone();
            let neighbours = |slot: usize| -> Vec<f64> {
                if rightwards {
                    links[layer - 1]
                        .iter()
                        .filter(|(_, b)| *b == slot)
                        .map(|(a, _)| ys[layer - 1][*a])
                        .collect()
                } else {
                    links[layer]
                        .iter()
                        .filter(|(a, _)| *a == slot)
                        .map(|(_, b)| ys[layer + 1][*b])
                        .collect()
                }
            };
            let desired: Vec<f64> = (0..current.len())
                .map(|slot| {
                    let near = neighbours(slot);
                    if near.is_empty() {
                        current[slot]
                    } else {
                        near.iter().sum::<f64>() / near.len() as f64
                    }
                })
                .collect();
            ys[layer] = packed(layer, &|slot| desired[slot]);
        }
    }
    ys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> (Vec<String>, Vec<(String, String)>) {
        let edges: Vec<(String, String)> = edges
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        (Vec::new(), edges)
    }

    /// What must hold of every layout: boxes of a layer apart, edges rightwards unless
    /// reversed, routes through every layer between their ends.
    fn check(layout: &Layout) {
        for layer in 0..layout.layers {
            let mut ys: Vec<f64> = layout
                .nodes
                .iter()
                .filter(|p| p.layer == layer)
                .map(|p| p.y)
                .collect();
            ys.sort_by(f64::total_cmp);
            for pair in ys.windows(2) {
                assert!(
                    pair[1] - pair[0] >= NODE_H + GAP_Y - 1e-6,
                    "boxes of layer {layer} overlap: {pair:?}"
                );
            }
        }
        for route in &layout.routes {
            let (from, to) = (&layout.nodes[route.from], &layout.nodes[route.to]);
            if route.reversed {
                assert!(
                    from.layer > to.layer,
                    "{} → {} reversed",
                    from.name,
                    to.name
                );
            } else {
                assert!(from.layer < to.layer, "{} → {}", from.name, to.name);
            }
            let span = from.layer.abs_diff(to.layer);
            assert_eq!(route.points.len(), span + 1, "a point per layer crossed");
            assert!(route.points.windows(2).all(|p| p[0].0 < p[1].0));
        }
        for node in &layout.nodes {
            assert!(node.x - NODE_W / 2.0 >= 0.0 && node.x + NODE_W / 2.0 <= layout.width);
            assert!(node.y - NODE_H / 2.0 >= 0.0 && node.y + NODE_H / 2.0 <= layout.height);
        }
    }

    #[test]
    fn a_chain_and_a_fork_are_layered_from_the_root() {
        let (nodes, edges) = graph(&[
            ("frontend", "checkout"),
            ("checkout", "payment"),
            ("checkout", "inventory"),
            ("frontend", "inventory"),
        ]);
        let layout = layout(&nodes, &edges, 20.0);
        check(&layout);
        let layer = |name: &str| layout.nodes.iter().find(|p| p.name == name).unwrap().layer;
        assert_eq!(
            [
                layer("frontend"),
                layer("checkout"),
                layer("payment"),
                layer("inventory")
            ],
            [0, 1, 2, 2],
            "longest path: inventory sits after checkout, its deepest caller"
        );
        let long = layout
            .routes
            .iter()
            .find(|r| {
                layout.nodes[r.from].name == "frontend" && layout.nodes[r.to].name == "inventory"
            })
            .unwrap();
        assert_eq!(
            long.points.len(),
            3,
            "through a dummy slot in checkout's layer"
        );
        let checkout = layout.nodes.iter().find(|p| p.name == "checkout").unwrap();
        assert!(
            (long.points[1].1 - checkout.y).abs() >= NODE_H / 2.0 + DUMMY_GAP - 1e-6,
            "the dummy keeps clear of checkout's box"
        );
        assert!(layout.routes.iter().all(|r| !r.reversed));
    }

    #[test]
    fn cycles_are_broken_at_the_same_edge_every_time() {
        let (nodes, edges) = graph(&[
            ("api", "auth"),
            ("auth", "users"),
            ("users", "auth"),
            ("users", "users"),
            ("ring-a", "ring-b"),
            ("ring-b", "ring-a"),
        ]);
        let first = layout(&nodes, &edges, 20.0);
        check(&first);
        let reversed: Vec<(&str, &str)> = first
            .routes
            .iter()
            .filter(|r| r.reversed)
            .map(|r| {
                (
                    first.nodes[r.from].name.as_str(),
                    first.nodes[r.to].name.as_str(),
                )
            })
            .collect();
        assert_eq!(reversed, [("ring-b", "ring-a"), ("users", "auth")]);
        assert_eq!(
            first.loops,
            [first.nodes.iter().position(|p| p.name == "users").unwrap()]
        );
        let mut shuffled = edges.clone();
        shuffled.reverse();
        assert_eq!(
            layout(&nodes, &shuffled, 20.0),
            first,
            "input order does not matter"
        );
    }

    #[test]
    fn barycentres_untangle_crossed_edges() {
        // Drawn in name order, a→z and b→y cross; the sweeps swap y and z.
        let (nodes, edges) = graph(&[("a", "z"), ("b", "y")]);
        let layout = layout(&nodes, &edges, 0.0);
        check(&layout);
        let rank = |name: &str| layout.nodes.iter().find(|p| p.name == name).unwrap().rank;
        assert_eq!((rank("a"), rank("b"), rank("y"), rank("z")), (0, 1, 1, 0));
        let y = |name: &str| layout.nodes.iter().find(|p| p.name == name).unwrap().y;
        assert_eq!(y("a"), y("z"), "a single caller and callee line up");
    }

    /// A system of 50 services: 4 gateways, 10 frontends, 20 backends, 16 stores, each
    /// calling a few of the next tier, plus a few calls skipping a tier and one cycle.
    fn fifty() -> (Vec<String>, Vec<(String, String)>) {
        let tier = |name: &str, count: usize| -> Vec<String> {
            (0..count).map(|i| format!("{name}-{i:02}")).collect()
        };
        let tiers = [
            tier("gateway", 4),
            tier("web", 10),
            tier("svc", 20),
            tier("store", 16),
        ];
        let mut edges = Vec::new();
        let mut state = 17_u64;
        let mut next = |bound: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % bound
        };
        for t in 0..3 {
            for caller in &tiers[t] {
                for _ in 0..3 {
                    let callee = &tiers[t + 1][next(tiers[t + 1].len())];
                    edges.push((caller.clone(), callee.clone()));
                }
            }
        }
        for caller in &tiers[1][..4] {
            edges.push((caller.clone(), tiers[3][next(16)].clone()));
        }
        edges.push(("web-02".into(), "svc-03".into()));
        edges.push(("svc-03".into(), "web-02".into()));
        let nodes = tiers.concat();
        (nodes, edges)
    }

    #[test]
    fn fifty_services_lay_out_without_overlaps_deterministically() {
        let (nodes, edges) = fifty();
        let first = layout(&nodes, &edges, 24.0);
        check(&first);
        assert_eq!(first.nodes.len(), 50);
        assert!(first.layers >= 4);
        assert!(
            first.routes.iter().filter(|r| r.reversed).count() >= 1,
            "the cycle"
        );
        let mut shuffled = edges.clone();
        shuffled.rotate_left(17);
        assert_eq!(layout(&nodes, &shuffled, 24.0), first);
        // The sweeps do better than drawing in name order.
        let names = nodes.iter().cloned().collect::<BTreeSet<_>>();
        assert_eq!(names.len(), 50);
        assert!(
            first.height < 50.0 * (NODE_H + GAP_Y),
            "layers share the height"
        );
    }

    #[test]
    fn ordering_reduces_crossings() {
        let (nodes, edges) = fifty();
        let names: Vec<&str> = {
            let mut all: BTreeSet<&str> = nodes.iter().map(String::as_str).collect();
            all.extend(edges.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]));
            all.into_iter().collect()
        };
        let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let calls: Vec<(usize, usize)> = edges
            .iter()
            .map(|(a, b)| (index[a.as_str()], index[b.as_str()]))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let reversed = back_edges(names.len(), &calls);
        let dag: Vec<(usize, usize)> = calls
            .iter()
            .zip(&reversed)
            .map(|(&(a, b), &r)| if r { (b, a) } else { (a, b) })
            .collect();
        let layer = longest_path_layers(names.len(), &dag);
        assert!(dag.iter().all(|(a, b)| layer[*a] < layer[*b]));
        // Slots and links as `layout` builds them, without dummies for brevity: edges
        // spanning one layer only.
        let layers = layer.iter().max().unwrap() + 1;
        let mut slots: Vec<Vec<Slot>> = vec![Vec::new(); layers];
        let mut slot_of = vec![0; names.len()];
        for (node, &l) in layer.iter().enumerate() {
            slot_of[node] = slots[l].len();
            slots[l].push(Slot::Node(node));
        }
        let mut links: Vec<Vec<(usize, usize)>> = vec![Vec::new(); layers - 1];
        for &(a, b) in dag.iter().filter(|(a, b)| layer[*b] == layer[*a] + 1) {
            links[layer[a]].push((slot_of[a], slot_of[b]));
        }
        let initial: Vec<Vec<usize>> = slots.iter().map(|l| (0..l.len()).collect()).collect();
        let ordered = order_layers(&slots, &links);
        let (before, after) = (
            total_crossings(&initial, &links),
            total_crossings(&ordered, &links),
        );
        assert!(
            after < before,
            "{before} crossings in name order, {after} after the sweeps"
        );
    }
}
