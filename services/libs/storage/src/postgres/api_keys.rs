//! API keys: `weft_` followed by 40 hex digits (160 random bits). Only the SHA-256 of a
//! key is stored; the first 13 characters are kept as a prefix to recognise it by.

use super::{Postgres, PostgresError};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use weft_model::{KeyScope, TenantId};

const KEY_PREFIX: &str = "weft_";
const SECRET_HEX_LEN: usize = 40;
const DISPLAY_PREFIX_LEN: usize = KEY_PREFIX.len() + 8;

/// Whether `candidate` has the shape of a Weft key; anything else is refused without a
/// database lookup.
pub fn looks_like_api_key(candidate: &str) -> bool {
    candidate.len() == KEY_PREFIX.len() + SECRET_HEX_LEN
        && candidate.starts_with(KEY_PREFIX)
        && candidate[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The stored form of a key, also the id under which caches hold it.
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn hash(key: &str) -> Vec<u8> {
    key_digest(key).to_vec()
}

/// A key just created: the only moment its secret is known.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub id: uuid::Uuid,
    pub secret: String,
    pub prefix: String,
}

/// What a valid key grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedKey {
    pub key_id: uuid::Uuid,
    pub tenant: TenantId,
    pub scope: KeyScope,
    /// The tenant's own ingest limit, when it has one.
    pub spans_per_second: Option<u32>,
    /// The tenant's own log-record limit, when it has one.
    pub logs_per_second: Option<u32>,
    /// The tenant's own limit of log bytes (uncompressed export bodies), when it has one.
    pub log_bytes_per_second: Option<u64>,
}

/// A key as listed to its tenant (never the secret).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiKeyInfo {
    pub id: uuid::Uuid,
    pub name: String,
    pub scope: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Postgres {
    pub async fn create_api_key(
        &self,
        tenant: TenantId,
        name: &str,
        scope: KeyScope,
    ) -> Result<NewApiKey, PostgresError> {
        let mut random = [0u8; SECRET_HEX_LEN / 2];
        rand::rng().fill_bytes(&mut random);
        let secret = format!("{KEY_PREFIX}{}", hex::encode(random));
        let prefix = secret[..DISPLAY_PREFIX_LEN].to_owned();
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO api_keys (tenant_id, name, scope, prefix, key_hash) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(tenant.as_uuid())
        .bind(name)
        .bind(scope.as_str())
        .bind(&prefix)
        .bind(hash(&secret))
        .fetch_one(self.pool())
        .await?;
        Ok(NewApiKey { id, secret, prefix })
    }

    /// The tenant and scope of a live key, recording that it was used.
    pub async fn resolve_api_key(
        &self,
        secret: &str,
    ) -> Result<Option<ResolvedKey>, PostgresError> {
        if !looks_like_api_key(secret) {
            return Ok(None);
        }
        type Row = (
            uuid::Uuid,
            uuid::Uuid,
            String,
            Option<i32>,
            Option<i32>,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(
            "UPDATE api_keys SET last_used_at = now() FROM tenants \
             WHERE api_keys.key_hash = $1 AND api_keys.revoked_at IS NULL AND tenants.id = api_keys.tenant_id \
             RETURNING api_keys.id, api_keys.tenant_id, api_keys.scope, tenants.spans_per_second, \
             tenants.logs_per_second, tenants.log_bytes_per_second",
        )
        .bind(hash(secret))
        .fetch_optional(self.pool())
        .await?;
        Ok(
            row.and_then(|(key_id, tenant, scope, spans, logs, log_bytes)| {
                Some(ResolvedKey {
                    key_id,
                    tenant: TenantId::new(tenant),
                    scope: scope.parse().ok()?,
                    spans_per_second: spans.and_then(|l| u32::try_from(l).ok()),
                    logs_per_second: logs.and_then(|l| u32::try_from(l).ok()),
                    log_bytes_per_second: log_bytes.and_then(|l| u64::try_from(l).ok()),
                })
            }),
        )
    }

    /// Revokes a live key of `tenant` and returns its digest (to announce to caches), or
    /// `None` when the tenant has no such live key.
    pub async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key_id: uuid::Uuid,
    ) -> Result<Option<[u8; 32]>, PostgresError> {
        let digest: Option<Vec<u8>> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = now() \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING key_hash",
        )
        .bind(tenant.as_uuid())
        .bind(key_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(digest.and_then(|d| d.try_into().ok()))
    }

    /// Sets (or with `None` clears) the tenant's own ingest limit.
    pub async fn set_spans_per_second(
        &self,
        tenant: TenantId,
        limit: Option<u32>,
    ) -> Result<(), PostgresError> {
        sqlx::query("UPDATE tenants SET spans_per_second = $2 WHERE id = $1")
            .bind(tenant.as_uuid())
            .bind(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets (or with `None` clears) the tenant's own log-record ingest limit.
    pub async fn set_logs_per_second(
        &self,
        tenant: TenantId,
        limit: Option<u32>,
    ) -> Result<(), PostgresError> {
        sqlx::query("UPDATE tenants SET logs_per_second = $2 WHERE id = $1")
            .bind(tenant.as_uuid())
            .bind(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets (or with `None` clears) the tenant's own limit of log bytes per second.
    pub async fn set_log_bytes_per_second(
        &self,
        tenant: TenantId,
        limit: Option<u64>,
    ) -> Result<(), PostgresError> {
        sqlx::query("UPDATE tenants SET log_bytes_per_second = $2 WHERE id = $1")
            .bind(tenant.as_uuid())
            .bind(limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyInfo>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT id, name, scope, prefix, created_at, last_used_at, revoked_at \
             FROM api_keys WHERE tenant_id = $1 ORDER BY created_at",
        )
        .bind(tenant.as_uuid())
        .fetch_all(self.pool())
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shape_is_checked_before_any_lookup() {
        assert!(looks_like_api_key(&format!("weft_{}", "a1".repeat(20))));
        assert!(!looks_like_api_key("weft_short"));
        assert!(!looks_like_api_key(&format!("weft_{}", "G1".repeat(20))));
        assert!(!looks_like_api_key(&format!("nope_{}", "a1".repeat(20))));
    }
}
