//! What every page shares: rendering and error pages, the signed-in user ([`SignedIn`]:
//! the session resolved to a user, the organisation they work in and their role there,
//! checked on every request so a removed membership ends access at once), role checks,
//! CSRF checks and passwords.

use super::session::{PRE_SESSION_COOKIE, SESSION_COOKIE, SessionError, cookie_value};
use crate::QueryState;
use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;
use weft_model::{Role, TenantId};
use weft_storage::postgres::{Membership, PostgresError, User};

/// An organisation in the switcher of the navigation bar.
pub struct OrganisationChoice {
    pub id: uuid::Uuid,
    pub name: String,
    pub current: bool,
}

/// The navigation bar's view of the session.
pub struct Layout {
    pub signed_in: bool,
    pub organisation: String,
    pub role: String,
    pub csrf: String,
    /// Every organisation of the user, when there is more than one to switch between.
    pub organisations: Vec<OrganisationChoice>,
}

impl Layout {
    pub fn anonymous() -> Self {
        Layout {
            signed_in: false,
            organisation: String::new(),
            role: String::new(),
            csrf: String::new(),
            organisations: Vec::new(),
        }
    }
}

pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    title: &'a str,
    message: &'a str,
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            layout: Layout::anonymous(),
            title,
            message,
        },
    )
}

pub fn unavailable(error: &dyn std::error::Error) -> Response {
    tracing::warn!(%error, "dashboard dependency failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Weft could not complete this request. Please try again in a moment.",
    )
}

pub fn forbidden_csrf() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "For your security the form could not be accepted. Go back, reload the page and try again.",
    )
}

/// 403 for a role that may not do `what`.
pub fn not_allowed(what: &str) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        &format!("Your role in this organisation does not allow you to {what}."),
    )
}

/// 404 for an id that names nothing of the current organisation (whether it exists in
/// another one is not revealed).
pub fn not_found(what: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        &format!("No such {what}"),
        &format!("This organisation has no such {what}."),
    )
}

/// A form that carries only its CSRF token.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    pub csrf: String,
}

/// A request with a valid session whose user still belongs to the organisation.
pub struct SignedIn {
    pub user: uuid::Uuid,
    pub tenant: TenantId,
    pub role: Role,
    /// The session id; CSRF tokens are bound to it.
    pub session: String,
    /// All the user's organisations; the current one is `tenant`.
    pub memberships: Vec<Membership>,
}

impl SignedIn {
    pub fn layout(&self, state: &QueryState) -> Layout {
        let organisation = self
            .memberships
            .iter()
            .find(|m| m.tenant_id == self.tenant.as_uuid())
            .map(|m| m.tenant_name.clone())
            .unwrap_or_default();
        let organisations = if self.memberships.len() > 1 {
            self.memberships
                .iter()
                .map(|m| OrganisationChoice {
                    id: m.tenant_id,
                    name: m.tenant_name.clone(),
                    current: m.tenant_id == self.tenant.as_uuid(),
                })
                .collect()
        } else {
            Vec::new()
        };
        Layout {
            signed_in: true,
            organisation,
            role: self.role.to_string(),
            csrf: state.dashboard.sessions.csrf_token(&self.session),
            organisations,
        }
    }

    pub fn csrf_ok(&self, state: &QueryState, token: &str) -> bool {
        state.dashboard.sessions.csrf_ok(&self.session, token)
    }

    /// The checks of a state-changing form, in order: its CSRF token, then that the
    /// user's role `permits` it. `Some` is the page that refuses it.
    pub fn refusal(
        &self,
        state: &QueryState,
        csrf: &str,
        permits: impl FnOnce(Role) -> bool,
        what: &str,
    ) -> Option<Response> {
        if !self.csrf_ok(state, csrf) {
            Some(forbidden_csrf())
        } else if !permits(self.role) {
            Some(not_allowed(what))
        } else {
            None
        }
    }
}

impl FromRequestParts<Arc<QueryState>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<QueryState>,
    ) -> Result<Self, Response> {
        let cookies = parts
            .headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok());
        let token = cookie_value(cookies, SESSION_COOKIE)
            .ok_or_else(|| Redirect::to("/login").into_response())?;
        let claims = state.dashboard.sessions.verify(token).map_err(|e| {
            let target = if e == SessionError::Expired {
                "/login?notice=expired"
            } else {
                "/login"
            };
            (
                [(header::SET_COOKIE, state.dashboard.sessions.clear_session())],
                Redirect::to(target),
            )
                .into_response()
        })?;
        let memberships = state
            .postgres
            .memberships(claims.sub)
            .await
            .map_err(|e| unavailable(&e))?;
        let role = memberships
            .iter()
            .find(|m| m.tenant_id == claims.tid)
            .map(|m| m.role)
            .ok_or_else(|| {
                (
                    [(header::SET_COOKIE, state.dashboard.sessions.clear_session())],
                    Redirect::to("/login?notice=removed"),
                )
                    .into_response()
            })?;
        Ok(SignedIn {
            user: claims.sub,
            tenant: TenantId::new(claims.tid),
            role,
            session: claims.jti,
            memberships,
        })
    }
}

/// The pre-session nonce of the forms shown before login.
pub fn pre_session(headers: &HeaderMap) -> &str {
    cookie_value(
        headers.get(header::COOKIE).and_then(|v| v.to_str().ok()),
        PRE_SESSION_COOKIE,
    )
    .unwrap_or("")
}

/// A page of a form shown before login, with the pre-session cookie its CSRF token is
/// bound to.
pub fn with_pre_session(state: &QueryState, page: impl FnOnce(String) -> Response) -> Response {
    let (cookie, nonce) = state.dashboard.sessions.new_pre_session();
    (
        [(header::SET_COOKIE, cookie)],
        page(state.dashboard.sessions.csrf_token(&nonce)),
    )
        .into_response()
}

pub fn valid_email(email: &str) -> bool {
    (3..=320).contains(&email.len())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace)
}

/// Why a new password is not accepted.
pub fn weak_password(password: &str) -> Option<&'static str> {
    if password.chars().count() < 10 {
        Some("Choose a password of at least 10 characters.")
    } else if password.len() > 200 {
        Some("Choose a password of at most 200 characters.")
    } else {
        None
    }
}

pub async fn hash_password(password: String) -> Option<String> {
    tokio::task::spawn_blocking(move || weft_storage::postgres::hash_password(&password))
        .await
        .ok()
}

async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        weft_storage::postgres::password_matches(&password, hash.as_deref())
    })
    .await
    .unwrap_or(false)
}

/// After five failures in a row each attempt must wait twice as long, up to 5 minutes.
fn login_wait_secs(
    failed: i32,
    last_failure: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<i64> {
    let last = last_failure?;
    if failed < 5 {
        return None;
    }
    let wait = 2_i64.pow((failed - 5).min(8) as u32).min(300);
    let remaining = wait - (chrono::Utc::now() - last).num_seconds();
    (remaining > 0).then_some(remaining)
}

/// Why a password check did not let the user in.
pub enum LoginRefused {
    /// Too many failures: wait this many seconds.
    Throttled(i64),
    /// Unknown email or wrong password; the two are not told apart.
    Wrong,
    Unavailable(PostgresError),
}

impl LoginRefused {
    /// The message and status of the form that asked for the password.
    pub fn explain(self) -> Result<(String, StatusCode), PostgresError> {
        match self {
            LoginRefused::Throttled(wait) => Ok((
                format!("Too many failed attempts. Try again in {wait} seconds."),
                StatusCode::TOO_MANY_REQUESTS,
            )),
            LoginRefused::Wrong => Ok((
                "Wrong email or password.".to_owned(),
                StatusCode::UNAUTHORIZED,
            )),
            LoginRefused::Unavailable(error) => Err(error),
        }
    }
}

/// Checks `password` for the account `email`, slowing down repeated failures and taking
/// as long for an unknown email as for a wrong password.
pub async fn check_password(
    state: &QueryState,
    email: &str,
    password: &str,
) -> Result<User, LoginRefused> {
    let user = state
        .postgres
        .user_by_email(email)
        .await
        .map_err(LoginRefused::Unavailable)?;
    if let Some(wait) = user
        .as_ref()
        .and_then(|u| login_wait_secs(u.failed_logins, u.last_failed_login_at))
    {
        return Err(LoginRefused::Throttled(wait));
    }
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = verify_password(password.to_owned(), hash).await;
    let Some(user) = user else {
        return Err(LoginRefused::Wrong);
    };
    state
        .postgres
        .record_login(user.id, verified)
        .await
        .map_err(LoginRefused::Unavailable)?;
    if verified {
        Ok(user)
    } else {
        Err(LoginRefused::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_passwords_and_login_waits() {
        assert!(valid_email("a@b.io"));
        for bad in [
            "",
            "ab",
            "no-at.example",
            "a@b",
            "a b@c.io",
            "@b.io",
            "a@.io",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert!(weak_password("short").is_some());
        assert!(weak_password(&"x".repeat(201)).is_some());
        assert!(weak_password("correct horse").is_none());
        let just_now = Some(chrono::Utc::now());
        assert_eq!(login_wait_secs(4, just_now), None);
        assert_eq!(login_wait_secs(5, just_now), Some(1));
        assert_eq!(login_wait_secs(8, just_now), Some(8));
        assert_eq!(login_wait_secs(30, just_now), Some(256));
        assert_eq!(
            login_wait_secs(8, Some(chrono::Utc::now() - chrono::Duration::seconds(60))),
            None
        );
    }
}
