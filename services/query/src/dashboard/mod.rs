//! The dashboard: server-rendered pages (askama templates under `frontend/templates`)
//! for sign-up, login, onboarding and API keys. Every page works without JavaScript;
//! every state-changing form carries a CSRF token.

mod pages;
mod session;

pub use pages::routes;
pub use session::SessionKeys;

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
