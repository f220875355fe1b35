//! OTLP over raw HTTP and raw gRPC: JSON with hex ids and gzip bodies are accepted, and
//! every kind of bad input gets its exact status while the service keeps serving.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use prost::Message;
use std::io::Write;
use weft_e2e::otlp::{now_ns, random_id, request, span};
use weft_e2e::{Namespace, Stack, StackOptions, TestTenant};

/// `google.rpc.Status`, the body of OTLP/HTTP protobuf errors.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

const MAX_REQUEST: usize = 64 << 10;
const MAX_DECOMPRESSED: usize = 256 << 10;

async fn small_limit_stack() -> Stack {
    let options = StackOptions {
        max_request_bytes: MAX_REQUEST,
        max_decompressed_bytes: MAX_DECOMPRESSED,
        ..Default::default()
    };
    Stack::start_with(Namespace::create().await, options).await
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A request that is small when compressed and far beyond the decompressed limit.
fn bomb_payload() -> Vec<u8> {
    let mut spans = Vec::new();
    let trace = random_id::<16>();
    for _ in 0..2000 {
        let mut s = span(&trace, "bomb");
        s.attributes = vec![KeyValue {
            key: "padding".into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue("x".repeat(1000))),
            }),
            ..Default::default()
        }];
        spans.push(s);
    }
    request(spans).encode_to_vec()
}

async fn post(
    stack: &Stack,
    key: Option<&str>,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut builder = stack
        .http
        .post(stack.ingest_url("/v1/traces"))
        .header("content-type", content_type)
        .body(body);
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    if let Some(encoding) = encoding {
        builder = builder.header("content-encoding", encoding);
    }
    let response = builder.send().await.unwrap();
    (
        response.status().as_u16(),
        response.bytes().await.unwrap().to_vec(),
    )
}

fn json_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn assert_still_serving(stack: &Stack, tenant: &TestTenant) {
    let trace = random_id::<16>();
    let (status, _) = post(
        stack,
        Some(&tenant.ingest_key),
        "application/x-protobuf",
        None,
        request(vec![span(&trace, "alive")]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    stack
        .wait_for_trace(&tenant.read_key, &hex::encode(trace), 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_accepts_json_and_gzip_and_rejects_bad_input() {
    let stack = small_limit_stack().await;
    let tenant = stack.ns.tenant("acme").await;
    let key = Some(tenant.ingest_key.as_str());

    // OTLP/JSON with hex ids, as the specification encodes them.
    let json_trace = hex::encode(random_id::<16>());
    let start = now_ns() - 1_000_000_000;
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-client"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": json_trace, "spanId": "00f067aa0ba902b7", "name": "GET /json", "kind": 2,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 7_000_000).to_string(),
            "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}]
        }]}]
    }]});
    let (status, response) = post(
        &stack,
        key,
        "application/json",
        None,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
    let trace = stack.wait_for_trace(&tenant.read_key, &json_trace, 1).await;
    assert_eq!(trace["spans"][0]["span_id"], "00f067aa0ba902b7");
    assert_eq!(trace["spans"][0]["duration_ns"], 7_000_000);
    assert_eq!(trace["spans"][0]["attributes"]["http.method"], "GET");

    // Gzip protobuf.
    let gz_trace = random_id::<16>();
    let (status, _) = post(
        &stack,
        key,
        "application/x-protobuf",
        Some("gzip"),
        gzip(&request(vec![span(&gz_trace, "gz")]).encode_to_vec()),
    )
    .await;
    assert_eq!(status, 200);
    stack
        .wait_for_trace(&tenant.read_key, &hex::encode(gz_trace), 1)
        .await;

    // Invalid ids are rejected through partial_success; the valid spans are kept.
    let mixed_trace = random_id::<16>();
    let mut zero_trace = span(&[0; 16], "zero-trace");
    zero_trace.trace_id = vec![0; 16];
    let mut short_span_id = span(&mixed_trace, "short-span-id");
    short_span_id.span_id = vec![1, 2, 3];
    let mixed = request(vec![
        span(&mixed_trace, "ok-1"),
        zero_trace,
        short_span_id,
        span(&mixed_trace, "ok-2"),
    ]);
    let (status, response) = post(
        &stack,
        key,
        "application/x-protobuf",
        None,
        mixed.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let partial = ExportTraceServiceResponse::decode(response.as_slice())
        .unwrap()
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial
            .error_message
            .contains("trace id must not be all zeros"),
        "{}",
        partial.error_message
    );
    stack
        .wait_for_trace(&tenant.read_key, &hex::encode(mixed_trace), 2)
        .await;

    // Times past the accepted clock skew (an end of 2^64-1 ns, a span in the year 2200)
    // are rejected in partial_success, and the rest of the trace reads back whole.
    let skewed_trace = random_id::<16>();
    let mut endless = span(&skewed_trace, "endless");
    endless.end_time_unix_nano = u64::MAX;
    let mut far_future = span(&skewed_trace, "year-2200");
    far_future.start_time_unix_nano = 7_258_118_400_000_000_000;
    far_future.end_time_unix_nano = far_future.start_time_unix_nano + 1_000;
    let skewed = request(vec![span(&skewed_trace, "now"), endless, far_future]);
    let (status, response) = post(
        &stack,
        key,
        "application/x-protobuf",
        None,
        skewed.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let partial = ExportTraceServiceResponse::decode(response.as_slice())
        .unwrap()
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial
            .error_message
            .contains("later than the accepted clock skew allows"),
        "{}",
        partial.error_message
    );
    let trace = stack
        .wait_for_trace(&tenant.read_key, &hex::encode(skewed_trace), 1)
        .await;
    assert_eq!(trace["span_count"], 1, "{trace}");

    let valid = request(vec![span(&random_id::<16>(), "x")]).encode_to_vec();
    // Keys: missing, unknown, revoked-looking garbage and the wrong scope.
    let (status, body) = post(&stack, None, "application/json", None, b"{}".to_vec()).await;
    assert_eq!(
        (status, json_message(&body).contains("missing API key")),
        (401, true)
    );
    let (status, _) = post(
        &stack,
        Some(&format!("weft_{}", "ab".repeat(20))),
        "application/x-protobuf",
        None,
        valid.clone(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &stack,
        Some("not-a-key"),
        "application/x-protobuf",
        None,
        valid.clone(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &stack,
        Some(&tenant.read_key),
        "application/x-protobuf",
        None,
        valid.clone(),
    )
    .await;
    assert_eq!(status, 403);

    // Malformed bodies.
    let (status, body) = post(
        &stack,
        key,
        "application/x-protobuf",
        None,
        vec![0xff, 0xff, 0xff, 0x01],
    )
    .await;
    assert_eq!(status, 400);
    let error = RpcStatus::decode(body.as_slice()).expect("a google.rpc.Status body");
    assert_eq!(error.code, tonic::Code::InvalidArgument as i32);
    assert!(
        error.message.starts_with("invalid OTLP protobuf"),
        "{}",
        error.message
    );
    let (status, body) = post(
        &stack,
        key,
        "application/json",
        None,
        b"{\"resourceSpans\": [".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        json_message(&body).starts_with("invalid OTLP JSON"),
        "{}",
        json_message(&body)
    );
    let (status, body) = post(
        &stack,
        key,
        "application/json",
        None,
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _) = post(
        &stack,
        key,
        "application/x-protobuf",
        Some("gzip"),
        b"definitely not gzip".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(&stack, key, "text/plain", None, valid.clone()).await;
    assert_eq!(status, 415);
    let (status, _) = post(
        &stack,
        key,
        "application/x-protobuf",
        Some("br"),
        valid.clone(),
    )
    .await;
    assert_eq!(status, 415);

    // Size limits: too large as sent, and a gzip bomb that inflates past the limit.
    let (status, body) = post(
        &stack,
        key,
        "application/x-protobuf",
        None,
        vec![0u8; MAX_REQUEST + 1],
    )
    .await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    let bomb = gzip(&bomb_payload());
    assert!(bomb.len() < MAX_REQUEST && bomb_payload().len() > MAX_DECOMPRESSED);
    let (status, body) = post(&stack, key, "application/json", Some("gzip"), bomb).await;
    assert_eq!(status, 413);
    assert!(json_message(&body).contains("after decompression"));

    assert_still_serving(&stack, &tenant).await;
    stack.stop().await;
}

/// One unary gRPC call with a hand-made frame; returns `grpc-status` and `grpc-message`.
async fn grpc_raw(
    stack: &Stack,
    key: Option<&str>,
    payload: &[u8],
    compressed: bool,
) -> (i32, String) {
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut frame = vec![u8::from(compressed)];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    let mut builder = client
        .post(format!(
            "http://{}/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            stack.ingest_grpc
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(frame);
    if compressed {
        builder = builder.header("grpc-encoding", "gzip");
    }
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    let response = builder.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (status, message) = (header("grpc-status"), header("grpc-message"));
    match status {
        // Trailers-only responses carry the status in the headers; successful ones in
        // trailers, which this client does not expose, so success reads as 0.
        Some(status) => (status.parse().unwrap(), message.unwrap_or_default()),
        None => (0, String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_rejects_bad_input_with_the_right_codes() {
    let stack = small_limit_stack().await;
    let tenant = stack.ns.tenant("acme").await;
    let valid = request(vec![span(&random_id::<16>(), "x")]).encode_to_vec();

    let (code, message) = grpc_raw(&stack, None, &valid, false).await;
    assert_eq!(code, tonic::Code::Unauthenticated as i32, "{message}");
    let (code, _) = grpc_raw(
        &stack,
        Some(&format!("weft_{}", "cd".repeat(20))),
        &valid,
        false,
    )
    .await;
    assert_eq!(code, tonic::Code::Unauthenticated as i32);
    let (code, _) = grpc_raw(&stack, Some(&tenant.read_key), &valid, false).await;
    assert_eq!(code, tonic::Code::PermissionDenied as i32);

    let key = Some(tenant.ingest_key.as_str());
    let (code, message) = grpc_raw(&stack, key, &[0xff, 0xff, 0xff, 0x01], false).await;
    assert_eq!(code, tonic::Code::InvalidArgument as i32, "{message}");
    let (code, message) = grpc_raw(&stack, key, b"not gzip at all", true).await;
    assert_eq!(code, tonic::Code::InvalidArgument as i32, "{message}");
    let (code, message) = grpc_raw(&stack, key, &vec![0u8; MAX_DECOMPRESSED + 1], false).await;
    assert_eq!(code, tonic::Code::ResourceExhausted as i32, "{message}");
    let (code, message) = grpc_raw(&stack, key, &gzip(&bomb_payload()), true).await;
    assert_eq!(code, tonic::Code::ResourceExhausted as i32, "{message}");

    // A valid call through the generated client reports rejected spans.
    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(
        format!("http://{}", stack.ingest_grpc),
    )
    .await
    .unwrap();
    let good_trace = random_id::<16>();
    let mut bad = span(&good_trace, "bad-parent");
    bad.parent_span_id = vec![7; 3];
    let mut call = tonic::Request::new(request(vec![span(&good_trace, "good"), bad]));
    call.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", tenant.ingest_key).parse().unwrap(),
    );
    let response = client.export(call).await.unwrap().into_inner();
    assert_eq!(response.partial_success.unwrap().rejected_spans, 1);
    stack
        .wait_for_trace(&tenant.read_key, &hex::encode(good_trace), 1)
        .await;

    assert_still_serving(&stack, &tenant).await;
    stack.stop().await;
}
