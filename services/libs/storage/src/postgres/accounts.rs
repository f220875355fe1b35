//! Users, their organisations (tenants) and roles.

use super::{Postgres, PostgresError, Tenant};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use weft_model::{Role, TenantId};

/// An argon2id hash of `password` with a random salt. Slow on purpose: call it off the
/// async worker threads.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes encode as a salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 accepts any password with default parameters")
        .to_string()
}

/// A valid hash of a random password, checked against when there is no user, so that
/// a login takes as long whether or not the account exists.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4bLrbmT3fSy4Oq1OZEnqPYazAKSaqZP8MUKrmAa2ET4";

/// Whether `password` matches the user's `hash` (`false` for a malformed one). With no
/// user it does the same work and answers `false`. Slow on purpose, like hashing.
pub fn password_matches(password: &str, hash: Option<&str>) -> bool {
    let verified = PasswordHash::new(hash.unwrap_or(DUMMY_HASH)).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    });
    verified && hash.is_some()
}

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

    /// Makes `email` a member of `tenant` with `role` and sets their password, creating
    /// the user when needed and keeping an existing membership's role. For operator
    /// set-up such as the demo account; people join through invitations.
    pub async fn upsert_member(
        &self,
        tenant: TenantId,
        email: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, PostgresError> {
        let mut tx = self.pool().begin().await?;
        let user: User = sqlx::query_as(
            "INSERT INTO users (email, password_hash) VALUES ($1, $2) \
             ON CONFLICT (lower(email)) DO UPDATE SET password_hash = EXCLUDED.password_hash, \
             failed_logins = 0, last_failed_login_at = NULL \
             RETURNING id, email, password_hash, failed_logins, last_failed_login_at",
        )
        .bind(email)
        .bind(password_hash)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_uuid())
        .bind(user.id)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(user)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_a_salt_and_verify() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"));
        assert_ne!(hash, hash_password("correct horse battery"), "salted");
        assert!(password_matches("correct horse battery", Some(&hash)));
        assert!(!password_matches("correct horse batter", Some(&hash)));
        assert!(!password_matches(
            "correct horse battery",
            Some("not a hash")
        ));
        assert!(!password_matches("correct horse battery", None));
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash costs a real check"
        );
    }
}
