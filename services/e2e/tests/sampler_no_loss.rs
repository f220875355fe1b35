//! No loss while ClickHouse is down: spans published while the sampler cannot write are
//! held unacknowledged (kept alive past the ack wait by progress acks), written once
//! ClickHouse is back, and every span arrives exactly once.

use std::time::Duration;
use weft_bus::Bus;
use weft_e2e::otlp::trace_request;
use weft_e2e::{ChildServer, Namespace, Stack, StackOptions, eventually};

const TRACES: usize = 40;
const SPANS_PER_TRACE: usize = 5;
const ACK_WAIT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_published_while_clickhouse_is_down_arrive_exactly_once() {
    let mut clickhouse = ChildServer::clickhouse().await;
    let ns = Namespace::create_with_clickhouse(clickhouse.url()).await;
    let stack = Stack::start_with(
        ns,
        StackOptions {
            ack_wait: ACK_WAIT,
            ..Default::default()
        },
    )
    .await;
    let tenant = stack.ns.tenant("acme").await;
    let bus = Bus::connect(stack.ns.bus.clone()).await.unwrap();

    clickhouse.stop().await;
    for _ in 0..TRACES {
        let (request, _) = trace_request(SPANS_PER_TRACE);
        assert_eq!(
            stack.export(&tenant.ingest_key, &request).await,
            200,
            "ingest accepts while ClickHouse is down"
        );
    }
    // The sampler holds messages unacknowledged (a consumer blocked on its first batch
    // leaves later messages of its partition pending in the stream, durable there)...
    eventually(
        "the sampler to hold messages it cannot write",
        Duration::from_secs(30),
        || async {
            let (_, unacked) = weft_e2e::sampler_backlog(&bus).await;
            (unacked > 0).then_some(())
        },
    )
    .await;
    // ...for longer than the ack wait, so only progress acks prevent a redelivery.
    tokio::time::sleep(ACK_WAIT * 3).await;
    let (pending, unacked) = weft_e2e::sampler_backlog(&bus).await;
    assert!(
        unacked > 0,
        "still held, not acknowledged: {pending} pending, {unacked} unacked"
    );

    clickhouse.resume().await;
    let expected = (TRACES * SPANS_PER_TRACE) as u64;
    let traces = stack.ns.store.tenant(tenant.id);
    eventually(
        "every span in the trace index",
        Duration::from_secs(60),
        || async {
            let counts = traces.stored_counts().await.ok()?;
            (counts.indexed_spans >= expected).then_some(())
        },
    )
    .await;
    eventually(
        "every message acknowledged",
        Duration::from_secs(30),
        || async { (weft_e2e::sampler_backlog(&bus).await == (0, 0)).then_some(()) },
    )
    .await;
    let counts = traces.stored_counts().await.unwrap();
    assert_eq!(counts.spans, expected, "no span lost or written twice");
    assert_eq!(counts.distinct_spans, expected);
    assert_eq!(
        counts.indexed_spans, expected,
        "the trace index counts every span once"
    );
    stack.stop().await;
}
