//! Alerting in PostgreSQL: rules, channels, silences, alert states and their history,
//! observed values, and the delivery log. Tenant statements filter by tenant; the
//! claims (`claim_due_rules`, `claim_deliveries`) span tenants because alerting replicas
//! work for all of them, and each claimed row carries its tenant on.
//!
//! What must stay true: a notifying change of an alert is won by one conditional UPDATE
//! (`transition` as the version), recorded as one `alert_events` row, and delivered
//! through one `alert_deliveries` row per channel (unique per event and channel), which
//! one sender at a time claims.

use super::{Postgres, PostgresError};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use std::collections::BTreeMap;
use std::time::Duration;
use weft_model::TenantId;
use weft_model::alerting::{AlertRule, AlertState, ChannelSpec, ChannelTarget, SilenceSpec};

/// A stored rule.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRule {
    pub id: uuid::Uuid,
    pub tenant_id: TenantId,
    pub rule: AlertRule,
    pub muted_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: uuid::Uuid,
    tenant_id: uuid::Uuid,
    rule: Json<AlertRule>,
    muted_until: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl From<RuleRow> for StoredRule {
    fn from(row: RuleRow) -> Self {
        StoredRule {
            id: row.id,
            tenant_id: TenantId::new(row.tenant_id),
            rule: row.rule.0,
            muted_until: row.muted_until,
            updated_at: row.updated_at,
        }
    }
}

/// A channel as it may be shown: without its secret parts.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct ChannelInfo {
    pub id: uuid::Uuid,
    pub name: String,
    pub kind: String,
    pub display: String,
    pub created_at: DateTime<Utc>,
}

/// A stored silence.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct SilenceInfo {
    pub id: uuid::Uuid,
    pub rule_id: Option<uuid::Uuid>,
    pub labels: Json<BTreeMap<String, String>>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

/// The state of one alert (a rule, or one series of a span-duration rule).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct StateRow {
    pub rule_id: uuid::Uuid,
    pub series: String,
    pub state: String,
    pub since: DateTime<Utc>,
    pub breached_since: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub value: Option<f64>,
    pub trace_id: Option<String>,
    pub transition: i64,
    pub notified_at: Option<DateTime<Utc>>,
}

impl StateRow {
    pub fn alert_state(&self) -> AlertState {
        AlertState::parse(&self.state).unwrap_or(AlertState::Ok)
    }
}

/// A new state for an alert, written only if nobody changed it since it was read.
#[derive(Clone, Debug)]
pub struct StateUpdate {
    pub state: AlertState,
    pub breached_since: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub value: Option<f64>,
    pub trace_id: Option<String>,
}

/// A notifying change as recorded (the history).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct EventRow {
    pub id: i64,
    pub rule_id: uuid::Uuid,
    pub series: String,
    pub transition: i64,
    pub repeat: i32,
    pub state: String,
    pub value: Option<f64>,
    pub trace_id: Option<String>,
    pub silenced: bool,
    pub at: DateTime<Utc>,
}

/// An observed value of an aggregate rule.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct Observation {
    pub at: DateTime<Utc>,
    pub value: Option<f64>,
    pub state: String,
}

/// A line of the delivery log.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct DeliveryInfo {
    pub id: i64,
    pub event_id: Option<i64>,
    pub channel_id: uuid::Uuid,
    pub channel_name: String,
    pub rule_id: Option<uuid::Uuid>,
    pub state: Option<String>,
    pub test: bool,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A delivery claimed for sending, with what it needs.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub tenant_id: TenantId,
    pub channel_id: uuid::Uuid,
    pub channel_name: String,
    pub target: ChannelTarget,
    pub attempts: i32,
    pub test: bool,
    pub created_at: DateTime<Utc>,
    /// `None` for a test notification.
    pub event: Option<EventRow>,
    pub rule: Option<AlertRule>,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    tenant_id: uuid::Uuid,
    channel_id: uuid::Uuid,
    channel_name: String,
    target: Json<ChannelTarget>,
    attempts: i32,
    test: bool,
    created_at: DateTime<Utc>,
    event_id: Option<i64>,
    rule_id: Option<uuid::Uuid>,
    series: Option<String>,
    transition: Option<i64>,
    repeat: Option<i32>,
    state: Option<String>,
    value: Option<f64>,
    trace_id: Option<String>,
    silenced: Option<bool>,
    at: Option<DateTime<Utc>>,
    rule: Option<Json<AlertRule>>,
}

/// Why an alerting change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertStoreError {
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    #[error("channels[{index}]: no channel {id} in this organisation")]
    UnknownChannel { index: usize, id: uuid::Uuid },
}

impl From<sqlx::Error> for AlertStoreError {
    fn from(e: sqlx::Error) -> Self {
        AlertStoreError::Postgres(PostgresError::Query(e))
    }
}

const RULE_COLUMNS: &str = "id, tenant_id, rule, muted_until, updated_at";

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl Postgres {
    async fn link_channels(
        tx: &mut sqlx::PgConnection,
        tenant: TenantId,
        rule_id: uuid::Uuid,
        channels: &[uuid::Uuid],
    ) -> Result<(), AlertStoreError> {
        sqlx::query("DELETE FROM alert_rule_channels WHERE tenant_id = $1 AND rule_id = $2")
            .bind(tenant.as_uuid())
            .bind(rule_id)
            .execute(&mut *tx)
            .await?;
        for (index, id) in channels.iter().enumerate() {
            let linked = sqlx::query(
                "INSERT INTO alert_rule_channels (rule_id, channel_id, tenant_id) \
                 SELECT $2, c.id, c.tenant_id FROM alert_channels c \
                 WHERE c.tenant_id = $1 AND c.id = $3 ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_uuid())
            .bind(rule_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if linked.rows_affected() == 0 && !channels[..index].contains(id) {
                return Err(AlertStoreError::UnknownChannel { index, id: *id });
            }
        }
        Ok(())
    }

    /// Stores a validated rule; its channels must be the tenant's.
    pub async fn create_alert_rule(
        &self,
        tenant: TenantId,
        rule: &AlertRule,
    ) -> Result<StoredRule, AlertStoreError> {
        let mut tx = self.pool().begin().await?;
        let row: RuleRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO alert_rules (id, tenant_id, rule, per_span) VALUES ($1, $2, $3, $4) \
             RETURNING {RULE_COLUMNS}"
        )))
        .bind(uuid::Uuid::new_v4())
        .bind(tenant.as_uuid())
        .bind(Json(rule))
        .bind(rule.condition.is_per_span())
        .fetch_one(&mut *tx)
        .await?;
        Self::link_channels(&mut tx, tenant, row.id, &rule.channels).await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// Replaces a rule; `None` when the tenant has no such rule. A changed condition
    /// starts its alerts afresh.
    pub async fn update_alert_rule(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        rule: &AlertRule,
    ) -> Result<Option<StoredRule>, AlertStoreError> {
        let mut tx = self.pool().begin().await?;
        let before: Option<Json<AlertRule>> = sqlx::query_scalar(
            "SELECT rule FROM alert_rules WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(before) = before else {
            return Ok(None);
        };
        let row: RuleRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE alert_rules SET rule = $3, per_span = $4, updated_at = now(), \
             next_evaluation_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING {RULE_COLUMNS}"
        )))
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(Json(rule))
        .bind(rule.condition.is_per_span())
        .fetch_one(&mut *tx)
        .await?;
        if before.0.condition != rule.condition {
            sqlx::query("DELETE FROM alert_states WHERE tenant_id = $1 AND rule_id = $2")
                .bind(tenant.as_uuid())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        Self::link_channels(&mut tx, tenant, id, &rule.channels).await?;
        tx.commit().await?;
        Ok(Some(row.into()))
    }

    pub async fn delete_alert_rule(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> Result<bool, PostgresError> {
        let deleted = sqlx::query("DELETE FROM alert_rules WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Mutes a rule until `until` (`None` unmutes); false when there is no such rule.
    pub async fn mute_alert_rule(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, PostgresError> {
        let changed =
            sqlx::query("UPDATE alert_rules SET muted_until = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id)
                .bind(until)
                .execute(self.pool())
                .await?;
        Ok(changed.rows_affected() > 0)
    }

    pub async fn alert_rules(&self, tenant: TenantId) -> Result<Vec<StoredRule>, PostgresError> {
        let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM alert_rules WHERE tenant_id = $1 ORDER BY created_at, id"
        )))
        .bind(tenant.as_uuid())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn alert_rule(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> Result<Option<StoredRule>, PostgresError> {
        let row: Option<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM alert_rules WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant.as_uuid())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Into::into))
    }

    /// The tenant's span-duration rules, for the stream evaluator's cache.
    pub async fn span_alert_rules(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<StoredRule>, PostgresError> {
        let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM alert_rules WHERE tenant_id = $1 AND per_span ORDER BY id"
        )))
        .bind(tenant.as_uuid())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Claims up to `limit` aggregate rules of any tenant whose evaluation is due and
    /// that no live claim holds, for `claim_for`; their next evaluation moves
    /// `interval` on. Claimed rows are skipped by concurrent claimers.
    pub async fn claim_due_rules(
        &self,
        replica: &str,
        interval: Duration,
        claim_for: Duration,
        limit: i64,
    ) -> Result<Vec<StoredRule>, PostgresError> {
        let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE alert_rules SET claimed_by = $1, \
               claimed_until = now() + make_interval(secs => $3), \
               next_evaluation_at = now() + make_interval(secs => $2) \
             WHERE id IN (SELECT id FROM alert_rules \
               WHERE next_evaluation_at <= now() \
               AND (claimed_until IS NULL OR claimed_until < now()) \
               ORDER BY next_evaluation_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING {RULE_COLUMNS}"
        )))
        .bind(replica)
        .bind(seconds(interval))
        .bind(seconds(claim_for))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Gives a claimed rule back once evaluated.
    pub async fn release_rule(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        replica: &str,
    ) -> Result<(), PostgresError> {
        sqlx::query(
            "UPDATE alert_rules SET claimed_by = NULL, claimed_until = NULL \
             WHERE tenant_id = $1 AND id = $2 AND claimed_by = $3",
        )
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(replica)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The state of an alert, created as `ok` when it has none yet.
    pub async fn alert_state(
        &self,
        tenant: TenantId,
        rule_id: uuid::Uuid,
        series: &str,
    ) -> Result<StateRow, PostgresError> {
        sqlx::query(
            "INSERT INTO alert_states (rule_id, series, tenant_id, state) \
             SELECT id, $3, tenant_id, 'ok' FROM alert_rules WHERE tenant_id = $1 AND id = $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_uuid())
        .bind(rule_id)
        .bind(series)
        .execute(self.pool())
        .await?;
        Ok(sqlx::query_as(
            "SELECT rule_id, series, state, since, breached_since, last_seen_at, value, trace_id, \
             transition, notified_at FROM alert_states WHERE tenant_id = $1 AND rule_id = $2 AND series = $3",
        )
        .bind(tenant.as_uuid())
        .bind(rule_id)
        .bind(series)
        .fetch_one(self.pool())
        .await?)
    }

    /// The current states of the tenant's alerts.
    pub async fn alert_states(&self, tenant: TenantId) -> Result<Vec<StateRow>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT rule_id, series, state, since, breached_since, last_seen_at, value, trace_id, \
             transition, notified_at FROM alert_states WHERE tenant_id = $1 ORDER BY rule_id, series",
        )
        .bind(tenant.as_uuid())
        .fetch_all(self.pool())
        .await?)
    }

    /// Writes `update` if the alert is still at `expected` (its transition number):
    /// a change of state counts a transition, and a notifying one records an event and
    /// one delivery per linked channel — unless a silence or the rule's mute covers it,
    /// then the event is recorded silenced. Returns the stored state, `None` when another
    /// replica changed the alert first.
    pub async fn advance_alert_state(
        &self,
        tenant: TenantId,
        rule: &StoredRule,
        series: &str,
        expected: &StateRow,
        update: &StateUpdate,
    ) -> Result<Option<StateRow>, PostgresError> {
        let changed = update.state.as_str() != expected.state;
        let mut tx = self.pool().begin().await?;
        let stored: Option<StateRow> = sqlx::query_as(
            "UPDATE alert_states SET state = $5, \
               since = CASE WHEN $6 THEN now() ELSE since END, \
               transition = transition + CASE WHEN $6 THEN 1 ELSE 0 END, \
               breached_since = $7, last_seen_at = $8, value = $9, \
               trace_id = COALESCE($10, trace_id), \
               notified_at = CASE WHEN $6 AND $5 IN ('firing', 'resolved') THEN now() ELSE notified_at END \
             WHERE tenant_id = $1 AND rule_id = $2 AND series = $3 AND transition = $4 \
             RETURNING rule_id, series, state, since, breached_since, last_seen_at, value, trace_id, \
               transition, notified_at",
        )
        .bind(tenant.as_uuid())
        .bind(rule.id)
        .bind(series)
        .bind(expected.transition)
        .bind(update.state.as_str())
        .bind(changed)
        .bind(update.breached_since)
        .bind(update.last_seen_at)
        .bind(update.value)
        .bind(&update.trace_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        if changed && update.state.notifies() {
            Self::record_event(&mut tx, tenant, rule, &stored, 0).await?;
        }
        tx.commit().await?;
        Ok(Some(stored))
    }

    /// Records the `repeat`-th reminder of a firing alert (once, however many replicas
    /// try) with its deliveries.
    pub async fn repeat_alert(
        &self,
        tenant: TenantId,
        rule: &StoredRule,
        state: &StateRow,
        repeat: i32,
    ) -> Result<bool, PostgresError> {
        let mut tx = self.pool().begin().await?;
        let recorded = Self::record_event(&mut tx, tenant, rule, state, repeat).await?;
        if recorded {
            sqlx::query(
                "UPDATE alert_states SET notified_at = now() WHERE tenant_id = $1 AND rule_id = $2 AND series = $3",
            )
            .bind(tenant.as_uuid())
            .bind(rule.id)
            .bind(&state.series)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn record_event(
        tx: &mut sqlx::PgConnection,
        tenant: TenantId,
        rule: &StoredRule,
        state: &StateRow,
        repeat: i32,
    ) -> Result<bool, PostgresError> {
        let labels = Json(rule.rule.match_labels());
        let event: Option<(i64, bool)> = sqlx::query_as(
            "INSERT INTO alert_events (tenant_id, rule_id, series, transition, repeat, state, value, trace_id, silenced) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, \
               COALESCE((SELECT muted_until > now() FROM alert_rules WHERE tenant_id = $1 AND id = $2), false) \
               OR EXISTS (SELECT 1 FROM alert_silences s WHERE s.tenant_id = $1 AND s.ends_at > now() \
                 AND (s.rule_id = $2 OR (s.rule_id IS NULL AND s.labels <@ $9))) \
             ON CONFLICT (rule_id, series, transition, repeat) DO NOTHING RETURNING id, silenced",
        )
        .bind(tenant.as_uuid())
        .bind(rule.id)
        .bind(&state.series)
        .bind(state.transition)
        .bind(repeat)
        .bind(&state.state)
        .bind(state.value)
        .bind(&state.trace_id)
        .bind(labels)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((event_id, silenced)) = event else {
            return Ok(false);
        };
        if !silenced {
            sqlx::query(
                "INSERT INTO alert_deliveries (tenant_id, event_id, channel_id) \
                 SELECT $1, $2, channel_id FROM alert_rule_channels WHERE tenant_id = $1 AND rule_id = $3 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_uuid())
            .bind(event_id)
            .bind(rule.id)
            .execute(&mut *tx)
            .await?;
        }
        Ok(true)
    }

    /// Notifying changes of the tenant's alerts, newest first (of one rule if given).
    pub async fn alert_events(
        &self,
        tenant: TenantId,
        rule_id: Option<uuid::Uuid>,
        limit: i64,
    ) -> Result<Vec<EventRow>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT id, rule_id, series, transition, repeat, state, value, trace_id, silenced, at \
             FROM alert_events WHERE tenant_id = $1 AND ($2::uuid IS NULL OR rule_id = $2) \
             ORDER BY at DESC, id DESC LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(rule_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn record_observation(
        &self,
        tenant: TenantId,
        rule_id: uuid::Uuid,
        value: Option<f64>,
        state: AlertState,
    ) -> Result<(), PostgresError> {
        sqlx::query(
            "INSERT INTO alert_observations (rule_id, tenant_id, value, state) \
             SELECT id, tenant_id, $3, $4 FROM alert_rules WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(rule_id)
        .bind(value)
        .bind(state.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Observed values of a rule since `since`, oldest first.
    pub async fn alert_observations(
        &self,
        tenant: TenantId,
        rule_id: uuid::Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<Observation>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT at, value, state FROM alert_observations \
             WHERE tenant_id = $1 AND rule_id = $2 AND at >= $3 ORDER BY at LIMIT 5000",
        )
        .bind(tenant.as_uuid())
        .bind(rule_id)
        .bind(since)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn create_alert_channel(
        &self,
        tenant: TenantId,
        spec: &ChannelSpec,
    ) -> Result<ChannelInfo, PostgresError> {
        Ok(sqlx::query_as(
            "INSERT INTO alert_channels (id, tenant_id, name, kind, display, target) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, name, kind, display, created_at",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(tenant.as_uuid())
        .bind(&spec.name)
        .bind(spec.target.kind())
        .bind(spec.target.display())
        .bind(Json(&spec.target))
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn alert_channels(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<ChannelInfo>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT id, name, kind, display, created_at FROM alert_channels WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant.as_uuid())
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn delete_alert_channel(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> Result<bool, PostgresError> {
        let deleted = sqlx::query("DELETE FROM alert_channels WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Queues a test notification to a channel; `None` when the tenant has no such channel.
    pub async fn queue_test_delivery(
        &self,
        tenant: TenantId,
        channel: uuid::Uuid,
    ) -> Result<Option<i64>, PostgresError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO alert_deliveries (tenant_id, channel_id, test) \
             SELECT tenant_id, id, true FROM alert_channels WHERE tenant_id = $1 AND id = $2 RETURNING id",
        )
        .bind(tenant.as_uuid())
        .bind(channel)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn create_silence(
        &self,
        tenant: TenantId,
        spec: &SilenceSpec,
        ends_at: DateTime<Utc>,
    ) -> Result<Option<SilenceInfo>, PostgresError> {
        if let Some(rule) = spec.rule_id
            && self.alert_rule(tenant, rule).await?.is_none()
        {
            return Ok(None);
        }
        Ok(Some(sqlx::query_as(
            "INSERT INTO alert_silences (id, tenant_id, rule_id, labels, ends_at, comment) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, rule_id, labels, ends_at, comment, created_at",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(tenant.as_uuid())
        .bind(spec.rule_id)
        .bind(Json(&spec.labels))
        .bind(ends_at)
        .bind(&spec.comment)
        .fetch_one(self.pool())
        .await?))
    }

    /// The tenant's silences that have not ended.
    pub async fn active_silences(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<SilenceInfo>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT id, rule_id, labels, ends_at, comment, created_at FROM alert_silences \
             WHERE tenant_id = $1 AND ends_at > now() ORDER BY ends_at",
        )
        .bind(tenant.as_uuid())
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn delete_silence(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> Result<bool, PostgresError> {
        let deleted = sqlx::query("DELETE FROM alert_silences WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// The tenant's delivery log, newest first.
    pub async fn alert_deliveries(
        &self,
        tenant: TenantId,
        limit: i64,
    ) -> Result<Vec<DeliveryInfo>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT d.id, d.event_id, d.channel_id, c.name AS channel_name, e.rule_id, e.state, d.test, \
               d.status, d.attempts, d.last_error, d.created_at, d.sent_at \
             FROM alert_deliveries d JOIN alert_channels c ON c.id = d.channel_id AND c.tenant_id = d.tenant_id \
             LEFT JOIN alert_events e ON e.id = d.event_id AND e.tenant_id = d.tenant_id \
             WHERE d.tenant_id = $1 ORDER BY d.created_at DESC, d.id DESC LIMIT $2",
        )
        .bind(tenant.as_uuid())
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Claims up to `limit` due deliveries of any tenant for `claim_for`: each is sent
    /// by one replica at a time; a replica that dies mid-send leaves it to the next claim
    /// once `claim_for` has passed.
    pub async fn claim_deliveries(
        &self,
        replica: &str,
        claim_for: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, PostgresError> {
        let rows: Vec<ClaimedRow> = sqlx::query_as(
            "WITH claimed AS ( \
               UPDATE alert_deliveries SET claimed_by = $1, claimed_until = now() + make_interval(secs => $2) \
               WHERE id IN (SELECT id FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= now() \
                 AND (claimed_until IS NULL OR claimed_until < now()) \
                 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
               RETURNING id, tenant_id, channel_id, event_id, attempts, test, created_at) \
             SELECT d.id, d.tenant_id, d.channel_id, c.name AS channel_name, c.target, d.attempts, d.test, \
               d.created_at, d.event_id, e.rule_id, e.series, e.transition, e.repeat, e.state, e.value, \
               e.trace_id, e.silenced, e.at, r.rule \
             FROM claimed d JOIN alert_channels c ON c.id = d.channel_id AND c.tenant_id = d.tenant_id \
             LEFT JOIN alert_events e ON e.id = d.event_id AND e.tenant_id = d.tenant_id \
             LEFT JOIN alert_rules r ON r.id = e.rule_id AND r.tenant_id = d.tenant_id",
        )
        .bind(replica)
        .bind(seconds(claim_for))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let event = match (row.event_id, row.rule_id, row.at) {
                    (Some(id), Some(rule_id), Some(at)) => Some(EventRow {
                        id,
                        rule_id,
                        series: row.series.unwrap_or_default(),
                        transition: row.transition.unwrap_or_default(),
                        repeat: row.repeat.unwrap_or_default(),
                        state: row.state.unwrap_or_default(),
                        value: row.value,
                        trace_id: row.trace_id,
                        silenced: row.silenced.unwrap_or_default(),
                        at,
                    }),
                    _ => None,
                };
                ClaimedDelivery {
                    id: row.id,
                    tenant_id: TenantId::new(row.tenant_id),
                    channel_id: row.channel_id,
                    channel_name: row.channel_name,
                    target: row.target.0,
                    attempts: row.attempts,
                    test: row.test,
                    created_at: row.created_at,
                    event,
                    rule: row.rule.map(|r| r.0),
                }
            })
            .collect())
    }

    /// Marks a claimed delivery sent (only by its claimer).
    pub async fn delivery_sent(&self, id: i64, replica: &str) -> Result<(), PostgresError> {
        sqlx::query(
            "UPDATE alert_deliveries SET status = 'sent', sent_at = now(), attempts = attempts + 1, \
             last_error = NULL, claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(replica)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Logs a failed attempt: retried at `retry_at`, or failed for good when `None`.
    pub async fn delivery_failed(
        &self,
        id: i64,
        replica: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), PostgresError> {
        sqlx::query(
            "UPDATE alert_deliveries SET attempts = attempts + 1, last_error = $3, \
             status = CASE WHEN $4::timestamptz IS NULL THEN 'failed' ELSE 'pending' END, \
             next_attempt_at = COALESCE($4, next_attempt_at), claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(replica)
        .bind(error)
        .bind(retry_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Puts a claimed delivery back without counting an attempt (its example trace is
    /// not stored yet).
    pub async fn delivery_postponed(
        &self,
        id: i64,
        replica: &str,
        until: DateTime<Utc>,
    ) -> Result<(), PostgresError> {
        sqlx::query(
            "UPDATE alert_deliveries SET next_attempt_at = $3, claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(replica)
        .bind(until)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
