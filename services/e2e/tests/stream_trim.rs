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

/// The trim never takes a message a consumer was delivered and has not acknowledged,
/// whichever partition it is on. NATS 2.9 applies a purge's sequence to every consumer
/// of the stream, whatever its filter: a purge of partition 0 up to its ack floor took
/// partition 1's unacknowledged messages below that sequence away from its consumer (a
/// sampler killed mid-stream lost them). Against the real NATS server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trim_leaves_every_partitions_unacknowledged_messages() {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    use futures::StreamExt;
    use weft_bus::{Bus, Signal};
    use weft_model::{Partition, PartitionSet, TenantId};

    let ns = Namespace::create().await;
    let bus = Bus::connect(ns.bus.clone()).await.unwrap();
    bus.ensure_streams().await.unwrap();
    let mut stream = bus
        .jetstream()
        .get_stream(bus.subjects().stream(Signal::Spans))
        .await
        .unwrap();
    let mut consumers = Vec::new();
    for partition in PartitionSet::all(ns.bus.partitions).iter() {
        let name = bus.subjects().consumer("sampler", Signal::Spans, partition);
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(name),
                filter_subject: bus.subjects().partition(Signal::Spans, partition),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(60),
                ..Default::default()
            })
            .await
            .unwrap();
        consumers.push(consumer);
    }
    // Ten messages on each of partitions 0 and 1, interleaved.
    let tenant = TenantId::random();
    for i in 0..20u16 {
        let payload = vec![0x0a, 0x00].into();
        bus.publish(Signal::Spans, tenant, Partition(i % 2), payload, None)
            .await
            .unwrap();
    }
    let pull = |consumer: &async_nats::jetstream::consumer::Consumer<pull::Config>, most| {
        let consumer = consumer.clone();
        async move {
            let mut batch = consumer
                .batch()
                .max_messages(most)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .unwrap();
            let mut messages = Vec::new();
            while let Some(message) = batch.next().await {
                messages.push(message.unwrap());
            }
            messages
        }
    };
    // Partition 0's reader acknowledges everything; partition 1's was delivered half of
    // its messages and holds them.
    for message in pull(&consumers[0], 100).await {
        message.double_ack().await.unwrap();
    }
    let held = pull(&consumers[1], 5).await;
    assert_eq!(held.len(), 5);
    bus.trim_acknowledged(Signal::Spans, "sampler")
        .await
        .unwrap();
    let info = consumers[1].info().await.unwrap().clone();
    assert_eq!(
        (info.num_ack_pending, info.num_pending),
        (5, 5),
        "partition 1's messages, delivered or not, are all still to be acknowledged"
    );
    assert_eq!(stream.info().await.unwrap().state.messages, 20);

    // Once they are all acknowledged, everything goes.
    for message in held.into_iter().chain(pull(&consumers[1], 100).await) {
        message.double_ack().await.unwrap();
    }
    assert_eq!(
        bus.trim_acknowledged(Signal::Spans, "sampler")
            .await
            .unwrap(),
        20
    );
    assert_eq!(stream.info().await.unwrap().state.messages, 0);
    bus.delete_streams().await.unwrap();
    ns.teardown().await;
}
