//! The rule form of the dashboard: one set of fields per rule kind (thresholds with
//! their units, windows, `for` and repeat intervals, channels), turned into an
//! [`AlertRule`] and back (an edit pre-fills), with every refusal attached to the field
//! it names. It works without JavaScript: the kind is picked by a link that renders its
//! fields, and the service and operation pickers are a `<select>` and a `<datalist>`.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use weft_model::alerting::{
    AlertRule, AlertingError, AttributeFilter, Condition, Direction, Percentile,
};

/// The kinds in the order the form offers them, with what each watches.
pub const KINDS: [(&str, &str); 4] = [
    ("span_duration", "Slow spans"),
    ("latency", "Latency percentile"),
    ("error_rate", "Error rate"),
    ("throughput", "Throughput"),
];

/// The form's fields as posted (every value a string, so a typo is refused naming its
/// field instead of failing the whole form). Channels are checkboxes `channel.<id>`.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(default)]
pub struct RuleFields {
    pub csrf: String,
    pub kind: String,
    pub name: String,
    pub service: String,
    pub operation: String,
    /// `key=value`, one a line (span-duration rules).
    pub attributes: String,
    pub percentile: String,
    pub direction: String,
    pub threshold: String,
    /// `ms` or `s` for durations; the other kinds have a fixed unit.
    pub threshold_unit: String,
    pub min_requests: String,
    pub window: String,
    pub window_unit: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub for_unit: String,
    pub repeat: String,
    pub repeat_unit: String,
    /// `key=value`, separated by commas.
    pub labels: String,
    #[serde(flatten)]
    pub rest: HashMap<String, String>,
}

impl super::CsrfProtected for RuleFields {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn refuse(field: &str, message: impl Into<String>) -> AlertingError {
    AlertingError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The form field a refusal of the model (a JSON path) is about.
pub fn form_field(model_field: &str) -> &'static str {
    let path = model_field.split(['[', '.']).collect::<Vec<_>>();
    match path.as_slice() {
        ["name", ..] => "name",
        ["for_seconds", ..] => "for",
        ["repeat_seconds", ..] => "repeat",
        ["channels", ..] => "channels",
        ["labels", ..] => "labels",
        ["condition", "service", ..] => "service",
        ["condition", "operation", ..] => "operation",
        ["condition", "attributes", ..] => "attributes",
        ["condition", "percentile", ..] => "percentile",
        ["condition", "direction", ..] => "direction",
        ["condition", "min_requests", ..] => "min_requests",
        ["condition", "window_seconds", ..] => "window",
        ["condition", field, ..] if field.starts_with("threshold") => "threshold",
        _ => "kind",
    }
}

const UNITS: [(&str, u64); 3] = [("h", 3600), ("min", 60), ("s", 1)];

/// A duration in whole seconds from a number and its unit.
fn seconds(field: &str, value: &str, unit: &str) -> Result<u64, AlertingError> {
    let value = value.trim();
    let Some(&(_, factor)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(refuse(
            field,
            format!("unit must be s, min or h, not {unit:?}"),
        ));
    };
    let number: f64 = value
        .parse()
        .map_err(|_| refuse(field, format!("must be a number, not {value:?}")))?;
    let total = number * factor as f64;
    if !total.is_finite() || total < 0.0 {
        return Err(refuse(field, format!("must be 0 or more, not {value}")));
    }
    if total.fract() != 0.0 {
        return Err(refuse(
            field,
            format!("must be whole seconds, not {total} s"),
        ));
    }
    Ok(total as u64)
}

/// A duration as a number in the largest unit that divides it.
fn split_seconds(total: u64) -> (String, &'static str) {
    let (unit, factor) = UNITS
        .iter()
        .find(|(_, f)| total > 0 && total.is_multiple_of(*f))
        .copied()
        .unwrap_or(("s", 1));
    ((total / factor).to_string(), unit)
}

fn number_text(value: f64) -> String {
    // Shortest text that reads back as the same number.
    format!("{value}")
}

fn pairs(
    field: &str,
    text: &str,
    separators: &[char],
) -> Result<Vec<(String, String)>, AlertingError> {
    text.split(separators)
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| refuse(field, format!("{pair:?} is not key=value")))
        })
        .collect()
}

impl RuleFields {
    /// An empty form for `kind` (span duration when unknown), with the defaults a
    /// typical rule has.
    pub fn new(kind: &str) -> RuleFields {
        let kind = KINDS
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or("span_duration", |(k, _)| k);
        let (window, window_unit) = match kind {
            "span_duration" => ("2", "min"),
            _ => ("5", "min"),
        };
        RuleFields {
            kind: kind.to_owned(),
            percentile: "p99".to_owned(),
            direction: "below".to_owned(),
            threshold_unit: "ms".to_owned(),
            min_requests: "20".to_owned(),
            window: window.to_owned(),
            window_unit: window_unit.to_owned(),
            for_: "0".to_owned(),
            for_unit: "min".to_owned(),
            repeat: "1".to_owned(),
            repeat_unit: "h".to_owned(),
            ..RuleFields::default()
        }
    }

    /// The form pre-filled with a saved rule. With `kind`, the rule's fields are shown
    /// as a rule of that kind (what the kind has in common is kept).
    pub fn from_rule(rule: &AlertRule, kind: Option<&str>) -> RuleFields {
        let c = &rule.condition;
        let mut fields = RuleFields::new(kind.unwrap_or(c.kind()));
        fields.name = rule.name.clone();
        fields.service = c.service().to_owned();
        fields.operation = c.operation().unwrap_or_default().to_owned();
        (fields.window, fields.window_unit) = {
            let (n, u) = split_seconds(c.window_seconds());
            (n, u.to_owned())
        };
        (fields.for_, fields.for_unit) = {
            let (n, u) = split_seconds(rule.for_seconds);
            (n, if rule.for_seconds == 0 { "min" } else { u }.to_owned())
        };
        (fields.repeat, fields.repeat_unit) = {
            let (n, u) = split_seconds(rule.repeat_seconds);
            (n, if rule.repeat_seconds == 0 { "h" } else { u }.to_owned())
        };
        fields.labels = rule
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        for channel in &rule.channels {
            fields
                .rest
                .insert(format!("channel.{channel}"), "on".to_owned());
        }
        if fields.kind != c.kind() {
            return fields;
        }
        match c {
            Condition::SpanDuration {
                attributes,
                threshold_ms,
                ..
            } => {
                fields.attributes = attributes
                    .iter()
                    .map(|a| format!("{}={}", a.key, a.value))
                    .collect::<Vec<_>>()
                    .join("\n");
                fields.set_duration_threshold(*threshold_ms);
            }
            Condition::Latency {
                percentile,
                threshold_ms,
                ..
            } => {
                fields.percentile = percentile.as_str().to_owned();
                fields.set_duration_threshold(*threshold_ms);
            }
            Condition::ErrorRate {
                threshold_percent,
                min_requests,
                ..
            } => {
                fields.threshold = number_text(*threshold_percent);
                fields.min_requests = min_requests.to_string();
            }
            Condition::Throughput {
                direction,
                threshold_per_minute,
                ..
            } => {
                fields.direction = match direction {
                    Direction::Below => "below",
                    Direction::Above => "above",
                }
                .to_owned();
                fields.threshold = number_text(*threshold_per_minute);
            }
        }
        fields
    }

    fn set_duration_threshold(&mut self, ms: f64) {
        if ms >= 1000.0 && (ms / 1000.0).fract() == 0.0 {
            self.threshold = number_text(ms / 1000.0);
            self.threshold_unit = "s".to_owned();
        } else {
            self.threshold = number_text(ms);
            self.threshold_unit = "ms".to_owned();
        }
    }

    /// Whether the channel with this id is ticked.
    pub fn has_channel(&self, id: &str) -> bool {
        self.rest.contains_key(&format!("channel.{id}"))
    }

    /// The rule the form describes, validated; a refusal names a field of the form.
    pub fn rule(&self) -> Result<AlertRule, AlertingError> {
        let threshold_text = self.threshold.trim();
        let threshold: f64 = threshold_text.parse().map_err(|_| {
            refuse(
                "threshold",
                format!("must be a number, not {threshold_text:?}"),
            )
        })?;
        let duration_threshold = || match self.threshold_unit.as_str() {
            "ms" => Ok(threshold),
            "s" => Ok(threshold * 1000.0),
            unit => Err(refuse(
                "threshold",
                format!("unit must be ms or s, not {unit:?}"),
            )),
        };
        let service = self.service.trim().to_owned();
        let operation = Some(self.operation.trim())
            .filter(|op| !op.is_empty())
            .map(str::to_owned);
        let window_seconds = seconds("window", &self.window, &self.window_unit)?;
        let condition = match self.kind.as_str() {
            "span_duration" => Condition::SpanDuration {
                service,
                operation,
                attributes: pairs("attributes", &self.attributes, &['\n', ','])?
                    .into_iter()
                    .map(|(key, value)| AttributeFilter { key, value })
                    .collect(),
                threshold_ms: duration_threshold()?,
                window_seconds,
            },
            "latency" => Condition::Latency {
                service,
                operation,
                percentile: match self.percentile.as_str() {
                    "p50" => Percentile::P50,
                    "p90" => Percentile::P90,
                    "p95" => Percentile::P95,
                    "p99" => Percentile::P99,
                    other => {
                        return Err(refuse(
                            "percentile",
                            format!("must be p50, p90, p95 or p99, not {other:?}"),
                        ));
                    }
                },
                threshold_ms: duration_threshold()?,
                window_seconds,
            },
            "error_rate" => Condition::ErrorRate {
                service,
                operation,
                threshold_percent: threshold,
                min_requests: self.min_requests.trim().parse().map_err(|_| {
                    refuse(
                        "min_requests",
                        format!("must be a whole number, not {:?}", self.min_requests.trim()),
                    )
                })?,
                window_seconds,
            },
            "throughput" => Condition::Throughput {
                service,
                operation,
                direction: match self.direction.as_str() {
                    "below" => Direction::Below,
                    "above" => Direction::Above,
                    other => {
                        return Err(refuse(
                            "direction",
                            format!("must be below or above, not {other:?}"),
                        ));
                    }
                },
                threshold_per_minute: threshold,
                window_seconds,
            },
            other => {
                return Err(refuse(
                    "kind",
                    format!(
                        "must be span_duration, latency, error_rate or throughput, not {other:?}"
                    ),
                ));
            }
        };
        let mut channels = Vec::new();
        for key in self.rest.keys() {
            if let Some(id) = key.strip_prefix("channel.") {
                let id = id
                    .parse()
                    .map_err(|_| refuse("channels", format!("{id:?} is not a channel id")))?;
                channels.push(id);
            }
        }
        channels.sort();
        let labels: BTreeMap<String, String> =
            pairs("labels", &self.labels, &[','])?.into_iter().collect();
        let rule = AlertRule {
            name: self.name.trim().to_owned(),
            condition,
            for_seconds: seconds("for", &self.for_, &self.for_unit)?,
            repeat_seconds: seconds("repeat", &self.repeat, &self.repeat_unit)?,
            channels,
            labels,
        };
        rule.validate().map_err(|problem| AlertingError {
            field: form_field(&problem.field).to_owned(),
            message: problem.message,
        })?;
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(kind: &str, pairs: &[(&str, &str)]) -> RuleFields {
        let mut body = serde_json::Map::new();
        for (k, v) in [
            ("kind", kind),
            ("name", "checkout"),
            ("service", "checkout"),
        ]
        .iter()
        .chain(pairs)
        {
            body.insert((*k).to_owned(), serde_json::Value::from(*v));
        }
        let mut fields: RuleFields = serde_json::from_value(body.into()).unwrap();
        for (default, value) in [
            (&mut fields.window, "5"),
            (&mut fields.window_unit, "min"),
            (&mut fields.for_, "0"),
            (&mut fields.for_unit, "min"),
            (&mut fields.repeat, "1"),
            (&mut fields.repeat_unit, "h"),
            (&mut fields.threshold_unit, "ms"),
            (&mut fields.min_requests, "20"),
            (&mut fields.percentile, "p99"),
            (&mut fields.direction, "below"),
        ] {
            if default.is_empty() {
                *default = value.to_owned();
            }
        }
        fields
    }

    #[test]
    fn each_kind_becomes_its_rule_with_units_and_reads_back() {
        let id = uuid::Uuid::new_v4();
        let channel = format!("channel.{id}");
        let rule = form(
            "latency",
            &[
                ("percentile", "p95"),
                ("threshold", "1.5"),
                ("threshold_unit", "s"),
                ("window", "10"),
                ("for", "2"),
                ("repeat", "30"),
                ("repeat_unit", "min"),
                ("labels", "team=payments, tier=1"),
                (&channel, "on"),
            ],
        )
        .rule()
        .unwrap();
        assert_eq!(
            rule.condition,
            Condition::Latency {
                service: "checkout".to_owned(),
                operation: None,
                percentile: Percentile::P95,
                threshold_ms: 1500.0,
                window_seconds: 600,
            }
        );
        assert_eq!((rule.for_seconds, rule.repeat_seconds), (120, 1800));
        assert_eq!(rule.channels, vec![id]);
        assert_eq!(rule.labels["team"], "payments");
        let again = RuleFields::from_rule(&rule, None);
        assert_eq!(
            (again.threshold.as_str(), again.threshold_unit.as_str()),
            ("1500", "ms")
        );
        assert_eq!(
            (again.window.as_str(), again.window_unit.as_str()),
            ("10", "min")
        );
        assert_eq!(
            (again.repeat.as_str(), again.repeat_unit.as_str()),
            ("30", "min")
        );
        assert!(again.has_channel(&id.to_string()));
        assert_eq!(again.rule().unwrap(), rule);

        let rule = form(
            "span_duration",
            &[
                ("operation", "charge"),
                ("attributes", "region=eu\nplan = pro"),
                ("threshold", "2"),
                ("threshold_unit", "s"),
                ("window", "30"),
                ("window_unit", "s"),
            ],
        )
        .rule()
        .unwrap();
        assert!(
            rule.condition
                .matches_span("checkout", "charge", |k| match k {
                    "region" => Some("eu"),
                    "plan" => Some("pro"),
                    _ => None,
                })
        );
        assert_eq!(rule.condition.threshold(), 2000.0);
        assert_eq!(RuleFields::from_rule(&rule, None).rule().unwrap(), rule);

        for (kind, extra) in [
            ("error_rate", ("min_requests", "50")),
            ("throughput", ("direction", "above")),
        ] {
            let rule = form(kind, &[("threshold", "5"), extra]).rule().unwrap();
            assert_eq!(rule.condition.kind(), kind);
            assert_eq!(RuleFields::from_rule(&rule, None).rule().unwrap(), rule);
        }
    }

    #[test]
    fn refusals_name_the_form_field() {
        let field = |kind: &str, pairs: &[(&str, &str)]| {
            let problem = form(kind, pairs).rule().unwrap_err();
            (problem.field, problem.message)
        };
        assert_eq!(
            field("latency", &[("threshold", "fast")]),
            (
                "threshold".to_owned(),
                "must be a number, not \"fast\"".to_owned()
            )
        );
        assert_eq!(field("latency", &[("threshold", "0")]).0, "threshold");
        assert_eq!(
            field(
                "error_rate",
                &[("threshold", "5"), ("window", "30"), ("window_unit", "s")]
            )
            .0,
            "window"
        );
        assert_eq!(
            field("error_rate", &[("threshold", "5"), ("min_requests", "0")]).0,
            "min_requests"
        );
        assert_eq!(
            field("latency", &[("threshold", "5"), ("for", "-1")]).0,
            "for"
        );
        assert_eq!(
            field(
                "latency",
                &[("threshold", "5"), ("repeat", "10"), ("repeat_unit", "s")]
            )
            .0,
            "repeat"
        );
        assert_eq!(
            field(
                "latency",
                &[("threshold", "5"), ("window", "0.5"), ("window_unit", "s")]
            )
            .0,
            "window"
        );
        assert_eq!(
            field(
                "span_duration",
                &[("threshold", "5"), ("attributes", "region")]
            )
            .0,
            "attributes"
        );
        assert_eq!(
            field(
                "throughput",
                &[("threshold", "5"), ("direction", "sideways")]
            )
            .0,
            "direction"
        );
        assert_eq!(
            field("latency", &[("threshold", "5"), ("labels", "x")]).0,
            "labels"
        );
        assert_eq!(field("nonsense", &[("threshold", "5")]).0, "kind");
        assert_eq!(form_field("condition.service"), "service");
        assert_eq!(form_field("channels[2]"), "channels");
        assert_eq!(form_field("condition.threshold_percent"), "threshold");
    }
}
