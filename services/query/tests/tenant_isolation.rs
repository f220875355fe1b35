//! Tenant isolation of the query API: every endpoint, called with another tenant's read
//! key, finds nothing of tenant A's trace (404 where the thing is named, empty lists
//! otherwise); and keys of the wrong scope or none at all are refused.

use weft_testkit::Stack;
use weft_testkit::otlp::trace_request;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_never_sees_a_trace() {
    let stack = Stack::start().await;
    let a = stack.ns.tenant("tenant-a").await;
    let b = stack.ns.tenant("tenant-b").await;
    let (request, trace_id) = trace_request(3);
    assert_eq!(stack.export(&a.ingest_key, &request).await, 200);
    stack.wait_for_trace(&a.read_key, &trace_id, 3).await;

    let trace_path = format!("/api/v1/traces/{trace_id}");
    let search_path = "/api/v1/traces?service=raw-client&lookback=1h";
    let operations_path = "/api/v1/services/raw-client/operations";

    // Tenant A sees its own data on every endpoint (the control).
    assert_eq!(stack.query_get(&trace_path, &a.read_key).await.0, 200);
    let (_, found) = stack.query_get(search_path, &a.read_key).await;
    assert_eq!(found["traces"][0]["trace_id"], trace_id.as_str());
    let (_, services) = stack.query_get("/api/v1/services", &a.read_key).await;
    assert_eq!(services["services"], serde_json::json!(["raw-client"]));
    assert_eq!(stack.query_get(operations_path, &a.read_key).await.0, 200);

    // Tenant B sees none of it.
    let (status, body) = stack.query_get(&trace_path, &b.read_key).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], format!("trace {trace_id} not found"));
    let (status, found) = stack.query_get(search_path, &b.read_key).await;
    assert_eq!(
        (status, found["traces"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, found) = stack
        .query_get("/api/v1/traces?lookback=1h", &b.read_key)
        .await;
    assert_eq!(
        (status, found["traces"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, services) = stack.query_get("/api/v1/services", &b.read_key).await;
    assert_eq!(
        (status, services["services"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    assert_eq!(stack.query_get(operations_path, &b.read_key).await.0, 404);

    // Keys: an ingest key cannot read, a missing or unknown key is unauthenticated.
    for path in [
        trace_path.as_str(),
        search_path,
        "/api/v1/services",
        operations_path,
    ] {
        assert_eq!(stack.query_get(path, &a.ingest_key).await.0, 403, "{path}");
        assert_eq!(
            stack
                .query_get(path, "weft_0000000000000000000000000000000000000001")
                .await
                .0,
            401,
            "{path}"
        );
        let status = stack
            .http
            .get(stack.query_url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "{path}");
    }

    // Bad ids and parameters are 400 with a message.
    let (status, body) = stack.query_get("/api/v1/traces/not-hex", &a.read_key).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("invalid trace id"));
    assert_eq!(
        stack
            .query_get(
                "/api/v1/traces/00000000000000000000000000000000",
                &a.read_key
            )
            .await
            .0,
        400
    );
    assert_eq!(
        stack
            .query_get("/api/v1/traces?limit=5000", &a.read_key)
            .await
            .0,
        400
    );
    stack.stop().await;
}
