//! Logs from real OpenTelemetry SDKs: Python's `logging` handler of `opentelemetry-sdk`,
//! and opentelemetry-rust's `tracing` bridge (`otel-logs-client`), log inside active
//! spans, configured only by `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_EXPORTER_OTLP_HEADERS`
//! (plus the protocol), over gRPC and HTTP; the query API returns each line under its
//! trace and span.

use serde_json::Value;
use std::time::Duration;
use weft_e2e::{Stack, eventually};

/// The virtual environment `deploy/lib.sh` (`install_python_loggers`) installs the SDK into.
fn python() -> String {
    std::env::var("WEFT_LOGGERS_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/weft/otel-venv/bin/python",
            std::env::var("HOME").expect("HOME")
        )
    })
}

fn script() -> String {
    format!("{}/scripts/otel_logs.py", env!("CARGO_MANIFEST_DIR"))
}

/// Checks what a reader finds of the lines a client logged (its JSON on stdout: the
/// trace id and, per message, the span id it was logged under).
async fn check_lines(
    stack: &Stack,
    tenant: &weft_e2e::TestTenant,
    protocol: &str,
    service: &str,
    stdout: &[u8],
) {
    let emitted: Value = serde_json::from_slice(stdout).expect("the client's JSON");
    let trace_id = emitted["trace_id"].as_str().unwrap().to_owned();
    let spans = &emitted["spans"];

    let path = format!("/api/v1/logs?trace_id={trace_id}&group=span");
    let page = weft_e2e::eventually(
        &format!("{protocol}: two lines of trace {trace_id}"),
        Duration::from_secs(30),
        || async {
            let (status, body) = stack.query_get(&path, &tenant.read_key).await;
            (status == 200 && body["logs"].as_array().map(Vec::len) == Some(2)).then_some(body)
        },
    )
    .await;
    let logs = page["logs"].as_array().unwrap();
    // Newest first.
    assert_eq!(logs[0]["body"], "card declined, retrying", "{protocol}");
    assert_eq!(logs[0]["severity_text"], "WARN", "{protocol}");
    assert_eq!(logs[0]["span_id"], spans["card declined, retrying"]);
    assert_eq!(logs[0]["trace_id"], trace_id.as_str());
    assert_eq!(logs[0]["attributes"]["customer"], "O'Brien");
    assert_eq!(logs[0]["attributes"]["attempt"], "2");
    assert_eq!(logs[0]["service"], service);
    assert_eq!(logs[1]["body"], "checkout started");
    assert_eq!(logs[1]["severity_text"], "INFO");
    assert_eq!(logs[1]["span_id"], spans["checkout started"]);
    // Grouped by span, in the order of each span's first line.
    let grouped = page["spans"].as_array().unwrap();
    assert_eq!(grouped.len(), 2, "{page}");
    assert_eq!(grouped[0]["span_id"], spans["checkout started"]);
    assert_eq!(grouped[0]["logs"][0]["body"], "checkout started");
    assert_eq!(grouped[1]["span_id"], spans["card declined, retrying"]);
    // One span's lines.
    let span_id = spans["card declined, retrying"].as_str().unwrap();
    let (status, body) = stack
        .query_get(&format!("/api/v1/logs?span_id={span_id}"), &tenant.read_key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["logs"].as_array().unwrap().len(), 1, "{body}");

    // The line logged outside any span has no ids and is found by its service,
    // severity and text.
    // It travels in a partition of its own, so it may be stored after the traced ones.
    let path = format!("/api/v1/logs?service={service}&severity=error&q=NIGHTLY");
    let body = eventually(
        "the line outside any span",
        Duration::from_secs(30),
        || async {
            let (status, body) = stack.query_get(&path, &tenant.read_key).await;
            assert_eq!(status, 200, "{body}");
            (!body["logs"].as_array().unwrap().is_empty()).then_some(body)
        },
    )
    .await;
    let logs = body["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{body}");
    assert_eq!(logs[0]["body"], "nightly report failed");
    assert_eq!(logs[0]["trace_id"], "");
    assert_eq!(logs[0]["span_id"], "");
    assert_eq!(logs[0]["severity_text"], "ERROR");
    let total: u64 = body["histogram"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1, "the histogram counts the matching line");

    // The spans themselves arrived too, so the trace page can show its lines.
    stack.wait_for_trace(&tenant.read_key, &trace_id, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_logs_arrive_under_their_trace_and_span_over_grpc_and_http() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    for (protocol, endpoint) in [
        ("grpc", format!("http://{}", stack.ingest_grpc)),
        ("http/protobuf", format!("http://{}", stack.ingest_http)),
    ] {
        let service = format!("py-{}", protocol.replace('/', "-"));
        let output = tokio::process::Command::new(python())
            .arg(script())
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("x-api-key={}", tenant.ingest_key),
            )
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("OTEL_SERVICE_NAME", &service)
            .output()
            .await
            .expect("run the Python SDK (deploy/lib.sh install_python_loggers installs it)");
        assert!(
            output.status.success(),
            "{protocol}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        check_lines(&stack, &tenant, protocol, &service, &output.stdout).await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_tracing_bridge_logs_arrive_under_their_trace_and_span_over_grpc_and_http() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    for (protocol, endpoint) in [
        ("grpc", format!("http://{}", stack.ingest_grpc)),
        ("http/protobuf", format!("http://{}", stack.ingest_http)),
    ] {
        let service = format!("rs-{}", protocol.replace('/', "-"));
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_otel-logs-client"))
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("x-api-key={}", tenant.ingest_key),
            )
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("OTEL_SERVICE_NAME", &service)
            .output()
            .await
            .expect("run otel-logs-client");
        assert!(
            output.status.success(),
            "{protocol}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        check_lines(&stack, &tenant, protocol, &service, &output.stdout).await;
    }
    stack.stop().await;
}
