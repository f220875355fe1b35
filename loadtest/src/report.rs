//! The end-of-run report: achieved rates, outcomes, failures by kind and latency
//! percentiles, as a table for people and as JSON for scripts.

use crate::config::{Pace, Settings, Signal};
use crate::stats::Stats;
use crate::transport::FailureClass;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt::{self, Write as _};
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub mode: &'static str,
    /// `traces` or `logs`; for logs, the counts and rates named after spans count log
    /// records (one per span of the generated traces).
    pub signal: &'static str,
    pub protocol: &'static str,
    pub url: String,
    pub gzip: bool,
    pub target: TargetReport,
    pub elapsed_seconds: f64,
    pub requests: RequestCounts,
    pub traces_sent: u64,
    pub spans: SpanCounts,
    /// Encoded size of all requests before compression.
    pub payload_bytes: u64,
    pub throughput: Throughput,
    pub latency_ms: Latencies,
    pub failures: Vec<FailureReport>,
    pub tenants: Vec<TenantReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetReport {
    pub spans_per_second: Option<f64>,
    pub traces_per_second: Option<f64>,
    pub duration_seconds: Option<f64>,
    pub spans_per_trace: u32,
    pub traces_per_request: usize,
    pub concurrency: usize,
    pub error_share: f64,
    pub slow_share: f64,
    pub seed: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RequestCounts {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SpanCounts {
    pub sent: u64,
    pub accepted: u64,
    /// Refused by the server in a partial success.
    pub rejected: u64,
    pub rejection_example: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    pub requests_per_second: f64,
    pub traces_per_second: f64,
    pub spans_per_second: f64,
    pub accepted_spans_per_second: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Latencies {
    /// Requests the server accepted.
    pub ok: LatencySummary,
    /// Requests that failed, including timeouts and refused connections.
    pub failed: LatencySummary,
}

/// Percentiles of client latency (from sending the request to the end of the answer).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl LatencySummary {
    /// From a histogram of microseconds, in milliseconds.
    pub fn from_micros(histogram: &Histogram<u64>) -> Self {
        let count = histogram.len();
        let ms = |micros: f64| (count > 0).then_some(micros / 1_000.0);
        Self {
            count,
            mean: ms(histogram.mean()),
            p50: ms(histogram.value_at_quantile(0.50) as f64),
            p90: ms(histogram.value_at_quantile(0.90) as f64),
            p99: ms(histogram.value_at_quantile(0.99) as f64),
            max: ms(histogram.max() as f64),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FailureReport {
    pub kind: String,
    pub class: FailureClass,
    pub count: u64,
    pub example: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TenantReport {
    /// The start of the API key only.
    pub key: String,
    pub weight: u32,
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub spans_accepted: u64,
}

/// `count` per second over `elapsed`; zero for an empty interval.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

impl Report {
    pub fn new(settings: &Settings, url: String, stats: &Stats, elapsed: Duration) -> Self {
        let (spans_per_second, traces_per_second) = match settings.pace {
            Pace::Unlimited => (None, None),
            Pace::SpansPerSecond(rate) => (Some(rate), None),
            Pace::TracesPerSecond(rate) => (None, Some(rate)),
        };
        let failed_of = |class| {
            stats
                .failures
                .values()
                .filter(|tally| tally.class == class)
                .map(|tally| tally.count)
                .sum()
        };
        let workload = &settings.workload;
        Self {
            mode: settings.mode.name(),
            signal: settings.target.signal.name(),
            protocol: settings.target.protocol.name(),
            url,
            gzip: settings.target.gzip,
            target: TargetReport {
                spans_per_second,
                traces_per_second,
                duration_seconds: settings.duration.map(|duration| duration.as_secs_f64()),
                spans_per_trace: workload.spans_per_trace,
                traces_per_request: settings.traces_per_request,
                concurrency: settings.concurrency,
                error_share: workload.error_share,
                slow_share: workload.slow_share,
                seed: workload.seed,
            },
            elapsed_seconds: elapsed.as_secs_f64(),
            requests: RequestCounts {
                sent: stats.requests(),
                ok: stats.requests_ok,
                failed: stats.requests_failed,
                server_errors: failed_of(FailureClass::Server),
                transport_errors: failed_of(FailureClass::Transport),
            },
            traces_sent: stats.traces_sent,
            spans: SpanCounts {
                sent: stats.spans_sent,
                accepted: stats.spans_accepted,
                rejected: stats.spans_rejected,
                rejection_example: stats.rejection_example.clone(),
            },
            payload_bytes: stats.payload_bytes,
            throughput: Throughput {
                requests_per_second: per_second(stats.requests(), elapsed),
                traces_per_second: per_second(stats.traces_sent, elapsed),
                spans_per_second: per_second(stats.spans_sent, elapsed),
                accepted_spans_per_second: per_second(stats.spans_accepted, elapsed),
            },
            latency_ms: Latencies {
                ok: LatencySummary::from_micros(&stats.latency_ok),
                failed: LatencySummary::from_micros(&stats.latency_failed),
            },
            failures: stats
                .failures
                .iter()
                .map(|(kind, tally)| FailureReport {
                    kind: kind.to_string(),
                    class: tally.class,
                    count: tally.count,
                    example: tally.example.clone(),
                })
                .collect(),
            tenants: settings
                .target
                .tenants
                .iter()
                .zip(&stats.tenants)
                .map(|(tenant, tally)| TenantReport {
                    key: tenant.label(),
                    weight: tenant.weight,
                    requests_ok: tally.requests_ok,
                    requests_failed: tally.requests_failed,
                    spans_accepted: tally.spans_accepted,
                })
                .collect(),
        }
    }

    pub fn to_json(&self) -> String {
        // A tree of plain numbers and strings always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn optional_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"))
}

fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The table printed at the end of a run.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let compression = if self.gzip { "gzip" } else { "uncompressed" };
        let _ = writeln!(
            out,
            "weft-loadtest {} · {} · {} · {} · {}",
            self.mode, self.signal, self.protocol, compression, self.url
        );
        let unit = if self.signal == Signal::Logs.name() {
            Signal::Logs.unit()
        } else {
            Signal::Traces.unit()
        };
        let target = match (self.target.spans_per_second, self.target.traces_per_second) {
            (Some(rate), _) => format!("target {rate:.0} {unit}/s"),
            (_, Some(rate)) => format!("target {:.1} traces/min", rate * 60.0),
            _ => "no rate limit".to_owned(),
        };
        let _ = writeln!(
            out,
            "elapsed     {:>10.2} s    {target}, {} traces/request, concurrency {}",
            self.elapsed_seconds, self.target.traces_per_request, self.target.concurrency
        );
        let _ = writeln!(
            out,
            "requests    {:>10} sent  {:>8} ok  {:>8} failed ({} server, {} transport)  {:>10.1} req/s",
            self.requests.sent,
            self.requests.ok,
            self.requests.failed,
            self.requests.server_errors,
            self.requests.transport_errors,
            self.throughput.requests_per_second
        );
        let _ = writeln!(
            out,
            "{unit:<11} {:>10} sent  {:>8} accepted  {:>8} rejected  {:>10.1} {unit}/s sent  {:.1} accepted",
            self.spans.sent,
            self.spans.accepted,
            self.spans.rejected,
            self.throughput.spans_per_second,
            self.throughput.accepted_spans_per_second
        );
        let _ = writeln!(
            out,
            "traces      {:>10} sent  {:>10.1} traces/s",
            self.traces_sent, self.throughput.traces_per_second
        );
        let average = self
            .payload_bytes
            .checked_div(self.requests.sent)
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "payload     {:>10}  ({} per request, before compression)",
            bytes(self.payload_bytes),
            bytes(average)
        );
        if let Some(example) = &self.spans.rejection_example {
            let _ = writeln!(out, "rejected    {example:?}");
        }

        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "latency ms  {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "requests", "mean", "p50", "p90", "p99", "max"
        );
        for (name, summary) in [
            ("ok", &self.latency_ms.ok),
            ("failed", &self.latency_ms.failed),
        ] {
            let _ = writeln!(
                out,
                "  {name:<9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
                summary.count,
                optional_ms(summary.mean),
                optional_ms(summary.p50),
                optional_ms(summary.p90),
                optional_ms(summary.p99),
                optional_ms(summary.max)
            );
        }

        if !self.failures.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{:<26} {:>9}  {:<9}  example",
                "failures", "count", "class"
            );
            for failure in &self.failures {
                let class = match failure.class {
                    FailureClass::Server => "server",
                    FailureClass::Transport => "transport",
                };
                let _ = writeln!(
                    out,
                    "  {:<24} {:>9}  {class:<9}  {}",
                    failure.kind, failure.count, failure.example
                );
            }
        }

        if self.tenants.len() > 1 {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{:<18} {:>6} {:>12} {:>12} {:>14}",
                "tenants", "weight", "ok", "failed", "spans accepted"
            );
            for tenant in &self.tenants {
                let _ = writeln!(
                    out,
                    "  {:<16} {:>6} {:>12} {:>12} {:>14}",
                    tenant.key,
                    tenant.weight,
                    tenant.requests_ok,
                    tenant.requests_failed,
                    tenant.spans_accepted
                );
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mode, Protocol, Target, Tenant, WorkloadConfig};
    use crate::stats::{Sent, latency_histogram};
    use crate::transport::{Failure, FailureKind, Outcome};

    fn settings() -> Settings {
        Settings {
            mode: Mode::Run,
            target: Target {
                endpoint: "http://127.0.0.1:4318".into(),
                protocol: Protocol::HttpProtobuf,
                signal: Signal::Traces,
                gzip: false,
                timeout: Duration::from_secs(10),
                tenants: vec![
                    Tenant {
                        api_key: format!("weft_{}", "1".repeat(40)),
                        weight: 3,
                    },
                    Tenant {
                        api_key: format!("weft_{}", "2".repeat(40)),
                        weight: 1,
                    },
                ],
            },
            workload: WorkloadConfig {
                spans_per_trace: 20,
                extra_attributes: 0,
                error_share: 0.05,
                slow_share: 0.05,
                seed: 1,
                environment: "test",
            },
            pace: Pace::SpansPerSecond(5_000.0),
            duration: Some(Duration::from_secs(30)),
            traces_per_request: 10,
            concurrency: 16,
            json: None,
            progress_every: None,
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram_in_milliseconds() {
        let mut histogram = latency_histogram();
        for ms in 1..=1_000_u64 {
            histogram.record(ms * 1_000).unwrap();
        }
        let summary = LatencySummary::from_micros(&histogram);
        let close = |value: Option<f64>, expected: f64| {
            let value = value.unwrap();
            assert!(
                (value - expected).abs() <= expected * 0.002,
                "{value} vs {expected}"
            );
        };
        assert_eq!(summary.count, 1_000);
        close(summary.p50, 500.0);
        close(summary.p90, 900.0);
        close(summary.p99, 990.0);
        close(summary.max, 1_000.0);
        close(summary.mean, 500.5);

        let empty = LatencySummary::from_micros(&latency_histogram());
        assert_eq!(empty.count, 0);
        assert_eq!(empty.p99, None);
    }

    #[test]
    fn rates_divide_by_the_elapsed_time() {
        assert_eq!(per_second(15_000, Duration::from_secs(3)), 5_000.0);
        assert_eq!(per_second(1, Duration::from_millis(250)), 4.0);
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
    }

    fn sample_report() -> Report {
        let mut stats = Stats::new(2);
        let ok = Outcome::Accepted {
            rejected_spans: 0,
            message: None,
        };
        for i in 0..100_u64 {
            let sent = Sent {
                tenant: usize::from(i % 4 == 3),
                traces: 10,
                spans: 200,
                payload_bytes: 30_000,
            };
            stats.record(sent, &ok, Duration::from_millis(1 + i % 10));
        }
        let unavailable = Outcome::Failed(Failure {
            kind: FailureKind::Http(503),
            detail: "bus unavailable".into(),
        });
        stats.record(
            Sent {
                tenant: 0,
                traces: 10,
                spans: 200,
                payload_bytes: 30_000,
            },
            &unavailable,
            Duration::from_millis(2),
        );
        Report::new(
            &settings(),
            "http://127.0.0.1:4318/v1/traces".into(),
            &stats,
            Duration::from_secs(4),
        )
    }

    #[test]
    fn the_report_adds_up() {
        let report = sample_report();
        assert_eq!(report.requests.sent, 101);
        assert_eq!(report.requests.server_errors, 1);
        assert_eq!(report.requests.transport_errors, 0);
        assert_eq!(report.spans.sent, 20_200);
        assert_eq!(report.spans.accepted, 20_000);
        assert_eq!(report.throughput.spans_per_second, 5_050.0);
        assert_eq!(report.throughput.accepted_spans_per_second, 5_000.0);
        assert_eq!(report.throughput.requests_per_second, 25.25);
        assert_eq!(report.tenants[0].requests_ok, 75);
        assert_eq!(report.tenants[1].requests_ok, 25);
        assert!(
            !report.tenants[0].key.contains("1111111111"),
            "keys are not printed whole"
        );
    }

    #[test]
    fn the_table_shows_rates_failures_and_percentiles() {
        let table = sample_report().to_string();
        for expected in [
            "5050.0 spans/s",
            "req/s",
            "http 503",
            "bus unavailable",
            "p99",
            "weft_1111111",
        ] {
            assert!(
                table.contains(expected),
                "{expected:?} missing from\n{table}"
            );
        }
    }

    #[test]
    fn the_json_has_the_documented_fields() {
        let json: serde_json::Value = serde_json::from_str(&sample_report().to_json()).unwrap();
        assert_eq!(json["throughput"]["spans_per_second"], 5_050.0);
        assert_eq!(json["requests"]["ok"], 100);
        assert_eq!(json["failures"][0]["kind"], "http 503");
        assert_eq!(json["failures"][0]["class"], "server");
        assert!(json["latency_ms"]["ok"]["p99"].as_f64().unwrap() >= 9.0);
        assert_eq!(json["latency_ms"]["failed"]["count"], 1);
        assert_eq!(json["target"]["spans_per_second"], 5_000.0);
    }
}
