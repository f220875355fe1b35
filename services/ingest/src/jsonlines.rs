//! `POST /v1/logs/json`: newline-delimited JSON as structured loggers write it (pino,
//! winston, bunyan, structlog, python-json-logger, zap, zerolog, logback's and log4j2's
//! JSON encoders, the OpenTelemetry log bridges). Each line becomes one OTLP log record
//! and goes the way of every OTLP export (rate limit, split by trace, publish, answer
//! after JetStream acknowledged); a line that cannot be read is reported by number and
//! never rejects the others.
//!
//! What is looked for, after nested objects are flattened with dots (so `{"trace":
//! {"id": …}}` is `trace.id`): the first key of each list below that is present.

use crate::export::{Exporter, Transport};
use crate::http::read_body;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Json, http::StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use weft_bus::Signal;
use weft_model::{SpanId, TraceId};
use weft_runtime::{ApiError, auth};

pub const TIME_KEYS: &[&str] = &[
    "timestamp",
    "time",
    "@timestamp",
    "ts",
    "timeUnixNano",
    "time_unix_nano",
    "timeMillis",
    "instant.epochSecond",
    "asctime",
    "date",
    "datetime",
    "observedTimeUnixNano",
];
pub const LEVEL_KEYS: &[&str] = &[
    "level",
    "severity",
    "severityText",
    "severity_text",
    "levelname",
    "log.level",
    "loglevel",
    "lvl",
    "severityNumber",
    "severity_number",
];
pub const MESSAGE_KEYS: &[&str] = &["message", "msg", "event", "body", "log", "text", "@m"];
pub const SERVICE_KEYS: &[&str] = &[
    "service.name",
    "service",
    "service_name",
    "serviceName",
    "resource.service.name",
    "name",
];
pub const TRACE_KEYS: &[&str] = &[
    "trace_id",
    "traceId",
    "trace.id",
    "traceid",
    "otelTraceID",
    "dd.trace_id_hex",
];
pub const SPAN_KEYS: &[&str] = &["span_id", "spanId", "span.id", "spanid", "otelSpanID"];
pub const TRACEPARENT_KEYS: &[&str] = &["traceparent", "trace.parent"];
/// The logger's name (scope) where loggers report one.
pub const SCOPE_KEYS: &[&str] = &["logger", "logger_name", "loggerName", "logger.name"];

/// A line longer than this is refused (a log record must fit one bus message).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Rejected lines described in the answer, at most.
const MAX_REPORTED: usize = 10;
/// The service of lines that name none.
const UNKNOWN_SERVICE: &str = "unknown_service";

/// A rejected line, numbered from 1.
#[derive(Debug, PartialEq, Serialize)]
pub struct RejectedLine {
    pub line: usize,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct JsonLinesAnswer {
    pub accepted: u64,
    pub rejected: u64,
    /// The first few rejected lines.
    pub errors: Vec<RejectedLine>,
}

/// One line read: its service and its record.
#[derive(Debug, PartialEq)]
pub struct ParsedLine {
    pub service: String,
    pub scope: String,
    pub record: LogRecord,
}

fn flatten(prefix: &str, value: Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            if map.is_empty() && !prefix.is_empty() {
                out.push((prefix.to_owned(), Value::Object(Map::new())));
            }
            for (key, value) in map {
                let key = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, out);
            }
        }
        other => out.push((prefix.to_owned(), other)),
    }
}

fn take(fields: &mut Vec<(String, Value)>, keys: &[&str]) -> Option<(String, Value)> {
    for key in keys {
        if let Some(index) = fields.iter().position(|(k, v)| k == key && !v.is_null()) {
            return Some(fields.remove(index));
        }
    }
    None
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Unix nanoseconds of an epoch number, its unit guessed from its size: seconds (as zap
/// and zerolog write them, maybe with a fraction), milliseconds (pino, log4j2's
/// `timeMillis`), microseconds or nanoseconds. Whole numbers are converted exactly.
fn epoch_nanos(number: &serde_json::Number) -> Option<u64> {
    let scale = |magnitude: f64| -> u64 {
        if magnitude < 1e11 {
            1_000_000_000
        } else if magnitude < 1e14 {
            1_000_000
        } else if magnitude < 1e17 {
            1_000
        } else {
            1
        }
    };
    if let Some(whole) = number.as_u64() {
        return whole.checked_mul(scale(whole as f64)).filter(|n| *n > 0);
    }
    let value = number.as_f64()?;
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let scale = scale(value);
    let whole = value.trunc() as u64;
    let fraction = ((value.fract() * scale as f64).round()) as u64;
    whole.checked_mul(scale)?.checked_add(fraction)
}

/// The time of a timestamp value: ISO 8601 / RFC 3339 (with or without a zone: none is
/// UTC; a space instead of `T`, as Python's `asctime` writes), or an epoch number.
pub fn parse_time(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => epoch_nanos(n),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(number) = s.parse::<serde_json::Number>() {
                return epoch_nanos(&number);
            }
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                return u64::try_from(t.timestamp_nanos_opt()?).ok();
            }
            let normalised = s.replacen(' ', "T", 1).replace(',', ".");
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&normalised) {
                return u64::try_from(t.timestamp_nanos_opt()?).ok();
            }
            for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
                if let Ok(t) = chrono::DateTime::parse_from_str(&normalised, format) {
                    return u64::try_from(t.timestamp_nanos_opt()?).ok();
                }
            }
            for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
                if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&normalised, format) {
                    return u64::try_from(t.and_utc().timestamp_nanos_opt()?).ok();
                }
            }
            None
        }
        _ => None,
    }
}

/// The OTLP severity number and text of a level: a name (any case), or a number: an
/// OTLP severity number (1–24) when `otlp` (the key was `severityNumber`), else a
/// pino/bunyan level (10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal).
pub fn parse_level(value: &Value, otlp: bool) -> (i32, String) {
    let named = |name: &str| -> i32 {
        match name.to_ascii_lowercase().as_str() {
            "trace" | "finest" | "finer" | "silly" => 1,
            "debug" | "fine" | "verbose" | "config" => 5,
            "info" | "information" | "informational" | "notice" | "log" | "http" => 9,
            "warn" | "warning" => 13,
            "error" | "err" | "severe" => 17,
            "fatal" | "critical" | "crit" | "panic" | "dpanic" | "alert" | "emerg"
            | "emergency" => 21,
            _ => 0,
        }
    };
    match value {
        Value::Number(n) => {
            let number = n.as_i64().unwrap_or(0);
            let severity = match number {
                1..=24 if otlp => number as i32,
                _ if otlp => 0,
                i64::MIN..=0 => 0,
                1..=19 => 1,
                20..=29 => 5,
                30..=39 => 9,
                40..=49 => 13,
                50..=59 => 17,
                _ => 21,
            };
            (severity, weft_model::severity_name(severity).to_owned())
        }
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(number) => parse_level(&Value::from(number), otlp),
            Err(_) => (named(s.trim()), s.trim().to_owned()),
        },
        _ => (0, String::new()),
    }
}

fn id_text(value: &Value) -> String {
    as_text(value).trim().to_ascii_lowercase()
}

/// Reads one line; `received` is used when the line carries no time.
pub fn parse_line(line: &str, received: u64, latest: u64) -> Result<ParsedLine, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!(
            "the line is {} bytes, longer than {MAX_LINE_BYTES}",
            line.len()
        ));
    }
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    if !value.is_object() {
        return Err("not a JSON object".to_owned());
    }
    let mut fields = Vec::new();
    flatten("", value, &mut fields);
    let time = match take(&mut fields, TIME_KEYS) {
        None => received,
        Some((key, value)) => {
            let mut time = parse_time(&value)
                .ok_or_else(|| format!("{key} {}: not a timestamp", as_text(&value)))?;
            // log4j2's JsonLayout splits the instant in two.
            if key == "instant.epochSecond"
                && let Some((_, nanos)) = take(&mut fields, &["instant.nanoOfSecond"])
            {
                time = (value.as_u64().unwrap_or(0) * 1_000_000_000)
                    .saturating_add(nanos.as_u64().unwrap_or(0));
            }
            time
        }
    };
    if time > latest {
        return Err(format!(
            "time {time} ns is later than the accepted clock skew allows"
        ));
    }
    let (severity_number, severity_text) = take(&mut fields, LEVEL_KEYS)
        .map(|(key, v)| parse_level(&v, key.starts_with("severityN") || key == "severity_number"))
        .unwrap_or_default();
    let body = take(&mut fields, MESSAGE_KEYS)
        .map(|(_, v)| as_text(&v))
        .unwrap_or_default();
    let service = take(&mut fields, SERVICE_KEYS)
        .map(|(_, v)| as_text(&v))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
    let scope = take(&mut fields, SCOPE_KEYS)
        .map(|(_, v)| as_text(&v))
        .unwrap_or_default();
    let mut trace_id = Vec::new();
    let mut span_id = Vec::new();
    if let Some((key, value)) = take(&mut fields, TRACE_KEYS) {
        let text = id_text(&value);
        if !text.is_empty() && text.bytes().any(|b| b != b'0') {
            let id: TraceId = text
                .parse()
                .map_err(|_| format!("{key} {text:?}: not a trace id (32 hex digits)"))?;
            trace_id = id.as_bytes().to_vec();
        }
    }
    if let Some((key, value)) = take(&mut fields, SPAN_KEYS) {
        let text = id_text(&value);
        if !text.is_empty() && text.bytes().any(|b| b != b'0') {
            let id: SpanId = text
                .parse()
                .map_err(|_| format!("{key} {text:?}: not a span id (16 hex digits)"))?;
            span_id = id.as_bytes().to_vec();
        }
    }
    if let Some((key, value)) = take(&mut fields, TRACEPARENT_KEYS)
        && trace_id.is_empty()
    {
        let text = id_text(&value);
        let parts: Vec<&str> = text.split('-').collect();
        let (trace, span) = match parts.as_slice() {
            [_, trace, span, _] => (trace.parse::<TraceId>().ok(), span.parse::<SpanId>().ok()),
            _ => (None, None),
        };
        let (Some(trace), Some(span)) = (trace, span) else {
            return Err(format!("{key} {text:?}: not a W3C traceparent"));
        };
        trace_id = trace.as_bytes().to_vec();
        span_id = span.as_bytes().to_vec();
    }
    let attributes = fields
        .into_iter()
        .map(|(key, value)| KeyValue {
            key,
            value: Some(AnyValue {
                value: Some(match value {
                    Value::Bool(b) => Any::BoolValue(b),
                    Value::Number(n) => match n.as_i64() {
                        Some(i) => Any::IntValue(i),
                        None => Any::DoubleValue(n.as_f64().unwrap_or(0.0)),
                    },
                    Value::String(s) => Any::StringValue(s),
                    other => Any::StringValue(other.to_string()),
                }),
            }),
            ..Default::default()
        })
        .collect();
    Ok(ParsedLine {
        service,
        scope,
        record: LogRecord {
            time_unix_nano: time,
            observed_time_unix_nano: received,
            severity_number,
            severity_text,
            body: Some(AnyValue {
                value: Some(Any::StringValue(body)),
            }),
            attributes,
            trace_id,
            span_id,
            ..Default::default()
        },
    })
}

/// Reads every line of a body: the request of the lines that were read, grouped by
/// service, and the rejected ones.
pub fn parse_body(
    body: &str,
    received: u64,
    latest: u64,
) -> (ExportLogsServiceRequest, u64, Vec<RejectedLine>) {
    let mut by_service: Vec<(String, String, Vec<LogRecord>)> = Vec::new();
    let mut rejected = 0;
    let mut errors = Vec::new();
    for (index, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match parse_line(line, received, latest) {
            Ok(parsed) => match by_service
                .iter_mut()
                .find(|(s, scope, _)| *s == parsed.service && *scope == parsed.scope)
            {
                Some((_, _, records)) => records.push(parsed.record),
                None => by_service.push((parsed.service, parsed.scope, vec![parsed.record])),
            },
            Err(error) => {
                rejected += 1;
                if errors.len() < MAX_REPORTED {
                    errors.push(RejectedLine {
                        line: index + 1,
                        error,
                    });
                }
            }
        }
    }
    let resource_logs = by_service
        .into_iter()
        .map(|(service, scope, log_records)| ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".to_owned(),
                    value: Some(AnyValue {
                        value: Some(Any::StringValue(service)),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: (!scope.is_empty()).then(|| {
                    opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                        name: scope,
                        ..Default::default()
                    }
                }),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    (ExportLogsServiceRequest { resource_logs }, rejected, errors)
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub async fn export_json_lines(
    State(exporter): State<Arc<Exporter>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = export(&exporter, &headers, body).await;
    exporter.count_request(
        Transport::Http,
        Signal::Logs,
        result.as_ref().map(|(_, rejected)| rejected),
    );
    match result {
        Ok((answer, _)) => (StatusCode::OK, Json(answer)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn export(
    exporter: &Exporter,
    headers: &HeaderMap,
    body: Body,
) -> Result<(JsonLinesAnswer, crate::export::Rejected), ApiError> {
    let key = auth::api_key(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    let resolved = exporter.authenticate(key).await?;
    let body = read_body(exporter, headers, body).await?;
    let text = String::from_utf8_lossy(&body);
    // Counted before parsing, so a tenant over its rate costs no parsing; the bytes are
    // the body's after decompression.
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    let admitted = exporter.admit(
        &resolved,
        Transport::Http,
        Signal::Logs,
        lines,
        body.len() as u64,
    )?;
    let received = now_nanos();
    let (request, unreadable, errors) =
        parse_body(&text, received, exporter.latest_accepted_time());
    let traceparent = weft_runtime::tracing_context::current_traceparent();
    let mut rejected = exporter
        .export_decoded(
            &resolved,
            Transport::Http,
            &request,
            admitted,
            traceparent.as_deref(),
        )
        .await?;
    exporter.count_unreadable(&resolved, Transport::Http, unreadable);
    let accepted = lines - unreadable - rejected.count;
    rejected.count += unreadable;
    let answer = JsonLinesAnswer {
        accepted,
        rejected: rejected.count,
        errors,
    };
    Ok((answer, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_590_000_000_000_000;

    fn attribute<'a>(parsed: &'a ParsedLine, key: &str) -> Option<&'a Any> {
        parsed
            .record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    fn body(parsed: &ParsedLine) -> &str {
        match parsed.record.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(Any::StringValue(s)) => s,
            _ => "",
        }
    }

    #[test]
    fn documented_formats_are_read() {
        // zap's production encoder: epoch seconds with a fraction, "msg", "caller".
        let zap = parse_line(
            r#"{"level":"error","ts":1764589999.5,"caller":"main.go:12","msg":"charge failed","trace_id":"0AF7651916CD43DD8448EB211C80319C","span_id":"b7ad6b7169203331","service":"payments"}"#,
            NOW,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(zap.record.time_unix_nano, 1_764_589_999_500_000_000);
        assert_eq!(
            (zap.record.severity_number, zap.service.as_str()),
            (17, "payments")
        );
        assert_eq!(body(&zap), "charge failed");
        assert_eq!(
            hex(&zap.record.trace_id),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(hex(&zap.record.span_id), "b7ad6b7169203331");
        assert!(attribute(&zap, "caller").is_some());
        // zerolog: RFC 3339 "time", "message".
        let zerolog = parse_line(
            r#"{"level":"warn","time":"2025-12-01T10:00:00+01:00","message":"slow","traceId":"0af7651916cd43dd8448eb211c80319c"}"#,
            NOW,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(zerolog.record.time_unix_nano, 1_764_579_600_000_000_000);
        assert_eq!(zerolog.record.severity_number, 13);
        // logback's LogstashEncoder: "@timestamp", "level", "logger_name", ECS-style nesting.
        let logback = parse_line(
            r#"{"@timestamp":"2025-12-01T09:00:00.123Z","level":"INFO","logger_name":"shop.Cart","message":"added","trace":{"id":"0af7651916cd43dd8448eb211c80319c"},"span":{"id":"b7ad6b7169203331"},"http":{"status":200}}"#,
            NOW,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(logback.scope, "shop.Cart");
        assert_eq!(logback.record.span_id.len(), 8);
        assert_eq!(
            attribute(&logback, "http.status"),
            Some(&Any::IntValue(200))
        );
        // log4j2's JsonLayout: "instant" split in seconds and nanoseconds.
        let log4j = parse_line(
            r#"{"instant":{"epochSecond":1764580000,"nanoOfSecond":250000000},"level":"DEBUG","loggerName":"a.B","message":"hi"}"#,
            NOW,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(log4j.record.time_unix_nano, 1_764_580_000_250_000_000);
        assert_eq!(log4j.record.severity_number, 5);
        // A W3C traceparent, pino's numeric level and epoch milliseconds.
        let pino = parse_line(
            r#"{"level":50,"time":1764580000123,"msg":"boom","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#,
            NOW,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(pino.record.time_unix_nano, 1_764_580_000_123_000_000);
        assert_eq!(
            (
                pino.record.severity_number,
                pino.record.severity_text.as_str()
            ),
            (17, "ERROR")
        );
        assert_eq!(hex(&pino.record.span_id), "b7ad6b7169203331");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn bad_lines_are_numbered_and_the_rest_are_kept() {
        let text = "{\"msg\":\"one\"}\n\nnot json\n[1,2]\n{\"msg\":\"x\",\"trace_id\":\"xyz\"}\n{\"msg\":\"two\",\"time\":\"yesterday\"}\n{\"msg\":\"three\"}\n";
        let (request, rejected, errors) = parse_body(text, NOW, u64::MAX);
        let records: usize = request
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        assert_eq!((records, rejected), (2, 4));
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 6]);
        assert!(errors[0].error.starts_with("invalid JSON"), "{errors:?}");
        assert_eq!(errors[1].error, "not a JSON object");
        assert!(errors[2].error.contains("not a trace id"), "{errors:?}");
        assert!(errors[3].error.contains("not a timestamp"), "{errors:?}");
        // No time: the time it was received.
        assert_eq!(
            request.resource_logs[0].scope_logs[0].log_records[0].time_unix_nano,
            NOW
        );
        let long = format!("{{\"msg\":\"{}\"}}", "x".repeat(MAX_LINE_BYTES));
        assert!(
            parse_line(&long, NOW, u64::MAX)
                .unwrap_err()
                .contains("longer than")
        );
        assert!(
            parse_line("{\"time\":1764590000}", NOW, NOW - 1)
                .unwrap_err()
                .contains("clock skew")
        );
    }
}
