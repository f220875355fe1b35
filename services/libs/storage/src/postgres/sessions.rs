//! Dashboard sessions as the server records them, by the random id of their signed token.
//! A token is honoured only while its row is live, so ending a session takes effect on
//! the next request, on every replica.

use super::{Membership, Postgres, PostgresError};
use chrono::{DateTime, Utc};
use weft_model::Role;

/// Why a session ended before it expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The user logged out of this session.
    LoggedOut,
    /// The user logged out of all their sessions.
    LoggedOutEverywhere,
    /// The user's password changed.
    PasswordChanged,
    /// The user was removed from (or left) the session's organisation.
    Removed,
    /// The user moved to another organisation, in a new session.
    Switched,
}

impl SessionEnd {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            SessionEnd::LoggedOut => "logout",
            SessionEnd::LoggedOutEverywhere => "everywhere",
            SessionEnd::PasswordChanged => "password",
            SessionEnd::Removed => "removed",
            SessionEnd::Switched => "switched",
        }
    }

    fn parse(text: &str) -> Option<SessionEnd> {
        [
            SessionEnd::LoggedOut,
            SessionEnd::LoggedOutEverywhere,
            SessionEnd::PasswordChanged,
            SessionEnd::Removed,
            SessionEnd::Switched,
        ]
        .into_iter()
        .find(|end| end.as_str() == text)
    }
}

/// What a session is worth on this request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Live: the user's organisations, oldest first.
    Live(Vec<Membership>),
    /// Ended early, for this reason.
    Ended(SessionEnd),
    /// No such session of this user, or it expired.
    Unknown,
}

/// One row of a session with one of its user's memberships, if any.
#[derive(sqlx::FromRow)]
struct SessionRow {
    ended_because: Option<String>,
    tenant_id: Option<uuid::Uuid>,
    tenant_name: Option<String>,
    tenant_slug: Option<String>,
    role: Option<String>,
}

impl Postgres {
    /// Records a new session of `user` in `tenant` until `expires_at`, and deletes the
    /// user's sessions that have expired.
    pub async fn create_session(
        &self,
        id: &str,
        user: uuid::Uuid,
        tenant: uuid::Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PostgresError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND expires_at <= now()")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, tenant_id, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(user)
        .bind(tenant)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The state of session `id` of `user` and, when it is live, the user's memberships,
    /// in one statement.
    pub async fn session(&self, id: &str, user: uuid::Uuid) -> Result<SessionState, PostgresError> {
        let rows: Vec<SessionRow> = sqlx::query_as(
            "SELECT s.ended_because, t.id AS tenant_id, t.name AS tenant_name, \
             t.slug AS tenant_slug, m.role \
             FROM sessions s \
             LEFT JOIN memberships m ON m.user_id = s.user_id AND s.ended_at IS NULL \
             LEFT JOIN tenants t ON t.id = m.tenant_id \
             WHERE s.id = $1 AND s.user_id = $2 AND s.expires_at > now() \
             ORDER BY m.created_at, t.name",
        )
        .bind(id)
        .bind(user)
        .fetch_all(self.pool())
        .await?;
        let Some(first) = rows.first() else {
            return Ok(SessionState::Unknown);
        };
        if let Some(ended) = &first.ended_because {
            return Ok(SessionEnd::parse(ended).map_or(SessionState::Unknown, SessionState::Ended));
        }
        let memberships = rows
            .into_iter()
            .filter_map(|row| {
                Some(Membership {
                    tenant_id: row.tenant_id?,
                    tenant_name: row.tenant_name?,
                    tenant_slug: row.tenant_slug?,
                    role: row.role?.parse::<Role>().ok()?,
                })
            })
            .collect();
        Ok(SessionState::Live(memberships))
    }

    /// Ends session `id` of `user`, if it is live.
    pub async fn end_session(
        &self,
        id: &str,
        user: uuid::Uuid,
        why: SessionEnd,
    ) -> Result<(), PostgresError> {
        sqlx::query(
            "UPDATE sessions SET ended_at = now(), ended_because = $3 \
             WHERE id = $1 AND user_id = $2 AND ended_at IS NULL",
        )
        .bind(id)
        .bind(user)
        .bind(why.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends every live session of `user`: "log out everywhere", or a new password.
    pub async fn end_sessions_of(
        &self,
        user: uuid::Uuid,
        why: SessionEnd,
    ) -> Result<(), PostgresError> {
        sqlx::query(
            "UPDATE sessions SET ended_at = now(), ended_because = $2 \
             WHERE user_id = $1 AND ended_at IS NULL",
        )
        .bind(user)
        .bind(why.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends the live sessions of `user` in `tenant`, inside the transaction that removes
    /// the membership.
    pub(super) async fn end_sessions_in_tenant(
        tx: &mut sqlx::PgConnection,
        tenant: uuid::Uuid,
        user: uuid::Uuid,
    ) -> Result<(), PostgresError> {
        sqlx::query(
            "UPDATE sessions SET ended_at = now(), ended_because = $3 \
             WHERE user_id = $1 AND tenant_id = $2 AND ended_at IS NULL",
        )
        .bind(user)
        .bind(tenant)
        .bind(SessionEnd::Removed.as_str())
        .execute(tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip() {
        for end in [
            SessionEnd::LoggedOut,
            SessionEnd::LoggedOutEverywhere,
            SessionEnd::PasswordChanged,
            SessionEnd::Removed,
            SessionEnd::Switched,
        ] {
            assert_eq!(SessionEnd::parse(end.as_str()), Some(end));
        }
        assert_eq!(SessionEnd::parse("bored"), None);
    }
}
