//! The `weft-sampler` binary: span partitions from JetStream into ClickHouse.

use weft_runtime::service;
use weft_sampler::{Sampler, SamplerConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    weft_runtime::telemetry::init("weft-sampler", "info");
    let config = service::load_config("weft-sampler", SamplerConfig::from_env);
    let shutdown = service::shutdown_on_signal()?;
    let health = service::bind(config.http_addr, "the sampler's health endpoint").await?;
    let sampler = Sampler::build(config).await?;
    sampler.serve(health, shutdown).await
}
