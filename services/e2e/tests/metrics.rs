//! `/metrics` as an operator's Prometheus scrapes it: after a known export, ingest,
//! the sampler and query each report counts that moved by exactly what was sent.

use std::collections::HashMap;
use std::time::Duration;
use weft_e2e::otlp::trace_request;
use weft_e2e::{Stack, eventually};

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_what_was_sent() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("metered").await;

    // 7 valid spans and 1 invalid one over HTTP protobuf; a request with a wrong key.
    let (mut request, trace_id) = trace_request(8);
    request.resource_spans[0].scope_spans[0].spans[7].trace_id = vec![0; 16];
    assert_eq!(stack.export(&tenant.ingest_key, &request).await, 200);
    assert_eq!(stack.export("not-a-key", &request).await, 401);
    stack.wait_for_trace(&tenant.read_key, &trace_id, 7).await;

    let ingest = stack.scrape(stack.ingest_url("/metrics")).await;
    let accepted =
        r#"weft_ingest_items_total{transport="http",signal="spans",outcome="accepted",reason=""}"#;
    let invalid = r#"weft_ingest_items_total{transport="http",signal="spans",outcome="rejected",reason="invalid"}"#;
    assert_eq!(value(&ingest, accepted), 7.0);
    assert_eq!(value(&ingest, invalid), 1.0);
    let partial =
        r#"weft_ingest_requests_total{transport="http",signal="spans",outcome="partial"}"#;
    let unauthenticated =
        r#"weft_ingest_requests_total{transport="http",signal="spans",outcome="unauthenticated"}"#;
    assert_eq!(value(&ingest, partial), 1.0);
    assert_eq!(value(&ingest, unauthenticated), 1.0);
    // Four partitions: the trace's spans went out as one message of its partition.
    assert_eq!(
        value(&ingest, r#"weft_bus_publish_seconds_count{signal="spans"}"#),
        1.0
    );
    assert_eq!(value(&ingest, "weft_bus_publishes_in_flight"), 0.0);
    assert!(value(&ingest, "weft_key_cache_misses_total") >= 1.0);

    // The sampler acknowledges after the write, and the metrics follow the ack.
    let sampler = eventually(
        "the sampler to count its acknowledged message",
        Duration::from_secs(10),
        || async {
            let sampler = stack.scrape(stack.sampler_url("/metrics")).await;
            let consumed: f64 = sampler
                .iter()
                .filter(|(series, _)| series.starts_with("weft_bus_messages_consumed_total{"))
                .map(|(_, v)| v)
                .sum();
            (consumed == 1.0).then_some(sampler)
        },
    )
    .await;
    assert_eq!(value(&sampler, "weft_sampler_spans_written_total"), 7.0);
    assert_eq!(value(&sampler, "weft_sampler_batch_spans_sum"), 7.0);
    assert_eq!(
        value(
            &sampler,
            r#"weft_clickhouse_write_seconds_count{table="spans"}"#
        ),
        1.0
    );
    // The trace index comes with the spans' INSERT (a view on `spans`).
    assert!(
        !sampler
            .keys()
            .any(|series| series.contains(r#"table="trace_index""#))
    );
    assert_eq!(value(&sampler, "weft_sampler_messages_refused_total"), 0.0);

    let before = stack.scrape(stack.query_url("/metrics")).await;
    let route = r#"weft_query_request_seconds_count{method="GET",route="/api/v1/traces/{trace_id}",status="200"}"#;
    let path = format!("/api/v1/traces/{trace_id}");
    for _ in 0..3 {
        assert_eq!(stack.query_get(&path, &tenant.read_key).await.0, 200);
    }
    let after = stack.scrape(stack.query_url("/metrics")).await;
    assert_eq!(value(&after, route) - value(&before, route), 3.0);
    stack.stop().await;
}
