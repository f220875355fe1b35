//! The OTLP request of each signal seen through one shape: resources holding scopes
//! holding items (spans, log records). Splitting, encoding and publishing are written
//! once against [`Telemetry`]; a signal is one impl of it.

use crate::export::Rejected;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use weft_bus::Signal;
use weft_model::{SpanId, TraceId};

/// Items of one resource and scope, with both (and their schema URLs) kept whole so a
/// regrouped request is again a complete OTLP request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group<I> {
    pub resource: Option<Resource>,
    pub resource_schema_url: String,
    pub scope: Option<InstrumentationScope>,
    pub scope_schema_url: String,
    pub items: Vec<I>,
}

impl<I> Group<I> {
    /// The same resource and scope with other items.
    pub fn with_items<J>(&self, items: Vec<J>) -> Group<J> {
        Group {
            resource: self.resource.clone(),
            resource_schema_url: self.resource_schema_url.clone(),
            scope: self.scope.clone(),
            scope_schema_url: self.scope_schema_url.clone(),
            items,
        }
    }
}

/// An OTLP export request of one signal.
pub trait Telemetry:
    prost::Message + Default + Sized + serde::de::DeserializeOwned + Send + 'static
{
    type Item: prost::Message + Clone;
    /// The answer, with `partial_success` when something was rejected.
    type Response: prost::Message + serde::Serialize;
    const SIGNAL: Signal;

    fn response(rejected: Rejected) -> Self::Response;

    fn into_groups(self) -> Vec<Group<Self::Item>>;
    /// Rebuilds a request; consecutive groups of one resource share its entry.
    fn from_groups(groups: Vec<Group<Self::Item>>) -> Self;
    /// The trace id that decides the item's partition (`None`: the item belongs to no
    /// trace and may go to any partition), or why the item cannot be stored. No time of
    /// an item may be later than `latest` (Unix nanoseconds).
    fn check(item: &Self::Item, latest: u64) -> Result<Option<TraceId>, String>;
    /// A short name of the item for error messages.
    fn describe(item: &Self::Item) -> String;
    fn item_count(&self) -> u64;
}

impl Telemetry for ExportTraceServiceRequest {
    type Item = Span;
    type Response = ExportTraceServiceResponse;
    const SIGNAL: Signal = Signal::Spans;

    fn response(rejected: Rejected) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse {
            partial_success: (rejected.count > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected.count as i64,
                error_message: rejected.first_error.unwrap_or_default(),
            }),
        }
    }

    fn into_groups(self) -> Vec<Group<Span>> {
        let mut groups = Vec::new();
        for resource_spans in self.resource_spans {
            for scope_spans in resource_spans.scope_spans {
                groups.push(Group {
                    resource: resource_spans.resource.clone(),
                    resource_schema_url: resource_spans.schema_url.clone(),
                    scope: scope_spans.scope,
                    scope_schema_url: scope_spans.schema_url,
                    items: scope_spans.spans,
                });
            }
        }
        groups
    }

    fn from_groups(groups: Vec<Group<Span>>) -> Self {
        let mut request = ExportTraceServiceRequest::default();
        for group in groups {
            let scope = ScopeSpans {
                scope: group.scope,
                spans: group.items,
                schema_url: group.scope_schema_url,
            };
            match request.resource_spans.last_mut() {
                Some(last)
                    if last.resource == group.resource
                        && last.schema_url == group.resource_schema_url =>
                {
                    last.scope_spans.push(scope);
                }
                _ => request.resource_spans.push(ResourceSpans {
                    resource: group.resource,
                    scope_spans: vec![scope],
                    schema_url: group.resource_schema_url,
                }),
            }
        }
        request
    }

    fn check(span: &Span, latest: u64) -> Result<Option<TraceId>, String> {
        let trace_id = TraceId::from_bytes(&span.trace_id)
            .map_err(|e| format!("span {:?}: invalid {e}", span.name))?;
        SpanId::from_bytes(&span.span_id)
            .map_err(|e| format!("span {:?}: invalid {e}", span.name))?;
        if !span.parent_span_id.is_empty() {
            SpanId::from_bytes(&span.parent_span_id)
                .map_err(|e| format!("span {:?}: invalid parent {e}", span.name))?;
        }
        for link in &span.links {
            TraceId::from_bytes(&link.trace_id)
                .map_err(|e| format!("span {:?}: link with an invalid {e}", span.name))?;
            SpanId::from_bytes(&link.span_id)
                .map_err(|e| format!("span {:?}: link with an invalid {e}", span.name))?;
        }
        if span.start_time_unix_nano == 0 {
            return Err(format!("span {:?}: start time is missing", span.name));
        }
        if span.end_time_unix_nano < span.start_time_unix_nano {
            return Err(format!("span {:?}: ends before it starts", span.name));
        }
        if span.end_time_unix_nano > latest {
            return Err(format!(
                "span {:?}: ends at {} ns, later than the accepted clock skew allows (latest {latest} ns)",
                span.name, span.end_time_unix_nano
            ));
        }
        Ok(Some(trace_id))
    }

    fn describe(span: &Span) -> String {
        format!("span {:?}", span.name)
    }

    fn item_count(&self) -> u64 {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum()
    }
}

impl Telemetry for ExportLogsServiceRequest {
    type Item = LogRecord;
    type Response = ExportLogsServiceResponse;
    const SIGNAL: Signal = Signal::Logs;

    fn response(rejected: Rejected) -> ExportLogsServiceResponse {
        ExportLogsServiceResponse {
            partial_success: (rejected.count > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected.count as i64,
                error_message: rejected.first_error.unwrap_or_default(),
            }),
        }
    }

    fn into_groups(self) -> Vec<Group<LogRecord>> {
        let mut groups = Vec::new();
        for resource_logs in self.resource_logs {
            for scope_logs in resource_logs.scope_logs {
                groups.push(Group {
                    resource: resource_logs.resource.clone(),
                    resource_schema_url: resource_logs.schema_url.clone(),
                    scope: scope_logs.scope,
                    scope_schema_url: scope_logs.schema_url,
                    items: scope_logs.log_records,
                });
            }
        }
        groups
    }

    fn from_groups(groups: Vec<Group<LogRecord>>) -> Self {
        let mut request = ExportLogsServiceRequest::default();
        for group in groups {
            let scope = ScopeLogs {
                scope: group.scope,
                log_records: group.items,
                schema_url: group.scope_schema_url,
            };
            match request.resource_logs.last_mut() {
                Some(last)
                    if last.resource == group.resource
                        && last.schema_url == group.resource_schema_url =>
                {
                    last.scope_logs.push(scope);
                }
                _ => request.resource_logs.push(ResourceLogs {
                    resource: group.resource,
                    scope_logs: vec![scope],
                    schema_url: group.resource_schema_url,
                }),
            }
        }
        request
    }

    /// A log record needs a time (its own or, as OTLP allows, the time it was observed);
    /// trace and span ids are optional, but when present they must be valid. All-zero ids
    /// mean "none", as several log bridges send them outside a span.
    fn check(record: &LogRecord, latest: u64) -> Result<Option<TraceId>, String> {
        let trace_id = if record.trace_id.is_empty() || record.trace_id.iter().all(|b| *b == 0) {
            None
        } else {
            Some(
                TraceId::from_bytes(&record.trace_id)
                    .map_err(|e| format!("log record: invalid {e}"))?,
            )
        };
        if !record.span_id.is_empty() && record.span_id.iter().any(|b| *b != 0) {
            SpanId::from_bytes(&record.span_id).map_err(|e| format!("log record: invalid {e}"))?;
        }
        let time = log_time(record);
        if time == 0 {
            return Err("log record: neither time nor observed time is set".to_owned());
        }
        if time > latest {
            return Err(format!(
                "log record: time {time} ns is later than the accepted clock skew allows (latest {latest} ns)"
            ));
        }
        Ok(trace_id)
    }

    fn describe(record: &LogRecord) -> String {
        let severity = if record.severity_text.is_empty() {
            "log record".to_owned()
        } else {
            format!("{} log record", record.severity_text)
        };
        format!("{severity} at {} ns", log_time(record))
    }

    fn item_count(&self) -> u64 {
        self.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len() as u64)
            .sum()
    }
}

/// A log record's time: when it happened, or else when it was observed.
pub fn log_time(record: &LogRecord) -> u64 {
    if record.time_unix_nano != 0 {
        record.time_unix_nano
    } else {
        record.observed_time_unix_nano
    }
}

/// Counts the items of an encoded request by walking the protobuf wire format, without
/// decoding any item: `resource_*` (field 1) → `scope_*` (field 2) → items (field 2) in
/// every OTLP export request. `None` for bytes that are not such a request.
pub fn count_items(mut bytes: &[u8]) -> Option<u64> {
    let mut count = 0;
    for_each_field(&mut bytes, |field, resource| {
        if field != 1 {
            return Some(());
        }
        let mut resource = resource;
        for_each_field(&mut resource, |field, scope| {
            if field != 2 {
                return Some(());
            }
            let mut scope = scope;
            for_each_field(&mut scope, |field, _| {
                count += u64::from(field == 2);
                Some(())
            })
        })
    })?;
    Some(count)
}

/// Calls `visit` with each length-delimited field of a message and skips the others.
fn for_each_field<'a>(
    bytes: &mut &'a [u8],
    mut visit: impl FnMut(u32, &'a [u8]) -> Option<()>,
) -> Option<()> {
    use prost::encoding::{WireType, decode_varint};
    while !bytes.is_empty() {
        let key = decode_varint(bytes).ok()?;
        let field = u32::try_from(key >> 3).ok()?;
        match WireType::try_from(key & 7).ok()? {
            WireType::Varint => {
                decode_varint(bytes).ok()?;
            }
            WireType::SixtyFourBit => *bytes = bytes.get(8..)?,
            WireType::ThirtyTwoBit => *bytes = bytes.get(4..)?,
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(bytes).ok()?).ok()?;
                let value = bytes.get(..len)?;
                *bytes = &bytes[len..];
                visit(field, value)?;
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn span(id: u8) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            name: format!("s{id}"),
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            ..Default::default()
        }
    }

    fn request() -> ExportTraceServiceRequest {
        let resource = |name: &str| Resource {
            attributes: vec![opentelemetry_proto::tonic::common::v1::KeyValue {
                key: "service.name".into(),
                value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                    value: Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                            name.into(),
                        ),
                    ),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(resource("a")),
                    scope_spans: vec![
                        ScopeSpans {
                            spans: vec![span(1), span(2)],
                            ..Default::default()
                        },
                        ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: "lib".into(),
                                ..Default::default()
                            }),
                            spans: vec![span(3)],
                            ..Default::default()
                        },
                    ],
                    schema_url: "s".into(),
                },
                ResourceSpans {
                    resource: Some(resource("b")),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span(4)],
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                },
            ],
        }
    }

    #[test]
    fn groups_round_trip_to_the_same_request() {
        let original = request();
        let rebuilt = ExportTraceServiceRequest::from_groups(original.clone().into_groups());
        assert_eq!(rebuilt, original);
    }

    #[test]
    fn items_are_counted_without_decoding() {
        let encoded = request().encode_to_vec();
        assert_eq!(count_items(&encoded), Some(4));
        assert_eq!(count_items(&[]), Some(0));
        assert_eq!(count_items(&[0x0a, 0x05, 0x01]), None);
        assert_eq!(count_items(b"not protobuf at all"), None);
    }
}
