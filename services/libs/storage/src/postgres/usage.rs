//! Usage per tenant and day: spans and log records received, accepted and rejected at
//! ingest, and the bytes of the log exports accepted.

use super::{Postgres, PostgresError};
use chrono::NaiveDate;
use weft_model::TenantId;

/// Counts of one tenant and day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageDay {
    pub day: NaiveDate,
    pub spans_received: i64,
    pub spans_accepted: i64,
    pub spans_rejected: i64,
    pub log_records_received: i64,
    pub log_records_accepted: i64,
    pub log_records_rejected: i64,
    /// Uncompressed bytes of the log exports that were accepted (the measure of the
    /// tenant's log-bytes limit).
    pub log_bytes_accepted: i64,
}

impl UsageDay {
    /// Adds `other`'s counts (of the same day) to these.
    pub fn add(&mut self, other: &UsageDay) {
        self.spans_received += other.spans_received;
        self.spans_accepted += other.spans_accepted;
        self.spans_rejected += other.spans_rejected;
        self.log_records_received += other.log_records_received;
        self.log_records_accepted += other.log_records_accepted;
        self.log_records_rejected += other.log_records_rejected;
        self.log_bytes_accepted += other.log_bytes_accepted;
    }
}

impl Postgres {
    /// Adds counts to a tenant's day. The counts of a tenant deleted meanwhile (see
    /// `delete_organisation`) are dropped, not kept and retried for ever.
    pub async fn add_usage(&self, tenant: TenantId, usage: UsageDay) -> Result<(), PostgresError> {
        sqlx::query(
            "INSERT INTO usage_daily (tenant_id, day, spans_received, spans_accepted, spans_rejected, \
             log_records_received, log_records_accepted, log_records_rejected, log_bytes_accepted) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1) \
             ON CONFLICT (tenant_id, day) DO UPDATE SET \
             spans_received = usage_daily.spans_received + EXCLUDED.spans_received, \
             spans_accepted = usage_daily.spans_accepted + EXCLUDED.spans_accepted, \
             spans_rejected = usage_daily.spans_rejected + EXCLUDED.spans_rejected, \
             log_records_received = usage_daily.log_records_received + EXCLUDED.log_records_received, \
             log_records_accepted = usage_daily.log_records_accepted + EXCLUDED.log_records_accepted, \
             log_records_rejected = usage_daily.log_records_rejected + EXCLUDED.log_records_rejected, \
             log_bytes_accepted = usage_daily.log_bytes_accepted + EXCLUDED.log_bytes_accepted",
        )
        .bind(tenant.as_uuid())
        .bind(usage.day)
        .bind(usage.spans_received)
        .bind(usage.spans_accepted)
        .bind(usage.spans_rejected)
        .bind(usage.log_records_received)
        .bind(usage.log_records_accepted)
        .bind(usage.log_records_rejected)
        .bind(usage.log_bytes_accepted)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The tenant's last `days` days with traffic, newest first.
    pub async fn usage(&self, tenant: TenantId, days: i64) -> Result<Vec<UsageDay>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT day, spans_received, spans_accepted, spans_rejected, log_records_received, \
             log_records_accepted, log_records_rejected, log_bytes_accepted FROM usage_daily \
             WHERE tenant_id = $1 AND day > (now() AT TIME ZONE 'utc')::date - $2::int ORDER BY day DESC",
        )
        .bind(tenant.as_uuid())
        .bind(days as i32)
        .fetch_all(self.pool())
        .await?)
    }
}
