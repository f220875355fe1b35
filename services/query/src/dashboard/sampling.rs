//! The sampling policy of the organisation: everyone sees its rules as a table; owners
//! and admins edit it as JSON, try a text with a dry run over the last hour's traces
//! without saving it, save it, or go back to the default. Saving and resetting are
//! announced to the samplers, as through the API.

use super::DashboardState;
use super::error::DashboardError;
use super::extract::{Authorized, CsrfForm, CsrfProtected, Permission, SignedIn};
use super::keys::format_time;
use super::render::{Layout, render};
use crate::policy::{self, DryRun, MAX_POLICY_BYTES};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use std::sync::Arc;
use weft_model::Role;
use weft_model::sampling::{Action, SamplingPolicy, Scope, Value};
use weft_storage::clickhouse::ClickHouseError;

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/sampling", get(sampling_page).post(save_policy))
        .route("/sampling/dry-run", post(dry_run))
        .route("/sampling/reset", post(reset_policy))
}

/// Change the sampling policy: owners and admins. It decides what every member's
/// traces are kept for, and what the organisation stores.
pub struct EditSampling;

impl Permission for EditSampling {
    const ACTION: &'static str = "change the sampling policy";

    fn granted_to(role: Role) -> bool {
        role.is_admin()
    }
}

/// The fields and operators beside the editor, and the example under it.
const EXAMPLE: &str = r#"{
  "rules": [
    {"name": "drop health checks", "action": "drop",
     "conditions": [{"field": "root.http.route", "op": "=", "value": "/healthz"}]},
    {"name": "keep errors",
     "conditions": [{"field": "status", "op": "=", "value": "error"}]},
    {"name": "keep slow checkouts", "scope": "span",
     "conditions": [{"field": "service.name", "op": "=", "value": "checkout"},
                    {"field": "duration_ms", "op": ">", "value": 800}]},
    {"name": "keep 5% of the rest", "probability": 0.05}
  ],
  "max_kept_spans_per_second": 2000
}"#;

struct RuleRow {
    position: usize,
    name: String,
    keeps: bool,
    scope: &'static str,
    /// Readable conditions (`root.http.route = "/healthz"`); empty: every trace.
    conditions: Vec<String>,
    /// "100 %", "10 %"; empty for a drop rule.
    share: String,
    /// "1 in 10" for a share below 100 %.
    one_in: Option<String>,
}

struct DryRunRow {
    name: String,
    keeps: bool,
    examined: usize,
    /// Estimates, as shown.
    matched: String,
    kept: String,
    spans_kept: String,
}

/// A dry run as the page shows it.
struct DryRunView {
    rows: Vec<DryRunRow>,
    unmatched_examined: usize,
    unmatched: String,
    traces_examined: usize,
    truncated: bool,
    traces_stored: u64,
    max_traces: usize,
    max_spans: u64,
    traces_kept: String,
    spans_kept: String,
    spans_received: u64,
    /// Spans received that no stored trace stands for (dropped whole before).
    spans_unseen: u64,
    keep_ratio: String,
    kept_per_second: String,
    over_rate_cap: bool,
}

impl From<DryRun> for DryRunView {
    fn from(run: DryRun) -> Self {
        DryRunView {
            rows: run
                .rules
                .iter()
                .map(|rule| DryRunRow {
                    name: rule.name.clone(),
                    keeps: rule.action == Action::Keep,
                    examined: rule.matched.traces_examined,
                    matched: decimal(rule.matched.traces_matched, 1),
                    kept: decimal(rule.traces_kept, 1),
                    spans_kept: decimal(rule.spans_kept, 1),
                })
                .collect(),
            unmatched_examined: run.unmatched.traces_examined,
            unmatched: decimal(run.unmatched.traces_matched, 1),
            traces_examined: run.traces_examined,
            truncated: run.truncated,
            traces_stored: run.traces_stored,
            max_traces: run.max_traces_examined,
            max_spans: run.max_spans_examined,
            traces_kept: decimal(run.traces_kept, 1),
            spans_kept: decimal(run.spans_kept, 1),
            // What the ratio is over (metrics can lag behind the stored traces).
            spans_received: run.spans_received.max(run.spans_represented),
            spans_unseen: run.spans_received.saturating_sub(run.spans_represented),
            keep_ratio: run.keep_ratio.map_or_else(
                || "–".to_owned(),
                |r| format!("{} %", decimal(r * 100.0, 1)),
            ),
            kept_per_second: if run.kept_spans_per_second > 0.0 && run.kept_spans_per_second < 0.01
            {
                "< 0.01".to_owned()
            } else {
                decimal(run.kept_spans_per_second, 2)
            },
            over_rate_cap: run.over_rate_cap,
        }
    }
}

/// A number with at most `places` decimals, without trailing zeros.
fn decimal(x: f64, places: usize) -> String {
    let text = format!("{x:.places$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn rule_rows(policy: &SamplingPolicy) -> Vec<RuleRow> {
    policy
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let keeps = rule.action == Action::Keep;
            let p = rule.probability;
            RuleRow {
                position: i + 1,
                name: rule.name.trim().to_owned(),
                keeps,
                scope: match rule.scope {
                    Scope::Trace => "trace",
                    Scope::Span => "span",
                },
                conditions: rule.conditions.iter().map(ToString::to_string).collect(),
                share: if keeps {
                    format!("{} %", decimal(p * 100.0, 2))
                } else {
                    String::new()
                },
                one_in: (keeps && p > 0.0 && p < 1.0)
                    .then(|| format!("1 in {}", decimal(1.0 / p, 1))),
            }
        })
        .collect()
}

/// The policy as the editor shows it, in the shape of the example: a rule per line (its
/// conditions on the next), members left at their defaults left out. It parses back to
/// the same policy.
fn editor_text(policy: &SamplingPolicy) -> String {
    let text = |t: &str| serde_json::to_string(t).expect("strings serialise");
    let rules: Vec<String> = policy
        .rules
        .iter()
        .map(|rule| {
            let mut head = vec![format!("\"name\": {}", text(&rule.name))];
            if rule.action == Action::Drop {
                head.push("\"action\": \"drop\"".to_owned());
            }
            if rule.scope == Scope::Span {
                head.push("\"scope\": \"span\"".to_owned());
            }
            if rule.action == Action::Keep && rule.probability != 1.0 {
                head.push(format!("\"probability\": {}", rule.probability));
            }
            let mut line = format!("    {{{}", head.join(", "));
            if !rule.conditions.is_empty() {
                let conditions: Vec<String> = rule
                    .conditions
                    .iter()
                    .map(|c| {
                        let mut parts = vec![
                            format!("\"field\": {}", text(&c.field)),
                            format!("\"op\": {}", text(c.op.as_str())),
                        ];
                        if let Some(value) = &c.value {
                            let value = match value {
                                Value::Text(t) => text(t),
                                Value::Number(n) => n.to_string(),
                                Value::Bool(b) => b.to_string(),
                            };
                            parts.push(format!("\"value\": {value}"));
                        }
                        format!("{{{}}}", parts.join(", "))
                    })
                    .collect();
                line.push_str(&format!(
                    ",\n     \"conditions\": [{}]",
                    conditions.join(",\n                    ")
                ));
            }
            line.push('}');
            line
        })
        .collect();
    let mut out = if rules.is_empty() {
        "{\n  \"rules\": []".to_owned()
    } else {
        format!("{{\n  \"rules\": [\n{}\n  ]", rules.join(",\n"))
    };
    if let Some(cap) = policy.max_kept_spans_per_second {
        out.push_str(&format!(",\n  \"max_kept_spans_per_second\": {cap}"));
    }
    out.push_str("\n}");
    out
}

/// A policy text that could not be used, as shown above the editor.
struct Problem {
    /// The field it names (`rules[1].conditions[0].value`), when it is about one.
    field: Option<String>,
    message: String,
}

fn parse(text: &str) -> Result<SamplingPolicy, Problem> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(Problem {
            field: None,
            message: format!(
                "A policy is at most {} KiB of JSON.",
                MAX_POLICY_BYTES / 1024
            ),
        });
    }
    SamplingPolicy::from_json(text.as_bytes()).map_err(|e| Problem {
        message: e.message,
        field: Some(e.field),
    })
}

#[derive(Template)]
#[template(path = "sampling.html")]
struct SamplingPage {
    layout: Layout,
    rules: Vec<RuleRow>,
    rate_cap: Option<u32>,
    is_default: bool,
    /// "Saved by … on …", or empty for the default.
    saved: String,
    can_edit: bool,
    /// The editor's text: the current policy, or what was just submitted.
    text: String,
    /// Lines the editor shows: the text's and a few more.
    editor_rows: usize,
    problem: Option<Problem>,
    notice: Option<&'static str>,
    dry_run: Option<DryRunView>,
    /// A dry run that could not be answered (too expensive, too many at once).
    dry_run_refused: Option<String>,
    example: &'static str,
}

/// What the page shows besides the current policy.
#[derive(Default)]
struct Shown {
    /// Submitted text to keep in the editor.
    text: Option<String>,
    problem: Option<Problem>,
    notice: Option<&'static str>,
    dry_run: Option<DryRunView>,
    dry_run_refused: Option<String>,
}

async fn render_page(
    state: &DashboardState,
    user: &SignedIn,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, DashboardError> {
    let current = policy::current(&state.postgres, user.tenant).await?;
    let saved = match (current.is_default, current.updated_at) {
        (false, Some(at)) => match &current.updated_by_email {
            Some(email) => format!("Saved by {email} on {}.", format_time(at)),
            None => format!("Saved with an API key on {}.", format_time(at)),
        },
        _ => String::new(),
    };
    let text = shown.text.unwrap_or_else(|| editor_text(&current.policy));
    let page = SamplingPage {
        layout: user.layout(state),
        rules: rule_rows(&current.policy),
        rate_cap: current.policy.max_kept_spans_per_second,
        is_default: current.is_default,
        saved,
        can_edit: EditSampling::granted_to(user.role),
        editor_rows: (text.lines().count() + 2).clamp(10, 32),
        text,
        problem: shown.problem,
        notice: shown.notice,
        dry_run: shown.dry_run,
        dry_run_refused: shown.dry_run_refused,
        example: EXAMPLE,
    };
    Ok(render(status, &page))
}

async fn sampling_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    render_page(&state, &user, StatusCode::OK, Shown::default()).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PolicyForm {
    csrf: String,
    policy: String,
}

impl CsrfProtected for PolicyForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn save_policy(
    State(state): State<Arc<DashboardState>>,
    Authorized { user, form, .. }: Authorized<EditSampling, PolicyForm>,
) -> Result<Response, DashboardError> {
    let policy = match parse(&form.policy) {
        Ok(policy) => policy,
        Err(problem) => {
            let shown = Shown {
                text: Some(form.policy),
                problem: Some(problem),
                ..Shown::default()
            };
            return render_page(&state, &user, StatusCode::BAD_REQUEST, shown).await;
        }
    };
    state
        .policies
        .save(user.tenant, &policy, Some(user.user))
        .await?;
    let shown = Shown {
        notice: Some("Saved. The samplers apply it to traces decided from now on."),
        ..Shown::default()
    };
    render_page(&state, &user, StatusCode::OK, shown).await
}

async fn dry_run(
    State(state): State<Arc<DashboardState>>,
    Authorized { user, form, .. }: Authorized<EditSampling, PolicyForm>,
) -> Result<Response, DashboardError> {
    let policy = match parse(&form.policy) {
        Ok(policy) => policy,
        Err(problem) => {
            let shown = Shown {
                text: Some(form.policy),
                problem: Some(problem),
                ..Shown::default()
            };
            return render_page(&state, &user, StatusCode::BAD_REQUEST, shown).await;
        }
    };
    let compiled = policy.compile().expect("a parsed policy compiles");
    let now = crate::params::now_nanos();
    let run = policy::dry_run(&state.store, user.tenant, &policy, &compiled, now).await;
    let (status, shown) = match run {
        Ok(run) => (
            StatusCode::OK,
            Shown {
                dry_run: Some(run.into()),
                ..Shown::default()
            },
        ),
        Err(error) => {
            let (status, message) = refusal(error)?;
            (
                status,
                Shown {
                    dry_run_refused: Some(message),
                    ..Shown::default()
                },
            )
        }
    };
    let shown = Shown {
        text: Some(form.policy),
        ..shown
    };
    render_page(&state, &user, status, shown).await
}

/// A dry run the asker can do something about: too expensive (400) or too many reads at
/// once (429). Anything else is the store's failure, the 503 page.
fn refusal(error: ClickHouseError) -> Result<(StatusCode, String), DashboardError> {
    if error.is_over_limit() {
        tracing::info!(%error, "dry run stopped by its limits");
        return Ok((
            StatusCode::BAD_REQUEST,
            "This dry run is too expensive to answer over the last hour's traces.".to_owned(),
        ));
    }
    if let ClickHouseError::TenantBusy(_) = error {
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            "Your organisation is running several searches at once. Try again in a second."
                .to_owned(),
        ));
    }
    Err(error.into())
}

async fn reset_policy(
    State(state): State<Arc<DashboardState>>,
    Authorized { user, .. }: Authorized<EditSampling, CsrfForm>,
) -> Result<Response, DashboardError> {
    state.policies.reset(user.tenant).await?;
    let shown = Shown {
        notice: Some(
            "Back to the default policy. The samplers apply it to traces decided from now on.",
        ),
        ..Shown::default()
    };
    render_page(&state, &user, StatusCode::OK, shown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_editor_shows_a_policy_that_parses_back_to_itself() {
        let example = SamplingPolicy::from_json(EXAMPLE.as_bytes()).unwrap();
        let bool_rule = SamplingPolicy::from_json(
            br#"{"rules": [{"name": "say \"hi\"", "scope": "span", "probability": 0,
                 "conditions": [{"field": "cached", "op": "=", "value": true},
                                {"field": "user.id", "op": "exists"}]}]}"#,
        )
        .unwrap();
        let empty = SamplingPolicy {
            rules: Vec::new(),
            max_kept_spans_per_second: None,
        };
        for policy in [SamplingPolicy::default(), example, bool_rule, empty] {
            let text = editor_text(&policy);
            assert_eq!(
                SamplingPolicy::from_json(text.as_bytes()).unwrap(),
                policy,
                "{text}"
            );
        }
        assert_eq!(
            editor_text(&SamplingPolicy::default()),
            r#"{
  "rules": [
    {"name": "keep errors",
     "conditions": [{"field": "status", "op": "=", "value": "error"}]},
    {"name": "keep slow",
     "conditions": [{"field": "duration_ms", "op": ">", "value": 1000}]},
    {"name": "keep 10% of the rest", "probability": 0.1}
  ]
}"#
        );
    }

    #[test]
    fn shares_read_as_percentages_and_one_in_n() {
        let rows = rule_rows(&SamplingPolicy::from_json(EXAMPLE.as_bytes()).unwrap());
        let shown: Vec<(&str, Option<&str>)> = rows
            .iter()
            .map(|r| (r.share.as_str(), r.one_in.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("", None),
                ("100 %", None),
                ("100 %", None),
                ("5 %", Some("1 in 20"))
            ]
        );
        assert_eq!(rows[0].conditions, [r#"root.http.route = "/healthz""#]);
        assert_eq!(decimal(1.0 / 0.3, 1), "3.3");
        assert_eq!(decimal(2.0, 2), "2");
    }
}
