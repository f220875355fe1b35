//! Per-tenant ingest limits: token buckets per tenant on this replica, so a noisy tenant
//! is answered 429 / `RESOURCE_EXHAUSTED` instead of crowding out others. Each bucket
//! holds one second of the tenant's rate. A limiter keeps `N` buckets per tenant (spans:
//! one; log records: records and bytes) and takes from all of them or from none, so a
//! request refused by one limit never uses up another.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use weft_model::TenantId;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
}

/// What a request asks of one of the tenant's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ask {
    /// The tenant's rate per second (its own or the default); 0 counts as 1.
    pub rate: u64,
    /// Tokens (spans, records, bytes) the request needs.
    pub amount: u64,
}

/// Why a request was refused: which limit (its index in the asks) and in how many
/// seconds the request would pass. When several limits refuse, the one that frees last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub limit: usize,
    pub retry_after_secs: u32,
}

pub struct TenantLimiter<const N: usize> {
    buckets: Mutex<HashMap<TenantId, ([Bucket; N], Instant)>>,
}

impl<const N: usize> Default for TenantLimiter<N> {
    fn default() -> Self {
        TenantLimiter {
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl<const N: usize> TenantLimiter<N> {
    /// Takes each ask's tokens from the tenant's matching bucket, or none of them and says
    /// which limit refused and when the request would pass. A request larger than a bucket
    /// passes when that bucket is full and leaves it in debt, so the average rate holds.
    pub fn take(&self, tenant: TenantId, asks: [Ask; N]) -> Result<(), Refused> {
        self.take_at(tenant, asks, Instant::now())
    }

    fn take_at(&self, tenant: TenantId, asks: [Ask; N], now: Instant) -> Result<(), Refused> {
        let rates = asks.map(|ask| ask.rate.max(1) as f64);
        let mut buckets = self.buckets.lock().expect("limiter lock");
        let (buckets, updated) = buckets.entry(tenant).or_insert_with(|| {
            let mut full = [Bucket { tokens: 0.0 }; N];
            for (bucket, rate) in full.iter_mut().zip(rates) {
                bucket.tokens = rate;
            }
            (full, now)
        });
        let elapsed = now.saturating_duration_since(*updated).as_secs_f64();
        *updated = now;
        let mut refused: Option<Refused> = None;
        for (limit, (bucket, rate)) in buckets.iter_mut().zip(rates).enumerate() {
            bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
            let needed = (asks[limit].amount as f64).min(rate);
            if bucket.tokens < needed {
                let retry_after_secs = ((needed - bucket.tokens) / rate).ceil().max(1.0) as u32;
                if refused.is_none_or(|r| retry_after_secs > r.retry_after_secs) {
                    refused = Some(Refused {
                        limit,
                        retry_after_secs,
                    });
                }
            }
        }
        if let Some(refused) = refused {
            return Err(refused);
        }
        for (bucket, ask) in buckets.iter_mut().zip(asks) {
            bucket.tokens -= ask.amount as f64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ask(rate: u64, amount: u64) -> Ask {
        Ask { rate, amount }
    }

    #[test]
    fn a_tenant_over_its_rate_waits_and_others_are_untouched() {
        let limiter = TenantLimiter::<1>::default();
        let (noisy, quiet) = (TenantId::random(), TenantId::random());
        let t0 = Instant::now();
        assert_eq!(limiter.take_at(noisy, [ask(100, 60)], t0), Ok(()));
        assert_eq!(
            limiter.take_at(noisy, [ask(100, 60)], t0),
            Err(Refused {
                limit: 0,
                retry_after_secs: 1
            })
        );
        assert_eq!(limiter.take_at(quiet, [ask(1000, 900)], t0), Ok(()));
        // Half a second refills 50 spans: 40 + 50 = 90 are there again.
        assert_eq!(
            limiter.take_at(noisy, [ask(100, 60)], t0 + Duration::from_millis(500)),
            Ok(())
        );
    }

    #[test]
    fn an_oversized_request_passes_on_a_full_bucket_and_leaves_debt() {
        let limiter = TenantLimiter::<1>::default();
        let tenant = TenantId::random();
        let t0 = Instant::now();
        assert_eq!(limiter.take_at(tenant, [ask(100, 300)], t0), Ok(()));
        // 200 spans of debt: a full bucket again only after 3 s.
        assert_eq!(
            limiter
                .take_at(tenant, [ask(100, 100)], t0 + Duration::from_secs(1))
                .map_err(|r| r.retry_after_secs),
            Err(2)
        );
        assert_eq!(
            limiter.take_at(tenant, [ask(100, 100)], t0 + Duration::from_secs(3)),
            Ok(())
        );
    }

    #[test]
    fn a_request_refused_by_one_limit_takes_nothing_from_the_other() {
        // 100 records and 1000 bytes per second.
        let limiter = TenantLimiter::<2>::default();
        let tenant = TenantId::random();
        let t0 = Instant::now();
        assert_eq!(
            limiter.take_at(tenant, [ask(100, 10), ask(1000, 900)], t0),
            Ok(())
        );
        // Refused for bytes (100 left): its 80 records stay in the bucket.
        assert_eq!(
            limiter.take_at(tenant, [ask(100, 80), ask(1000, 500)], t0),
            Err(Refused {
                limit: 1,
                retry_after_secs: 1
            })
        );
        assert_eq!(
            limiter.take_at(tenant, [ask(100, 90), ask(1000, 100)], t0),
            Ok(())
        );
        // Now refused for records (0 left): its bytes stay, and they refill meanwhile.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(
            limiter.take_at(tenant, [ask(100, 80), ask(1000, 500)], t1),
            Err(Refused {
                limit: 0,
                retry_after_secs: 1
            })
        );
        assert_eq!(
            limiter.take_at(tenant, [ask(100, 50), ask(1000, 500)], t1),
            Ok(())
        );
    }

    #[test]
    fn an_oversized_byte_count_passes_on_a_full_bucket_and_leaves_debt() {
        let limiter = TenantLimiter::<2>::default();
        let tenant = TenantId::random();
        let t0 = Instant::now();
        // 2.5 seconds' worth of bytes in one request: it passes, the bucket owes 1500.
        assert_eq!(
            limiter.take_at(tenant, [ask(100, 1), ask(1000, 2500)], t0),
            Ok(())
        );
        assert_eq!(
            limiter.take_at(
                tenant,
                [ask(100, 1), ask(1000, 1)],
                t0 + Duration::from_secs(1)
            ),
            Err(Refused {
                limit: 1,
                retry_after_secs: 1
            })
        );
        // Another oversized one must wait for a full bucket: 1.5 s of debt + 1 s to fill.
        assert_eq!(
            limiter.take_at(
                tenant,
                [ask(100, 1), ask(1000, 5000)],
                t0 + Duration::from_secs(1)
            ),
            Err(Refused {
                limit: 1,
                retry_after_secs: 2
            })
        );
        assert_eq!(
            limiter.take_at(
                tenant,
                [ask(100, 1), ask(1000, 5000)],
                t0 + Duration::from_millis(2500)
            ),
            Ok(())
        );
    }

    #[test]
    fn the_limit_that_frees_last_is_named() {
        let limiter = TenantLimiter::<2>::default();
        let tenant = TenantId::random();
        let t0 = Instant::now();
        assert_eq!(
            limiter.take_at(tenant, [ask(10, 10), ask(1000, 3000)], t0),
            Ok(())
        );
        // Records are back within 1 s, bytes only after 3 s.
        assert_eq!(
            limiter.take_at(tenant, [ask(10, 10), ask(1000, 1000)], t0),
            Err(Refused {
                limit: 1,
                retry_after_secs: 3
            })
        );
    }
}
