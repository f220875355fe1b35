//! weft-loadtest: realistic OTLP trace traffic from a simulated e-commerce shop, sent to
//! Weft's ingest over gRPC or HTTP, with a report of achieved rates, failures and client
//! latency. Also the stack's demo workload.

pub mod cli;
pub mod config;
pub mod logs;
pub mod pacer;
pub mod report;
pub mod runner;
pub mod shop;
pub mod stats;
pub mod tenants;
pub mod transport;
pub mod tree;
pub mod workload;

use anyhow::Context as _;
use config::{JsonDestination, Mode, Pace, Settings};
use report::Report;
use std::io::Write as _;
use transport::Exporter;

/// Runs the load test or the demo described by `settings` and prints its report.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let exporter = Exporter::new(&settings.target, settings.concurrency)
        .context("failed to set up the exporter")?;
    let url = exporter.url(&settings.target);
    eprintln!("{}", announcement(&settings, &url));

    let finished = runner::drive(&settings, exporter, shutdown_signal()).await;
    let report = Report::new(&settings, url, &finished.stats, finished.elapsed);

    match &settings.json {
        None => print!("{report}"),
        Some(JsonDestination::Stdout) => {
            eprint!("{report}");
            println!("{}", report.to_json());
        }
        Some(JsonDestination::File(path)) => {
            print!("{report}");
            std::fs::write(path, report.to_json() + "\n").with_context(|| {
                format!("failed to write the JSON report to {}", path.display())
            })?;
        }
    }
    std::io::stdout()
        .flush()
        .context("failed to write the report")?;
    Ok(())
}

/// The line printed on start, saying what is about to happen.
fn announcement(settings: &Settings, url: &str) -> String {
    let pace = match settings.pace {
        Pace::Unlimited => "as fast as possible".to_owned(),
        Pace::SpansPerSecond(rate) => format!("{rate} spans/s"),
        Pace::TracesPerSecond(rate) => format!("{:.1} traces/min", rate * 60.0),
    };
    let tenants = settings.target.tenants.len();
    let until = match (settings.mode, settings.duration) {
        (Mode::Demo, _) | (_, None) => "until interrupted".to_owned(),
        (Mode::Run, Some(duration)) => format!("for {duration:?} (Ctrl-C stops early)"),
    };
    format!(
        "weft-loadtest {}: {pace} of ~{} spans/trace to {url} ({}{}), {tenants} tenant{}, seed {}, {until}",
        settings.mode.name(),
        settings.workload.spans_per_trace,
        settings.target.protocol,
        if settings.target.gzip { ", gzip" } else { "" },
        if tenants == 1 { "" } else { "s" },
        settings.workload.seed,
    )
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
