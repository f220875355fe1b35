//! The `weft-ingest` binary: OTLP over gRPC (:4317) and HTTP (:4318).

use weft_ingest::{Ingest, IngestConfig, IngestListeners};
use weft_runtime::service;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    weft_runtime::telemetry::init("weft-ingest", "info");
    let config = service::load_config("weft-ingest", IngestConfig::from_env);
    let shutdown = service::shutdown_on_signal()?;
    let listeners = IngestListeners::bind(&config).await?;
    let ingest = Ingest::build(config).await?;
    ingest.serve(listeners, shutdown).await
}
