//! The shop's log lines: what each service would log about the work a span did, written
//! as the span ends and carrying its trace and span ids, as a logging bridge in an
//! instrumented service writes them.

use crate::tree::{double_attr, str_attr};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{Span, status};

/// A span slower than this logs a warning.
const SLOW_NANOS: u64 = 500_000_000;
/// Trace flags of a sampled span, as a log record carries them.
const FLAG_SAMPLED: u32 = 1;

/// The log line a service writes when the work of `span` ends.
pub fn record_of(span: &Span) -> LogRecord {
    let nanos = span
        .end_time_unix_nano
        .saturating_sub(span.start_time_unix_nano);
    let ms = nanos as f64 / 1e6;
    let failed = span
        .status
        .as_ref()
        .is_some_and(|status| status.code == status::StatusCode::Error as i32);
    let text = |key: &str| attribute_text(span, key);
    let db = text("db.system");
    let client = span.kind == SpanKind::Client as i32;
    let mut body = if let Some(db) = &db {
        format!(
            "{db} {} {} took {ms:.1} ms",
            text("db.operation").unwrap_or_else(|| "command".to_owned()),
            text("db.sql.table").unwrap_or_default(),
        )
    } else if span.kind == SpanKind::Server as i32 {
        format!(
            "{} {} answered {} in {ms:.1} ms",
            text("http.request.method").unwrap_or_else(|| "GET".to_owned()),
            text("http.route").unwrap_or_else(|| span.name.clone()),
            text("http.response.status_code").unwrap_or_else(|| "200".to_owned()),
        )
    } else if client {
        format!(
            "call to {} {} returned {} after {ms:.1} ms",
            text("server.address").unwrap_or_else(|| "upstream".to_owned()),
            span.name,
            text("http.response.status_code").unwrap_or_else(|| "200".to_owned()),
        )
    } else {
        format!("{} finished in {ms:.1} ms", span.name)
    };
    let (severity, severity_text) = if failed {
        let message = span
            .status
            .as_ref()
            .map(|status| status.message.as_str())
            .unwrap_or_default();
        body = format!("{} failed: {message}", span.name);
        (SeverityNumber::Error, "ERROR")
    } else if nanos > SLOW_NANOS {
        body.push_str(" (slow)");
        (SeverityNumber::Warn, "WARN")
    } else if db.is_some() {
        (SeverityNumber::Debug, "DEBUG")
    } else {
        (SeverityNumber::Info, "INFO")
    };
    let mut attributes = vec![
        str_attr("code.function", &span.name),
        double_attr("duration_ms", (ms * 1000.0).round() / 1000.0),
    ];
    for key in ["http.route", "db.system", "exception.type"] {
        if let Some(value) = text(key).or_else(|| event_text(span, key)) {
            attributes.push(str_attr(key, &value));
        }
    }
    LogRecord {
        time_unix_nano: span.end_time_unix_nano,
        observed_time_unix_nano: span.end_time_unix_nano,
        severity_number: severity as i32,
        severity_text: severity_text.to_owned(),
        body: Some(AnyValue {
            value: Some(Value::StringValue(body)),
        }),
        attributes,
        dropped_attributes_count: 0,
        flags: FLAG_SAMPLED,
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        event_name: String::new(),
    }
}

/// An attribute of the span as text (integers written in decimal).
fn attribute_text(span: &Span, key: &str) -> Option<String> {
    find_text(&span.attributes, key)
}

/// An attribute of one of the span's events (the exception's type), as text.
fn event_text(span: &Span, key: &str) -> Option<String> {
    span.events
        .iter()
        .find_map(|event| find_text(&event.attributes, key))
}

fn find_text(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        Value::StringValue(text) => Some(text.clone()),
        Value::IntValue(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::int_attr;
    use opentelemetry_proto::tonic::trace::v1::Status;

    fn span(kind: SpanKind, attributes: Vec<KeyValue>, millis: u64) -> Span {
        Span {
            trace_id: vec![7; 16],
            span_id: vec![3; 8],
            name: "GET /cart".to_owned(),
            kind: kind as i32,
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_000_000_000 + millis * 1_000_000,
            attributes,
            ..Span::default()
        }
    }

    fn body(record: &LogRecord) -> &str {
        match record.body.as_ref().and_then(|body| body.value.as_ref()) {
            Some(Value::StringValue(text)) => text,
            other => panic!("not a text body: {other:?}"),
        }
    }

    #[test]
    fn a_server_span_logs_its_request_at_info_with_its_ids() {
        let span = span(
            SpanKind::Server,
            vec![
                str_attr("http.request.method", "GET"),
                str_attr("http.route", "/cart"),
                int_attr("http.response.status_code", 200),
            ],
            12,
        );
        let record = record_of(&span);
        assert_eq!(body(&record), "GET /cart answered 200 in 12.0 ms");
        assert_eq!(record.severity_number, SeverityNumber::Info as i32);
        assert_eq!(record.severity_text, "INFO");
        assert_eq!(record.trace_id, vec![7; 16]);
        assert_eq!(record.span_id, vec![3; 8]);
        assert_eq!(record.time_unix_nano, span.end_time_unix_nano);
        assert_eq!(
            find_text(&record.attributes, "http.route").as_deref(),
            Some("/cart")
        );
    }

    #[test]
    fn a_failed_span_logs_an_error_with_its_message_and_a_slow_one_warns() {
        let mut failed = span(
            SpanKind::Client,
            vec![str_attr("db.system", "postgresql")],
            3,
        );
        failed.status = Some(Status {
            code: status::StatusCode::Error as i32,
            message: "deadlock detected".to_owned(),
        });
        let record = record_of(&failed);
        assert_eq!(body(&record), "GET /cart failed: deadlock detected");
        assert_eq!(record.severity_text, "ERROR");

        let slow = record_of(&span(SpanKind::Internal, Vec::new(), 900));
        assert_eq!(body(&slow), "GET /cart finished in 900.0 ms (slow)");
        assert_eq!(slow.severity_number, SeverityNumber::Warn as i32);

        let query = record_of(&span(
            SpanKind::Client,
            vec![str_attr("db.system", "redis")],
            1,
        ));
        assert_eq!(query.severity_text, "DEBUG");
    }
}
