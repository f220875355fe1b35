//! Getting in and around: sign-up, login, logout (of this session or of all the user's),
//! switching organisation, and usage. Sign-up ends on the set-up page of [`setup`](super::setup).

use super::DashboardState;
use super::credentials::{valid_email, weak_password};
use super::error::DashboardError;
use super::extract::{
    ClientAddress, CsrfForm, CsrfProtected, PreSession, SignedIn, Submitted, with_pre_session,
};
use super::render::{Layout, render};
use super::setup::setup;
use super::throttle::check_password;
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::sync::Arc;
use weft_model::KeyScope;
use weft_storage::postgres::SessionEnd;

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/signup", get(signup_page).post(signup))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/logout/everywhere", post(logout_everywhere))
        .route("/switch", post(switch_organisation))
        .route("/usage", get(usage_page))
        .route("/static/weft.css", get(stylesheet))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../../../frontend/static/weft.css"),
    )
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    layout: Layout,
    csrf: String,
    error: Option<String>,
    email: String,
    organisation: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SignupForm {
    csrf: String,
    email: String,
    organisation: String,
    password: String,
}

impl CsrfProtected for SignupForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn signup_page(State(state): State<Arc<DashboardState>>) -> Response {
    with_pre_session(&state, |csrf| {
        render(
            StatusCode::OK,
            &SignupPage {
                layout: Layout::anonymous(),
                csrf,
                error: None,
                email: String::new(),
                organisation: String::new(),
            },
        )
    })
}

/// A URL-safe slug for an organisation name, made unique with a random suffix.
fn slug_for(name: &str) -> String {
    let mut slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while slug.contains("--") {
        slug = slug.replace("--", "-");
    }
    let base: String = slug.trim_matches('-').chars().take(40).collect();
    let base = base.trim_end_matches('-');
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    if base.is_empty() {
        format!("org-{suffix}")
    } else {
        format!("{base}-{suffix}")
    }
}

/// Creates the account. Whether an email is taken is said plainly, so sign-up tells
/// anyone who tries which emails have accounts; each try costs an attempt of the
/// client's address budget, like a login, which keeps such probing slow.
async fn signup(
    State(state): State<Arc<DashboardState>>,
    client: ClientAddress,
    PreSession(form): PreSession<SignupForm>,
) -> Result<Response, DashboardError> {
    let email = form.email.trim().to_owned();
    let organisation = form.organisation.trim().to_owned();
    let problem = if !valid_email(&email) {
        Some("Enter a valid email address.".to_owned())
    } else if organisation.is_empty() || organisation.chars().count() > 100 {
        Some("Enter an organisation name of at most 100 characters.".to_owned())
    } else {
        weak_password(&form.password, &[&email, &organisation])
    };
    let retry = |error: &str, status: StatusCode| {
        let page = SignupPage {
            layout: Layout::anonymous(),
            csrf: form.csrf.clone(),
            error: Some(error.to_owned()),
            email: email.clone(),
            organisation: organisation.clone(),
        };
        render(status, &page)
    };
    if let Some(problem) = problem {
        return Ok(retry(&problem, StatusCode::BAD_REQUEST));
    }
    let turn = match state.throttle.admit(&state, &client).await {
        Ok(turn) => turn,
        Err(refused) => return Ok(refused.respond(|message, status| retry(&message, status))?),
    };
    let password_hash = turn.hash_password(form.password.clone()).await?;
    let created = state
        .postgres
        .create_account(
            &email,
            &password_hash,
            &organisation,
            &slug_for(&organisation),
        )
        .await?;
    let Some((user, tenant)) = created else {
        return Ok(retry(
            "An account with this email already exists. Log in instead.",
            StatusCode::CONFLICT,
        ));
    };
    let key = state
        .postgres
        .create_api_key(tenant.tenant_id(), "default ingest", KeyScope::Ingest)
        .await?;
    tracing::info!(tenant_id = %tenant.id, "organisation signed up");
    let session = state.begin_session(user.id, tenant.id).await?;
    let layout = Layout {
        signed_in: true,
        organisation: tenant.name.clone(),
        role: weft_model::Role::Owner.to_string(),
        csrf: state.sessions.csrf_token(&session.id),
        organisations: Vec::new(),
    };
    Ok((
        [(header::SET_COOKIE, session.cookie)],
        render(StatusCode::OK, &setup(&state, layout, Some(key.secret))),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    email: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginQuery {
    notice: String,
}

async fn login_page(
    State(state): State<Arc<DashboardState>>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let notice = match query.notice.as_str() {
        "expired" => Some("Your session expired. Log in again."),
        "logged-out" => Some("You are logged out."),
        "removed" => Some("You are no longer a member of that organisation. Log in again."),
        "left" => Some("You left the organisation."),
        "password-reset" => Some("Your password is set. Log in with it."),
        "organisation-deleted" => Some(
            "The organisation and all its data are deleted, and so is your account, which belonged to no other organisation.",
        ),
        _ => None,
    };
    with_pre_session(&state, |csrf| {
        render(
            StatusCode::OK,
            &LoginPage {
                layout: Layout::anonymous(),
                csrf,
                notice: notice.map(str::to_owned),
                error: None,
                email: String::new(),
            },
        )
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    csrf: String,
    email: String,
    password: String,
}

impl CsrfProtected for LoginForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn login(
    State(state): State<Arc<DashboardState>>,
    client: ClientAddress,
    PreSession(form): PreSession<LoginForm>,
) -> Result<Response, DashboardError> {
    let email = form.email.trim().to_owned();
    let retry = |error: String, status: StatusCode| {
        let page = LoginPage {
            layout: Layout::anonymous(),
            csrf: form.csrf.clone(),
            notice: None,
            error: Some(error),
            email: email.clone(),
        };
        render(status, &page)
    };
    if email.is_empty()
        || form.password.is_empty()
        || email.len() > 320
        || form.password.len() > 200
    {
        return Ok(retry(
            "Enter your email and password.".to_owned(),
            StatusCode::BAD_REQUEST,
        ));
    }
    let user = match check_password(&state, &client, &email, &form.password).await {
        Ok(user) => user,
        Err(refused) => return Ok(refused.respond(retry)?),
    };
    let memberships = state.postgres.memberships(user.id).await?;
    let Some(first) = memberships.first() else {
        return Ok(retry(
            "This account belongs to no organisation any more.".to_owned(),
            StatusCode::FORBIDDEN,
        ));
    };
    let session = state.begin_session(user.id, first.tenant_id).await?;
    Ok(([(header::SET_COOKIE, session.cookie)], Redirect::to("/")).into_response())
}

async fn logout(
    State(state): State<Arc<DashboardState>>,
    Submitted { user, .. }: Submitted<CsrfForm>,
) -> Result<Response, DashboardError> {
    state
        .postgres
        .end_session(&user.session, user.user, SessionEnd::LoggedOut)
        .await?;
    Ok(logged_out(&state))
}

/// Ends every session of the user, on every device and in every organisation.
async fn logout_everywhere(
    State(state): State<Arc<DashboardState>>,
    Submitted { user, .. }: Submitted<CsrfForm>,
) -> Result<Response, DashboardError> {
    state
        .postgres
        .end_sessions_of(user.user, SessionEnd::LoggedOutEverywhere)
        .await?;
    tracing::info!(tenant_id = %user.tenant, "logged out everywhere");
    Ok(logged_out(&state))
}

fn logged_out(state: &DashboardState) -> Response {
    (
        [(header::SET_COOKIE, state.sessions.clear_session())],
        Redirect::to("/login?notice=logged-out"),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SwitchForm {
    csrf: String,
    organisation: String,
}

impl CsrfProtected for SwitchForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Moves the user to another organisation of theirs, in a new session that replaces
/// this one.
async fn switch_organisation(
    State(state): State<Arc<DashboardState>>,
    Submitted { user, form, .. }: Submitted<SwitchForm>,
) -> Result<Response, DashboardError> {
    let target = form.organisation.parse::<uuid::Uuid>().ok().filter(|id| {
        user.memberships
            .iter()
            .any(|membership| membership.tenant_id == *id)
    });
    let target = target.ok_or(DashboardError::NotFound("organisation"))?;
    let session = state.begin_session(user.user, target).await?;
    state
        .postgres
        .end_session(&user.session, user.user, SessionEnd::Switched)
        .await?;
    Ok(([(header::SET_COOKIE, session.cookie)], Redirect::to("/")).into_response())
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    layout: Layout,
    days: Vec<UsageRow>,
}

/// One day of usage as the page shows it: counts with thousands separators, log bytes in
/// decimal units (the exact number in a tooltip).
struct UsageRow {
    day: String,
    spans_received: String,
    spans_accepted: String,
    spans_rejected: String,
    log_records_received: String,
    log_records_accepted: String,
    log_records_rejected: String,
    log_bytes_accepted: String,
    log_bytes_exact: String,
}

impl From<&weft_storage::postgres::UsageDay> for UsageRow {
    fn from(day: &weft_storage::postgres::UsageDay) -> Self {
        UsageRow {
            day: day.day.to_string(),
            spans_received: grouped(day.spans_received),
            spans_accepted: grouped(day.spans_accepted),
            spans_rejected: grouped(day.spans_rejected),
            log_records_received: grouped(day.log_records_received),
            log_records_accepted: grouped(day.log_records_accepted),
            log_records_rejected: grouped(day.log_records_rejected),
            log_bytes_accepted: human_bytes(day.log_bytes_accepted),
            log_bytes_exact: format!("{} bytes", grouped(day.log_bytes_accepted)),
        }
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A byte count in decimal units with one decimal, as `3.2 MB`; below 1 kB exact.
fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes.unsigned_abs() < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    // Rounding to one decimal may carry into the next unit (999.96 kB is 1.0 MB).
    while value.abs() >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

async fn usage_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    let days = state.postgres.usage(user.tenant, 30).await?;
    Ok(render(
        StatusCode::OK,
        &UsagePage {
            layout: user.layout(&state),
            days: days.iter().map(UsageRow::from).collect(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::{grouped, human_bytes, slug_for};

    #[test]
    fn usage_numbers_read_at_a_glance() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(-12_345), "-12,345");
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(3_245_678), "3.2 MB");
        assert_eq!(human_bytes(999_960), "1.0 MB");
        assert_eq!(human_bytes(52_428_800), "52.4 MB");
        assert_eq!(human_bytes(7_000_000_000_000), "7.0 TB");
        assert_eq!(human_bytes(i64::MAX), "9.2 EB");
    }

    #[test]
    fn slugs_are_url_safe_and_unique() {
        assert!(slug_for("Acme Corp!").starts_with("acme-corp-"));
        assert!(slug_for("<script>").starts_with("script-"));
        assert!(slug_for("!!!").starts_with("org-"));
        assert_ne!(slug_for("acme"), slug_for("acme"));
    }
}
