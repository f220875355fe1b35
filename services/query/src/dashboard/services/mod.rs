//! The services pages of the trace explorer: every service with its RED metrics
//! (`/services`), one service with its operations and charts over time
//! (`/services/{service}`), and the service map (`/map`). They read only the metrics the
//! sampler computes from every span before sampling (`span_metrics`, `service_edges`),
//! through the signed-in organisation's tenant scope and the API's reads, so a page and
//! the JSON API never disagree about a number.
//!
//! The time range is the search page's (`traces::range`), shown in a shared header; charts
//! are SVG drawn on the server ([`chart`]), the map's layout too ([`layout`]).

mod chart;
mod layout;
mod map;
mod table;

use super::DashboardState;
use super::error::DashboardError;
use super::extract::SignedIn;
use super::render::{Layout, render};
use super::traces::range::{self, TimeRange};
use super::traces::{format, refusal, with_timing};
use crate::params::{self, MetricsEndpoint, MetricsQuery};
use crate::view::{Red, empty_steps};
use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chart::{Chart, Timeline};
use map::{Call, ServiceMap};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use table::{Measured, RedRow, Sort};
use weft_storage::clickhouse::{ClickHouseError, MetricsWindow, RedSeries};

/// How far back an empty page looks for any metrics, to tell a new organisation (how to
/// send data) from a quiet time range.
const EMPTY_STATE_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/services", get(services_page))
        .route("/services/{service}", get(service_page))
        .route("/map", get(map_page))
}

/// The header every services page shares: the time range as a form, and the window
/// it means in words.
pub struct RangeHeader {
    pub range: TimeRange,
    pub lookbacks: [(&'static str, &'static str); 5],
    /// Where the form goes, and what else of the page's query it keeps (the sort).
    pub action: String,
    pub keep: Vec<(&'static str, String)>,
    pub window: String,
}

/// What a services page's URL asks for: the range, and the table's sort.
struct PageQuery {
    range: TimeRange,
    sort: Sort,
    /// `sort` and `dir` as given, to keep them across a change of range.
    sort_pairs: Vec<(&'static str, String)>,
}

impl PageQuery {
    /// Reads the query string; unknown parameters are ignored, as forms send them.
    fn parse(query: Option<&str>) -> PageQuery {
        let (mut range, mut sort, mut dir) = (TimeRange::default(), String::new(), String::new());
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim();
            if range.take(&key, value) {
                continue;
            }
            match key.as_ref() {
                "sort" => sort = value.to_owned(),
                "dir" => dir = value.to_owned(),
                _ => {}
            }
        }
        range.settle();
        let sort_pairs = [("sort", sort.clone()), ("dir", dir.clone())]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        PageQuery {
            range,
            sort: Sort::parse(&sort, &dir),
            sort_pairs,
        }
    }

    /// The window and series step, parsed by the API's parser, or why not in a
    /// sentence naming the field.
    fn metrics(&self) -> Result<MetricsQuery, String> {
        let mut api = form_urlencoded::Serializer::new(String::new());
        for (key, value) in self.range.api_pairs() {
            api.append_pair(key, &value);
        }
        params::metrics(Some(&api.finish()), MetricsEndpoint::Series)
            .map_err(|error| range::sentence(&error.message))
    }

    fn header(&self, action: String, metrics: Option<&MetricsQuery>) -> RangeHeader {
        RangeHeader {
            range: self.range.clone(),
            lookbacks: range::LOOKBACKS,
            action,
            keep: self.sort_pairs.clone(),
            window: metrics.map_or_else(String::new, |q| {
                range::describe(q.window.start_unix_nano, q.window.end_unix_nano)
            }),
        }
    }

    /// The query string of this page sorted by `column` (the other way if it already is).
    fn sorted_by(&self, column: &str) -> String {
        let (column, dir) = self.sort.toggled(column);
        format!("{}&sort={column}&dir={dir}", self.range.query())
    }
}

/// Whether the organisation has any metrics in the last days, for the empty state. A
/// failure answers yes, which shows the milder "nothing in this range".
async fn has_recent_data(store: &weft_storage::clickhouse::TenantTraces<'_>) -> bool {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    let window = MetricsWindow {
        start_unix_nano: now.saturating_sub(EMPTY_STATE_LOOKBACK.as_nanos() as u64),
        end_unix_nano: now,
    };
    match store.service_red(window).await {
        Ok(rows) => !rows.is_empty(),
        Err(error) => {
            tracing::warn!(%error, "could not tell whether the organisation has metrics");
            true
        }
    }
}

/// The error a page shows instead of its content: a status and a sentence.
struct Failure {
    status: StatusCode,
    message: String,
}

fn failure(error: ClickHouseError) -> Result<Failure, DashboardError> {
    refusal(error).map(|(status, message)| Failure { status, message })
}

#[derive(Template)]
#[template(path = "services.html")]
struct ServicesPage {
    layout: Layout,
    header: RangeHeader,
    error: Option<String>,
    rows: Vec<RedRow>,
    has_data: bool,
    sort: Sort,
    /// The header links, by column.
    sort_links: BTreeMap<&'static str, String>,
    range_query: String,
}

impl ServicesPage {
    fn sort_link(&self, column: &str) -> &str {
        self.sort_links.get(column).map_or("", String::as_str)
    }

    fn aria_sort(&self, column: &str) -> &'static str {
        match (self.sort.column == column, self.sort.ascending) {
            (false, _) => "none",
            (true, true) => "ascending",
            (true, false) => "descending",
        }
    }
}

fn sort_links(query: &PageQuery) -> BTreeMap<&'static str, String> {
    table::SORTS
        .iter()
        .map(|(column, _)| (*column, query.sorted_by(column)))
        .collect()
}

async fn services_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let page_query = PageQuery::parse(query.as_deref());
    let read = Instant::now();
    let metrics = page_query.metrics();
    let mut page = ServicesPage {
        layout: user.layout(&state),
        header: page_query.header("/services".to_owned(), metrics.as_ref().ok()),
        error: None,
        rows: Vec::new(),
        has_data: true,
        sort: page_query.sort.clone(),
        sort_links: sort_links(&page_query),
        range_query: page_query.range.query(),
    };
    let metrics = match metrics {
        Ok(metrics) => metrics,
        Err(message) => {
            page.error = Some(message);
            return Ok(render(StatusCode::BAD_REQUEST, &page));
        }
    };
    let store = state.store.tenant(user.tenant);
    let (red, series) = tokio::join!(
        store.service_red(metrics.window),
        store.services_series(metrics.step_seconds, metrics.window)
    );
    let (red, series) = match (red, series) {
        (Ok(red), Ok(series)) => (red, series),
        (Err(error), _) | (_, Err(error)) => {
            let Failure { status, message } = failure(error)?;
            page.error = Some(message);
            return Ok(render(status, &page));
        }
    };
    let measured = table::measure_services(&red, &series, metrics.window, metrics.step_seconds);
    let range_query = &page.range_query;
    page.rows = measured
        .iter()
        .map(|(name, m)| {
            let href = format!("/services/{}?{range_query}", map::urlencode(name));
            table::row(name, "", href, m, metrics.seconds(), metrics.step_seconds)
        })
        .collect();
    page.sort.apply(&mut page.rows);
    if page.rows.is_empty() {
        page.has_data = has_recent_data(&store).await;
    }
    let store_time = read.elapsed();
    let rendering = Instant::now();
    let response = render(StatusCode::OK, &page);
    Ok(with_timing(response, store_time, rendering.elapsed()))
}

/// A neighbour of a service on the map: who calls it, or whom it calls.
struct Neighbour {
    name: String,
    href: String,
    colour: u64,
    rate: String,
    error_rate: String,
    health: &'static str,
    p95: String,
}

fn neighbour(name: &str, red: &Red, seconds: f64, range_query: &str) -> Neighbour {
    Neighbour {
        name: name.to_owned(),
        href: format!("/services/{}?{range_query}", map::urlencode(name)),
        colour: format::colour(name),
        rate: chart::rate(red.count as f64 / seconds),
        error_rate: chart::error_rate(table::share(red.errors, red.count)),
        health: table::health(red.errors, red.count),
        p95: red
            .histogram
            .quantile(0.95)
            .map_or_else(|| "—".to_owned(), format::duration),
    }
}

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage {
    layout: Layout,
    header: RangeHeader,
    service: String,
    colour: u64,
    error: Option<String>,
    /// Whether the service has metrics in the window; otherwise the page says what to do.
    found: bool,
    summary: Option<RedRow>,
    operations: Vec<RedRow>,
    latency: Option<Chart>,
    throughput: Option<Chart>,
    callers: Vec<Neighbour>,
    callees: Vec<Neighbour>,
    /// Links into the search: the slowest traces, the latest failing ones, all of them.
    slowest: String,
    failing: String,
    traces: String,
    range_query: String,
    step: String,
    sort: Sort,
    sort_links: BTreeMap<&'static str, String>,
}

impl ServicePage {
    /// The service's name as a path segment.
    fn path_name(&self) -> String {
        map::urlencode(&self.service)
    }

    fn sort_link(&self, column: &str) -> &str {
        self.sort_links.get(column).map_or("", String::as_str)
    }

    fn aria_sort(&self, column: &str) -> &'static str {
        match (self.sort.column == column, self.sort.ascending) {
            (false, _) => "none",
            (true, true) => "ascending",
            (true, false) => "descending",
        }
    }
}

async fn service_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let page_query = PageQuery::parse(query.as_deref());
    let read = Instant::now();
    let metrics = page_query.metrics();
    let range_query = page_query.range.query();
    let search = |extra: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("service", &service);
        format!("/traces?{}{extra}&{range_query}", q.finish())
    };
    let path = format!("/services/{}", map::urlencode(&service));
    let mut page = ServicePage {
        layout: user.layout(&state),
        header: page_query.header(path, metrics.as_ref().ok()),
        colour: format::colour(&service),
        error: None,
        found: true,
        summary: None,
        operations: Vec::new(),
        latency: None,
        throughput: None,
        callers: Vec::new(),
        callees: Vec::new(),
        slowest: search("&sort=longest"),
        failing: search("&error=true"),
        traces: search(""),
        range_query: range_query.clone(),
        step: String::new(),
        sort: page_query.sort.clone(),
        sort_links: sort_links(&page_query),
        service,
    };
    let metrics = match metrics {
        Ok(metrics) => metrics,
        Err(message) => {
            page.error = Some(message);
            return Ok(render(StatusCode::BAD_REQUEST, &page));
        }
    };
    let store = state.store.tenant(user.tenant);
    let series = RedSeries {
        service: page.service.clone(),
        operation: None,
        step_seconds: metrics.step_seconds,
    };
    // Two reads at a time: a page takes no more of the organisation's scan slots than
    // the search page does, so a second tab still loads.
    let (operations, points) = tokio::join!(
        store.operation_red(&page.service, metrics.window),
        store.service_series(&series, metrics.window),
    );
    let fetched = match (operations, points) {
        (Ok(operations), Ok(_)) if operations.is_empty() => {
            page.found = false;
            return Ok(render(StatusCode::NOT_FOUND, &page));
        }
        (Ok(operations), Ok(points)) => {
            let (operation_points, edges) = tokio::join!(
                store.operations_series(&page.service, metrics.step_seconds, metrics.window),
                store.service_edges(metrics.window),
            );
            operation_points.and_then(|o| Ok((operations, points, o, edges?)))
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    let (operations, points, operation_points, edges) = match fetched {
        Ok(fetched) => fetched,
        Err(error) => {
            let Failure { status, message } = failure(error)?;
            page.error = Some(message);
            return Ok(render(status, &page));
        }
    };
    let seconds = metrics.seconds();
    let step = metrics.step_seconds;
    page.step = chart::step_label(step);

    // The service as a whole: the operations of the kinds that count as its requests.
    let (kinds, all_spans) = table::request_kinds(operations.iter().map(|o| o.kind));
    let mut whole = Measured {
        steps: empty_steps(metrics.window, step),
        all_spans,
        ..Measured::default()
    };
    for row in operations.iter().filter(|o| kinds.contains(&o.kind)) {
        whole
            .total
            .add(row.spans, row.errors, row.duration_sum_ns, &row.histogram);
    }
    for point in points.iter().filter(|p| kinds.contains(&p.kind)) {
        whole
            .steps
            .entry(u64::from(point.step_start))
            .or_default()
            .add(
                point.spans,
                point.errors,
                point.duration_sum_ns,
                &point.histogram,
            );
    }
    let steps: Vec<chart::StepStats> = whole
        .steps
        .iter()
        .map(|(start, red)| table::step_stats(*start, red))
        .collect();
    let timeline = Timeline {
        steps: &steps,
        step_ns: u64::from(step) * 1_000_000_000,
    };
    page.latency = Some(chart::latency(&timeline));
    page.throughput = Some(chart::throughput(&timeline));
    page.summary = Some(table::row(
        &page.service,
        "",
        String::new(),
        &whole,
        seconds,
        step,
    ));

    let measured = table::measure_operations(&operations, &operation_points, metrics.window, step);
    page.operations = measured
        .iter()
        .map(|((name, kind), m)| {
            let kind = weft_model::SpanKind::from_otlp(i32::from(*kind)).as_str();
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("service", &page.service);
            q.append_pair("operation", name);
            let href = format!("/traces?{}&sort=longest&{range_query}", q.finish());
            table::row(name, kind, href, m, seconds, step)
        })
        .collect();
    page.sort.apply(&mut page.operations);

    for edge in &edges {
        let mut red = Red::default();
        red.add(
            edge.calls,
            edge.errors,
            edge.duration_sum_ns,
            &edge.histogram,
        );
        if edge.callee_service == page.service && edge.caller_service != page.service {
            page.callers
                .push(neighbour(&edge.caller_service, &red, seconds, &range_query));
        }
        if edge.caller_service == page.service {
            page.callees
                .push(neighbour(&edge.callee_service, &red, seconds, &range_query));
        }
    }
    let store_time = read.elapsed();
    let rendering = Instant::now();
    let response = render(StatusCode::OK, &page);
    Ok(with_timing(response, store_time, rendering.elapsed()))
}

/// A call of the edges table below the map.
struct CallRow {
    caller: Neighbour,
    callee: Neighbour,
    calls: u64,
    rate: String,
    error_rate: String,
    health: &'static str,
    p50: String,
    p95: String,
    p99: String,
}

#[derive(Template)]
#[template(path = "service_map.html")]
struct MapPage {
    layout: Layout,
    header: RangeHeader,
    error: Option<String>,
    map: Option<ServiceMap>,
    calls: Vec<CallRow>,
    services: usize,
    has_data: bool,
}

async fn map_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let page_query = PageQuery::parse(query.as_deref());
    let read = Instant::now();
    let metrics = page_query.metrics();
    let mut page = MapPage {
        layout: user.layout(&state),
        header: page_query.header("/map".to_owned(), metrics.as_ref().ok()),
        error: None,
        map: None,
        calls: Vec::new(),
        services: 0,
        has_data: true,
    };
    let metrics = match metrics {
        Ok(metrics) => metrics,
        Err(message) => {
            page.error = Some(message);
            return Ok(render(StatusCode::BAD_REQUEST, &page));
        }
    };
    let store = state.store.tenant(user.tenant);
    let (red, edges) = tokio::join!(
        store.service_red(metrics.window),
        store.service_edges(metrics.window)
    );
    let (red, edges) = match (red, edges) {
        (Ok(red), Ok(edges)) => (red, edges),
        (Err(error), _) | (_, Err(error)) => {
            let Failure { status, message } = failure(error)?;
            page.error = Some(message);
            return Ok(render(status, &page));
        }
    };
    let seconds = metrics.seconds();
    let range_query = page_query.range.query();
    let measured = table::measure_services(&red, &[], metrics.window, metrics.step_seconds);
    let calls: Vec<Call> = edges
        .iter()
        .map(|edge| {
            let mut red = Red::default();
            red.add(
                edge.calls,
                edge.errors,
                edge.duration_sum_ns,
                &edge.histogram,
            );
            Call {
                caller: edge.caller_service.clone(),
                callee: edge.callee_service.clone(),
                red,
            }
        })
        .collect();
    page.services = measured.len();
    page.calls = calls
        .iter()
        .map(|call| {
            let red = &call.red;
            let latency = |q: f64| {
                red.histogram
                    .quantile(q)
                    .map_or_else(|| "—".to_owned(), format::duration)
            };
            CallRow {
                caller: neighbour(&call.caller, red, seconds, &range_query),
                callee: neighbour(&call.callee, red, seconds, &range_query),
                calls: red.count,
                rate: chart::rate(red.count as f64 / seconds),
                error_rate: chart::error_rate(table::share(red.errors, red.count)),
                health: table::health(red.errors, red.count),
                p50: latency(0.5),
                p95: latency(0.95),
                p99: latency(0.99),
            }
        })
        .collect();
    if measured.is_empty() && calls.is_empty() {
        page.has_data = has_recent_data(&store).await;
    } else {
        page.map = Some(map::draw(&measured, &calls, seconds, &range_query));
    }
    let store_time = read.elapsed();
    let rendering = Instant::now();
    let response = render(StatusCode::OK, &page);
    Ok(with_timing(response, store_time, rendering.elapsed()))
}
