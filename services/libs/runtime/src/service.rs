//! What every binary's `main` shares: loading the typed config (exiting with a clear
//! message before any port is bound), binding listeners, and the signal-driven shutdown.

use crate::config::{ConfigError, Env};
use crate::shutdown::{CancellationToken, cancel_on_signal};
use anyhow::Context;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The config read from the process's `WEFT_*` variables; an invalid value ends the
/// process with status 2 and a message naming the variable.
pub fn load_config<T>(binary: &str, load: impl FnOnce(&Env) -> Result<T, ConfigError>) -> T {
    match load(&Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{binary}: {error}");
            std::process::exit(2);
        }
    }
}

/// Binds `addr`; the error names what the port was for.
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("failed to bind {what} on {addr}"))
}

/// A token cancelled on SIGINT or SIGTERM.
pub fn shutdown_on_signal() -> anyhow::Result<CancellationToken> {
    let token = CancellationToken::new();
    cancel_on_signal(token.clone()).context("failed to install the signal handlers")?;
    Ok(token)
}
