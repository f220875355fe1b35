//! Invitations: owners and admins invite someone by email with a role (only owners
//! invite owners) and get a link with a random token; the invitee opens it to join,
//! creating their account or logging in to the one they have. Open invitations are
//! listed on the members page, where admins revoke them.

use super::DashboardState;
use super::credentials::{valid_email, weak_password};
use super::error::DashboardError;
use super::extract::{
    Authorized, ClientAddress, CsrfForm, CsrfProtected, InvitationId, ManageMembers, PathId,
    PreSession, with_pre_session,
};
use super::members::{Outcome, refuse, render_members};
use super::render::{Layout, render};
use super::throttle::check_password;
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use weft_model::Role;
use weft_storage::postgres::{Invitation, MembershipChange};

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/members/invite", post(invite))
        .route("/invitations/{id}/revoke", post(revoke_invitation))
        .route(
            "/invite/{token}",
            get(invitation_page).post(accept_invitation),
        )
}

const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where invitation links point: the dashboard's public URL (`WEFT_PUBLIC_URL`), never
/// an address taken from the request, which whoever sends it chooses.
fn invitation_link(state: &DashboardState, token: &str) -> String {
    format!("{}/invite/{token}", state.public_url)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InviteForm {
    csrf: String,
    email: String,
    role: String,
}

impl CsrfProtected for InviteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn invite(
    State(state): State<Arc<DashboardState>>,
    Authorized { user, form, .. }: Authorized<ManageMembers, InviteForm>,
) -> Result<Response, DashboardError> {
    let email = form.email.trim();
    if !valid_email(email) {
        return refuse(
            &state,
            &user,
            StatusCode::BAD_REQUEST,
            "Enter a valid email address to invite.",
        )
        .await;
    }
    let Ok(role) = form.role.parse::<Role>() else {
        return refuse(
            &state,
            &user,
            StatusCode::BAD_REQUEST,
            "Choose the role owner, admin, member or viewer.",
        )
        .await;
    };
    if !user.role.may_assign(None, Some(role)) {
        return Err(DashboardError::NotAllowed("invite an owner"));
    }
    let created = state
        .postgres
        .create_invitation(user.tenant, email, role, user.user, INVITATION_TTL)
        .await?;
    let Some(invitation) = created else {
        return refuse(
            &state,
            &user,
            StatusCode::CONFLICT,
            "This person is already a member of the organisation.",
        )
        .await;
    };
    tracing::info!(tenant_id = %user.tenant, %role, "member invited");
    let outcome = Outcome::Invited {
        email: email.to_owned(),
        link: invitation_link(&state, &invitation.token),
    };
    render_members(&state, &user, StatusCode::OK, Some(outcome)).await
}

async fn revoke_invitation(
    State(state): State<Arc<DashboardState>>,
    invitation: PathId<InvitationId>,
    Authorized { user, .. }: Authorized<ManageMembers, CsrfForm>,
) -> Result<Response, DashboardError> {
    let actor = user.role;
    let revoked = state
        .postgres
        .revoke_invitation(user.tenant, invitation.id, |role| {
            actor.may_assign(None, Some(role))
        })
        .await?;
    match revoked.ok_or_else(|| invitation.not_found())? {
        MembershipChange::Done => Ok(Redirect::to("/members").into_response()),
        _ => Err(DashboardError::NotAllowed(
            "revoke an invitation to be owner",
        )),
    }
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitationPage {
    layout: Layout,
    csrf: String,
    token: String,
    organisation: String,
    email: String,
    role: String,
    /// The invited email has an account: log in to accept, rather than create one.
    has_account: bool,
    error: Option<String>,
}

/// The open invitation of a link, and whether its email has an account.
async fn open_invitation(
    state: &DashboardState,
    token: &str,
) -> Result<(Invitation, bool), DashboardError> {
    let invitation = state
        .postgres
        .open_invitation(token)
        .await?
        .ok_or(DashboardError::InvitationNotValid)?;
    let user = state.postgres.user_by_email(&invitation.email).await?;
    Ok((invitation, user.is_some()))
}

fn invitation_form(
    csrf: String,
    token: String,
    invitation: Invitation,
    has_account: bool,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    render(
        status,
        &InvitationPage {
            layout: Layout::anonymous(),
            csrf,
            token,
            organisation: invitation.tenant_name,
            email: invitation.email,
            role: invitation.role.to_string(),
            has_account,
            error,
        },
    )
}

async fn invitation_page(
    State(state): State<Arc<DashboardState>>,
    Path(token): Path<String>,
) -> Result<Response, DashboardError> {
    let (invitation, has_account) = open_invitation(&state, &token).await?;
    Ok(with_pre_session(&state, |csrf| {
        invitation_form(csrf, token, invitation, has_account, StatusCode::OK, None)
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AcceptForm {
    csrf: String,
    password: String,
}

impl CsrfProtected for AcceptForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn accept_invitation(
    State(state): State<Arc<DashboardState>>,
    Path(token): Path<String>,
    client: ClientAddress,
    PreSession(form): PreSession<AcceptForm>,
) -> Result<Response, DashboardError> {
    let (invitation, has_account) = open_invitation(&state, &token).await?;
    let retry = |invitation: Invitation, status: StatusCode, error: String| {
        invitation_form(
            form.csrf.clone(),
            token.clone(),
            invitation,
            has_account,
            status,
            Some(error),
        )
    };
    let tenant = invitation.tenant_id;
    let user = if has_account {
        if form.password.is_empty() || form.password.len() > 200 {
            return Ok(retry(
                invitation,
                StatusCode::BAD_REQUEST,
                "Enter your password.".to_owned(),
            ));
        }
        let user = match check_password(&state, &client, &invitation.email, &form.password).await {
            Ok(user) => user,
            Err(refused) => {
                return Ok(refused.respond(|message, status| retry(invitation, status, message))?);
            }
        };
        if !state
            .postgres
            .accept_invitation(&invitation, user.id)
            .await?
        {
            return Err(DashboardError::InvitationNotValid);
        }
        user.id
    } else {
        let context = [invitation.email.as_str(), invitation.tenant_name.as_str()];
        if let Some(problem) = weak_password(&form.password, &context) {
            return Ok(retry(invitation, StatusCode::BAD_REQUEST, problem));
        }
        let turn = match state.throttle.admit(&state, &client).await {
            Ok(turn) => turn,
            Err(refused) => {
                return Ok(refused.respond(|message, status| retry(invitation, status, message))?);
            }
        };
        let hash = turn.hash_password(form.password.clone()).await?;
        state
            .postgres
            .accept_invitation_as_new_user(&invitation, &hash)
            .await?
            .ok_or(DashboardError::InvitationNotValid)?
            .id
    };
    tracing::info!(tenant_id = %tenant, "invitation accepted");
    let session = state.begin_session(user, tenant).await?;
    Ok(([(header::SET_COOKIE, session.cookie)], Redirect::to("/")).into_response())
}
