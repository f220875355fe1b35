//! Setting a new password: changed by a signed-in user (who keeps the session they are
//! using), or reset through an emailed link with a random token that works once and
//! until it expires. Only a SHA-256 of each token is stored, like API keys: the token
//! carries 256 random bits, so a fast hash is enough and lookup stays a primary-key seek.
//! Either way every other session of the user ends and every open reset link is spent,
//! in the transaction that stores the new hash.

use super::{Postgres, PostgresError, SessionEnd, User};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::Duration;

const TOKEN_HEX_LEN: usize = 64;

/// Whether `candidate` has the shape of a reset token; anything else is refused without
/// a database lookup.
pub fn looks_like_reset_token(candidate: &str) -> bool {
    candidate.len() == TOKEN_HEX_LEN
        && candidate
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A reset link just created: the only moment its token is known.
#[derive(Clone, Debug)]
pub struct NewPasswordReset {
    pub token: String,
    pub user: User,
}

/// Why no reset link was made for an email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetRefused {
    /// No account has the email.
    UnknownEmail,
    /// The account already had `per_hour` links in the last hour.
    TooMany,
}

impl Postgres {
    pub async fn user_by_id(&self, id: uuid::Uuid) -> Result<Option<User>, PostgresError> {
        Ok(
            sqlx::query_as("SELECT id, email, password_hash FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// A reset link for the account of `email`, valid for `ttl`, unless it has none or
    /// already got `per_hour` links in the last hour (counted under a lock of the user's
    /// row, so parallel requests cannot all pass).
    pub async fn create_password_reset(
        &self,
        email: &str,
        ttl: Duration,
        per_hour: i64,
    ) -> Result<Result<NewPasswordReset, ResetRefused>, PostgresError> {
        let mut tx = self.pool().begin().await?;
        let user: Option<User> = sqlx::query_as(
            "SELECT id, email, password_hash FROM users WHERE lower(email) = lower($1) FOR UPDATE",
        )
        .bind(email)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user) = user else {
            return Ok(Err(ResetRefused::UnknownEmail));
        };
        let recent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM password_resets \
             WHERE user_id = $1 AND created_at > now() - interval '1 hour'",
        )
        .bind(user.id)
        .fetch_one(&mut *tx)
        .await?;
        if recent >= per_hour {
            return Ok(Err(ResetRefused::TooMany));
        }
        let mut random = [0u8; TOKEN_HEX_LEN / 2];
        rand::rng().fill_bytes(&mut random);
        let token = hex::encode(random);
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
        sqlx::query(
            "INSERT INTO password_resets (token_hash, user_id, expires_at) \
             VALUES ($1, $2, now() + $3)",
        )
        .bind(token_hash(&token))
        .bind(user.id)
        .bind(ttl)
        .execute(&mut *tx)
        .await?;
        // Links older than a day are neither usable nor counted.
        sqlx::query(
            "DELETE FROM password_resets WHERE user_id = $1 AND created_at < now() - interval '1 day'",
        )
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(NewPasswordReset { token, user }))
    }

    /// The account an unused, unexpired reset token is for.
    pub async fn password_reset_user(&self, token: &str) -> Result<Option<User>, PostgresError> {
        if !looks_like_reset_token(token) {
            return Ok(None);
        }
        Ok(sqlx::query_as(
            "SELECT u.id, u.email, u.password_hash FROM password_resets r \
             JOIN users u ON u.id = r.user_id \
             WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > now()",
        )
        .bind(token_hash(token))
        .fetch_optional(self.pool())
        .await?)
    }

    /// Spends the reset token and sets the password of its account to `password_hash`,
    /// ending every session of the user and forgetting the email's failed logins. `None`
    /// when the token is unknown, expired or used (also by a request racing this one).
    pub async fn reset_password(
        &self,
        token: &str,
        password_hash: &str,
    ) -> Result<Option<User>, PostgresError> {
        if !looks_like_reset_token(token) {
            return Ok(None);
        }
        let mut tx = self.pool().begin().await?;
        let user: Option<uuid::Uuid> = sqlx::query_scalar(
            "UPDATE password_resets SET used_at = now() \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
        )
        .bind(token_hash(token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user) = user else { return Ok(None) };
        let user = Self::store_password(&mut tx, user, password_hash, None).await?;
        sqlx::query("DELETE FROM login_failures WHERE email = lower($1)")
            .bind(&user.email)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    /// Sets the password of `user`, ending every session of theirs but `keep` (the one
    /// that changed it).
    pub async fn change_password(
        &self,
        user: uuid::Uuid,
        password_hash: &str,
        keep: &str,
    ) -> Result<(), PostgresError> {
        let mut tx = self.pool().begin().await?;
        Self::store_password(&mut tx, user, password_hash, Some(keep)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn store_password(
        tx: &mut sqlx::PgConnection,
        user: uuid::Uuid,
        password_hash: &str,
        keep: Option<&str>,
    ) -> Result<User, PostgresError> {
        let user: User = sqlx::query_as(
            "UPDATE users SET password_hash = $2 WHERE id = $1 RETURNING id, email, password_hash",
        )
        .bind(user)
        .bind(password_hash)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE sessions SET ended_at = now(), ended_because = $2 \
             WHERE user_id = $1 AND ended_at IS NULL AND id IS DISTINCT FROM $3",
        )
        .bind(user.id)
        .bind(SessionEnd::PasswordChanged.as_str())
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_one_shape() {
        assert!(looks_like_reset_token(&"ab12".repeat(16)));
        assert!(!looks_like_reset_token(&"AB12".repeat(16)));
        assert!(!looks_like_reset_token("abc"));
        assert!(!looks_like_reset_token(&"g".repeat(64)));
    }
}
