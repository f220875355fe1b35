//! A read key revoked on the dashboard of one query replica is refused by every other
//! replica within 5 seconds, although replicas trust a key lookup for a minute: the
//! revocation is announced over NATS.

use std::time::Duration;
use weft_e2e::web::Visitor;
use weft_e2e::{Namespace, Stack, StackOptions, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_read_key_is_refused_by_every_query_replica() {
    let options = StackOptions {
        key_cache_ttl: Duration::from_secs(60),
        ..Default::default()
    };
    let mut stack = Stack::start_with(Namespace::create().await, options).await;
    let replica = stack.start_query_replica().await;
    let mut alice = Visitor::new(&stack);
    alice.sign_up("alice@acme.io", "Acme").await;
    let keys = alice.get("/keys").await;
    let read_key = alice
        .submit(&keys, "/keys", &[("name", "grafana"), ("scope", "read")])
        .await
        .shown("new-key");
    let services = |addr: std::net::SocketAddr| {
        let (http, read_key) = (stack.http.clone(), read_key.clone());
        async move {
            http.get(format!("http://{addr}/api/v1/services"))
                .header("x-api-key", read_key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Both replicas have looked the key up and now trust it for a minute.
    for addr in [stack.query, replica] {
        assert_eq!(services(addr).await, 200, "{addr}");
    }

    let keys = alice.get("/keys").await;
    let revoke = keys.row_actions("grafana", "/keys/")[0].clone();
    assert_eq!(
        alice.submit(&keys, &revoke, &[]).await.location.as_deref(),
        Some("/keys")
    );
    for addr in [stack.query, replica] {
        eventually(
            &format!("query replica {addr} to refuse the revoked key"),
            Duration::from_secs(5),
            || async { (services(addr).await == 401).then_some(()) },
        )
        .await;
    }
    stack.stop().await;
}
