//! The JSON API under `/api/v1`: traces, log lines ([`logs`]), the RED metrics and service graph computed
//! from every span before sampling, and the sampling policy ([`sampling`]). Every
//! handler takes a [`ReadTenant`] (or, to change configuration, a `WriteTenant`) and
//! reads through the tenant-scoped stores, so another tenant's data is never in reach.

pub(crate) mod alerts;
pub(crate) mod logs;
mod sampling;

use crate::auth::ReadTenant;
use crate::compare::{self, Counts};
use crate::difference;
use crate::params::{self, MetricsEndpoint, MetricsQuery};
use crate::policy::PolicyChanges;
use crate::view::{
    EdgeView, OperationView, PointView, Red, ServiceView, TracePage, TraceSummaryView, empty_steps,
    trace_page,
};
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use weft_model::TraceId;
use weft_runtime::{ApiError, ErrorKind};
use weft_storage::clickhouse::{
    ClickHouse, ClickHouseError, RedSeries, TenantTraces, TraceSearch, TraceSummary,
};
use weft_storage::postgres::KeyCache;

/// What the API's handlers share: the trace store, the cache of API keys (which
/// revocations announced over NATS empty at once), and where policies are kept and their
/// changes announced.
pub struct ApiState {
    pub store: ClickHouse,
    pub keys: Arc<KeyCache>,
    pub policies: PolicyChanges,
    /// Where alert channels may point.
    pub alerting_targets: weft_model::alerting::TargetPolicy,
}

pub fn routes(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/traces", get(search_traces))
        .route("/api/v1/traces/difference", get(trace_difference))
        .route("/api/v1/traces/compare", get(compare_traces))
        .route("/api/v1/traces/{trace_id}", get(get_trace))
        .route("/api/v1/services", get(list_services))
        .route(
            "/api/v1/services/{service}/operations",
            get(list_operations),
        )
        .route("/api/v1/services/{service}/series", get(service_series))
        .route("/api/v1/services/series", get(services_series))
        .route("/api/v1/service-map", get(service_map))
        .merge(sampling::routes())
        .merge(logs::routes())
        .merge(alerts::routes())
        .with_state(state)
}

/// A read stopped by its limits is the asker's to narrow (400); a tenant at its share of
/// concurrent scans retries shortly (429); anything else is the store's fault (503).
fn store_error(error: ClickHouseError) -> ApiError {
    if error.is_over_limit() {
        tracing::info!(%error, "read stopped by its limits");
        return ApiError::new(
            ErrorKind::InvalidArgument,
            "this query is too expensive to answer: narrow the time range or use fewer filters",
        );
    }
    if let ClickHouseError::TenantBusy(_) = error {
        return ApiError::rate_limited(format!("{error}; retry in a second"), 1);
    }
    ApiError::unavailable("trace store", &error)
}

async fn get_trace(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    Path(trace_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<TracePage>, ApiError> {
    let (offset, limit) = params::span_page(query.as_deref())?;
    let trace_id: TraceId = trace_id
        .parse()
        .map_err(|e| ApiError::new(ErrorKind::InvalidArgument, format!("invalid trace id: {e}")))?;
    let (summary, spans) = state
        .store
        .tenant(tenant)
        .trace(trace_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("trace {trace_id} not found")))?;
    // Serialised straight from the views, never through a `serde_json::Value` copy.
    Ok(Json(trace_page(&summary, spans, offset, limit)))
}

/// One page of a search: one trace more than the limit is read to tell whether another
/// page follows, and if so the cursor that continues after the last trace shown.
pub(crate) async fn search_page(
    store: &TenantTraces<'_>,
    search: &TraceSearch,
) -> Result<(Vec<TraceSummary>, Option<String>), ClickHouseError> {
    let probe = TraceSearch {
        limit: search.limit + 1,
        ..search.clone()
    };
    let mut traces = store.search(&probe).await?;
    if traces.len() <= search.limit as usize {
        return Ok((traces, None));
    }
    traces.truncate(search.limit as usize);
    let cursor = traces
        .last()
        .map(|last| params::PageCursor::after(search, last).text());
    Ok((traces, cursor))
}

async fn search_traces(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let search = params::search(query.as_deref())?;
    let (traces, next_cursor) = search_page(&state.store.tenant(tenant), &search)
        .await
        .map_err(store_error)?;
    let traces: Vec<TraceSummaryView> = traces.iter().map(TraceSummaryView::from).collect();
    Ok(Json(
        json!({ "traces": traces, "next_cursor": next_cursor }),
    ))
}

/// Two traces' call trees merged by (service, operation) path, with each node's spans,
/// durations and change from A to B.
async fn compare_traces(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let invalid = |message: String| ApiError::new(ErrorKind::InvalidArgument, message);
    let (Some(a), Some(b)) = compare::ids(query.as_deref()).map_err(invalid)? else {
        return Err(invalid(
            "a comparison needs a and b, the ids of the two traces".to_owned(),
        ));
    };
    let comparison = match compare::read(&state.store.tenant(tenant), a, b)
        .await
        .map_err(store_error)?
    {
        compare::Read::Found(comparison) => comparison,
        compare::Read::Missing(trace_id) => {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!("trace {trace_id} not found"),
            ));
        }
    };
    Ok(Json(json!({
        "a": TraceSummaryView::from(&comparison.a),
        "b": TraceSummaryView::from(&comparison.b),
        "changes": Counts::of(&comparison.nodes),
        "nodes": comparison.nodes,
    })))
}

/// "What is different": attribute values over-represented in the selected traces of a
/// search against its other traces.
async fn trace_difference(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (search, selection) = params::difference(query.as_deref())?;
    let answer = difference::read(&state.store.tenant(tenant), &search, &selection)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({
        "start_time_unix_nano": search.start_unix_nano.to_string(),
        "end_time_unix_nano": search.end_unix_nano.to_string(),
        "selected_traces": answer.selected_traces,
        "baseline_traces": answer.baseline_traces,
        "sampled_selected_traces": answer.sampled_selected_traces,
        "sampled_baseline_traces": answer.sampled_baseline_traces,
        "values": answer.values,
        "high_cardinality_keys": answer.high_cardinality_keys,
    })))
}

/// A JSON answer's bounds of the window it covers.
fn window_json(q: &MetricsQuery) -> (String, String) {
    (
        q.window.start_unix_nano.to_string(),
        q.window.end_unix_nano.to_string(),
    )
}

/// RED of every service with spans in the window, from the pre-sampling metrics.
async fn list_services(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = params::metrics(query.as_deref(), MetricsEndpoint::Services)?;
    let rows = state
        .store
        .tenant(tenant)
        .service_red(q.window)
        .await
        .map_err(store_error)?;
    let mut services: BTreeMap<&str, (Red, u64)> = BTreeMap::new();
    for row in &rows {
        let (red, spans) = services.entry(&row.name).or_default();
        *spans += row.spans;
        if q.kinds.contains(&row.kind) {
            red.add(row.spans, row.errors, row.duration_sum_ns, &row.histogram);
        }
    }
    let services: Vec<ServiceView> = services
        .into_iter()
        .map(|(service, (red, spans))| ServiceView {
            service: service.to_owned(),
            red: red.view(q.seconds()),
            spans,
        })
        .collect();
    let (start, end) = window_json(&q);
    Ok(Json(json!({
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "services": services,
    })))
}

fn no_such_service(service: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!("service {service:?} not found"),
    )
}

/// RED of every operation (span name and kind) of a service.
async fn list_operations(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = params::metrics(query.as_deref(), MetricsEndpoint::Operations)?;
    let rows = state
        .store
        .tenant(tenant)
        .operation_red(&service, q.window)
        .await
        .map_err(store_error)?;
    if rows.is_empty() {
        return Err(no_such_service(&service));
    }
    let operations: Vec<OperationView> = rows
        .iter()
        .map(|row| {
            let mut red = Red::default();
            red.add(row.spans, row.errors, row.duration_sum_ns, &row.histogram);
            OperationView::new(&row.name, row.kind, red.view(q.seconds()))
        })
        .collect();
    let (start, end) = window_json(&q);
    Ok(Json(json!({
        "service": service,
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "operations": operations,
    })))
}

/// RED of a service (or one operation) per step, every step of the window included.
async fn service_series(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = params::metrics(query.as_deref(), MetricsEndpoint::Series)?;
    let series = RedSeries {
        service: service.clone(),
        operation: q.operation.clone(),
        step_seconds: q.step_seconds,
    };
    let rows = state
        .store
        .tenant(tenant)
        .service_series(&series, q.window)
        .await
        .map_err(store_error)?;
    if rows.is_empty() {
        return Err(no_such_service(&service));
    }
    let step = u64::from(q.step_seconds);
    let mut steps = empty_steps(q.window, q.step_seconds);
    for row in rows.iter().filter(|row| q.kinds.contains(&row.kind)) {
        steps.entry(u64::from(row.step_start)).or_default().add(
            row.spans,
            row.errors,
            row.duration_sum_ns,
            &row.histogram,
        );
    }
    let points: Vec<PointView> = steps
        .into_iter()
        .map(|(start, red)| PointView {
            start_time_unix_nano: (start * 1_000_000_000).to_string(),
            red: red.view(step as f64),
        })
        .collect();
    Ok(Json(json!({
        "service": service,
        "operation": q.operation,
        "step_seconds": q.step_seconds,
        "points": points,
    })))
}

/// RED of every service per step, in one answer (for sparklines of a services list).
async fn services_series(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = params::metrics(query.as_deref(), MetricsEndpoint::AllSeries)?;
    let rows = state
        .store
        .tenant(tenant)
        .services_series(q.step_seconds, q.window)
        .await
        .map_err(store_error)?;
    let step = u64::from(q.step_seconds);
    let mut services: BTreeMap<&str, BTreeMap<u64, Red>> = BTreeMap::new();
    for row in rows.iter().filter(|row| q.kinds.contains(&row.kind)) {
        services
            .entry(&row.name)
            .or_insert_with(|| empty_steps(q.window, q.step_seconds))
            .entry(u64::from(row.step_start))
            .or_default()
            .add(row.spans, row.errors, row.duration_sum_ns, &row.histogram);
    }
    let services: Vec<Value> = services
        .into_iter()
        .map(|(service, steps)| {
            let points: Vec<PointView> = steps
                .into_iter()
                .map(|(start, red)| PointView {
                    start_time_unix_nano: (start * 1_000_000_000).to_string(),
                    red: red.view(step as f64),
                })
                .collect();
            json!({ "service": service, "points": points })
        })
        .collect();
    Ok(Json(json!({
        "step_seconds": q.step_seconds,
        "services": services,
    })))
}

/// The service graph: calls between services in the window.
async fn service_map(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = params::metrics(query.as_deref(), MetricsEndpoint::ServiceMap)?;
    let rows = state
        .store
        .tenant(tenant)
        .service_edges(q.window)
        .await
        .map_err(store_error)?;
    let edges: Vec<EdgeView> = rows
        .iter()
        .map(|row| {
            let mut red = Red::default();
            red.add(row.calls, row.errors, row.duration_sum_ns, &row.histogram);
            EdgeView::new(&row.caller_service, &row.callee_service, &red, q.seconds())
        })
        .collect();
    let (start, end) = window_json(&q);
    Ok(Json(json!({
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "edges": edges,
    })))
}
