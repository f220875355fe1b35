//! The tenant of a request: a read-scope API key as `x-api-key` or `Authorization:
//! Bearer`. Handlers take [`ReadTenant`], so none can run without a tenant.

use crate::QueryState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::sync::Arc;
use weft_model::{KeyScope, TenantId};
use weft_runtime::{ApiError, ErrorKind};

pub struct ReadTenant(pub TenantId);

impl FromRequestParts<Arc<QueryState>> for ReadTenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<QueryState>,
    ) -> Result<Self, ApiError> {
        let key = weft_runtime::auth::api_key(|name| {
            parts.headers.get(name).and_then(|v| v.to_str().ok())
        })
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthenticated,
                "missing API key: send it as x-api-key or Authorization: Bearer",
            )
        })?;
        let resolved = state
            .keys
            .resolve(key)
            .await
            .map_err(|e| ApiError::unavailable("api key lookup", &e))?
            .ok_or_else(|| {
                ApiError::new(ErrorKind::Unauthenticated, "invalid or revoked API key")
            })?;
        if resolved.scope != KeyScope::Read {
            return Err(ApiError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "this API key has scope {} and cannot read traces",
                    resolved.scope
                ),
            ));
        }
        Ok(ReadTenant(resolved.tenant))
    }
}
