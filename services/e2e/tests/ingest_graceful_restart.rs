//! A graceful restart of ingest under traffic loses no usage count: an ingest replica
//! that only writes usage every hour is stopped while a client keeps sending, and the
//! tenant's usage in PostgreSQL equals exactly what the answered requests carried.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use weft_e2e::otlp::trace_request;
use weft_e2e::{Namespace, Stack, StackOptions, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_under_traffic_loses_no_usage_count() {
    let options = StackOptions {
        usage_flush_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let stack = Stack::start_with(Namespace::create().await, options).await;
    let tenant = stack.ns.tenant("restarted").await;
    let replica = stack.start_ingest().await;
    let url = replica.url("/v1/traces");

    // Each request: 4 valid spans and 1 invalid one, so all three counts move.
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (http, key, answered, stop) = (
            stack.http.clone(),
            tenant.ingest_key.clone(),
            answered.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            use prost::Message;
            while !stop.load(Ordering::Relaxed) {
                let mut request = trace_request(5).0;
                request.resource_spans[0].scope_spans[0].spans[4].span_id = vec![0; 8];
                let sent = http
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .header("x-api-key", &key)
                    .body(request.encode_to_vec())
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    // Refused connections once the replica has stopped listening.
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        })
    };
    eventually("traffic to flow", Duration::from_secs(10), || async {
        (answered.load(Ordering::Relaxed) >= 20).then_some(())
    })
    .await;
    replica.stop().await;
    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(60), client)
        .await
        .expect("the client stops within a minute of being told")
        .unwrap();

    let requests = answered.load(Ordering::Relaxed) as i64;
    let day = *stack
        .ns
        .accounts
        .usage(tenant.id, 1)
        .await
        .unwrap()
        .first()
        .expect("usage written on shutdown");
    assert_eq!(
        (day.spans_received, day.spans_accepted, day.spans_rejected),
        (requests * 5, requests * 4, requests),
        "{requests} answered requests"
    );
    stack.stop().await;
}
