//! Test kit for Weft: every test gets its own namespace on the real NATS, ClickHouse and
//! PostgreSQL (random bus prefix, fresh ClickHouse database, fresh PostgreSQL database),
//! so tests run in parallel and leave nothing behind; and a whole stack of services can
//! run in-process on `127.0.0.1:0`.

mod clickhouse_server;
mod namespace;
mod nats_server;
pub mod otlp;
mod stack;
pub mod web;

pub use clickhouse_server::ClickHouseServer;
pub use namespace::{Namespace, TestTenant};
pub use nats_server::NatsServer;
pub use stack::{Stack, StackOptions};

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
