//! The dashboard: server-rendered pages (askama templates under `frontend/templates`)
//! for sign-up, login, onboarding, API keys, members and usage. Every page works without
//! JavaScript; every state-changing form carries a CSRF token; every page checks the
//! user's membership and role in the organisation on each request.

mod account;
mod keys;
mod members;
mod session;
mod web;

pub use session::SessionKeys;

use crate::QueryState;
use std::sync::Arc;
use weft_bus::Bus;

/// What the dashboard needs beyond the query state.
pub struct Dashboard {
    pub sessions: SessionKeys,
    /// Revocations are announced here so ingest replicas forget keys at once.
    pub bus: Bus,
    /// Ingest endpoints as users should paste them into their SDK configuration.
    pub ingest_http_url: String,
    pub ingest_grpc_url: String,
}

pub fn routes(state: Arc<QueryState>) -> axum::Router {
    account::routes()
        .merge(keys::routes())
        .merge(members::routes())
        .with_state(state)
}
