//! OTLP spans to ClickHouse rows. Attribute values are stored as text: strings as they
//! are, numbers and booleans in their usual form, arrays and maps as JSON.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use std::sync::Arc;
use weft_model::{SpanKind, StatusCode, TenantId};
use weft_storage::clickhouse::SpanRow;

const SERVICE_NAME: &str = "service.name";
/// What OpenTelemetry SDKs report when no service name is configured.
pub(crate) const UNKNOWN_SERVICE: &str = "unknown_service";

/// An id of `N` bytes; ingest validated every id before publishing, so a wrong length
/// means the message did not come from ingest.
fn id<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("{what} of {} bytes on the bus", bytes.len()))
}

/// Rows for every span of one bus message. Ingest is the one place spans are validated;
/// a message that breaks its guarantees is refused whole rather than patched.
pub fn span_rows(
    tenant: TenantId,
    request: ExportTraceServiceRequest,
) -> Result<Vec<SpanRow>, String> {
    let mut rows = Vec::new();
    for resource_spans in request.resource_spans {
        let resource_attributes = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        let service_name =
            service_name(&resource_attributes).unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
        // One copy of the resource for all its spans.
        let (resource_keys, resource_values) = into_columns(resource_attributes);
        let (resource_keys, resource_values): (Arc<[String]>, Arc<[String]>) =
            (resource_keys.into(), resource_values.into());
        for scope_spans in resource_spans.scope_spans {
            let (scope_name, scope_version) = scope_spans
                .scope
                .map(|s| (s.name, s.version))
                .unwrap_or_default();
            for span in scope_spans.spans {
                let trace_id = id(&span.trace_id, "trace id")?;
                let span_id = id(&span.span_id, "span id")?;
                let parent_span_id = if span.parent_span_id.is_empty() {
                    [0; 8]
                } else {
                    id(&span.parent_span_id, "parent span id")?
                };
                let (attribute_keys, attribute_values) = into_columns(span.attributes);
                let status = span.status.unwrap_or_default();
                rows.push(SpanRow {
                    tenant_id: tenant.as_uuid(),
                    trace_id,
                    span_id,
                    parent_span_id,
                    trace_state: span.trace_state,
                    service_name: service_name.clone(),
                    name: span.name,
                    kind: SpanKind::from_otlp(span.kind) as u8,
                    start_time: u32::try_from(span.start_time_unix_nano / 1_000_000_000)
                        .unwrap_or(u32::MAX),
                    start_time_unix_nano: span.start_time_unix_nano,
                    duration_ns: span
                        .end_time_unix_nano
                        .saturating_sub(span.start_time_unix_nano),
                    status_code: StatusCode::from_otlp(status.code) as u8,
                    status_message: status.message,
                    scope_name: scope_name.clone(),
                    scope_version: scope_version.clone(),
                    attribute_keys,
                    attribute_values,
                    resource_keys: Arc::clone(&resource_keys),
                    resource_values: Arc::clone(&resource_values),
                    event_times_unix_nano: span.events.iter().map(|e| e.time_unix_nano).collect(),
                    event_names: span.events.iter().map(|e| e.name.clone()).collect(),
                    event_attributes: span
                        .events
                        .iter()
                        .map(|e| json_object(&e.attributes))
                        .collect(),
                    link_trace_ids: span
                        .links
                        .iter()
                        .map(|l| id(&l.trace_id, "link trace id"))
                        .collect::<Result<_, _>>()?,
                    link_span_ids: span
                        .links
                        .iter()
                        .map(|l| id(&l.span_id, "link span id"))
                        .collect::<Result<_, _>>()?,
                    link_attributes: span
                        .links
                        .iter()
                        .map(|l| json_object(&l.attributes))
                        .collect(),
                    sample_rate: 1.0,
                    sampled_by: String::new(),
                });
            }
        }
    }
    Ok(rows)
}

/// The `service.name` of a resource, unless it has none.
pub(crate) fn service_name(resource: &[KeyValue]) -> Option<String> {
    resource
        .iter()
        .find(|kv| kv.key == SERVICE_NAME)
        .map(|kv| text(kv.value.as_ref()))
        .filter(|name| !name.is_empty())
}

pub(crate) fn columns(attributes: &[KeyValue]) -> (Vec<String>, Vec<String>) {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .unzip()
}

/// As [`columns`], taking the attributes: keys and string values move, not copied.
pub(crate) fn into_columns(attributes: Vec<KeyValue>) -> (Vec<String>, Vec<String>) {
    let mut keys = Vec::with_capacity(attributes.len());
    let mut values = Vec::with_capacity(attributes.len());
    for kv in attributes {
        values.push(match kv.value {
            Some(AnyValue {
                value: Some(Value::StringValue(s)),
            }) => s,
            other => text(other.as_ref()),
        });
        keys.push(kv.key);
    }
    (keys, values)
}

fn json_object(attributes: &[KeyValue]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = attributes
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                serde_json::Value::String(text(kv.value.as_ref())),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub(crate) fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(Value::StringValueStrindex(i)) => i.to_string(),
        Some(other) => json(other).to_string(),
    }
}

fn json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::StringValue(s) => J::String(s.clone()),
        Value::BoolValue(b) => J::Bool(*b),
        Value::IntValue(i) => J::from(*i),
        Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Value::BytesValue(b) => J::String(hex::encode(b)),
        Value::StringValueStrindex(i) => J::from(*i),
        Value::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|v| v.value.as_ref().map_or(J::Null, json))
                .collect(),
        ),
        Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value
                            .as_ref()
                            .and_then(|v| v.value.as_ref())
                            .map_or(J::Null, json),
                    )
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans, ScopeSpans, Span, Status, span::Event,
    };

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn spans_become_rows_with_text_attributes() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue("cart".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "GET /cart".into(),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_500_000_000,
                        end_time_unix_nano: 1_700_000_001_000_000_000,
                        attributes: vec![
                            kv("http.status_code", Value::IntValue(500)),
                            kv("ok", Value::BoolValue(false)),
                            kv(
                                "tags",
                                Value::ArrayValue(ArrayValue {
                                    values: vec![AnyValue {
                                        value: Some(Value::StringValue("a".into())),
                                    }],
                                }),
                            ),
                        ],
                        events: vec![Event {
                            name: "exception".into(),
                            time_unix_nano: 5,
                            attributes: vec![kv(
                                "exception.type",
                                Value::StringValue("Boom".into()),
                            )],
                            ..Default::default()
                        }],
                        status: Some(Status {
                            code: 2,
                            message: "failed".into(),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let rows = span_rows(TenantId::random(), request).unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.service_name, "cart");
        assert_eq!(row.parent_span_id, [0; 8]);
        assert_eq!(row.start_time, 1_700_000_000);
        assert_eq!(row.duration_ns, 500_000_000);
        assert_eq!(row.attribute_values, vec!["500", "false", "[\"a\"]"]);
        assert_eq!(row.event_attributes, vec![r#"{"exception.type":"Boom"}"#]);
        assert_eq!(
            (row.status_code, row.status_message.as_str()),
            (2, "failed")
        );
    }

    #[test]
    fn a_resource_without_a_service_name_is_unknown_service() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(
            span_rows(TenantId::random(), request.clone()).unwrap()[0].service_name,
            "unknown_service"
        );
        let mut broken = request;
        broken.resource_spans[0].scope_spans[0].spans[0].span_id = vec![2; 3];
        assert_eq!(
            span_rows(TenantId::random(), broken).unwrap_err(),
            "span id of 3 bytes on the bus"
        );
    }
}
