//! The command line: flags, their defaults and checks, turned into [`Settings`].
//!
//! Every rejected flag is a clap error, so it prints a clear message and exits with
//! status 2.

use crate::config::{
    JsonDestination, Mode, Pace, Protocol, Settings, Signal, Target, Tenant, WorkloadConfig,
};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sends realistic OTLP trace traffic from a simulated e-commerce shop to Weft's ingest
/// and reports achieved rates, failures and client latency.
///
/// Without a subcommand it runs a load test; `demo` sends a gentle endless stream.
#[derive(Debug, Parser)]
#[command(
    name = "weft-loadtest",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a gentle, steady stream of traces to one tenant until interrupted (SIGINT or
    /// SIGTERM), so a freshly started stack shows live data.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
struct TargetArgs {
    /// Base URL of ingest; for HTTP, /v1/traces (or /v1/logs) is appended unless the URL
    /// already ends with it [default: http://127.0.0.1:4317 for grpc, http://127.0.0.1:4318
    /// otherwise]
    #[arg(long, env = "WEFT_LOADTEST_ENDPOINT", value_name = "URL", value_parser = parse_endpoint)]
    endpoint: Option<String>,

    /// API key of a tenant, sent as x-api-key; KEY:WEIGHT gives it a share of the
    /// requests. Repeat the flag (or separate keys with commas) for several tenants;
    /// demo takes exactly one
    #[arg(
        long = "api-key",
        env = "WEFT_LOADTEST_API_KEY",
        hide_env_values = true,
        value_name = "KEY[:WEIGHT]",
        value_delimiter = ',',
        required = true,
        value_parser = parse_tenant
    )]
    api_keys: Vec<Tenant>,

    /// Wire protocol
    #[arg(long, value_enum, default_value_t = ProtocolArg::HttpProtobuf)]
    protocol: ProtocolArg,

    /// What to send: the shop's traces, or its log lines (one per span, with the span's
    /// trace and span ids; the span counts and rates then count log records)
    #[arg(long, value_enum, default_value_t = SignalArg::Traces)]
    signal: SignalArg,

    /// Compress requests with gzip
    #[arg(long)]
    gzip: bool,

    /// Deadline of one request, connecting included
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    timeout: Duration,
}

#[derive(Debug, Args)]
struct ShapeArgs {
    /// Mean number of spans per trace; each trace has between half and one and a half
    /// times as many
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    spans_per_trace: u32,

    /// Extra attributes on every span, on top of the realistic ones
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=1_000)
    )]
    attributes: u32,

    /// Share of traces with a failing operation (status ERROR and an exception event),
    /// as a fraction (0.05) or a percentage (5%)
    #[arg(long, value_name = "SHARE", default_value = "5%", value_parser = parse_share)]
    error_share: f64,

    /// Share of traces with one operation slower by 0.8 to 3 s
    #[arg(long, value_name = "SHARE", default_value = "5%", value_parser = parse_share)]
    slow_share: f64,

    /// Seed of the random generator, to repeat a run's traces exactly [default: random]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    target: TargetArgs,

    #[command(flatten)]
    shape: ShapeArgs,

    /// Target rate in spans per second; 0 sends as fast as the concurrency limit allows
    #[arg(long, value_name = "SPANS_PER_SEC", default_value_t = 1_000.0, value_parser = parse_rate)]
    rate: f64,

    /// How long to send (500ms, 30s, 5m, 1h30m); 0 runs until interrupted
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    duration: Duration,

    /// Traces per export request
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    traces_per_request: u32,

    /// Most requests awaiting an answer at once
    #[arg(
        long,
        value_name = "N",
        default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    concurrency: u32,

    /// Also write the report as JSON to PATH; with -, JSON goes to stdout and the table
    /// to stderr
    #[arg(long, value_name = "PATH", value_parser = parse_json_destination)]
    json: Option<JsonDestination>,

    /// Print a progress line this often on stderr; 0 for none
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    progress_interval: Duration,
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    target: TargetArgs,

    #[command(flatten)]
    shape: ShapeArgs,

    /// Traces sent per minute (one per request), at most 600
    #[arg(long, value_name = "N", default_value_t = 20.0, value_parser = parse_traces_per_minute)]
    traces_per_minute: f64,

    /// Write the report of the whole session as JSON to PATH when stopped (- for stdout)
    #[arg(long, value_name = "PATH", value_parser = parse_json_destination)]
    json: Option<JsonDestination>,

    /// Print a progress line this often on stderr; 0 for none
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    progress_interval: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ProtocolArg {
    /// OTLP/gRPC (TraceService/Export)
    Grpc,
    /// OTLP/HTTP with a protobuf body
    HttpProtobuf,
    /// OTLP/HTTP with an OTLP/JSON body
    HttpJson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SignalArg {
    /// Spans (TraceService/Export, POST /v1/traces)
    Traces,
    /// Log records (LogsService/Export, POST /v1/logs)
    Logs,
}

impl From<ProtocolArg> for Protocol {
    fn from(protocol: ProtocolArg) -> Self {
        match protocol {
            ProtocolArg::Grpc => Protocol::Grpc,
            ProtocolArg::HttpProtobuf => Protocol::HttpProtobuf,
            ProtocolArg::HttpJson => Protocol::HttpJson,
        }
    }
}

/// Requests of the demo in flight at once: one would let a hung request stall the stream.
const DEMO_CONCURRENCY: usize = 4;

/// Reads the command line; on a bad flag prints why and exits with status 2.
pub fn settings_from_env() -> Settings {
    settings_from(std::env::args_os()).unwrap_or_else(|err| err.exit())
}

/// Parses a command line (program name first).
pub fn settings_from<I, T>(args: I) -> Result<Settings, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    match cli.command {
        None => {
            let run = cli.run;
            Ok(Settings {
                mode: Mode::Run,
                target: run.target.into_target(),
                workload: run.shape.into_workload("loadtest"),
                pace: if run.rate > 0.0 {
                    Pace::SpansPerSecond(run.rate)
                } else {
                    Pace::Unlimited
                },
                duration: (!run.duration.is_zero()).then_some(run.duration),
                traces_per_request: run.traces_per_request as usize,
                concurrency: run.concurrency as usize,
                json: run.json,
                progress_every: (!run.progress_interval.is_zero()).then_some(run.progress_interval),
            })
        }
        Some(Command::Demo(demo)) => {
            if demo.target.api_keys.len() != 1 {
                return Err(usage_error(
                    ErrorKind::TooManyValues,
                    "demo sends to one tenant: give exactly one --api-key",
                ));
            }
            Ok(Settings {
                mode: Mode::Demo,
                target: demo.target.into_target(),
                workload: demo.shape.into_workload("demo"),
                pace: Pace::TracesPerSecond(demo.traces_per_minute / 60.0),
                duration: None,
                traces_per_request: 1,
                concurrency: DEMO_CONCURRENCY,
                json: demo.json,
                progress_every: (!demo.progress_interval.is_zero())
                    .then_some(demo.progress_interval),
            })
        }
    }
}

fn usage_error(kind: ErrorKind, message: &str) -> clap::Error {
    Cli::command().error(kind, message)
}

impl TargetArgs {
    fn into_target(self) -> Target {
        let protocol = Protocol::from(self.protocol);
        Target {
            endpoint: self
                .endpoint
                .unwrap_or_else(|| protocol.default_endpoint().to_owned()),
            protocol,
            signal: match self.signal {
                SignalArg::Traces => Signal::Traces,
                SignalArg::Logs => Signal::Logs,
            },
            gzip: self.gzip,
            timeout: self.timeout,
            tenants: self.api_keys,
        }
    }
}

impl ShapeArgs {
    fn into_workload(self, environment: &'static str) -> WorkloadConfig {
        WorkloadConfig {
            spans_per_trace: self.spans_per_trace,
            extra_attributes: self.attributes,
            error_share: self.error_share,
            slow_share: self.slow_share,
            // 53 bits, so the seed survives JSON readers that parse numbers as doubles.
            seed: self.seed.unwrap_or_else(|| rand::random::<u64>() >> 11),
            environment,
        }
    }
}

/// `500ms`, `30s`, `5m`, `1h30m`, `1.5s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration {text:?}: expected a number and a unit (ms, s, m, h), like 30s or 1m30s"
        )
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let unit_len = rest[number_len..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len() - number_len);
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        let seconds_per_unit = match &rest[number_len..number_len + unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            _ => return Err(invalid()),
        };
        total += Duration::try_from_secs_f64(number * seconds_per_unit).map_err(|_| invalid())?;
        rest = &rest[number_len + unit_len..];
    }
    Ok(total)
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = parse_duration(text)?;
    if timeout.is_zero() {
        return Err("the timeout must be longer than zero".to_owned());
    }
    Ok(timeout)
}

/// `0.05` or `5%`, between 0 and 1.
pub fn parse_share(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let share = match trimmed.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => trimmed.parse::<f64>(),
    }
    .map_err(|_| {
        format!("invalid share {text:?}: expected a fraction like 0.05 or a percentage like 5%")
    })?;
    if !(0.0..=1.0).contains(&share) {
        return Err(format!("share {text:?} is outside 0..1 (0%..100%)"));
    }
    Ok(share)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "invalid rate {text:?}: expected spans per second, 0 or more"
        )),
    }
}

fn parse_traces_per_minute(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 600.0 => Ok(rate),
        _ => Err(format!(
            "invalid rate {text:?}: the demo sends more than 0 and at most 600 traces per minute"
        )),
    }
}

/// `KEY` or `KEY:WEIGHT`. A suffix that is not a number belongs to the key.
pub fn parse_tenant(text: &str) -> Result<Tenant, String> {
    let (api_key, weight) = match text.rsplit_once(':') {
        Some((key, weight)) if !weight.is_empty() && weight.bytes().all(|b| b.is_ascii_digit()) => {
            let weight: u32 = weight
                .parse()
                .map_err(|_| format!("tenant weight {weight:?} is too large"))?;
            if weight == 0 {
                return Err(format!("tenant weight of {key:?} must be at least 1"));
            }
            (key, weight)
        }
        _ => (text, 1),
    };
    if api_key.is_empty() {
        return Err("the api key is empty".to_owned());
    }
    if !api_key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the api key may only contain visible ASCII characters".to_owned());
    }
    Ok(Tenant {
        api_key: api_key.to_owned(),
        weight,
    })
}

/// An `http://host:port[/path]` URL. TLS is not built in: `https` is refused here rather
/// than failing on every request.
pub fn parse_endpoint(text: &str) -> Result<String, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|err| format!("invalid endpoint {text:?}: {err}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "invalid endpoint {text:?}: https is not supported (built without TLS); use http://"
            ));
        }
        _ => {
            return Err(format!(
                "invalid endpoint {text:?}: expected http://HOST:PORT"
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("invalid endpoint {text:?}: no host"));
    }
    if uri.query().is_some() {
        return Err(format!(
            "invalid endpoint {text:?}: a query string is not allowed"
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// `-` for stdout, otherwise a file path whose directory exists.
fn parse_json_destination(text: &str) -> Result<JsonDestination, String> {
    if text == "-" {
        return Ok(JsonDestination::Stdout);
    }
    let path = PathBuf::from(text);
    if text.is_empty() || text.ends_with('/') {
        return Err(format!(
            "invalid report path {text:?}: expected a file name"
        ));
    }
    let directory = path.parent().filter(|dir| !dir.as_os_str().is_empty());
    if let Some(directory) = directory
        && !Path::new(directory).is_dir()
    {
        return Err(format!(
            "invalid report path {text:?}: directory {} does not exist",
            directory.display()
        ));
    }
    Ok(JsonDestination::File(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "weft_0123456789abcdef0123456789abcdef01234567";

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        settings_from(std::iter::once("weft-loadtest").chain(args.iter().copied()))
    }

    #[test]
    fn the_documented_example_parses() {
        let settings = parse(&[
            "--endpoint",
            "http://127.0.0.1:4318",
            "--protocol",
            "http-protobuf",
            "--api-key",
            KEY,
            "--rate",
            "5000",
            "--duration",
            "30s",
        ])
        .unwrap();
        assert_eq!(settings.mode, Mode::Run);
        assert_eq!(settings.target.endpoint, "http://127.0.0.1:4318");
        assert_eq!(settings.target.protocol, Protocol::HttpProtobuf);
        assert_eq!(settings.pace, Pace::SpansPerSecond(5_000.0));
        assert_eq!(settings.duration, Some(Duration::from_secs(30)));
        assert_eq!(settings.target.tenants.len(), 1);
        assert_eq!(settings.target.tenants[0].api_key, KEY);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let settings = parse(&["--api-key", KEY, "--seed", "7"]).unwrap();
        assert_eq!(settings.target.endpoint, "http://127.0.0.1:4318");
        assert!(!settings.target.gzip);
        assert_eq!(settings.target.timeout, Duration::from_secs(10));
        assert_eq!(settings.pace, Pace::SpansPerSecond(1_000.0));
        assert_eq!(settings.duration, Some(Duration::from_secs(30)));
        assert_eq!(settings.traces_per_request, 10);
        assert_eq!(settings.concurrency, 16);
        assert_eq!(settings.json, None);
        assert_eq!(settings.progress_every, Some(Duration::from_secs(5)));
        assert_eq!(
            settings.workload,
            WorkloadConfig {
                spans_per_trace: 20,
                extra_attributes: 0,
                error_share: 0.05,
                slow_share: 0.05,
                seed: 7,
                environment: "loadtest",
            }
        );

        let grpc = parse(&["--api-key", KEY, "--protocol", "grpc"]).unwrap();
        assert_eq!(grpc.target.endpoint, "http://127.0.0.1:4317");
    }

    #[test]
    fn several_tenants_with_weights() {
        let settings = parse(&["--api-key", "a:3", "--api-key", "b,c:2"]).unwrap();
        let tenants: Vec<(&str, u32)> = settings
            .target
            .tenants
            .iter()
            .map(|tenant| (tenant.api_key.as_str(), tenant.weight))
            .collect();
        assert_eq!(tenants, [("a", 3), ("b", 1), ("c", 2)]);
    }

    #[test]
    fn unlimited_rate_and_endless_duration() {
        let settings = parse(&[
            "--api-key",
            KEY,
            "--rate",
            "0",
            "--duration",
            "0",
            "--progress-interval",
            "0",
        ])
        .unwrap();
        assert_eq!(settings.pace, Pace::Unlimited);
        assert_eq!(settings.duration, None);
        assert_eq!(settings.progress_every, None);
    }

    #[test]
    fn demo_mode_is_gentle_and_endless() {
        let settings = parse(&["demo", "--api-key", KEY, "--protocol", "grpc"]).unwrap();
        assert_eq!(settings.mode, Mode::Demo);
        assert_eq!(settings.duration, None);
        assert_eq!(settings.traces_per_request, 1);
        let Pace::TracesPerSecond(rate) = settings.pace else {
            panic!("demo is paced by traces: {:?}", settings.pace);
        };
        assert!(rate > 0.0 && rate <= 1.0, "{rate}");
        assert_eq!(settings.workload.environment, "demo");
        assert_eq!(settings.target.endpoint, "http://127.0.0.1:4317");
    }

    #[test]
    fn bad_flags_are_usage_errors_with_exit_status_2() {
        let cases: &[&[&str]] = &[
            &[],
            &["--api-key", KEY, "--rate", "fast"],
            &["--api-key", KEY, "--rate", "-5"],
            &["--api-key", KEY, "--duration", "5 parsecs"],
            &["--api-key", KEY, "--error-share", "1.5"],
            &["--api-key", KEY, "--slow-share", "150%"],
            &["--api-key", KEY, "--protocol", "thrift"],
            &[
                "--api-key",
                KEY,
                "--endpoint",
                "https://ingest.example:4318",
            ],
            &["--api-key", KEY, "--endpoint", "not a url"],
            &["--api-key", KEY, "--concurrency", "0"],
            &["--api-key", KEY, "--spans-per-trace", "0"],
            &["--api-key", KEY, "--timeout", "0s"],
            &[
                "--api-key",
                KEY,
                "--json",
                "/nonexistent-directory/report.json",
            ],
            &["--api-key", "a:0"],
            &["--api-key", "bad key"],
            &["--api-key", KEY, "--unknown-flag"],
            &["demo", "--api-key", "a,b"],
            &["demo", "--api-key", KEY, "--traces-per-minute", "100000"],
            &["demo", "--api-key", KEY, "--rate", "10"],
        ];
        for args in cases {
            let err = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} was accepted"));
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
        }
    }

    #[test]
    fn error_messages_name_the_offending_value() {
        let err = parse(&["--api-key", KEY, "--error-share", "1.5"]).unwrap_err();
        assert!(err.to_string().contains("1.5"), "{err}");
        let err = parse(&["--api-key", KEY, "--endpoint", "https://x:1"]).unwrap_err();
        assert!(err.to_string().contains("https is not supported"), "{err}");
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("30s"), Ok(ms(30_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h30m"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("45"), Ok(ms(45_000)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "5x", "1..5s", "-1s", "m5", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shares() {
        assert_eq!(parse_share("0.05"), Ok(0.05));
        assert_eq!(parse_share("5%"), Ok(0.05));
        assert_eq!(parse_share("0"), Ok(0.0));
        assert_eq!(parse_share("100%"), Ok(1.0));
        for bad in ["", "x", "-0.1", "1.01", "101%"] {
            assert!(parse_share(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tenants() {
        assert_eq!(parse_tenant("k").unwrap().weight, 1);
        assert_eq!(
            parse_tenant("k:4").unwrap(),
            Tenant {
                api_key: "k".into(),
                weight: 4
            }
        );
        assert_eq!(
            parse_tenant("a:b").unwrap().api_key,
            "a:b",
            "a non-numeric suffix is part of the key"
        );
        assert!(parse_tenant("").is_err());
        assert!(parse_tenant(":3").is_err());
        assert!(parse_tenant("k:99999999999").is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:4318/"),
            Ok("http://127.0.0.1:4318".into())
        );
        assert_eq!(
            parse_endpoint("http://ingest:4318/v1/traces"),
            Ok("http://ingest:4318/v1/traces".into())
        );
        assert!(parse_endpoint("127.0.0.1:4318").is_err());
        assert!(parse_endpoint("ftp://x").is_err());
        assert!(parse_endpoint("http://x:1/?a=b").is_err());
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
