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

/// How often a drain that lasts says what it still waits for.
const DRAIN_WARNING_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Awaits `part` of a service; once `shutdown` is cancelled, warns every few seconds
/// while it lasts, so a drain that does not end names what it waits for (in the log, or
/// in a hung test's output).
pub async fn draining<F: std::future::IntoFuture>(
    service: &str,
    part: &str,
    shutdown: &CancellationToken,
    part_future: F,
) -> F::Output {
    let mut part_future = std::pin::pin!(part_future.into_future());
    tokio::select! {
        output = &mut part_future => return output,
        _ = shutdown.cancelled() => {}
    }
    let started = tokio::time::Instant::now();
    loop {
        tokio::select! {
            output = &mut part_future => return output,
            _ = tokio::time::sleep(DRAIN_WARNING_EVERY) => tracing::warn!(
                service,
                waited_seconds = started.elapsed().as_secs(),
                "the drain still waits for {part}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_part_returns_what_it_awaited_before_and_after_the_shutdown() {
        let shutdown = CancellationToken::new();
        let quick = async { 3 };
        assert_eq!(draining("test", "a quick part", &shutdown, quick).await, 3);
        let slow = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            7
        };
        let cancel = async {
            shutdown.cancel();
        };
        let (output, ()) = tokio::join!(draining("test", "a slow part", &shutdown, slow), cancel);
        assert_eq!(output, 7);
    }
}
