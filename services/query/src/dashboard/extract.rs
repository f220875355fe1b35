//! Who is asking and what they sent, checked before a handler runs, each rejecting with
//! the [`DashboardError`] page: [`SignedIn`] for pages, [`Authorized`] for the forms of
//! signed-in users (CSRF token, then role), [`PreSession`] for the forms shown before
//! login, and [`PathId`] for the uuid in a path; and [`ClientAddress`], where a request
//! comes from, which password attempts are counted by.

use super::DashboardState;
use super::error::DashboardError;
use super::render::{Layout, OrganisationChoice};
use super::session::{PRE_SESSION_COOKIE, SESSION_COOKIE, SessionError, cookie_value};
use crate::config::TrustedProxies;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, RequestPartsExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use weft_model::{Role, TenantId};
use weft_storage::postgres::{Membership, SessionEnd, SessionState};

/// A request with a valid token of a live session whose user still belongs to the
/// organisation, checked on every request (one statement) so that logging out, a
/// removed membership or any other end of the session ends access at once. Without one,
/// the login page (saying why when the session expired or the membership ended).
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
    /// The navigation bar of this user's pages.
    pub fn layout(&self, state: &DashboardState) -> Layout {
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
            csrf: state.sessions.csrf_token(&self.session),
            organisations,
        }
    }
}

impl FromRequestParts<Arc<DashboardState>> for SignedIn {
    type Rejection = DashboardError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<DashboardState>,
    ) -> Result<Self, DashboardError> {
        let sessions = &state.sessions;
        let back_to = |target| DashboardError::SignIn {
            target,
            clear_cookie: Some(sessions.clear_session()),
        };
        let cookies = parts
            .headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok());
        let token =
            cookie_value(cookies, SESSION_COOKIE).ok_or_else(|| DashboardError::SignIn {
                target: "/login",
                clear_cookie: None,
            })?;
        let claims = sessions.verify(token).map_err(|e| {
            back_to(if e == SessionError::Expired {
                "/login?notice=expired"
            } else {
                "/login"
            })
        })?;
        let memberships = match state.postgres.session(&claims.jti, claims.sub).await? {
            SessionState::Live(memberships) => memberships,
            SessionState::Ended(SessionEnd::Removed) => {
                return Err(back_to("/login?notice=removed"));
            }
            SessionState::Ended(_) | SessionState::Unknown => return Err(back_to("/login")),
        };
        let role = memberships
            .iter()
            .find(|m| m.tenant_id == claims.tid)
            .map(|m| m.role)
            .ok_or_else(|| back_to("/login?notice=removed"))?;
        Ok(SignedIn {
            user: claims.sub,
            tenant: TenantId::new(claims.tid),
            role,
            session: claims.jti,
            memberships,
        })
    }
}

/// A form with a CSRF token.
pub trait CsrfProtected {
    fn csrf(&self) -> &str;
}

/// A form that carries only its CSRF token.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    pub csrf: String,
}

impl CsrfProtected for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// What a role must be allowed to do to submit a form.
pub trait Permission {
    /// The action as the 403 page names it: "does not allow you to {ACTION}".
    const ACTION: &'static str;

    fn granted_to(role: Role) -> bool;

    fn check(role: Role) -> Result<(), DashboardError> {
        if Self::granted_to(role) {
            Ok(())
        } else {
            Err(DashboardError::NotAllowed(Self::ACTION))
        }
    }
}

/// What every member may do: log out, switch organisation, leave.
pub struct AnyRole;

impl Permission for AnyRole {
    const ACTION: &'static str = "use this organisation";

    fn granted_to(_: Role) -> bool {
        true
    }
}

/// Create and revoke API keys: owners and admins.
pub struct ManageKeys;

impl Permission for ManageKeys {
    const ACTION: &'static str = "manage API keys";

    fn granted_to(role: Role) -> bool {
        role.is_admin()
    }
}

/// Invite, change roles, remove others, revoke invitations: owners and admins, and
/// within that [`Role::may_assign`] decides about each member.
pub struct ManageMembers;

impl Permission for ManageMembers {
    const ACTION: &'static str = "manage members";

    fn granted_to(role: Role) -> bool {
        role.is_admin()
    }
}

/// A state-changing form of a signed-in user: accepted only with a valid CSRF token,
/// then only if the user's role has permission `P`, in that order (a stale form says
/// so whatever the role). The body limit and content type are [`Form`]'s.
pub struct Authorized<P, F> {
    pub user: SignedIn,
    pub form: F,
    permission: PhantomData<P>,
}

/// A form any member may submit, checked for its CSRF token.
pub type Submitted<F> = Authorized<AnyRole, F>;

impl<P, F> FromRequest<Arc<DashboardState>> for Authorized<P, F>
where
    P: Permission,
    F: DeserializeOwned + CsrfProtected,
{
    type Rejection = DashboardError;

    async fn from_request(
        request: Request,
        state: &Arc<DashboardState>,
    ) -> Result<Self, DashboardError> {
        let (mut parts, body) = request.into_parts();
        let user = SignedIn::from_request_parts(&mut parts, state).await?;
        let Form(form) = Form::<F>::from_request(Request::from_parts(parts, body), state).await?;
        if !state.sessions.csrf_ok(&user.session, form.csrf()) {
            return Err(DashboardError::CsrfRefused);
        }
        P::check(user.role)?;
        Ok(Authorized {
            user,
            form,
            permission: PhantomData,
        })
    }
}

/// A form shown before login (sign-up, login, accepting an invitation), accepted only
/// with the CSRF token bound to the visitor's pre-session cookie.
pub struct PreSession<F>(pub F);

impl<F> FromRequest<Arc<DashboardState>> for PreSession<F>
where
    F: DeserializeOwned + CsrfProtected,
{
    type Rejection = DashboardError;

    async fn from_request(
        request: Request,
        state: &Arc<DashboardState>,
    ) -> Result<Self, DashboardError> {
        let nonce = pre_session(request.headers()).to_owned();
        let Form(form) = Form::<F>::from_request(request, state).await?;
        if state.sessions.csrf_ok(&nonce, form.csrf()) {
            Ok(PreSession(form))
        } else {
            Err(DashboardError::CsrfRefused)
        }
    }
}

/// The pre-session nonce of the forms shown before login.
fn pre_session(headers: &HeaderMap) -> &str {
    cookie_value(
        headers.get(header::COOKIE).and_then(|v| v.to_str().ok()),
        PRE_SESSION_COOKIE,
    )
    .unwrap_or("")
}

/// A page of a form shown before login, with the pre-session cookie its CSRF token is
/// bound to.
pub fn with_pre_session(state: &DashboardState, page: impl FnOnce(String) -> Response) -> Response {
    let (cookie, nonce) = state.sessions.new_pre_session();
    (
        [(header::SET_COOKIE, cookie)],
        page(state.sessions.csrf_token(&nonce)),
    )
        .into_response()
}

/// Where a request comes from, as password attempts are counted: the TCP peer, or, when
/// the peer is a trusted proxy, the nearest address in `X-Forwarded-For` that is not one.
/// IPv6 clients count by their /64, the block one host usually has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub String);

impl ClientAddress {
    fn of(peer: IpAddr, forwarded: &HeaderMap, trusted: &TrustedProxies) -> Self {
        let mut client = peer.to_canonical();
        // Each proxy appends the address it heard from; read them from the nearest.
        let chain = forwarded
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in chain.into_iter().rev() {
            if !trusted.contains(client) {
                break;
            }
            match hop.parse::<IpAddr>() {
                Ok(address) => client = address.to_canonical(),
                Err(_) => break,
            }
        }
        ClientAddress(match client {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let block = u128::from(v6) & !(u128::MAX >> 64);
                format!("{}/64", Ipv6Addr::from(block))
            }
        })
    }
}

impl FromRequestParts<Arc<DashboardState>> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<DashboardState>,
    ) -> Result<Self, Infallible> {
        // Served without connection info (a router mounted by hand), every client is one.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Ok(ClientAddress::of(
            peer,
            &parts.headers,
            &state.throttle.trusted_proxies,
        ))
    }
}

/// What a [`PathId`] names, as its 404 page calls it.
pub trait Named {
    const NAME: &'static str;
}

pub struct KeyId;

impl Named for KeyId {
    const NAME: &'static str = "API key";
}

pub struct MemberId;

impl Named for MemberId {
    const NAME: &'static str = "member";
}

pub struct InvitationId;

impl Named for InvitationId {
    const NAME: &'static str = "invitation";
}

/// The one parameter of a path, a uuid naming a `K`. Anything else gets the 404 page for
/// `K`, the same as a uuid that names no `K` of the organisation.
pub struct PathId<K> {
    pub id: uuid::Uuid,
    kind: PhantomData<K>,
}

impl<K: Named> PathId<K> {
    /// The 404 page for an id that is a uuid but names no `K` of the organisation.
    pub fn not_found(&self) -> DashboardError {
        DashboardError::NotFound(K::NAME)
    }
}

impl<K, S> FromRequestParts<S> for PathId<K>
where
    K: Named,
    S: Send + Sync,
{
    type Rejection = DashboardError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, DashboardError> {
        let Path(segment) = parts
            .extract::<Path<String>>()
            .await
            .map_err(|_| DashboardError::NotFound(K::NAME))?;
        let id = segment
            .parse()
            .map_err(|_| DashboardError::NotFound(K::NAME))?;
        Ok(PathId {
            id,
            kind: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: &str, forwarded: &[&str], trusted: &str) -> String {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        ClientAddress::of(peer.parse().unwrap(), &headers, &trusted.parse().unwrap()).0
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_names_it() {
        // No trusted proxies: the header is anyone's to forge.
        assert_eq!(client("198.51.100.7", &["203.0.113.1"], ""), "198.51.100.7");
        // Behind a trusted proxy, the address it heard from.
        assert_eq!(
            client("10.0.0.2", &["203.0.113.1"], "10.0.0.0/8"),
            "203.0.113.1"
        );
        // A client cannot hide behind addresses it writes in front of the proxy's.
        assert_eq!(
            client("10.0.0.2", &["192.0.2.66, 203.0.113.1"], "10.0.0.0/8"),
            "203.0.113.1"
        );
        // Chained trusted proxies, over several header lines.
        assert_eq!(
            client("10.0.0.2", &["203.0.113.1", "10.0.0.9"], "10.0.0.0/8"),
            "203.0.113.1"
        );
        // Garbage stops the walk at the last address known.
        assert_eq!(client("10.0.0.2", &["not-an-ip"], "10.0.0.0/8"), "10.0.0.2");
        assert_eq!(client("::ffff:198.51.100.7", &[], ""), "198.51.100.7");
        // One IPv6 host has a /64.
        assert_eq!(
            client("2001:db8:1:2:aaaa::1", &[], ""),
            client("2001:db8:1:2:bbbb::9", &[], "")
        );
        assert_eq!(client("2001:db8:1:2:aaaa::1", &[], ""), "2001:db8:1:2::/64");
    }
}
