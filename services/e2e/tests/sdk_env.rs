//! The user journey of the README: an application whose SDK is configured only by the
//! standard `OTEL_EXPORTER_OTLP_*` variables (the lines `deploy/up.sh` prints) sends
//! traces over HTTP and gRPC, and they are readable through the query API.

use weft_e2e::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_configured_by_environment_variables_reaches_the_query_api() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    for (protocol, endpoint) in [
        ("http/protobuf", format!("http://{}", stack.ingest_http)),
        ("http/json", format!("http://{}", stack.ingest_http)),
        ("grpc", format!("http://{}", stack.ingest_grpc)),
    ] {
        let service = format!("env-{}", protocol.replace('/', "-"));
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_otel-env-client"))
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("x-api-key={}", tenant.ingest_key),
            )
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("OTEL_SERVICE_NAME", &service)
            .output()
            .await
            .expect("run otel-env-client");
        assert!(
            output.status.success(),
            "{protocol}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let trace_id = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        let trace = stack.wait_for_trace(&tenant.read_key, &trace_id, 2).await;
        assert_eq!(trace["root_service"], service.as_str(), "{protocol}");
        assert_eq!(trace["root_name"], "GET /env");
        assert_eq!(trace["spans"][1]["name"], "SELECT env");
        assert_eq!(trace["spans"][1]["attributes"]["db.system"], "postgresql");
    }
    stack.stop().await;
}
