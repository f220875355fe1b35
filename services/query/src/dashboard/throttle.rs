//! Password checks at login and when accepting an invitation, and the limits on every
//! form that checks or sets a password. In order, each before anything costlier:
//!
//! 1. a place among the argon2 hashes running or waiting ([`PasswordHashing`]), or 429 at
//!    once;
//! 2. one attempt from the client address's budget (PostgreSQL, shared by replicas);
//! 3. for a login, one attempt counted on the email before the password is checked, in
//!    one statement that also refuses it while the failures so far say to wait. Known
//!    and unknown emails are counted, checked and answered alike, so neither guessing
//!    nor probing for accounts pays, however many attempts run in parallel.

use super::DashboardState;
use super::credentials::{HashingTurn, PasswordHashing};
use super::extract::ClientAddress;
use crate::config::{LoginLimits, TrustedProxies};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use weft_storage::postgres::{Attempt, PostgresError, User};

/// How often a replica deletes the counts that no longer change an answer.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The limits on password attempts, and the argon2 work they guard.
pub struct LoginThrottle {
    hashing: PasswordHashing,
    attempts_per_address: u32,
    address_refill: Duration,
    /// Proxies whose `X-Forwarded-For` is believed (see [`ClientAddress`]).
    pub trusted_proxies: TrustedProxies,
    last_pruned: Mutex<Option<Instant>>,
}

/// Why a password form was not let through.
pub enum LoginRefused {
    /// Too many failures in a row on this email: wait this many seconds.
    Throttled(u64),
    /// Too many attempts from this client address: wait this many seconds.
    AddressThrottled(u64),
    /// Every hashing slot and place in the queue is taken.
    Busy,
    /// Unknown email or wrong password; the two are not told apart.
    Wrong,
    Unavailable(PostgresError),
}

impl From<PostgresError> for LoginRefused {
    fn from(error: PostgresError) -> Self {
        LoginRefused::Unavailable(error)
    }
}

impl LoginRefused {
    /// The form that asked for the password, shown again by `page` with the message and
    /// status, and `Retry-After` on a 429.
    pub fn respond(
        self,
        page: impl FnOnce(String, StatusCode) -> Response,
    ) -> Result<Response, PostgresError> {
        let (message, status, retry_after) = match self {
            LoginRefused::Throttled(wait) => (
                format!("Too many failed attempts. Try again in {wait} seconds."),
                StatusCode::TOO_MANY_REQUESTS,
                Some(wait),
            ),
            LoginRefused::AddressThrottled(wait) => (
                format!("Too many attempts from your network. Try again in {wait} seconds."),
                StatusCode::TOO_MANY_REQUESTS,
                Some(wait),
            ),
            LoginRefused::Busy => (
                "Weft is busy checking other passwords. Try again in a moment.".to_owned(),
                StatusCode::TOO_MANY_REQUESTS,
                Some(1),
            ),
            LoginRefused::Wrong => (
                "Wrong email or password.".to_owned(),
                StatusCode::UNAUTHORIZED,
                None,
            ),
            LoginRefused::Unavailable(error) => return Err(error),
        };
        let mut response = page(message, status);
        if let Some(wait) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        Ok(response)
    }
}

impl LoginThrottle {
    pub fn new(limits: &LoginLimits) -> Self {
        LoginThrottle {
            hashing: PasswordHashing::new(limits.hashing_concurrency, limits.hashing_queue),
            attempts_per_address: limits.attempts_per_address,
            address_refill: limits.address_refill,
            trusted_proxies: limits.trusted_proxies.clone(),
            last_pruned: Mutex::new(None),
        }
    }

    /// Steps 1 and 2 for any form that checks or sets a password: a hashing turn and one
    /// attempt from the address's budget.
    pub async fn admit(
        &self,
        state: &DashboardState,
        client: &ClientAddress,
    ) -> Result<HashingTurn, LoginRefused> {
        let turn = self.hashing.admit().ok_or(LoginRefused::Busy)?;
        self.prune_now_and_then(state).await;
        let attempt = state
            .postgres
            .take_address_attempt(&client.0, self.attempts_per_address, self.address_refill)
            .await?;
        match attempt {
            Attempt::Granted => Ok(turn),
            Attempt::WaitSecs(wait) => Err(LoginRefused::AddressThrottled(wait)),
        }
    }

    /// A request for a password reset link from `client`, from a budget of its own as
    /// large as the password attempts' (so neither starves the other): each request
    /// may send an email, so a flood from one network is refused before any is sent.
    pub async fn admit_reset_request(
        &self,
        state: &DashboardState,
        client: &ClientAddress,
    ) -> Result<(), LoginRefused> {
        self.prune_now_and_then(state).await;
        let budget = format!("reset {}", client.0);
        let attempt = state
            .postgres
            .take_address_attempt(&budget, self.attempts_per_address, self.address_refill)
            .await?;
        match attempt {
            Attempt::Granted => Ok(()),
            Attempt::WaitSecs(wait) => Err(LoginRefused::AddressThrottled(wait)),
        }
    }

    /// Deletes stale counts at most once a minute per replica; they only take space, so a
    /// failure is logged and the request goes on.
    async fn prune_now_and_then(&self, state: &DashboardState) {
        {
            let mut last = self.last_pruned.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let refilled = self.address_refill * self.attempts_per_address;
        if let Err(error) = state.postgres.forget_stale_login_attempts(refilled).await {
            tracing::warn!(%error, "could not delete stale login attempts");
        }
    }
}

/// Checks `password` for the account `email` from `client`, within every limit, taking
/// as long and answering alike for an unknown email as for a wrong password.
pub async fn check_password(
    state: &DashboardState,
    client: &ClientAddress,
    email: &str,
    password: &str,
) -> Result<User, LoginRefused> {
    let turn = state.throttle.admit(state, client).await?;
    if let Attempt::WaitSecs(wait) = state.postgres.reserve_login_attempt(email).await? {
        return Err(LoginRefused::Throttled(wait));
    }
    let user = state.postgres.user_by_email(email).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = turn.verify_password(password.to_owned(), hash).await;
    match user {
        Some(user) if verified => {
            state.postgres.clear_login_failures(email).await?;
            Ok(user)
        }
        _ => Err(LoginRefused::Wrong),
    }
}
