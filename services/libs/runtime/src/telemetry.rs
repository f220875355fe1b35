//! Structured logging for every service, on stderr: JSON lines when
//! `WEFT_LOG_FORMAT=json`, readable text otherwise; the filter comes from `WEFT_LOG`
//! (default `default_filter`). With `WEFT_SELF_TRACES_ENDPOINT` and
//! `WEFT_SELF_TRACES_KEY` set, the service's own request spans are also exported as OTLP
//! (see [`crate::self_traces`]). Call it from inside the tokio runtime.

use crate::self_traces::{self, SelfTraceConfig};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub fn init(service: &'static str, default_filter: &str) {
    let filter =
        EnvFilter::try_from_env("WEFT_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs: Box<dyn Layer<Registry> + Send + Sync> =
        if std::env::var("WEFT_LOG_FORMAT").as_deref() == Ok("json") {
            Box::new(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_target(false)
                    .with_writer(std::io::stderr),
            )
        } else {
            Box::new(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_writer(std::io::stderr),
            )
        };
    let self_traces = SelfTraceConfig::from_env(|name| std::env::var(name).ok()).map(|config| {
        let (layer, export) = self_traces::layer(service, config);
        tokio::spawn(export);
        layer
    });
    let exporting = self_traces.is_some();
    // The filter is the logs' only: spans are exported whatever the log level.
    let result = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(self_traces)
        .try_init();
    if result.is_ok() {
        tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            self_traces = exporting,
            "starting"
        );
    }
}
