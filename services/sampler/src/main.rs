//! The `weft-sampler` binary: span partitions from JetStream into ClickHouse.

use weft_runtime::config::Env;
use weft_runtime::shutdown::{CancellationToken, cancel_on_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    weft_runtime::telemetry::init("weft-sampler", "info");
    let config = match weft_sampler::SamplerConfig::from_env(&Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("weft-sampler: {error}");
            std::process::exit(2);
        }
    };
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    weft_sampler::run(config, shutdown).await
}
