//! The dashboard: server-rendered pages (askama templates under `frontend/templates`)
//! for sign-up, login, the set-up page, API keys, members, usage, the sampling policy, alerts,
//! the trace explorer, passwords (change and reset) and deleting the organisation.
//! Every page works without JavaScript; every state-changing form carries a CSRF token;
//! every page checks the user's membership and role in the organisation on each request.
//!
//! Each room (a group of pages and their forms) is one module with its own `routes()`,
//! built from the shared parts: the extractors that check who is asking ([`extract`]),
//! the error page every handler's `?` ends in ([`error`]) and the layout ([`render`]).

mod account;
mod alerts;
mod confirm;
mod credentials;
mod error;
mod extract;
mod invitations;
mod keys;
mod logs;
mod members;
mod organisation;
mod password;
mod render;
mod sampling;
mod services;
mod session;
mod setup;
mod shell;
mod throttle;
mod traces;

pub use organisation::sweep_erasures;
pub use session::SessionKeys;
pub use throttle::LoginThrottle;

use crate::KeyRevocations;
use crate::policy::PolicyChanges;
use std::sync::Arc;
use weft_mail::Mailer;
use weft_storage::clickhouse::ClickHouse;
use weft_storage::postgres::Postgres;

/// What the dashboard's handlers share.
pub struct DashboardState {
    /// Accounts, organisations, members, invitations, API keys and usage.
    pub postgres: Postgres,
    /// The organisation's traces, read only through its tenant scope.
    pub store: ClickHouse,
    pub sessions: SessionKeys,
    /// Revoked keys are announced here so every replica forgets them at once.
    pub revocations: KeyRevocations,
    /// Sampling policies are saved here and their changes announced to the samplers.
    pub policies: PolicyChanges,
    /// Limits on password attempts and the argon2 work they guard.
    pub throttle: LoginThrottle,
    /// Where users reach the dashboard (`WEFT_PUBLIC_URL`), for absolute links.
    pub public_url: String,
    /// Ingest endpoints as users should paste them into their SDK configuration.
    pub ingest_http_url: String,
    pub ingest_grpc_url: String,
    /// Sends password reset links (the SMTP server alerting uses), if one is set up.
    pub mailer: Arc<Mailer>,
    pub password_reset_ttl: std::time::Duration,
    pub password_resets_per_hour: u32,
    /// Where alert channels may point.
    pub alerting_targets: weft_model::alerting::TargetPolicy,
}

/// One router per room, merged; a path none of them has is the 404 of [`shell`].
pub fn routes(state: Arc<DashboardState>) -> axum::Router {
    account::routes()
        .merge(setup::routes())
        .merge(keys::routes())
        .merge(members::routes())
        .merge(password::routes())
        .merge(organisation::routes())
        .merge(invitations::routes())
        .merge(sampling::routes())
        .merge(alerts::routes())
        .merge(traces::routes())
        .merge(logs::routes())
        .merge(services::routes())
        .merge(shell::routes())
        .fallback(shell::not_found)
        .with_state(state)
}
