//! Large traces are read in pages: a 25 000-span trace comes back 10 000 spans at a time
//! in waterfall order, each page naming where the next starts, and together the pages
//! hold every span once.

use std::collections::HashSet;
use std::time::Duration;
use weft_e2e::otlp::{random_id, request, span};
use weft_e2e::{Stack, eventually};

const SPANS: usize = 25_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_trace_is_read_in_pages() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("large").await;
    let trace_id = random_id::<16>();
    let root = span(&trace_id, "root");
    let mut spans = vec![root.clone()];
    for i in 1..SPANS {
        let mut child = span(&trace_id, &format!("child-{i}"));
        child.parent_span_id = root.span_id.clone();
        spans.push(child);
    }
    for chunk in spans.chunks(5_000) {
        assert_eq!(
            stack
                .export(&tenant.ingest_key, &request(chunk.to_vec()))
                .await,
            200
        );
    }
    let path = format!("/api/v1/traces/{}", hex::encode(trace_id));
    eventually(
        "every span to be stored",
        Duration::from_secs(60),
        || async {
            let (status, body) = stack
                .query_get(&format!("{path}?span_limit=1"), &tenant.read_key)
                .await;
            (status == 200 && body["span_count"] == SPANS).then_some(())
        },
    )
    .await;

    let mut seen = HashSet::new();
    let mut offset = Some(0);
    let mut pages = Vec::new();
    while let Some(at) = offset {
        let (status, body) = stack
            .query_get(&format!("{path}?span_offset={at}"), &tenant.read_key)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["span_offset"], at);
        let page = body["spans"].as_array().unwrap();
        if at == 0 {
            assert_eq!(page[0]["name"], "root", "the waterfall starts at the root");
        }
        for span in page {
            assert!(seen.insert(span["span_id"].as_str().unwrap().to_owned()));
        }
        pages.push(page.len());
        offset = body["next_span_offset"].as_u64().map(|n| n as usize);
    }
    assert_eq!(pages, [10_000, 10_000, 5_000]);
    assert_eq!(seen.len(), SPANS);

    let (status, body) = stack
        .query_get(&format!("{path}?span_limit=20000"), &tenant.read_key)
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("span_limit"),
        "{body}"
    );
    stack.stop().await;
}
