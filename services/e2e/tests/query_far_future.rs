//! Times past 2106 do not hide data: ingest refuses them now, but a store may already
//! hold spans whose end (or start) lies past the end of ClickHouse 18.16's 32-bit
//! seconds. Such a trace reads back whole, and a search window reaching past 2106 finds
//! what it covers.

use weft_e2e::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_stored_with_times_past_2106_read_back() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("timeless").await;
    let trace = "7a".repeat(16);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let seconds = now / 1_000_000_000;
    // One span that starts now and "ends" at 2^64-1 ns, as an old ingest stored it (the
    // view on `spans` indexes it, ending then too).
    stack
        .clickhouse_sql(&format!(
            "INSERT INTO spans (tenant_id, trace_id, span_id, service_name, name, start_time, \
             start_time_unix_nano, duration_ns) VALUES (toUUID('{}'), unhex('{trace}'), \
             unhex('00000000000000a1'), 'legacy', 'endless', toDateTime({seconds}), {now}, {})",
            tenant.id,
            u64::MAX - now
        ))
        .await;
    let (status, body) = stack
        .query_get(&format!("/api/v1/traces/{trace}"), &tenant.read_key)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["span_count"], 1);
    assert_eq!(body["spans"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["spans"][0]["name"], "endless");

    let (status, body) = stack
        .query_get(
            "/api/v1/traces?lookback=1h&end=2200-01-01T00:00:00Z&start=2000-01-01T00:00:00Z",
            &tenant.read_key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["traces"][0]["trace_id"], trace, "{body}");
    stack.stop().await;
}
