//! Each tenant's sampling policy, compiled, from PostgreSQL through a cache: an entry is
//! trusted for a TTL, and forgotten at once when a `PolicyChanged` announcement names its
//! tenant, so a saved policy applies within seconds on every sampler without a restart.
//! A tenant without a policy of its own samples with the operator's default.

use crate::metrics::{OutcomeLabels, SamplerMetrics};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_model::TenantId;
use weft_model::sampling::{CompiledPolicy, SamplingPolicy};
use weft_storage::postgres::Postgres;

/// When PostgreSQL cannot be asked, traces are kept whole rather than dropped by a guess,
/// and the lookup is tried again after this long.
const FAILED_LOOKUP_TTL: Duration = Duration::from_secs(5);

pub struct PolicyCache {
    postgres: Postgres,
    default: Arc<CompiledPolicy>,
    keep_all: Arc<CompiledPolicy>,
    ttl: Duration,
    entries: Mutex<HashMap<TenantId, (Arc<CompiledPolicy>, Instant)>>,
    metrics: SamplerMetrics,
}

impl PolicyCache {
    pub fn new(
        postgres: Postgres,
        default: &SamplingPolicy,
        ttl: Duration,
        metrics: SamplerMetrics,
    ) -> PolicyCache {
        PolicyCache {
            postgres,
            default: Arc::new(default.compile().expect("the configuration checked it")),
            keep_all: Arc::new(keep_all()),
            ttl,
            entries: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// The tenant's policy.
    pub async fn get(&self, tenant: TenantId) -> Arc<CompiledPolicy> {
        if let Some((policy, expires)) = self.entries.lock().expect("policy cache").get(&tenant)
            && *expires > Instant::now()
        {
            return policy.clone();
        }
        let (policy, ttl, outcome) = match self.postgres.sampling_policy(tenant).await {
            Ok(Some(stored)) => match stored.policy.compile() {
                Ok(policy) => (Arc::new(policy), self.ttl, "found"),
                Err(error) => {
                    // Validated before it was stored; a policy a newer Weft wrote may use
                    // what this one does not know.
                    tracing::error!(tenant_id = %tenant, %error, "stored sampling policy does not compile; keeping every trace");
                    (self.keep_all.clone(), self.ttl, "failed")
                }
            },
            Ok(None) => (self.default.clone(), self.ttl, "default"),
            Err(error) => {
                tracing::warn!(tenant_id = %tenant, %error, "sampling policy lookup failed; keeping every trace for now");
                (self.keep_all.clone(), FAILED_LOOKUP_TTL, "failed")
            }
        };
        self.metrics
            .policy_loads
            .get_or_create(&OutcomeLabels { decision: outcome })
            .inc();
        let mut entries = self.entries.lock().expect("policy cache");
        if entries.len() >= 100_000 {
            let now = Instant::now();
            entries.retain(|_, (_, expires)| *expires > now);
        }
        entries.insert(tenant, (policy.clone(), Instant::now() + ttl));
        policy
    }

    /// Forgets the tenant's policy, so the next decision reads it again.
    pub fn forget(&self, tenant: TenantId) {
        self.entries.lock().expect("policy cache").remove(&tenant);
    }
}

/// Keeps every trace whole; its spans say why.
fn keep_all() -> CompiledPolicy {
    SamplingPolicy {
        rules: vec![weft_model::sampling::Rule {
            name: "policy unavailable: kept whole".into(),
            action: weft_model::sampling::Action::Keep,
            scope: weft_model::sampling::Scope::Trace,
            conditions: Vec::new(),
            probability: 1.0,
        }],
        max_kept_spans_per_second: None,
    }
    .compile()
    .expect("a rule without conditions compiles")
}
