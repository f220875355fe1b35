//! The OTLP request of each signal seen through one shape: resources holding scopes
//! holding items (spans, log records). Splitting, encoding and publishing are written
//! once against [`Telemetry`]; a signal is one impl of it, with the rules of its items
//! (`split::Item`).

use crate::export::Rejected;
use crate::split::{self, Item};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use weft_bus::Signal;
use weft_model::wire::{self, Field, Fields};
use weft_model::{SpanId, TraceId};

/// An OTLP export request of one signal.
pub trait Telemetry:
    prost::Message + Default + Sized + serde::de::DeserializeOwned + Send + 'static
{
    /// The rules of the request's items.
    type Item: Item;
    /// The answer, with `partial_success` when something was rejected.
    type Response: prost::Message + serde::Serialize + Default + 'static;
    const SIGNAL: Signal;
    /// The OTLP gRPC service that exports it.
    const SERVICE: &'static str;

    fn response(rejected: Rejected) -> Self::Response;
}

impl Telemetry for ExportTraceServiceRequest {
    type Item = Spans;
    type Response = ExportTraceServiceResponse;
    const SIGNAL: Signal = Signal::Spans;
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";

    fn response(rejected: Rejected) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse {
            partial_success: (rejected.count > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected.count as i64,
                error_message: rejected.first_error.unwrap_or_default(),
            }),
        }
    }
}

impl Telemetry for ExportLogsServiceRequest {
    type Item = Logs;
    type Response = ExportLogsServiceResponse;
    const SIGNAL: Signal = Signal::Logs;
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";

    fn response(rejected: Rejected) -> ExportLogsServiceResponse {
        ExportLogsServiceResponse {
            partial_success: (rejected.count > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected.count as i64,
                error_message: rejected.first_error.unwrap_or_default(),
            }),
        }
    }
}

/// The last value of each field an item's rules read (a repeated scalar field is, as
/// `prost` decodes it, its last occurrence).
fn last<'a>(message: &'a [u8], mut read: impl FnMut(u32, Field<'a>)) {
    // The item was validated: every field reads.
    for (number, field) in Fields::of(message).flatten() {
        read(number, field);
    }
}

fn name_of(span: &[u8]) -> &str {
    let mut name = "";
    last(span, |number, field| {
        if let (5, Field::Bytes(bytes)) = (number, field) {
            name = wire::text(bytes).unwrap_or("");
        }
    });
    name
}

/// The items of `ExportTraceServiceRequest`.
pub struct Spans;

/// What a span's rules read.
#[derive(Default)]
pub(crate) struct SpanHead<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent: &'a [u8],
    start: u64,
    end: u64,
    links: Vec<&'a [u8]>,
}

impl Item for Spans {
    const SCHEMA: &'static split::Schema = &split::SPAN;
    type Head<'a> = SpanHead<'a>;

    fn read<'a>(head: &mut SpanHead<'a>, number: u32, field: Field<'a>) {
        match (number, field) {
            (1, Field::Bytes(bytes)) => head.trace_id = bytes,
            (2, Field::Bytes(bytes)) => head.span_id = bytes,
            (4, Field::Bytes(bytes)) => head.parent = bytes,
            (7, Field::Fixed64(time)) => head.start = time,
            (8, Field::Fixed64(time)) => head.end = time,
            (13, Field::Bytes(link)) => head.links.push(link),
            _ => {}
        }
    }

    fn check(head: &SpanHead<'_>, span: &[u8], latest: u64) -> Result<Option<TraceId>, String> {
        let name = || name_of(span);
        let trace = TraceId::from_bytes(head.trace_id)
            .map_err(|e| format!("span {:?}: invalid {e}", name()))?;
        SpanId::from_bytes(head.span_id).map_err(|e| format!("span {:?}: invalid {e}", name()))?;
        if !head.parent.is_empty() {
            SpanId::from_bytes(head.parent)
                .map_err(|e| format!("span {:?}: invalid parent {e}", name()))?;
        }
        for link in &head.links {
            let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
            last(link, |number, field| match (number, field) {
                (1, Field::Bytes(bytes)) => trace_id = bytes,
                (2, Field::Bytes(bytes)) => span_id = bytes,
                _ => {}
            });
            TraceId::from_bytes(trace_id)
                .map_err(|e| format!("span {:?}: link with an invalid {e}", name()))?;
            SpanId::from_bytes(span_id)
                .map_err(|e| format!("span {:?}: link with an invalid {e}", name()))?;
        }
        let (start, end) = (head.start, head.end);
        if start == 0 {
            return Err(format!("span {:?}: start time is missing", name()));
        }
        if end < start {
            return Err(format!("span {:?}: ends before it starts", name()));
        }
        if end > latest {
            return Err(format!(
                "span {:?}: ends at {end} ns, later than the accepted clock skew allows (latest {latest} ns)",
                name()
            ));
        }
        Ok(Some(trace))
    }

    fn describe(span: &[u8]) -> String {
        format!("span {:?}", name_of(span))
    }
}

/// The items of `ExportLogsServiceRequest`.
pub struct Logs;

/// What the rules of a log record read.
#[derive(Default)]
pub(crate) struct LogHead<'a> {
    time: u64,
    observed: u64,
    trace_id: &'a [u8],
    span_id: &'a [u8],
    severity: &'a str,
}

impl<'a> LogHead<'a> {
    fn of(record: &'a [u8]) -> LogHead<'a> {
        let mut head = LogHead::default();
        last(record, |number, field| Logs::read(&mut head, number, field));
        head
    }

    /// When it happened, or else when it was observed.
    fn time(&self) -> u64 {
        if self.time != 0 {
            self.time
        } else {
            self.observed
        }
    }
}

impl Item for Logs {
    const SCHEMA: &'static split::Schema = &split::LOG_RECORD;
    type Head<'a> = LogHead<'a>;

    fn read<'a>(head: &mut LogHead<'a>, number: u32, field: Field<'a>) {
        match (number, field) {
            (1, Field::Fixed64(time)) => head.time = time,
            (11, Field::Fixed64(time)) => head.observed = time,
            (9, Field::Bytes(bytes)) => head.trace_id = bytes,
            (10, Field::Bytes(bytes)) => head.span_id = bytes,
            (3, Field::Bytes(bytes)) => head.severity = wire::text(bytes).unwrap_or(""),
            _ => {}
        }
    }

    /// A log record needs a time (its own or, as OTLP allows, the time it was observed);
    /// trace and span ids are optional, but when present they must be valid. All-zero ids
    /// mean "none", as several log bridges send them outside a span.
    fn check(head: &LogHead<'_>, _record: &[u8], latest: u64) -> Result<Option<TraceId>, String> {
        let none = |id: &[u8]| id.iter().all(|b| *b == 0);
        let trace_id = if none(head.trace_id) {
            None
        } else {
            Some(
                TraceId::from_bytes(head.trace_id)
                    .map_err(|e| format!("log record: invalid {e}"))?,
            )
        };
        if !none(head.span_id) {
            SpanId::from_bytes(head.span_id).map_err(|e| format!("log record: invalid {e}"))?;
        }
        let time = head.time();
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

    fn describe(record: &[u8]) -> String {
        let head = LogHead::of(record);
        let severity = if head.severity.is_empty() {
            "log record".to_owned()
        } else {
            format!("{} log record", head.severity)
        };
        format!("{severity} at {} ns", head.time())
    }
}

/// Counts the items of an encoded request by walking the protobuf wire format, without
/// decoding any item: `resource_*` (field 1) → `scope_*` (field 2) → items (field 2) in
/// every OTLP export request. `None` for bytes that are not such a request.
pub fn count_items(bytes: &[u8]) -> Option<u64> {
    let mut count = 0;
    for resource in wire::each(bytes, 1) {
        for scope in wire::each(resource.ok()?, 2) {
            for item in wire::each(scope.ok()?, 2) {
                item.ok()?;
                count += 1;
            }
        }
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
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
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource::default()),
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
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span(4)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn items_are_counted_without_decoding() {
        let encoded = request().encode_to_vec();
        assert_eq!(count_items(&encoded), Some(4));
        assert_eq!(count_items(&[]), Some(0));
        assert_eq!(count_items(&[0x0a, 0x05, 0x01]), None);
        assert_eq!(count_items(b"not protobuf at all"), None);
    }

    #[test]
    fn an_items_rules_read_the_last_value_of_a_field() {
        let mut encoded = span(1).encode_to_vec();
        // A second `name`, then a second `end_time_unix_nano` before the start.
        encoded.extend_from_slice(&[0x2a, 0x01, b'x', 0x41]);
        encoded.extend_from_slice(&5u64.to_le_bytes());
        assert_eq!(Spans::describe(&encoded), "span \"x\"");
        let check = |span: &[u8]| {
            let mut head = SpanHead::default();
            last(span, |number, field| Spans::read(&mut head, number, field));
            Spans::check(&head, span, u64::MAX)
        };
        assert_eq!(
            check(&encoded),
            Err("span \"x\": ends before it starts".to_owned())
        );
        assert!(check(&span(1).encode_to_vec()).is_ok());
    }
}
