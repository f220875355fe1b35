//! The load generator against in-process OTLP receivers (gRPC with tonic, HTTP with
//! axum) on 127.0.0.1: what it sends must decode as OTLP, carry the API key, and what
//! the receivers answer must show up in the counts.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::read::GzDecoder;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use weft_loadtest::config::{
    Mode, Pace, Protocol, Settings, Signal, Target, Tenant, WorkloadConfig,
};
use weft_loadtest::runner::{Finished, drive};
use weft_loadtest::transport::{Exporter, FailureKind};

/// Accepted in full.
const GOOD_KEY: &str = "weft_00000000000000000000000000000000000000aa";
/// Accepted, with half of its spans rejected in a partial success.
const HALF_KEY: &str = "weft_00000000000000000000000000000000000000bb";
/// Unknown to the receiver: 401 / UNAUTHENTICATED.
const UNKNOWN_KEY: &str = "weft_00000000000000000000000000000000000000cc";
/// Answered only after the client's timeout.
const STALLED_KEY: &str = "weft_00000000000000000000000000000000000000dd";

/// The message of every partial success the receiver answers.
const REJECTION: &str = "attributes too large";

/// What a receiver saw; for logs, the span counts count log records.
#[derive(Debug, Default)]
struct Seen {
    requests_by_key: HashMap<String, u64>,
    spans_taken: u64,
    spans_rejected: u64,
    gzip_requests: u64,
    invalid_spans: u64,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Seen>>,
}

enum Verdict {
    Take { rejected: u64 },
    Unknown,
    Stall,
}

/// An export request of either signal, as the receiver checks and answers it.
trait Export: Message + Default + serde::de::DeserializeOwned + Send + 'static {
    type Response: Message + serde::Serialize;
    /// How many items it carries, and how many of them are not valid OTLP.
    fn tally(&self) -> (u64, u64);
    fn partial(rejected: u64) -> Self::Response;
}

impl Export for ExportTraceServiceRequest {
    type Response = ExportTraceServiceResponse;

    fn tally(&self) -> (u64, u64) {
        let spans: Vec<_> = self
            .resource_spans
            .iter()
            .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()))
            .collect();
        let invalid = spans
            .iter()
            .filter(|span| {
                span.trace_id.len() != 16
                    || span.span_id.len() != 8
                    || span.end_time_unix_nano < span.start_time_unix_nano
                    || span.name.is_empty()
            })
            .count();
        (spans.len() as u64, invalid as u64)
    }

    fn partial(rejected: u64) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected as i64,
                error_message: REJECTION.into(),
            }),
        }
    }
}

impl Export for ExportLogsServiceRequest {
    type Response = ExportLogsServiceResponse;

    fn tally(&self) -> (u64, u64) {
        let records: Vec<_> = self
            .resource_logs
            .iter()
            .flat_map(|rl| rl.scope_logs.iter().flat_map(|sl| sl.log_records.iter()))
            .collect();
        let invalid = records
            .iter()
            .filter(|record| {
                record.trace_id.len() != 16
                    || record.span_id.len() != 8
                    || record.time_unix_nano == 0
                    || record.severity_text.is_empty()
                    || record.body.is_none()
            })
            .count();
        (records.len() as u64, invalid as u64)
    }

    fn partial(rejected: u64) -> ExportLogsServiceResponse {
        ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected as i64,
                error_message: REJECTION.into(),
            }),
        }
    }
}

impl Receiver {
    /// Checks the items like an ingest would and decides by key.
    fn judge(&self, key: &str, request: &impl Export, gzip: bool) -> Verdict {
        let mut seen = self.seen.lock().unwrap();
        *seen.requests_by_key.entry(key.to_owned()).or_default() += 1;
        seen.gzip_requests += u64::from(gzip);
        let (count, invalid) = request.tally();
        seen.invalid_spans += invalid;
        match key {
            GOOD_KEY => {
                seen.spans_taken += count;
                Verdict::Take { rejected: 0 }
            }
            HALF_KEY => {
                let rejected = count / 2;
                seen.spans_taken += count - rejected;
                seen.spans_rejected += rejected;
                Verdict::Take { rejected }
            }
            STALLED_KEY => Verdict::Stall,
            _ => Verdict::Unknown,
        }
    }
}

async fn http_export<R: Export>(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let key = text("x-api-key");
    let content_type = text(header::CONTENT_TYPE.as_str());
    let gzip = text(header::CONTENT_ENCODING.as_str()) == "gzip";
    let mut raw = body.to_vec();
    if gzip {
        let mut inflated = Vec::new();
        if GzDecoder::new(raw.as_slice())
            .read_to_end(&mut inflated)
            .is_err()
        {
            return (StatusCode::BAD_REQUEST, "bad gzip").into_response();
        }
        raw = inflated;
    }
    let json = content_type == "application/json";
    let request: R = if json {
        match serde_json::from_slice(&raw) {
            Ok(request) => request,
            Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
        }
    } else if content_type == "application/x-protobuf" {
        match R::decode(raw.as_slice()) {
            Ok(request) => request,
            Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
        }
    } else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    };
    match receiver.judge(&key, &request, gzip) {
        Verdict::Take { rejected } => {
            let response = R::partial(rejected);
            if json {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    serde_json::to_vec(&response).unwrap(),
                )
                    .into_response()
            } else {
                (
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    response.encode_to_vec(),
                )
                    .into_response()
            }
        }
        Verdict::Unknown => (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"code":16,"message":"unknown api key"}"#,
        )
            .into_response(),
        Verdict::Stall => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        }
    }
}

/// The gRPC side of both services: decide by key, answer a partial success.
async fn grpc_export<R: Export>(
    receiver: &Receiver,
    request: tonic::Request<R>,
) -> Result<tonic::Response<R::Response>, tonic::Status> {
    {
        let key = request
            .metadata()
            .get("x-api-key")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let gzip = request
            .metadata()
            .get("grpc-encoding")
            .is_some_and(|value| value == "gzip");
        match receiver.judge(&key, request.get_ref(), gzip) {
            Verdict::Take { rejected } => Ok(tonic::Response::new(R::partial(rejected))),
            Verdict::Unknown => Err(tonic::Status::unauthenticated("unknown api key")),
            Verdict::Stall => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(tonic::Response::new(R::partial(0)))
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        grpc_export(self, request).await
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        grpc_export(self, request).await
    }
}

async fn http_receiver() -> (SocketAddr, Receiver) {
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(http_export::<ExportTraceServiceRequest>),
        )
        .route(
            "/v1/logs",
            axum::routing::post(http_export::<ExportLogsServiceRequest>),
        )
        .with_state(receiver.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, receiver)
}

async fn grpc_receiver() -> (SocketAddr, Receiver) {
    let receiver = Receiver::default();
    let traces = TraceServiceServer::new(receiver.clone())
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let logs = LogsServiceServer::new(receiver.clone())
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(traces)
            .add_service(logs)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });
    (addr, receiver)
}

fn settings(addr: SocketAddr, protocol: Protocol, gzip: bool, keys: &[&str]) -> Settings {
    Settings {
        mode: Mode::Run,
        target: Target {
            endpoint: format!("http://{addr}"),
            protocol,
            signal: Signal::Traces,
            gzip,
            timeout: Duration::from_millis(300),
            tenants: keys
                .iter()
                .map(|key| Tenant {
                    api_key: (*key).to_owned(),
                    weight: 1,
                })
                .collect(),
        },
        workload: WorkloadConfig {
            spans_per_trace: 15,
            extra_attributes: 3,
            error_share: 0.1,
            slow_share: 0.1,
            seed: 99,
            environment: "test",
        },
        pace: Pace::SpansPerSecond(6_000.0),
        duration: Some(Duration::from_millis(700)),
        traces_per_request: 4,
        concurrency: 4,
        json: None,
        progress_every: None,
    }
}

async fn run(settings: &Settings) -> Finished {
    let exporter = Exporter::new(&settings.target, settings.concurrency).unwrap();
    drive(settings, exporter, std::future::pending()).await
}

/// The counts of the run and of the receiver agree, tenant by tenant.
fn assert_agreement(
    finished: &Finished,
    receiver: &Receiver,
    gzip: bool,
    unknown_kind: FailureKind,
) {
    let stats = &finished.stats;
    let seen = receiver.seen.lock().unwrap();
    assert!(
        stats.requests_ok >= 6,
        "too few requests got through: {stats:?}"
    );
    assert_eq!(seen.invalid_spans, 0);
    assert_eq!(stats.spans_accepted, seen.spans_taken);
    assert_eq!(stats.spans_rejected, seen.spans_rejected);
    assert!(seen.spans_rejected > 0);
    assert_eq!(stats.rejection_example.as_deref(), Some(REJECTION));
    let requests: u64 = seen.requests_by_key.values().sum();
    assert_eq!(requests, stats.requests());
    assert_eq!(seen.gzip_requests, if gzip { requests } else { 0 });
    // Three tenants of equal weight take turns.
    for key in [GOOD_KEY, HALF_KEY, UNKNOWN_KEY] {
        let count = seen.requests_by_key.get(key).copied().unwrap_or(0);
        assert!(
            count.abs_diff(requests / 3) <= 1,
            "{key}: {count} of {requests}"
        );
    }
    let unknown = &stats.failures[&unknown_kind];
    assert_eq!(unknown.count, seen.requests_by_key[UNKNOWN_KEY]);
    assert_eq!(unknown.example, "unknown api key");
    assert_eq!(stats.requests_failed, unknown.count);
    assert_eq!(stats.latency_ok.len(), stats.requests_ok);
}

#[tokio::test]
async fn http_protobuf_with_gzip() {
    let (addr, receiver) = http_receiver().await;
    let settings = settings(
        addr,
        Protocol::HttpProtobuf,
        true,
        &[GOOD_KEY, HALF_KEY, UNKNOWN_KEY],
    );
    let finished = run(&settings).await;
    assert_agreement(&finished, &receiver, true, FailureKind::Http(401));
}

#[tokio::test]
async fn http_json_decodes_as_otlp_json() {
    let (addr, receiver) = http_receiver().await;
    let settings = settings(
        addr,
        Protocol::HttpJson,
        false,
        &[GOOD_KEY, HALF_KEY, UNKNOWN_KEY],
    );
    let finished = run(&settings).await;
    assert_agreement(&finished, &receiver, false, FailureKind::Http(401));
}

#[tokio::test]
async fn grpc_with_and_without_gzip() {
    for gzip in [false, true] {
        let (addr, receiver) = grpc_receiver().await;
        let settings = settings(
            addr,
            Protocol::Grpc,
            gzip,
            &[GOOD_KEY, HALF_KEY, UNKNOWN_KEY],
        );
        let finished = run(&settings).await;
        assert_agreement(
            &finished,
            &receiver,
            gzip,
            FailureKind::Grpc(tonic::Code::Unauthenticated),
        );
    }
}

#[tokio::test]
async fn logs_over_every_protocol_reach_the_logs_endpoints() {
    for (protocol, gzip) in [
        (Protocol::HttpProtobuf, true),
        (Protocol::HttpJson, false),
        (Protocol::Grpc, true),
    ] {
        let (addr, receiver) = match protocol {
            Protocol::Grpc => grpc_receiver().await,
            _ => http_receiver().await,
        };
        let mut settings = settings(addr, protocol, gzip, &[GOOD_KEY, HALF_KEY, UNKNOWN_KEY]);
        settings.target.signal = Signal::Logs;
        let finished = run(&settings).await;
        let unknown = match protocol {
            Protocol::Grpc => FailureKind::Grpc(tonic::Code::Unauthenticated),
            _ => FailureKind::Http(401),
        };
        assert_agreement(&finished, &receiver, gzip, unknown);
    }
}

#[tokio::test]
async fn the_rate_is_held() {
    let (addr, receiver) = http_receiver().await;
    let mut settings = settings(addr, Protocol::HttpProtobuf, false, &[GOOD_KEY]);
    settings.pace = Pace::SpansPerSecond(3_000.0);
    settings.duration = Some(Duration::from_secs(1));
    let finished = run(&settings).await;
    let sent = finished.stats.spans_sent;
    // One second at 3000 spans/s, plus at most the request due at the deadline; a
    // loaded machine may fall a little short, never far over.
    assert!(
        (2_400..=3_200).contains(&sent),
        "{sent} spans in 1 s at 3000/s"
    );
    assert_eq!(receiver.seen.lock().unwrap().spans_taken, sent);
}

#[tokio::test]
async fn stalled_answers_time_out() {
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let (addr, _receiver) = match protocol {
            Protocol::Grpc => grpc_receiver().await,
            _ => http_receiver().await,
        };
        let mut settings = settings(addr, protocol, false, &[STALLED_KEY]);
        settings.duration = Some(Duration::from_millis(200));
        let finished = run(&settings).await;
        let stats = &finished.stats;
        assert_eq!(stats.requests_ok, 0);
        assert!(stats.requests_failed > 0);
        assert_eq!(
            stats.failures[&FailureKind::Timeout].count,
            stats.requests_failed
        );
        // The run ends within its duration plus one timeout.
        assert!(
            finished.elapsed < Duration::from_secs(2),
            "{:?}",
            finished.elapsed
        );
    }
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let mut settings = settings(addr, protocol, false, &[GOOD_KEY]);
        settings.duration = Some(Duration::from_millis(200));
        let finished = run(&settings).await;
        let stats = &finished.stats;
        assert_eq!(stats.requests_ok, 0);
        assert!(stats.requests_failed > 0);
        let kinds: Vec<_> = stats.failures.keys().collect();
        assert_eq!(
            kinds,
            [&FailureKind::Connect],
            "{protocol}: {:?}",
            stats.failures
        );
    }
}
