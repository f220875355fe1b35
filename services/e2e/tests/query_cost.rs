//! Bounded query cost, as a careless or hostile read-key holder meets it: parameter lists
//! have caps answered with 400 naming the parameter; a read past ClickHouse's limits is
//! the client's to narrow (400, not 503); a read whose client went away is killed on the
//! server; one tenant's concurrent scans beyond its share get 429 while another tenant
//! is served.

use std::time::Duration;
use weft_e2e::{Stack, eventually};

/// Trace index rows the heavy searches scan: enough that a search by duration takes
/// seconds on ClickHouse 18.16.
const TRACES: u64 = 8_000_000;

/// Writes `TRACES` one-span traces for `tenant` straight into the namespace's trace index
/// (naming the columns, so that columns added later keep their defaults).
async fn plant_traces(stack: &Stack, tenant: weft_model::TenantId) {
    let sql = format!(
        "INSERT INTO trace_index (tenant_id, trace_id, start_time, start_time_unix_nano, \
         end_time_unix_nano, root_service, root_name, span_count, error_count, service_names) \
         SELECT toUUID('{tenant}'), \
         toFixedString(concat(reinterpretAsString(number + 1), 'weft-cost'), 16), now(), \
         toUInt64(now()) * 1000000000 + number, toUInt64(now()) * 1000000000 + number * 2, \
         'planted', 'GET /', 1, 0, ['planted'] FROM numbers({TRACES})"
    );
    stack.clickhouse_sql(&sql).await;
}

/// Reads of `tenant` running on the server right now.
async fn running_reads(stack: &Stack, tenant: weft_model::TenantId) -> usize {
    let sql = format!(
        "SELECT count() FROM system.processes WHERE query_id LIKE 'weft-read-%' \
         AND query LIKE '%{tenant}%'"
    );
    stack.clickhouse_sql(&sql).await.trim().parse().unwrap()
}

async fn get(stack: &Stack, base: &str, path: &str, key: &str) -> (u16, serde_json::Value) {
    let response = stack
        .http
        .get(format!("{base}{path}"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

const SLOW_SEARCH: &str = "/api/v1/traces?lookback=1h&sort=longest&limit=5";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_cost_is_bounded() {
    let stack = Stack::start().await;
    let heavy = stack.ns.tenant("heavy").await;
    let light = stack.ns.tenant("light").await;
    let base = stack.query_url("");

    // Caps on parameter lists, answered at once and naming the parameter.
    let thousand = "&attr=k=v".repeat(1000);
    let (status, body) = get(
        &stack,
        &base,
        &format!("/api/v1/traces?lookback=1h{thousand}"),
        &heavy.read_key,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "too many attr filters: at most 20");
    let (status, body) = get(
        &stack,
        &base,
        &format!("/api/v1/traces?operation={}", "x".repeat(2000)),
        &heavy.read_key,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("operation is longer than 1024 characters"))
    );

    plant_traces(&stack, heavy.id).await;

    // A read past its limits is the client's to narrow: 400, and the service serves on.
    let strict = stack
        .start_query_with(|config| {
            // Above a few granules (8192 rows each) that any tenant's seek reads, far below the
            // heavy tenant's millions.
            config.clickhouse.read_limits.max_rows_to_read = 100_000;
        })
        .await;
    let (status, body) = get(&stack, &strict.url(""), SLOW_SEARCH, &heavy.read_key).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("too expensive"),
        "{body}"
    );
    // The same for every filter and for "what is different".
    for path in [
        "/api/v1/traces?lookback=1h&sort=errors&min_trace_duration=1ms",
        "/api/v1/traces?lookback=1h&sampled_by=rule&max_trace_duration=1s",
        "/api/v1/traces/difference?lookback=1h&selection=slow&threshold=1ms",
        "/api/v1/traces/difference?lookback=1h&selection=errors",
    ] {
        let (status, body) = get(&stack, &strict.url(""), path, &heavy.read_key).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("too expensive"),
            "{path}: {body}"
        );
    }
    let (status, _) = get(
        &stack,
        &strict.url(""),
        "/api/v1/traces?lookback=1h",
        &light.read_key,
    )
    .await;
    assert_eq!(status, 200);
    let hurried = stack
        .start_query_with(|config| {
            config.clickhouse.read_limits.max_execution_time = Duration::from_secs(1);
        })
        .await;
    let (status, body) = get(&stack, &hurried.url(""), SLOW_SEARCH, &heavy.read_key).await;
    assert_eq!(status, 400, "{body}");

    // A client that gives up takes its query with it.
    let abandoned = stack
        .http
        .get(format!("{base}{SLOW_SEARCH}"))
        .header("x-api-key", &heavy.read_key)
        .timeout(Duration::from_millis(700))
        .send()
        .await;
    assert!(abandoned.unwrap_err().is_timeout());
    eventually(
        "the abandoned read to be killed on the server",
        Duration::from_secs(2),
        || async { (running_reads(&stack, heavy.id).await == 0).then_some(()) },
    )
    .await;

    // One tenant's scans beyond its share wait their turn; another tenant is served.
    let searches: Vec<_> = (0..6)
        .map(|_| {
            let (http, url, key) = (
                stack.http.clone(),
                format!("{base}{SLOW_SEARCH}"),
                heavy.read_key.clone(),
            );
            tokio::spawn(async move {
                let response = http.get(url).header("x-api-key", key).send().await.unwrap();
                (
                    response.status().as_u16(),
                    response.headers().get("retry-after").cloned(),
                )
            })
        })
        .collect();
    eventually(
        "the heavy tenant's scans to run",
        Duration::from_secs(5),
        || async { (running_reads(&stack, heavy.id).await >= 1).then_some(()) },
    )
    .await;
    let (status, _) = get(&stack, &base, "/api/v1/traces?lookback=1h", &light.read_key).await;
    assert_eq!(status, 200, "another tenant is served meanwhile");
    let mut statuses = Vec::new();
    for search in searches {
        let (status, retry_after) = search.await.unwrap();
        if status == 429 {
            assert_eq!(retry_after.unwrap(), "1");
        }
        statuses.push(status);
    }
    // Those with a slot ran to the end or to their time limit (four heavy scans share two
    // cores); the two without one were told to retry.
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "four scan slots per tenant: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 400, 429].contains(s)),
        "{statuses:?}"
    );
    strict.stop().await;
    hurried.stop().await;
    stack.stop().await;
}
