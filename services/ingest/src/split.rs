//! Validating items and splitting a request by trace-id partition, once for every
//! signal, on the protobuf wire: the request is walked in place and each part copies
//! the bytes of its items, resources and scopes, so nothing is decoded into owned
//! structs and nothing re-encoded. Each part is itself a complete OTLP request.
//!
//! This is the only place items are validated: consumers of the bus trust what ingest
//! published. The walk checks every field the OTLP schema declares (wire type, UTF-8,
//! embedded messages to any depth `prost` allows), so a request it accepts is one `prost`
//! decodes; a request that is not valid protobuf is refused whole, as decoding it would
//! be, and an item that breaks a rule (ids, times) is rejected alone.

use std::collections::BTreeMap;
use weft_model::wire::{self, Field, Fields};
use weft_model::{Partition, TraceId};

/// What a protobuf field holds, as the OTLP schema declares it.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Varint,
    Fixed64,
    Fixed32,
    Text,
    Bytes,
    Message(&'static Schema),
}

/// The declared fields of one message type; other field numbers are skipped, as
/// `prost` skips unknown fields.
pub(crate) struct Schema(&'static [(u32, Kind)]);

use Kind::{Bytes, Fixed32, Fixed64, Message, Text, Varint};

static KEY_VALUE: Schema = Schema(&[(1, Text), (2, Message(&ANY_VALUE)), (3, Varint)]);
static ANY_VALUE: Schema = Schema(&[
    (1, Text),
    (2, Varint),
    (3, Varint),
    (4, Fixed64),
    (5, Message(&ARRAY_VALUE)),
    (6, Message(&KEY_VALUE_LIST)),
    (7, Bytes),
    (8, Varint),
]);
static ARRAY_VALUE: Schema = Schema(&[(1, Message(&ANY_VALUE))]);
static KEY_VALUE_LIST: Schema = Schema(&[(1, Message(&KEY_VALUE))]);
static ENTITY_REF: Schema = Schema(&[(1, Text), (2, Text), (3, Text), (4, Text)]);
static RESOURCE: Schema = Schema(&[
    (1, Message(&KEY_VALUE)),
    (2, Varint),
    (3, Message(&ENTITY_REF)),
]);
static SCOPE: Schema = Schema(&[(1, Text), (2, Text), (3, Message(&KEY_VALUE)), (4, Varint)]);
/// `ResourceSpans` and `ResourceLogs` without their scopes (field 2, walked apart).
static RESOURCE_ENVELOPE: Schema = Schema(&[(1, Message(&RESOURCE)), (3, Text)]);
/// `ScopeSpans` and `ScopeLogs` without their items (field 2, walked apart).
static SCOPE_ENVELOPE: Schema = Schema(&[(1, Message(&SCOPE)), (3, Text)]);
pub(crate) static SPAN: Schema = Schema(&[
    (1, Bytes),
    (2, Bytes),
    (3, Text),
    (4, Bytes),
    (5, Text),
    (6, Varint),
    (7, Fixed64),
    (8, Fixed64),
    (9, Message(&KEY_VALUE)),
    (10, Varint),
    (11, Message(&EVENT)),
    (12, Varint),
    (13, Message(&LINK)),
    (14, Varint),
    (15, Message(&STATUS)),
    (16, Fixed32),
]);
static EVENT: Schema = Schema(&[
    (1, Fixed64),
    (2, Text),
    (3, Message(&KEY_VALUE)),
    (4, Varint),
]);
static LINK: Schema = Schema(&[
    (1, Bytes),
    (2, Bytes),
    (3, Text),
    (4, Message(&KEY_VALUE)),
    (5, Varint),
    (6, Fixed32),
]);
static STATUS: Schema = Schema(&[(2, Text), (3, Varint)]);
pub(crate) static LOG_RECORD: Schema = Schema(&[
    (1, Fixed64),
    (2, Varint),
    (3, Text),
    (5, Message(&ANY_VALUE)),
    (6, Message(&KEY_VALUE)),
    (7, Varint),
    (8, Fixed32),
    (9, Bytes),
    (10, Bytes),
    (11, Fixed64),
    (12, Text),
]);

/// How deep messages may nest. `prost` stops at 100; the request, resource, scope and
/// item take four, so values nest 90 deep here, short of `prost`'s limit.
const MAX_DEPTH: u32 = 95;

/// Checks that `message` is a valid encoding of `schema`'s type.
fn validate(message: &[u8], schema: &Schema, depth: u32) -> Result<(), String> {
    validate_reading(message, schema, depth, |_, _| {})
}

/// Checks that `message` is a valid encoding of `schema`'s type, handing each declared
/// field of its own (not of embedded messages) to `read` as it goes: what an item's rules
/// need is read in the walk that validates it.
fn validate_reading<'a>(
    message: &'a [u8],
    schema: &Schema,
    depth: u32,
    mut read: impl FnMut(u32, Field<'a>),
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(wire::invalid("messages nest too deep"));
    }
    for field in Fields::of(message) {
        let (number, field) = field?;
        let Some((_, kind)) = schema.0.iter().find(|(n, _)| *n == number) else {
            continue;
        };
        match (kind, field) {
            (Varint, Field::Varint(_))
            | (Fixed64, Field::Fixed64(_))
            | (Fixed32, Field::Fixed32(_))
            | (Bytes, Field::Bytes(_)) => {}
            (Text, Field::Bytes(bytes)) => {
                wire::text(bytes)?;
            }
            (Message(inner), Field::Bytes(bytes)) => validate(bytes, inner, depth + 1)?,
            _ => {
                return Err(wire::invalid(&format!(
                    "wrong wire type for field {number}"
                )));
            }
        }
        read(number, field);
    }
    Ok(())
}

/// What one signal's items must satisfy beyond being valid protobuf.
pub(crate) trait Item {
    /// The item's message type.
    const SCHEMA: &'static Schema;
    /// What the item's rules read of its fields: the last value of each (as `prost`
    /// decodes a repeated scalar field), gathered as the item is validated.
    type Head<'a>: Default;
    fn read<'a>(head: &mut Self::Head<'a>, number: u32, field: Field<'a>);
    /// The trace id that decides the item's partition (`None`: the item belongs to no
    /// trace and may go to any partition), or why the item cannot be stored. No time of
    /// an item may be later than `latest` (Unix nanoseconds). `item` is valid protobuf,
    /// and `head` what it holds.
    fn check(head: &Self::Head<'_>, item: &[u8], latest: u64) -> Result<Option<TraceId>, String>;
    /// A short name of the item for error messages.
    fn describe(item: &[u8]) -> String;
}

/// The fields outside the part of a message walked apart, copied as they came.
#[derive(Default)]
struct Envelope<'a> {
    /// Raw fields (key, length and value) in their order.
    fields: Vec<&'a [u8]>,
    len: usize,
}

/// One accepted item: where it came from, and its bytes.
struct Entry<'a> {
    resource: usize,
    scope: usize,
    item: &'a [u8],
}

/// A request split into per-partition messages, with what was rejected.
#[derive(Debug, Default)]
pub struct Split {
    /// Encoded requests, each within the size limit, in the order of the request.
    pub parts: BTreeMap<Partition, Vec<bytes::Bytes>>,
    pub accepted: u64,
    /// Every rejected item, `too_large` of them for their size alone.
    pub rejected: u64,
    pub too_large: u64,
    /// The first reason an item was rejected, for `partial_success`.
    pub first_error: Option<String>,
}

impl Split {
    fn reject(&mut self, reason: String) {
        self.rejected += 1;
        self.first_error.get_or_insert(reason);
    }
}

/// The walked request: envelopes of every resource and scope, and the accepted items by
/// partition.
struct Walked<'a> {
    resources: Vec<Envelope<'a>>,
    scopes: Vec<Envelope<'a>>,
    parts: BTreeMap<Partition, Vec<Entry<'a>>>,
}

/// Splits the encoded export request `request` over `partitions`, in messages of at most
/// `max_bytes`; items with a time after `latest` (Unix nanoseconds: now plus the accepted
/// clock skew) are rejected. Items of no trace go to `untraced`, one partition for the
/// whole request, so they travel as one message; the caller varies it from request to
/// request to spread them. `Err` when `request` is not valid protobuf of the signal's
/// request type.
pub fn split<I: Item>(
    request: &[u8],
    partitions: u16,
    latest: u64,
    untraced: Partition,
    max_bytes: usize,
) -> Result<Split, String> {
    let mut split = Split::default();
    let walked = walk::<I>(request, partitions, latest, untraced, &mut split)?;
    for (partition, entries) in &walked.parts {
        let messages = encode::<I>(&walked, entries, max_bytes, &mut split);
        if !messages.is_empty() {
            split.parts.insert(*partition, messages);
        }
    }
    Ok(split)
}

fn walk<'a, I: Item>(
    request: &'a [u8],
    partitions: u16,
    latest: u64,
    untraced: Partition,
    split: &mut Split,
) -> Result<Walked<'a>, String> {
    let mut walked = Walked {
        resources: Vec::new(),
        scopes: Vec::new(),
        parts: BTreeMap::new(),
    };
    for resource in wire::each(request, 1) {
        let resource = resource?;
        let resource_index = walked.resources.len();
        let mut envelope = Envelope::default();
        let mut fields = Fields::of(resource);
        while let Some((number, field, raw)) = fields.next_raw()? {
            match (number, field) {
                (2, Field::Bytes(scope)) => {
                    let scope_index = walked.scopes.len();
                    walked.scopes.push(scope_envelope::<I>(scope, |item, head| {
                        let trace_id = match I::check(&head, item, latest) {
                            Ok(trace_id) => trace_id,
                            Err(reason) => {
                                split.reject(reason);
                                return;
                            }
                        };
                        let partition =
                            trace_id.map_or(untraced, |id| Partition::of(&id, partitions));
                        walked.parts.entry(partition).or_default().push(Entry {
                            resource: resource_index,
                            scope: scope_index,
                            item,
                        });
                        split.accepted += 1;
                    })?);
                }
                (2, _) => return Err(wire::invalid("wrong wire type for field 2")),
                _ => {
                    validate(raw, &RESOURCE_ENVELOPE, 1)?;
                    envelope.push(raw);
                }
            }
        }
        walked.resources.push(envelope);
    }
    Ok(walked)
}

impl<'a> Envelope<'a> {
    fn push(&mut self, raw: &'a [u8]) {
        self.len += raw.len();
        self.fields.push(raw);
    }
}

/// A scope's envelope, each of its valid items handed to `accept`.
fn scope_envelope<'a, I: Item>(
    scope: &'a [u8],
    mut accept: impl FnMut(&'a [u8], I::Head<'a>),
) -> Result<Envelope<'a>, String> {
    let mut envelope = Envelope::default();
    let mut fields = Fields::of(scope);
    while let Some((number, field, raw)) = fields.next_raw()? {
        match (number, field) {
            (2, Field::Bytes(item)) => {
                let mut head = I::Head::default();
                validate_reading(item, I::SCHEMA, 3, |number, field| {
                    I::read(&mut head, number, field);
                })?;
                accept(item, head);
            }
            (2, _) => return Err(wire::invalid("wrong wire type for field 2")),
            _ => {
                validate(raw, &SCOPE_ENVELOPE, 2)?;
                envelope.push(raw);
            }
        }
    }
    Ok(envelope)
}

/// The bytes field `number` takes with its key and length.
fn framed(number: u32, len: usize) -> usize {
    wire::varint_len(u64::from(number << 3)) + wire::varint_len(len as u64) + len
}

fn put_frame(out: &mut Vec<u8>, number: u32, len: usize) {
    wire::put_varint(out, u64::from(number << 3 | 2));
    wire::put_varint(out, len as u64);
}

/// The partition's entries as requests of at most `max_bytes`; an item too large alone
/// is rejected.
fn encode<I: Item>(
    walked: &Walked<'_>,
    entries: &[Entry<'_>],
    max_bytes: usize,
    split: &mut Split,
) -> Vec<bytes::Bytes> {
    // An upper bound of a message's size, with every length taken as 5 bytes: a part is
    // cut where the next item would pass the limit.
    const FRAME: usize = 6;
    let mut messages = Vec::new();
    let mut chunk: Vec<&Entry<'_>> = Vec::new();
    let mut bound = 0;
    for entry in entries {
        let item = FRAME + entry.item.len();
        let scope = FRAME + walked.scopes[entry.scope].len;
        let resource = FRAME + walked.resources[entry.resource].len;
        let cost = |chunk: &[&Entry<'_>]| match chunk.last() {
            Some(last) if last.scope == entry.scope => item,
            Some(last) if last.resource == entry.resource => item + scope,
            _ => item + scope + resource,
        };
        if !chunk.is_empty() && bound + cost(&chunk) > max_bytes {
            messages.push(write(walked, &chunk));
            chunk.clear();
            bound = 0;
        }
        let cost = cost(&chunk);
        if chunk.is_empty() && cost > max_bytes {
            split.accepted -= 1;
            split.too_large += 1;
            split.reject(format!(
                "{} is larger than {max_bytes} bytes",
                I::describe(entry.item)
            ));
            continue;
        }
        bound += cost;
        chunk.push(entry);
    }
    if !chunk.is_empty() {
        messages.push(write(walked, &chunk));
    }
    messages
}

/// One request of `entries`, grouped under their resources and scopes as they came.
fn write(walked: &Walked<'_>, entries: &[&Entry<'_>]) -> bytes::Bytes {
    // Runs of entries sharing a resource, and within them a scope.
    let runs = |entries: &[&Entry<'_>], key: fn(&Entry<'_>) -> usize| {
        let mut runs = Vec::new();
        let mut start = 0;
        for i in 1..=entries.len() {
            if i == entries.len() || key(entries[i]) != key(entries[start]) {
                runs.push(start..i);
                start = i;
            }
        }
        runs
    };
    let scope_len = |items: &[&Entry<'_>]| {
        walked.scopes[items[0].scope].len
            + items.iter().map(|e| framed(2, e.item.len())).sum::<usize>()
    };
    let resource_len = |items: &[&Entry<'_>]| {
        walked.resources[items[0].resource].len
            + runs(items, |e| e.scope)
                .into_iter()
                .map(|run| framed(2, scope_len(&items[run])))
                .sum::<usize>()
    };
    let resources = runs(entries, |e| e.resource);
    let total: usize = resources
        .iter()
        .map(|run| framed(1, resource_len(&entries[run.clone()])))
        .sum();
    let mut out = Vec::with_capacity(total);
    for run in resources {
        let items = &entries[run];
        put_frame(&mut out, 1, resource_len(items));
        for raw in &walked.resources[items[0].resource].fields {
            out.extend_from_slice(raw);
        }
        for run in runs(items, |e| e.scope) {
            let items = &items[run];
            put_frame(&mut out, 2, scope_len(items));
            for raw in &walked.scopes[items[0].scope].fields {
                out.extend_from_slice(raw);
            }
            for entry in items {
                put_frame(&mut out, 2, entry.item.len());
                out.extend_from_slice(entry.item);
            }
        }
    }
    debug_assert_eq!(out.len(), total);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Logs, Spans};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
        any_value::Value,
    };
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
    use prost::Message;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("s{id}"),
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            ..Default::default()
        }
    }

    /// A span with every kind of field and value OTLP has.
    fn rich_span(trace: u8, id: u8) -> Span {
        let nested = Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(Value::IntValue(-3)),
                },
                AnyValue {
                    value: Some(Value::KvlistValue(KeyValueList {
                        values: vec![kv("deep", Value::DoubleValue(1.5))],
                    })),
                },
            ],
        });
        Span {
            trace_state: "a=b".into(),
            parent_span_id: vec![9; 8],
            flags: 0x301,
            kind: 2,
            attributes: vec![
                kv("http.route", Value::StringValue("/cart/{id}".into())),
                kv("ok", Value::BoolValue(true)),
                kv("bytes", Value::BytesValue(vec![0, 255])),
                kv("nested", nested),
            ],
            dropped_attributes_count: 1,
            events: vec![Event {
                time_unix_nano: 15,
                name: "exception".into(),
                attributes: vec![kv("exception.type", Value::StringValue("E".into()))],
                dropped_attributes_count: 0,
            }],
            links: vec![Link {
                trace_id: vec![7; 16],
                span_id: vec![7; 8],
                trace_state: String::new(),
                attributes: vec![kv("why", Value::StringValue("retry".into()))],
                dropped_attributes_count: 0,
                flags: 1,
            }],
            status: Some(Status {
                message: "boom".into(),
                code: 2,
            }),
            ..span(trace, id)
        }
    }

    fn resource(name: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![kv("service.name", Value::StringValue(name.into()))],
            dropped_attributes_count: 0,
            entity_refs: vec![EntityRef {
                schema_url: String::new(),
                r#type: "service".into(),
                id_keys: vec!["service.name".into()],
                description_keys: Vec::new(),
            }],
        })
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn rich_request() -> ExportTraceServiceRequest {
        let scope = |name: &str| {
            Some(InstrumentationScope {
                name: name.into(),
                version: "1.0".into(),
                attributes: vec![kv("lib", Value::StringValue(name.into()))],
                dropped_attributes_count: 0,
            })
        };
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: resource("cart"),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: scope("http"),
                            spans: vec![rich_span(1, 1), span(2, 2), rich_span(1, 3)],
                            schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
                        },
                        ScopeSpans {
                            scope: scope("db"),
                            spans: vec![span(2, 4), span(1, 5)],
                            schema_url: String::new(),
                        },
                    ],
                    schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
                },
                ResourceSpans {
                    resource: resource("payments"),
                    scope_spans: vec![ScopeSpans {
                        scope: None,
                        spans: vec![rich_span(2, 6), span(1, 7)],
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                },
            ],
        }
    }

    fn split_spans(request: &[u8], latest: u64, max: usize) -> Result<Split, String> {
        split::<Spans>(request, 16, latest, Partition(0), max)
    }

    /// Every span of the parts, decoded, with its resource's service and its scope.
    fn decoded(parts: &[bytes::Bytes]) -> Vec<(String, String, Span)> {
        let mut spans = Vec::new();
        for part in parts {
            let request = ExportTraceServiceRequest::decode(part.clone()).expect("a request");
            for resource_spans in request.resource_spans {
                let service = format!("{:?}", resource_spans.resource);
                for scope_spans in resource_spans.scope_spans {
                    let scope = format!("{:?}{}", scope_spans.scope, scope_spans.schema_url);
                    for span in scope_spans.spans {
                        spans.push((service.clone(), scope.clone(), span));
                    }
                }
            }
        }
        spans
    }

    #[test]
    fn parts_hold_each_span_whole_with_its_resource_and_scope() {
        let original = rich_request();
        let result = split_spans(&original.encode_to_vec(), u64::MAX, 1 << 20).unwrap();
        assert_eq!((result.accepted, result.rejected), (7, 0));
        let p1 = Partition::of(&TraceId::from_bytes(&[1; 16]).unwrap(), 16);
        let p2 = Partition::of(&TraceId::from_bytes(&[2; 16]).unwrap(), 16);
        assert_ne!(p1, p2);
        assert_eq!(result.parts.len(), 2);
        let expected = |trace: u8| {
            let mut spans = Vec::new();
            for resource_spans in &original.resource_spans {
                for scope_spans in &resource_spans.scope_spans {
                    for span in &scope_spans.spans {
                        if span.trace_id[0] == trace {
                            spans.push((
                                format!("{:?}", resource_spans.resource),
                                format!("{:?}{}", scope_spans.scope, scope_spans.schema_url),
                                span.clone(),
                            ));
                        }
                    }
                }
            }
            spans
        };
        assert_eq!(decoded(&result.parts[&p1]), expected(1));
        assert_eq!(decoded(&result.parts[&p2]), expected(2));
        // One message a partition, the resource's schema URL kept.
        let part = ExportTraceServiceRequest::decode(result.parts[&p1][0].clone()).unwrap();
        assert_eq!(part.resource_spans.len(), 2);
        assert_eq!(part.resource_spans[0].scope_spans.len(), 2);
        assert_eq!(
            part.resource_spans[0].schema_url,
            "https://opentelemetry.io/schemas/1.30.0"
        );
    }

    #[test]
    fn spans_of_one_trace_stay_together_and_invalid_ones_are_counted() {
        let mut bad_parent = span(1, 9);
        bad_parent.parent_span_id = vec![1, 2, 3];
        let mut backwards = span(1, 8);
        backwards.end_time_unix_nano = 5;
        let mut bad_link = span(1, 7);
        bad_link.links = vec![Link {
            trace_id: vec![1; 16],
            ..Default::default()
        }];
        let spans = vec![
            span(1, 1),
            span(2, 2),
            span(1, 3),
            span(0, 4),
            bad_parent,
            backwards,
            bad_link,
        ];
        let result = split_spans(&request(spans).encode_to_vec(), u64::MAX, 1 << 20).unwrap();
        assert_eq!((result.accepted, result.rejected), (3, 4));
        assert_eq!(
            result.first_error.as_deref(),
            Some("span \"s4\": invalid trace id must not be all zeros")
        );
        let p1 = Partition::of(&TraceId::from_bytes(&[1; 16]).unwrap(), 16);
        let names: Vec<String> = decoded(&result.parts[&p1])
            .into_iter()
            .map(|(_, _, s)| s.name)
            .collect();
        assert_eq!(names, ["s1", "s3"]);
        assert_eq!(
            result
                .parts
                .values()
                .map(|p| decoded(p).len())
                .sum::<usize>(),
            3
        );
    }

    #[test]
    fn spans_ending_after_the_skew_allowance_are_rejected() {
        let mut far = span(1, 2);
        far.end_time_unix_nano = u64::MAX;
        let encoded = request(vec![span(1, 1), far]).encode_to_vec();
        let result = split_spans(&encoded, 1_000, 1 << 20).unwrap();
        assert_eq!((result.accepted, result.rejected), (1, 1));
        assert!(
            result
                .first_error
                .unwrap()
                .starts_with("span \"s2\": ends at 18446744073709551615 ns, later than")
        );
    }

    #[test]
    fn parts_are_cut_to_the_size_limit_and_an_item_too_large_alone_is_rejected() {
        let spans: Vec<Span> = (1..=40).map(|i| rich_span(7, i)).collect();
        let encoded = request(spans).encode_to_vec();
        let limit = encoded.len() / 3;
        let result = split_spans(&encoded, u64::MAX, limit).unwrap();
        assert_eq!((result.accepted, result.rejected), (40, 0));
        let parts = result.parts.values().next().unwrap();
        assert!(parts.len() >= 3, "{} parts", parts.len());
        assert!(parts.iter().all(|p| p.len() <= limit));
        let names: Vec<String> = decoded(parts).into_iter().map(|(_, _, s)| s.name).collect();
        let expected: Vec<String> = (1..=40).map(|i| format!("s{i}")).collect();
        assert_eq!(names, expected, "every span once, in order");

        let encoded = request(vec![span(7, 1), rich_span(7, 2)]).encode_to_vec();
        let result = split_spans(&encoded, u64::MAX, 100).unwrap();
        assert_eq!(
            (result.accepted, result.rejected, result.too_large),
            (1, 1, 1)
        );
        assert_eq!(
            result.first_error.as_deref(),
            Some("span \"s2\" is larger than 100 bytes")
        );
    }

    #[test]
    fn log_records_without_a_trace_go_to_the_untraced_partition() {
        let record = |trace: Vec<u8>, time: u64| LogRecord {
            time_unix_nano: time,
            severity_text: "WARN".into(),
            body: Some(AnyValue {
                value: Some(Value::StringValue("disk full".into())),
            }),
            trace_id: trace,
            span_id: vec![0; 8],
            ..Default::default()
        };
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource("cart"),
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![
                        record(Vec::new(), 5),
                        record(vec![0; 16], 5),
                        record(vec![3; 16], 5),
                        record(vec![3; 15], 5),
                        record(Vec::new(), 0),
                    ],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let result = split::<Logs>(
            &request.encode_to_vec(),
            16,
            u64::MAX,
            Partition(11),
            1 << 20,
        )
        .unwrap();
        assert_eq!((result.accepted, result.rejected), (3, 2));
        let traced = Partition::of(&TraceId::from_bytes(&[3; 16]).unwrap(), 16);
        let count = |p: &Partition| {
            result.parts[p]
                .iter()
                .map(|b| ExportLogsServiceRequest::decode(b.clone()).unwrap())
                .flat_map(|r| r.resource_logs)
                .flat_map(|r| r.scope_logs)
                .map(|s| s.log_records.len())
                .sum::<usize>()
        };
        assert_eq!((count(&Partition(11)), count(&traced)), (2, 1));
        assert_eq!(
            result.first_error.as_deref(),
            Some("log record: invalid trace id must be 16 bytes, got 15")
        );
    }

    /// A deterministic stream of numbers (xorshift), for the mutations below.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// The promise the sampler relies on: whatever the split accepts, `prost` decodes,
    /// and so does every part it makes. Checked over many corruptions of a request with
    /// every kind of field.
    #[test]
    fn what_the_split_accepts_prost_decodes() {
        let original = rich_request().encode_to_vec();
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let mut bytes = original.clone();
            for _ in 0..=noise.next() % 3 {
                let at = (noise.next() as usize) % bytes.len();
                match noise.next() % 4 {
                    0 => bytes[at] = noise.next() as u8,
                    1 => bytes[at] ^= 1 << (noise.next() % 8),
                    2 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, noise.next() as u8),
                }
            }
            let prost = ExportTraceServiceRequest::decode(bytes.as_slice());
            match split_spans(&bytes, u64::MAX, 1 << 20) {
                Ok(result) => {
                    accepted += 1;
                    assert!(
                        prost.is_ok(),
                        "split accepted what prost refuses: {bytes:?}"
                    );
                    for part in result.parts.values().flatten() {
                        ExportTraceServiceRequest::decode(part.clone()).expect("a part decodes");
                    }
                }
                Err(_) => refused += 1,
            }
        }
        assert!(
            accepted > 1_000 && refused > 1_000,
            "{accepted} / {refused}"
        );
    }

    #[test]
    fn broken_requests_are_refused_whole() {
        let mut bytes = request(vec![span(1, 1)]).encode_to_vec();
        // The span's name made invalid UTF-8.
        let at = bytes.windows(2).position(|w| w == b"s1").unwrap();
        bytes[at] = 0xff;
        assert!(ExportTraceServiceRequest::decode(bytes.as_slice()).is_err());
        assert_eq!(
            split_spans(&bytes, u64::MAX, 1 << 20).unwrap_err(),
            "invalid protobuf: a string is not UTF-8"
        );
        // A span whose start time is a varint instead of fixed64.
        let mut span_bytes = span(1, 1).encode_to_vec();
        span_bytes.extend_from_slice(&[0x38, 0x01]);
        let mut scope = vec![0x12];
        wire::put_varint(&mut scope, span_bytes.len() as u64);
        scope.extend_from_slice(&span_bytes);
        let mut resource = vec![0x12];
        wire::put_varint(&mut resource, scope.len() as u64);
        resource.extend_from_slice(&scope);
        let mut request = vec![0x0a];
        wire::put_varint(&mut request, resource.len() as u64);
        request.extend_from_slice(&resource);
        assert!(ExportTraceServiceRequest::decode(request.as_slice()).is_err());
        assert!(split_spans(&request, u64::MAX, 1 << 20).is_err());
        // Values nested deeper than prost allows.
        let mut value = AnyValue {
            value: Some(Value::IntValue(1)),
        };
        for _ in 0..120 {
            value = AnyValue {
                value: Some(Value::ArrayValue(ArrayValue {
                    values: vec![value],
                })),
            };
        }
        let mut deep = span(1, 1);
        deep.attributes = vec![KeyValue {
            key: "deep".into(),
            value: Some(value),
            ..Default::default()
        }];
        let encoded = self::request(vec![deep]).encode_to_vec();
        assert!(ExportTraceServiceRequest::decode(encoded.as_slice()).is_err());
        assert_eq!(
            split_spans(&encoded, u64::MAX, 1 << 20).unwrap_err(),
            "invalid protobuf: messages nest too deep"
        );
    }
}
