//! The validated settings of one invocation, independent of how they were given.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How spans travel to ingest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC `TraceService/Export`.
    Grpc,
    /// OTLP/HTTP `POST /v1/traces` with a protobuf body.
    HttpProtobuf,
    /// OTLP/HTTP `POST /v1/traces` with an OTLP/JSON body.
    HttpJson,
}

impl Protocol {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http-protobuf",
            Protocol::HttpJson => "http-json",
        }
    }

    /// Where a local stack's ingest listens for this protocol.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://127.0.0.1:4317",
            Protocol::HttpProtobuf | Protocol::HttpJson => "http://127.0.0.1:4318",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the generator sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// The shop's traces: `TraceService/Export`, `POST /v1/traces`.
    Traces,
    /// One log line per span of the same traces, with the span's trace and span ids:
    /// `LogsService/Export`, `POST /v1/logs`. The counts and rates that say spans then
    /// count log records.
    Logs,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }

    /// What one item is called in reports.
    pub fn unit(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Logs => "records",
        }
    }

    /// The OTLP/HTTP path of this signal.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
        }
    }
}

/// One tenant, known to ingest by its API key, and how often it is picked for a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Tenant {
    pub api_key: String,
    pub weight: u32,
}

/// Characters of a key shown in reports: enough to recognise `weft_` keys by their stored
/// prefix, never the secret itself.
const SHOWN_KEY_CHARS: usize = 13;

impl Tenant {
    /// The key as reports show it: its first characters only.
    pub fn label(&self) -> String {
        let shown: String = self.api_key.chars().take(SHOWN_KEY_CHARS).collect();
        if shown.len() < self.api_key.len() {
            format!("{shown}…")
        } else {
            shown
        }
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("api_key", &self.label())
            .field("weight", &self.weight)
            .finish()
    }
}

/// Where and how requests are sent.
#[derive(Clone, Debug)]
pub struct Target {
    /// Base URL (`http://host:port`); for HTTP the signal's path (`/v1/traces`,
    /// `/v1/logs`) is appended unless present.
    pub endpoint: String,
    pub signal: Signal,
    pub protocol: Protocol,
    pub gzip: bool,
    /// Deadline of one export, connection included.
    pub timeout: Duration,
    pub tenants: Vec<Tenant>,
}

/// What the generated traces look like.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    /// Mean number of spans per trace; each trace varies around it.
    pub spans_per_trace: u32,
    /// Extra attributes added to every span on top of the realistic ones.
    pub extra_attributes: u32,
    /// Share (0..=1) of traces with a failing operation.
    pub error_share: f64,
    /// Share (0..=1) of traces with one operation slower by 0.8 to 3 s.
    pub slow_share: f64,
    /// Seed of the random generator: the same seed gives the same traces.
    pub seed: u64,
    /// Value of the `deployment.environment.name` resource attribute.
    pub environment: &'static str,
}

/// How fast requests are issued.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// As fast as the concurrency limit allows.
    Unlimited,
    SpansPerSecond(f64),
    TracesPerSecond(f64),
}

/// Where the JSON report goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonDestination {
    Stdout,
    File(PathBuf),
}

/// Which of the two ways of running this is: they differ in defaults and in what they print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A measured load test with a target rate and a duration.
    Run,
    /// A gentle endless stream for a freshly started stack.
    Demo,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Demo => "demo",
        }
    }
}

/// Everything one invocation needs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub mode: Mode,
    pub target: Target,
    pub workload: WorkloadConfig,
    pub pace: Pace,
    /// `None`: until interrupted.
    pub duration: Option<Duration>,
    pub traces_per_request: usize,
    /// Most requests awaiting an answer at once.
    pub concurrency: usize,
    pub json: Option<JsonDestination>,
    /// How often a progress line is printed; `None`: never.
    pub progress_every: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_label_never_shows_the_whole_key() {
        let tenant = Tenant {
            api_key: format!("weft_{}", "ab".repeat(20)),
            weight: 1,
        };
        assert_eq!(tenant.label(), "weft_abababab…");
        assert!(!format!("{tenant:?}").contains(&tenant.api_key));

        let short = Tenant {
            api_key: "dev".into(),
            weight: 1,
        };
        assert_eq!(short.label(), "dev");
    }
}
