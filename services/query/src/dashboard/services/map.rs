//! The service map as drawn: boxes for services and curves for calls, placed by
//! [`super::layout`]. The curves meeting one side of a box are spread along it, and each
//! call's label (rate, error rate, p95) sits on its curve in the first gap it crosses:
//! in the gap's middle, or in a wide gap in whichever of two columns keeps it nearer;
//! labels of a column that would overlap move down.

use super::super::traces::format;
use super::chart;
use super::layout::{self, Layout, NODE_H, NODE_W};
use super::table::{self, Measured};
use crate::view::Red;
use std::collections::BTreeMap;

const MARGIN: f64 = 24.0;
const LABEL_W: f64 = 104.0;
const LABEL_H: f64 = 29.0;
/// The room an arrowhead takes before the box it points at.
const ARROW: f64 = 6.0;
/// Characters of a service name that fit its box; longer names end in `…`.
const NAME_CHARS: usize = 21;
/// How far a reversed call runs below its forward twin, so both stay visible.
const REVERSED_OFFSET: f64 = 9.0;

/// A cubic Bézier curve: its ends and control points.
type Curve = [(f64, f64); 4];

/// A curve's end on one side of a box: where the curve comes from (its next port's
/// height), which route it is, and whether it is the route's first port.
struct End {
    towards: f64,
    route: usize,
    first: bool,
}

/// A service's box.
pub struct MapNode {
    pub name: String,
    /// The name as it fits the box.
    pub short: String,
    pub href: String,
    pub colour: u64,
    /// The box's top-left corner and the text baselines.
    pub x: String,
    pub y: String,
    pub text_x: String,
    pub name_y: String,
    pub stats_y: String,
    pub stats: String,
    pub health: &'static str,
    pub title: String,
}

/// A call's curve and its label.
pub struct MapEdge {
    pub caller: String,
    pub callee: String,
    pub d: String,
    pub width: String,
    pub health: &'static str,
    pub reversed: bool,
    pub title: String,
    pub label_x: String,
    pub label_y: String,
    pub text_x: String,
    pub rate_y: String,
    pub p95_y: String,
    pub rate: String,
    pub p95: String,
}

/// A call between two services over the window, as the edges table lists it.
pub struct Call {
    pub caller: String,
    pub callee: String,
    pub red: Red,
}

pub struct ServiceMap {
    pub nodes: Vec<MapNode>,
    pub edges: Vec<MapEdge>,
    /// Loops on the boxes of services that call themselves.
    pub loops: Vec<String>,
    pub width: String,
    pub height: String,
    pub label_w: f64,
    pub label_h: f64,
    pub node_w: f64,
    pub node_h: f64,
    /// The topmost box of the first layer, where the view of a map taller than its box
    /// starts (`explorer.js` scrolls the box there).
    pub focus_y: String,
}

fn short_name(name: &str) -> String {
    if name.chars().count() <= NAME_CHARS {
        name.to_owned()
    } else {
        let cut: String = name.chars().take(NAME_CHARS - 1).collect();
        format!("{cut}…")
    }
}

fn latency(red: &Red) -> String {
    format!(
        "p50 {} · p95 {} · p99 {}",
        red.histogram
            .quantile(0.5)
            .map_or_else(|| "—".to_owned(), format::duration),
        red.histogram
            .quantile(0.95)
            .map_or_else(|| "—".to_owned(), format::duration),
        red.histogram
            .quantile(0.99)
            .map_or_else(|| "—".to_owned(), format::duration),
    )
}

/// The curve through `ports` (left to right): straight through a layer, a horizontal
/// S-curve across each gap.
fn curve(ports: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (i, &(x, y)) in ports.iter().enumerate() {
        if i == 0 {
            d.push_str(&format!("M{x:.1} {y:.1}"));
            continue;
        }
        let (px, py) = ports[i - 1];
        if i % 2 == 1 {
            let mid = (x - px) / 2.0;
            d.push_str(&format!(
                " C{:.1} {py:.1} {:.1} {y:.1} {x:.1} {y:.1}",
                px + mid,
                x - mid
            ));
        } else {
            d.push_str(&format!(" L{x:.1} {y:.1}"));
        }
    }
    d
}

/// Draws the services in `measured` and the `calls` between them over `seconds`;
/// `query` is the time range's query string, which the links keep.
pub fn draw(
    measured: &BTreeMap<String, Measured>,
    calls: &[Call],
    seconds: f64,
    query: &str,
) -> ServiceMap {
    let names: Vec<String> = measured.keys().cloned().collect();
    let pairs: Vec<(String, String)> = calls
        .iter()
        .map(|c| (c.caller.clone(), c.callee.clone()))
        .collect();
    let placed: Layout = layout::layout(&names, &pairs, MARGIN);
    let empty = Measured::default();
    let nodes = placed
        .nodes
        .iter()
        .map(|node| {
            let m = measured.get(&node.name).unwrap_or(&empty);
            let red = &m.total;
            let (left, top) = (node.x - NODE_W / 2.0, node.y - NODE_H / 2.0);
            let what = if m.all_spans { "spans" } else { "requests" };
            MapNode {
                short: short_name(&node.name),
                href: format!("/services/{}?{query}", urlencode(&node.name)),
                colour: format::colour(&node.name),
                x: format!("{left:.1}"),
                y: format!("{top:.1}"),
                text_x: format!("{:.1}", left + 14.0),
                name_y: format!("{:.1}", top + 19.0),
                stats_y: format!("{:.1}", top + 36.0),
                stats: format!(
                    "{} · {} err",
                    chart::rate(red.count as f64 / seconds),
                    chart::error_rate(table::share(red.errors, red.count))
                ),
                health: table::health(red.errors, red.count),
                title: format!(
                    "{}\n{} {what} ({}), {} errors ({})\n{}",
                    node.name,
                    red.count,
                    chart::rate(red.count as f64 / seconds),
                    red.errors,
                    chart::error_rate(table::share(red.errors, red.count)),
                    latency(red)
                ),
                name: node.name.clone(),
            }
        })
        .collect();

    let by_pair: BTreeMap<(&str, &str), &Call> = calls
        .iter()
        .map(|c| ((c.caller.as_str(), c.callee.as_str()), c))
        .collect();
    let busiest = calls.iter().map(|c| c.red.count).max().unwrap_or(1).max(1) as f64;
    let drawn: Vec<(&layout::Route, &Call)> = placed
        .routes
        .iter()
        .filter_map(|route| {
            let (caller, callee) = (&placed.nodes[route.from], &placed.nodes[route.to]);
            by_pair
                .get(&(caller.name.as_str(), callee.name.as_str()))
                .map(|call| (route, *call))
        })
        .collect();
    let mut routes: Vec<Vec<(f64, f64)>> = drawn.iter().map(|(route, _)| ports(route)).collect();
    fan_out(&mut routes, &drawn);

    let mut edges: Vec<MapEdge> = Vec::new();
    // Labels per gap (the layer on its left): where each would sit on its curve.
    let mut gaps: BTreeMap<usize, Vec<(usize, Curve)>> = BTreeMap::new();
    for ((route, call), ports) in drawn.iter().zip(&routes) {
        let (caller, callee) = (&placed.nodes[route.from], &placed.nodes[route.to]);
        // The label sits on the first gap the call crosses, seen from the caller.
        let gap_layer = if route.reversed {
            caller.layer - 1
        } else {
            caller.layer
        };
        gaps.entry(gap_layer)
            .or_default()
            .push((edges.len(), segment(ports[0], ports[1])));
        let red = &call.red;
        let p95 = red
            .histogram
            .quantile(0.95)
            .map_or_else(|| "—".to_owned(), format::duration);
        edges.push(MapEdge {
            caller: caller.name.clone(),
            callee: callee.name.clone(),
            d: curve(ports),
            width: format!("{:.1}", 1.25 + 2.75 * (red.count as f64 / busiest).sqrt()),
            health: table::health(red.errors, red.count),
            reversed: route.reversed,
            title: format!(
                "{} → {}\n{} calls ({}), {} errors ({})\n{}",
                caller.name,
                callee.name,
                red.count,
                chart::rate(red.count as f64 / seconds),
                red.errors,
                chart::error_rate(table::share(red.errors, red.count)),
                latency(red)
            ),
            label_x: String::new(),
            label_y: String::new(),
            text_x: String::new(),
            rate_y: String::new(),
            p95_y: String::new(),
            rate: format!(
                "{} · {}",
                chart::rate(red.count as f64 / seconds),
                chart::error_rate(table::share(red.errors, red.count))
            ),
            p95: format!("p95 {p95}"),
        });
    }
    let mut bottom = 0.0_f64;
    for (layer, labels) in gaps {
        let left = MARGIN + (layer + 1) as f64 * NODE_W + placed.gaps[..layer].iter().sum::<f64>();
        let width = placed.gaps[layer];
        for (edge, (x, y)) in place_labels(left, width, &labels) {
            bottom = bottom.max(y + LABEL_H);
            let e = &mut edges[edge];
            e.label_x = format!("{:.1}", x - LABEL_W / 2.0);
            e.label_y = format!("{y:.1}");
            e.text_x = format!("{x:.1}");
            e.rate_y = format!("{:.1}", y + 12.5);
            e.p95_y = format!("{:.1}", y + 25.0);
        }
    }
    // The topmost service nobody calls.
    let focus = placed
        .nodes
        .iter()
        .filter(|n| n.layer == 0)
        .map(|n| n.y)
        .fold(f64::INFINITY, f64::min);
    let focus = if focus.is_finite() { focus } else { 0.0 };
    let loops = placed
        .loops
        .iter()
        .map(|&i| {
            let node = &placed.nodes[i];
            let (right, top) = (node.x + NODE_W / 2.0, node.y - NODE_H / 2.0);
            format!(
                "M{:.1} {top:.1} C{:.1} {:.1} {:.1} {:.1} {:.1} {:.1}",
                right - 34.0,
                right - 34.0,
                top - 20.0,
                right - 8.0,
                top - 20.0,
                right - 10.0,
                top - 4.0
            )
        })
        .collect();
    ServiceMap {
        nodes,
        edges,
        loops,
        width: format!("{:.0}", placed.width),
        height: format!("{:.0}", placed.height.max(bottom + MARGIN)),
        label_w: LABEL_W,
        label_h: LABEL_H,
        node_w: NODE_W,
        node_h: NODE_H,
        focus_y: format!("{focus:.0}"),
    }
}

/// The ports of a route, left to right as drawn from caller to callee: out of the first
/// box, into and out of each dummy slot, into the last box (an arrowhead short of it).
/// A reversed route runs right to left, a little below its forward twin.
fn ports(route: &layout::Route) -> Vec<(f64, f64)> {
    let offset = if route.reversed { REVERSED_OFFSET } else { 0.0 };
    let mut ports = Vec::new();
    let last = route.points.len() - 1;
    for (i, &(x, y)) in route.points.iter().enumerate() {
        let y = y + offset;
        if i > 0 {
            let inset = if i == last && !route.reversed {
                ARROW
            } else {
                0.0
            };
            ports.push((x - NODE_W / 2.0 - inset, y));
        }
        if i < last {
            let inset = if i == 0 && route.reversed { ARROW } else { 0.0 };
            ports.push((x + NODE_W / 2.0 + inset, y));
        }
    }
    if route.reversed {
        ports.reverse();
    }
    ports
}

/// Spreads the ends of the curves meeting one side of a box over that side, in the order
/// of where they come from, so that they leave and arrive apart instead of in one point.
fn fan_out(routes: &mut [Vec<(f64, f64)>], drawn: &[(&layout::Route, &Call)]) {
    // (node, right side?) → (where the curve comes from, route, first or last port).
    let mut sides: BTreeMap<(usize, bool), Vec<End>> = BTreeMap::new();
    for (i, (route, _)) in drawn.iter().enumerate() {
        let ports = &routes[i];
        let n = ports.len();
        // A forward call leaves its caller's right side and enters the callee's left; a
        // reversed one leaves the caller's left and enters the callee's right.
        sides
            .entry((route.from, !route.reversed))
            .or_default()
            .push(End {
                towards: ports[1].1,
                route: i,
                first: true,
            });
        sides
            .entry((route.to, route.reversed))
            .or_default()
            .push(End {
                towards: ports[n - 2].1,
                route: i,
                first: false,
            });
    }
    for mut ends in sides.into_values() {
        ends.sort_by(|a, b| a.towards.total_cmp(&b.towards).then(a.route.cmp(&b.route)));
        let spread = (NODE_H - 16.0).min(7.0 * (ends.len() as f64 - 1.0));
        let step = if ends.len() > 1 {
            spread / (ends.len() as f64 - 1.0)
        } else {
            0.0
        };
        for (k, end) in ends.into_iter().enumerate() {
            let shift = k as f64 * step - spread / 2.0;
            let ports = &mut routes[end.route];
            let end = if end.first { 0 } else { ports.len() - 1 };
            ports[end].1 += shift;
        }
    }
}

/// The first gap's curve of a call as Bézier control points.
fn segment(a: (f64, f64), b: (f64, f64)) -> Curve {
    let mid = (b.0 - a.0) / 2.0;
    [a, (a.0 + mid, a.1), (b.0 - mid, b.1), b]
}

/// The point of a Bézier curve at `t`.
fn bezier(c: &Curve, t: f64) -> (f64, f64) {
    let u = 1.0 - t;
    let (a, b, cc, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
    (
        a * c[0].0 + b * c[1].0 + cc * c[2].0 + d * c[3].0,
        a * c[0].1 + b * c[1].1 + cc * c[2].1 + d * c[3].1,
    )
}

/// Where a curve crosses `x` (it runs monotonically across its gap, either way).
fn y_at(c: &Curve, x: f64) -> f64 {
    let (mut low, mut high) = (0.0, 1.0);
    let rising = c[3].0 >= c[0].0;
    for _ in 0..32 {
        let t = (low + high) / 2.0;
        if (bezier(c, t).0 < x) == rising {
            low = t;
        } else {
            high = t;
        }
    }
    bezier(c, (low + high) / 2.0).1
}

/// Places the labels of one gap (`left` and `width`): each centred on its curve, in the
/// gap's middle or, in a wide gap, in whichever of two columns keeps it nearer its
/// curve; labels of a column never overlap (later ones move down). Returns each
/// label's centre x and top.
fn place_labels(left: f64, width: f64, labels: &[(usize, Curve)]) -> Vec<(usize, (f64, f64))> {
    let columns: Vec<f64> = if width >= 2.0 * LABEL_W + 8.0 {
        vec![
            left + width / 2.0 - LABEL_W / 2.0 - 3.0,
            left + width / 2.0 + LABEL_W / 2.0 + 3.0,
        ]
    } else {
        vec![left + width / 2.0]
    };
    let mut order: Vec<(f64, usize, &Curve)> = labels
        .iter()
        .map(|(edge, curve)| (y_at(curve, left + width / 2.0), *edge, curve))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut floors = vec![f64::NEG_INFINITY; columns.len()];
    order
        .into_iter()
        .map(|(_, edge, curve)| {
            let (column, top) = columns
                .iter()
                .enumerate()
                .map(|(k, &x)| {
                    let wanted = y_at(curve, x) - LABEL_H / 2.0;
                    (k, wanted.max(floors[k]).max(2.0), wanted)
                })
                .min_by(|a, b| (a.1 - a.2).total_cmp(&(b.1 - b.2)).then(a.0.cmp(&b.0)))
                .map(|(k, top, _)| (k, top))
                .unwrap_or((0, 2.0));
            floors[column] = top + LABEL_H + 3.0;
            (edge, (columns[column], top))
        })
        .collect()
}

/// A path segment for a service name.
pub fn urlencode(name: &str) -> String {
    form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_storage::clickhouse::DurationHistogram;

    fn call(caller: &str, callee: &str, count: u64, errors: u64, ms: u64) -> Call {
        let mut histogram = DurationHistogram::default();
        for _ in 0..count {
            histogram.record(ms * 1_000_000);
        }
        let mut red = Red::default();
        red.add(
            count,
            errors,
            count * ms * 1_000_000,
            &histogram.to_sparse(),
        );
        Call {
            caller: caller.into(),
            callee: callee.into(),
            red,
        }
    }

    #[test]
    fn calls_are_labelled_without_overlapping_in_their_gap() {
        let calls = vec![
            call("frontend", "cart", 120, 0, 12),
            call("frontend", "checkout", 60, 6, 180),
            call("frontend", "search", 600, 1, 40),
            call("checkout", "payment", 60, 3, 95),
        ];
        let measured: BTreeMap<String, Measured> =
            ["cart", "checkout", "frontend", "payment", "search"]
                .iter()
                .map(|n| (n.to_string(), Measured::default()))
                .collect();
        let map = draw(&measured, &calls, 60.0, "lookback=1h");
        assert_eq!(map.nodes.len(), 5);
        assert_eq!(map.edges.len(), 4);
        let checkout = map.edges.iter().find(|e| e.callee == "checkout").unwrap();
        assert_eq!(checkout.rate, "1/s · 10%");
        assert_eq!(checkout.p95, "p95 180ms");
        assert_eq!(checkout.health, "err");
        assert!(
            checkout
                .title
                .starts_with("frontend → checkout\n60 calls (1/s), 6 errors (10%)")
        );
        let mut tops: Vec<f64> = map
            .edges
            .iter()
            .filter(|e| e.caller == "frontend")
            .map(|e| e.label_y.parse().unwrap())
            .collect();
        tops.sort_by(f64::total_cmp);
        assert!(tops.windows(2).all(|p| p[1] - p[0] >= LABEL_H), "{tops:?}");
        assert!(
            map.nodes
                .iter()
                .all(|n| n.href.starts_with("/services/") && n.href.ends_with("?lookback=1h"))
        );
        assert!(checkout.d.starts_with("M") && checkout.d.contains(" C"));
    }

    #[test]
    fn long_names_are_cut_to_fit_their_box() {
        assert_eq!(short_name("checkout"), "checkout");
        let long = short_name("recommendation-engine-v2-canary");
        assert_eq!(long.chars().count(), NAME_CHARS);
        assert!(long.ends_with('…'));
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
