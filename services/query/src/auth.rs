//! The tenant of a request: a read-scope API key as `x-api-key` or `Authorization:
//! Bearer`. Handlers take [`ReadTenant`], so none can run without a tenant.

use crate::api::ApiState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::sync::Arc;
use weft_model::{KeyScope, TenantId};
use weft_runtime::ApiError;

pub struct ReadTenant(pub TenantId);

impl FromRequestParts<Arc<ApiState>> for ReadTenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        let key = weft_runtime::auth::api_key(|name| {
            parts.headers.get(name).and_then(|v| v.to_str().ok())
        });
        let resolved = state
            .keys
            .authorize(key, KeyScope::Read, "read traces")
            .await?;
        Ok(ReadTenant(resolved.tenant))
    }
}
