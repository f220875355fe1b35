//! Tail-sampling policies: what a tenant keeps, as stored in PostgreSQL, edited through
//! the API and the dashboard, and applied by the sampler to each whole trace.
//!
//! A policy is an ordered list of rules; the first rule whose conditions hold for a trace
//! decides it. A `keep` rule keeps the trace with its `probability` (decided by a hash of
//! the trace id, so every sampler and every restart decides a trace alike) and records
//! `1 / probability` as its sample rate; a `drop` rule drops it. A trace no rule matches
//! is dropped. The model follows Refinery's rules (conditions on span fields, `root.`
//! for the root span, a rule scope of trace or span) and covers the OpenTelemetry
//! Collector's `tail_sampling` policies: status code, latency, string, numeric and
//! boolean attributes, probabilistic, span count, drop, and rate limiting (the policy's
//! cap of kept spans per second).

use crate::{SpanKind, StatusCode};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;

/// At most this many rules in a policy.
pub const MAX_RULES: usize = 50;
/// At most this many conditions in a rule.
pub const MAX_CONDITIONS: usize = 20;
/// Rule names, fields and values are at most this long (in bytes).
pub const MAX_TEXT: usize = 256;
/// A `matches` pattern is at most this long, and compiles to at most [`REGEX_SIZE_LIMIT`].
pub const MAX_PATTERN: usize = 256;
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Duration thresholds are at most a day.
pub const MAX_DURATION_MS: f64 = 86_400_000.0;

/// A tenant's sampling policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingPolicy {
    pub rules: Vec<Rule>,
    /// Kept spans per second for the tenant (per sampler replica); past it, traces that a
    /// rule would keep are dropped until the second is over. `None`: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_kept_spans_per_second: Option<u32>,
}

impl Default for SamplingPolicy {
    /// What a new tenant gets: keep errors, keep slow traces (a span over 1 s), keep 10 %
    /// of the rest.
    fn default() -> Self {
        SamplingPolicy {
            rules: vec![
                Rule {
                    name: "keep errors".into(),
                    action: Action::Keep,
                    scope: Scope::Trace,
                    conditions: vec![Condition {
                        field: "status".into(),
                        op: Op::Eq,
                        value: Some(Value::Text("error".into())),
                    }],
                    probability: 1.0,
                },
                Rule {
                    name: "keep slow".into(),
                    action: Action::Keep,
                    scope: Scope::Trace,
                    conditions: vec![Condition {
                        field: "duration_ms".into(),
                        op: Op::Gt,
                        value: Some(Value::Number(1000.0)),
                    }],
                    probability: 1.0,
                },
                Rule {
                    name: "keep 10% of the rest".into(),
                    action: Action::Keep,
                    scope: Scope::Trace,
                    conditions: Vec::new(),
                    probability: 0.1,
                },
            ],
            max_kept_spans_per_second: None,
        }
    }
}

/// One rule: when its conditions hold, it decides the trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Shown in the dashboard and stored as `sampled_by` on every span it keeps.
    pub name: String,
    #[serde(default)]
    pub action: Action,
    #[serde(default)]
    pub scope: Scope,
    /// All must hold; none: the rule matches every trace.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// For `keep`: the share of matching traces kept, in [0, 1].
    #[serde(default = "one")]
    pub probability: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[default]
    Keep,
    Drop,
}

/// Where a rule's conditions are looked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each condition holds for some span of the trace (not necessarily the same one).
    #[default]
    Trace,
    /// One span meets every condition.
    Span,
}

/// `field op value`. A field is a span field (`name`, `service.name`, `duration_ms`,
/// `status`, `kind`), a trace field (`trace.duration_ms`, `trace.span_count`), or an
/// attribute key, looked up on the span and then on its resource. `root.` in front of a
/// span field or attribute looks at the root span only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "exists")]
    Exists,
    #[serde(rename = "not_exists")]
    NotExists,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "matches")]
    Matches,
    #[serde(rename = "starts_with")]
    StartsWith,
    #[serde(rename = "contains")]
    Contains,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Eq,
        Op::Ne,
        Op::Exists,
        Op::NotExists,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::Matches,
        Op::StartsWith,
        Op::Contains,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Exists => "exists",
            Op::NotExists => "not_exists",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Matches => "matches",
            Op::StartsWith => "starts_with",
            Op::Contains => "contains",
        }
    }

    fn is_numeric(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    fn takes_value(self) -> bool {
        !matches!(self, Op::Exists | Op::NotExists)
    }
}

/// A condition's value: JSON text, number or boolean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(t) => f.write_str(t),
        }
    }
}

impl fmt::Display for Condition {
    /// As people read it: `root.http.route = "/healthz"`, `duration_ms > 1000`,
    /// `user.id exists`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field.trim(), self.op.as_str())?;
        match &self.value {
            None => Ok(()),
            Some(Value::Text(text)) => write!(f, " {text:?}"),
            Some(value) => write!(f, " {value}"),
        }
    }
}

/// Why a policy is refused, naming the field (`rules[1].conditions[0].value`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError {
        field: field.into(),
        message: message.into(),
    }
}

impl SamplingPolicy {
    /// One rule that keeps every trace whole.
    pub fn keep_all() -> SamplingPolicy {
        SamplingPolicy {
            rules: vec![Rule {
                name: "keep all".into(),
                action: Action::Keep,
                scope: Scope::Trace,
                conditions: Vec::new(),
                probability: 1.0,
            }],
            max_kept_spans_per_second: None,
        }
    }

    /// Parses and validates a policy from JSON, naming the field of the first problem.
    pub fn from_json(json: &[u8]) -> Result<SamplingPolicy, PolicyError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(json);
        let policy: SamplingPolicy =
            serde_path_to_error::deserialize(deserializer).map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." { "policy".into() } else { path };
                refuse(field, e.into_inner().to_string())
            })?;
        if policy.rules.len() > MAX_RULES {
            return Err(refuse(
                "rules",
                format!("at most {MAX_RULES} rules, not {}", policy.rules.len()),
            ));
        }
        policy.compile()?;
        Ok(policy)
    }

    /// Checks every rule and compiles the policy for deciding traces. The bound on the
    /// number of rules is on what a tenant writes ([`SamplingPolicy::from_json`]): the
    /// sampler adds a keep rule per span-duration alert rule, however many there are.
    pub fn compile(&self) -> Result<CompiledPolicy, PolicyError> {
        if self.max_kept_spans_per_second == Some(0) {
            return Err(refuse(
                "max_kept_spans_per_second",
                "must be at least 1 (leave it out for no cap)",
            ));
        }
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            let name = rule.name.trim();
            if name.is_empty() {
                return Err(refuse(format!("{at}.name"), "must not be empty"));
            }
            if name.len() > MAX_TEXT {
                return Err(refuse(
                    format!("{at}.name"),
                    format!("at most {MAX_TEXT} bytes"),
                ));
            }
            if self.rules[..i].iter().any(|r| r.name.trim() == name) {
                return Err(refuse(
                    format!("{at}.name"),
                    format!("another rule is named {name:?}"),
                ));
            }
            if !(0.0..=1.0).contains(&rule.probability) {
                return Err(refuse(
                    format!("{at}.probability"),
                    format!("must be between 0 and 1, not {}", rule.probability),
                ));
            }
            if rule.action == Action::Drop && rule.probability != 1.0 {
                return Err(refuse(
                    format!("{at}.probability"),
                    "a drop rule drops every trace it matches; leave probability out",
                ));
            }
            if rule.conditions.len() > MAX_CONDITIONS {
                return Err(refuse(
                    format!("{at}.conditions"),
                    format!("at most {MAX_CONDITIONS} conditions"),
                ));
            }
            let conditions = rule
                .conditions
                .iter()
                .enumerate()
                .map(|(j, c)| compile_condition(c, &format!("{at}.conditions[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(CompiledRule {
                name: name.to_owned(),
                action: rule.action,
                scope: rule.scope,
                conditions,
                threshold: threshold(rule.probability),
                sample_rate: if rule.probability > 0.0 {
                    1.0 / rule.probability
                } else {
                    0.0
                },
            });
        }
        Ok(CompiledPolicy {
            rules,
            max_kept_spans_per_second: self.max_kept_spans_per_second,
        })
    }
}

fn compile_condition(condition: &Condition, at: &str) -> Result<CompiledCondition, PolicyError> {
    let raw = condition.field.trim();
    let (root, name) = match raw.strip_prefix("root.") {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    if name.is_empty() {
        return Err(refuse(format!("{at}.field"), "must name a field"));
    }
    if raw.len() > MAX_TEXT {
        return Err(refuse(
            format!("{at}.field"),
            format!("at most {MAX_TEXT} bytes"),
        ));
    }
    let field = Field::parse(name);
    if root && field.is_trace_level() {
        return Err(refuse(
            format!("{at}.field"),
            format!("{name} is a field of the trace, not of the root span"),
        ));
    }
    let op = condition.op;
    let value_at = format!("{at}.value");
    let value = match (&condition.value, op.takes_value()) {
        (None, false) => None,
        (Some(_), false) => {
            return Err(refuse(value_at, format!("{} takes no value", op.as_str())));
        }
        (None, true) => {
            return Err(refuse(value_at, format!("{} needs a value", op.as_str())));
        }
        (Some(value), true) => Some(value),
    };
    if let Some(Value::Text(text)) = value
        && text.len() > MAX_TEXT
    {
        return Err(refuse(value_at, format!("at most {MAX_TEXT} bytes")));
    }
    let test = match (op, value) {
        (Op::Exists, _) => Test::Exists(true),
        (Op::NotExists, _) => Test::Exists(false),
        (op, Some(value)) if op.is_numeric() => {
            let Value::Number(n) = value else {
                return Err(refuse(
                    value_at,
                    format!("{} compares numbers; {value:?} is not one", op.as_str()),
                ));
            };
            Test::Number(op, *n)
        }
        (Op::Matches, Some(Value::Text(pattern))) => {
            if pattern.len() > MAX_PATTERN {
                return Err(refuse(
                    value_at,
                    format!("a pattern is at most {MAX_PATTERN} bytes"),
                ));
            }
            let regex = regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| refuse(&value_at, format!("not a valid regular expression: {e}")))?;
            Test::Matches(regex)
        }
        (Op::StartsWith | Op::Contains | Op::Matches, Some(value)) => {
            let Value::Text(text) = value else {
                return Err(refuse(
                    value_at,
                    format!("{} needs a text value", op.as_str()),
                ));
            };
            if op == Op::StartsWith {
                Test::StartsWith(text.clone())
            } else {
                Test::Contains(text.clone())
            }
        }
        (Op::Eq | Op::Ne, Some(value)) => {
            let equal = op == Op::Eq;
            match value {
                Value::Number(n) => Test::NumberEq(*n, equal),
                Value::Bool(b) => Test::TextEq(b.to_string(), equal),
                Value::Text(t) => Test::TextEq(t.clone(), equal),
            }
        }
        _ => unreachable!("every operator takes or refuses a value above"),
    };
    // Known fields take known values.
    match &field {
        Field::DurationMs | Field::TraceDurationMs => {
            if let Test::Number(_, n) | Test::NumberEq(n, _) = test
                && !(0.0..=MAX_DURATION_MS).contains(&n)
            {
                return Err(refuse(
                    value_at,
                    format!("a duration is between 0 and {MAX_DURATION_MS} ms, not {n}"),
                ));
            }
            if !matches!(
                test,
                Test::Number(..) | Test::NumberEq(..) | Test::Exists(_)
            ) {
                return Err(refuse(
                    value_at,
                    format!("{name} is a number of milliseconds"),
                ));
            }
        }
        Field::TraceSpanCount if !matches!(test, Test::Number(..) | Test::NumberEq(..)) => {
            return Err(refuse(value_at, "trace.span_count is a number"));
        }
        Field::Status => {
            if let Test::TextEq(text, _) = &test
                && !["unset", "ok", "error"].contains(&text.as_str())
            {
                return Err(refuse(
                    value_at,
                    format!("status is unset, ok or error, not {text:?}"),
                ));
            }
        }
        Field::Kind => {
            if let Test::TextEq(text, _) = &test
                && SpanKind::parse(text).is_none()
            {
                return Err(refuse(
                    value_at,
                    format!("kind is internal, server, client, producer or consumer, not {text:?}"),
                ));
            }
        }
        _ => {}
    }
    Ok(CompiledCondition { root, field, test })
}

/// The hash threshold below which a trace is kept with probability `p`.
fn threshold(p: f64) -> u64 {
    if p >= 1.0 {
        u64::MAX
    } else if p <= 0.0 {
        0
    } else {
        (p * u64::MAX as f64) as u64
    }
}

/// A stable 64-bit hash of a trace id (splitmix64 over both halves), so the share kept
/// does not depend on how random an SDK's ids are.
pub fn trace_hash(trace_id: &[u8; 16]) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let high = u64::from_be_bytes(trace_id[..8].try_into().expect("8 bytes"));
    let low = u64::from_be_bytes(trace_id[8..].try_into().expect("8 bytes"));
    mix(mix(high) ^ low)
}

/// What the sampler needs to know of a span to decide its trace.
pub trait SpanFacts {
    fn name(&self) -> &str;
    fn service(&self) -> &str;
    fn start_unix_nano(&self) -> u64;
    fn duration_ns(&self) -> u64;
    fn status(&self) -> StatusCode;
    fn kind(&self) -> SpanKind;
    fn is_root(&self) -> bool;
    /// An attribute's value as text, from the span and else from its resource.
    fn attribute(&self, key: &str) -> Option<&str>;
}

#[derive(Clone, Debug)]
enum Field {
    Name,
    Service,
    DurationMs,
    Status,
    Kind,
    TraceDurationMs,
    TraceSpanCount,
    Attribute(String),
}

impl Field {
    fn parse(name: &str) -> Field {
        match name {
            "name" => Field::Name,
            "service.name" => Field::Service,
            "duration_ms" => Field::DurationMs,
            "status" => Field::Status,
            "kind" => Field::Kind,
            "trace.duration_ms" => Field::TraceDurationMs,
            "trace.span_count" => Field::TraceSpanCount,
            other => Field::Attribute(other.to_owned()),
        }
    }

    fn is_trace_level(&self) -> bool {
        matches!(self, Field::TraceDurationMs | Field::TraceSpanCount)
    }
}

#[derive(Clone, Debug)]
enum Test {
    Exists(bool),
    TextEq(String, bool),
    NumberEq(f64, bool),
    Number(Op, f64),
    Matches(Regex),
    StartsWith(String),
    Contains(String),
}

impl Test {
    fn text(&self, value: Option<&str>) -> bool {
        match self {
            Test::Exists(present) => value.is_some() == *present,
            // `!=` holds where the field is missing, as in Refinery.
            Test::TextEq(expected, equal) => (value == Some(expected.as_str())) == *equal,
            Test::NumberEq(expected, equal) => {
                (value.and_then(|v| v.parse::<f64>().ok()) == Some(*expected)) == *equal
            }
            Test::Number(..) => value
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|n| self.number(n)),
            Test::Matches(regex) => value.is_some_and(|v| regex.is_match(v)),
            Test::StartsWith(prefix) => value.is_some_and(|v| v.starts_with(prefix.as_str())),
            Test::Contains(part) => value.is_some_and(|v| v.contains(part.as_str())),
        }
    }

    fn number(&self, n: f64) -> bool {
        match *self {
            Test::Exists(present) => present,
            Test::NumberEq(expected, equal) => (n == expected) == equal,
            Test::Number(Op::Lt, v) => n < v,
            Test::Number(Op::Le, v) => n <= v,
            Test::Number(Op::Gt, v) => n > v,
            Test::Number(Op::Ge, v) => n >= v,
            Test::Number(..) => false,
            _ => self.text(Some(&n.to_string())),
        }
    }
}

#[derive(Clone, Debug)]
struct CompiledCondition {
    root: bool,
    field: Field,
    test: Test,
}

/// What one trace's facts are, computed once per decision.
struct TraceFacts {
    duration_ms: f64,
    span_count: usize,
    root: Option<usize>,
}

impl CompiledCondition {
    fn holds_for_span<S: SpanFacts>(&self, span: &S) -> bool {
        match &self.field {
            Field::Name => self.test.text(Some(span.name())),
            Field::Service => self.test.text(Some(span.service())),
            Field::DurationMs => self.test.number(span.duration_ns() as f64 / 1e6),
            Field::Status => self.test.text(Some(span.status().as_str())),
            Field::Kind => self.test.text(Some(span.kind().as_str())),
            Field::Attribute(key) => self.test.text(span.attribute(key)),
            Field::TraceDurationMs | Field::TraceSpanCount => false,
        }
    }

    fn holds_for_trace<S: SpanFacts>(&self, spans: &[S], facts: &TraceFacts) -> bool {
        match &self.field {
            Field::TraceDurationMs => self.test.number(facts.duration_ms),
            Field::TraceSpanCount => self.test.number(facts.span_count as f64),
            _ if self.root => facts
                .root
                .is_some_and(|root| self.holds_for_span(&spans[root])),
            _ => spans.iter().any(|span| self.holds_for_span(span)),
        }
    }
}

#[derive(Clone, Debug)]
struct CompiledRule {
    name: String,
    action: Action,
    scope: Scope,
    conditions: Vec<CompiledCondition>,
    threshold: u64,
    sample_rate: f64,
}

impl CompiledRule {
    fn matches<S: SpanFacts>(&self, spans: &[S], facts: &TraceFacts) -> bool {
        match self.scope {
            Scope::Trace => self
                .conditions
                .iter()
                .all(|c| c.holds_for_trace(spans, facts)),
            Scope::Span => {
                let (per_span, per_trace): (Vec<_>, Vec<_>) = self
                    .conditions
                    .iter()
                    .partition(|c| !c.field.is_trace_level());
                per_trace.iter().all(|c| c.holds_for_trace(spans, facts))
                    && spans.iter().enumerate().any(|(i, span)| {
                        per_span
                            .iter()
                            .all(|c| (!c.root || facts.root == Some(i)) && c.holds_for_span(span))
                    })
            }
        }
    }
}

/// A validated policy, ready to decide traces.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    rules: Vec<CompiledRule>,
    pub max_kept_spans_per_second: Option<u32>,
}

/// The outcome of a policy for one trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub keep: bool,
    /// The rule that matched (its index), if any.
    pub rule: Option<usize>,
    /// 1 / probability of the keeping rule; 0 for a dropped trace.
    pub sample_rate: f64,
}

impl CompiledPolicy {
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    pub fn rule_name(&self, rule: usize) -> &str {
        &self.rules[rule].name
    }

    /// Decides a trace from the spans seen of it.
    pub fn decide<S: SpanFacts>(&self, trace_id: &[u8; 16], spans: &[S]) -> Decision {
        let facts = trace_facts(spans);
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.matches(spans, &facts) {
                continue;
            }
            let keep = rule.action == Action::Keep
                && (rule.threshold == u64::MAX || trace_hash(trace_id) < rule.threshold);
            return Decision {
                keep,
                rule: Some(index),
                sample_rate: if keep { rule.sample_rate } else { 0.0 },
            };
        }
        Decision {
            keep: false,
            rule: None,
            sample_rate: 0.0,
        }
    }
}

fn trace_facts<S: SpanFacts>(spans: &[S]) -> TraceFacts {
    let (mut start, mut end) = (u64::MAX, 0u64);
    let mut root = None;
    for (i, span) in spans.iter().enumerate() {
        start = start.min(span.start_unix_nano());
        end = end.max(span.start_unix_nano().saturating_add(span.duration_ns()));
        if root.is_none() && span.is_root() {
            root = Some(i);
        }
    }
    TraceFacts {
        duration_ms: end.saturating_sub(start.min(end)) as f64 / 1e6,
        span_count: spans.len(),
        root,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Span {
        name: &'static str,
        service: &'static str,
        start: u64,
        duration_ms: u64,
        status: StatusCode,
        root: bool,
        attributes: Vec<(&'static str, &'static str)>,
    }

    impl SpanFacts for Span {
        fn name(&self) -> &str {
            self.name
        }
        fn service(&self) -> &str {
            self.service
        }
        fn start_unix_nano(&self) -> u64 {
            self.start
        }
        fn duration_ns(&self) -> u64 {
            self.duration_ms * 1_000_000
        }
        fn status(&self) -> StatusCode {
            self.status
        }
        fn kind(&self) -> SpanKind {
            SpanKind::Server
        }
        fn is_root(&self) -> bool {
            self.root
        }
        fn attribute(&self, key: &str) -> Option<&str> {
            self.attributes
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
        }
    }

    fn span(name: &'static str, duration_ms: u64) -> Span {
        Span {
            name,
            service: "checkout",
            start: 1_000_000_000,
            duration_ms,
            status: StatusCode::Unset,
            root: false,
            attributes: Vec::new(),
        }
    }

    fn policy(json: &str) -> CompiledPolicy {
        SamplingPolicy::from_json(json.as_bytes())
            .unwrap()
            .compile()
            .unwrap()
    }

    fn refusal(json: &str) -> String {
        SamplingPolicy::from_json(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_rule_limit_bounds_what_a_tenant_writes_not_the_rules_the_sampler_adds() {
        let rules: Vec<String> = (0..MAX_RULES + 10)
            .map(|i| format!(r#"{{"name": "alert: rule {i}", "conditions": [{{"field": "duration_ms", "op": ">", "value": {i}}}]}}"#))
            .collect();
        let json = format!(r#"{{"rules": [{}]}}"#, rules.join(","));
        let refused = SamplingPolicy::from_json(json.as_bytes()).unwrap_err();
        assert_eq!(refused.field, "rules");
        assert_eq!(
            refused.message,
            format!("at most {MAX_RULES} rules, not 60")
        );
        let augmented: SamplingPolicy = serde_json::from_str(&json).unwrap();
        assert!(augmented.compile().is_ok(), "60 rules compile");
    }

    #[test]
    fn the_default_keeps_errors_slow_traces_and_a_tenth_of_the_rest() {
        let policy = SamplingPolicy::default().compile().unwrap();
        let mut failing = span("GET /", 5);
        failing.status = StatusCode::Error;
        let decision = policy.decide(&[1; 16], &[span("a", 1), failing]);
        assert_eq!((decision.keep, decision.rule), (true, Some(0)));
        assert_eq!(decision.sample_rate, 1.0);
        let decision = policy.decide(&[1; 16], &[span("a", 1200)]);
        assert_eq!((decision.keep, decision.rule), (true, Some(1)));
        let kept = (0..10_000u32)
            .filter(|i| {
                let mut id = [0u8; 16];
                id[12..].copy_from_slice(&i.to_be_bytes());
                let decision = policy.decide(&id, &[span("a", 3)]);
                assert_eq!(decision.rule, Some(2));
                if decision.keep {
                    assert!((decision.sample_rate - 10.0).abs() < 1e-9);
                }
                decision.keep
            })
            .count();
        // Binomial(10 000, 0.1): standard deviation 30; five of them either side.
        assert!((850..=1150).contains(&kept), "{kept}");
        // The round trip through JSON is the same policy.
        let json = serde_json::to_vec(&SamplingPolicy::default()).unwrap();
        assert_eq!(
            SamplingPolicy::from_json(&json).unwrap(),
            SamplingPolicy::default()
        );
    }

    #[test]
    fn the_first_matching_rule_decides_and_drop_rules_drop() {
        let policy = policy(
            r#"{"rules": [
                {"name": "health", "action": "drop", "conditions": [{"field": "root.http.route", "op": "=", "value": "/healthz"}]},
                {"name": "all", "conditions": []}
            ]}"#,
        );
        let mut health = span("GET /healthz", 1);
        health.root = true;
        health.attributes.push(("http.route", "/healthz"));
        let decision = policy.decide(&[2; 16], &[health.clone()]);
        assert_eq!((decision.keep, decision.rule), (false, Some(0)));
        // Not on the root span: the drop rule does not apply.
        health.root = false;
        let decision = policy.decide(&[2; 16], &[health]);
        assert_eq!((decision.keep, decision.rule), (true, Some(1)));
    }

    #[test]
    fn conditions_compare_text_numbers_patterns_and_presence() {
        let mut s = span("POST /charge", 40);
        s.attributes = vec![
            ("http.status_code", "503"),
            ("user.tier", "gold"),
            ("db.statement", "SELECT * FROM carts"),
        ];
        let holds = |condition: &str| {
            let json = format!(r#"{{"rules": [{{"name": "r", "conditions": [{condition}]}}]}}"#);
            policy(&json)
                .decide(&[3; 16], std::slice::from_ref(&s))
                .keep
        };
        assert!(holds(
            r#"{"field": "http.status_code", "op": ">=", "value": 500}"#
        ));
        assert!(!holds(
            r#"{"field": "http.status_code", "op": "<", "value": 500}"#
        ));
        assert!(holds(
            r#"{"field": "http.status_code", "op": "=", "value": 503}"#
        ));
        assert!(holds(
            r#"{"field": "http.status_code", "op": "=", "value": "503"}"#
        ));
        assert!(holds(
            r#"{"field": "user.tier", "op": "!=", "value": "free"}"#
        ));
        assert!(holds(
            r#"{"field": "missing", "op": "!=", "value": "free"}"#
        ));
        assert!(holds(r#"{"field": "user.tier", "op": "exists"}"#));
        assert!(holds(r#"{"field": "missing", "op": "not_exists"}"#));
        assert!(!holds(r#"{"field": "user.tier", "op": "not_exists"}"#));
        assert!(holds(
            r#"{"field": "db.statement", "op": "matches", "value": "^SELECT .* carts$"}"#
        ));
        assert!(holds(
            r#"{"field": "name", "op": "starts_with", "value": "POST"}"#
        ));
        assert!(holds(
            r#"{"field": "service.name", "op": "contains", "value": "check"}"#
        ));
        assert!(holds(
            r#"{"field": "duration_ms", "op": ">", "value": 39.5}"#
        ));
        assert!(holds(
            r#"{"field": "trace.span_count", "op": "=", "value": 1}"#
        ));
        assert!(holds(r#"{"field": "kind", "op": "=", "value": "server"}"#));
        assert!(!holds(
            r#"{"field": "status", "op": "=", "value": "error"}"#
        ));
    }

    #[test]
    fn span_scope_needs_one_span_to_meet_every_condition() {
        let json = |scope: &str| {
            format!(
                r#"{{"rules": [{{"name": "slow payments", "scope": "{scope}", "conditions": [
                    {{"field": "service.name", "op": "=", "value": "payments"}},
                    {{"field": "duration_ms", "op": ">", "value": 500}}]}}]}}"#
            )
        };
        let mut payments = span("charge", 10);
        payments.service = "payments";
        let slow_elsewhere = span("render", 900);
        let spans = [payments.clone(), slow_elsewhere];
        assert!(policy(&json("trace")).decide(&[4; 16], &spans).keep);
        assert!(!policy(&json("span")).decide(&[4; 16], &spans).keep);
        payments.duration_ms = 700;
        assert!(policy(&json("span")).decide(&[4; 16], &[payments]).keep);
    }

    #[test]
    fn the_hash_decision_is_stable_and_nested_across_probabilities() {
        let at = |p: f64| {
            policy(&format!(
                r#"{{"rules": [{{"name": "share", "probability": {p}}}]}}"#
            ))
        };
        let (quarter, half) = (at(0.25), at(0.5));
        for i in 0..2000u32 {
            let mut id = [7u8; 16];
            id[..4].copy_from_slice(&i.to_le_bytes());
            let spans = [span("x", 1)];
            if quarter.decide(&id, &spans).keep {
                assert!(half.decide(&id, &spans).keep, "kept at 25% but not 50%");
            }
            assert_eq!(trace_hash(&id), trace_hash(&id));
        }
        assert!(!at(0.0).decide(&[1; 16], &[span("x", 1)]).keep);
        assert!(at(1.0).decide(&[1; 16], &[span("x", 1)]).keep);
    }

    #[test]
    fn conditions_read_as_written() {
        let policy = SamplingPolicy::from_json(
            br#"{"rules": [{"name": "a", "conditions": [
                {"field": "root.http.route", "op": "=", "value": "/healthz"},
                {"field": "duration_ms", "op": ">", "value": 1000},
                {"field": "user.id", "op": "exists"},
                {"field": "cached", "op": "!=", "value": true}]}]}"#,
        )
        .unwrap();
        let shown: Vec<String> = policy.rules[0]
            .conditions
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                r#"root.http.route = "/healthz""#,
                "duration_ms > 1000",
                "user.id exists",
                "cached != true"
            ]
        );
    }

    #[test]
    fn bad_policies_are_refused_naming_the_field() {
        let cases = [
            (r#"{"rules": [{"name": "a", "colour": "red"}]}"#, "rules[0]"),
            (r#"{"rules": [], "extra": 1}"#, "extra: unknown field"),
            (
                r#"{"rules": [{"name": "a", "probability": 1.5}]}"#,
                "rules[0].probability: must be between 0 and 1",
            ),
            (
                r#"{"rules": [{"name": "a", "probability": -0.1}]}"#,
                "rules[0].probability",
            ),
            (
                r#"{"rules": [{"name": "a"}, {"name": "b", "conditions": [{"field": "x", "op": "matches", "value": "(unclosed"}]}]}"#,
                "rules[1].conditions[0].value: not a valid regular expression",
            ),
            (
                r#"{"rules": [{"name": "a", "conditions": [{"field": "x", "op": "~", "value": 1}]}]}"#,
                "rules[0].conditions[0].op",
            ),
            (
                r#"{"rules": [{"name": "a", "conditions": [{"field": "duration_ms", "op": ">", "value": -5}]}]}"#,
                "rules[0].conditions[0].value: a duration is between 0",
            ),
            (
                r#"{"rules": [{"name": "a", "conditions": [{"field": "x", "op": ">", "value": "big"}]}]}"#,
                "rules[0].conditions[0].value: > compares numbers",
            ),
            (
                r#"{"rules": [{"name": "a", "conditions": [{"field": "x", "op": "exists", "value": 1}]}]}"#,
                "rules[0].conditions[0].value: exists takes no value",
            ),
            (
                r#"{"rules": [{"name": "a", "conditions": [{"field": "x", "op": "="}]}]}"#,
                "rules[0].conditions[0].value: = needs a value",
            ),
            (
                r#"{"rules": [{"name": "a", "conditions": [{"field": "status", "op": "=", "value": "broken"}]}]}"#,
                "rules[0].conditions[0].value: status is unset, ok or error",
            ),
            (
                r#"{"rules": [{"name": " "}]}"#,
                "rules[0].name: must not be empty",
            ),
            (
                r#"{"rules": [{"name": "a"}, {"name": "a"}]}"#,
                "rules[1].name: another rule",
            ),
            (
                r#"{"rules": [{"name": "a", "action": "drop", "probability": 0.5}]}"#,
                "rules[0].probability",
            ),
            (
                r#"{"rules": [], "max_kept_spans_per_second": 0}"#,
                "max_kept_spans_per_second",
            ),
            (
                r#"{"rules": [{"name": "a", "conditions": [{"field": "root.trace.span_count", "op": ">", "value": 1}]}]}"#,
                "rules[0].conditions[0].field",
            ),
            (r#"not json"#, "policy"),
        ];
        for (json, expected) in cases {
            let message = refusal(json);
            assert!(message.starts_with(expected), "{json}: {message}");
        }
        let huge = format!(
            r#"{{"rules": [{{"name": "a", "conditions": [{{"field": "x", "op": "matches", "value": "{}"}}]}}]}}"#,
            "a{1000}".repeat(40)
        );
        assert!(refusal(&huge).contains("at most 256 bytes"));
        let big_repetition = r#"{"rules": [{"name": "a", "conditions": [{"field": "x", "op": "matches", "value": "(\\w{100}){100}"}]}]}"#;
        assert!(
            refusal(big_repetition).contains("not a valid regular expression"),
            "{}",
            refusal(big_repetition)
        );
    }
}
