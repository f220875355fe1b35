//! Structured logging for every service, on stderr: JSON lines when
//! `WEFT_LOG_FORMAT=json`, readable text otherwise; the filter comes from `WEFT_LOG`
//! (default `default_filter`).

use tracing_subscriber::EnvFilter;

pub fn init(service: &'static str, default_filter: &str) {
    let filter =
        EnvFilter::try_from_env("WEFT_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let result = if std::env::var("WEFT_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    if result.is_ok() {
        tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
    }
}
