//! Members of the organisation. Everyone sees who is a member (and admins the open
//! invitations, see [`invitations`](super::invitations)); owners and admins change roles
//! and remove (admins not owners, and only owners make owners, see
//! [`Role::may_assign`]); anyone may leave; an organisation always keeps an owner.

use super::DashboardState;
use super::confirm::confirm_page;
use super::error::DashboardError;
use super::extract::{
    Authorized, CsrfForm, CsrfProtected, ManageMembers, MemberId, PathId, Permission, SignedIn,
    Submitted,
};
use super::keys::format_time;
use super::render::{Layout, render};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::sync::Arc;
use weft_model::Role;
use weft_storage::postgres::MembershipChange;

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/members", get(members_page))
        .route("/members/{user}/role", post(change_role))
        .route(
            "/members/{user}/remove",
            get(confirm_remove).post(remove_member),
        )
}

struct MemberRow {
    user_id: uuid::Uuid,
    email: String,
    role: String,
    joined: String,
    you: bool,
    /// The roles the viewer may give this member; empty when they may not change it.
    assignable: Vec<&'static str>,
    removable: bool,
    /// The only owner: no role change or removal is offered, as the server refuses them.
    sole_owner: bool,
}

struct InvitationRow {
    id: uuid::Uuid,
    email: String,
    role: String,
    expires: String,
}

/// What a form on the page just did.
pub enum Outcome {
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

/// The members page, after `outcome` when a form was just submitted.
pub async fn render_members(
    state: &DashboardState,
    user: &SignedIn,
    status: StatusCode,
    outcome: Option<Outcome>,
) -> Result<Response, DashboardError> {
    let members = state.postgres.members(user.tenant).await?;
    let invitations = if user.role.is_admin() {
        state.postgres.invitations(user.tenant).await?
    } else {
        Vec::new()
    };
    let owners = members.iter().filter(|m| m.role == Role::Owner).count();
    let members = members
        .into_iter()
        .map(|m| {
            let you = m.user_id == user.user;
            let sole_owner = m.role == Role::Owner && owners == 1;
            MemberRow {
                assignable: if sole_owner {
                    Vec::new()
                } else {
                    assignable(user.role, Some(m.role))
                },
                removable: !sole_owner && (you || user.role.may_assign(Some(m.role), None)),
                sole_owner,
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
    Ok(render(status, &page))
}

async fn members_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    render_members(&state, &user, StatusCode::OK, None).await
}

/// The page after a change that failed for a reason the user can act on.
pub async fn refuse(
    state: &DashboardState,
    user: &SignedIn,
    status: StatusCode,
    why: &str,
) -> Result<Response, DashboardError> {
    render_members(state, user, status, Some(Outcome::Error(why.to_owned()))).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoleForm {
    csrf: String,
    role: String,
}

impl CsrfProtected for RoleForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn change_role(
    State(state): State<Arc<DashboardState>>,
    member: PathId<MemberId>,
    Authorized { user, form, .. }: Authorized<ManageMembers, RoleForm>,
) -> Result<Response, DashboardError> {
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
        .change_membership(user.tenant, member.id, Some(role), |current| {
            actor.may_assign(Some(current), Some(role))
        })
        .await?;
    match change {
        MembershipChange::Done => Ok(Redirect::to("/members").into_response()),
        refused => explain_refusal(&state, &user, &member, refused).await,
    }
}

async fn explain_refusal(
    state: &DashboardState,
    user: &SignedIn,
    member: &PathId<MemberId>,
    change: MembershipChange,
) -> Result<Response, DashboardError> {
    match change {
        MembershipChange::NotMember => Err(member.not_found()),
        MembershipChange::Forbidden(Role::Owner) => {
            Err(DashboardError::NotAllowed("change an owner"))
        }
        MembershipChange::Forbidden(_) => Err(DashboardError::NotAllowed(ManageMembers::ACTION)),
        MembershipChange::LastOwner => {
            refuse(
                state,
                user,
                StatusCode::CONFLICT,
                "An organisation needs an owner. Make another member owner first.",
            )
            .await
        }
        MembershipChange::Done => Ok(Redirect::to("/members").into_response()),
    }
}

/// What removing a member (or leaving) does, asked before it is done.
async fn confirm_remove(
    State(state): State<Arc<DashboardState>>,
    member: PathId<MemberId>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    let leaving = member.id == user.user;
    if !leaving {
        ManageMembers::check(user.role)?;
    }
    let members = state.postgres.members(user.tenant).await?;
    let owners = members.iter().filter(|m| m.role == Role::Owner).count();
    let found = members
        .into_iter()
        .find(|m| m.user_id == member.id)
        .ok_or_else(|| member.not_found())?;
    if !leaving && !user.role.may_assign(Some(found.role), None) {
        return Err(DashboardError::NotAllowed("change an owner"));
    }
    if found.role == Role::Owner && owners == 1 {
        return refuse(
            &state,
            &user,
            StatusCode::CONFLICT,
            "An organisation needs an owner. Make another member owner first.",
        )
        .await;
    }
    let layout = user.layout(&state);
    let (title, message, button) = if leaving {
        (
            format!("Leave {}?", layout.organisation),
            "You lose access to its traces, keys and settings at once, until someone invites you again.".to_owned(),
            "Leave organisation",
        )
    } else {
        (
            format!("Remove {} from {}?", found.email, layout.organisation),
            format!(
                "{} is logged out of {} at once and loses access to its traces, keys and settings, until invited again.",
                found.email, layout.organisation
            ),
            "Remove member",
        )
    };
    Ok(confirm_page(
        layout,
        &title,
        &message,
        &format!("/members/{}/remove", found.user_id),
        button,
        "/members",
    ))
}

async fn remove_member(
    State(state): State<Arc<DashboardState>>,
    member: PathId<MemberId>,
    Submitted { user, .. }: Submitted<CsrfForm>,
) -> Result<Response, DashboardError> {
    let leaving = member.id == user.user;
    // Anyone may leave; removing someone else needs the right to.
    if !leaving {
        ManageMembers::check(user.role)?;
    }
    let actor = user.role;
    let change = state
        .postgres
        .change_membership(user.tenant, member.id, None, |current| {
            leaving || actor.may_assign(Some(current), None)
        })
        .await?;
    match change {
        MembershipChange::Done if leaving => {
            tracing::info!(tenant_id = %user.tenant, "member left");
            // Leaving ended this session; the user goes on in another organisation.
            let other = user
                .memberships
                .iter()
                .find(|m| m.tenant_id != user.tenant.as_uuid());
            Ok(match other {
                Some(other) => {
                    let session = state.begin_session(user.user, other.tenant_id).await?;
                    ([(header::SET_COOKIE, session.cookie)], Redirect::to("/")).into_response()
                }
                None => (
                    [(header::SET_COOKIE, state.sessions.clear_session())],
                    Redirect::to("/login?notice=left"),
                )
                    .into_response(),
            })
        }
        MembershipChange::Done => {
            tracing::info!(tenant_id = %user.tenant, "member removed");
            Ok(Redirect::to("/members").into_response())
        }
        refused => explain_refusal(&state, &user, &member, refused).await,
    }
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
