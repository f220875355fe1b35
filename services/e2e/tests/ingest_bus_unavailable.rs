//! When NATS is down, ingest answers 503 / UNAVAILABLE (so SDKs retry) rather than
//! accepting data it cannot make durable, and recovers by itself when NATS is back.

use prost::Message;
use std::time::Duration;
use weft_e2e::otlp::trace_request;
use weft_e2e::{ChildServer, Namespace, Stack, StackOptions, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_is_unavailable_while_the_bus_is_down_and_recovers() {
    let mut nats = ChildServer::nats().await;
    let mut ns = Namespace::create().await;
    ns.bus.url = nats.url().to_owned();
    let stack = Stack::start_with(ns, StackOptions::default()).await;
    let tenant = stack.ns.tenant("acme").await;
    let export_as = |content_type: &'static str, body: Vec<u8>| {
        stack
            .http
            .post(stack.ingest_url("/v1/traces"))
            .header("content-type", content_type)
            .header("x-api-key", &tenant.ingest_key)
            .body(body)
            .send()
    };
    let export = |body: Vec<u8>| export_as("application/x-protobuf", body);
    let (before, trace_before) = trace_request(2);
    assert_eq!(export(before.encode_to_vec()).await.unwrap().status(), 200);
    stack
        .wait_for_trace(&tenant.read_key, &trace_before, 2)
        .await;

    nats.stop().await;
    let (during, _) = trace_request(2);
    let response = export_as("application/json", serde_json::to_vec(&during).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], tonic::Code::Unavailable as i32);
    let ready = stack
        .http
        .get(stack.ingest_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "not ready while the bus is down");

    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(
        format!("http://{}", stack.ingest_grpc),
    )
    .await
    .unwrap();
    let mut call = tonic::Request::new(trace_request(1).0);
    call.metadata_mut()
        .insert("x-api-key", tenant.ingest_key.parse().unwrap());
    let status = client.export(call).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);

    nats.resume().await;
    let (after, trace_after) = trace_request(3);
    let body = after.encode_to_vec();
    eventually(
        "ingest to accept again after NATS is back",
        Duration::from_secs(60),
        || async {
            export(body.clone())
                .await
                .ok()
                .filter(|r| r.status() == 200)
        },
    )
    .await;
    stack
        .wait_for_trace(&tenant.read_key, &trace_after, 3)
        .await;
    stack.stop().await;
}
