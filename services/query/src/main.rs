//! The `weft-query` binary: the dashboard and the JSON API on :8080.

use weft_query::{Query, QueryConfig};
use weft_runtime::service;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    weft_runtime::telemetry::init("weft-query", "info");
    let config = service::load_config("weft-query", QueryConfig::from_env);
    let shutdown = service::shutdown_on_signal()?;
    let listener = service::bind(config.http_addr, "the dashboard and API").await?;
    let query = Query::build(config).await?;
    query.serve(listener, shutdown).await
}
