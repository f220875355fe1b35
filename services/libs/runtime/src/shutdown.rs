//! Graceful shutdown: one token cancelled on SIGINT or SIGTERM, which every loop and
//! server of a service watches.

pub use tokio_util::sync::CancellationToken;

use tokio::signal::unix::{SignalKind, signal};

/// Cancels `token` when the process receives SIGINT or SIGTERM. The handlers are
/// installed before this returns, so a service that cannot install them fails at start
/// instead of running without a way to stop gracefully.
pub fn cancel_on_signal(token: CancellationToken) -> std::io::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutdown signal received, draining");
        token.cancel();
    });
    Ok(())
}
