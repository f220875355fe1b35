//! What a notification says, and how each channel kind carries it: the webhook's signed
//! JSON, Slack's Block Kit message, and an email with plain-text and HTML parts. Every
//! one names the rule, service, operation, observed value, threshold and window, and
//! links to the rule, the service and an example trace in the dashboard.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use weft_model::alerting::AlertRule;

/// The header of a webhook's signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>" with the channel's secret>`.
pub const SIGNATURE_HEADER: &str = "X-Weft-Signature";

/// The signature header value of `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[derive(Clone, Debug, Serialize)]
pub struct Links {
    pub rule: String,
    pub service: String,
    pub trace: Option<String>,
}

/// One notification, as the webhook's JSON body.
#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    pub version: u32,
    pub test: bool,
    pub tenant_id: String,
    pub rule_id: String,
    pub rule: String,
    pub kind: String,
    /// `firing`, `resolved` (or `test`).
    pub state: String,
    pub service: String,
    pub operation: Option<String>,
    pub measure: String,
    pub observed: Option<f64>,
    pub threshold: f64,
    pub unit: String,
    pub window_seconds: u64,
    pub trace_id: Option<String>,
    pub links: Links,
    /// RFC 3339.
    pub at: String,
}

/// A path segment, percent-encoded.
fn segment(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Slack's mrkdwn escapes.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

impl Notification {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        public_url: &str,
        tenant_id: String,
        rule_id: uuid::Uuid,
        rule: &AlertRule,
        state: &str,
        observed: Option<f64>,
        trace_id: Option<String>,
        at: chrono::DateTime<chrono::Utc>,
        test: bool,
    ) -> Notification {
        let condition = &rule.condition;
        Notification {
            version: 1,
            test,
            tenant_id,
            rule_id: rule_id.to_string(),
            rule: rule.name.clone(),
            kind: condition.kind().to_owned(),
            state: state.to_owned(),
            service: condition.service().to_owned(),
            operation: condition.operation().map(str::to_owned),
            measure: condition.measure(),
            observed,
            threshold: condition.threshold(),
            unit: condition.unit().to_owned(),
            window_seconds: condition.window_seconds(),
            links: Links {
                rule: format!("{public_url}/alerts/rules/{rule_id}"),
                service: format!("{public_url}/services/{}", segment(condition.service())),
                trace: trace_id
                    .as_ref()
                    .map(|id| format!("{public_url}/traces/{id}")),
            },
            trace_id,
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    fn value(&self, value: f64) -> String {
        format!("{} {}", number(value), self.unit)
    }

    /// `FIRING`, `RESOLVED` or `TEST`.
    fn state_word(&self) -> String {
        if self.test {
            "TEST".to_owned()
        } else {
            self.state.to_uppercase()
        }
    }

    /// One line: `[FIRING] checkout p99 — checkout / GET /cart`.
    pub fn subject(&self) -> String {
        let target = match &self.operation {
            Some(op) => format!("{} / {op}", self.service),
            None => self.service.clone(),
        };
        format!("[{}] {} — {target}", self.state_word(), self.rule)
    }

    /// The facts, one per line, for plain text.
    fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![
            ("Rule", self.rule.clone()),
            ("State", self.state.clone()),
            ("Service", self.service.clone()),
            (
                "Operation",
                self.operation.clone().unwrap_or_else(|| "any".to_owned()),
            ),
            (
                "Observed",
                self.observed.map_or_else(
                    || "no data".to_owned(),
                    |v| format!("{} ({})", self.value(v), self.measure),
                ),
            ),
            ("Threshold", self.value(self.threshold)),
            ("Window", format!("{} s", self.window_seconds)),
        ];
        if self.test {
            facts.insert(
                0,
                ("Test", "this is a test notification from Weft".to_owned()),
            );
        }
        facts
    }

    pub fn webhook_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("notifications serialise")
    }

    /// A Slack incoming-webhook message (Block Kit), with `text` as the fallback.
    pub fn slack_body(&self) -> Vec<u8> {
        let field = |label: &str, value: String| serde_json::json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", slack_escape(&value))});
        let facts = self.facts();
        let fields: Vec<_> = facts
            .iter()
            .filter(|(label, _)| *label != "Rule" && *label != "Test")
            .map(|(label, value)| field(label, value.clone()))
            .collect();
        let mut buttons = vec![
            serde_json::json!({"type": "button", "text": {"type": "plain_text", "text": "Open rule"}, "url": self.links.rule}),
            serde_json::json!({"type": "button", "text": {"type": "plain_text", "text": "Open service"}, "url": self.links.service}),
        ];
        let trace_text = match &self.links.trace {
            Some(url) => {
                buttons.insert(
                    0,
                    serde_json::json!({"type": "button", "text": {"type": "plain_text", "text": "Example trace"}, "url": url, "style": "primary"}),
                );
                format!(
                    "<{url}|Example trace {}>",
                    self.trace_id.as_deref().unwrap_or_default()
                )
            }
            None => "No example trace was kept for this window.".to_owned(),
        };
        let mut blocks = vec![
            serde_json::json!({"type": "header", "text": {"type": "plain_text", "text": self.subject()}}),
            serde_json::json!({"type": "section", "fields": fields}),
            serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": trace_text}}),
            serde_json::json!({"type": "actions", "elements": buttons}),
        ];
        if self.test {
            blocks.insert(
                1,
                serde_json::json!({"type": "context", "elements": [{"type": "mrkdwn", "text": "This is a test notification from Weft."}]}),
            );
        }
        let text = format!(
            "{}: {} {} (threshold {})",
            self.subject(),
            self.measure,
            self.observed
                .map_or_else(|| "no data".to_owned(), |v| self.value(v)),
            self.value(self.threshold)
        );
        serde_json::to_vec(&serde_json::json!({"text": text, "blocks": blocks}))
            .expect("slack messages serialise")
    }

    pub fn email_text(&self) -> String {
        let mut text = String::new();
        for (label, value) in self.facts() {
            text.push_str(&format!("{label}: {value}\n"));
        }
        text.push('\n');
        match &self.links.trace {
            Some(url) => text.push_str(&format!("Example trace: {url}\n")),
            None => text.push_str("No example trace was kept for this window.\n"),
        }
        text.push_str(&format!(
            "Rule: {}\nService: {}\n",
            self.links.rule, self.links.service
        ));
        text
    }

    pub fn email_html(&self) -> String {
        let mut rows = String::new();
        for (label, value) in self.facts() {
            rows.push_str(&format!(
                "<tr><th align=\"left\" style=\"padding:4px 12px 4px 0\">{}</th><td>{}</td></tr>",
                label,
                html_escape(&value)
            ));
        }
        let trace = match &self.links.trace {
            Some(url) => format!("<p><a href=\"{0}\">Example trace</a></p>", html_escape(url)),
            None => "<p>No example trace was kept for this window.</p>".to_owned(),
        };
        format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><table>{rows}</table>{trace}\
             <p><a href=\"{}\">Open the rule</a> · <a href=\"{}\">Open the service</a></p></body></html>",
            html_escape(&self.subject()),
            html_escape(&self.links.rule),
            html_escape(&self.links.service)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // Known answer: HMAC-SHA256("secret", "1700000000.{}").
        let header = sign("secret", 1_700_000_000, b"{}");
        assert!(header.starts_with("t=1700000000,v1="), "{header}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            header,
            format!(
                "t=1700000000,v1={}",
                hex::encode(mac.finalize().into_bytes())
            )
        );
    }

    #[test]
    fn notifications_link_rule_service_and_trace() {
        let rule = AlertRule::from_json(br#"{"name": "slow <charge>", "condition": {"kind": "span_duration", "service": "pay ments", "operation": "charge", "threshold_ms": 2000}}"#).unwrap();
        let n = Notification::new(
            "http://w",
            "t".into(),
            uuid::Uuid::nil(),
            &rule,
            "firing",
            Some(2500.0),
            Some("ab".into()),
            chrono::Utc::now(),
            false,
        );
        assert_eq!(n.links.service, "http://w/services/pay%20ments");
        assert_eq!(n.links.trace.as_deref(), Some("http://w/traces/ab"));
        assert_eq!(n.subject(), "[FIRING] slow <charge> — pay ments / charge");
        assert!(n.email_html().contains("slow &lt;charge&gt;"));
        assert!(n.email_text().contains("Observed: 2500 ms (span duration)"));
        let slack: serde_json::Value = serde_json::from_slice(&n.slack_body()).unwrap();
        assert_eq!(
            slack["blocks"][3]["elements"][0]["url"],
            "http://w/traces/ab"
        );
    }
}
