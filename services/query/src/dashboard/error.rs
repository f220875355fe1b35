//! Why a dashboard request ends before its happy path, and the page each reason shows.
//! Handlers return `Result<Response, DashboardError>` and use `?`; the extractors of
//! [`extract`](super::extract) reject with it too.

use super::render::error_page;
use axum::extract::rejection::FormRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use weft_storage::clickhouse::ClickHouseError;
use weft_storage::postgres::PostgresError;

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// PostgreSQL failed: 503, asking to try again. The cause is logged, never shown.
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    /// ClickHouse failed: 503 like PostgreSQL. The cause is logged, never shown.
    #[error(transparent)]
    Store(#[from] ClickHouseError),
    /// The thread that hashes a new password failed: 500.
    #[error("password hashing failed")]
    PasswordHashing,
    /// The form's CSRF token is missing, forged or bound to another session: 403.
    #[error("csrf token refused")]
    CsrfRefused,
    /// The user's role does not allow `.0` ("manage API keys"): 403.
    #[error("role may not {0}")]
    NotAllowed(&'static str),
    /// The current organisation has no such `.0` ("member"), whether or not another one
    /// does: 404.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// An invitation link that is unknown, expired, revoked or used: 404.
    #[error("invitation not valid")]
    InvitationNotValid,
    /// No usable session: a redirect to `target` (a login page), clearing the session
    /// cookie with `clear_cookie` when there was one.
    #[error("session refused, redirecting to {target}")]
    SignIn {
        target: &'static str,
        clear_cookie: Option<String>,
    },
    /// A body that is not a readable form (too large, wrong content type): answered as
    /// axum answers it (413, 415, 422).
    #[error(transparent)]
    Form(#[from] FormRejection),
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        match self {
            DashboardError::Store(error) => {
                tracing::warn!(%error, "trace store failed");
                error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Weft could not read your traces just now. Please try again in a moment.",
                )
            }
            DashboardError::Postgres(error) => {
                tracing::warn!(%error, "dashboard dependency failed");
                error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Weft could not complete this request. Please try again in a moment.",
                )
            }
            DashboardError::PasswordHashing => {
                tracing::error!("password hashing failed");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Please try again.",
                )
            }
            DashboardError::CsrfRefused => error_page(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "For your security the form could not be accepted. Go back, reload the page and try again.",
            ),
            DashboardError::NotAllowed(what) => error_page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                &format!("Your role in this organisation does not allow you to {what}."),
            ),
            DashboardError::NotFound(what) => error_page(
                StatusCode::NOT_FOUND,
                &format!("No such {what}"),
                &format!("This organisation has no such {what}."),
            ),
            DashboardError::InvitationNotValid => error_page(
                StatusCode::NOT_FOUND,
                "This invitation is not valid",
                "It may have expired, been revoked or been used already. Ask an admin of the organisation for a new one.",
            ),
            DashboardError::SignIn {
                target,
                clear_cookie: Some(cookie),
            } => ([(header::SET_COOKIE, cookie)], Redirect::to(target)).into_response(),
            DashboardError::SignIn {
                target,
                clear_cookie: None,
            } => Redirect::to(target).into_response(),
            DashboardError::Form(rejection) => rejection.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status() {
        for (error, status) in [
            (DashboardError::CsrfRefused, StatusCode::FORBIDDEN),
            (
                DashboardError::NotAllowed("manage members"),
                StatusCode::FORBIDDEN,
            ),
            (DashboardError::NotFound("member"), StatusCode::NOT_FOUND),
            (DashboardError::InvitationNotValid, StatusCode::NOT_FOUND),
            (
                DashboardError::SignIn {
                    target: "/login",
                    clear_cookie: None,
                },
                StatusCode::SEE_OTHER,
            ),
        ] {
            let shown = error.to_string();
            assert_eq!(error.into_response().status(), status, "{shown}");
        }
    }
}
