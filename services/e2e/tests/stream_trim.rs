//! A stream holds the backlog, not the history: what every consumer has acknowledged is
//! purged from it, so a stream whose limit is a fraction of what passes through keeps
//! accepting, and everything sent is stored.

use std::time::Duration;
use weft_e2e::otlp::{random_id, request, span, string_attribute};
use weft_e2e::{Namespace, Stack, StackOptions, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_leave_the_stream_and_ingest_keeps_accepting() {
    let mut ns = Namespace::create().await;
    ns.bus.max_bytes = 1 << 20;
    ns.bus.trim_interval = Duration::from_millis(300);
    let stack = Stack::start_with(ns, StackOptions::default()).await;
    let tenant = stack.ns.tenant("busy").await;
    let bus = weft_bus::Bus::connect(stack.ns.bus.clone()).await.unwrap();
    let stream_bytes = || async {
        let mut stream = bus
            .jetstream()
            .get_stream(bus.subjects().stream(weft_bus::Signal::Spans))
            .await
            .unwrap();
        stream.info().await.unwrap().state.bytes
    };

    // Eight rounds of about 330 KB each: 2.6 MB through a stream that holds 1 MiB.
    const ROUNDS: usize = 8;
    const SPANS: usize = 600;
    let padding = "x".repeat(400);
    for round in 0..ROUNDS {
        let trace = random_id::<16>();
        let spans = (0..SPANS)
            .map(|i| {
                let mut span = span(&trace, &format!("op-{i}"));
                span.attributes = vec![string_attribute("padding", &padding)];
                span
            })
            .collect();
        assert_eq!(
            stack.export(&tenant.ingest_key, &request(spans)).await,
            200,
            "round {round}: the stream refused a batch"
        );
        eventually(
            &format!("round {round} stored and trimmed"),
            Duration::from_secs(30),
            || async { (stream_bytes().await < 50_000).then_some(()) },
        )
        .await;
    }

    let stored = stack
        .clickhouse_sql(&format!(
            "SELECT count() FROM spans WHERE tenant_id = toUUID('{}')",
            tenant.id
        ))
        .await;
    assert_eq!(stored.trim(), (ROUNDS * SPANS).to_string());
    let metrics = stack.scrape(stack.sampler_url("/metrics")).await;
    let trimmed = metrics
        .get("weft_bus_trimmed_messages_total{signal=\"spans\"}")
        .copied()
        .unwrap_or(0.0);
    assert!(trimmed >= ROUNDS as f64, "{trimmed} messages trimmed");
    stack.stop().await;
}
