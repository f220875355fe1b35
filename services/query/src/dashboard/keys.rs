//! API keys of the organisation: everyone sees the list; owners and admins create and
//! revoke. A revocation is announced over NATS so every ingest and query replica forgets
//! the key at once.

use super::web::{CsrfForm, Layout, SignedIn, not_found, render, unavailable};
use crate::QueryState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::sync::Arc;
use weft_model::{KeyScope, Role};

pub fn routes() -> Router<Arc<QueryState>> {
    Router::new()
        .route("/keys", get(keys_page).post(create_key))
        .route("/keys/{id}/revoke", post(revoke_key))
}

const MANAGE_KEYS: &str = "manage API keys";

/// A date and time as pages show them.
pub fn format_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

struct KeyRow {
    id: uuid::Uuid,
    name: String,
    scope: String,
    prefix: String,
    created: String,
    last_used: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    can_manage: bool,
    new_key: Option<String>,
    new_key_scope: String,
    error: Option<String>,
}

async fn render_keys(
    state: &QueryState,
    user: &SignedIn,
    status: StatusCode,
    new_key: Option<(String, KeyScope)>,
    error: Option<&str>,
) -> Response {
    let keys = match state.postgres.api_keys(user.tenant).await {
        Ok(keys) => keys,
        Err(error) => return unavailable(&error),
    };
    let keys = keys
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            name: k.name,
            scope: k.scope,
            prefix: k.prefix,
            created: format_time(k.created_at),
            last_used: k
                .last_used_at
                .map_or_else(|| "never".to_owned(), format_time),
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    let page = KeysPage {
        layout: user.layout(state),
        keys,
        can_manage: user.role.is_admin(),
        new_key_scope: new_key
            .as_ref()
            .map(|(_, s)| s.to_string())
            .unwrap_or_default(),
        new_key: new_key.map(|(k, _)| k),
        error: error.map(str::to_owned),
    };
    render(status, &page)
}

async fn keys_page(State(state): State<Arc<QueryState>>, user: SignedIn) -> Response {
    render_keys(&state, &user, StatusCode::OK, None, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateKeyForm {
    csrf: String,
    name: String,
    scope: String,
}

async fn create_key(
    State(state): State<Arc<QueryState>>,
    user: SignedIn,
    Form(form): Form<CreateKeyForm>,
) -> Response {
    if let Some(page) = user.refusal(&state, &form.csrf, Role::is_admin, MANAGE_KEYS) {
        return page;
    }
    let name = form.name.trim();
    let scope = if name.is_empty() || name.chars().count() > 200 {
        Err("Give the key a name of at most 200 characters.")
    } else {
        form.scope
            .parse::<KeyScope>()
            .map_err(|_| "Choose the scope ingest or read.")
    };
    let scope = match scope {
        Ok(scope) => scope,
        Err(problem) => {
            return render_keys(&state, &user, StatusCode::BAD_REQUEST, None, Some(problem)).await;
        }
    };
    match state
        .postgres
        .create_api_key(user.tenant, name, scope)
        .await
    {
        Ok(key) => {
            render_keys(
                &state,
                &user,
                StatusCode::OK,
                Some((key.secret, scope)),
                None,
            )
            .await
        }
        Err(error) => unavailable(&error),
    }
}

async fn revoke_key(
    State(state): State<Arc<QueryState>>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(page) = user.refusal(&state, &form.csrf, Role::is_admin, MANAGE_KEYS) {
        return page;
    }
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return not_found("API key");
    };
    let digest = match state.postgres.revoke_api_key(user.tenant, id).await {
        Ok(Some(digest)) => digest,
        Ok(None) => return not_found("API key"),
        Err(error) => return unavailable(&error),
    };
    if let Err(error) = state
        .dashboard
        .bus
        .announce(&weft_bus::KeyRevoked::new(&digest))
        .await
    {
        // Replicas still drop the key when its cache entry expires (WEFT_KEY_CACHE_TTL).
        tracing::warn!(%error, "could not announce a key revocation");
    }
    state.keys.forget(&digest);
    Redirect::to("/keys").into_response()
}
