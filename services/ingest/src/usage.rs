//! Usage counting at ingest: spans and log records received, accepted and rejected per
//! tenant, and the bytes of accepted log exports, added up in memory and written to
//! PostgreSQL every few seconds (one upsert per tenant), so counting costs no database
//! round trip per request. The last counts are written when the service stops, after its
//! servers have answered their last request.

use chrono::Utc;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use weft_model::TenantId;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::postgres::{Postgres, UsageDay};

#[derive(Default)]
pub struct UsageCounter {
    pending: Mutex<HashMap<TenantId, UsageDay>>,
}

impl UsageCounter {
    /// Spans of one request: `accepted` were published, `rejected` refused (invalid, too
    /// large, or over the tenant's rate).
    pub fn record_spans(&self, tenant: TenantId, accepted: u64, rejected: u64) {
        self.add(
            tenant,
            UsageDay {
                spans_received: (accepted + rejected) as i64,
                spans_accepted: accepted as i64,
                spans_rejected: rejected as i64,
                ..UsageDay::default()
            },
        );
    }

    /// Log records of one request, and its uncompressed size when it was accepted (0 when
    /// it was refused as a whole).
    pub fn record_logs(&self, tenant: TenantId, accepted: u64, rejected: u64, bytes: u64) {
        self.add(
            tenant,
            UsageDay {
                log_records_received: (accepted + rejected) as i64,
                log_records_accepted: accepted as i64,
                log_records_rejected: rejected as i64,
                log_bytes_accepted: bytes as i64,
                ..UsageDay::default()
            },
        );
    }

    fn add(&self, tenant: TenantId, counts: UsageDay) {
        let mut pending = self.pending.lock().expect("usage lock");
        pending
            .entry(tenant)
            .or_insert_with(|| UsageDay {
                day: Utc::now().date_naive(),
                ..UsageDay::default()
            })
            .add(&counts);
    }

    /// Writes what was counted; counts that could not be written are kept for next time.
    /// Returns whether everything was written.
    pub async fn flush(&self, postgres: &Postgres) -> bool {
        let taken: Vec<(TenantId, UsageDay)> =
            self.pending.lock().expect("usage lock").drain().collect();
        let mut all_written = true;
        for (tenant, usage) in taken {
            if let Err(error) = postgres.add_usage(tenant, usage).await {
                tracing::warn!(%error, tenant_id = %tenant, "usage not written, keeping it");
                all_written = false;
                let mut pending = self.pending.lock().expect("usage lock");
                pending
                    .entry(tenant)
                    .or_insert(UsageDay {
                        day: usage.day,
                        ..UsageDay::default()
                    })
                    .add(&usage);
            }
        }
        all_written
    }

    /// Flushes every `interval` until `stop`, then flushes what is left, retrying for
    /// up to `grace` if PostgreSQL is unavailable at that moment.
    pub async fn run(
        &self,
        postgres: Postgres,
        interval: Duration,
        stop: CancellationToken,
        grace: Duration,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.flush(&postgres).await;
                }
                _ = stop.cancelled() => break,
            }
        }
        let give_up = tokio::time::Instant::now() + grace;
        while !self.flush(&postgres).await {
            if tokio::time::Instant::now() >= give_up {
                tracing::error!("stopping with usage counts that could not be written");
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
