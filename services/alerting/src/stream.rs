//! Span-duration rules on the live stream: every span of every message (before any
//! sampling) is checked against its tenant's rules; a rule broken in a batch moves its
//! alert on once, with the slowest matching span as the observed value and its trace as
//! the example.

use crate::metrics::{AlertingMetrics, StateLabels};
use crate::rules::SpanRuleCache;
use chrono::Utc;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
use prost::Message as _;
use std::collections::HashMap;
use std::sync::Arc;
use weft_bus::{BatchHandler, Envelope};
use weft_model::alerting::{AlertState, Condition};
use weft_model::{Partition, TenantId};
use weft_storage::postgres::{Postgres, PostgresError, StateUpdate, StoredRule};

/// The series of a rule's single alert.
pub const RULE_SERIES: &str = "";

pub struct SpanRuleHandler {
    pub rules: Arc<SpanRuleCache>,
    pub postgres: Postgres,
    pub metrics: AlertingMetrics,
}

/// The slowest span that broke a rule in a batch.
struct Breach {
    duration_ms: f64,
    trace_id: String,
}

fn text(value: Option<&AnyValue>) -> Option<String> {
    Some(match value?.value.as_ref()? {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        _ => return None,
    })
}

impl SpanRuleHandler {
    /// The breaches of the tenant's rules in one message, by rule index.
    fn breaches(
        &self,
        rules: &[StoredRule],
        request: ExportTraceServiceRequest,
    ) -> HashMap<usize, Breach> {
        let mut found: HashMap<usize, Breach> = HashMap::new();
        for resource_spans in request.resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            let service = resource
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| text(kv.value.as_ref()))
                .unwrap_or_else(|| "unknown_service".to_owned());
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                self.metrics.spans_checked.inc();
                let duration_ms =
                    span.end_time_unix_nano
                        .saturating_sub(span.start_time_unix_nano) as f64
                        / 1e6;
                let attributes: HashMap<&str, String> = span
                    .attributes
                    .iter()
                    .chain(resource.iter())
                    .filter_map(|kv| Some((kv.key.as_str(), text(kv.value.as_ref())?)))
                    .collect();
                for (index, stored) in rules.iter().enumerate() {
                    let condition = &stored.rule.condition;
                    if duration_ms <= condition.threshold()
                        || !condition.matches_span(&service, &span.name, |key| {
                            attributes.get(key).map(String::as_str)
                        })
                    {
                        continue;
                    }
                    self.metrics.spans_matched.inc();
                    let slower = found
                        .get(&index)
                        .is_none_or(|b| b.duration_ms < duration_ms);
                    if slower {
                        found.insert(
                            index,
                            Breach {
                                duration_ms,
                                trace_id: hex::encode(&span.trace_id),
                            },
                        );
                    }
                }
            }
        }
        found
    }

    /// Moves a rule's alert on for a breach. A concurrent change by another replica (or
    /// partition) wins; this one then reads again, at most a few times.
    async fn breached(
        &self,
        tenant: TenantId,
        rule: &StoredRule,
        breach: &Breach,
    ) -> Result<(), PostgresError> {
        for _ in 0..4 {
            let current = self
                .postgres
                .alert_state(tenant, rule.id, RULE_SERIES)
                .await?;
            let now = Utc::now();
            let state = current.alert_state();
            let breached_since = match state {
                AlertState::Pending | AlertState::Firing => current.breached_since.unwrap_or(now),
                AlertState::Ok | AlertState::Resolved => now,
            };
            let held = (now - breached_since).num_seconds().max(0) as u64;
            let next = state.next(true, held, rule.rule.for_seconds);
            // A firing alert keeps its first example; a new one takes this span's trace.
            let fresh = next != state;
            let value = if fresh {
                breach.duration_ms
            } else {
                current.value.unwrap_or(0.0).max(breach.duration_ms)
            };
            let update = StateUpdate {
                state: next,
                breached_since: Some(breached_since),
                last_seen_at: Some(now),
                value: Some(value),
                trace_id: fresh.then(|| breach.trace_id.clone()),
            };
            if let Some(stored) = self
                .postgres
                .advance_alert_state(tenant, rule, RULE_SERIES, &current, &update)
                .await?
            {
                if fresh {
                    self.metrics
                        .transitions
                        .get_or_create(&StateLabels {
                            state: next.as_str(),
                        })
                        .inc();
                    tracing::info!(tenant_id = %tenant, rule_id = %rule.id, state = next.as_str(), value, trace_id = %breach.trace_id, transition = stored.transition, "alert changed");
                }
                return Ok(());
            }
        }
        Ok(())
    }
}

impl BatchHandler for SpanRuleHandler {
    async fn handle(&self, partition: Partition, batch: Vec<Envelope>) -> bool {
        for envelope in batch {
            let rules = match self.rules.get(envelope.tenant).await {
                Ok(rules) => rules,
                Err(error) => {
                    tracing::warn!(%error, tenant_id = %envelope.tenant, "cannot load alert rules; the batch will be redelivered");
                    return false;
                }
            };
            if rules.is_empty() {
                continue;
            }
            let request = match ExportTraceServiceRequest::decode(envelope.payload.clone()) {
                Ok(request) => request,
                Err(error) => {
                    tracing::error!(partition = partition.0, tenant_id = %envelope.tenant, %error, "skipping a message ingest could not have published");
                    continue;
                }
            };
            for (index, breach) in self.breaches(&rules, request) {
                let rule = &rules[index];
                if !matches!(rule.rule.condition, Condition::SpanDuration { .. }) {
                    continue;
                }
                if let Err(error) = self.breached(envelope.tenant, rule, &breach).await {
                    tracing::warn!(%error, tenant_id = %envelope.tenant, rule_id = %rule.id, "cannot record a breach; the batch will be redelivered");
                    return false;
                }
            }
        }
        true
    }
}
