//! A stored trace as an OTLP `ExportTraceServiceRequest`, for the trace page's download:
//! spans grouped by resource and scope as an SDK sends them, so the file can be sent to
//! any OTLP endpoint again or opened by other tools.
//!
//! Weft stores attribute values as text (see `docs/architecture.md`), so every attribute
//! comes back as a string value.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use weft_storage::clickhouse::SpanRow;

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn pairs(keys: &[String], values: &[String]) -> Vec<KeyValue> {
    keys.iter().zip(values).map(|(k, v)| string(k, v)).collect()
}

/// Event and link attributes are stored as one JSON object of strings each.
fn json_attributes(text: Option<&String>) -> Vec<KeyValue> {
    let Some(Ok(serde_json::Value::Object(map))) =
        text.map(|t| serde_json::from_str::<serde_json::Value>(t))
    else {
        return Vec::new();
    };
    map.iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(s) => string(key, s),
            other => string(key, &other.to_string()),
        })
        .collect()
}

fn span(row: &SpanRow) -> Span {
    Span {
        trace_id: row.trace_id.to_vec(),
        span_id: row.span_id.to_vec(),
        trace_state: row.trace_state.clone(),
        parent_span_id: if row.parent_span_id == [0; 8] {
            Vec::new()
        } else {
            row.parent_span_id.to_vec()
        },
        name: row.name.clone(),
        kind: i32::from(row.kind),
        start_time_unix_nano: row.start_time_unix_nano,
        end_time_unix_nano: row.start_time_unix_nano.saturating_add(row.duration_ns),
        attributes: pairs(&row.attribute_keys, &row.attribute_values),
        events: row
            .event_names
            .iter()
            .enumerate()
            .map(|(i, name)| Event {
                time_unix_nano: row.event_times_unix_nano.get(i).copied().unwrap_or(0),
                name: name.clone(),
                attributes: json_attributes(row.event_attributes.get(i)),
                ..Default::default()
            })
            .collect(),
        links: row
            .link_trace_ids
            .iter()
            .enumerate()
            .map(|(i, trace_id)| Link {
                trace_id: trace_id.to_vec(),
                span_id: row
                    .link_span_ids
                    .get(i)
                    .map(|s| s.to_vec())
                    .unwrap_or_default(),
                attributes: json_attributes(row.link_attributes.get(i)),
                ..Default::default()
            })
            .collect(),
        status: Some(Status {
            message: row.status_message.clone(),
            code: i32::from(row.status_code),
        }),
        ..Default::default()
    }
}

/// A resource as stored: its attribute keys and values.
type ResourceKey<'a> = (&'a [String], &'a [String]);

/// Every span once (a span stored twice by a redelivery is written once), grouped by
/// resource and then scope in the order they first appear.
pub fn export_request(rows: &[SpanRow]) -> ExportTraceServiceRequest {
    let mut seen = std::collections::HashSet::new();
    let mut resources: Vec<(ResourceKey, ResourceSpans)> = Vec::new();
    for row in rows.iter().filter(|row| seen.insert(row.span_id)) {
        let resource_key = (&*row.resource_keys, &*row.resource_values);
        let index = match resources.iter().position(|(key, _)| *key == resource_key) {
            Some(index) => index,
            None => {
                resources.push((
                    resource_key,
                    ResourceSpans {
                        resource: Some(Resource {
                            attributes: pairs(&row.resource_keys, &row.resource_values),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ));
                resources.len() - 1
            }
        };
        let scopes = &mut resources[index].1.scope_spans;
        let scope = match scopes.iter().position(|s| {
            s.scope
                .as_ref()
                .is_some_and(|s| s.name == row.scope_name && s.version == row.scope_version)
        }) {
            Some(scope) => scope,
            None => {
                scopes.push(ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: row.scope_name.clone(),
                        version: row.scope_version.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                scopes.len() - 1
            }
        };
        scopes[scope].spans.push(span(row));
    }
    ExportTraceServiceRequest {
        resource_spans: resources.into_iter().map(|(_, r)| r).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u8, service: &str, scope: &str) -> SpanRow {
        SpanRow {
            tenant_id: uuid::Uuid::nil(),
            trace_id: [9; 16],
            span_id: [id; 8],
            parent_span_id: if id == 1 { [0; 8] } else { [1; 8] },
            trace_state: String::new(),
            service_name: service.into(),
            name: format!("op-{id}"),
            kind: 3,
            start_time: 1,
            start_time_unix_nano: 1_000_000_000,
            duration_ns: 5,
            status_code: 2,
            status_message: "boom".into(),
            scope_name: scope.into(),
            scope_version: "1.0".into(),
            attribute_keys: vec!["http.status_code".into()],
            attribute_values: vec!["502".into()],
            resource_keys: vec!["service.name".to_owned()].into(),
            resource_values: vec![service.to_owned()].into(),
            event_times_unix_nano: vec![1_000_000_002],
            event_names: vec!["exception".into()],
            event_attributes: vec![r#"{"exception.type":"Boom"}"#.into()],
            link_trace_ids: vec![[7; 16]],
            link_span_ids: vec![[8; 8]],
            link_attributes: vec!["{}".into()],
            sample_rate: 1.0,
            sampled_by: String::new(),
        }
    }

    #[test]
    fn spans_are_grouped_by_resource_and_scope_and_read_back_as_otlp_json() {
        let rows = [
            row(1, "checkout", "http"),
            row(2, "checkout", "db"),
            row(3, "payment", "http"),
            row(2, "checkout", "db"),
        ];
        let request = export_request(&rows);
        assert_eq!(request.resource_spans.len(), 2);
        assert_eq!(request.resource_spans[0].scope_spans.len(), 2);
        let json = serde_json::to_value(&request).unwrap();
        let first = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(first["spanId"], "0101010101010101");
        assert_eq!(first["parentSpanId"], "");
        assert_eq!(first["endTimeUnixNano"], "1000000005");
        assert_eq!(first["status"]["code"], 2);
        assert_eq!(first["events"][0]["attributes"][0]["key"], "exception.type");
        assert_eq!(first["links"][0]["traceId"], "07".repeat(16));
        let back: ExportTraceServiceRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
        let spans: usize = back
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        assert_eq!(spans, 3);
    }
}
