//! The sampling policy over the JSON API: read it (read or write key), replace or reset
//! it (write key; every sampler is told at once), and dry-run a candidate against the
//! last hour's stored traces (read or write key).

use super::{ApiState, store_error};
use crate::auth::{ReadTenant, WriteTenant};
use crate::policy::{self, CurrentPolicy, MAX_POLICY_BYTES};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use weft_model::sampling::{PolicyError, SamplingPolicy};
use weft_runtime::{ApiError, ErrorKind};
use weft_storage::postgres::PostgresError;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route(
            "/api/v1/sampling/policy",
            get(get_policy).put(put_policy).delete(delete_policy),
        )
        .route("/api/v1/sampling/dry-run", post(dry_run))
}

/// Why a policy request failed: an API error, or a policy refused naming its field
/// (`{"error": "rules[0].probability: …", "field": "rules[0].probability"}`, 400).
enum PolicyApiError {
    Api(ApiError),
    Refused(PolicyError),
}

impl From<ApiError> for PolicyApiError {
    fn from(error: ApiError) -> Self {
        PolicyApiError::Api(error)
    }
}

impl From<PolicyError> for PolicyApiError {
    fn from(error: PolicyError) -> Self {
        PolicyApiError::Refused(error)
    }
}

impl IntoResponse for PolicyApiError {
    fn into_response(self) -> Response {
        match self {
            PolicyApiError::Api(error) => error.into_response(),
            PolicyApiError::Refused(refused) => {
                let status = ErrorKind::InvalidArgument.http_status();
                let body = json!({ "error": refused.to_string(), "field": refused.field });
                (status, Json(body)).into_response()
            }
        }
    }
}

fn postgres_error(error: PostgresError) -> ApiError {
    ApiError::unavailable("policy store", &error)
}

/// The body, refused with 413 past [`MAX_POLICY_BYTES`].
async fn policy_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_POLICY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!("a policy is at most {MAX_POLICY_BYTES} bytes of JSON"),
            )
        })
}

fn policy_json(current: &CurrentPolicy) -> Value {
    json!({
        "policy": current.policy,
        "is_default": current.is_default,
        "updated_at": current.updated_at.map(|at| at.to_rfc3339()),
    })
}

async fn current_json(
    state: &ApiState,
    tenant: weft_model::TenantId,
) -> Result<Json<Value>, ApiError> {
    let current = policy::current(&state.policies.postgres, tenant)
        .await
        .map_err(postgres_error)?;
    Ok(Json(policy_json(&current)))
}

async fn get_policy(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
) -> Result<Json<Value>, ApiError> {
    current_json(&state, tenant).await
}

async fn put_policy(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
    body: Body,
) -> Result<Json<Value>, PolicyApiError> {
    let body = policy_body(body).await?;
    let policy = SamplingPolicy::from_json(&body)?;
    state
        .policies
        .save(tenant, &policy, None)
        .await
        .map_err(postgres_error)?;
    Ok(current_json(&state, tenant).await?)
}

async fn delete_policy(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
) -> Result<Json<Value>, ApiError> {
    state.policies.reset(tenant).await.map_err(postgres_error)?;
    current_json(&state, tenant).await
}

async fn dry_run(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    body: Body,
) -> Result<Json<Value>, PolicyApiError> {
    let body = policy_body(body).await?;
    let policy = if body.iter().all(u8::is_ascii_whitespace) {
        policy::current(&state.policies.postgres, tenant)
            .await
            .map_err(postgres_error)?
            .policy
    } else {
        SamplingPolicy::from_json(&body)?
    };
    let compiled = policy.compile()?;
    let now = crate::params::now_nanos();
    let run = policy::dry_run(&state.store, tenant, &policy, &compiled, now)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({ "policy": policy, "dry_run": run })))
}
