//! Hand-made OTLP requests for tests that need exact control over what is sent (the SDK
//! tests use the real OpenTelemetry SDK instead).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

/// A random, valid (non-zero) id of `N` bytes.
pub fn random_id<const N: usize>() -> [u8; N] {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut id = [0u8; N];
    id.copy_from_slice(&bytes[..N]);
    id[0] |= 1;
    id
}

/// A 5 ms server span of `trace_id` that started a second ago.
pub fn span(trace_id: &[u8], name: &str) -> Span {
    let start = now_ns() - 1_000_000_000;
    Span {
        trace_id: trace_id.to_vec(),
        span_id: random_id::<8>().to_vec(),
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 5_000_000,
        ..Default::default()
    }
}

pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// One resource (`service.name` = `raw-client`) with one scope holding `spans`.
pub fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attribute("service.name", "raw-client")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

/// `spans` spans in one new trace; returns the request and the trace id in hex.
pub fn trace_request(spans: usize) -> (ExportTraceServiceRequest, String) {
    let trace_id = random_id::<16>();
    let request = request(
        (0..spans)
            .map(|i| span(&trace_id, &format!("op-{i}")))
            .collect(),
    );
    (request, hex::encode(trace_id))
}
