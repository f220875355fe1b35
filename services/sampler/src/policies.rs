//! Each tenant's sampling policy, compiled, from PostgreSQL through a cache: an entry is
//! trusted for a TTL, and forgotten at once when a `PolicyChanged` announcement names its
//! tenant, so a saved policy applies within seconds on every sampler without a restart.
//! A tenant without a policy of its own samples with the operator's default.
//!
//! Alerts link to the trace that proves them, so a trace with a span that one of the
//! tenant's span-duration alert rules matches is kept whatever the policy says: each such
//! rule becomes a keep rule (`alert: <rule name>`) in front of the policy's own. A
//! `RuleChanged` announcement forgets the tenant's entry like `PolicyChanged`.

use crate::metrics::{OutcomeLabels, SamplerMetrics};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_model::TenantId;
use weft_model::alerting::Condition as AlertCondition;
use weft_model::sampling::{
    Action, CompiledPolicy, Condition, Op, Rule, SamplingPolicy, Scope, Value,
};
use weft_storage::postgres::Postgres;

/// When PostgreSQL cannot be asked, traces are kept whole rather than dropped by a guess,
/// and the lookup is tried again after this long.
const FAILED_LOOKUP_TTL: Duration = Duration::from_secs(5);

pub struct PolicyCache {
    postgres: Postgres,
    default_policy: SamplingPolicy,
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
            default_policy: default.clone(),
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
            Ok(stored) => {
                let (policy, outcome) = match stored {
                    Some(stored) => (stored.policy, "found"),
                    None => (self.default_policy.clone(), "default"),
                };
                match self.with_alert_rules(tenant, policy).await.compile() {
                    Ok(policy) => (Arc::new(policy), self.ttl, outcome),
                    Err(error) => {
                        // Validated before it was stored; a policy a newer Weft wrote may
                        // use what this one does not know.
                        tracing::error!(tenant_id = %tenant, %error, "sampling policy does not compile; keeping every trace");
                        (self.keep_all.clone(), self.ttl, "failed")
                    }
                }
            }
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

    /// `policy` with a keep rule in front for each of the tenant's span-duration alert
    /// rules (the span's service, operation, attributes and threshold). When those
    /// cannot be read, the policy alone (logged).
    async fn with_alert_rules(
        &self,
        tenant: TenantId,
        mut policy: SamplingPolicy,
    ) -> SamplingPolicy {
        let rules = match self.postgres.span_alert_rules(tenant).await {
            Ok(rules) => rules,
            Err(error) => {
                tracing::warn!(tenant_id = %tenant, %error, "span alert rules unavailable; sampling by the policy alone");
                return policy;
            }
        };
        let mut kept = Vec::new();
        for stored in rules {
            let AlertCondition::SpanDuration {
                service,
                operation,
                attributes,
                threshold_ms,
                ..
            } = &stored.rule.condition
            else {
                continue;
            };
            let text = |field: &str, value: &str| Condition {
                field: field.to_owned(),
                op: Op::Eq,
                value: Some(Value::Text(value.to_owned())),
            };
            let mut conditions = vec![text("service.name", service)];
            conditions.extend(operation.iter().map(|operation| text("name", operation)));
            conditions.extend(attributes.iter().map(|a| text(&a.key, &a.value)));
            conditions.push(Condition {
                field: "duration_ms".to_owned(),
                op: Op::Gt,
                value: Some(Value::Number(*threshold_ms)),
            });
            kept.push(Rule {
                name: format!("alert: {}", stored.rule.name),
                action: Action::Keep,
                scope: Scope::Span,
                conditions,
                probability: 1.0,
            });
        }
        kept.retain(|rule| !policy.rules.iter().any(|r| r.name == rule.name));
        kept.append(&mut policy.rules);
        policy.rules = kept;
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
        rules: vec![Rule {
            name: "policy unavailable: kept whole".into(),
            action: Action::Keep,
            scope: Scope::Trace,
            conditions: Vec::new(),
            probability: 1.0,
        }],
        max_kept_spans_per_second: None,
    }
    .compile()
    .expect("a rule without conditions compiles")
}
