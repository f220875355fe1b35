//! Sampling policies per tenant. The policy is validated before it is stored; a tenant
//! without a row uses [`SamplingPolicy::default`].

use super::{Postgres, PostgresError};
use chrono::{DateTime, Utc};
use weft_model::TenantId;
use weft_model::sampling::SamplingPolicy;

/// A tenant's stored policy.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPolicy {
    pub policy: SamplingPolicy,
    pub updated_at: DateTime<Utc>,
    /// The member who saved it, while they exist; `None` for a policy saved with an API
    /// key.
    pub updated_by: Option<uuid::Uuid>,
    /// That member's email.
    pub updated_by_email: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    policy: sqlx::types::Json<SamplingPolicy>,
    updated_at: DateTime<Utc>,
    updated_by: Option<uuid::Uuid>,
    updated_by_email: Option<String>,
}

impl Postgres {
    /// The tenant's own policy; `None` when it samples with the default.
    pub async fn sampling_policy(
        &self,
        tenant: TenantId,
    ) -> Result<Option<StoredPolicy>, PostgresError> {
        let row: Option<PolicyRow> = sqlx::query_as(
            "SELECT p.policy, p.updated_at, p.updated_by, u.email AS updated_by_email \
             FROM sampling_policies p LEFT JOIN users u ON u.id = p.updated_by \
             WHERE p.tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|row| StoredPolicy {
            policy: row.policy.0,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
            updated_by_email: row.updated_by_email,
        }))
    }

    /// Stores the tenant's policy, replacing the one before. The caller validated it
    /// ([`SamplingPolicy::compile`]).
    pub async fn set_sampling_policy(
        &self,
        tenant: TenantId,
        policy: &SamplingPolicy,
        updated_by: Option<uuid::Uuid>,
    ) -> Result<(), PostgresError> {
        sqlx::query(
            "INSERT INTO sampling_policies (tenant_id, policy, updated_by) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET policy = EXCLUDED.policy, \
             updated_at = now(), updated_by = EXCLUDED.updated_by",
        )
        .bind(tenant.as_uuid())
        .bind(sqlx::types::Json(policy))
        .bind(updated_by)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Returns the tenant to the default policy.
    pub async fn reset_sampling_policy(&self, tenant: TenantId) -> Result<(), PostgresError> {
        sqlx::query("DELETE FROM sampling_policies WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
