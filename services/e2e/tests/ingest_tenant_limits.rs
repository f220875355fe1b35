//! Per-tenant ingest limits and key revocation, as a tenant sees them: a tenant over its
//! span rate gets 429 with Retry-After (gRPC RESOURCE_EXHAUSTED with RetryInfo) while
//! another tenant is untouched; a revoked key is refused by every ingest replica within
//! 5 seconds, long before any key cache would expire.

use prost::Message;
use std::time::Duration;
use weft_bus::Bus;
use weft_e2e::otlp::trace_request;
use weft_e2e::{Namespace, Stack, StackOptions, eventually};
use weft_runtime::error::{RetryInfo, RpcStatus};

async fn export(
    stack: &Stack,
    addr: std::net::SocketAddr,
    key: &str,
    spans: usize,
) -> reqwest::Response {
    stack
        .http
        .post(format!("http://{addr}/v1/traces"))
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(serde_json::to_vec(&trace_request(spans).0).unwrap())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_rate_is_told_to_retry_and_others_are_untouched() {
    let stack = Stack::start().await;
    let noisy = stack.ns.tenant("noisy").await;
    let quiet = stack.ns.tenant("quiet").await;
    stack
        .ns
        .accounts
        .set_spans_per_second(noisy.id, Some(20))
        .await
        .unwrap();

    assert_eq!(
        export(&stack, stack.ingest_http, &noisy.ingest_key, 15)
            .await
            .status(),
        200
    );
    let refused = export(&stack, stack.ingest_http, &noisy.ingest_key, 15).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], tonic::Code::ResourceExhausted as i32);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("20 spans per second"),
        "{body}"
    );
    assert_eq!(
        export(&stack, stack.ingest_http, &quiet.ingest_key, 15)
            .await
            .status(),
        200
    );

    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(
        format!("http://{}", stack.ingest_grpc),
    )
    .await
    .unwrap();
    let mut call = tonic::Request::new(trace_request(15).0);
    call.metadata_mut()
        .insert("x-api-key", noisy.ingest_key.parse().unwrap());
    let status = client.export(call).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let details = RpcStatus::decode(status.details()).unwrap();
    let retry = RetryInfo::decode(details.details[0].value.as_slice()).unwrap();
    assert_eq!(retry.retry_delay.unwrap().seconds, 1);

    // Usage counts what each tenant sent: the quiet one's 15 spans, and one invalid.
    let mut mixed = trace_request(2).0;
    mixed.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![0; 16];
    let response = stack
        .http
        .post(stack.ingest_url("/v1/traces"))
        .header("content-type", "application/json")
        .header("x-api-key", &quiet.ingest_key)
        .body(serde_json::to_vec(&mixed).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    eventually(
        "the quiet tenant's usage",
        Duration::from_secs(10),
        || async {
            let days = stack.ns.accounts.usage(quiet.id, 1).await.ok()?;
            let day = days.first()?;
            ((day.spans_received, day.spans_accepted, day.spans_rejected) == (17, 16, 1))
                .then_some(())
        },
    )
    .await;
    eventually(
        "the noisy tenant's refused spans in its usage",
        Duration::from_secs(10),
        || async {
            let day = *stack.ns.accounts.usage(noisy.id, 1).await.ok()?.first()?;
            ((day.spans_accepted, day.spans_rejected) == (15, 30)).then_some(())
        },
    )
    .await;

    // The bucket refills at the tenant's rate and the tenant is served again.
    eventually(
        "the noisy tenant to be served again",
        Duration::from_secs(10),
        || async {
            (export(&stack, stack.ingest_http, &noisy.ingest_key, 15)
                .await
                .status()
                == 200)
                .then_some(())
        },
    )
    .await;
    stack.stop().await;
}

/// One span whose name is not UTF-8: the wire structure counts one span, decoding fails.
fn undecodable_span() -> Vec<u8> {
    let span = [0x2a, 0x02, 0xff, 0xfe];
    let scope = [&[0x12, span.len() as u8][..], &span].concat();
    let resource = [&[0x12, scope.len() as u8][..], &scope].concat();
    [&[0x0a, resource.len() as u8][..], &resource].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_tenant_is_refused_before_its_body_is_decoded() {
    let stack = Stack::start().await;
    let noisy = stack.ns.tenant("noisy").await;
    let quiet = stack.ns.tenant("quiet").await;
    stack
        .ns
        .accounts
        .set_spans_per_second(noisy.id, Some(10))
        .await
        .unwrap();
    assert_eq!(
        stack.export(&noisy.ingest_key, &trace_request(10).0).await,
        200
    );
    let post = |key: &str| {
        stack
            .http
            .post(stack.ingest_url("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .header("x-api-key", key)
            .body(undecodable_span())
            .send()
    };
    // Decoding would have answered 400: the limit answered first.
    assert_eq!(post(&noisy.ingest_key).await.unwrap().status(), 429);
    assert_eq!(post(&quiet.ingest_key).await.unwrap().status(), 400);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_by_every_replica_within_five_seconds() {
    // Keys are trusted for a minute: only the announcement can make revocation this fast.
    let options = StackOptions {
        key_cache_ttl: Duration::from_secs(60),
        ..Default::default()
    };
    let mut stack = Stack::start_with(Namespace::create().await, options).await;
    let replica = stack.start_ingest_replica().await;
    let tenant = stack.ns.tenant("acme").await;
    for addr in [stack.ingest_http, replica] {
        assert_eq!(
            export(&stack, addr, &tenant.ingest_key, 2).await.status(),
            200,
            "{addr}"
        );
    }

    let digest = stack
        .ns
        .accounts
        .revoke_api_key(tenant.id, tenant.ingest_key_id)
        .await
        .unwrap()
        .unwrap();
    let bus = Bus::connect(stack.ns.bus.clone()).await.unwrap();
    bus.announce(&weft_bus::KeyRevoked::new(&digest))
        .await
        .unwrap();
    for addr in [stack.ingest_http, replica] {
        eventually(
            &format!("replica {addr} to refuse the revoked key"),
            Duration::from_secs(5),
            || async {
                (export(&stack, addr, &tenant.ingest_key, 2).await.status() == 401).then_some(())
            },
        )
        .await;
    }
    stack.stop().await;
}
