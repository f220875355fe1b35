//! Evaluation every interval: each replica claims the rules that are due (so each rule
//! is evaluated by one replica at a time), reads aggregate rules' values from the span
//! metrics through the tenant-scoped ClickHouse layer, and moves alerts on — pending
//! while the condition holds for less than `for`, firing, resolved when it no longer
//! holds, with a reminder every repeat interval while firing. Span-duration alerts are
//! resolved here once no matching span came for their window.

use crate::metrics::{AlertingMetrics, StateLabels};
use crate::stream::RULE_SERIES;
use chrono::{DateTime, Utc};
use std::time::Duration;
use weft_model::alerting::{AlertState, Condition};
use weft_model::{TenantId, TraceId};
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::{
    ClickHouse, DurationHistogram, MetricsWindow, TraceSearch, TraceSort,
};
use weft_storage::postgres::{Postgres, StateRow, StateUpdate, StoredRule};

/// Rules claimed per round.
const CLAIM_LIMIT: i64 = 100;

pub struct Evaluator {
    pub postgres: Postgres,
    pub store: ClickHouse,
    pub replica: String,
    pub interval: Duration,
    pub metrics: AlertingMetrics,
}

fn nanos(at: DateTime<Utc>) -> u64 {
    at.timestamp_nanos_opt().unwrap_or_default().max(0) as u64
}

impl Evaluator {
    pub async fn run(self, shutdown: CancellationToken) {
        // Often enough that a rule is evaluated about every interval whichever replica
        // claims it.
        let tick = (self.interval / 4).max(Duration::from_millis(50));
        loop {
            if let Err(error) = self.round().await {
                tracing::warn!(%error, "cannot claim rules to evaluate");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }

    async fn round(&self) -> Result<(), weft_storage::postgres::PostgresError> {
        let claim_for = self.interval * 2 + Duration::from_secs(10);
        let rules = self
            .postgres
            .claim_due_rules(&self.replica, self.interval, claim_for, CLAIM_LIMIT)
            .await?;
        for rule in rules {
            self.metrics.evaluations.inc();
            if let Err(error) = self.evaluate(&rule).await {
                self.metrics.evaluation_failures.inc();
                tracing::warn!(%error, tenant_id = %rule.tenant_id, rule_id = %rule.id, "rule evaluation failed");
            }
            self.postgres
                .release_rule(rule.tenant_id, rule.id, &self.replica)
                .await?;
        }
        Ok(())
    }

    async fn evaluate(&self, rule: &StoredRule) -> anyhow::Result<()> {
        let tenant = rule.tenant_id;
        let current = self
            .postgres
            .alert_state(tenant, rule.id, RULE_SERIES)
            .await?;
        let now = Utc::now();
        let condition = &rule.rule.condition;
        if condition.is_per_span() {
            return self.resolve_quiet_span_rule(rule, &current, now).await;
        }
        let window = MetricsWindow {
            start_unix_nano: nanos(now) - condition.window_seconds() * 1_000_000_000,
            end_unix_nano: nanos(now),
        };
        let value = self.observe(tenant, condition, window).await?;
        let breached = value.is_some_and(|v| condition.breached(v));
        let state = current.alert_state();
        let breached_since = breached.then(|| current.breached_since.unwrap_or(now));
        let held = breached_since.map_or(0, |since| (now - since).num_seconds().max(0) as u64);
        let next = state.next(breached, held, rule.rule.for_seconds);
        let trace_id = if next == AlertState::Firing && state != AlertState::Firing {
            self.example_trace(tenant, condition, window).await?
        } else {
            None
        };
        let update = StateUpdate {
            state: next,
            breached_since,
            last_seen_at: current.last_seen_at,
            value,
            trace_id,
        };
        self.postgres
            .record_observation(tenant, rule.id, value, next)
            .await?;
        let Some(stored) = self
            .postgres
            .advance_alert_state(tenant, rule, RULE_SERIES, &current, &update)
            .await?
        else {
            return Ok(());
        };
        if next != state {
            self.metrics
                .transitions
                .get_or_create(&StateLabels {
                    state: next.as_str(),
                })
                .inc();
            tracing::info!(tenant_id = %tenant, rule_id = %rule.id, state = next.as_str(), value, transition = stored.transition, "alert changed");
        } else {
            self.remind(rule, &stored, now).await?;
        }
        Ok(())
    }

    /// A reminder while firing, once per repeat interval since the alert fired.
    async fn remind(
        &self,
        rule: &StoredRule,
        state: &StateRow,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let repeat = rule.rule.repeat_seconds;
        if state.alert_state() != AlertState::Firing || repeat == 0 {
            return Ok(());
        }
        let number = (now - state.since).num_seconds().max(0) as u64 / repeat;
        if number > 0 {
            self.postgres
                .repeat_alert(rule.tenant_id, rule, state, number as i32)
                .await?;
        }
        Ok(())
    }

    async fn resolve_quiet_span_rule(
        &self,
        rule: &StoredRule,
        current: &StateRow,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let state = current.alert_state();
        let window = chrono::Duration::seconds(rule.rule.condition.window_seconds() as i64);
        let quiet = current.last_seen_at.is_none_or(|seen| now - seen >= window);
        if !matches!(state, AlertState::Pending | AlertState::Firing) || !quiet {
            return self.remind(rule, current, now).await;
        }
        let next = state.next(false, 0, rule.rule.for_seconds);
        let update = StateUpdate {
            state: next,
            breached_since: None,
            last_seen_at: current.last_seen_at,
            value: current.value,
            trace_id: None,
        };
        if self
            .postgres
            .advance_alert_state(rule.tenant_id, rule, RULE_SERIES, current, &update)
            .await?
            .is_some()
        {
            self.metrics
                .transitions
                .get_or_create(&StateLabels {
                    state: next.as_str(),
                })
                .inc();
            tracing::info!(tenant_id = %rule.tenant_id, rule_id = %rule.id, state = next.as_str(), "alert changed");
        }
        Ok(())
    }

    /// The rule's value over the window; `None` when there is too little traffic to say.
    async fn observe(
        &self,
        tenant: TenantId,
        condition: &Condition,
        window: MetricsWindow,
    ) -> anyhow::Result<Option<f64>> {
        let traces = self.store.tenant(tenant);
        let (stats, name) = match condition.operation() {
            Some(operation) => (
                traces.operation_red(condition.service(), window).await?,
                operation,
            ),
            None => (traces.service_red(window).await?, condition.service()),
        };
        let mut spans = 0u64;
        let mut errors = 0u64;
        let mut histogram = DurationHistogram::default();
        for stat in stats.iter().filter(|s| s.name == name) {
            spans += stat.spans;
            errors += stat.errors;
            histogram.add_sparse(&stat.histogram.0, &stat.histogram.1);
        }
        Ok(match condition {
            Condition::Latency { percentile, .. } => histogram
                .quantile(percentile.quantile())
                .map(|ns| ns as f64 / 1e6),
            Condition::ErrorRate { min_requests, .. } => {
                (spans >= *min_requests).then(|| errors as f64 * 100.0 / spans as f64)
            }
            Condition::Throughput { window_seconds, .. } => {
                Some(spans as f64 * 60.0 / *window_seconds as f64)
            }
            Condition::SpanDuration { .. } => None,
        })
    }

    /// A kept trace of the window that shows the problem: the slowest one for latency,
    /// a failing one for error rate, the newest otherwise.
    async fn example_trace(
        &self,
        tenant: TenantId,
        condition: &Condition,
        window: MetricsWindow,
    ) -> anyhow::Result<Option<String>> {
        let search = TraceSearch {
            start_unix_nano: window.start_unix_nano,
            end_unix_nano: window.end_unix_nano,
            service: Some(condition.service().to_owned()),
            operation: condition.operation().map(str::to_owned),
            errors_only: matches!(condition, Condition::ErrorRate { .. }),
            sort: if matches!(condition, Condition::Latency { .. }) {
                TraceSort::Longest
            } else {
                TraceSort::Newest
            },
            limit: 1,
            ..TraceSearch::default()
        };
        let found = self.store.tenant(tenant).search(&search).await?;
        Ok(found
            .first()
            .and_then(|t| TraceId::from_bytes(&t.trace_id).ok())
            .map(|id| id.to_hex()))
    }
}
