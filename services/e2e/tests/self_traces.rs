//! Weft's own traces reach a Weft: a span opened the way every request handler opens one
//! is exported by the self-trace layer as OTLP to a stack's ingest with an ingest key,
//! and reads back through the query API with its name, ids and service.

use tracing::instrument::WithSubscriber;
use tracing_subscriber::layer::SubscriberExt;
use weft_e2e::Stack;
use weft_runtime::self_traces::{self, SelfTraceConfig};
use weft_runtime::tracing_context::{self, TraceContext};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_spans_are_exported_to_a_weft() {
    let stack = Stack::start().await;
    let operator = stack.ns.tenant("operator").await;
    let config = SelfTraceConfig::from_env(|name| match name {
        "WEFT_SELF_TRACES_ENDPOINT" => Some(stack.ingest_url("")),
        "WEFT_SELF_TRACES_KEY" => Some(operator.ingest_key.clone()),
        _ => None,
    })
    .expect("both variables set");
    let (layer, export) = self_traces::layer("weft-self-trace-test", config);
    let exporter = tokio::spawn(export);
    let subscriber = tracing_subscriber::registry().with(layer);

    let parent = TraceContext::root();
    let (outer, inner) = async {
        tracing_context::within("outer operation", Some(parent), async {
            let outer = tracing_context::current().unwrap();
            let inner = tracing_context::within("inner operation", Some(outer), async {
                tracing_context::current().unwrap()
            })
            .await;
            (outer, inner)
        })
        .await
    }
    .with_subscriber(subscriber)
    .await;
    assert_eq!(outer.trace_id, parent.trace_id);

    let trace = stack
        .wait_for_trace(&operator.read_key, &hex::encode(parent.trace_id), 2)
        .await;
    let spans = trace["spans"].as_array().unwrap();
    let outer_span = spans
        .iter()
        .find(|s| s["name"] == "outer operation")
        .expect("the outer span");
    assert_eq!(outer_span["span_id"], hex::encode(outer.span_id));
    assert_eq!(outer_span["parent_span_id"], hex::encode(parent.span_id));
    let inner_span = spans
        .iter()
        .find(|s| s["name"] == "inner operation")
        .expect("the inner span");
    assert_eq!(inner_span["span_id"], hex::encode(inner.span_id));
    assert_eq!(inner_span["parent_span_id"], hex::encode(outer.span_id));
    assert_eq!(
        outer_span["resource_attributes"]["service.name"],
        "weft-self-trace-test"
    );

    exporter.abort();
    stack.stop().await;
}
