//! The tenants' span-duration rules, cached for the stream: loaded from PostgreSQL on
//! first use, forgotten on a `RuleChanged` announcement or after the TTL.

use crate::metrics::AlertingMetrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_model::TenantId;
use weft_storage::postgres::{Postgres, PostgresError, StoredRule};

/// A tenant's rules and when they were loaded.
type Loaded = (Instant, Arc<Vec<StoredRule>>);

pub struct SpanRuleCache {
    postgres: Postgres,
    ttl: Duration,
    metrics: AlertingMetrics,
    rules: Mutex<HashMap<TenantId, Loaded>>,
}

impl SpanRuleCache {
    pub fn new(postgres: Postgres, ttl: Duration, metrics: AlertingMetrics) -> Self {
        SpanRuleCache {
            postgres,
            ttl,
            metrics,
            rules: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's span-duration rules.
    pub async fn get(&self, tenant: TenantId) -> Result<Arc<Vec<StoredRule>>, PostgresError> {
        if let Some((loaded, rules)) = self.rules.lock().expect("rule cache lock").get(&tenant)
            && loaded.elapsed() < self.ttl
        {
            return Ok(rules.clone());
        }
        let rules = Arc::new(self.postgres.span_alert_rules(tenant).await?);
        self.metrics.rule_loads.inc();
        self.rules
            .lock()
            .expect("rule cache lock")
            .insert(tenant, (Instant::now(), rules.clone()));
        Ok(rules)
    }

    pub fn forget(&self, tenant: TenantId) {
        self.rules.lock().expect("rule cache lock").remove(&tenant);
    }
}
