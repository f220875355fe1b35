//! Users, their organisations (tenants) and roles.

use super::{Postgres, PostgresError, Tenant};
use chrono::{DateTime, Utc};
use weft_model::Role;

/// A user as needed to log in.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: uuid::Uuid,
    pub email: String,
    pub password_hash: String,
    pub failed_logins: i32,
    pub last_failed_login_at: Option<DateTime<Utc>>,
}

/// A user's role in one organisation.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Membership {
    pub tenant_id: uuid::Uuid,
    pub tenant_name: String,
    pub tenant_slug: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
}

impl Postgres {
    /// Creates a user, a tenant and the user's owner membership in one transaction.
    /// `None` when the email is already registered.
    pub async fn create_account(
        &self,
        email: &str,
        password_hash: &str,
        organisation: &str,
        slug: &str,
    ) -> Result<Option<(User, Tenant)>, PostgresError> {
        let mut tx = self.pool().begin().await?;
        let user: Option<User> = sqlx::query_as(
            "INSERT INTO users (email, password_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING \
             RETURNING id, email, password_hash, failed_logins, last_failed_login_at",
        )
        .bind(email)
        .bind(password_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user) = user else { return Ok(None) };
        let tenant: Tenant = sqlx::query_as(
            "INSERT INTO tenants (name, slug) VALUES ($1, $2) RETURNING id, name, slug",
        )
        .bind(organisation)
        .bind(slug)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')")
            .bind(tenant.id)
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some((user, tenant)))
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT id, email, password_hash, failed_logins, last_failed_login_at \
             FROM users WHERE lower(email) = lower($1)",
        )
        .bind(email)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn record_login(
        &self,
        user: uuid::Uuid,
        succeeded: bool,
    ) -> Result<(), PostgresError> {
        let sql = if succeeded {
            "UPDATE users SET failed_logins = 0, last_failed_login_at = NULL WHERE id = $1"
        } else {
            "UPDATE users SET failed_logins = failed_logins + 1, last_failed_login_at = now() WHERE id = $1"
        };
        sqlx::query(sql).bind(user).execute(self.pool()).await?;
        Ok(())
    }

    /// The organisations of a user, oldest first.
    pub async fn memberships(&self, user: uuid::Uuid) -> Result<Vec<Membership>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT t.id AS tenant_id, t.name AS tenant_name, t.slug AS tenant_slug, m.role \
             FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
             WHERE m.user_id = $1 ORDER BY m.created_at, t.name",
        )
        .bind(user)
        .fetch_all(self.pool())
        .await?)
    }
}
