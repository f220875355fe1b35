//! API keys of the organisation: everyone sees the list; owners and admins create and
//! revoke. A revocation is announced over NATS so every ingest and query replica forgets
//! the key at once.

use super::DashboardState;
use super::confirm::confirm_page;
use super::error::DashboardError;
use super::extract::{
    Authorized, CsrfForm, CsrfProtected, KeyId, ManageKeys, PathId, Permission, SignedIn,
};
use super::render::{Layout, render};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use std::sync::Arc;
use weft_model::KeyScope;

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/keys", get(keys_page).post(create_key))
        .route("/keys/{id}/revoke", get(confirm_revoke).post(revoke_key))
}

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
    state: &DashboardState,
    user: &SignedIn,
    status: StatusCode,
    new_key: Option<(String, KeyScope)>,
    error: Option<&str>,
) -> Result<Response, DashboardError> {
    let keys = state
        .postgres
        .api_keys(user.tenant)
        .await?
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
    Ok(render(status, &page))
}

async fn keys_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    render_keys(&state, &user, StatusCode::OK, None, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateKeyForm {
    csrf: String,
    name: String,
    scope: String,
}

impl CsrfProtected for CreateKeyForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn create_key(
    State(state): State<Arc<DashboardState>>,
    Authorized { user, form, .. }: Authorized<ManageKeys, CreateKeyForm>,
) -> Result<Response, DashboardError> {
    let name = form.name.trim();
    let scope = if name.is_empty() || name.chars().count() > 200 {
        Err("Give the key a name of at most 200 characters.")
    } else {
        form.scope
            .parse::<KeyScope>()
            .map_err(|_| "Choose the scope ingest, read or write.")
    };
    let scope = match scope {
        Ok(scope) => scope,
        Err(problem) => {
            return render_keys(&state, &user, StatusCode::BAD_REQUEST, None, Some(problem)).await;
        }
    };
    let key = state
        .postgres
        .create_api_key(user.tenant, name, scope)
        .await?;
    render_keys(
        &state,
        &user,
        StatusCode::OK,
        Some((key.secret, scope)),
        None,
    )
    .await
}

/// What revoking a live key does, asked before it is done.
async fn confirm_revoke(
    State(state): State<Arc<DashboardState>>,
    key: PathId<KeyId>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    ManageKeys::check(user.role)?;
    let found = state
        .postgres
        .api_keys(user.tenant)
        .await?
        .into_iter()
        .find(|k| k.id == key.id && k.revoked_at.is_none())
        .ok_or_else(|| key.not_found())?;
    Ok(confirm_page(
        user.layout(&state),
        &format!("Revoke the key \u{201c}{}\u{201d}?", found.name),
        &format!(
            "Anything that sends or reads with the {} key {}\u{2026} is refused from now on, by every Weft replica at once. A revoked key cannot be restored; you can create a new one.",
            found.scope, found.prefix
        ),
        &format!("/keys/{}/revoke", found.id),
        "Revoke key",
        "/keys",
    ))
}

async fn revoke_key(
    State(state): State<Arc<DashboardState>>,
    key: PathId<KeyId>,
    Authorized { user, .. }: Authorized<ManageKeys, CsrfForm>,
) -> Result<Response, DashboardError> {
    let digest = state
        .postgres
        .revoke_api_key(user.tenant, key.id)
        .await?
        .ok_or_else(|| key.not_found())?;
    state.revocations.announce(&digest).await;
    Ok(Redirect::to("/keys").into_response())
}
