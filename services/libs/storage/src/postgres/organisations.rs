//! Deleting an organisation: its owner removes the tenant row, which every table of
//! tenant data references with `ON DELETE CASCADE`, in one transaction that also deletes
//! the accounts left in no organisation and records the erasure its ClickHouse rows
//! need (see [`crate::clickhouse::ClickHouse::erase_tenant`]).

use super::{Postgres, PostgresError};
use std::time::Duration;
use weft_model::{Role, TenantId};

/// What deleting an organisation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganisationDeletion {
    /// Deleted: the digests of its keys that were live (to announce to key caches) and
    /// how many accounts went with it, having belonged to no other organisation.
    Deleted {
        revoked_keys: Vec<[u8; 32]>,
        deleted_users: u64,
    },
    /// The caller is not an owner of it (any more).
    NotOwner,
}

impl Postgres {
    /// Deletes `tenant` and every row of its data, if `owner` is an owner of it; the
    /// membership is locked meanwhile, so a demoted owner cannot race the check.
    pub async fn delete_organisation(
        &self,
        tenant: TenantId,
        owner: uuid::Uuid,
    ) -> Result<OrganisationDeletion, PostgresError> {
        let mut tx = self.pool().begin().await?;
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        if role.and_then(|r| r.parse::<Role>().ok()) != Some(Role::Owner) {
            return Ok(OrganisationDeletion::NotOwner);
        }
        let digests: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT key_hash FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        let members: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT user_id FROM memberships WHERE tenant_id = $1")
                .bind(tenant.as_uuid())
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("INSERT INTO tenant_erasures (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(tenant.as_uuid())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(tenant.as_uuid())
            .execute(&mut *tx)
            .await?;
        // An account exists to reach organisations; one left in none could only log in
        // to a dead end, and would keep its email from signing up again.
        let orphans: Vec<String> = sqlx::query_scalar(
            "DELETE FROM users u WHERE u.id = ANY($1) \
             AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id) \
             RETURNING lower(u.email)",
        )
        .bind(&members)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM login_failures WHERE email = ANY($1)")
            .bind(&orphans)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(OrganisationDeletion::Deleted {
            revoked_keys: digests
                .into_iter()
                .filter_map(|d| d.try_into().ok())
                .collect(),
            deleted_users: orphans.len() as u64,
        })
    }

    /// Deleted organisations whose ClickHouse rows are still to be swept: those deleted
    /// within `window`. Older records are deleted.
    pub async fn pending_erasures(&self, window: Duration) -> Result<Vec<TenantId>, PostgresError> {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1));
        sqlx::query("DELETE FROM tenant_erasures WHERE requested_at < now() - $1")
            .bind(window)
            .execute(self.pool())
            .await?;
        let pending: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT tenant_id FROM tenant_erasures ORDER BY requested_at")
                .fetch_all(self.pool())
                .await?;
        Ok(pending.into_iter().map(TenantId::new).collect())
    }
}
