//! The `weft-query` binary: the JSON API on :8080.

use weft_runtime::config::Env;
use weft_runtime::shutdown::{CancellationToken, cancel_on_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    weft_runtime::telemetry::init("weft-query", "info");
    let config = match weft_query::QueryConfig::from_env(&Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("weft-query: {error}");
            std::process::exit(2);
        }
    };
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    weft_query::serve(config, shutdown).await
}
