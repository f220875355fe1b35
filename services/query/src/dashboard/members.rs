//! Members of the organisation and invitations. Everyone sees who is a member; owners
//! and admins invite, change roles and remove (admins not owners, and only owners make
//! owners, see [`Role::may_assign`]); anyone may leave; an organisation always keeps an
//! owner. An invitation is a link with a random token that the invitee opens to join,
//! creating their account or logging in to it.

use super::keys::format_time;
use super::web::{
    CsrfForm, Layout, SignedIn, check_password, error_page, forbidden_csrf, hash_password,
    not_allowed, not_found, pre_session, render, unavailable, valid_email, weak_password,
    with_pre_session,
};
use crate::QueryState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use weft_model::Role;
use weft_storage::postgres::{Invitation, MembershipChange};

pub fn routes() -> Router<Arc<QueryState>> {
    Router::new()
        .route("/members", get(members_page))
        .route("/members/invite", post(invite))
        .route("/members/{user}/role", post(change_role))
        .route("/members/{user}/remove", post(remove_member))
        .route("/invitations/{id}/revoke", post(revoke_invitation))
        .route(
            "/invite/{token}",
            get(invitation_page).post(accept_invitation),
        )
}

const MANAGE_MEMBERS: &str = "manage members";
const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

struct MemberRow {
    user_id: uuid::Uuid,
    email: String,
    role: String,
    joined: String,
    you: bool,
    /// The roles the viewer may give this member; empty when they may not change it.
    assignable: Vec<&'static str>,
    removable: bool,
}

struct InvitationRow {
    id: uuid::Uuid,
    email: String,
    role: String,
    expires: String,
}

/// What a form on the page just did.
enum Outcome {
    Error(String),
    Invited { email: String, link: String },
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    layout: Layout,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    /// The roles the viewer may invite with; empty when they may not invite.
    invitable: Vec<&'static str>,
    error: Option<String>,
    invited: Option<(String, String)>,
}

/// The roles `actor` may move someone from `current` to.
fn assignable(actor: Role, current: Option<Role>) -> Vec<&'static str> {
    Role::ALL
        .into_iter()
        .filter(|role| actor.may_assign(current, Some(*role)))
        .map(Role::as_str)
        .collect()
}

async fn render_members(
    state: &QueryState,
    user: &SignedIn,
    status: StatusCode,
    outcome: Option<Outcome>,
) -> Response {
    let members = match state.postgres.members(user.tenant).await {
        Ok(members) => members,
        Err(error) => return unavailable(&error),
    };
    let invitations = if user.role.is_admin() {
        match state.postgres.invitations(user.tenant).await {
            Ok(invitations) => invitations,
            Err(error) => return unavailable(&error),
        }
    } else {
        Vec::new()
    };
    let members = members
        .into_iter()
        .map(|m| {
            let you = m.user_id == user.user;
            MemberRow {
                assignable: assignable(user.role, Some(m.role)),
                removable: you || user.role.may_assign(Some(m.role), None),
                user_id: m.user_id,
                email: m.email,
                role: m.role.to_string(),
                joined: format_time(m.joined_at),
                you,
            }
        })
        .collect();
    let invitations = invitations
        .into_iter()
        .map(|i| InvitationRow {
            id: i.id,
            email: i.email,
            role: i.role.to_string(),
            expires: format_time(i.expires_at),
        })
        .collect();
    let (error, invited) = match outcome {
        Some(Outcome::Error(error)) => (Some(error), None),
        Some(Outcome::Invited { email, link }) => (None, Some((email, link))),
        None => (None, None),
    };
    let page = MembersPage {
        layout: user.layout(state),
        members,
        invitations,
        invitable: assignable(user.role, None),
        error,
        invited,
    };
    render(status, &page)
}

async fn members_page(State(state): State<Arc<QueryState>>, user: SignedIn) -> Response {
    render_members(&state, &user, StatusCode::OK, None).await
}

/// The page after a change that failed for a reason the user can act on.
async fn refuse(state: &QueryState, user: &SignedIn, status: StatusCode, why: &str) -> Response {
    render_members(state, user, status, Some(Outcome::Error(why.to_owned()))).await
}

/// Where invitation links point: the address the admin reached the dashboard at.
fn invitation_link(state: &QueryState, headers: &HeaderMap, token: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|host| {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    match host {
        Some(host) => {
            let scheme = if state.dashboard.sessions.secure_cookies() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{host}/invite/{token}")
        }
        None => format!("/invite/{token}"),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InviteForm {
    csrf: String,
    email: String,
    role: String,
}

async fn invite(
    State(state): State<Arc<QueryState>>,
    user: SignedIn,
    headers: HeaderMap,
    Form(form): Form<InviteForm>,
) -> Response {
    if let Some(page) = user.refusal(&state, &form.csrf, Role::is_admin, MANAGE_MEMBERS) {
        return page;
    }
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
        return not_allowed("invite an owner");
    }
    let created = state
        .postgres
        .create_invitation(user.tenant, email, role, user.user, INVITATION_TTL)
        .await;
    match created {
        Ok(Some(invitation)) => {
            tracing::info!(tenant_id = %user.tenant, %role, "member invited");
            let outcome = Outcome::Invited {
                email: email.to_owned(),
                link: invitation_link(&state, &headers, &invitation.token),
            };
            render_members(&state, &user, StatusCode::OK, Some(outcome)).await
        }
        Ok(None) => {
            refuse(
                &state,
                &user,
                StatusCode::CONFLICT,
                "This person is already a member of the organisation.",
            )
            .await
        }
        Err(error) => unavailable(&error),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoleForm {
    csrf: String,
    role: String,
}

async fn change_role(
    State(state): State<Arc<QueryState>>,
    user: SignedIn,
    Path(target): Path<String>,
    Form(form): Form<RoleForm>,
) -> Response {
    if let Some(page) = user.refusal(&state, &form.csrf, Role::is_admin, MANAGE_MEMBERS) {
        return page;
    }
    let Ok(target) = target.parse::<uuid::Uuid>() else {
        return not_found("member");
    };
    let Ok(role) = form.role.parse::<Role>() else {
        return refuse(
            &state,
            &user,
            StatusCode::BAD_REQUEST,
            "Choose the role owner, admin, member or viewer.",
        )
        .await;
    };
    let actor = user.role;
    let change = state
        .postgres
        .change_membership(user.tenant, target, Some(role), |current| {
            actor.may_assign(Some(current), Some(role))
        })
        .await;
    match change {
        Ok(MembershipChange::Done) => Redirect::to("/members").into_response(),
        Ok(refused) => explain_refusal(&state, &user, refused).await,
        Err(error) => unavailable(&error),
    }
}

async fn explain_refusal(
    state: &QueryState,
    user: &SignedIn,
    change: MembershipChange,
) -> Response {
    match change {
        MembershipChange::NotMember => not_found("member"),
        MembershipChange::Forbidden(Role::Owner) => not_allowed("change an owner"),
        MembershipChange::Forbidden(_) => not_allowed(MANAGE_MEMBERS),
        MembershipChange::LastOwner => {
            refuse(
                state,
                user,
                StatusCode::CONFLICT,
                "An organisation needs an owner. Make another member owner first.",
            )
            .await
        }
        MembershipChange::Done => Redirect::to("/members").into_response(),
    }
}

async fn remove_member(
    State(state): State<Arc<QueryState>>,
    user: SignedIn,
    Path(target): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&state, &form.csrf) {
        return forbidden_csrf();
    }
    let Ok(target) = target.parse::<uuid::Uuid>() else {
        return not_found("member");
    };
    let leaving = target == user.user;
    // Anyone may leave; removing someone else needs the right to.
    if !leaving && !user.role.is_admin() {
        return not_allowed(MANAGE_MEMBERS);
    }
    let actor = user.role;
    let change = state
        .postgres
        .change_membership(user.tenant, target, None, |current| {
            leaving || actor.may_assign(Some(current), None)
        })
        .await;
    match change {
        Ok(MembershipChange::Done) if leaving => {
            tracing::info!(tenant_id = %user.tenant, "member left");
            let sessions = &state.dashboard.sessions;
            match user
                .memberships
                .iter()
                .find(|m| m.tenant_id != user.tenant.as_uuid())
            {
                Some(other) => (
                    [(
                        header::SET_COOKIE,
                        sessions.issue(user.user, other.tenant_id).0,
                    )],
                    Redirect::to("/"),
                )
                    .into_response(),
                None => (
                    [(header::SET_COOKIE, sessions.clear_session())],
                    Redirect::to("/login?notice=left"),
                )
                    .into_response(),
            }
        }
        Ok(MembershipChange::Done) => {
            tracing::info!(tenant_id = %user.tenant, "member removed");
            Redirect::to("/members").into_response()
        }
        Ok(refused) => explain_refusal(&state, &user, refused).await,
        Err(error) => unavailable(&error),
    }
}

async fn revoke_invitation(
    State(state): State<Arc<QueryState>>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(page) = user.refusal(&state, &form.csrf, Role::is_admin, MANAGE_MEMBERS) {
        return page;
    }
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return not_found("invitation");
    };
    let actor = user.role;
    let revoked = state
        .postgres
        .revoke_invitation(user.tenant, id, |role| actor.may_assign(None, Some(role)))
        .await;
    match revoked {
        Ok(Some(MembershipChange::Done)) => Redirect::to("/members").into_response(),
        Ok(Some(_)) => not_allowed("revoke an invitation to be owner"),
        Ok(None) => not_found("invitation"),
        Err(error) => unavailable(&error),
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

fn invalid_invitation() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "This invitation is not valid",
        "It may have expired, been revoked or been used already. Ask an admin of the organisation for a new one.",
    )
}

/// The open invitation of a link, and whether its email has an account.
async fn open_invitation(state: &QueryState, token: &str) -> Result<(Invitation, bool), Response> {
    let invitation = match state.postgres.open_invitation(token).await {
        Ok(Some(invitation)) => invitation,
        Ok(None) => return Err(invalid_invitation()),
        Err(error) => return Err(unavailable(&error)),
    };
    match state.postgres.user_by_email(&invitation.email).await {
        Ok(user) => Ok((invitation, user.is_some())),
        Err(error) => Err(unavailable(&error)),
    }
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
    State(state): State<Arc<QueryState>>,
    Path(token): Path<String>,
) -> Response {
    let (invitation, has_account) = match open_invitation(&state, &token).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    with_pre_session(&state, |csrf| {
        invitation_form(csrf, token, invitation, has_account, StatusCode::OK, None)
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AcceptForm {
    csrf: String,
    password: String,
}

async fn accept_invitation(
    State(state): State<Arc<QueryState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<AcceptForm>,
) -> Response {
    if !state
        .dashboard
        .sessions
        .csrf_ok(pre_session(&headers), &form.csrf)
    {
        return forbidden_csrf();
    }
    let (invitation, has_account) = match open_invitation(&state, &token).await {
        Ok(found) => found,
        Err(page) => return page,
    };
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
            return retry(
                invitation,
                StatusCode::BAD_REQUEST,
                "Enter your password.".to_owned(),
            );
        }
        let user = match check_password(&state, &invitation.email, &form.password).await {
            Ok(user) => user,
            Err(refused) => {
                return match refused.explain() {
                    Ok((message, status)) => retry(invitation, status, message),
                    Err(error) => unavailable(&error),
                };
            }
        };
        match state.postgres.accept_invitation(&invitation, user.id).await {
            Ok(true) => user.id,
            Ok(false) => return invalid_invitation(),
            Err(error) => return unavailable(&error),
        }
    } else {
        if let Some(problem) = weak_password(&form.password) {
            return retry(invitation, StatusCode::BAD_REQUEST, problem.to_owned());
        }
        let Some(hash) = hash_password(form.password.clone()).await else {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again.",
            );
        };
        match state
            .postgres
            .accept_invitation_as_new_user(&invitation, &hash)
            .await
        {
            Ok(Some(user)) => user.id,
            Ok(None) => return invalid_invitation(),
            Err(error) => return unavailable(&error),
        }
    };
    tracing::info!(tenant_id = %tenant, "invitation accepted");
    (
        [(
            header::SET_COOKIE,
            state.dashboard.sessions.issue(user, tenant).0,
        )],
        Redirect::to("/"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roles_offered_follow_the_rules() {
        assert_eq!(
            assignable(Role::Owner, None),
            ["owner", "admin", "member", "viewer"]
        );
        assert_eq!(assignable(Role::Admin, None), ["admin", "member", "viewer"]);
        assert!(assignable(Role::Admin, Some(Role::Owner)).is_empty());
        assert!(assignable(Role::Member, Some(Role::Viewer)).is_empty());
        assert!(assignable(Role::Viewer, None).is_empty());
    }
}
