//! The per-tenant log limits, apart from the span rate: a tenant over its own log-record
//! or log-bytes limit gets 429 with Retry-After on OTLP/HTTP and JSON lines (gRPC
//! RESOURCE_EXHAUSTED) while its spans, and other tenants' logs, still pass; a request
//! refused for bytes takes nothing from the record budget; usage counts log records and
//! bytes exactly; malformed OTLP logs get the same error codes as traces, and invalid
//! records come back in partial_success.

use clap::Parser;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;
use weft_e2e::otlp::trace_request;
use weft_e2e::{Stack, eventually};
use weft_runtime::config::Env;
use weft_runtime::error::RpcStatus;

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

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// `n` log records, each with a body of `body_bytes` characters.
fn log_request(n: usize, body_bytes: usize) -> ExportLogsServiceRequest {
    let now = now_nanos();
    let record = LogRecord {
        time_unix_nano: now,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("x".repeat(body_bytes))),
        }),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record; n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post_protobuf(stack: &Stack, key: &str, body: &[u8], gzip: bool) -> reqwest::Response {
    let mut request = stack
        .http
        .post(stack.ingest_url("/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .header("x-api-key", key);
    request = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(body).unwrap();
        request
            .header("content-encoding", "gzip")
            .body(encoder.finish().unwrap())
    } else {
        request.body(body.to_vec())
    };
    request.send().await.unwrap()
}

async fn post_json_lines(stack: &Stack, key: &str, lines: &str) -> reqwest::Response {
    stack
        .http
        .post(stack.ingest_url("/v1/logs/json"))
        .header("x-api-key", key)
        .body(lines.to_owned())
        .send()
        .await
        .unwrap()
}

async fn grpc_export(
    stack: &Stack,
    key: &str,
    request: ExportLogsServiceRequest,
) -> Result<(), tonic::Status> {
    let mut client = LogsServiceClient::connect(format!("http://{}", stack.ingest_grpc))
        .await
        .unwrap();
    let mut call = tonic::Request::new(request);
    call.metadata_mut()
        .insert("x-api-key", key.parse().unwrap());
    client.export(call).await.map(|_| ())
}

/// Runs a `weft-admin` command line in-process against the stack's PostgreSQL.
async fn admin(stack: &Stack, args: &[&str]) {
    let cli =
        weft_admin::Cli::try_parse_from(std::iter::once("weft-admin").chain(args.iter().copied()))
            .expect("a valid command line");
    let env = Env::from_pairs([("WEFT_DATABASE_URL", stack.ns.postgres.url.as_str())]);
    weft_admin::run(cli, &env).await.expect("weft-admin");
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
async fn a_tenant_over_its_log_bytes_is_refused_without_using_up_its_record_budget() {
    let stack = Stack::start().await;
    let bulky = stack.ns.tenant("bulky").await;
    let other = stack.ns.tenant("other").await;
    // 1000 records and 4 KiB per second, set as an operator sets them.
    admin(
        &stack,
        &[
            "tenant",
            "log-limit",
            "--tenant",
            "bulky",
            "--logs-per-second",
            "1000",
            "--bytes-per-second",
            "4KiB",
        ],
    )
    .await;

    // 40 kB in one request, ten seconds of the tenant's bytes: it passes on the full
    // bucket and leaves it about 9 seconds in debt.
    let big = log_request(4, 10_000).encode_to_vec();
    assert!(big.len() > 40_000);
    let accepted = post_protobuf(&stack, &bulky.ingest_key, &big, false).await;
    assert_eq!(accepted.status(), 200);

    // 50 000 small records, 50 seconds of the record rate were they taken: refused for
    // bytes by every front end.
    let many = log_request(50_000, 1);
    let many_encoded = many.encode_to_vec();
    let refused = post_protobuf(&stack, &bulky.ingest_key, &many_encoded, false).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u32 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let status = RpcStatus::decode(refused.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, tonic::Code::ResourceExhausted as i32);
    assert!(
        status.message.contains(&format!(
            "log byte rate limit of 4096 uncompressed bytes per second exceeded, retry in {retry_after}s"
        )),
        "{}",
        status.message
    );
    let status = grpc_export(&stack, &bulky.ingest_key, many.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status
            .message()
            .contains("log byte rate limit of 4096 uncompressed bytes per second"),
        "{}",
        status.message()
    );
    let lines: String = (0..50)
        .map(|i| format!("{{\"msg\":\"line {i}\"}}\n"))
        .collect();
    let refused = post_json_lines(&stack, &bulky.ingest_key, &lines).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("log byte rate limit of 4096 uncompressed bytes per second"),
        "{body}"
    );

    // The other tenant, on the default limits, sends all of it; a gzip body counts as
    // its size after decompression.
    assert_eq!(
        post_protobuf(&stack, &other.ingest_key, &big, true)
            .await
            .status(),
        200
    );
    grpc_export(&stack, &other.ingest_key, many.clone())
        .await
        .unwrap();
    let mixed = format!("{lines}not json\n");
    let response = post_json_lines(&stack, &other.ingest_key, &mixed).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(50), Some(1))
    );

    // Once the byte debt is paid the tenant is served again, and every refusal until then
    // names the byte limit: the 100 050 refused records took nothing from the record
    // budget (taken, they would owe it 100 seconds).
    let small = log_request(1, 1).encode_to_vec();
    let mut refusals = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let response = post_protobuf(&stack, &bulky.ingest_key, &small, false).await;
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 429);
        let status = RpcStatus::decode(response.bytes().await.unwrap()).unwrap();
        assert!(
            status.message.contains("log byte rate limit"),
            "{}",
            status.message
        );
        refusals += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tenant was never served again"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Ingest metrics count the refused records under their reason.
    let metrics = stack.scrape(stack.ingest_url("/metrics")).await;
    let refused_records = |transport: &str| {
        metrics
            .get(&format!(
                r#"weft_ingest_items_total{{transport="{transport}",signal="logs",outcome="rejected",reason="byte_rate_limited"}}"#
            ))
            .copied()
    };
    assert_eq!(refused_records("http"), Some((50_050 + refusals) as f64));
    assert_eq!(refused_records("grpc"), Some(50_000.0));

    // Usage, once flushed, holds exactly what each tenant sent.
    let usage = |tenant: weft_model::TenantId| {
        let accounts = &stack.ns.accounts;
        async move {
            let day = *accounts.usage(tenant, 1).await.ok()?.first()?;
            Some((
                day.log_records_received,
                day.log_records_accepted,
                day.log_records_rejected,
                day.log_bytes_accepted,
            ))
        }
    };
    let bulky_refused = 100_050 + refusals;
    let bulky_expected = (
        5 + bulky_refused,
        5,
        bulky_refused,
        (big.len() + small.len()) as i64,
    );
    eventually(
        "the bulky tenant's usage",
        Duration::from_secs(10),
        || async { (usage(bulky.id).await? == bulky_expected).then_some(()) },
    )
    .await;
    let other_expected = (
        4 + 50_000 + 51,
        4 + 50_000 + 50,
        1,
        (big.len() + many_encoded.len() + mixed.len()) as i64,
    );
    eventually(
        "the other tenant's usage",
        Duration::from_secs(10),
        || async { (usage(other.id).await? == other_expected).then_some(()) },
    )
    .await;
    // Spans were not touched by any of it.
    let day = *stack
        .ns
        .accounts
        .usage(bulky.id, 1)
        .await
        .unwrap()
        .first()
        .unwrap();
    assert_eq!(day.spans_received, 0);
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
