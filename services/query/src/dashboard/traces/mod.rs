//! The trace explorer: the search page (filters in the URL, a duration scatter and the
//! results table), the trace page (header, waterfall, span details) and the trace's
//! download as OTLP JSON. Everything is read through the signed-in organisation's
//! [`TenantTraces`](weft_storage::clickhouse::TenantTraces), so another organisation's
//! trace id is the same 404 as an unknown one.
//!
//! Pages are complete without JavaScript; `explorer.js` adds brushing, collapsing,
//! keyboard navigation, the selection panel and find-in-trace.

mod compare;
mod critical_path;
mod difference;
pub(super) mod format;
mod otlp;
pub(super) mod range;
mod search;
mod waterfall;

use super::DashboardState;
use super::error::DashboardError;
use super::extract::SignedIn;
use super::render::{Layout, error_page, render};
use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use search::{Request, ResultRow, Scatter, SearchForm};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waterfall::Waterfall;
use weft_model::TraceId;
use weft_storage::clickhouse::{ClickHouseError, TenantTraces, TraceSearch, TraceSummary};

/// How far back an empty result looks for any data, to tell a new organisation (how to
/// send data) from a search that matched nothing.
const EMPTY_STATE_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);
/// The window of the form's lists when the search itself cannot run.
const FALLBACK_LOOKBACK: Duration = Duration::from_secs(3600);

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/traces", get(search_page))
        .route("/traces/difference", get(difference_page))
        .route("/traces/compare", get(compare_page))
        .route("/traces/{trace_id}", get(trace_page))
        .route("/traces/{trace_id}/download", get(download))
        .route("/static/explorer.css", get(stylesheet))
        .route("/static/explorer.js", get(script))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../../../../frontend/static/explorer.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../../../../frontend/static/explorer.js"),
    )
}

/// `Server-Timing` for the browser's network panel and for the tests that measure
/// render time: milliseconds spent reading the store and rendering the page.
pub(super) fn with_timing(mut response: Response, store: Duration, render: Duration) -> Response {
    let value = format!(
        "store;dur={:.1}, render;dur={:.1}",
        store.as_secs_f64() * 1e3,
        render.as_secs_f64() * 1e3
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

#[derive(Template)]
#[template(path = "traces.html")]
struct SearchPage {
    layout: Layout,
    form: SearchForm,
    lookbacks: [(&'static str, &'static str); 5],
    limits: [u32; 6],
    kinds: [(&'static str, &'static str); 6],
    sorts: [(&'static str, &'static str); 3],
    services: Vec<String>,
    operations: Vec<String>,
    /// Why the search could not run, in a sentence.
    error: Option<String>,
    rows: Vec<ResultRow>,
    scatter: Option<Scatter>,
    /// Whether the organisation has sent any spans lately (otherwise: how to start).
    has_data: bool,
    window: String,
    sort_newest: String,
    sort_longest: String,
    sort_errors: String,
    /// The query of the next page, when there is one, and of the first page on a later one.
    next_page: Option<String>,
    first_page: Option<String>,
    /// The search's query without paging, for "what is different" links.
    base_query: String,
    /// The duration where "the slow ones" start, from the results.
    slow_threshold: Option<String>,
}

impl SearchPage {
    fn service_listed(&self) -> bool {
        self.form.service.is_empty() || self.services.contains(&self.form.service)
    }

    fn longest_first(&self) -> bool {
        self.form.sort == "longest"
    }

    fn most_errors_first(&self) -> bool {
        self.form.sort == "errors"
    }

    fn newest_first(&self) -> bool {
        !self.longest_first() && !self.most_errors_first()
    }
}

/// The service and operation lists of the form. They only help to fill it in, so a
/// failure leaves them empty rather than failing the page.
async fn suggestions(
    store: &TenantTraces<'_>,
    service: &str,
    since: u64,
) -> (Option<Vec<String>>, Vec<String>) {
    let services = match store.services(since).await {
        Ok(services) => services,
        Err(error) => {
            tracing::warn!(%error, "could not list services for the search form");
            return (None, Vec::new());
        }
    };
    if service.is_empty() {
        return (Some(services), Vec::new());
    }
    let operations = match store.operations(service, since).await {
        Ok(operations) => operations.into_iter().map(|o| o.name).collect(),
        Err(error) => {
            tracing::warn!(%error, "could not list operations for the search form");
            Vec::new()
        }
    };
    let mut names: Vec<String> = operations;
    names.dedup();
    (Some(services), names)
}

/// A read the asker can do something about, as the page says it: too expensive (400) or
/// too many at once (429). Anything else is the store's failure, the 503 page.
pub(super) fn refusal(error: ClickHouseError) -> Result<(StatusCode, String), DashboardError> {
    if error.is_over_limit() {
        tracing::info!(%error, "search stopped by its limits");
        return Ok((
            StatusCode::BAD_REQUEST,
            "This search is too expensive to answer. Narrow the time range or use fewer filters."
                .to_owned(),
        ));
    }
    if let ClickHouseError::TenantBusy(_) = error {
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            "Your organisation is running several searches at once. Try again in a second."
                .to_owned(),
        ));
    }
    Err(error.into())
}

async fn search_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let (form, search) = match search::parse(query.as_deref()) {
        (_, Request::Jump(trace_id)) => {
            return Ok(Redirect::to(&format!("/traces/{trace_id}")).into_response());
        }
        (form, Request::Search(search)) => (form, Ok(*search)),
        (form, Request::Invalid(message)) => (form, Err(message)),
    };
    let store = state.store.tenant(user.tenant);
    let read = Instant::now();
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    let ago = |lookback: Duration| now.saturating_sub(lookback.as_nanos() as u64);
    // The lists cover the searched window (from its start until now), so they cost no
    // more than the search and name what it can find.
    let since = search
        .as_ref()
        .map_or(ago(FALLBACK_LOOKBACK), |s: &TraceSearch| s.start_unix_nano);
    let ((services, operations), found) = match &search {
        Ok(search) => {
            let (lists, found) = tokio::join!(
                suggestions(&store, &form.service, since),
                crate::api::search_page(&store, search)
            );
            (lists, Some(found))
        }
        Err(_) => (suggestions(&store, &form.service, since).await, None),
    };
    let (mut status, mut error) = (StatusCode::OK, search.as_ref().err().cloned());
    if error.is_some() {
        status = StatusCode::BAD_REQUEST;
    }
    let (traces, next_cursor) = match found {
        Some(Ok(page)) => page,
        Some(Err(failure)) => {
            let (refused, message) = refusal(failure)?;
            (status, error) = (refused, Some(message));
            (Vec::new(), None)
        }
        None => (Vec::new(), None),
    };
    let quiet_window = services.as_ref().is_some_and(Vec::is_empty);
    let has_data = if traces.is_empty() && quiet_window && since > ago(EMPTY_STATE_LOOKBACK) {
        match store.services(ago(EMPTY_STATE_LOOKBACK)).await {
            Ok(services) => !services.is_empty(),
            Err(error) => {
                tracing::warn!(%error, "could not tell whether the organisation has data");
                true
            }
        }
    } else {
        !quiet_window || !traces.is_empty()
    };
    let store_time = read.elapsed();
    let scatter = match &search {
        Ok(search) if !traces.is_empty() => Some(search::scatter(search, &traces)),
        _ => None,
    };
    let window = search
        .as_ref()
        .map(|s| range::describe(s.start_unix_nano, s.end_unix_nano))
        .unwrap_or_default();
    let next_page = next_cursor.map(|cursor| search::with(query.as_deref(), "cursor", &cursor));
    let first_page = form
        .paged
        .then(|| search::without(query.as_deref(), &["cursor"]).finish());
    let page = SearchPage {
        layout: user.layout(&state),
        lookbacks: range::LOOKBACKS,
        limits: search::LIMITS,
        kinds: search::KINDS,
        sorts: search::SORTS,
        next_page,
        first_page,
        base_query: search::without(query.as_deref(), &["cursor", "q"]).finish(),
        slow_threshold: search::slow_threshold(&traces),
        services: services.unwrap_or_default(),
        operations,
        error,
        rows: search::rows(&traces),
        scatter,
        has_data,
        window,
        sort_newest: search::with(query.as_deref(), "sort", "newest"),
        sort_longest: search::with(query.as_deref(), "sort", "longest"),
        sort_errors: search::with(query.as_deref(), "sort", "errors"),
        form,
    };
    let rendering = Instant::now();
    let response = render(status, &page);
    Ok(with_timing(response, store_time, rendering.elapsed()))
}

#[derive(Template)]
#[template(path = "traces_difference.html")]
struct DifferencePage {
    layout: Layout,
    /// The selection in words, once it is understood.
    about: Option<String>,
    form: difference::SelectionForm,
    /// The search's parameters, carried by the selection form.
    hidden: Vec<(String, String)>,
    search_query: String,
    window: String,
    error: Option<String>,
    selected: u64,
    baseline: u64,
    /// The traces of each group read, fewer than the group when it was sampled.
    sampled_selected: u64,
    sampled_baseline: u64,
    rows: Vec<difference::Row>,
    high_cardinality: Vec<String>,
}

async fn difference_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let (form, search_query, asked) = difference::parse(query.as_deref());
    let hidden = form_urlencoded::parse(search_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut page = DifferencePage {
        layout: user.layout(&state),
        about: None,
        form,
        hidden,
        search_query,
        window: String::new(),
        error: None,
        selected: 0,
        baseline: 0,
        sampled_selected: 0,
        sampled_baseline: 0,
        rows: Vec::new(),
        high_cardinality: Vec::new(),
    };
    let asked = match asked {
        Ok(asked) => asked,
        Err(message) => {
            page.error = Some(message);
            return Ok(render(StatusCode::BAD_REQUEST, &page));
        }
    };
    page.about = Some(difference::describe(&asked.selection));
    page.window = range::describe(asked.search.start_unix_nano, asked.search.end_unix_nano);
    let read = Instant::now();
    let store = state.store.tenant(user.tenant);
    let status = match crate::difference::read(&store, &asked.search, &asked.selection).await {
        Ok(answer) => {
            page.selected = answer.selected_traces;
            page.baseline = answer.baseline_traces;
            page.sampled_selected = answer.sampled_selected_traces;
            page.sampled_baseline = answer.sampled_baseline_traces;
            page.rows = difference::rows(&answer, &asked.search_query);
            page.high_cardinality = answer.high_cardinality_keys;
            StatusCode::OK
        }
        Err(failure) => {
            let (status, message) = refusal(failure)?;
            page.error = Some(message);
            status
        }
    };
    let store_time = read.elapsed();
    let rendering = Instant::now();
    let response = render(status, &page);
    Ok(with_timing(response, store_time, rendering.elapsed()))
}

/// How far from the chosen trace the comparison page looks for traces of the same
/// operation to compare it with, and how many it lists.
const CANDIDATE_WINDOW: Duration = Duration::from_secs(3600);
const CANDIDATES: u32 = 20;

#[derive(Template)]
#[template(path = "traces_compare.html")]
struct ComparePage {
    layout: Layout,
    /// The ids in the form, as given.
    a_input: String,
    b_input: String,
    error: Option<String>,
    a: Option<compare::TraceHead>,
    b: Option<compare::TraceHead>,
    rows: Vec<compare::Row>,
    counts: Option<crate::compare::Counts>,
    /// Nodes in the whole tree, more than the rows when the page shows only the first.
    nodes: usize,
    /// With only A chosen: traces of the same operation around it, to pick B from.
    candidates: Vec<ResultRow>,
}

impl ComparePage {
    fn compared(&self) -> bool {
        self.a.is_some() && self.b.is_some()
    }

    /// Both traces' headers, with their class and letter.
    fn sides(&self) -> Vec<(&'static str, &'static str, &compare::TraceHead)> {
        [("a", "A", &self.a), ("b", "B", &self.b)]
            .into_iter()
            .filter_map(|(class, name, head)| Some((class, name, head.as_ref()?)))
            .collect()
    }
}

/// Traces of the same root operation as `trace`, within [`CANDIDATE_WINDOW`] of it,
/// longest first (the ones most worth comparing), itself left out. They only help to
/// pick, so a failure lists none.
async fn candidates(store: &TenantTraces<'_>, trace: &TraceSummary) -> Vec<TraceSummary> {
    let window = CANDIDATE_WINDOW.as_nanos() as u64;
    let search = TraceSearch {
        start_unix_nano: trace.start_time_unix_nano.saturating_sub(window),
        end_unix_nano: trace.start_time_unix_nano.saturating_add(window),
        service: (!trace.root_service.is_empty()).then(|| trace.root_service.clone()),
        operation: (!trace.root_name.is_empty()).then(|| trace.root_name.clone()),
        limit: CANDIDATES + 1,
        sort: weft_storage::clickhouse::TraceSort::Longest,
        ..TraceSearch::default()
    };
    match store.search(&search).await {
        Ok(mut traces) => {
            traces.retain(|t| t.trace_id != trace.trace_id);
            traces.truncate(CANDIDATES as usize);
            traces
        }
        Err(error) => {
            tracing::warn!(%error, "could not list traces to compare with");
            Vec::new()
        }
    }
}

async fn compare_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let given = |name: &str| {
        form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.chars().take(80).collect::<String>())
            .unwrap_or_default()
    };
    let mut page = ComparePage {
        layout: user.layout(&state),
        a_input: given("a"),
        b_input: given("b"),
        error: None,
        a: None,
        b: None,
        rows: Vec::new(),
        counts: None,
        nodes: 0,
        candidates: Vec::new(),
    };
    let (a, b) = match crate::compare::ids(query.as_deref()) {
        // Two traces selected in a search: the page's own address.
        Ok((Some(a), Some(b))) if page.a_input.is_empty() => {
            return Ok(Redirect::to(&format!("/traces/compare?a={a}&b={b}")).into_response());
        }
        Ok(ids) => ids,
        Err(message) => {
            page.error = Some(format!("{}{}.", message[..1].to_uppercase(), &message[1..]));
            return Ok(render(StatusCode::BAD_REQUEST, &page));
        }
    };
    let store = state.store.tenant(user.tenant);
    let read = Instant::now();
    let missing = |page: &mut ComparePage, trace_id: TraceId| {
        page.error = Some(format!(
            "This organisation has no trace {trace_id}. It may not have arrived yet, it may be older than the retention period, or it may belong to another organisation."
        ));
        StatusCode::NOT_FOUND
    };
    let status = match (a, b) {
        (Some(a), Some(b)) => match crate::compare::read(&store, a, b).await? {
            crate::compare::Read::Found(comparison) => {
                page.a = Some(compare::TraceHead::new(&comparison.a));
                page.b = Some(compare::TraceHead::new(&comparison.b));
                page.rows = compare::rows(&comparison, compare::PAGE_NODES);
                page.nodes = comparison.nodes.len();
                page.counts = Some(compare::counts(&comparison));
                StatusCode::OK
            }
            crate::compare::Read::Missing(trace_id) => missing(&mut page, trace_id),
        },
        (Some(one), None) | (None, Some(one)) => match store.trace_summary(one).await? {
            Some(summary) => {
                page.candidates = search::rows(&candidates(&store, &summary).await);
                page.a = Some(compare::TraceHead::new(&summary));
                page.a_input = hex::encode(summary.trace_id);
                page.b_input.clear();
                StatusCode::OK
            }
            None => missing(&mut page, one),
        },
        (None, None) => StatusCode::OK,
    };
    let store_time = read.elapsed();
    let rendering = Instant::now();
    let response = render(status, &page);
    Ok(with_timing(response, store_time, rendering.elapsed()))
}

#[derive(Template)]
#[template(path = "trace.html")]
struct TracePage {
    layout: Layout,
    trace: Waterfall,
    logs: super::logs::TraceLogs,
}

#[derive(Template)]
#[template(path = "trace_missing.html")]
struct MissingPage<'a> {
    layout: Layout,
    title: &'a str,
    message: String,
}

/// The trace id of a path, or the page that says why there is none: 400 for text that is
/// not a trace id.
fn trace_id(state: &DashboardState, user: &SignedIn, text: &str) -> Result<TraceId, Box<Response>> {
    text.parse().map_err(|_| {
        let shown: String = text.chars().take(80).collect();
        Box::new(render(
            StatusCode::BAD_REQUEST,
            &MissingPage {
                layout: user.layout(state),
                title: "Not a trace id",
                message: format!(
                    "\u{201c}{shown}\u{201d} is not a trace id. A trace id is 32 hexadecimal characters, not all zero."
                ),
            },
        ))
    })
}

/// The same page for a trace that does not exist and one of another organisation.
fn not_found(state: &DashboardState, user: &SignedIn, trace_id: TraceId) -> Response {
    render(
        StatusCode::NOT_FOUND,
        &MissingPage {
            layout: user.layout(state),
            title: "Trace not found",
            message: format!(
                "This organisation has no trace {trace_id}. It may not have arrived yet, it may be older than the retention period, or it may belong to another organisation."
            ),
        },
    )
}

/// `offset=N`: the page of a large trace that starts N spans into its waterfall order.
fn page_offset(query: Option<&str>) -> Option<usize> {
    let mut offset = 0;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "offset" => offset = value.parse().ok()?,
            _ => return None,
        }
    }
    Some(offset)
}

async fn trace_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    Path(text): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, DashboardError> {
    let trace_id = match trace_id(&state, &user, &text) {
        Ok(trace_id) => trace_id,
        Err(page) => return Ok(*page),
    };
    let Some(offset) = page_offset(query.as_deref()) else {
        return Ok(render(
            StatusCode::BAD_REQUEST,
            &MissingPage {
                layout: user.layout(&state),
                title: "Not a page of this trace",
                message: "A trace page takes only offset, a number of spans.".to_owned(),
            },
        ));
    };
    let read = Instant::now();
    let Some((summary, spans)) = state.store.tenant(user.tenant).trace(trace_id).await? else {
        return Ok(not_found(&state, &user, trace_id));
    };
    let logs = super::logs::TraceLogs::read(&state.store, user.tenant, &summary).await;
    let store_time = read.elapsed();
    let rendering = Instant::now();
    let page = TracePage {
        layout: user.layout(&state),
        trace: waterfall::build(&summary, spans, offset),
        logs,
    };
    let response = render(StatusCode::OK, &page);
    Ok(with_timing(response, store_time, rendering.elapsed()))
}

async fn download(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    Path(text): Path<String>,
) -> Result<Response, DashboardError> {
    let trace_id = match trace_id(&state, &user, &text) {
        Ok(trace_id) => trace_id,
        Err(page) => return Ok(*page),
    };
    let Some((_, spans)) = state.store.tenant(user.tenant).trace(trace_id).await? else {
        return Ok(not_found(&state, &user, trace_id));
    };
    let body = match serde_json::to_vec(&otlp::export_request(&spans)) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, trace_id = %trace_id, "could not encode a trace as OTLP JSON");
            return Ok(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again.",
            ));
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"trace-{trace_id}.json\""),
            ),
        ],
        body,
    )
        .into_response())
}
