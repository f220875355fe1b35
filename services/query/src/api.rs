//! The JSON API under `/api/v1`. Every handler takes a [`ReadTenant`] and reads through
//! the tenant-scoped store, so another tenant's data is never in reach.

use crate::auth::ReadTenant;
use crate::params;
use crate::view::{OperationView, TraceSummaryView, trace_view};
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use weft_model::TraceId;
use weft_runtime::{ApiError, ErrorKind};
use weft_storage::clickhouse::{ClickHouse, ClickHouseError};
use weft_storage::postgres::KeyCache;

const LIST_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the API's handlers share: the trace store, and the cache of read keys (which
/// revocations announced over NATS empty at once).
pub struct ApiState {
    pub store: ClickHouse,
    pub keys: Arc<KeyCache>,
}

pub fn routes(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/traces", get(search_traces))
        .route("/api/v1/traces/{trace_id}", get(get_trace))
        .route("/api/v1/services", get(list_services))
        .route(
            "/api/v1/services/{service}/operations",
            get(list_operations),
        )
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
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!(trace_view(&summary, spans))))
}

async fn search_traces(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let search = params::search(query.as_deref())?;
    let traces = state
        .store
        .tenant(tenant)
        .search(&search)
        .await
        .map_err(store_error)?;
    let traces: Vec<TraceSummaryView> = traces.iter().map(TraceSummaryView::from).collect();
    Ok(Json(json!({ "traces": traces })))
}

async fn list_services(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let since = params::since(query.as_deref(), LIST_LOOKBACK)?;
    let services = state
        .store
        .tenant(tenant)
        .services(since)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({ "services": services })))
}

async fn list_operations(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let since = params::since(query.as_deref(), LIST_LOOKBACK)?;
    let operations = state
        .store
        .tenant(tenant)
        .operations(&service, since)
        .await
        .map_err(store_error)?;
    if operations.is_empty() {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("service {service:?} not found"),
        ));
    }
    let operations: Vec<OperationView> = operations.iter().map(OperationView::from).collect();
    Ok(Json(
        json!({ "service": service, "operations": operations }),
    ))
}
