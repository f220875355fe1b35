//! Usage counting at ingest: spans received, accepted and rejected per tenant, added up
//! in memory and written to PostgreSQL every few seconds (one upsert per tenant), so
//! counting costs no database round trip per request.

use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weft_model::TenantId;
use weft_storage::postgres::{Postgres, UsageDay};

#[derive(Default)]
pub struct UsageCounter {
    pending: Mutex<HashMap<TenantId, UsageDay>>,
}

impl UsageCounter {
    pub fn record(&self, tenant: TenantId, accepted: u64, rejected: u64) {
        let mut pending = self.pending.lock().expect("usage lock");
        let day = pending.entry(tenant).or_insert_with(|| UsageDay {
            day: Utc::now().date_naive(),
            ..UsageDay::default()
        });
        day.spans_received += (accepted + rejected) as i64;
        day.spans_accepted += accepted as i64;
        day.spans_rejected += rejected as i64;
    }

    /// Writes what was counted; counts that could not be written are kept for next time.
    pub async fn flush(&self, postgres: &Postgres) {
        let taken: Vec<(TenantId, UsageDay)> =
            self.pending.lock().expect("usage lock").drain().collect();
        for (tenant, usage) in taken {
            if let Err(error) = postgres.add_usage(tenant, usage).await {
                tracing::warn!(%error, tenant_id = %tenant, "usage not written, keeping it");
                let mut pending = self.pending.lock().expect("usage lock");
                let kept = pending.entry(tenant).or_insert(UsageDay {
                    day: usage.day,
                    ..UsageDay::default()
                });
                kept.spans_received += usage.spans_received;
                kept.spans_accepted += usage.spans_accepted;
                kept.spans_rejected += usage.spans_rejected;
            }
        }
    }

    /// Flushes every `interval` for as long as the process runs.
    pub fn flush_every(self: &Arc<Self>, postgres: Postgres, interval: Duration) {
        let counter = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                counter.flush(&postgres).await;
            }
        });
    }
}
