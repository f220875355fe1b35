//! The low floor of Weft's test kit, depending on no service: every test gets its own
//! namespace on the real NATS, ClickHouse and PostgreSQL (random bus prefix, fresh
//! ClickHouse database, fresh PostgreSQL database), so tests run in parallel and leave
//! nothing behind; private server processes for tests that take one down; hand-made
//! OTLP requests. Stacks of services are assembled one floor up, in `weft-e2e`.

mod child_server;
mod namespace;
pub mod otlp;

pub use child_server::ChildServer;
pub use namespace::{Namespace, TestTenant};

use std::future::Future;
use std::time::Duration;

/// Polls `check` until it returns `Some` or `deadline` passes; tests synchronise with
/// this rather than with sleeps.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs of the code under test, shown for failing tests (`WEFT_LOG` sets the filter).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
