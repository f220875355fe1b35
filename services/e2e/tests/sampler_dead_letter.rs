//! One bad batch does not stall every tenant: a message whose spans ClickHouse refuses
//! for their data is isolated from the others written with it, kept in the dead-letter
//! stream for the operator (with its tenant and the server's reason), and every other
//! partition and tenant keeps flowing.
//!
//! ClickHouse 18.16 cannot produce the refusal current servers give for an INSERT that
//! spans more than 100 partitions, so the test's own `spans` table gets a column whose
//! default rejects spans named `poison-pill`: a real server-side refusal of real rows.
//! (`spans_by_trace`, which a view on `spans` fills, gets the column as well.)

use futures::StreamExt;
use prost::Message;
use std::time::Duration;
use weft_e2e::otlp::{random_id, request, span};
use weft_e2e::{Stack, eventually};
use weft_model::{Partition, TraceId};

/// A trace id of a partition other than `other`'s.
fn trace_id_outside(other: &[u8; 16], partitions: u16) -> [u8; 16] {
    let of = |id: &[u8; 16]| Partition::of(&TraceId::from_bytes(id).unwrap(), partitions);
    loop {
        let id = random_id::<16>();
        if of(&id) != of(other) {
            return id;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_dead_lettered_and_the_rest_flows() {
    let stack = Stack::start().await;
    let alpha = stack.ns.tenant("alpha").await;
    let beta = stack.ns.tenant("beta").await;
    let poison_column =
        "ALTER TABLE spans ADD COLUMN poison UInt8 DEFAULT throwIf(name = 'poison-pill')";
    stack.clickhouse_sql(poison_column).await;
    // As a migration adding a column to `spans` does, the trace-sorted copy its view
    // fills gets the column too.
    stack
        .clickhouse_sql("ALTER TABLE spans_by_trace ADD COLUMN poison UInt8 DEFAULT 0")
        .await;

    // One request: a healthy trace and a poisoned one in another partition, so they
    // travel as two messages and reach the writer together.
    let healthy = random_id::<16>();
    let poisoned = trace_id_outside(&healthy, stack.ns.bus.partitions);
    let mut spans: Vec<_> = (0..3).map(|i| span(&healthy, &format!("op-{i}"))).collect();
    spans.push(span(&poisoned, "poison-pill"));
    assert_eq!(stack.export(&alpha.ingest_key, &request(spans)).await, 200);
    let (beta_request, beta_trace) = weft_e2e::otlp::trace_request(2);
    assert_eq!(stack.export(&beta.ingest_key, &beta_request).await, 200);

    stack
        .wait_for_trace(&alpha.read_key, &hex::encode(healthy), 3)
        .await;
    stack.wait_for_trace(&beta.read_key, &beta_trace, 2).await;

    let bus = weft_bus::Bus::connect(stack.ns.bus.clone()).await.unwrap();
    let stream = bus
        .jetstream()
        .get_stream(bus.subjects().dead_letter_stream())
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.fetch().max_messages(10).messages().await.unwrap();
    let kept = messages
        .next()
        .await
        .expect("a dead-lettered message")
        .unwrap();
    assert_eq!(
        kept.subject.as_str(),
        bus.subjects().dead_letter(weft_bus::Signal::Spans)
    );
    let headers = kept.headers.as_ref().unwrap();
    assert_eq!(
        headers.get(weft_bus::TENANT_HEADER).unwrap().as_str(),
        alpha.id.to_string()
    );
    let reason = headers
        .get(weft_bus::DEAD_LETTER_REASON_HEADER)
        .unwrap()
        .as_str();
    assert!(reason.contains("Code: 395"), "{reason}");
    let payload =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
            kept.payload.clone(),
        )
        .unwrap();
    let names: Vec<_> = payload.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["poison-pill"]);
    assert!(messages.next().await.is_none(), "only the poisoned message");

    let (status, _) = stack
        .query_get(
            &format!("/api/v1/traces/{}", hex::encode(poisoned)),
            &alpha.read_key,
        )
        .await;
    assert_eq!(status, 404);
    let metrics = stack
        .http
        .get(stack.sampler_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("weft_sampler_messages_dead_lettered_total 1"),
        "{metrics}"
    );

    // The partition of the poisoned trace keeps flowing.
    let mut after = weft_e2e::otlp::trace_request(1).0;
    let follow_up = span(&poisoned, "after-the-poison");
    after.resource_spans[0].scope_spans[0].spans = vec![follow_up];
    eventually("the follow-up export", Duration::from_secs(5), || async {
        (stack.export(&alpha.ingest_key, &after).await == 200).then_some(())
    })
    .await;
    stack
        .wait_for_trace(&alpha.read_key, &hex::encode(poisoned), 1)
        .await;
    stack.stop().await;
}
