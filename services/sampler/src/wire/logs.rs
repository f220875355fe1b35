//! OTLP log messages straight to their `logs` rows: each record's row is written into
//! the message's [`PackedLogs`] from the protobuf's bytes in one pass over its fields.
//! The rows are those `crate::logs::decoded::log_rows` makes from the message decoded by
//! `prost`; the tests check that byte for byte.

use super::{Shown, any_value, attribute, id, resource, scope};
use opentelemetry_proto::tonic::common::v1::AnyValue;
use prost::Message as _;
use weft_model::wire::{Field, Fields, each, invalid, text as string};
use weft_model::{TenantId, severity_name};
use weft_storage::clickhouse::{PackedLogs, PackedResource, rowbinary};

/// The rows of every log record of one bus message (`ExportLogsServiceRequest`, the
/// `sequence`-th of its stream), numbered in their order in it. Ingest validated ids and
/// times; an id of a wrong length means the message did not come from ingest, and it is
/// refused whole.
pub fn pack_logs(tenant: TenantId, sequence: u64, message: &[u8]) -> Result<PackedLogs, String> {
    let mut logs = PackedLogs::new(sequence);
    logs.bytes().reserve(message.len() * 2);
    let mut scratch = Scratch::default();
    let tenant = tenant.as_uuid().as_u64_pair();
    for resource_logs in each(message, 1) {
        let resource_logs = resource_logs?;
        let resource = resource(resource_logs, &mut scratch.text)?;
        for scope_logs in each(resource_logs, 2) {
            let scope_logs = scope_logs?;
            let scope = scope(scope_logs)?;
            for record in each(scope_logs, 2) {
                let line = Line {
                    tenant,
                    resource: &resource,
                    scope,
                };
                line.pack(record?, &mut scratch, &mut logs)?;
            }
        }
    }
    Ok(logs)
}

/// What a record's row shares with the others of its resource and scope.
struct Line<'r> {
    tenant: (u64, u64),
    resource: &'r PackedResource,
    scope: (&'r str, &'r str),
}

/// Buffers kept from record to record, so they are allocated once a message.
#[derive(Default)]
struct Scratch<'a> {
    attributes: Vec<(&'a str, Shown<'a>)>,
    /// The body and attribute values that are not strings, as text.
    text: String,
    bodies: Vec<&'a [u8]>,
}

impl Line<'_> {
    fn pack<'a>(
        &self,
        record: &'a [u8],
        scratch: &mut Scratch<'a>,
        logs: &mut PackedLogs,
    ) -> Result<(), String> {
        scratch.attributes.clear();
        scratch.text.clear();
        scratch.bodies.clear();
        let (mut time, mut observed, mut severity_number) = (0u64, 0u64, 0i32);
        let mut severity_text = "";
        let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
        for field in Fields::of(record) {
            match field? {
                (1, Field::Fixed64(nanos)) => time = nanos,
                (11, Field::Fixed64(nanos)) => observed = nanos,
                (2, Field::Varint(number)) => severity_number = number as i32,
                (3, Field::Bytes(bytes)) => severity_text = string(bytes)?,
                (5, Field::Bytes(bytes)) => scratch.bodies.push(bytes),
                (6, Field::Bytes(bytes)) => {
                    let attribute = attribute(bytes, &mut scratch.text)?;
                    scratch.attributes.push(attribute);
                }
                (9, Field::Bytes(bytes)) => trace_id = bytes,
                (10, Field::Bytes(bytes)) => span_id = bytes,
                (1 | 2 | 3 | 5 | 6 | 9 | 10 | 11, _) => return Err(invalid("wrong wire type")),
                _ => {}
            }
        }
        let body = match scratch.bodies.as_slice() {
            [] => Shown::Borrowed(""),
            [body] => any_value(body, &mut scratch.text)?,
            // Fields of one message given more than once merge, as `prost` merges them.
            bodies => {
                let value = AnyValue::decode(bodies.concat().as_slice())
                    .map_err(|e| invalid(&e.to_string()))?;
                let start = scratch.text.len();
                scratch.text.push_str(&crate::rows::text(Some(&value)));
                Shown::Written(start..scratch.text.len())
            }
        };
        let trace_id: [u8; 16] = if trace_id.is_empty() {
            [0; 16]
        } else {
            id(trace_id, "trace id")?
        };
        let span_id: [u8; 8] = if span_id.is_empty() {
            [0; 8]
        } else {
            id(span_id, "span id")?
        };
        let time_unix_nano = if time != 0 { time } else { observed };
        let seconds = u32::try_from(time_unix_nano / 1_000_000_000).unwrap_or(u32::MAX);
        let severity_text = if severity_text.is_empty() {
            severity_name(severity_number)
        } else {
            severity_text
        };
        let text = scratch.text.as_str();
        let row = logs.bytes();
        let start = row.len();
        row.extend_from_slice(&self.tenant.0.to_le_bytes());
        row.extend_from_slice(&self.tenant.1.to_le_bytes());
        row.extend_from_slice(&seconds.to_le_bytes());
        row.extend_from_slice(&time_unix_nano.to_le_bytes());
        row.extend_from_slice(&observed.to_le_bytes());
        row.extend_from_slice(&trace_id);
        row.extend_from_slice(&span_id);
        row.push(u8::try_from(severity_number.clamp(0, 24)).unwrap_or(0));
        rowbinary::put_str(row, severity_text);
        rowbinary::put_str(row, body.as_str(text));
        rowbinary::put_str(row, self.resource.service());
        rowbinary::put_str(row, self.scope.0);
        rowbinary::put_str(row, self.scope.1);
        let attributes = &scratch.attributes;
        rowbinary::put_leb128(row, attributes.len() as u64);
        for (key, _) in attributes {
            rowbinary::put_str(row, key);
        }
        rowbinary::put_leb128(row, attributes.len() as u64);
        for (_, value) in attributes {
            rowbinary::put_str(row, value.as_str(text));
        }
        row.extend_from_slice(self.resource.columns());
        logs.end_row(start, seconds);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::decoded::log_rows;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
    };
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn value(value: Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(value) })
    }

    fn attribute(key: &str, v: Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: value(v),
            ..Default::default()
        }
    }

    /// Records with every field and every kind of value, under two resources (one
    /// without a service name) and scopes.
    fn request() -> ExportLogsServiceRequest {
        let record = |n: u64| LogRecord {
            time_unix_nano: if n.is_multiple_of(3) {
                0
            } else {
                1_764_590_000_000_000_000 + n
            },
            observed_time_unix_nano: 1_764_590_000_500_000_000 + n,
            severity_number: [0, 9, 17, 21, 30][n as usize % 5],
            severity_text: if n.is_multiple_of(4) {
                "notice".into()
            } else {
                String::new()
            },
            body: match n % 4 {
                0 => value(Value::StringValue(format!("line {n}: é"))),
                1 => value(Value::KvlistValue(KeyValueList {
                    values: vec![attribute("k", Value::IntValue(n as i64))],
                })),
                2 => None,
                _ => value(Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::BoolValue(true)),
                    }],
                })),
            },
            attributes: vec![
                attribute("s", Value::StringValue("v".into())),
                attribute("i", Value::IntValue(-7)),
                attribute("d", Value::DoubleValue(1.5)),
                attribute("b", Value::BoolValue(false)),
                attribute("x", Value::BytesValue(vec![0xab, 0xcd])),
                KeyValue {
                    key: "empty".into(),
                    ..Default::default()
                },
            ][..(n as usize % 7)]
                .to_vec(),
            trace_id: if n.is_multiple_of(2) {
                vec![n as u8; 16]
            } else {
                Vec::new()
            },
            span_id: if n.is_multiple_of(2) {
                vec![n as u8 + 1; 8]
            } else {
                Vec::new()
            },
            flags: 1,
            dropped_attributes_count: 2,
            event_name: "e".into(),
        };
        ExportLogsServiceRequest {
            resource_logs: vec![
                ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![
                            attribute("service.name", Value::StringValue("checkout".into())),
                            attribute("host.cores", Value::IntValue(2)),
                        ],
                        ..Default::default()
                    }),
                    scope_logs: vec![
                        ScopeLogs {
                            scope: Some(InstrumentationScope {
                                name: "app".into(),
                                version: "1.2".into(),
                                ..Default::default()
                            }),
                            log_records: (0..9).map(record).collect(),
                            schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
                        },
                        ScopeLogs {
                            log_records: (9..12).map(record).collect(),
                            ..Default::default()
                        },
                    ],
                    schema_url: String::new(),
                },
                ResourceLogs {
                    resource: None,
                    scope_logs: vec![ScopeLogs {
                        log_records: (12..20).map(record).collect(),
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                },
            ],
        }
    }

    /// The rows `prost`'s decoding gives, packed as the store packs rows.
    fn reference(tenant: TenantId, sequence: u64, message: &[u8]) -> Vec<Vec<u8>> {
        let request = ExportLogsServiceRequest::decode(message).unwrap();
        let rows = log_rows(tenant, sequence, request).unwrap();
        let mut packed = PackedLogs::new(sequence);
        for row in &rows {
            packed.push_row(row);
        }
        packed.rows().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn rows_are_those_of_the_decoded_message_byte_for_byte() {
        let tenant = TenantId::random();
        let message = request().encode_to_vec();
        let packed = pack_logs(tenant, 41, &message).unwrap();
        let rows: Vec<Vec<u8>> = packed.rows().map(<[u8]>::to_vec).collect();
        assert_eq!(rows.len(), 20);
        assert_eq!(rows, reference(tenant, 41, &message));
        assert_eq!(packed.seconds(), Some((1_764_590_000, 1_764_590_000)));
    }

    /// A body given twice merges as `prost` merges it (the later string wins), and a
    /// record given in two halves of its fields is one record.
    #[test]
    fn repeated_fields_merge_as_prost_merges_them() {
        let tenant = TenantId::random();
        let mut record = LogRecord {
            body: value(Value::StringValue("first".into())),
            ..Default::default()
        }
        .encode_to_vec();
        record.extend(
            LogRecord {
                time_unix_nano: 5_000_000_000,
                body: value(Value::StringValue("second".into())),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        let mut scope_logs = Vec::new();
        prost::encoding::bytes::encode(2, &record, &mut scope_logs);
        let mut resource_logs = Vec::new();
        prost::encoding::bytes::encode(2, &scope_logs, &mut resource_logs);
        let mut message = Vec::new();
        prost::encoding::bytes::encode(1, &resource_logs, &mut message);
        let packed = pack_logs(tenant, 1, &message).unwrap();
        let rows: Vec<Vec<u8>> = packed.rows().map(<[u8]>::to_vec).collect();
        assert_eq!(rows, reference(tenant, 1, &message));
        assert_eq!(packed.len(), 1);
    }

    #[test]
    fn ids_of_a_wrong_length_refuse_the_message() {
        let mut request = request();
        request.resource_logs[1].scope_logs[0].log_records[3].span_id = vec![1; 7];
        let error = pack_logs(TenantId::random(), 1, &request.encode_to_vec()).unwrap_err();
        assert!(error.contains("span id of 7 bytes"), "{error}");
    }
}
