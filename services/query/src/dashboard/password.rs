//! Passwords: the account page, where a signed-in user changes theirs (the current one
//! required; every other session of theirs ends, this one stays), and resetting a
//! forgotten one through a link sent by email. The request page answers alike whether
//! or not an account has the email, and looks it up and sends the email only after
//! answering, so neither its words nor its timing tell; requests are limited per client
//! address and per account.

use super::DashboardState;
use super::credentials::{valid_email, weak_password};
use super::error::DashboardError;
use super::extract::{
    ClientAddress, CsrfProtected, PreSession, SignedIn, Submitted, with_pre_session,
};
use super::render::{Layout, error_page, render};
use super::throttle::{LoginRefused, check_password};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use weft_mail::Email;
use weft_model::Role;
use weft_storage::postgres::{ResetRefused, User};

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/account", get(account_page))
        .route("/account/password", post(change_password))
        .route("/password/forgot", get(forgot_page).post(request_reset))
        .route(
            "/password/reset/{token}",
            get(reset_page).post(reset_password),
        )
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    email: String,
    is_owner: bool,
    notice: Option<String>,
    error: Option<String>,
}

fn account_response(
    state: &DashboardState,
    user: &SignedIn,
    email: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<String>,
) -> Response {
    let page = AccountPage {
        layout: user.layout(state),
        email: email.to_owned(),
        is_owner: user.role == Role::Owner,
        notice: notice.map(str::to_owned),
        error,
    };
    render(status, &page)
}

async fn account_of(state: &DashboardState, user: &SignedIn) -> Result<User, DashboardError> {
    state
        .postgres
        .user_by_id(user.user)
        .await?
        .ok_or(DashboardError::NotFound("account"))
}

async fn account_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    let account = account_of(&state, &user).await?;
    Ok(account_response(
        &state,
        &user,
        &account.email,
        StatusCode::OK,
        None,
        None,
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChangePasswordForm {
    csrf: String,
    current: String,
    new_password: String,
    confirm: String,
}

impl CsrfProtected for ChangePasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The organisation names of the user, which a password must not be made of.
fn organisation_names(user: &SignedIn) -> Vec<&str> {
    user.memberships
        .iter()
        .map(|m| m.tenant_name.as_str())
        .collect()
}

async fn change_password(
    State(state): State<Arc<DashboardState>>,
    client: ClientAddress,
    Submitted { user, form, .. }: Submitted<ChangePasswordForm>,
) -> Result<Response, DashboardError> {
    let account = account_of(&state, &user).await?;
    let refuse = |status: StatusCode, error: String| {
        account_response(&state, &user, &account.email, status, None, Some(error))
    };
    if form.current.is_empty() || form.current.len() > 200 {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "Enter your current password.".to_owned(),
        ));
    }
    if form.new_password != form.confirm {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "The two new passwords differ. Type the same one twice.".to_owned(),
        ));
    }
    let mut context = organisation_names(&user);
    context.push(&account.email);
    if let Some(problem) = weak_password(&form.new_password, &context) {
        return Ok(refuse(StatusCode::BAD_REQUEST, problem));
    }
    if form.new_password == form.current {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "The new password is the current one. Choose another.".to_owned(),
        ));
    }
    match check_password(&state, &client, &account.email, &form.current).await {
        Ok(_) => {}
        Err(LoginRefused::Wrong) => {
            return Ok(refuse(
                StatusCode::UNAUTHORIZED,
                "Your current password is not right.".to_owned(),
            ));
        }
        Err(refused) => return Ok(refused.respond(|message, status| refuse(status, message))?),
    }
    let turn = match state.throttle.admit(&state, &client).await {
        Ok(turn) => turn,
        Err(refused) => return Ok(refused.respond(|message, status| refuse(status, message))?),
    };
    let hash = turn.hash_password(form.new_password.clone()).await?;
    state
        .postgres
        .change_password(user.user, &hash, &user.session)
        .await?;
    tracing::info!(tenant_id = %user.tenant, "password changed");
    Ok(account_response(
        &state,
        &user,
        &account.email,
        StatusCode::OK,
        Some("Your password is changed. Every other session of yours is logged out."),
        None,
    ))
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage {
    layout: Layout,
    csrf: String,
    enabled: bool,
    email: String,
    error: Option<String>,
    /// The email the answer is about, once a request was made.
    sent_to: Option<String>,
    ttl: String,
}

/// A duration as a sentence says it: "1 hour", "30 minutes", "45 seconds".
fn spoken(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (count, unit) = if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

fn forgot_form(
    state: &DashboardState,
    csrf: String,
    status: StatusCode,
    email: String,
    error: Option<String>,
    sent_to: Option<String>,
) -> Response {
    let enabled = state.mailer.enabled();
    let status = if enabled || sent_to.is_some() {
        status
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    render(
        status,
        &ForgotPage {
            layout: Layout::anonymous(),
            csrf,
            enabled,
            email,
            error,
            sent_to,
            ttl: spoken(state.password_reset_ttl),
        },
    )
}

async fn forgot_page(State(state): State<Arc<DashboardState>>) -> Response {
    with_pre_session(&state, |csrf| {
        forgot_form(&state, csrf, StatusCode::OK, String::new(), None, None)
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ForgotForm {
    csrf: String,
    email: String,
}

impl CsrfProtected for ForgotForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn request_reset(
    State(state): State<Arc<DashboardState>>,
    client: ClientAddress,
    PreSession(form): PreSession<ForgotForm>,
) -> Result<Response, DashboardError> {
    let email = form.email.trim().to_owned();
    let again = |status: StatusCode, error: String| {
        forgot_form(
            &state,
            form.csrf.clone(),
            status,
            email.clone(),
            Some(error),
            None,
        )
    };
    if !state.mailer.enabled() {
        return Ok(forgot_form(
            &state,
            form.csrf.clone(),
            StatusCode::SERVICE_UNAVAILABLE,
            email,
            None,
            None,
        ));
    }
    if !valid_email(&email) {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "Enter a valid email address.".to_owned(),
        ));
    }
    if let Err(refused) = state.throttle.admit_reset_request(&state, &client).await {
        return Ok(refused.respond(|message, status| again(status, message))?);
    }
    // Whether the email has an account is looked up, and the link sent, after the
    // answer: neither the page nor its timing may tell.
    tokio::spawn(send_reset_link(state.clone(), email.clone()));
    Ok(forgot_form(
        &state,
        form.csrf.clone(),
        StatusCode::OK,
        String::new(),
        None,
        Some(email),
    ))
}

/// Makes and sends a reset link for the account of `email`, if it has one and has not
/// had its links for the hour; failures are logged.
async fn send_reset_link(state: Arc<DashboardState>, email: String) {
    let created = state
        .postgres
        .create_password_reset(
            &email,
            state.password_reset_ttl,
            i64::from(state.password_resets_per_hour),
        )
        .await;
    let reset = match created {
        Ok(Ok(reset)) => reset,
        Ok(Err(ResetRefused::TooMany)) => {
            tracing::info!("password reset refused: too many this hour");
            return;
        }
        Ok(Err(ResetRefused::UnknownEmail)) => return,
        Err(error) => {
            tracing::warn!(%error, "password reset link not made");
            return;
        }
    };
    let link = format!("{}/password/reset/{}", state.public_url, reset.token);
    let message = reset_email(&reset.user, &link, state.password_reset_ttl);
    match state.mailer.send(message).await {
        Ok(()) => tracing::info!("password reset link sent"),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "password reset link not sent");
        }
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn reset_email(user: &User, link: &str, ttl: Duration) -> Email {
    let ttl = spoken(ttl);
    let text = format!(
        "Someone, hopefully you, asked to reset the password of the Weft account {email}.\n\n\
         Choose a new password here within {ttl}; the link works once:\n\n{link}\n\n\
         If it was not you, ignore this email: your password stays as it is.\n",
        email = user.email,
    );
    let html = format!(
        "<p>Someone, hopefully you, asked to reset the password of the Weft account \
         <strong>{email}</strong>.</p>\
         <p><a href=\"{link}\">Choose a new password</a> within {ttl}; the link works once:<br>\
         <code>{link}</code></p>\
         <p>If it was not you, ignore this email: your password stays as it is.</p>",
        email = escape_html(&user.email),
        link = escape_html(link),
    );
    Email {
        to: vec![user.email.clone()],
        subject: "Reset your Weft password".to_owned(),
        text,
        html,
    }
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPage {
    layout: Layout,
    csrf: String,
    token: String,
    email: String,
    error: Option<String>,
}

fn link_not_valid() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "This link is not valid",
        "Password reset links work once and expire. Ask for a new one on the log-in page (Forgot password?).",
    )
}

async fn reset_page(
    State(state): State<Arc<DashboardState>>,
    Path(token): Path<String>,
) -> Result<Response, DashboardError> {
    let Some(user) = state.postgres.password_reset_user(&token).await? else {
        return Ok(link_not_valid());
    };
    Ok(with_pre_session(&state, |csrf| {
        render(
            StatusCode::OK,
            &ResetPage {
                layout: Layout::anonymous(),
                csrf,
                token,
                email: user.email,
                error: None,
            },
        )
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResetForm {
    csrf: String,
    new_password: String,
    confirm: String,
}

impl CsrfProtected for ResetForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn reset_password(
    State(state): State<Arc<DashboardState>>,
    Path(token): Path<String>,
    client: ClientAddress,
    PreSession(form): PreSession<ResetForm>,
) -> Result<Response, DashboardError> {
    let Some(user) = state.postgres.password_reset_user(&token).await? else {
        return Ok(link_not_valid());
    };
    let again = |status: StatusCode, error: String| {
        render(
            status,
            &ResetPage {
                layout: Layout::anonymous(),
                csrf: form.csrf.clone(),
                token: token.clone(),
                email: user.email.clone(),
                error: Some(error),
            },
        )
    };
    if form.new_password != form.confirm {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "The two passwords differ. Type the same one twice.".to_owned(),
        ));
    }
    let memberships = state.postgres.memberships(user.id).await?;
    let mut context: Vec<&str> = memberships.iter().map(|m| m.tenant_name.as_str()).collect();
    context.push(&user.email);
    if let Some(problem) = weak_password(&form.new_password, &context) {
        return Ok(again(StatusCode::BAD_REQUEST, problem));
    }
    let turn = match state.throttle.admit(&state, &client).await {
        Ok(turn) => turn,
        Err(refused) => return Ok(refused.respond(|message, status| again(status, message))?),
    };
    let hash = turn.hash_password(form.new_password.clone()).await?;
    if state
        .postgres
        .reset_password(&token, &hash)
        .await?
        .is_none()
    {
        return Ok(link_not_valid());
    }
    tracing::info!("password reset");
    Ok(Redirect::to("/login?notice=password-reset").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_spoken() {
        assert_eq!(spoken(Duration::from_secs(3600)), "1 hour");
        assert_eq!(spoken(Duration::from_secs(7200)), "2 hours");
        assert_eq!(spoken(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(spoken(Duration::from_secs(90)), "90 seconds");
        assert_eq!(spoken(Duration::from_secs(1)), "1 second");
    }

    #[test]
    fn the_email_escapes_what_it_quotes() {
        let user = User {
            id: uuid::Uuid::nil(),
            email: "a<b>@example.com".to_owned(),
            password_hash: String::new(),
        };
        let email = reset_email(
            &user,
            "https://weft.example.com/password/reset/ab",
            Duration::from_secs(3600),
        );
        assert!(email.html.contains("a&lt;b&gt;@example.com"));
        assert!(email.text.contains("within 1 hour"));
        assert!(
            email
                .text
                .contains("https://weft.example.com/password/reset/ab")
        );
    }
}
