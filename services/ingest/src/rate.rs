//! Per-tenant ingest limits: a token bucket of spans per tenant on this replica, so a
//! noisy tenant is answered 429 / `RESOURCE_EXHAUSTED` instead of crowding out others.
//! The bucket holds one second of the tenant's rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use weft_model::TenantId;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct TenantLimiter {
    default_rate: u32,
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

impl TenantLimiter {
    pub fn new(default_rate: u32) -> Self {
        TenantLimiter {
            default_rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `spans` tokens from the tenant's bucket, or says in how many seconds they
    /// will be there. A request larger than the bucket passes when the bucket is full and
    /// leaves it in debt, so the average rate still holds.
    pub fn take(&self, tenant: TenantId, own_rate: Option<u32>, spans: u64) -> Result<(), u32> {
        self.take_at(tenant, own_rate, spans, Instant::now())
    }

    fn take_at(
        &self,
        tenant: TenantId,
        own_rate: Option<u32>,
        spans: u64,
        now: Instant,
    ) -> Result<(), u32> {
        let rate = f64::from(own_rate.unwrap_or(self.default_rate).max(1));
        let mut buckets = self.buckets.lock().expect("limiter lock");
        let bucket = buckets.entry(tenant).or_insert(Bucket {
            tokens: rate,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.updated = now;
        let needed = (spans as f64).min(rate);
        if bucket.tokens >= needed {
            bucket.tokens -= spans as f64;
            Ok(())
        } else {
            Err(((needed - bucket.tokens) / rate).ceil().max(1.0) as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_tenant_over_its_rate_waits_and_others_are_untouched() {
        let limiter = TenantLimiter::new(1000);
        let (noisy, quiet) = (TenantId::random(), TenantId::random());
        let t0 = Instant::now();
        assert_eq!(limiter.take_at(noisy, Some(100), 60, t0), Ok(()));
        assert_eq!(limiter.take_at(noisy, Some(100), 60, t0), Err(1));
        assert_eq!(limiter.take_at(quiet, None, 900, t0), Ok(()));
        // Half a second refills 50 spans: 40 + 50 = 90 are there again.
        assert_eq!(
            limiter.take_at(noisy, Some(100), 60, t0 + Duration::from_millis(500)),
            Ok(())
        );
    }

    #[test]
    fn an_oversized_request_passes_on_a_full_bucket_and_leaves_debt() {
        let limiter = TenantLimiter::new(100);
        let tenant = TenantId::random();
        let t0 = Instant::now();
        assert_eq!(limiter.take_at(tenant, None, 300, t0), Ok(()));
        // 200 spans of debt: a full bucket again only after 3 s.
        assert_eq!(
            limiter.take_at(tenant, None, 100, t0 + Duration::from_secs(1)),
            Err(2)
        );
        assert_eq!(
            limiter.take_at(tenant, None, 100, t0 + Duration::from_secs(3)),
            Ok(())
        );
    }
}
