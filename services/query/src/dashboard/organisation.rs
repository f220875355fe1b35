//! Deleting the organisation: owners only, after typing its name. PostgreSQL loses every
//! row of it in one transaction (see `Postgres::delete_organisation`), its live keys are
//! announced as revoked so every ingest and query replica refuses them at once, and its
//! ClickHouse rows are erased right away and again by [`sweep_erasures`] while spans the
//! bus held at the time may still be stored.

use super::DashboardState;
use super::error::DashboardError;
use super::extract::{Authorized, CsrfProtected, Permission, SignedIn};
use super::render::{Layout, render};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use weft_model::{Role, TenantId};
use weft_runtime::shutdown::CancellationToken;
use weft_storage::postgres::OrganisationDeletion;

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new().route(
        "/organisation/delete",
        get(delete_page).post(delete_organisation),
    )
}

/// Delete the organisation: owners.
pub struct DeleteOrganisation;

impl Permission for DeleteOrganisation {
    const ACTION: &'static str = "delete the organisation";

    fn granted_to(role: Role) -> bool {
        role == Role::Owner
    }
}

#[derive(Template)]
#[template(path = "delete_organisation.html")]
struct DeletePage {
    layout: Layout,
    error: Option<String>,
}

async fn delete_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    DeleteOrganisation::check(user.role)?;
    Ok(render(
        StatusCode::OK,
        &DeletePage {
            layout: user.layout(&state),
            error: None,
        },
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteForm {
    csrf: String,
    name: String,
}

impl CsrfProtected for DeleteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn delete_organisation(
    State(state): State<Arc<DashboardState>>,
    Authorized { user, form, .. }: Authorized<DeleteOrganisation, DeleteForm>,
) -> Result<Response, DashboardError> {
    let layout = user.layout(&state);
    if form.name.trim() != layout.organisation {
        let error = format!(
            "Type the organisation's name, {}, exactly as shown to delete it.",
            layout.organisation
        );
        return Ok(render(
            StatusCode::BAD_REQUEST,
            &DeletePage {
                layout,
                error: Some(error),
            },
        ));
    }
    let deletion = state
        .postgres
        .delete_organisation(user.tenant, user.user)
        .await?;
    let OrganisationDeletion::Deleted {
        revoked_keys,
        deleted_users,
    } = deletion
    else {
        return Err(DashboardError::NotAllowed(DeleteOrganisation::ACTION));
    };
    for digest in &revoked_keys {
        state.revocations.announce(digest).await;
    }
    erase(&state, user.tenant).await;
    tracing::info!(
        tenant_id = %user.tenant,
        keys = revoked_keys.len(),
        deleted_users,
        "organisation deleted"
    );
    // The sessions in the organisation went with it; the user goes on in another one,
    // or, with none left, their account went too.
    let other = user
        .memberships
        .iter()
        .find(|m| m.tenant_id != user.tenant.as_uuid());
    Ok(match other {
        Some(other) => {
            let session = state.begin_session(user.user, other.tenant_id).await?;
            ([(header::SET_COOKIE, session.cookie)], Redirect::to("/")).into_response()
        }
        None => (
            [(header::SET_COOKIE, state.sessions.clear_session())],
            Redirect::to("/login?notice=organisation-deleted"),
        )
            .into_response(),
    })
}

/// Erases the ClickHouse rows of a deleted tenant; a failure is logged and left to the
/// next sweep.
async fn erase(state: &DashboardState, tenant: TenantId) {
    match state.store.erase_tenant(tenant).await {
        Ok(tables) if tables.is_empty() => {}
        Ok(tables) => tracing::info!(tenant_id = %tenant, ?tables, "tenant rows erased"),
        Err(error) => {
            tracing::warn!(tenant_id = %tenant, %error, "could not erase tenant rows, the next sweep retries");
        }
    }
}

/// Erases the ClickHouse rows of the organisations deleted within `window`, every
/// `interval`, until `shutdown`: spans already on the bus when an organisation was
/// deleted are stored after its first erasure. A table without rows of the tenant costs
/// one count, so sweeping is cheap once they are gone.
pub async fn sweep_erasures(
    state: Arc<DashboardState>,
    interval: Duration,
    window: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let pending = match state.postgres.pending_erasures(window).await {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(%error, "could not read the pending erasures");
                continue;
            }
        };
        for tenant in pending {
            erase(&state, tenant).await;
        }
    }
}
