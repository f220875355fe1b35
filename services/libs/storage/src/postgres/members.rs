//! The members of an organisation and invitations to join it. Every statement names the
//! tenant; an organisation always keeps at least one owner.

use super::{Postgres, PostgresError, User};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::Duration;
use weft_model::{Role, TenantId};

/// A member as listed to their organisation.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Member {
    pub user_id: uuid::Uuid,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// An open invitation: not accepted, not revoked, not expired.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub tenant_id: uuid::Uuid,
    pub tenant_name: String,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An invitation just created: the only moment its token is known.
#[derive(Clone, Debug)]
pub struct NewInvitation {
    pub id: uuid::Uuid,
    pub token: String,
}

/// The outcome of changing or ending a membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    Done,
    /// The user is not a member of this organisation.
    NotMember,
    /// The caller may not make this change to a member with this role.
    Forbidden(Role),
    /// It would leave the organisation without an owner.
    LastOwner,
}

const TOKEN_HEX_LEN: usize = 64;

/// Whether `candidate` has the shape of an invitation token; anything else is refused
/// without a database lookup.
pub fn looks_like_invitation_token(candidate: &str) -> bool {
    candidate.len() == TOKEN_HEX_LEN
        && candidate
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Open invitations, narrowed by `$condition`.
macro_rules! open_invitations {
    ($condition:literal) => {
        concat!(
            "SELECT i.id, i.tenant_id, t.name AS tenant_name, i.email, i.role, ",
            "i.created_at, i.expires_at ",
            "FROM invitations i JOIN tenants t ON t.id = i.tenant_id ",
            "WHERE i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now() AND ",
            $condition
        )
    };
}

impl Postgres {
    /// The members of a tenant, owners first, then by email.
    pub async fn members(&self, tenant: TenantId) -> Result<Vec<Member>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT u.id AS user_id, u.email, m.role, m.created_at AS joined_at \
             FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.tenant_id = $1 \
             ORDER BY array_position(ARRAY['owner', 'admin', 'member', 'viewer'], m.role), \
             lower(u.email)",
        )
        .bind(tenant.as_uuid())
        .fetch_all(self.pool())
        .await?)
    }

    /// Gives `user` the role `new`, or removes them from the tenant when `new` is `None`
    /// (ending their sessions there), if `allowed` accepts their current role and an
    /// owner remains afterwards. The owners are locked meanwhile, so two owners cannot
    /// demote each other at once.
    pub async fn change_membership(
        &self,
        tenant: TenantId,
        user: uuid::Uuid,
        new: Option<Role>,
        allowed: impl FnOnce(Role) -> bool,
    ) -> Result<MembershipChange, PostgresError> {
        let mut tx = self.pool().begin().await?;
        let owners: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT user_id FROM memberships WHERE tenant_id = $1 AND role = 'owner' FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        let current: Option<String> = sqlx::query_scalar(
            "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current.and_then(|role| role.parse::<Role>().ok()) else {
            return Ok(MembershipChange::NotMember);
        };
        if !allowed(current) {
            return Ok(MembershipChange::Forbidden(current));
        }
        if current == Role::Owner && new != Some(Role::Owner) && owners == [user] {
            return Ok(MembershipChange::LastOwner);
        }
        match new {
            Some(role) => {
                sqlx::query(
                    "UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(user)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_uuid())
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                Self::end_sessions_in_tenant(&mut tx, tenant.as_uuid(), user).await?;
            }
        }
        tx.commit().await?;
        Ok(MembershipChange::Done)
    }

    /// Invites `email` to join `tenant` as `role` for `ttl`, replacing any open invitation
    /// of the same email. `None` when the email already belongs to a member.
    pub async fn create_invitation(
        &self,
        tenant: TenantId,
        email: &str,
        role: Role,
        invited_by: uuid::Uuid,
        ttl: Duration,
    ) -> Result<Option<NewInvitation>, PostgresError> {
        let mut tx = self.pool().begin().await?;
        let already_member: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.tenant_id = $1 AND lower(u.email) = lower($2))",
        )
        .bind(tenant.as_uuid())
        .bind(email)
        .fetch_one(&mut *tx)
        .await?;
        if already_member {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE invitations SET revoked_at = now() WHERE tenant_id = $1 \
             AND lower(email) = lower($2) AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(tenant.as_uuid())
        .bind(email)
        .execute(&mut *tx)
        .await?;
        let mut random = [0u8; TOKEN_HEX_LEN / 2];
        rand::rng().fill_bytes(&mut random);
        let token = hex::encode(random);
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(7));
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO invitations (tenant_id, email, role, token_hash, invited_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, now() + $6) RETURNING id",
        )
        .bind(tenant.as_uuid())
        .bind(email)
        .bind(role.as_str())
        .bind(token_hash(&token))
        .bind(invited_by)
        .bind(ttl)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(NewInvitation { id, token }))
    }

    /// The open invitations of a tenant, newest first.
    pub async fn invitations(&self, tenant: TenantId) -> Result<Vec<Invitation>, PostgresError> {
        Ok(sqlx::query_as(open_invitations!(
            "i.tenant_id = $1 ORDER BY i.created_at DESC"
        ))
        .bind(tenant.as_uuid())
        .fetch_all(self.pool())
        .await?)
    }

    /// Revokes an open invitation of the tenant, subject to `allowed` accepting the role it
    /// offers. `None` when the tenant has no such open invitation.
    pub async fn revoke_invitation(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        allowed: impl FnOnce(Role) -> bool,
    ) -> Result<Option<MembershipChange>, PostgresError> {
        let mut tx = self.pool().begin().await?;
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM invitations WHERE tenant_id = $1 AND id = $2 \
             AND accepted_at IS NULL AND revoked_at IS NULL FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(role) = role.and_then(|role| role.parse::<Role>().ok()) else {
            return Ok(None);
        };
        if !allowed(role) {
            return Ok(Some(MembershipChange::Forbidden(role)));
        }
        sqlx::query("UPDATE invitations SET revoked_at = now() WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(MembershipChange::Done))
    }

    /// The open invitation a link's token stands for.
    pub async fn open_invitation(&self, token: &str) -> Result<Option<Invitation>, PostgresError> {
        if !looks_like_invitation_token(token) {
            return Ok(None);
        }
        Ok(sqlx::query_as(open_invitations!("i.token_hash = $1"))
            .bind(token_hash(token))
            .fetch_optional(self.pool())
            .await?)
    }

    /// Accepts an invitation for an existing user: they join with the invited role, or
    /// keep their role if they are a member already. `false` when the invitation is no
    /// longer open.
    pub async fn accept_invitation(
        &self,
        invitation: &Invitation,
        user: uuid::Uuid,
    ) -> Result<bool, PostgresError> {
        let mut tx = self.pool().begin().await?;
        if !Self::close_invitation(&mut tx, invitation).await? {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(invitation.tenant_id)
        .bind(user)
        .bind(invitation.role.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Accepts an invitation by creating the invited user with `password_hash`. `None`
    /// when the invitation is no longer open or the email was registered meanwhile.
    pub async fn accept_invitation_as_new_user(
        &self,
        invitation: &Invitation,
        password_hash: &str,
    ) -> Result<Option<User>, PostgresError> {
        let mut tx = self.pool().begin().await?;
        if !Self::close_invitation(&mut tx, invitation).await? {
            return Ok(None);
        }
        let user: Option<User> = sqlx::query_as(
            "INSERT INTO users (email, password_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING \
             RETURNING id, email, password_hash",
        )
        .bind(&invitation.email)
        .bind(password_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user) = user else { return Ok(None) };
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(invitation.tenant_id)
            .bind(user.id)
            .bind(invitation.role.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    /// Marks an open invitation accepted; `false` when it was not open any more.
    async fn close_invitation(
        tx: &mut sqlx::PgConnection,
        invitation: &Invitation,
    ) -> Result<bool, PostgresError> {
        let closed = sqlx::query(
            "UPDATE invitations SET accepted_at = now() WHERE id = $1 AND tenant_id = $2 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()",
        )
        .bind(invitation.id)
        .bind(invitation.tenant_id)
        .execute(tx)
        .await?;
        Ok(closed.rows_affected() == 1)
    }
}
