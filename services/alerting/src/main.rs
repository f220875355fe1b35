//! The `weft-alerting` binary: alert rules evaluated, notifications delivered.

use weft_alerting::{Alerting, AlertingConfig};
use weft_runtime::service;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    weft_runtime::telemetry::init("weft-alerting", "info");
    let config = service::load_config("weft-alerting", AlertingConfig::from_env);
    let shutdown = service::shutdown_on_signal()?;
    let health = service::bind(config.http_addr, "the alerting health endpoint").await?;
    let alerting = Alerting::build(config).await?;
    alerting.serve(health, shutdown).await
}
