//! Alert rules and notification channels as tenants write them (JSON of the API and the
//! dashboard's forms), with the validation that names the offending field, and the
//! states an alert goes through.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest window or `for` duration a rule may have: a day.
pub const MAX_WINDOW_SECONDS: u64 = 86_400;
/// The shortest aggregate window: metrics are kept per minute.
pub const MIN_WINDOW_SECONDS: u64 = 60;
const MAX_NAME_LEN: usize = 200;
const MAX_ATTRIBUTE_FILTERS: usize = 16;

/// Why a rule, channel or silence was refused: the field (a JSON path) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AlertingError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> AlertingError {
    AlertingError {
        field: field.into(),
        message: message.into(),
    }
}

/// Deserialises `json` as `T`, naming the field that does not fit.
fn from_json<T: serde::de::DeserializeOwned>(json: &[u8], what: &str) -> Result<T, AlertingError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { what.to_owned() } else { path };
        refuse(field, e.into_inner().to_string())
    })
}

/// A latency percentile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Percentile {
    P50,
    P90,
    P95,
    P99,
}

impl Percentile {
    pub fn quantile(self) -> f64 {
        match self {
            Percentile::P50 => 0.5,
            Percentile::P90 => 0.9,
            Percentile::P95 => 0.95,
            Percentile::P99 => 0.99,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Percentile::P50 => "p50",
            Percentile::P90 => "p90",
            Percentile::P95 => "p95",
            Percentile::P99 => "p99",
        }
    }
}

/// Which side of the threshold is bad for a throughput rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Below,
    Above,
}

/// A span attribute that a span-duration rule requires (exact value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeFilter {
    pub key: String,
    pub value: String,
}

/// What a rule watches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Any span of `service` (and `operation`, and every attribute filter) slower than
    /// `threshold_ms`, seen on the live span stream before sampling. The alert resolves
    /// once no such span came for `window_seconds`.
    SpanDuration {
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<String>,
        #[serde(default)]
        attributes: Vec<AttributeFilter>,
        threshold_ms: f64,
        #[serde(default = "default_window")]
        window_seconds: u64,
    },
    /// The percentile of span durations of `service` (or one operation) over the last
    /// `window_seconds` above `threshold_ms`.
    Latency {
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<String>,
        percentile: Percentile,
        threshold_ms: f64,
        #[serde(default = "default_window")]
        window_seconds: u64,
    },
    /// The share of failed spans over the window above `threshold_percent`, once at
    /// least `min_requests` spans were seen.
    ErrorRate {
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<String>,
        threshold_percent: f64,
        #[serde(default = "default_min_requests")]
        min_requests: u64,
        #[serde(default = "default_window")]
        window_seconds: u64,
    },
    /// Spans per minute over the window below (a service gone silent) or above the
    /// threshold.
    Throughput {
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<String>,
        direction: Direction,
        threshold_per_minute: f64,
        #[serde(default = "default_window")]
        window_seconds: u64,
    },
}

fn default_window() -> u64 {
    300
}

fn default_min_requests() -> u64 {
    20
}

fn default_repeat() -> u64 {
    3600
}

impl Condition {
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::SpanDuration { .. } => "span_duration",
            Condition::Latency { .. } => "latency",
            Condition::ErrorRate { .. } => "error_rate",
            Condition::Throughput { .. } => "throughput",
        }
    }

    /// Whether the rule is evaluated from the span stream rather than from the metrics.
    pub fn is_per_span(&self) -> bool {
        matches!(self, Condition::SpanDuration { .. })
    }

    pub fn service(&self) -> &str {
        match self {
            Condition::SpanDuration { service, .. }
            | Condition::Latency { service, .. }
            | Condition::ErrorRate { service, .. }
            | Condition::Throughput { service, .. } => service,
        }
    }

    pub fn operation(&self) -> Option<&str> {
        match self {
            Condition::SpanDuration { operation, .. }
            | Condition::Latency { operation, .. }
            | Condition::ErrorRate { operation, .. }
            | Condition::Throughput { operation, .. } => operation.as_deref(),
        }
    }

    pub fn window_seconds(&self) -> u64 {
        match self {
            Condition::SpanDuration { window_seconds, .. }
            | Condition::Latency { window_seconds, .. }
            | Condition::ErrorRate { window_seconds, .. }
            | Condition::Throughput { window_seconds, .. } => *window_seconds,
        }
    }

    /// The threshold in the rule's unit.
    pub fn threshold(&self) -> f64 {
        match self {
            Condition::SpanDuration { threshold_ms, .. }
            | Condition::Latency { threshold_ms, .. } => *threshold_ms,
            Condition::ErrorRate {
                threshold_percent, ..
            } => *threshold_percent,
            Condition::Throughput {
                threshold_per_minute,
                ..
            } => *threshold_per_minute,
        }
    }

    /// The unit of the threshold and of observed values.
    pub fn unit(&self) -> &'static str {
        match self {
            Condition::SpanDuration { .. } | Condition::Latency { .. } => "ms",
            Condition::ErrorRate { .. } => "%",
            Condition::Throughput { .. } => "/min",
        }
    }

    /// Whether `value` breaks the rule.
    pub fn breached(&self, value: f64) -> bool {
        match self {
            Condition::Throughput {
                direction: Direction::Below,
                threshold_per_minute,
                ..
            } => value < *threshold_per_minute,
            _ => value > self.threshold(),
        }
    }

    /// What is measured, for people: `p99 latency`, `error rate`, ...
    pub fn measure(&self) -> String {
        match self {
            Condition::SpanDuration { .. } => "span duration".to_owned(),
            Condition::Latency { percentile, .. } => format!("{} latency", percentile.as_str()),
            Condition::ErrorRate { .. } => "error rate".to_owned(),
            Condition::Throughput { direction, .. } => match direction {
                Direction::Below => "throughput (below)".to_owned(),
                Direction::Above => "throughput (above)".to_owned(),
            },
        }
    }

    /// Whether a span matches a span-duration rule's filters (its duration aside).
    pub fn matches_span<'a>(
        &self,
        service: &str,
        name: &str,
        mut attribute: impl FnMut(&str) -> Option<&'a str>,
    ) -> bool {
        let Condition::SpanDuration {
            service: wanted,
            operation,
            attributes,
            ..
        } = self
        else {
            return false;
        };
        wanted == service
            && operation.as_deref().is_none_or(|op| op == name)
            && attributes
                .iter()
                .all(|f| attribute(&f.key) == Some(f.value.as_str()))
    }

    fn validate(&self) -> Result<(), AlertingError> {
        let service = self.service();
        if service.trim().is_empty() {
            return Err(refuse("condition.service", "must name a service"));
        }
        if service.len() > MAX_NAME_LEN {
            return Err(refuse("condition.service", "is longer than 200 characters"));
        }
        if let Some(operation) = self.operation()
            && (operation.trim().is_empty() || operation.len() > MAX_NAME_LEN)
        {
            return Err(refuse(
                "condition.operation",
                "must be omitted or 1 to 200 characters",
            ));
        }
        let window = self.window_seconds();
        let min_window = if self.is_per_span() {
            10
        } else {
            MIN_WINDOW_SECONDS
        };
        if !(min_window..=MAX_WINDOW_SECONDS).contains(&window) {
            return Err(refuse(
                "condition.window_seconds",
                format!(
                    "must be between {min_window} and {MAX_WINDOW_SECONDS} seconds, not {window}"
                ),
            ));
        }
        let threshold = self.threshold();
        let threshold_field = match self {
            Condition::SpanDuration { .. } | Condition::Latency { .. } => "condition.threshold_ms",
            Condition::ErrorRate { .. } => "condition.threshold_percent",
            Condition::Throughput { .. } => "condition.threshold_per_minute",
        };
        if !threshold.is_finite() || threshold < 0.0 {
            return Err(refuse(
                threshold_field,
                format!("must be a number of at least 0, not {threshold}"),
            ));
        }
        match self {
            Condition::SpanDuration { attributes, .. } => {
                if attributes.len() > MAX_ATTRIBUTE_FILTERS {
                    return Err(refuse("condition.attributes", "at most 16 filters"));
                }
                for (i, filter) in attributes.iter().enumerate() {
                    if filter.key.trim().is_empty() {
                        return Err(refuse(
                            format!("condition.attributes[{i}].key"),
                            "must not be empty",
                        ));
                    }
                }
                if threshold == 0.0 {
                    return Err(refuse(threshold_field, "must be above 0"));
                }
            }
            Condition::Latency { .. } if threshold == 0.0 => {
                return Err(refuse(threshold_field, "must be above 0"));
            }
            Condition::ErrorRate { .. } if threshold >= 100.0 => {
                return Err(refuse(
                    threshold_field,
                    format!("must be below 100, not {threshold}"),
                ));
            }
            Condition::ErrorRate { min_requests, .. } if *min_requests == 0 => {
                return Err(refuse("condition.min_requests", "must be at least 1"));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A tenant's alert rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub name: String,
    pub condition: Condition,
    /// How long the condition must hold before the alert fires (pending until then).
    #[serde(default)]
    pub for_seconds: u64,
    /// How often a firing alert is notified again; 0 never.
    #[serde(default = "default_repeat")]
    pub repeat_seconds: u64,
    /// The channels notified (ids of the tenant's channels).
    #[serde(default)]
    pub channels: Vec<uuid::Uuid>,
    /// Labels silences match on (the service and operation are labels too).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl AlertRule {
    /// Parses and validates a rule from the JSON of the API.
    pub fn from_json(json: &[u8]) -> Result<AlertRule, AlertingError> {
        let rule: AlertRule = from_json(json, "rule")?;
        rule.validate()?;
        Ok(rule)
    }

    pub fn validate(&self) -> Result<(), AlertingError> {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err(refuse("name", "must be 1 to 200 characters"));
        }
        self.condition.validate()?;
        if self.for_seconds > MAX_WINDOW_SECONDS {
            return Err(refuse(
                "for_seconds",
                format!(
                    "must be at most {MAX_WINDOW_SECONDS} seconds, not {}",
                    self.for_seconds
                ),
            ));
        }
        if self.repeat_seconds != 0 && !(60..=7 * MAX_WINDOW_SECONDS).contains(&self.repeat_seconds)
        {
            return Err(refuse(
                "repeat_seconds",
                format!(
                    "must be 0 (never) or between 60 and 604800 seconds, not {}",
                    self.repeat_seconds
                ),
            ));
        }
        if self.channels.len() > 20 {
            return Err(refuse("channels", "at most 20 channels"));
        }
        for (key, value) in &self.labels {
            if key.trim().is_empty() || key.len() > 100 || value.len() > MAX_NAME_LEN {
                return Err(refuse(
                    format!("labels.{key}"),
                    "keys are 1 to 100 characters, values at most 200",
                ));
            }
        }
        Ok(())
    }

    /// The labels silences match: the rule's own, plus `service`, `operation` and `rule`.
    pub fn match_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert("rule".to_owned(), self.name.clone());
        labels.insert("service".to_owned(), self.condition.service().to_owned());
        if let Some(operation) = self.condition.operation() {
            labels.insert("operation".to_owned(), operation.to_owned());
        }
        labels
    }
}

/// Where notifications go, with its secret parts (never shown again after saving, and
/// left out of `Debug`, so they cannot reach a log line).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelTarget {
    /// A generic webhook: JSON POSTs signed with `secret` (HMAC-SHA256).
    Webhook { url: String, secret: String },
    /// A Slack incoming webhook (its URL is the secret).
    Slack { webhook_url: String },
    /// Email over the operator's SMTP server.
    Email { to: Vec<String> },
}

/// A channel as created: a name and its target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    pub target: ChannelTarget,
}

impl std::fmt::Debug for ChannelTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChannelTarget::{}({})", self.kind(), self.display())
    }
}

impl ChannelTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelTarget::Webhook { .. } => "webhook",
            ChannelTarget::Slack { .. } => "slack",
            ChannelTarget::Email { .. } => "email",
        }
    }

    /// What may be shown of the target after saving: the host of a URL, the addresses
    /// of an email channel.
    pub fn display(&self) -> String {
        match self {
            ChannelTarget::Webhook { url, .. } | ChannelTarget::Slack { webhook_url: url } => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
                format!("{} …", host)
            }
            ChannelTarget::Email { to } => to.join(", "),
        }
    }
}

impl ChannelSpec {
    pub fn from_json(json: &[u8]) -> Result<ChannelSpec, AlertingError> {
        let spec: ChannelSpec = from_json(json, "channel")?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<(), AlertingError> {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err(refuse("name", "must be 1 to 200 characters"));
        }
        match &self.target {
            ChannelTarget::Webhook { url, secret } => {
                check_url("target.url", url)?;
                if secret.len() < 16 || secret.len() > 200 {
                    return Err(refuse("target.secret", "must be 16 to 200 characters"));
                }
            }
            ChannelTarget::Slack { webhook_url } => check_url("target.webhook_url", webhook_url)?,
            ChannelTarget::Email { to } => {
                if to.is_empty() || to.len() > 20 {
                    return Err(refuse("target.to", "must list 1 to 20 addresses"));
                }
                for (i, address) in to.iter().enumerate() {
                    check_email(&format!("target.to[{i}]"), address)?;
                }
            }
        }
        Ok(())
    }
}

fn check_url(field: &str, url: &str) -> Result<(), AlertingError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(refuse(
            field,
            format!("must be an http or https URL, not {url:?}"),
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(refuse(
            field,
            format!("must be an http or https URL, not {url:?}"),
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse(field, format!("must name a host, not {url:?}")));
    }
    if url.len() > 2000 {
        return Err(refuse(field, "is longer than 2000 characters"));
    }
    Ok(())
}

fn check_email(field: &str, address: &str) -> Result<(), AlertingError> {
    let valid = address.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
    }) && !address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if valid && address.len() <= 254 {
        Ok(())
    } else {
        Err(refuse(
            field,
            format!("must be an email address with a domain, not {address:?}"),
        ))
    }
}

/// Where webhook and Slack notifications may go. Channel URLs are the tenants', so by
/// default they may not reach into the operator's network (loopback, private, link-local,
/// multicast and cloud-metadata addresses): otherwise any member of any organisation could
/// make Weft send requests to internal services. The operator opts out for a test stack
/// or a private installation (`WEFT_ALERTING_ALLOW_PRIVATE_TARGETS=true`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetPolicy {
    #[default]
    PublicOnly,
    AllowPrivate,
}

impl TargetPolicy {
    pub fn from_allow_private(allow: bool) -> TargetPolicy {
        if allow {
            TargetPolicy::AllowPrivate
        } else {
            TargetPolicy::PublicOnly
        }
    }

    /// Why notifications may not go to `ip`, or `None` when they may.
    pub fn refusal(self, ip: std::net::IpAddr) -> Option<&'static str> {
        match self {
            TargetPolicy::AllowPrivate => None,
            TargetPolicy::PublicOnly => internal_address(ip),
        }
    }
}

/// What kind of address inside an operator's network `ip` is, or `None` for a public one.
pub fn internal_address(ip: std::net::IpAddr) -> Option<&'static str> {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.octets() == [169, 254, 169, 254] || v4.octets() == [100, 100, 100, 200] {
                Some("a cloud metadata address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if v4.is_private() {
                Some("a private address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT) address")
            } else if v4.is_multicast() {
                Some("a multicast address")
            } else if v4.is_unspecified() || a == 0 {
                Some("an unspecified address")
            } else if v4.is_broadcast() || a >= 240 {
                Some("a reserved address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if v6.segments() == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
                Some("a cloud metadata address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else {
                None
            }
        }
    }
}

/// The host and port a channel URL connects to (`[v6]` without its brackets), after the
/// checks of [`ChannelSpec::validate`].
pub fn url_host(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.trim_end_matches('.').to_ascii_lowercase(), port))
}

impl ChannelSpec {
    /// The URL field and the URL of a webhook or Slack channel.
    pub fn url_target(&self) -> Option<(&'static str, &str)> {
        match &self.target {
            ChannelTarget::Webhook { url, .. } => Some(("target.url", url)),
            ChannelTarget::Slack { webhook_url } => Some(("target.webhook_url", webhook_url)),
            ChannelTarget::Email { .. } => None,
        }
    }

    /// Refuses a URL whose host is an internal address, or a name that is always one
    /// (`localhost`, the cloud metadata names), unless the policy allows them. Names are
    /// resolved by the caller, which checks each address with [`TargetPolicy::refusal`].
    pub fn check_target(&self, policy: TargetPolicy) -> Result<(), AlertingError> {
        let Some((field, url)) = self.url_target() else {
            return Ok(());
        };
        if policy == TargetPolicy::AllowPrivate {
            return Ok(());
        }
        let Some((host, _)) = url_host(url) else {
            return Err(refuse(field, "must name a host and a valid port"));
        };
        let what = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => internal_address(ip),
            Err(_) if host == "localhost" || host.ends_with(".localhost") => {
                Some("a loopback name")
            }
            Err(_) if host == "metadata.google.internal" || host == "metadata" => {
                Some("a cloud metadata name")
            }
            Err(_) => None,
        };
        match what {
            Some(what) => Err(refused_target(field, &format!("{host} is {what}"))),
            None => Ok(()),
        }
    }
}

/// The refusal of a channel URL whose host is (or resolves to) an internal address;
/// `why` says which (`10.0.0.1 is a private address`).
pub fn refused_target(field: &str, why: &str) -> AlertingError {
    refuse(
        field,
        format!(
            "{why}: notifications only go to public addresses \
             (the operator allows internal ones with WEFT_ALERTING_ALLOW_PRIVATE_TARGETS)"
        ),
    )
}

/// A silence: matching alerts notify nobody until `ends_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceSpec {
    /// Silences one rule...
    #[serde(default)]
    pub rule_id: Option<uuid::Uuid>,
    /// ... or every rule whose labels include all of these.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// RFC 3339.
    pub ends_at: String,
    #[serde(default)]
    pub comment: String,
}

impl SilenceSpec {
    pub fn from_json(json: &[u8]) -> Result<SilenceSpec, AlertingError> {
        let spec: SilenceSpec = from_json(json, "silence")?;
        if spec.rule_id.is_none() && spec.labels.is_empty() {
            return Err(refuse(
                "rule_id",
                "name a rule or at least one label to match",
            ));
        }
        if spec.comment.len() > 500 {
            return Err(refuse("comment", "is longer than 500 characters"));
        }
        Ok(spec)
    }

    /// Whether the silence covers a rule with these match labels.
    pub fn covers(&self, rule_id: uuid::Uuid, labels: &BTreeMap<String, String>) -> bool {
        match self.rule_id {
            Some(id) => id == rule_id,
            None => self.labels.iter().all(|(k, v)| labels.get(k) == Some(v)),
        }
    }
}

/// Where an alert (a rule, or one series of it) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Ok,
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Ok => "ok",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<AlertState> {
        Some(match text {
            "ok" => AlertState::Ok,
            "pending" => AlertState::Pending,
            "firing" => AlertState::Firing,
            "resolved" => AlertState::Resolved,
            _ => return None,
        })
    }

    /// The next state given whether the condition holds now and for how long it has
    /// held (`held_seconds`), with the rule's `for`. Resolved behaves as ok: it stays
    /// shown until the next change.
    pub fn next(self, breached: bool, held_seconds: u64, for_seconds: u64) -> AlertState {
        match (self, breached) {
            (AlertState::Firing, true) => AlertState::Firing,
            (AlertState::Firing, false) => AlertState::Resolved,
            (_, true) if held_seconds >= for_seconds => AlertState::Firing,
            (_, true) => AlertState::Pending,
            (AlertState::Pending, false) => AlertState::Ok,
            (state, false) => state,
        }
    }

    /// Whether entering this state notifies (firing and resolved do; pending and ok not).
    pub fn notifies(self) -> bool {
        matches!(self, AlertState::Firing | AlertState::Resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(json: &str) -> String {
        AlertRule::from_json(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn rules_parse_and_bad_ones_name_the_field() {
        let rule = AlertRule::from_json(
            br#"{"name": "checkout p99", "condition": {"kind": "latency", "service": "checkout",
                 "percentile": "p99", "threshold_ms": 800, "window_seconds": 300}, "for_seconds": 300}"#,
        )
        .unwrap();
        assert_eq!(rule.condition.kind(), "latency");
        assert_eq!(rule.repeat_seconds, 3600);
        assert!(rule.condition.breached(801.0) && !rule.condition.breached(800.0));

        let bad = refusal(
            r#"{"name": "x", "condition": {"kind": "latency", "service": "a", "percentile": "p98", "threshold_ms": 1}}"#,
        );
        assert!(
            bad.starts_with("condition.percentile") || bad.starts_with("condition"),
            "{bad}"
        );
        assert!(bad.contains("p98"), "{bad}");
        let bad = refusal(
            r#"{"name": "x", "condition": {"kind": "latency", "service": "a", "percentile": "p99", "threshold_ms": -1}}"#,
        );
        assert!(
            bad.starts_with("condition.threshold_ms: must be a number of at least 0"),
            "{bad}"
        );
        let bad = refusal(
            r#"{"name": "x", "condition": {"kind": "error_rate", "service": "a", "threshold_percent": 5, "window_seconds": 10}}"#,
        );
        assert!(
            bad.starts_with("condition.window_seconds: must be between 60"),
            "{bad}"
        );
        let bad = refusal(
            r#"{"name": "x", "condition": {"kind": "error_rate", "service": "a", "threshold_percent": 150}}"#,
        );
        assert!(
            bad.starts_with("condition.threshold_percent: must be below 100"),
            "{bad}"
        );
        let bad = refusal(
            r#"{"name": "x", "for_seconds": 999999, "condition": {"kind": "span_duration", "service": "a", "threshold_ms": 5}}"#,
        );
        assert!(bad.starts_with("for_seconds: "), "{bad}");
        let bad = refusal(
            r#"{"name": "", "condition": {"kind": "span_duration", "service": "a", "threshold_ms": 5}}"#,
        );
        assert!(bad.starts_with("name: "), "{bad}");
        let bad = refusal(
            r#"{"name": "x", "condition": {"kind": "span_duration", "service": " ", "threshold_ms": 5}}"#,
        );
        assert!(bad.starts_with("condition.service: "), "{bad}");
    }

    #[test]
    fn channels_refuse_non_http_urls_and_addresses_without_a_domain() {
        let error = ChannelSpec::from_json(br#"{"name": "ops", "target": {"kind": "slack", "webhook_url": "ftp://hooks.slack.com/x"}}"#)
            .unwrap_err();
        assert_eq!(error.field, "target.webhook_url");
        let error = ChannelSpec::from_json(br#"{"name": "ops", "target": {"kind": "email", "to": ["ops@example.com", "root@localhost"]}}"#)
            .unwrap_err();
        assert_eq!(error.field, "target.to[1]");
        assert!(error.message.contains("with a domain"), "{error}");
        let spec = ChannelSpec::from_json(br#"{"name": "ops", "target": {"kind": "webhook", "url": "https://user:pw@hooks.example.com/a?token=1", "secret": "0123456789abcdef"}}"#)
            .unwrap();
        assert_eq!(spec.target.display(), "hooks.example.com …");
        let debug = format!("{spec:?}");
        assert!(
            !debug.contains("token")
                && !debug.contains("0123456789abcdef")
                && !debug.contains("pw"),
            "{debug}"
        );
    }

    #[test]
    fn internal_targets_are_refused_unless_the_operator_allows_them() {
        let spec = |url: &str| {
            ChannelSpec::from_json(
                format!(
                    r#"{{"name": "x", "target": {{"kind": "slack", "webhook_url": "{url}"}}}}"#
                )
                .as_bytes(),
            )
            .unwrap()
        };
        for (url, what) in [
            ("http://127.0.0.1:9000/hook", "loopback"),
            ("http://LOCALHOST/hook", "loopback name"),
            ("http://api.localhost./hook", "loopback name"),
            ("http://10.1.2.3/hook", "a private address"),
            ("http://192.168.0.1/hook", "a private address"),
            ("https://user:pw@172.16.5.5:8443/hook", "a private address"),
            ("http://169.254.169.254/latest/meta-data", "metadata"),
            (
                "http://metadata.google.internal/computeMetadata",
                "metadata",
            ),
            ("http://169.254.1.1/", "link-local"),
            ("http://100.64.0.1/", "carrier-grade"),
            ("http://224.0.0.1/", "multicast"),
            ("http://0.0.0.0:80/", "unspecified"),
            ("http://[::1]:8080/hook", "loopback"),
            ("http://[::ffff:10.0.0.1]/hook", "a private address"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fd12:3456::1]/", "unique local"),
            ("http://[fd00:ec2::254]/", "metadata"),
        ] {
            let error = spec(url)
                .check_target(TargetPolicy::PublicOnly)
                .unwrap_err();
            assert_eq!(error.field, "target.webhook_url", "{url}");
            assert!(error.message.contains(what), "{url}: {error}");
            assert!(
                error
                    .message
                    .contains("WEFT_ALERTING_ALLOW_PRIVATE_TARGETS"),
                "{error}"
            );
            assert!(spec(url).check_target(TargetPolicy::AllowPrivate).is_ok());
        }
        for url in [
            "https://hooks.slack.com/services/T/B/x",
            "https://93.184.216.34/hook",
            "http://[2606:4700::1111]/hook",
        ] {
            assert!(
                spec(url).check_target(TargetPolicy::PublicOnly).is_ok(),
                "{url}"
            );
        }
        assert_eq!(
            url_host("https://u:p@[2606:4700::1111]:8443/x?y"),
            Some(("2606:4700::1111".to_owned(), 8443))
        );
        assert_eq!(
            url_host("http://Hooks.Example.com/x"),
            Some(("hooks.example.com".to_owned(), 80))
        );
    }

    #[test]
    fn states_go_pending_then_firing_after_for_and_resolve() {
        use AlertState::*;
        assert_eq!(Ok.next(true, 0, 60), Pending);
        assert_eq!(Pending.next(true, 59, 60), Pending);
        assert_eq!(Pending.next(true, 60, 60), Firing);
        assert_eq!(Pending.next(false, 0, 60), Ok);
        assert_eq!(Firing.next(true, 0, 60), Firing);
        assert_eq!(Firing.next(false, 0, 60), Resolved);
        assert_eq!(Resolved.next(false, 0, 60), Resolved);
        assert_eq!(Ok.next(true, 0, 0), Firing);
    }

    #[test]
    fn span_rules_match_service_operation_and_attributes() {
        let rule = AlertRule::from_json(br#"{"name": "slow charge", "condition": {"kind": "span_duration", "service": "payments",
            "operation": "charge-payment", "attributes": [{"key": "region", "value": "eu"}], "threshold_ms": 2000}}"#)
            .unwrap();
        let attrs = |key: &str| (key == "region").then_some("eu");
        assert!(
            rule.condition
                .matches_span("payments", "charge-payment", attrs)
        );
        assert!(!rule.condition.matches_span("payments", "refund", attrs));
        assert!(
            !rule
                .condition
                .matches_span("payments", "charge-payment", |_| None)
        );
        let silence = SilenceSpec::from_json(
            br#"{"labels": {"service": "payments"}, "ends_at": "2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(silence.covers(uuid::Uuid::nil(), &rule.match_labels()));
    }
}
