//! End to end with the real OpenTelemetry SDK: spans exported over OTLP/gRPC,
//! OTLP/HTTP protobuf and OTLP/HTTP JSON come back from the query API with the same ids,
//! names, attributes, parent links, events, status and durations, and are counted in
//! the services' RED metrics.

use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{
    Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};
use weft_e2e::{Stack, eventually};

#[derive(Clone, Copy, Debug)]
enum Transport {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

fn exporter(stack: &Stack, transport: Transport, key: &str) -> SpanExporter {
    match transport {
        Transport::Grpc => {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert("x-api-key", key.parse().unwrap());
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(format!("http://{}", stack.ingest_grpc))
                .with_metadata(metadata)
                .with_compression(opentelemetry_otlp::Compression::Gzip)
                .build()
                .unwrap()
        }
        Transport::HttpProtobuf | Transport::HttpJson => SpanExporter::builder()
            .with_http()
            .with_endpoint(stack.ingest_url("/v1/traces"))
            .with_headers(HashMap::from([("x-api-key".to_owned(), key.to_owned())]))
            .with_protocol(match transport {
                Transport::HttpJson => Protocol::HttpJson,
                _ => Protocol::HttpBinary,
            })
            .build()
            .unwrap(),
    }
}

struct Sent {
    trace_id: String,
    root_id: String,
    child_id: String,
}

/// A checkout request with a failing payment call, with exact timestamps.
fn send_checkout(provider: &SdkTracerProvider, start: SystemTime) -> Sent {
    let tracer = provider.tracer("weft-e2e");
    let root = tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(start)
        .with_attributes(vec![
            KeyValue::new("http.route", "/checkout"),
            KeyValue::new("http.status_code", 502_i64),
            KeyValue::new("cache.hit", false),
        ])
        .start(&tracer);
    let root_cx = Context::current_with_span(root);
    let mut child = tracer
        .span_builder("charge-payment")
        .with_kind(SpanKind::Client)
        .with_start_time(start + Duration::from_millis(10))
        .with_attributes(vec![KeyValue::new("payment.amount", 42.5)])
        .start_with_context(&tracer, &root_cx);
    child.add_event_with_timestamp(
        "card declined",
        start + Duration::from_millis(20),
        vec![KeyValue::new("attempt", 2_i64)],
    );
    child.set_status(Status::error("card declined"));
    let sent = Sent {
        trace_id: child.span_context().trace_id().to_string(),
        root_id: root_cx.span().span_context().span_id().to_string(),
        child_id: child.span_context().span_id().to_string(),
    };
    child.end_with_timestamp(start + Duration::from_millis(260));
    root_cx
        .span()
        .end_with_timestamp(start + Duration::from_millis(400));
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_spans_come_back_intact_over_grpc_and_http() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    for transport in [
        Transport::Grpc,
        Transport::HttpProtobuf,
        Transport::HttpJson,
    ] {
        let service = format!("checkout-{transport:?}").to_lowercase();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter(&stack, transport, &tenant.ingest_key))
            .with_resource(
                Resource::builder_empty()
                    .with_service_name(service.clone())
                    .build(),
            )
            .build();
        let start = SystemTime::now() - Duration::from_secs(2);
        let sent = send_checkout(&provider, start);
        tokio::task::spawn_blocking(move || {
            provider.force_flush().expect("flush");
            provider.shutdown().expect("shutdown");
        })
        .await
        .unwrap();

        let trace = stack
            .wait_for_trace(&tenant.read_key, &sent.trace_id, 2)
            .await;
        assert_eq!(trace["trace_id"], sent.trace_id, "{transport:?}");
        assert_eq!(trace["root_service"], service.as_str());
        assert_eq!(trace["root_name"], "POST /checkout");
        assert_eq!(trace["duration_ns"], 400_000_000);
        assert_eq!(
            (trace["span_count"].as_u64(), trace["error_count"].as_u64()),
            (Some(2), Some(1))
        );
        let start_ns = start
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        assert_eq!(trace["start_time_unix_nano"], start_ns.to_string());

        let [root, child] = trace["spans"].as_array().unwrap().as_slice() else {
            panic!("two spans")
        };
        assert_eq!(root["span_id"], sent.root_id);
        assert_eq!(root["parent_span_id"], serde_json::Value::Null);
        assert_eq!(root["kind"], "server");
        assert_eq!(root["duration_ns"], 400_000_000);
        assert_eq!(root["attributes"]["http.route"], "/checkout");
        assert_eq!(root["attributes"]["http.status_code"], "502");
        assert_eq!(root["attributes"]["cache.hit"], "false");
        assert_eq!(
            root["resource_attributes"]["service.name"],
            service.as_str()
        );
        assert_eq!(root["scope"]["name"], "weft-e2e");

        assert_eq!(child["span_id"], sent.child_id);
        assert_eq!(child["parent_span_id"], sent.root_id);
        assert_eq!(child["depth"], 1);
        assert_eq!(child["name"], "charge-payment");
        assert_eq!(child["kind"], "client");
        assert_eq!(child["duration_ns"], 250_000_000);
        assert_eq!(
            child["start_time_unix_nano"],
            (start_ns + 10_000_000).to_string()
        );
        assert_eq!(child["attributes"]["payment.amount"], "42.5");
        assert_eq!(child["status"]["code"], "error");
        assert_eq!(child["status"]["message"], "card declined");
        assert_eq!(child["events"][0]["name"], "card declined");
        assert_eq!(child["events"][0]["attributes"]["attempt"], "2");
        assert_eq!(
            child["events"][0]["time_unix_nano"],
            (start_ns + 20_000_000).to_string()
        );
    }

    // The metrics are written right after the traces, in the same batch.
    let services = eventually(
        "every service's metrics",
        Duration::from_secs(30),
        || async {
            let (status, body) = stack.query_get("/api/v1/services", &tenant.read_key).await;
            let services = body["services"].as_array()?.clone();
            (status == 200 && services.len() == 3).then_some(services)
        },
    )
    .await;
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "checkout-grpc",
            "checkout-httpjson",
            "checkout-httpprotobuf"
        ]
    );
    for service in &services {
        // The server span is the request; the failing client span is not.
        assert_eq!(
            (&service["requests"], &service["errors"], &service["spans"]),
            (
                &serde_json::json!(1),
                &serde_json::json!(0),
                &serde_json::json!(2)
            ),
            "{service}"
        );
        let p99 = service["p99_ms"].as_f64().unwrap();
        assert!((p99 - 400.0).abs() / 400.0 < 0.05, "{service}");
    }
    let (status, ops) = stack
        .query_get(
            "/api/v1/services/checkout-grpc/operations",
            &tenant.read_key,
        )
        .await;
    assert_eq!(status, 200);
    let ops: Vec<(&str, &str, u64, u64)> = ops["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["requests"].as_u64().unwrap(),
                o["errors"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("POST /checkout", "server", 1, 0),
            ("charge-payment", "client", 1, 1)
        ]
    );
    let (status, found) = stack
        .query_get("/api/v1/traces?service=checkout-grpc&operation=charge-payment&min_duration=200ms&error=true", &tenant.read_key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["traces"].as_array().unwrap().len(), 1);
    stack.stop().await;
}
