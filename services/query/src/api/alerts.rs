//! Alerting over the JSON API under `/api/v1/alerts`: rules (with their current state,
//! history and observed values), channels (secrets accepted, never returned), silences,
//! the delivery log and current states. Read keys read; write keys change, and every
//! change is announced (`RuleChanged`) so alerting replicas reload at once. Bad input
//! is refused with `{"error": "<field>: <what is wrong>", "field": "<field>"}`.

use super::{ApiState, store_error};
use crate::auth::{ReadTenant, WriteTenant};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use weft_model::TenantId;
use weft_model::alerting::{
    AlertRule, AlertingError, ChannelSpec, SilenceSpec, TargetPolicy, refused_target, url_host,
};
use weft_runtime::{ApiError, ErrorKind};
use weft_storage::postgres::{AlertStoreError, PostgresError, StateRow, StoredRule};

/// The largest rule, channel or silence accepted.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// How far back a rule's service must have sent spans to be known.
const KNOWN_SERVICE_SECONDS: u64 = 7 * 86_400;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/alerts/rules", get(list_rules).post(create_rule))
        .route(
            "/api/v1/alerts/rules/{id}",
            get(get_rule).put(update_rule).delete(delete_rule),
        )
        .route("/api/v1/alerts/rules/{id}/mute", post(mute_rule))
        .route(
            "/api/v1/alerts/channels",
            get(list_channels).post(create_channel),
        )
        .route(
            "/api/v1/alerts/channels/{id}",
            axum::routing::delete(delete_channel),
        )
        .route("/api/v1/alerts/channels/{id}/test", post(test_channel))
        .route(
            "/api/v1/alerts/silences",
            get(list_silences).post(create_silence),
        )
        .route(
            "/api/v1/alerts/silences/{id}",
            axum::routing::delete(delete_silence),
        )
        .route("/api/v1/alerts/deliveries", get(list_deliveries))
        .route("/api/v1/alerts/states", get(list_states))
}

/// An API error, or input refused naming its field.
pub enum AlertApiError {
    Api(ApiError),
    Refused(AlertingError),
}

impl From<ApiError> for AlertApiError {
    fn from(error: ApiError) -> Self {
        AlertApiError::Api(error)
    }
}

impl From<AlertingError> for AlertApiError {
    fn from(error: AlertingError) -> Self {
        AlertApiError::Refused(error)
    }
}

impl From<PostgresError> for AlertApiError {
    fn from(error: PostgresError) -> Self {
        AlertApiError::Api(ApiError::unavailable("alert store", &error))
    }
}

impl From<AlertStoreError> for AlertApiError {
    fn from(error: AlertStoreError) -> Self {
        match error {
            AlertStoreError::Postgres(error) => error.into(),
            AlertStoreError::UnknownChannel { index, id } => {
                AlertApiError::Refused(AlertingError {
                    field: format!("channels[{index}]"),
                    message: format!("no channel {id} in this organisation"),
                })
            }
        }
    }
}

impl IntoResponse for AlertApiError {
    fn into_response(self) -> Response {
        match self {
            AlertApiError::Api(error) => error.into_response(),
            AlertApiError::Refused(refused) => {
                let status = ErrorKind::InvalidArgument.http_status();
                let body = json!({ "error": refused.to_string(), "field": refused.field });
                (status, Json(body)).into_response()
            }
        }
    }
}

type ApiResult<T> = Result<T, AlertApiError>;

async fn body_bytes(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!("at most {MAX_BODY_BYTES} bytes of JSON"),
            )
        })
}

fn not_found(what: &str) -> AlertApiError {
    AlertApiError::Api(ApiError::new(
        ErrorKind::NotFound,
        format!("no such {what}"),
    ))
}

/// An id from the path; a malformed one is as unknown as a missing one.
fn path_id(id: &str, what: &str) -> ApiResult<uuid::Uuid> {
    id.parse().map_err(|_| not_found(what))
}

/// Tells alerting replicas to reload the tenant's rules. A missed announcement only
/// delays the change until their cache expires.
pub async fn announce(bus: &weft_bus::Bus, tenant: TenantId) {
    let changed = weft_bus::RuleChanged { tenant_id: tenant };
    if let Err(error) = bus.announce(&changed).await {
        tracing::warn!(%error, tenant_id = %tenant, "could not announce an alert rule change");
    }
}

/// Whether the rule's service sent spans in the last week, by the pre-sampling metrics
/// (a service whose traces are all dropped is known too); the inner `Err` names the field.
pub async fn known_service(
    store: &weft_storage::clickhouse::ClickHouse,
    tenant: TenantId,
    rule: &AlertRule,
) -> Result<Result<(), AlertingError>, weft_storage::clickhouse::ClickHouseError> {
    let now = crate::params::now_nanos();
    let window = weft_storage::clickhouse::MetricsWindow {
        start_unix_nano: now.saturating_sub(KNOWN_SERVICE_SECONDS * 1_000_000_000),
        end_unix_nano: now,
    };
    let services = store.tenant(tenant).service_red(window).await?;
    let service = rule.condition.service();
    if services.iter().any(|s| s.name == service) {
        Ok(Ok(()))
    } else {
        Ok(Err(AlertingError {
            field: "condition.service".to_owned(),
            message: format!("no spans of service {service:?} in the last 7 days"),
        }))
    }
}

/// How long a channel's host name may take to resolve when it is saved.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Refuses a webhook or Slack URL that points at an internal address, by its host or by
/// what the host name resolves to now (delivery checks the addresses again when it
/// connects, so a name that changes later is caught there). A name that does not resolve
/// is accepted: DNS may be down for a moment, and the delivery log shows the failure.
pub async fn check_target(spec: &ChannelSpec, policy: TargetPolicy) -> Result<(), AlertingError> {
    spec.check_target(policy)?;
    let Some((field, url)) = spec.url_target() else {
        return Ok(());
    };
    let Some((host, port)) = url_host(url) else {
        return Ok(());
    };
    if policy == TargetPolicy::AllowPrivate || host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let resolved = tokio::time::timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await;
    let Ok(Ok(addresses)) = resolved else {
        return Ok(());
    };
    for address in addresses {
        if let Some(what) = policy.refusal(address.ip()) {
            let why = format!("{host} resolves to {}, {what}", address.ip());
            return Err(refused_target(field, &why));
        }
    }
    Ok(())
}

/// Refuses a rule whose service sent nothing in the last week (a typo pages nobody).
async fn check_service(
    store: &weft_storage::clickhouse::ClickHouse,
    tenant: TenantId,
    rule: &AlertRule,
) -> ApiResult<()> {
    Ok(known_service(store, tenant, rule)
        .await
        .map_err(store_error)??)
}

pub fn rule_json(rule: &StoredRule, state: Option<&StateRow>) -> Value {
    json!({
        "id": rule.id,
        "rule": rule.rule,
        "muted_until": rule.muted_until.map(|at| at.to_rfc3339()),
        "updated_at": rule.updated_at.to_rfc3339(),
        "state": state.map_or("ok", |s| s.state.as_str()),
        "state_since": state.map(|s| s.since.to_rfc3339()),
        "value": state.and_then(|s| s.value),
        "trace_id": state.and_then(|s| s.trace_id.clone()),
    })
}

async fn list_rules(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
) -> ApiResult<Json<Value>> {
    let postgres = &state.policies.postgres;
    let rules = postgres.alert_rules(tenant).await?;
    let states = postgres.alert_states(tenant).await?;
    let rules: Vec<Value> = rules
        .iter()
        .map(|rule| rule_json(rule, states.iter().find(|s| s.rule_id == rule.id)))
        .collect();
    Ok(Json(json!({ "rules": rules })))
}

async fn create_rule(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let rule = AlertRule::from_json(&body_bytes(body).await?)?;
    check_service(&state.store, tenant, &rule).await?;
    let stored = state
        .policies
        .postgres
        .create_alert_rule(tenant, &rule)
        .await?;
    announce(&state.policies.bus, tenant).await;
    Ok((StatusCode::CREATED, Json(rule_json(&stored, None))))
}

async fn get_rule(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = path_id(&id, "rule")?;
    let postgres = &state.policies.postgres;
    let rule = postgres
        .alert_rule(tenant, id)
        .await?
        .ok_or_else(|| not_found("rule"))?;
    let states = postgres.alert_states(tenant).await?;
    let events = postgres.alert_events(tenant, Some(id), 100).await?;
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    let observations = postgres.alert_observations(tenant, id, since).await?;
    let mut body = rule_json(&rule, states.iter().find(|s| s.rule_id == id));
    body["history"] = json!(events);
    body["observations"] = json!(observations);
    Ok(Json(body))
}

async fn update_rule(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let id = path_id(&id, "rule")?;
    let rule = AlertRule::from_json(&body_bytes(body).await?)?;
    let postgres = &state.policies.postgres;
    if postgres.alert_rule(tenant, id).await?.is_none() {
        return Err(not_found("rule"));
    }
    check_service(&state.store, tenant, &rule).await?;
    let stored = postgres
        .update_alert_rule(tenant, id, &rule)
        .await?
        .ok_or_else(|| not_found("rule"))?;
    announce(&state.policies.bus, tenant).await;
    Ok(Json(rule_json(&stored, None)))
}

async fn delete_rule(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id(&id, "rule")?;
    if !state
        .policies
        .postgres
        .delete_alert_rule(tenant, id)
        .await?
    {
        return Err(not_found("rule"));
    }
    announce(&state.policies.bus, tenant).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Mute {
    /// RFC 3339, or null to unmute.
    until: Option<String>,
}

pub fn parse_time(field: &str, text: &str) -> Result<chrono::DateTime<chrono::Utc>, AlertingError> {
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|_| AlertingError {
            field: field.to_owned(),
            message: format!("must be an RFC 3339 time like 2030-01-01T12:00:00Z, not {text:?}"),
        })?
        .with_timezone(&chrono::Utc);
    if at <= chrono::Utc::now() {
        return Err(AlertingError {
            field: field.to_owned(),
            message: format!("must be in the future, not {text}"),
        });
    }
    Ok(at)
}

async fn mute_rule(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    let id = path_id(&id, "rule")?;
    let bytes = body_bytes(body).await?;
    let mute: Mute = serde_json::from_slice(&bytes).map_err(|e| AlertingError {
        field: "until".to_owned(),
        message: e.to_string(),
    })?;
    let until = mute
        .until
        .as_deref()
        .map(|t| parse_time("until", t))
        .transpose()?;
    if !state
        .policies
        .postgres
        .mute_alert_rule(tenant, id, until)
        .await?
    {
        return Err(not_found("rule"));
    }
    announce(&state.policies.bus, tenant).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_channels(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
) -> ApiResult<Json<Value>> {
    let channels = state.policies.postgres.alert_channels(tenant).await?;
    Ok(Json(json!({ "channels": channels })))
}

async fn create_channel(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let spec = ChannelSpec::from_json(&body_bytes(body).await?)?;
    check_target(&spec, state.alerting_targets).await?;
    let channel = state
        .policies
        .postgres
        .create_alert_channel(tenant, &spec)
        .await?;
    announce(&state.policies.bus, tenant).await;
    Ok((StatusCode::CREATED, Json(json!(channel))))
}

async fn delete_channel(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id(&id, "channel")?;
    if !state
        .policies
        .postgres
        .delete_alert_channel(tenant, id)
        .await?
    {
        return Err(not_found("channel"));
    }
    announce(&state.policies.bus, tenant).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn test_channel(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = path_id(&id, "channel")?;
    let delivery = state
        .policies
        .postgres
        .queue_test_delivery(tenant, id)
        .await?
        .ok_or_else(|| not_found("channel"))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "delivery_id": delivery })),
    ))
}

async fn list_silences(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
) -> ApiResult<Json<Value>> {
    let silences = state.policies.postgres.active_silences(tenant).await?;
    Ok(Json(json!({ "silences": silences })))
}

async fn create_silence(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let spec = SilenceSpec::from_json(&body_bytes(body).await?)?;
    let ends_at = parse_time("ends_at", &spec.ends_at)?;
    let silence = state
        .policies
        .postgres
        .create_silence(tenant, &spec, ends_at)
        .await?
        .ok_or_else(|| {
            AlertApiError::Refused(AlertingError {
                field: "rule_id".to_owned(),
                message: "no such rule in this organisation".to_owned(),
            })
        })?;
    Ok((StatusCode::CREATED, Json(json!(silence))))
}

async fn delete_silence(
    State(state): State<Arc<ApiState>>,
    WriteTenant(tenant): WriteTenant,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id(&id, "silence")?;
    if !state.policies.postgres.delete_silence(tenant, id).await? {
        return Err(not_found("silence"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list_deliveries(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
) -> ApiResult<Json<Value>> {
    let deliveries = state
        .policies
        .postgres
        .alert_deliveries(tenant, 200)
        .await?;
    Ok(Json(json!({ "deliveries": deliveries })))
}

async fn list_states(
    State(state): State<Arc<ApiState>>,
    ReadTenant(tenant): ReadTenant,
) -> ApiResult<Json<Value>> {
    let states = state.policies.postgres.alert_states(tenant).await?;
    Ok(Json(json!({ "states": states })))
}
