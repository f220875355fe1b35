//! Page handlers. Signed-in pages take [`SignedIn`], which resolves the session cookie to
//! a user, the organisation they work in and their role there (checked on every request,
//! so a removed membership ends access at once).

use super::session::{PRE_SESSION_COOKIE, SESSION_COOKIE, SessionError, cookie_value};
use crate::QueryState;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use askama::Template;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::sync::Arc;
use weft_model::{KeyScope, TenantId};

pub fn routes(state: Arc<QueryState>) -> Router {
    Router::new()
        .route("/", get(setup_page))
        .route("/signup", get(signup_page).post(signup))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/keys", get(keys_page).post(create_key))
        .route("/keys/{id}/revoke", post(revoke_key))
        .route("/usage", get(usage_page))
        .route("/static/weft.css", get(stylesheet))
        .with_state(state)
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

/// The navigation bar's view of the session.
struct Layout {
    signed_in: bool,
    organisation: String,
    role: String,
    csrf: String,
}

impl Layout {
    fn anonymous() -> Self {
        Layout {
            signed_in: false,
            organisation: String::new(),
            role: String::new(),
            csrf: String::new(),
        }
    }
}

fn render(status: StatusCode, template: &impl Template) -> Response {
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

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            layout: Layout::anonymous(),
            title,
            message,
        },
    )
}

fn unavailable(error: &dyn std::error::Error) -> Response {
    tracing::warn!(%error, "dashboard dependency failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Weft could not complete this request. Please try again in a moment.",
    )
}

fn forbidden_csrf() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "For your security the form could not be accepted. Go back, reload the page and try again.",
    )
}

/// A user's role in the current organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl Role {
    fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "member" => Role::Member,
            "viewer" => Role::Viewer,
            _ => return None,
        })
    }

    fn can_manage_keys(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// A request with a valid session whose user still belongs to the organisation.
struct SignedIn {
    tenant: TenantId,
    role: Role,
    organisation: String,
    role_name: String,
    /// The session id; CSRF tokens are bound to it.
    session: String,
}

impl SignedIn {
    fn layout(&self, state: &QueryState) -> Layout {
        Layout {
            signed_in: true,
            organisation: self.organisation.clone(),
            role: self.role_name.clone(),
            csrf: state.dashboard.sessions.csrf_token(&self.session),
        }
    }

    fn csrf_ok(&self, state: &QueryState, token: &str) -> bool {
        state.dashboard.sessions.csrf_ok(&self.session, token)
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
        let membership = memberships
            .into_iter()
            .find(|m| m.tenant_id == claims.tid)
            .ok_or_else(|| Redirect::to("/login").into_response())?;
        let role =
            Role::parse(&membership.role).ok_or_else(|| Redirect::to("/login").into_response())?;
        Ok(SignedIn {
            tenant: TenantId::new(membership.tenant_id),
            role,
            organisation: membership.tenant_name,
            role_name: membership.role,
            session: claims.jti,
        })
    }
}

/// The pre-session nonce of the sign-up and login forms.
fn pre_session(headers: &HeaderMap) -> &str {
    cookie_value(
        headers.get(header::COOKIE).and_then(|v| v.to_str().ok()),
        PRE_SESSION_COOKIE,
    )
    .unwrap_or("")
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    layout: Layout,
    new_key: Option<String>,
    key_text: String,
    http_endpoint: String,
    grpc_endpoint: String,
}

fn setup(state: &QueryState, layout: Layout, new_key: Option<String>) -> SetupPage {
    SetupPage {
        layout,
        key_text: new_key
            .clone()
            .unwrap_or_else(|| "YOUR_INGEST_KEY".to_owned()),
        new_key,
        http_endpoint: state.dashboard.ingest_http_url.clone(),
        grpc_endpoint: state.dashboard.ingest_grpc_url.clone(),
    }
}

async fn setup_page(State(state): State<Arc<QueryState>>, user: SignedIn) -> Response {
    render(StatusCode::OK, &setup(&state, user.layout(&state), None))
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

async fn signup_page(State(state): State<Arc<QueryState>>) -> Response {
    let (cookie, nonce) = state.dashboard.sessions.new_pre_session();
    let page = SignupPage {
        layout: Layout::anonymous(),
        csrf: state.dashboard.sessions.csrf_token(&nonce),
        error: None,
        email: String::new(),
        organisation: String::new(),
    };
    (
        [(header::SET_COOKIE, cookie)],
        render(StatusCode::OK, &page),
    )
        .into_response()
}

fn valid_email(email: &str) -> bool {
    (3..=320).contains(&email.len())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace)
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

async fn hash_password(password: String) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
        let salt = SaltString::encode_b64(&salt).ok()?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .ok()
            .map(|h| h.to_string())
    })
    .await
    .ok()
    .flatten()
}

/// A valid hash of a random password: checked against for unknown emails so that a
/// login takes as long whether or not the account exists.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4bLrbmT3fSy4Oq1OZEnqPYazAKSaqZP8MUKrmAa2ET4";

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

async fn signup(
    State(state): State<Arc<QueryState>>,
    headers: HeaderMap,
    Form(form): Form<SignupForm>,
) -> Response {
    let sessions = &state.dashboard.sessions;
    let nonce = pre_session(&headers);
    if !sessions.csrf_ok(nonce, &form.csrf) {
        return forbidden_csrf();
    }
    let email = form.email.trim().to_owned();
    let organisation = form.organisation.trim().to_owned();
    let problem = if !valid_email(&email) {
        Some("Enter a valid email address.")
    } else if organisation.is_empty() || organisation.chars().count() > 100 {
        Some("Enter an organisation name of at most 100 characters.")
    } else if form.password.chars().count() < 10 {
        Some("Choose a password of at least 10 characters.")
    } else if form.password.len() > 200 {
        Some("Choose a password of at most 200 characters.")
    } else {
        None
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
        return retry(problem, StatusCode::BAD_REQUEST);
    }
    let Some(password_hash) = hash_password(form.password.clone()).await else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Please try again.",
        );
    };
    let created = match state
        .postgres
        .create_account(
            &email,
            &password_hash,
            &organisation,
            &slug_for(&organisation),
        )
        .await
    {
        Ok(created) => created,
        Err(error) => return unavailable(&error),
    };
    let Some((user, tenant)) = created else {
        return retry(
            "An account with this email already exists. Log in instead.",
            StatusCode::CONFLICT,
        );
    };
    let key = match state
        .postgres
        .create_api_key(tenant.tenant_id(), "default ingest", KeyScope::Ingest)
        .await
    {
        Ok(key) => key,
        Err(error) => return unavailable(&error),
    };
    tracing::info!(tenant_id = %tenant.id, "organisation signed up");
    let (cookie, session) = sessions.issue(user.id, tenant.id);
    let layout = Layout {
        signed_in: true,
        organisation: tenant.name.clone(),
        role: "owner".to_owned(),
        csrf: sessions.csrf_token(&session),
    };
    (
        [(header::SET_COOKIE, cookie)],
        render(StatusCode::OK, &setup(&state, layout, Some(key.secret))),
    )
        .into_response()
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
    State(state): State<Arc<QueryState>>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let (cookie, nonce) = state.dashboard.sessions.new_pre_session();
    let notice = match query.notice.as_str() {
        "expired" => Some("Your session expired. Log in again.".to_owned()),
        "logged-out" => Some("You are logged out.".to_owned()),
        _ => None,
    };
    let page = LoginPage {
        layout: Layout::anonymous(),
        csrf: state.dashboard.sessions.csrf_token(&nonce),
        notice,
        error: None,
        email: String::new(),
    };
    (
        [(header::SET_COOKIE, cookie)],
        render(StatusCode::OK, &page),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    csrf: String,
    email: String,
    password: String,
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

async fn login(
    State(state): State<Arc<QueryState>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let sessions = &state.dashboard.sessions;
    if !sessions.csrf_ok(pre_session(&headers), &form.csrf) {
        return forbidden_csrf();
    }
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
        return retry(
            "Enter your email and password.".to_owned(),
            StatusCode::BAD_REQUEST,
        );
    }
    let user = match state.postgres.user_by_email(&email).await {
        Ok(user) => user,
        Err(error) => return unavailable(&error),
    };
    if let Some(wait) = user
        .as_ref()
        .and_then(|u| login_wait_secs(u.failed_logins, u.last_failed_login_at))
    {
        return retry(
            format!("Too many failed attempts. Try again in {wait} seconds."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let hash = user
        .as_ref()
        .map_or(DUMMY_HASH.to_owned(), |u| u.password_hash.clone());
    let verified = verify_password(form.password.clone(), hash).await;
    let known_user = user.as_ref().map(|u| u.id);
    let Some(user) = user.filter(|_| verified) else {
        if let Some(id) = known_user {
            let _ = state.postgres.record_login(id, false).await;
        }
        return retry(
            "Wrong email or password.".to_owned(),
            StatusCode::UNAUTHORIZED,
        );
    };
    if let Err(error) = state.postgres.record_login(user.id, true).await {
        return unavailable(&error);
    }
    let memberships = match state.postgres.memberships(user.id).await {
        Ok(memberships) => memberships,
        Err(error) => return unavailable(&error),
    };
    let Some(first) = memberships.first() else {
        return retry(
            "This account belongs to no organisation any more.".to_owned(),
            StatusCode::FORBIDDEN,
        );
    };
    (
        [(
            header::SET_COOKIE,
            sessions.issue(user.id, first.tenant_id).0,
        )],
        Redirect::to("/"),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<Arc<QueryState>>,
    user: SignedIn,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&state, &form.csrf) {
        return forbidden_csrf();
    }
    (
        [(header::SET_COOKIE, state.dashboard.sessions.clear_session())],
        Redirect::to("/login?notice=logged-out"),
    )
        .into_response()
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
    state: &QueryState,
    user: &SignedIn,
    status: StatusCode,
    new_key: Option<(String, KeyScope)>,
    error: Option<String>,
) -> Response {
    let keys = match state.postgres.api_keys(user.tenant).await {
        Ok(keys) => keys,
        Err(error) => return unavailable(&error),
    };
    let format = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M UTC").to_string();
    let keys = keys
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            name: k.name,
            scope: k.scope,
            prefix: k.prefix,
            created: format(k.created_at),
            last_used: k.last_used_at.map_or_else(|| "never".to_owned(), format),
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    let page = KeysPage {
        layout: user.layout(state),
        keys,
        can_manage: user.role.can_manage_keys(),
        new_key_scope: new_key
            .as_ref()
            .map(|(_, s)| s.to_string())
            .unwrap_or_default(),
        new_key: new_key.map(|(k, _)| k),
        error,
    };
    render(status, &page)
}

async fn keys_page(State(state): State<Arc<QueryState>>, user: SignedIn) -> Response {
    render_keys(&state, &user, StatusCode::OK, None, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateKeyForm {
    csrf: String,
    name: String,
    scope: String,
}

fn not_allowed() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        "Only owners and admins of this organisation can manage API keys.",
    )
}

async fn create_key(
    State(state): State<Arc<QueryState>>,
    user: SignedIn,
    Form(form): Form<CreateKeyForm>,
) -> Response {
    if !user.csrf_ok(&state, &form.csrf) {
        return forbidden_csrf();
    }
    if !user.role.can_manage_keys() {
        return not_allowed();
    }
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return render_keys(
            &state,
            &user,
            StatusCode::BAD_REQUEST,
            None,
            Some("Give the key a name of at most 200 characters.".to_owned()),
        )
        .await;
    }
    let Ok(scope) = form.scope.parse::<KeyScope>() else {
        return render_keys(
            &state,
            &user,
            StatusCode::BAD_REQUEST,
            None,
            Some("Choose the scope ingest or read.".to_owned()),
        )
        .await;
    };
    match state
        .postgres
        .create_api_key(user.tenant, name, scope)
        .await
    {
        Ok(key) => {
            render_keys(
                &state,
                &user,
                StatusCode::OK,
                Some((key.secret, scope)),
                None,
            )
            .await
        }
        Err(error) => unavailable(&error),
    }
}

async fn revoke_key(
    State(state): State<Arc<QueryState>>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&state, &form.csrf) {
        return forbidden_csrf();
    }
    if !user.role.can_manage_keys() {
        return not_allowed();
    }
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return error_page(
            StatusCode::NOT_FOUND,
            "No such key",
            "This organisation has no such API key.",
        );
    };
    let digest = match state.postgres.revoke_api_key(user.tenant, id).await {
        Ok(Some(digest)) => digest,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "No such key",
                "This organisation has no such live API key.",
            );
        }
        Err(error) => return unavailable(&error),
    };
    if let Err(error) = state.dashboard.bus.announce_key_revoked(&digest).await {
        // Ingest still drops the key when its cache entry expires (WEFT_KEY_CACHE_TTL).
        tracing::warn!(%error, "could not announce a key revocation");
    }
    state.keys.forget(&digest);
    Redirect::to("/keys").into_response()
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    layout: Layout,
    days: Vec<weft_storage::postgres::UsageDay>,
}

async fn usage_page(State(state): State<Arc<QueryState>>, user: SignedIn) -> Response {
    match state.postgres.usage(user.tenant, 30).await {
        Ok(days) => render(
            StatusCode::OK,
            &UsagePage {
                layout: user.layout(&state),
                days,
            },
        ),
        Err(error) => unavailable(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_slugs_and_login_waits() {
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
        assert!(slug_for("Acme Corp!").starts_with("acme-corp-"));
        assert!(slug_for("<script>").starts_with("script-"));
        assert!(slug_for("!!!").starts_with("org-"));
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

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
