//! Drives a run: paces requests, keeps at most `concurrency` of them in flight, stops at
//! the deadline or on a signal, waits for the requests in flight, and prints progress.

use crate::config::{Mode, Pace, Settings, Signal};
use crate::pacer::Pacer;
use crate::report::{LatencySummary, per_second};
use crate::stats::{Sent, Stats, Transition};
use crate::tenants::TenantRotation;
use crate::transport::{Exporter, Failure, Outcome};
use crate::workload::{Batch, Workload};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Backlog a sender that fell behind may catch up at once.
const CATCH_UP_BURST: Duration = Duration::from_millis(100);

/// What a finished run leaves behind.
#[derive(Debug)]
pub struct Finished {
    pub stats: Stats,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

/// State shared by the requests in flight.
struct Shared {
    exporter: Exporter,
    stats: Mutex<Stats>,
    api_keys: Vec<String>,
    timeout: Duration,
    mode: Mode,
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        // A panicked request cannot leave counters half-updated in a harmful way.
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sends traffic as `settings` say until the duration is over or `shutdown` completes.
pub async fn drive(
    settings: &Settings,
    exporter: Exporter,
    shutdown: impl Future<Output = ()>,
) -> Finished {
    let tenants = &settings.target.tenants;
    let shared = Arc::new(Shared {
        exporter,
        stats: Mutex::new(Stats::new(tenants.len())),
        api_keys: tenants
            .iter()
            .map(|tenant| tenant.api_key.clone())
            .collect(),
        timeout: settings.target.timeout,
        mode: settings.mode,
    });
    let mut rotation = TenantRotation::new(tenants);
    let mut workload = Workload::new(&settings.workload);
    let (rate, paced_by_traces) = match settings.pace {
        Pace::Unlimited => (None, false),
        Pace::SpansPerSecond(rate) => (Some(rate), false),
        Pace::TracesPerSecond(rate) => (Some(rate), true),
    };
    let mut pacer = Pacer::new(rate, CATCH_UP_BURST);
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let start = Instant::now();

    let progress = settings.progress_every.map(|every| {
        tokio::spawn(report_progress(
            Arc::clone(&shared),
            Arc::clone(&permits),
            settings.concurrency,
            start,
            every,
            settings.target.signal.unit(),
        ))
    });

    let deadline = settings.duration.map(|duration| start + duration);
    let stop = async {
        tokio::select! {
            () = shutdown => {}
            () = sleep_until_deadline(deadline) => {}
        }
    };
    tokio::pin!(stop);

    loop {
        let delay = pacer.delay(start.elapsed());
        if !delay.is_zero() {
            tokio::select! {
                biased;
                () = &mut stop => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        // Waiting for a free slot delays the schedule; the pacer catches up afterwards,
        // within its burst.
        let permit = tokio::select! {
            biased;
            () = &mut stop => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let batch = match settings.target.signal {
            Signal::Traces => workload.batch(settings.traces_per_request),
            Signal::Logs => workload.log_batch(settings.traces_per_request),
        };
        pacer.charge(if paced_by_traces {
            batch.traces
        } else {
            batch.spans
        });
        let tenant = rotation.next_index();
        tokio::spawn(export(Arc::clone(&shared), tenant, batch, permit));
    }

    let in_flight = settings.concurrency - permits.available_permits();
    if in_flight > 0 {
        eprintln!("waiting for {in_flight} requests in flight");
    }
    // Every request ends within its timeout, so this wait is bounded.
    let all = u32::try_from(settings.concurrency).unwrap_or(u32::MAX);
    let _drained = permits.acquire_many(all).await;
    let elapsed = start.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }
    let stats = shared.stats().clone();
    Finished { stats, elapsed }
}

async fn sleep_until_deadline(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Encodes and sends one batch, then records what happened.
async fn export(shared: Arc<Shared>, tenant: usize, batch: Batch, _permit: OwnedSemaphorePermit) {
    let Batch {
        request,
        traces,
        spans,
    } = batch;
    let (payload, payload_bytes) = shared.exporter.encode(request);
    let sent = Sent {
        tenant,
        traces,
        spans,
        payload_bytes,
    };
    let started = Instant::now();
    let sending = shared.exporter.send(payload, &shared.api_keys[tenant]);
    let outcome = tokio::time::timeout(shared.timeout, sending)
        .await
        .unwrap_or_else(|_| Outcome::Failed(Failure::timed_out(shared.timeout)));
    let latency = started.elapsed();
    let transition = shared.stats().record(sent, &outcome, latency);
    if shared.mode == Mode::Demo
        && let Some(transition) = transition
    {
        match transition {
            Transition::FirstAccepted => eprintln!("demo: ingest accepted the first traces"),
            Transition::StartedFailing(failure) => eprintln!(
                "demo: export failed ({}: {}); retrying with the next trace",
                failure.kind, failure.detail
            ),
            Transition::Recovered => eprintln!("demo: exports are accepted again"),
        }
    }
}

/// Prints one line per interval with the rates and latency of that interval.
async fn report_progress(
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    concurrency: usize,
    start: Instant,
    every: Duration,
    unit: &'static str,
) {
    let mut ticks = tokio::time::interval_at(start + every, every);
    let mut previous = start;
    loop {
        let now = ticks.tick().await;
        let window = shared.stats().take_window();
        let interval = now - previous;
        previous = now;
        let latency = LatencySummary::from_micros(&window.latency);
        let ms =
            |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
        eprintln!(
            "[{:>6.0}s] {:>9.1} {}/s  {:>7.1} req/s  ok {:<6} failed {:<6} in flight {:<4} p50 {}  p99 {}",
            (now - start).as_secs_f64(),
            per_second(window.spans_sent, interval),
            unit,
            per_second(window.requests_ok + window.requests_failed, interval),
            window.requests_ok,
            window.requests_failed,
            concurrency - permits.available_permits(),
            ms(latency.p50),
            ms(latency.p99),
        );
    }
}
