//! OTLP trace messages (and, in `logs`, log messages) straight to packed rows. Decoding a message into `prost`'s owned
//! structs allocates every string of every span, only for the sampler to copy them into
//! rows and free them; here the protobuf is read in place and each span's RowBinary row
//! is written from the message's bytes, one allocation a span (and one a resource).
//!
//! The rows are the ones `rows::span_rows` makes from the decoded message, packed: the
//! tests check that byte for byte. Ingest validated every field of every message on the
//! bus against the OTLP schema (`weft-ingest`'s `split.rs`), so an encoding it cannot
//! have let through is refused as invalid.

use crate::rows::UNKNOWN_SERVICE;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use prost::Message as _;
use std::fmt::Write as _;
use weft_model::wire::{Field, Fields, each, invalid, text as string};
use weft_model::{SpanKind, StatusCode, TenantId};
use weft_storage::clickhouse::{EncodedSpan, PackedResource, PackedSpan, rowbinary};

pub mod logs;

/// An attribute's value as text: a string value where it lies in the message, any other
/// written into a buffer shared by the span's attributes.
#[derive(Clone)]
enum Shown<'a> {
    Borrowed(&'a str),
    Written(std::ops::Range<usize>),
}

impl Shown<'_> {
    fn as_str<'b>(&'b self, text: &'b str) -> &'b str {
        match self {
            Shown::Borrowed(value) => value,
            Shown::Written(range) => &text[range.clone()],
        }
    }
}

/// A `KeyValue`: its key and its value as text (as `rows::text`), a value that is not a
/// string appended to `text`.
fn attribute<'a>(message: &'a [u8], text: &mut String) -> Result<(&'a str, Shown<'a>), String> {
    let mut key = "";
    let mut value: Option<&[u8]> = None;
    for field in Fields::of(message) {
        match field? {
            (1, Field::Bytes(bytes)) => key = string(bytes)?,
            (2, Field::Bytes(bytes)) => value = Some(bytes),
            (1 | 2, _) => return Err(invalid("wrong wire type")),
            _ => {}
        }
    }
    let Some(value) = value else {
        return Ok((key, Shown::Borrowed("")));
    };
    Ok((key, any_value(value, text)?))
}

/// An `AnyValue` as text (as `rows::text`): a string value where it lies in the message,
/// any other appended to `text`.
fn any_value<'a>(value: &'a [u8], text: &mut String) -> Result<Shown<'a>, String> {
    let mut last = None;
    for field in Fields::of(value) {
        let (number, field) = field?;
        if (1..=8).contains(&number) {
            last = Some((number, field));
        }
    }
    // Strings as they are, numbers and booleans in their usual form, bytes as hex,
    // arrays and maps as JSON (through `prost`: they are rare).
    let start = text.len();
    match last {
        None => {}
        Some((1, Field::Bytes(bytes))) => return Ok(Shown::Borrowed(string(bytes)?)),
        Some((2, Field::Varint(b))) => text.push_str(if b != 0 { "true" } else { "false" }),
        Some((3, Field::Varint(i))) => write!(text, "{}", i as i64).expect("to a string"),
        Some((4, Field::Fixed64(bits))) => {
            write!(text, "{}", f64::from_bits(bits)).expect("to a string")
        }
        Some((7, Field::Bytes(bytes))) => text.push_str(&hex::encode(bytes)),
        Some((8, Field::Varint(i))) => write!(text, "{}", i as i32).expect("to a string"),
        Some((5 | 6, Field::Bytes(_))) => {
            let value = AnyValue::decode(value).map_err(|e| invalid(&e.to_string()))?;
            text.push_str(&crate::rows::text(Some(&value)));
        }
        Some(_) => return Err(invalid("wrong wire type")),
    }
    Ok(Shown::Written(start..text.len()))
}

/// A `KeyValue`: its key, and its value written as text into `text` (cleared first).
fn key_value<'a>(message: &'a [u8], text: &mut String) -> Result<&'a str, String> {
    text.clear();
    let (key, value) = attribute(message, text)?;
    if let Shown::Borrowed(value) = value {
        text.push_str(value);
    }
    Ok(key)
}

/// Attributes as one JSON object of text values (events' and links' attributes).
fn json_object(message: &[u8], number: u32) -> Result<String, String> {
    let mut map = serde_json::Map::new();
    let mut text = String::new();
    for attribute in each(message, number) {
        let key = key_value(attribute?, &mut text)?;
        map.insert(key.to_owned(), serde_json::Value::String(text.clone()));
    }
    Ok(serde_json::Value::Object(map).to_string())
}

fn id<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("{what} of {} bytes on the bus", bytes.len()))
}

/// Packed rows of every span of one bus message (`ExportTraceServiceRequest`).
pub fn pack_request(tenant: TenantId, message: &[u8]) -> Result<Vec<PackedSpan>, String> {
    let mut spans = Vec::new();
    let mut text = String::new();
    let mut scratch = Scratch::default();
    for resource_spans in each(message, 1) {
        let resource_spans = resource_spans?;
        let resource = resource(resource_spans, &mut text)?;
        for scope_spans in each(resource_spans, 2) {
            let scope_spans = scope_spans?;
            let scope = scope(scope_spans)?;
            for span in each(scope_spans, 2) {
                spans.push(pack_span(tenant, span?, &resource, scope, &mut scratch)?);
            }
        }
    }
    Ok(spans)
}

/// The name and version of a `ScopeSpans`' (or `ScopeLogs`') scope, merged as `prost`
/// merges every `scope` field.
fn scope(scope_items: &[u8]) -> Result<(&str, &str), String> {
    let (mut name, mut version) = ("", "");
    for scope in each(scope_items, 1) {
        for field in Fields::of(scope?) {
            match field? {
                (1, Field::Bytes(bytes)) => name = string(bytes)?,
                (2, Field::Bytes(bytes)) => version = string(bytes)?,
                _ => {}
            }
        }
    }
    Ok((name, version))
}

/// A `ResourceSpans`' (or `ResourceLogs`') resource (every `resource` field, merged as `prost` merges them).
fn resource(resource_spans: &[u8], text: &mut String) -> Result<PackedResource, String> {
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for resource in each(resource_spans, 1) {
        for attribute in each(resource?, 1) {
            let key = key_value(attribute?, text)?;
            keys.push(key.to_owned());
            values.push(text.clone());
        }
    }
    let service = keys
        .iter()
        .position(|k| k == "service.name")
        .map(|i| values[i].as_str())
        .filter(|name| !name.is_empty())
        .unwrap_or(UNKNOWN_SERVICE);
    Ok(PackedResource::new(service, &keys, &values))
}

/// What one pass over a `Span` finds before its row is written in column order.
#[derive(Default)]
struct SpanHead<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent_span_id: &'a [u8],
    trace_state: &'a str,
    name: &'a str,
    kind: i32,
    start: u64,
    end: u64,
    status_code: i32,
    status_message: &'a str,
}

/// The repeated parts of a span found in that pass, kept from span to span so their
/// buffers are allocated once a message.
#[derive(Default)]
struct Scratch<'a> {
    attributes: Vec<(&'a str, Shown<'a>)>,
    /// Attribute values that are not strings, as text.
    text: String,
    events: Vec<&'a [u8]>,
    links: Vec<&'a [u8]>,
}

fn head<'a>(span: &'a [u8], scratch: &mut Scratch<'a>) -> Result<SpanHead<'a>, String> {
    scratch.attributes.clear();
    scratch.text.clear();
    scratch.events.clear();
    scratch.links.clear();
    let mut head = SpanHead::default();
    for field in Fields::of(span) {
        match field? {
            (1, Field::Bytes(bytes)) => head.trace_id = bytes,
            (2, Field::Bytes(bytes)) => head.span_id = bytes,
            (3, Field::Bytes(bytes)) => head.trace_state = string(bytes)?,
            (4, Field::Bytes(bytes)) => head.parent_span_id = bytes,
            (5, Field::Bytes(bytes)) => head.name = string(bytes)?,
            (6, Field::Varint(kind)) => head.kind = kind as i32,
            (7, Field::Fixed64(start)) => head.start = start,
            (8, Field::Fixed64(end)) => head.end = end,
            (9, Field::Bytes(bytes)) => {
                let attribute = attribute(bytes, &mut scratch.text)?;
                scratch.attributes.push(attribute);
            }
            (11, Field::Bytes(bytes)) => scratch.events.push(bytes),
            (13, Field::Bytes(bytes)) => scratch.links.push(bytes),
            (15, Field::Bytes(status)) => {
                for field in Fields::of(status) {
                    match field? {
                        (2, Field::Bytes(bytes)) => head.status_message = string(bytes)?,
                        (3, Field::Varint(code)) => head.status_code = code as i32,
                        _ => {}
                    }
                }
            }
            (9 | 11 | 13, _) => return Err(invalid("wrong wire type")),
            _ => {}
        }
    }
    Ok(head)
}

/// An event's time, name and attributes (as one JSON object).
fn event(event: &[u8]) -> Result<(u64, &str, String), String> {
    let (mut time, mut name) = (0, "");
    for field in Fields::of(event) {
        match field? {
            (1, Field::Fixed64(t)) => time = t,
            (2, Field::Bytes(bytes)) => name = string(bytes)?,
            _ => {}
        }
    }
    Ok((time, name, json_object(event, 3)?))
}

/// A link's trace and span ids (the last of each, empty if none) and attributes.
fn link(link: &[u8]) -> Result<([u8; 16], [u8; 8], String), String> {
    let (mut trace, mut span): (&[u8], &[u8]) = (&[], &[]);
    for field in Fields::of(link) {
        match field? {
            (1, Field::Bytes(bytes)) => trace = bytes,
            (2, Field::Bytes(bytes)) => span = bytes,
            _ => {}
        }
    }
    Ok((
        id(trace, "link trace id")?,
        id(span, "link span id")?,
        json_object(link, 4)?,
    ))
}

fn pack_span<'a>(
    tenant: TenantId,
    span: &'a [u8],
    resource: &PackedResource,
    (scope_name, scope_version): (&str, &str),
    scratch: &mut Scratch<'a>,
) -> Result<PackedSpan, String> {
    let head = head(span, scratch)?;
    let trace_id: [u8; 16] = id(head.trace_id, "trace id")?;
    let span_id: [u8; 8] = id(head.span_id, "span id")?;
    let parent_span_id: [u8; 8] = if head.parent_span_id.is_empty() {
        [0; 8]
    } else {
        id(head.parent_span_id, "parent span id")?
    };
    let service = resource.service();
    // The row's size is about the message's: ids, texts and lengths.
    let mut row = Vec::with_capacity(span.len() + service.len() + scope_name.len() + 64);
    let (high, low) = tenant.as_uuid().as_u64_pair();
    row.extend_from_slice(&high.to_le_bytes());
    row.extend_from_slice(&low.to_le_bytes());
    row.extend_from_slice(&trace_id);
    row.extend_from_slice(&span_id);
    row.extend_from_slice(&parent_span_id);
    rowbinary::put_str(&mut row, head.trace_state);
    rowbinary::put_str(&mut row, service);
    rowbinary::put_leb128(&mut row, head.name.len() as u64);
    let name_at = (row.len() as u32, head.name.len() as u32);
    row.extend_from_slice(head.name.as_bytes());
    let kind = SpanKind::from_otlp(head.kind) as u8;
    row.push(kind);
    let start_time = u32::try_from(head.start / 1_000_000_000).unwrap_or(u32::MAX);
    row.extend_from_slice(&start_time.to_le_bytes());
    row.extend_from_slice(&head.start.to_le_bytes());
    let duration_ns = head.end.saturating_sub(head.start);
    row.extend_from_slice(&duration_ns.to_le_bytes());
    let status_code = StatusCode::from_otlp(head.status_code) as u8;
    row.push(status_code);
    rowbinary::put_str(&mut row, head.status_message);
    rowbinary::put_str(&mut row, scope_name);
    rowbinary::put_str(&mut row, scope_version);
    let attributes_at = row.len() as u32;
    let attributes = &scratch.attributes;
    rowbinary::put_leb128(&mut row, attributes.len() as u64);
    for (key, _) in attributes {
        rowbinary::put_str(&mut row, key);
    }
    rowbinary::put_leb128(&mut row, attributes.len() as u64);
    for (_, value) in attributes {
        rowbinary::put_str(&mut row, value.as_str(&scratch.text));
    }
    let tail_at = row.len() as u32;
    let events = scratch
        .events
        .iter()
        .map(|e| event(e))
        .collect::<Result<Vec<_>, _>>()?;
    rowbinary::put_leb128(&mut row, events.len() as u64);
    for (time, _, _) in &events {
        row.extend_from_slice(&time.to_le_bytes());
    }
    rowbinary::put_leb128(&mut row, events.len() as u64);
    for (_, name, _) in &events {
        rowbinary::put_str(&mut row, name);
    }
    rowbinary::put_leb128(&mut row, events.len() as u64);
    for (_, _, attributes) in &events {
        rowbinary::put_str(&mut row, attributes);
    }
    let links = scratch
        .links
        .iter()
        .map(|l| link(l))
        .collect::<Result<Vec<_>, _>>()?;
    rowbinary::put_leb128(&mut row, links.len() as u64);
    for (trace, _, _) in &links {
        row.extend_from_slice(trace);
    }
    rowbinary::put_leb128(&mut row, links.len() as u64);
    for (_, span, _) in &links {
        row.extend_from_slice(span);
    }
    rowbinary::put_leb128(&mut row, links.len() as u64);
    for (_, _, attributes) in &links {
        rowbinary::put_str(&mut row, attributes);
    }
    Ok(PackedSpan::from_encoded(
        EncodedSpan {
            row,
            name_at,
            attributes_at,
            tail_at,
            start_time_unix_nano: head.start,
            duration_ns,
            kind,
            status_code,
        },
        resource,
    ))
}

/// The rows of a message decoded by `prost`: what the walker above must give, packed.
#[cfg(test)]
pub(crate) mod decoded {
    use super::id;
    use crate::rows::{UNKNOWN_SERVICE, service_name, text};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use std::sync::Arc;
    use weft_model::{SpanKind, StatusCode, TenantId};

    use weft_storage::clickhouse::SpanRow;

    /// Rows for every span of one bus message. Ingest is the one place spans are validated;
    /// a message that breaks its guarantees is refused whole rather than patched. The sampler
    /// reads messages in place (`wire.rs`); these rows are what its tests hold it to.
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
                        event_times_unix_nano: span
                            .events
                            .iter()
                            .map(|e| e.time_unix_nano)
                            .collect(),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans, ScopeSpans, Span, Status, span::Event, span::Link,
    };

    fn kv(key: &str, value: Option<Value>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.map(|value| AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    /// Rows as the decoded message gives them, packed, as bytes.
    fn oracle(tenant: TenantId, request: &ExportTraceServiceRequest) -> Vec<Vec<u8>> {
        decoded::span_rows(tenant, request.clone())
            .unwrap()
            .iter()
            .map(|row| {
                let mut bytes = Vec::new();
                PackedSpan::from_row(row).write_to(&mut bytes);
                bytes
            })
            .collect()
    }

    fn packed(tenant: TenantId, request: &ExportTraceServiceRequest) -> Vec<Vec<u8>> {
        pack_request(tenant, &request.encode_to_vec())
            .unwrap()
            .iter()
            .map(|span| {
                let mut bytes = Vec::new();
                span.write_to(&mut bytes);
                bytes
            })
            .collect()
    }

    fn every_kind_of_span() -> ExportTraceServiceRequest {
        let values = vec![
            kv("s", Some(Value::StringValue("text ✓".into()))),
            kv("b", Some(Value::BoolValue(true))),
            kv("i", Some(Value::IntValue(-42))),
            kv("d", Some(Value::DoubleValue(0.1))),
            kv("whole", Some(Value::DoubleValue(3.0))),
            kv("bytes", Some(Value::BytesValue(vec![0xde, 0xad]))),
            kv(
                "list",
                Some(Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::IntValue(1)),
                    }],
                })),
            ),
            kv(
                "map",
                Some(Value::KvlistValue(KeyValueList {
                    values: vec![kv("k", Some(Value::StringValue("v".into())))],
                })),
            ),
            kv("none", None),
            kv("index", Some(Value::StringValueStrindex(7))),
        ];
        let full = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            trace_state: "k=v".into(),
            name: "GET /cart".into(),
            kind: 3,
            start_time_unix_nano: 1_700_000_000_123_456_789,
            end_time_unix_nano: 1_700_000_001_000_000_000,
            attributes: values.clone(),
            events: vec![
                Event {
                    time_unix_nano: 5,
                    name: "exception".into(),
                    attributes: values.clone(),
                    ..Default::default()
                },
                Event::default(),
            ],
            links: vec![Link {
                trace_id: vec![4; 16],
                span_id: vec![5; 8],
                attributes: vec![kv("why", Some(Value::StringValue("retry".into())))],
                ..Default::default()
            }],
            status: Some(Status {
                code: 2,
                message: "failed \"badly\"".into(),
            }),
            flags: 1,
            ..Default::default()
        };
        let bare = Span {
            trace_id: vec![1; 16],
            span_id: vec![6; 8],
            end_time_unix_nano: 0,
            start_time_unix_nano: 10,
            kind: 99,
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![
                            kv("service.name", Some(Value::StringValue("cart".into()))),
                            kv("host.name", Some(Value::StringValue("node-1".into()))),
                        ],
                        ..Default::default()
                    }),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: "http".into(),
                                version: "1.0".into(),
                                ..Default::default()
                            }),
                            spans: vec![full, bare.clone()],
                            ..Default::default()
                        },
                        ScopeSpans {
                            spans: vec![bare.clone()],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                // No resource at all, and one whose service name is empty.
                ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![bare.clone()],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv(
                            "service.name",
                            Some(Value::StringValue(String::new())),
                        )],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![bare],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn rows_are_those_of_the_decoded_message_byte_for_byte() {
        let tenant = TenantId::random();
        let request = every_kind_of_span();
        let expected = oracle(tenant, &request);
        assert_eq!(expected.len(), 5);
        assert_eq!(packed(tenant, &request), expected);
        let spans = pack_request(tenant, &request.encode_to_vec()).unwrap();
        assert_eq!(spans[0].service_name(), "cart");
        assert_eq!(spans[3].service_name(), "unknown_service");
        assert_eq!(spans[4].service_name(), "unknown_service");
        assert_eq!(spans[0].name(), "GET /cart");
        assert_eq!(spans[0].duration_ns(), 876_543_211);
    }

    #[test]
    fn the_load_generators_traffic_packs_as_decoded() {
        let tenant = TenantId::random();
        let mut workload =
            weft_loadtest::workload::Workload::new(&weft_loadtest::config::WorkloadConfig {
                spans_per_trace: 20,
                extra_attributes: 3,
                error_share: 0.3,
                slow_share: 0.1,
                seed: 7,
                environment: "test",
            });
        let weft_loadtest::workload::Request::Traces(request) = workload.batch(10).request else {
            panic!("a traces batch");
        };
        assert!(request.resource_spans.len() > 1);
        assert_eq!(packed(tenant, &request), oracle(tenant, &request));
    }

    #[test]
    fn broken_messages_are_refused_with_the_reason() {
        let tenant = TenantId::random();
        let mut request = every_kind_of_span();
        request.resource_spans[0].scope_spans[0].spans[0].span_id = vec![2; 3];
        assert_eq!(
            pack_request(tenant, &request.encode_to_vec()).unwrap_err(),
            "span id of 3 bytes on the bus"
        );
        let mut request = every_kind_of_span();
        request.resource_spans[0].scope_spans[0].spans[0].links[0].trace_id = vec![];
        assert_eq!(
            pack_request(tenant, &request.encode_to_vec()).unwrap_err(),
            "link trace id of 0 bytes on the bus"
        );
        let bytes = every_kind_of_span().encode_to_vec();
        assert!(
            pack_request(tenant, &bytes[..bytes.len() - 3])
                .unwrap_err()
                .starts_with("invalid protobuf")
        );
        assert!(pack_request(tenant, &[0x0a, 0x03, 0xff, 0xff, 0xff]).is_err());
        assert!(pack_request(tenant, &[]).unwrap().is_empty());
    }
}
