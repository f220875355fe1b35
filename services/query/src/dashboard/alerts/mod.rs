//! Alerting in the dashboard: the rules with their current state (everyone reads;
//! members and above create, edit, mute and delete them), a rule's page with its
//! observed value over time against the threshold and its history, the channels (admins
//! and owners add and delete them and send test notifications; secrets are never shown
//! again), and the delivery log. Every change is announced to the alerting replicas, as
//! through the API.

mod rule_form;

use super::DashboardState;
use super::error::DashboardError;
use super::extract::{Authorized, CsrfForm, CsrfProtected, Named, PathId, Permission, SignedIn};
use super::keys::format_time;
use super::render::{Layout, render};
use crate::api::alerts::announce;
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use rule_form::{KINDS, RuleFields, form_field};
use serde::Deserialize;
use std::sync::Arc;
use weft_model::Role;
use weft_model::alerting::{AlertRule, AlertingError, ChannelSpec, ChannelTarget, SilenceSpec};
use weft_storage::postgres::{AlertStoreError, Observation, StoredRule};

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/alerts", get(rules_page).post(create_rule))
        .route("/alerts/rules/{id}", get(rule_page).post(save_rule))
        .route("/alerts/rules/{id}/mute", post(mute_rule))
        .route("/alerts/rules/{id}/delete", post(delete_rule))
        .route("/alerts/silences", post(create_silence))
        .route("/alerts/silences/{id}/delete", post(delete_silence))
        .route("/alerts/channels", get(channels_page).post(create_channel))
        .route("/alerts/channels/{id}/test", post(test_channel))
        .route("/alerts/channels/{id}/delete", post(delete_channel))
        .route("/alerts/deliveries", get(deliveries_page))
}

/// Create, edit, mute and delete alert rules: members and above.
pub struct EditRules;

impl Permission for EditRules {
    const ACTION: &'static str = "change alert rules";

    fn granted_to(role: Role) -> bool {
        role != Role::Viewer
    }
}

/// Add and delete notification channels and send test notifications: admins and owners
/// (channels hold the organisation's webhook secrets).
pub struct ManageChannels;

impl Permission for ManageChannels {
    const ACTION: &'static str = "manage notification channels";

    fn granted_to(role: Role) -> bool {
        role.is_admin()
    }
}

pub struct RuleId;

impl Named for RuleId {
    const NAME: &'static str = "alert rule";
}

pub struct SilenceId;

impl Named for SilenceId {
    const NAME: &'static str = "silence";
}

pub struct ChannelId;

impl Named for ChannelId {
    const NAME: &'static str = "channel";
}

/// A rule as the list shows it.
struct RuleRow {
    id: String,
    name: String,
    /// "p99 latency of checkout / GET /cart > 800 ms over 5 min".
    summary: String,
    state: String,
    since: String,
    value: String,
    muted: String,
}

fn duration_text(seconds: u64) -> String {
    match seconds {
        s if s % 3600 == 0 && s > 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e12 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn summary(rule: &AlertRule) -> String {
    let c = &rule.condition;
    let target = match c.operation() {
        Some(op) => format!("{} / {op}", c.service()),
        None => c.service().to_owned(),
    };
    let comparison = match c {
        weft_model::alerting::Condition::Throughput {
            direction: weft_model::alerting::Direction::Below,
            ..
        } => "<",
        _ => ">",
    };
    let over = if c.is_per_span() {
        "any span".to_owned()
    } else {
        format!("over {}", duration_text(c.window_seconds()))
    };
    let held = if rule.for_seconds > 0 {
        format!(", for {}", duration_text(rule.for_seconds))
    } else {
        String::new()
    };
    format!(
        "{} of {target} {comparison} {} {} ({over}{held})",
        c.measure(),
        number(c.threshold()),
        c.unit()
    )
}

fn muted_text(rule: &StoredRule) -> String {
    match rule.muted_until {
        Some(until) if until > chrono::Utc::now() => format!("muted until {}", format_time(until)),
        _ => String::new(),
    }
}

fn value_text(rule: &AlertRule, value: Option<f64>) -> String {
    value.map_or_else(
        || "–".to_owned(),
        |v| format!("{} {}", number(v), rule.condition.unit()),
    )
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct RulesPage {
    layout: Layout,
    rules: Vec<RuleRow>,
    silences: Vec<SilenceRow>,
    /// Rules to silence one of, by id and name.
    rule_choices: Vec<(String, String)>,
    silence_problem: Option<AlertingError>,
    can_edit: bool,
    rule_form: RuleFormView,
    notice: Option<&'static str>,
}

/// What the rules page shows besides the rules: a refused rule or silence, a notice.
#[derive(Default)]
struct Shown {
    fields: Option<RuleFields>,
    problem: Option<AlertingError>,
    silence_problem: Option<AlertingError>,
    notice: Option<&'static str>,
}

struct SilenceRow {
    id: String,
    /// `rule checkout p99`, or the labels (`team=payments`).
    matches: String,
    ends: String,
    comment: String,
}

async fn render_rules(
    state: &DashboardState,
    user: &SignedIn,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, DashboardError> {
    let Shown {
        fields,
        problem,
        silence_problem,
        notice,
    } = shown;
    let rules = state.postgres.alert_rules(user.tenant).await?;
    let states = state.postgres.alert_states(user.tenant).await?;
    let rows = rules
        .iter()
        .map(|rule| {
            let current = states.iter().find(|s| s.rule_id == rule.id);
            RuleRow {
                id: rule.id.to_string(),
                name: rule.rule.name.clone(),
                summary: summary(&rule.rule),
                state: current.map_or("ok", |s| s.state.as_str()).to_owned(),
                since: current.map(|s| format_time(s.since)).unwrap_or_default(),
                value: value_text(&rule.rule, current.and_then(|s| s.value)),
                muted: muted_text(rule),
            }
        })
        .collect();
    let silences = state.postgres.active_silences(user.tenant).await?;
    let silences = silences
        .into_iter()
        .map(|silence| SilenceRow {
            id: silence.id.to_string(),
            matches: match silence.rule_id {
                Some(id) => format!(
                    "rule {}",
                    rules
                        .iter()
                        .find(|r| r.id == id)
                        .map_or("?", |r| r.rule.name.as_str())
                ),
                None => silence
                    .labels
                    .0
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            ends: format_time(silence.ends_at),
            comment: silence.comment,
        })
        .collect();
    let page = RulesPage {
        layout: user.layout(state),
        silences,
        rule_choices: rules
            .iter()
            .map(|r| (r.id.to_string(), r.rule.name.clone()))
            .collect(),
        silence_problem,
        rules: rows,
        can_edit: EditRules::granted_to(user.role),
        rule_form: rule_form_view(
            state,
            user,
            None,
            fields.unwrap_or_else(|| RuleFields::new("")),
            problem,
        )
        .await?,
        notice,
    };
    Ok(render(status, &page))
}

/// Which kind of rule the form shows (`?kind=latency`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct KindQuery {
    kind: Option<String>,
}

/// The rule form as a page shows it: its fields, the tenant's services, operations and
/// channels to pick from, and the refusal of the last submission.
struct RuleFormView {
    /// Where the form posts, and where a kind link leads (`…?kind=`).
    action: String,
    anchor: &'static str,
    submit: &'static str,
    fields: RuleFields,
    kinds: &'static [(&'static str, &'static str)],
    services: Vec<String>,
    /// (operation, service), for the operation's datalist.
    operations: Vec<(String, String)>,
    /// (id, "name (kind)").
    channels: Vec<(String, String)>,
    problem: Option<AlertingError>,
}

impl RuleFormView {
    /// The refusal's message when it is about `field`.
    fn error(&self, field: &str) -> Option<&str> {
        self.problem
            .as_ref()
            .filter(|p| p.field == field)
            .map(|p| p.message.as_str())
    }

    /// The duration fields: window, `for` and repeat.
    fn timings(&self) -> Vec<Timing<'_>> {
        let f = &self.fields;
        let window_title = if f.kind == "span_duration" {
            "Resolves after"
        } else {
            "Window"
        };
        let window_hint = if f.kind == "span_duration" {
            "without a slow span"
        } else {
            "evaluated over the last"
        };
        [
            (
                "window",
                window_title,
                window_hint,
                &f.window,
                &f.window_unit,
            ),
            (
                "for",
                "For",
                "pending before firing; 0 fires at once",
                &f.for_,
                &f.for_unit,
            ),
            (
                "repeat",
                "Repeat",
                "remind while firing; 0 never",
                &f.repeat,
                &f.repeat_unit,
            ),
        ]
        .into_iter()
        .map(|(field, title, hint, value, unit)| Timing {
            field,
            title,
            hint,
            value,
            units: [("s", "seconds"), ("min", "minutes"), ("h", "hours")]
                .into_iter()
                .map(|(u, name)| (u, name, u == unit.as_str()))
                .collect(),
        })
        .collect()
    }

    /// What a field is called on the form, for the summary above it.
    fn label(&self, field: &str) -> &'static str {
        match field {
            "name" => "Name",
            "service" => "Service",
            "operation" => "Operation",
            "attributes" => "Attributes",
            "percentile" => "Percentile",
            "direction" => "Direction",
            "threshold" => "Threshold",
            "min_requests" => "Minimum requests",
            "window" => "Window",
            "for" => "For",
            "repeat" => "Repeat",
            "channels" => "Channels",
            "labels" => "Labels",
            _ => "Kind",
        }
    }
}

/// A duration field of the rule form.
struct Timing<'a> {
    field: &'static str,
    title: &'static str,
    hint: &'static str,
    value: &'a str,
    /// (unit, its name, whether chosen).
    units: Vec<(&'static str, &'static str, bool)>,
}

/// How far back the pickers look for services, as the check that a rule's service exists.
const PICKER_SECONDS: u64 = 7 * 86_400;
/// At most this many services list their operations in the picker.
const PICKER_SERVICES: usize = 50;

async fn rule_form_view(
    state: &DashboardState,
    user: &SignedIn,
    rule_id: Option<uuid::Uuid>,
    fields: RuleFields,
    problem: Option<AlertingError>,
) -> Result<RuleFormView, DashboardError> {
    let now = crate::params::now_nanos();
    let window = weft_storage::clickhouse::MetricsWindow {
        start_unix_nano: now.saturating_sub(PICKER_SECONDS * 1_000_000_000),
        end_unix_nano: now,
    };
    let store = state.store.tenant(user.tenant);
    let mut services: Vec<String> = store
        .service_red(window)
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    services.sort();
    services.dedup();
    let mut operations = Vec::new();
    for service in services.iter().take(PICKER_SERVICES) {
        let mut names: Vec<String> = store
            .operation_red(service, window)
            .await?
            .into_iter()
            .map(|o| o.name)
            .collect();
        names.sort();
        names.dedup();
        operations.extend(names.into_iter().map(|name| (name, service.clone())));
    }
    // A saved rule's service stays pickable when it has gone quiet.
    if !fields.service.trim().is_empty() && !services.contains(&fields.service) {
        services.insert(0, fields.service.clone());
    }
    let channels = state.postgres.alert_channels(user.tenant).await?;
    let (action, anchor, submit) = match rule_id {
        Some(id) => (format!("/alerts/rules/{id}"), "edit", "Save"),
        None => ("/alerts".to_owned(), "new-rule", "Create rule"),
    };
    Ok(RuleFormView {
        action,
        anchor,
        submit,
        fields,
        kinds: &KINDS,
        services,
        operations,
        channels: channels
            .iter()
            .map(|c| (c.id.to_string(), format!("{} ({})", c.name, c.kind)))
            .collect(),
        problem,
    })
}

async fn rules_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    Query(query): Query<KindQuery>,
) -> Result<Response, DashboardError> {
    let shown = Shown {
        fields: query.kind.map(|kind| RuleFields::new(&kind)),
        ..Shown::default()
    };
    render_rules(&state, &user, StatusCode::OK, shown).await
}

/// The form's rule, validated, with its service checked against the tenant's spans; a
/// problem names a field of the form.
async fn checked_rule(
    state: &DashboardState,
    user: &SignedIn,
    fields: &RuleFields,
) -> Result<Result<AlertRule, AlertingError>, DashboardError> {
    let rule = match fields.rule() {
        Ok(rule) => rule,
        Err(problem) => return Ok(Err(problem)),
    };
    Ok(
        crate::api::alerts::known_service(&state.store, user.tenant, &rule)
            .await?
            .map(|()| rule)
            .map_err(on_form),
    )
}

/// A refusal of the model (naming a JSON path) as a refusal of the form's field.
fn on_form(problem: AlertingError) -> AlertingError {
    AlertingError {
        field: form_field(&problem.field).to_owned(),
        message: problem.message,
    }
}

fn store_problem(error: AlertStoreError) -> Result<AlertingError, DashboardError> {
    match error {
        AlertStoreError::Postgres(error) => Err(error.into()),
        AlertStoreError::UnknownChannel { id, .. } => Ok(AlertingError {
            field: "channels".to_owned(),
            message: format!("no channel {id} in this organisation"),
        }),
    }
}

async fn create_rule(
    State(state): State<Arc<DashboardState>>,
    Authorized { user, form, .. }: Authorized<EditRules, RuleFields>,
) -> Result<Response, DashboardError> {
    let refused = |problem| {
        let shown = Shown {
            fields: Some(form.clone()),
            problem: Some(problem),
            ..Shown::default()
        };
        render_rules(&state, &user, StatusCode::BAD_REQUEST, shown)
    };
    let rule = match checked_rule(&state, &user, &form).await? {
        Ok(rule) => rule,
        Err(problem) => return refused(problem).await,
    };
    match state.postgres.create_alert_rule(user.tenant, &rule).await {
        Ok(stored) => {
            announce(&state.policies.bus, user.tenant).await;
            Ok(Redirect::to(&format!("/alerts/rules/{}", stored.id)).into_response())
        }
        Err(error) => refused(store_problem(error)?).await,
    }
}

/// A point of the chart, in the SVG's coordinates.
struct ChartPoint {
    x: f64,
    y: f64,
    firing: bool,
    title: String,
}

/// The observed value over time against the threshold, as drawn in SVG.
struct Chart {
    width: f64,
    height: f64,
    /// `x,y x,y …` of the line.
    line: String,
    points: Vec<ChartPoint>,
    threshold_y: f64,
    threshold_label: String,
    top_label: String,
    start_label: String,
    end_label: String,
}

fn chart(rule: &AlertRule, observations: &[Observation]) -> Option<Chart> {
    let values: Vec<(&Observation, f64)> = observations
        .iter()
        .filter_map(|o| Some((o, o.value?)))
        .collect();
    let (first, last) = (observations.first()?, observations.last()?);
    let (width, height, left, top, bottom) = (720.0, 220.0, 8.0, 16.0, 24.0);
    let threshold = rule.condition.threshold();
    let peak = values.iter().map(|(_, v)| *v).fold(threshold, f64::max) * 1.15;
    let peak = if peak > 0.0 { peak } else { 1.0 };
    let span = (last.at - first.at).num_milliseconds().max(1) as f64;
    let x = |at: chrono::DateTime<chrono::Utc>| {
        left + (width - 2.0 * left) * (at - first.at).num_milliseconds() as f64 / span
    };
    let y = |v: f64| top + (height - top - bottom) * (1.0 - v / peak);
    let points: Vec<ChartPoint> = values
        .iter()
        .map(|(o, v)| ChartPoint {
            x: x(o.at),
            y: y(*v),
            firing: o.state == "firing",
            title: format!(
                "{} · {} {} · {}",
                o.at.format("%H:%M:%S"),
                number(*v),
                rule.condition.unit(),
                o.state
            ),
        })
        .collect();
    let line = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", p.x, p.y))
        .collect::<Vec<_>>()
        .join(" ");
    Some(Chart {
        width,
        height,
        line,
        points,
        threshold_y: y(threshold),
        threshold_label: format!("threshold {} {}", number(threshold), rule.condition.unit()),
        top_label: format!("{} {}", number(peak), rule.condition.unit()),
        start_label: first.at.format("%H:%M:%S").to_string(),
        end_label: last.at.format("%H:%M:%S UTC").to_string(),
    })
}

struct EventRow {
    at: String,
    state: String,
    value: String,
    trace_id: Option<String>,
    silenced: bool,
    repeat: i32,
}

#[derive(Template)]
#[template(path = "alert_rule.html")]
struct RulePage {
    layout: Layout,
    id: String,
    name: String,
    summary: String,
    kind: &'static str,
    state: String,
    since: String,
    value: String,
    trace_id: Option<String>,
    muted: String,
    channels: Vec<String>,
    chart: Option<Chart>,
    history: Vec<EventRow>,
    can_edit: bool,
    rule_form: RuleFormView,
    notice: Option<&'static str>,
}

/// What a rule's page shows in its form: the saved rule (as `kind` when given), or a
/// refused submission with its problem.
enum Edit {
    Saved { kind: Option<String> },
    Refused(Box<RuleFields>, AlertingError),
}

async fn render_rule(
    state: &DashboardState,
    user: &SignedIn,
    id: uuid::Uuid,
    status: StatusCode,
    edit: Edit,
    notice: Option<&'static str>,
) -> Result<Response, DashboardError> {
    let Some(rule) = state.postgres.alert_rule(user.tenant, id).await? else {
        return Err(DashboardError::NotFound(RuleId::NAME));
    };
    let states = state.postgres.alert_states(user.tenant).await?;
    let current = states.iter().find(|s| s.rule_id == id);
    let since = chrono::Utc::now() - chrono::Duration::hours(6);
    let observations = state
        .postgres
        .alert_observations(user.tenant, id, since)
        .await?;
    let events = state
        .postgres
        .alert_events(user.tenant, Some(id), 50)
        .await?;
    let channels = state.postgres.alert_channels(user.tenant).await?;
    let page = RulePage {
        layout: user.layout(state),
        id: id.to_string(),
        name: rule.rule.name.clone(),
        summary: summary(&rule.rule),
        kind: rule.rule.condition.kind(),
        state: current.map_or("ok", |s| s.state.as_str()).to_owned(),
        since: current.map(|s| format_time(s.since)).unwrap_or_default(),
        value: value_text(&rule.rule, current.and_then(|s| s.value)),
        trace_id: current.and_then(|s| s.trace_id.clone()),
        muted: muted_text(&rule),
        channels: channels
            .iter()
            .filter(|c| rule.rule.channels.contains(&c.id))
            .map(|c| format!("{} ({})", c.name, c.kind))
            .collect(),
        chart: chart(&rule.rule, &observations),
        history: events
            .iter()
            .map(|e| EventRow {
                at: format_time(e.at),
                state: e.state.clone(),
                value: value_text(&rule.rule, e.value),
                trace_id: e.trace_id.clone(),
                silenced: e.silenced,
                repeat: e.repeat,
            })
            .collect(),
        can_edit: EditRules::granted_to(user.role),
        rule_form: {
            let (fields, problem) = match edit {
                Edit::Saved { kind } => (RuleFields::from_rule(&rule.rule, kind.as_deref()), None),
                Edit::Refused(fields, problem) => (*fields, Some(problem)),
            };
            rule_form_view(state, user, Some(id), fields, problem).await?
        },
        notice,
    };
    Ok(render(status, &page))
}

async fn rule_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    rule: PathId<RuleId>,
    Query(query): Query<KindQuery>,
) -> Result<Response, DashboardError> {
    let edit = Edit::Saved { kind: query.kind };
    render_rule(&state, &user, rule.id, StatusCode::OK, edit, None).await
}

async fn save_rule(
    State(state): State<Arc<DashboardState>>,
    rule: PathId<RuleId>,
    Authorized { user, form, .. }: Authorized<EditRules, RuleFields>,
) -> Result<Response, DashboardError> {
    let id = rule.id;
    if state.postgres.alert_rule(user.tenant, id).await?.is_none() {
        return Err(rule.not_found());
    }
    let parsed = match checked_rule(&state, &user, &form).await? {
        Ok(parsed) => parsed,
        Err(problem) => {
            let edit = Edit::Refused(Box::new(form), problem);
            return render_rule(&state, &user, id, StatusCode::BAD_REQUEST, edit, None).await;
        }
    };
    match state
        .postgres
        .update_alert_rule(user.tenant, id, &parsed)
        .await
    {
        Ok(Some(_)) => {
            announce(&state.policies.bus, user.tenant).await;
            let edit = Edit::Saved { kind: None };
            render_rule(&state, &user, id, StatusCode::OK, edit, Some("Saved.")).await
        }
        Ok(None) => Err(rule.not_found()),
        Err(error) => {
            let edit = Edit::Refused(Box::new(form), store_problem(error)?);
            render_rule(&state, &user, id, StatusCode::BAD_REQUEST, edit, None).await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MuteForm {
    csrf: String,
    /// Hours to mute for; 0 unmutes.
    hours: u32,
}

impl CsrfProtected for MuteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn mute_rule(
    State(state): State<Arc<DashboardState>>,
    rule: PathId<RuleId>,
    Authorized { user, form, .. }: Authorized<EditRules, MuteForm>,
) -> Result<Response, DashboardError> {
    let until = (form.hours > 0)
        .then(|| chrono::Utc::now() + chrono::Duration::hours(i64::from(form.hours.min(24 * 30))));
    if !state
        .postgres
        .mute_alert_rule(user.tenant, rule.id, until)
        .await?
    {
        return Err(rule.not_found());
    }
    announce(&state.policies.bus, user.tenant).await;
    let notice = if until.is_some() {
        "Muted: changes are recorded but notify nobody."
    } else {
        "Unmuted."
    };
    let edit = Edit::Saved { kind: None };
    render_rule(&state, &user, rule.id, StatusCode::OK, edit, Some(notice)).await
}

async fn delete_rule(
    State(state): State<Arc<DashboardState>>,
    rule: PathId<RuleId>,
    Authorized { user, .. }: Authorized<EditRules, CsrfForm>,
) -> Result<Response, DashboardError> {
    if !state
        .postgres
        .delete_alert_rule(user.tenant, rule.id)
        .await?
    {
        return Err(rule.not_found());
    }
    announce(&state.policies.bus, user.tenant).await;
    let shown = Shown {
        notice: Some("Rule deleted."),
        ..Shown::default()
    };
    render_rules(&state, &user, StatusCode::OK, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SilenceForm {
    csrf: String,
    /// A rule's id, or empty to match labels.
    rule_id: String,
    /// `key=value` pairs, separated by commas.
    labels: String,
    hours: u32,
    comment: String,
}

impl CsrfProtected for SilenceForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl SilenceForm {
    fn spec(&self) -> Result<(SilenceSpec, chrono::DateTime<chrono::Utc>), AlertingError> {
        let refuse = |field: &str, message: String| AlertingError {
            field: field.to_owned(),
            message,
        };
        let mut labels = std::collections::BTreeMap::new();
        for pair in self
            .labels
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| refuse("labels", format!("{pair:?} is not key=value")))?;
            labels.insert(key.trim().to_owned(), value.trim().to_owned());
        }
        let rule_id = match self.rule_id.trim() {
            "" => None,
            id => Some(
                id.parse()
                    .map_err(|_| refuse("rule_id", "no such rule".to_owned()))?,
            ),
        };
        if !(1..=24 * 30).contains(&self.hours) {
            return Err(refuse(
                "hours",
                format!("must be 1 to 720 hours, not {}", self.hours),
            ));
        }
        let ends_at = chrono::Utc::now() + chrono::Duration::hours(i64::from(self.hours));
        let spec = SilenceSpec {
            rule_id,
            labels,
            ends_at: ends_at.to_rfc3339(),
            comment: self.comment.trim().to_owned(),
        };
        let json = serde_json::to_vec(&spec).expect("silences serialise");
        Ok((SilenceSpec::from_json(&json)?, ends_at))
    }
}

async fn create_silence(
    State(state): State<Arc<DashboardState>>,
    Authorized { user, form, .. }: Authorized<EditRules, SilenceForm>,
) -> Result<Response, DashboardError> {
    let refused = |problem| {
        let shown = Shown {
            silence_problem: Some(problem),
            ..Shown::default()
        };
        render_rules(&state, &user, StatusCode::BAD_REQUEST, shown)
    };
    let (spec, ends_at) = match form.spec() {
        Ok(spec) => spec,
        Err(problem) => return refused(problem).await,
    };
    if state
        .postgres
        .create_silence(user.tenant, &spec, ends_at)
        .await?
        .is_none()
    {
        let problem = AlertingError {
            field: "rule_id".to_owned(),
            message: "no such rule in this organisation".to_owned(),
        };
        return refused(problem).await;
    }
    let shown = Shown {
        notice: Some("Silenced: matching alerts change state but notify nobody until it ends."),
        ..Shown::default()
    };
    render_rules(&state, &user, StatusCode::OK, shown).await
}

async fn delete_silence(
    State(state): State<Arc<DashboardState>>,
    silence: PathId<SilenceId>,
    Authorized { user, .. }: Authorized<EditRules, CsrfForm>,
) -> Result<Response, DashboardError> {
    if !state
        .postgres
        .delete_silence(user.tenant, silence.id)
        .await?
    {
        return Err(silence.not_found());
    }
    let shown = Shown {
        notice: Some("Silence ended."),
        ..Shown::default()
    };
    render_rules(&state, &user, StatusCode::OK, shown).await
}

struct ChannelRow {
    id: String,
    name: String,
    kind: String,
    display: String,
    created: String,
}

#[derive(Template)]
#[template(path = "alert_channels.html")]
struct ChannelsPage {
    layout: Layout,
    channels: Vec<ChannelRow>,
    can_manage: bool,
    form: ChannelForm,
    problem: Option<AlertingError>,
    notice: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct ChannelForm {
    csrf: String,
    name: String,
    kind: String,
    url: String,
    secret: String,
    to: String,
}

impl CsrfProtected for ChannelForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl ChannelForm {
    fn spec(&self) -> ChannelSpec {
        let target = match self.kind.as_str() {
            "webhook" => ChannelTarget::Webhook {
                url: self.url.trim().to_owned(),
                secret: self.secret.clone(),
            },
            "email" => ChannelTarget::Email {
                to: self
                    .to
                    .split([',', '\n'])
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect(),
            },
            _ => ChannelTarget::Slack {
                webhook_url: self.url.trim().to_owned(),
            },
        };
        ChannelSpec {
            name: self.name.trim().to_owned(),
            target,
        }
    }
}

async fn render_channels(
    state: &DashboardState,
    user: &SignedIn,
    status: StatusCode,
    form: ChannelForm,
    problem: Option<AlertingError>,
    notice: Option<String>,
) -> Result<Response, DashboardError> {
    let channels = state.postgres.alert_channels(user.tenant).await?;
    let page = ChannelsPage {
        layout: user.layout(state),
        channels: channels
            .into_iter()
            .map(|c| ChannelRow {
                id: c.id.to_string(),
                name: c.name,
                kind: c.kind,
                display: c.display,
                created: format_time(c.created_at),
            })
            .collect(),
        can_manage: ManageChannels::granted_to(user.role),
        // Secrets are never sent back, not even after a refused form.
        form: ChannelForm {
            secret: String::new(),
            url: String::new(),
            ..form
        },
        problem,
        notice,
    };
    Ok(render(status, &page))
}

async fn channels_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    let form = ChannelForm {
        kind: "slack".to_owned(),
        ..ChannelForm::default()
    };
    render_channels(&state, &user, StatusCode::OK, form, None, None).await
}

async fn create_channel(
    State(state): State<Arc<DashboardState>>,
    Authorized { user, form, .. }: Authorized<ManageChannels, ChannelForm>,
) -> Result<Response, DashboardError> {
    let spec = form.spec();
    let checked = match spec.validate() {
        Ok(()) => crate::api::alerts::check_target(&spec, state.alerting_targets).await,
        Err(problem) => Err(problem),
    };
    if let Err(problem) = checked {
        return render_channels(
            &state,
            &user,
            StatusCode::BAD_REQUEST,
            form,
            Some(problem),
            None,
        )
        .await;
    }
    let channel = state
        .postgres
        .create_alert_channel(user.tenant, &spec)
        .await?;
    announce(&state.policies.bus, user.tenant).await;
    let notice = format!(
        "Channel {} added. Its URL and secret are stored and will not be shown again.",
        channel.name
    );
    render_channels(
        &state,
        &user,
        StatusCode::OK,
        ChannelForm {
            kind: "slack".to_owned(),
            ..ChannelForm::default()
        },
        None,
        Some(notice),
    )
    .await
}

async fn test_channel(
    State(state): State<Arc<DashboardState>>,
    channel: PathId<ChannelId>,
    Authorized { user, .. }: Authorized<ManageChannels, CsrfForm>,
) -> Result<Response, DashboardError> {
    if state
        .postgres
        .queue_test_delivery(user.tenant, channel.id)
        .await?
        .is_none()
    {
        return Err(channel.not_found());
    }
    let notice = "Test notification queued; its outcome shows in the delivery log.".to_owned();
    render_channels(
        &state,
        &user,
        StatusCode::OK,
        ChannelForm {
            kind: "slack".to_owned(),
            ..ChannelForm::default()
        },
        None,
        Some(notice),
    )
    .await
}

async fn delete_channel(
    State(state): State<Arc<DashboardState>>,
    channel: PathId<ChannelId>,
    Authorized { user, .. }: Authorized<ManageChannels, CsrfForm>,
) -> Result<Response, DashboardError> {
    if !state
        .postgres
        .delete_alert_channel(user.tenant, channel.id)
        .await?
    {
        return Err(channel.not_found());
    }
    announce(&state.policies.bus, user.tenant).await;
    render_channels(
        &state,
        &user,
        StatusCode::OK,
        ChannelForm {
            kind: "slack".to_owned(),
            ..ChannelForm::default()
        },
        None,
        Some("Channel deleted.".to_owned()),
    )
    .await
}

struct DeliveryRow {
    created: String,
    channel: String,
    rule_id: Option<String>,
    what: String,
    status: String,
    attempts: i32,
    error: String,
    sent: String,
}

#[derive(Template)]
#[template(path = "alert_deliveries.html")]
struct DeliveriesPage {
    layout: Layout,
    deliveries: Vec<DeliveryRow>,
}

async fn deliveries_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    let deliveries = state.postgres.alert_deliveries(user.tenant, 200).await?;
    let page = DeliveriesPage {
        layout: user.layout(&state),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryRow {
                created: format_time(d.created_at),
                channel: d.channel_name,
                rule_id: d.rule_id.map(|id| id.to_string()),
                what: if d.test {
                    "test".to_owned()
                } else {
                    d.state.unwrap_or_default()
                },
                status: d.status,
                attempts: d.attempts,
                error: d.last_error.unwrap_or_default(),
                sent: d.sent_at.map(format_time).unwrap_or_default(),
            })
            .collect(),
    };
    Ok(render(StatusCode::OK, &page))
}
