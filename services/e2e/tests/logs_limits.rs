//! The per-tenant log-record rate, apart from the span rate: a tenant over its own log
//! limit gets 429 with Retry-After on OTLP/HTTP and JSON lines (gRPC RESOURCE_EXHAUSTED)
//! while its spans, and other tenants' logs, still pass; malformed OTLP logs get the same
//! error codes as traces, and invalid records come back in partial_success.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use serde_json::{Value, json};
use weft_e2e::Stack;
use weft_e2e::otlp::trace_request;

fn records(n: usize) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"timeUnixNano": now, "body": {"stringValue": format!("line {i}")}}))
        .collect();
    json!({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]})
}

async fn post_otlp(stack: &Stack, key: &str, body: &Value) -> reqwest::Response {
    stack
        .http
        .post(stack.ingest_url("/v1/logs"))
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_log_rate_is_told_to_retry_and_its_spans_still_pass() {
    let stack = Stack::start().await;
    let noisy = stack.ns.tenant("noisy").await;
    let quiet = stack.ns.tenant("quiet").await;
    stack
        .ns
        .accounts
        .set_logs_per_second(noisy.id, Some(20))
        .await
        .unwrap();

    assert_eq!(
        post_otlp(&stack, &noisy.ingest_key, &records(15))
            .await
            .status(),
        200
    );
    let refused = post_otlp(&stack, &noisy.ingest_key, &records(15)).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("20 log records per second"),
        "{body}"
    );
    // JSON lines count against the same budget.
    let lines = "{\"msg\":\"a\"}\n".repeat(15);
    let refused = stack
        .http
        .post(stack.ingest_url("/v1/logs/json"))
        .header("x-api-key", &noisy.ingest_key)
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    // gRPC: RESOURCE_EXHAUSTED.
    let mut client = LogsServiceClient::connect(format!("http://{}", stack.ingest_grpc))
        .await
        .unwrap();
    let request: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest =
        serde_json::from_value(records(15)).unwrap();
    let mut grpc = tonic::Request::new(request);
    grpc.metadata_mut()
        .insert("x-api-key", noisy.ingest_key.parse().unwrap());
    let status = client.export(grpc).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    // Spans have their own budget, and the other tenant its own.
    assert_eq!(
        stack.export(&noisy.ingest_key, &trace_request(15).0).await,
        200
    );
    assert_eq!(
        post_otlp(&stack, &quiet.ingest_key, &records(15))
            .await
            .status(),
        200
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_logs_get_the_error_codes_of_traces() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    // Invalid records are rejected one by one in partial_success.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": now, "body": {"stringValue": "fine"}},
        {"timeUnixNano": now, "traceId": "0102", "body": {"stringValue": "short trace id"}},
        {"body": {"stringValue": "no time at all"}},
        {"timeUnixNano": "18446744073709551615", "body": {"stringValue": "far future"}}
    ]}]}]});
    let response = post_otlp(&stack, &tenant.ingest_key, &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    // An int64, which OTLP/JSON allows as a number or a string.
    let rejected = answer["partialSuccess"]["rejectedLogRecords"].to_string();
    assert_eq!(rejected.trim_matches('"'), "3", "{answer}");
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("invalid trace id"),
        "{answer}"
    );
    let bad = stack
        .http
        .post(stack.ingest_url("/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .header("x-api-key", &tenant.ingest_key)
        .body("not protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let unauthenticated = post_otlp(
        &stack,
        "weft_0000000000000000000000000000000000000001",
        &records(1),
    )
    .await;
    assert_eq!(unauthenticated.status(), 401);
    let read_key = post_otlp(&stack, &tenant.read_key, &records(1)).await;
    assert_eq!(read_key.status(), 403);
    let wrong_type = stack
        .http
        .post(stack.ingest_url("/v1/logs"))
        .header("content-type", "text/plain")
        .header("x-api-key", &tenant.ingest_key)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    stack.stop().await;
}
