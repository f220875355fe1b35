//! The tenant of a request: an API key as `x-api-key` or `Authorization: Bearer`.
//! Handlers take [`ReadTenant`] (a read or write key) or [`WriteTenant`] (a write key,
//! to change configuration), so none can run without a tenant.

use crate::api::ApiState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::sync::Arc;
use weft_model::{KeyScope, TenantId};
use weft_runtime::ApiError;

/// A key that may read: read scope, or write scope (which reads too).
pub struct ReadTenant(pub TenantId);

/// A key that may change the tenant's configuration: write scope.
pub struct WriteTenant(pub TenantId);

fn request_key(parts: &Parts) -> Option<&str> {
    weft_runtime::auth::api_key(|name| parts.headers.get(name).and_then(|v| v.to_str().ok()))
}

impl FromRequestParts<Arc<ApiState>> for ReadTenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        let resolved = state
            .keys
            .authorize(request_key(parts), KeyScope::Read, "read traces")
            .await?;
        Ok(ReadTenant(resolved.tenant))
    }
}

impl FromRequestParts<Arc<ApiState>> for WriteTenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        let resolved = state
            .keys
            .authorize(request_key(parts), KeyScope::Write, "change configuration")
            .await?;
        Ok(WriteTenant(resolved.tenant))
    }
}
