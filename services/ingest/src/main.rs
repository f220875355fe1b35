//! The `weft-ingest` binary: OTLP over gRPC (:4317) and HTTP (:4318).

use weft_runtime::config::Env;
use weft_runtime::shutdown::{CancellationToken, cancel_on_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    weft_runtime::telemetry::init("weft-ingest", "info");
    let config = match weft_ingest::IngestConfig::from_env(&Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("weft-ingest: {error}");
            std::process::exit(2);
        }
    };
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    weft_ingest::serve(config, shutdown).await
}
