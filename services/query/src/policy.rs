//! Sampling policies as users see and change them, shared by the JSON API and the
//! dashboard: the tenant's current policy (its own or the default), saving and resetting
//! it with an announcement to the samplers, and the dry run that estimates what a
//! candidate policy would have kept of the last hour.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use weft_model::TenantId;
use weft_model::sampling::{Action, CompiledPolicy, SamplingPolicy, SpanFacts};
use weft_storage::clickhouse::{
    ClickHouse, ClickHouseError, MetricsWindow, SpanRow, TraceSearch, TraceSort, TraceSummary,
};
use weft_storage::postgres::{Postgres, PostgresError};

/// A policy's JSON is at most this long, through the API and the dashboard alike.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// A dry run looks at the traces that started this long before it.
pub const DRY_RUN_WINDOW_SECONDS: u64 = 3600;
/// A dry run examines at most the newest this many traces of its window…
pub const DRY_RUN_MAX_TRACES: usize = 2000;
/// …and at most this many spans of theirs.
pub const DRY_RUN_MAX_SPANS: u64 = 100_000;

const NANOS: u64 = 1_000_000_000;

/// The policy a tenant samples with now.
#[derive(Clone, Debug)]
pub struct CurrentPolicy {
    pub policy: SamplingPolicy,
    /// The tenant has no policy of its own.
    pub is_default: bool,
    pub updated_at: Option<DateTime<Utc>>,
    /// The member who saved it; `None` for the default and for a policy saved with an
    /// API key.
    pub updated_by_email: Option<String>,
}

pub async fn current(
    postgres: &Postgres,
    tenant: TenantId,
) -> Result<CurrentPolicy, PostgresError> {
    Ok(match postgres.sampling_policy(tenant).await? {
        Some(stored) => CurrentPolicy {
            policy: stored.policy,
            is_default: false,
            updated_at: Some(stored.updated_at),
            updated_by_email: stored.updated_by_email,
        },
        None => CurrentPolicy {
            policy: SamplingPolicy::default(),
            is_default: true,
            updated_at: None,
            updated_by_email: None,
        },
    })
}

/// Where policy changes are stored and announced: PostgreSQL, then `PolicyChanged` on the
/// bus, so every sampler reloads the tenant's policy at once.
#[derive(Clone)]
pub struct PolicyChanges {
    pub postgres: Postgres,
    pub bus: weft_bus::Bus,
}

impl PolicyChanges {
    /// Stores a validated policy (`by`: the member saving it, `None` for an API key).
    pub async fn save(
        &self,
        tenant: TenantId,
        policy: &SamplingPolicy,
        by: Option<uuid::Uuid>,
    ) -> Result<(), PostgresError> {
        self.postgres
            .set_sampling_policy(tenant, policy, by)
            .await?;
        self.announce(tenant).await;
        Ok(())
    }

    /// Returns the tenant to the default policy.
    pub async fn reset(&self, tenant: TenantId) -> Result<(), PostgresError> {
        self.postgres.reset_sampling_policy(tenant).await?;
        self.announce(tenant).await;
        Ok(())
    }

    async fn announce(&self, tenant: TenantId) {
        let changed = weft_bus::PolicyChanged { tenant_id: tenant };
        if let Err(error) = self.bus.announce(&changed).await {
            // The change is stored; samplers still pick it up when they next reload.
            tracing::warn!(%error, tenant_id = %tenant, "could not announce a policy change");
        }
    }
}

/// What a candidate policy would have done with the last hour. Counts other than
/// `traces_examined` and the span totals are estimates of the traffic before sampling,
/// to a tenth: each examined trace stands for as many traces as its sample rate says,
/// scaled up to every trace stored in the window when the examined ones are only the
/// newest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DryRun {
    pub start_time_unix_nano: String,
    pub end_time_unix_nano: String,
    /// Stored traces looked at, the newest first.
    pub traces_examined: usize,
    /// Whether the window held more traces than were examined.
    pub truncated: bool,
    /// Traces stored in the window.
    pub traces_stored: u64,
    pub max_traces_examined: usize,
    pub max_spans_examined: u64,
    /// One line per rule, in policy order.
    pub rules: Vec<RuleEstimate>,
    /// Traces no rule matched: the policy drops them.
    pub unmatched: Estimate,
    /// Spans received in the window (from the metrics of every span, before sampling).
    pub spans_received: u64,
    /// Of those, the spans the stored traces stand for; the rest were dropped whole by
    /// the policy in force then (or by its rate cap), and no dry run can see what they were.
    pub spans_represented: u64,
    pub traces_kept: f64,
    pub spans_kept: f64,
    /// `spans_kept / spans_received` (or over `spans_represented` where that estimate is
    /// larger); `null` without spans.
    pub keep_ratio: Option<f64>,
    pub kept_spans_per_second: f64,
    pub max_kept_spans_per_second: Option<u32>,
    /// The estimate is over the policy's cap, which would drop kept traces in bursts.
    pub over_rate_cap: bool,
}

/// What one rule (or none) decided.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Estimate {
    /// Examined traces this rule decided.
    pub traces_examined: usize,
    pub traces_matched: f64,
    pub spans_matched: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleEstimate {
    pub name: String,
    pub action: Action,
    pub probability: f64,
    #[serde(flatten)]
    pub matched: Estimate,
    pub traces_kept: f64,
    pub spans_kept: f64,
}

/// Sums of one rule, before rounding.
#[derive(Default)]
struct Tally {
    examined: usize,
    traces: f64,
    spans: f64,
}

impl Tally {
    fn add(&mut self, weight: f64, spans: f64) {
        self.examined += 1;
        self.traces += weight;
        self.spans += weight * spans;
    }

    fn estimate(&self, scale: f64) -> Estimate {
        Estimate {
            traces_examined: self.examined,
            traces_matched: tenths(self.traces * scale),
            spans_matched: tenths(self.spans * scale),
        }
    }
}

/// An estimate as answered: to a tenth.
fn tenths(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Runs `policy` over the tenant's stored traces of the hour before `now_unix_nano`.
///
/// Each trace is decided by [`CompiledPolicy::decide`] over its stored spans, and counts
/// with the weight of its sample rate. A keeping rule keeps `probability` of what it
/// matches: the share is applied as a number, not by the trace-id hash, because the
/// stored traces are the ones an earlier hash kept, so their hashes are not a fair sample.
pub async fn dry_run(
    store: &ClickHouse,
    tenant: TenantId,
    policy: &SamplingPolicy,
    compiled: &CompiledPolicy,
    now_unix_nano: u64,
) -> Result<DryRun, ClickHouseError> {
    let start = now_unix_nano.saturating_sub(DRY_RUN_WINDOW_SECONDS * NANOS);
    let reader = store.tenant(tenant);
    let search = TraceSearch {
        start_unix_nano: start,
        end_unix_nano: now_unix_nano,
        limit: DRY_RUN_MAX_TRACES as u32 + 1,
        sort: TraceSort::Newest,
        ..TraceSearch::default()
    };
    let mut traces = reader.search(&search).await?;
    let mut truncated = traces.len() > DRY_RUN_MAX_TRACES;
    traces.truncate(DRY_RUN_MAX_TRACES);
    let mut span_budget = 0;
    let within = traces
        .iter()
        .take_while(|t| {
            span_budget += t.span_count;
            span_budget <= DRY_RUN_MAX_SPANS
        })
        .count();
    truncated |= within < traces.len();
    traces.truncate(within);

    let spans = reader.spans_of_traces(&traces).await?;
    let stored = reader.stored_traffic(start, now_unix_nano).await?;
    let received = reader
        .spans_received(MetricsWindow {
            start_unix_nano: start,
            end_unix_nano: now_unix_nano,
        })
        .await?;
    let mut by_trace: HashMap<[u8; 16], Vec<SpanRow>> = HashMap::new();
    for span in spans {
        by_trace.entry(span.trace_id).or_default().push(span);
    }
    let examined: Vec<(&TraceSummary, Vec<SpanRow>)> = traces
        .iter()
        .map(|t| (t, by_trace.remove(&t.trace_id).unwrap_or_default()))
        .collect();
    let sample = Sample {
        start_unix_nano: start,
        end_unix_nano: now_unix_nano,
        truncated,
        traces_stored: stored.traces,
        stored_weighted_spans: stored.weighted_spans,
        spans_received: received,
    };
    Ok(estimate(policy, compiled, &examined, &sample))
}

/// What a dry run read besides the examined traces.
struct Sample {
    start_unix_nano: u64,
    end_unix_nano: u64,
    truncated: bool,
    traces_stored: u64,
    /// Spans of every trace stored in the window, weighted by their sample rates.
    stored_weighted_spans: f64,
    /// Spans received in the window, before sampling.
    spans_received: u64,
}

/// The dry run's arithmetic over the examined traces and their spans.
fn estimate<S: SpanFacts>(
    policy: &SamplingPolicy,
    compiled: &CompiledPolicy,
    examined: &[(&TraceSummary, Vec<S>)],
    sample: &Sample,
) -> DryRun {
    let mut tallies: Vec<Tally> = policy.rules.iter().map(|_| Tally::default()).collect();
    let mut unmatched = Tally::default();
    let mut examined_weighted_spans = 0.0;
    for (trace, spans) in examined {
        let weight = sample_weight(trace);
        let span_count = trace.span_count as f64;
        examined_weighted_spans += weight * span_count;
        match compiled.decide(&trace.trace_id, spans).rule {
            Some(rule) => tallies[rule].add(weight, span_count),
            None => unmatched.add(weight, span_count),
        }
    }
    // From the examined traces to every trace stored in the window.
    let scale = if sample.truncated && examined_weighted_spans > 0.0 {
        (sample.stored_weighted_spans / examined_weighted_spans).max(1.0)
    } else {
        1.0
    };

    let mut rules = Vec::with_capacity(policy.rules.len());
    let (mut traces_kept, mut spans_kept) = (0.0, 0.0);
    for (rule, tally) in policy.rules.iter().zip(&tallies) {
        let share = match rule.action {
            Action::Keep => rule.probability,
            Action::Drop => 0.0,
        };
        traces_kept += tally.traces * share * scale;
        spans_kept += tally.spans * share * scale;
        rules.push(RuleEstimate {
            name: rule.name.trim().to_owned(),
            action: rule.action,
            probability: rule.probability,
            matched: tally.estimate(scale),
            traces_kept: tenths(tally.traces * share * scale),
            spans_kept: tenths(tally.spans * share * scale),
        });
    }
    let spans_represented = sample.stored_weighted_spans.round().max(0.0) as u64;
    // Estimates of sampled traffic can come out a little above the exact count.
    let denominator = sample.spans_received.max(spans_represented);
    let kept_spans_per_second = spans_kept / DRY_RUN_WINDOW_SECONDS as f64;
    DryRun {
        start_time_unix_nano: sample.start_unix_nano.to_string(),
        end_time_unix_nano: sample.end_unix_nano.to_string(),
        traces_examined: examined.len(),
        truncated: sample.truncated,
        traces_stored: sample.traces_stored,
        max_traces_examined: DRY_RUN_MAX_TRACES,
        max_spans_examined: DRY_RUN_MAX_SPANS,
        rules,
        unmatched: unmatched.estimate(scale),
        spans_received: sample.spans_received,
        spans_represented,
        traces_kept: tenths(traces_kept),
        spans_kept: tenths(spans_kept),
        keep_ratio: (denominator > 0).then(|| (spans_kept / denominator as f64).min(1.0)),
        kept_spans_per_second,
        max_kept_spans_per_second: policy.max_kept_spans_per_second,
        over_rate_cap: policy
            .max_kept_spans_per_second
            .is_some_and(|cap| kept_spans_per_second > f64::from(cap)),
    }
}

/// How many traces before sampling one stored trace stands for: its sample rate, or 1
/// for traces kept whole (and for rows that carry no usable rate).
fn sample_weight(trace: &TraceSummary) -> f64 {
    let rate = f64::from(trace.sample_rate);
    if rate.is_finite() && rate >= 1.0 {
        rate
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_model::{SpanKind, StatusCode};

    /// A trace of one root span.
    struct Root {
        duration_ms: u64,
        error: bool,
    }

    impl SpanFacts for Root {
        fn name(&self) -> &str {
            "GET /"
        }
        fn service(&self) -> &str {
            "web"
        }
        fn start_unix_nano(&self) -> u64 {
            1_000_000_000
        }
        fn duration_ns(&self) -> u64 {
            self.duration_ms * 1_000_000
        }
        fn status(&self) -> StatusCode {
            if self.error {
                StatusCode::Error
            } else {
                StatusCode::Unset
            }
        }
        fn kind(&self) -> SpanKind {
            SpanKind::Server
        }
        fn is_root(&self) -> bool {
            true
        }
        fn attribute(&self, _: &str) -> Option<&str> {
            None
        }
    }

    fn summary(id: u8, span_count: u64, sample_rate: f32) -> TraceSummary {
        TraceSummary {
            trace_id: [id; 16],
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 2_000_000_000,
            root_service: "web".into(),
            root_name: "GET /".into(),
            span_count,
            error_count: 0,
            service_names: vec!["web".into()],
            sample_rate,
            sampled_by: String::new(),
        }
    }

    #[test]
    fn traces_count_by_their_sample_rate_and_shares_apply_as_numbers() {
        let policy = SamplingPolicy::from_json(
            br#"{"rules": [
                {"name": "errors", "conditions": [{"field": "status", "op": "=", "value": "error"}]},
                {"name": "fast", "action": "drop", "conditions": [{"field": "duration_ms", "op": "<", "value": 2}]},
                {"name": "a quarter", "probability": 0.25, "conditions": [{"field": "duration_ms", "op": "<", "value": 500}]}
            ], "max_kept_spans_per_second": 1}"#,
        )
        .unwrap();
        let compiled = policy.compile().unwrap();
        let (error, fast, ordinary, slow) = (
            summary(1, 4, 1.0),
            summary(2, 2, 1.0),
            // Kept 1 in 10 by the policy in force: stands for ten traces.
            summary(3, 3, 10.0),
            // A rate of 0 is no rate: kept whole.
            summary(4, 1, 0.0),
        );
        let span = |duration_ms, error| vec![Root { duration_ms, error }];
        let examined = vec![
            (&error, span(30, true)),
            (&fast, span(1, false)),
            (&ordinary, span(40, false)),
            (&slow, span(900, false)),
        ];
        let sample = Sample {
            start_unix_nano: 0,
            end_unix_nano: 3_600_000_000_000,
            truncated: false,
            traces_stored: 4,
            stored_weighted_spans: 4.0 + 2.0 + 30.0 + 1.0,
            spans_received: 7_237,
        };
        let run = estimate(&policy, &compiled, &examined, &sample);
        let lines: Vec<(&str, usize, f64, f64, f64, f64)> = run
            .rules
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.matched.traces_examined,
                    r.matched.traces_matched,
                    r.matched.spans_matched,
                    r.traces_kept,
                    r.spans_kept,
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("errors", 1, 1.0, 4.0, 1.0, 4.0),
                ("fast", 1, 1.0, 2.0, 0.0, 0.0),
                // Ten traces of three spans, a quarter of them kept.
                ("a quarter", 1, 10.0, 30.0, 2.5, 7.5),
            ]
        );
        assert_eq!(
            run.unmatched,
            Estimate {
                traces_examined: 1,
                traces_matched: 1.0,
                spans_matched: 1.0
            }
        );
        assert_eq!((run.traces_kept, run.spans_kept), (3.5, 11.5));
        assert_eq!(run.spans_represented, 37);
        assert!((run.keep_ratio.unwrap() - 11.5 / 7_237.0).abs() < 1e-12);
        assert!(!run.truncated && !run.over_rate_cap);

        // The newest traces only: scaled up to all the hour stored.
        let truncated = Sample {
            truncated: true,
            traces_stored: 40,
            stored_weighted_spans: 370.0,
            ..sample
        };
        let run = estimate(&policy, &compiled, &examined, &truncated);
        assert_eq!(run.rules[2].traces_kept, 25.0);
        assert_eq!(run.spans_kept, 115.0);
        assert!(run.truncated);
        let busy = Sample {
            stored_weighted_spans: 370_000.0,
            ..truncated
        };
        assert!(estimate(&policy, &compiled, &examined, &busy).over_rate_cap);
    }
}
