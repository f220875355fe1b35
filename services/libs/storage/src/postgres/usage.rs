//! Usage per tenant and day: spans received, accepted and rejected at ingest.

use super::{Postgres, PostgresError};
use chrono::NaiveDate;
use weft_model::TenantId;

/// Span counts of one tenant and day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageDay {
    pub day: NaiveDate,
    pub spans_received: i64,
    pub spans_accepted: i64,
    pub spans_rejected: i64,
}

impl Postgres {
    /// Adds counts to a tenant's day. The counts of a tenant deleted meanwhile (see
    /// `delete_organisation`) are dropped, not kept and retried for ever.
    pub async fn add_usage(&self, tenant: TenantId, usage: UsageDay) -> Result<(), PostgresError> {
        sqlx::query(
            "INSERT INTO usage_daily (tenant_id, day, spans_received, spans_accepted, spans_rejected) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1) \
             ON CONFLICT (tenant_id, day) DO UPDATE SET \
             spans_received = usage_daily.spans_received + EXCLUDED.spans_received, \
             spans_accepted = usage_daily.spans_accepted + EXCLUDED.spans_accepted, \
             spans_rejected = usage_daily.spans_rejected + EXCLUDED.spans_rejected",
        )
        .bind(tenant.as_uuid())
        .bind(usage.day)
        .bind(usage.spans_received)
        .bind(usage.spans_accepted)
        .bind(usage.spans_rejected)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The tenant's last `days` days with traffic, newest first.
    pub async fn usage(&self, tenant: TenantId, days: i64) -> Result<Vec<UsageDay>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT day, spans_received, spans_accepted, spans_rejected FROM usage_daily \
             WHERE tenant_id = $1 AND day > (now() AT TIME ZONE 'utc')::date - $2::int ORDER BY day DESC",
        )
        .bind(tenant.as_uuid())
        .bind(days as i32)
        .fetch_all(self.pool())
        .await?)
    }
}
