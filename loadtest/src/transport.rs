//! Sends export requests of traces or logs to ingest over OTLP/gRPC or OTLP/HTTP
//! (protobuf or JSON, gzip optional) and sorts every answer into accepted or a failure of
//! a named kind.

use crate::config::{Protocol, Signal, Target};
use crate::workload::Request;
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use std::error::Error as _;
use std::fmt;
use std::io::Write;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

/// The header (and gRPC metadata key) that carries the tenant's API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Longest server message kept as an example of a failure.
const MAX_EXAMPLE_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("failed to build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Whether the server answered with an error, or no proper answer came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureClass {
    Server,
    Transport,
}

/// What went wrong with one export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// A non-2xx HTTP status.
    Http(u16),
    /// A gRPC status other than OK, sent by the server.
    Grpc(tonic::Code),
    /// No connection could be made.
    Connect,
    /// No answer within the request timeout.
    Timeout,
    /// The connection failed in another way, or the answer was not OTLP.
    Transport,
}

/// Reports list server answers first, by status, then transport failures.
impl Ord for FailureKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let rank = |kind: &FailureKind| match *kind {
            FailureKind::Http(status) => (0, i32::from(status)),
            FailureKind::Grpc(code) => (1, code as i32),
            FailureKind::Connect => (2, 0),
            FailureKind::Timeout => (3, 0),
            FailureKind::Transport => (4, 0),
        };
        rank(self).cmp(&rank(other))
    }
}

impl PartialOrd for FailureKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FailureKind {
    pub fn class(self) -> FailureClass {
        match self {
            FailureKind::Http(_) | FailureKind::Grpc(_) => FailureClass::Server,
            FailureKind::Connect | FailureKind::Timeout | FailureKind::Transport => {
                FailureClass::Transport
            }
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Http(status) => write!(f, "http {status}"),
            FailureKind::Grpc(code) => write!(f, "grpc {}", grpc_code_name(*code)),
            FailureKind::Connect => f.write_str("connect error"),
            FailureKind::Timeout => f.write_str("timeout"),
            FailureKind::Transport => f.write_str("transport error"),
        }
    }
}

/// A failed export: its kind and what the server or the connection said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub detail: String,
}

impl Failure {
    /// No answer came within `limit`.
    pub fn timed_out(limit: std::time::Duration) -> Self {
        Self::new(FailureKind::Timeout, format!("no answer within {limit:?}"))
    }

    fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        let mut detail: String = detail.into();
        if let Some((cut, _)) = detail.char_indices().nth(MAX_EXAMPLE_CHARS) {
            detail.truncate(cut);
            detail.push('…');
        }
        Self { kind, detail }
    }
}

/// The result of one export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server took the request; some spans (or log records) may have been refused
    /// (`partial_success`).
    Accepted {
        rejected_spans: u64,
        message: Option<String>,
    },
    Failed(Failure),
}

impl Outcome {
    fn from_response(response: ExportTraceServiceResponse) -> Self {
        let partial = response.partial_success.unwrap_or_default();
        Self::accepted(partial.rejected_spans, partial.error_message)
    }

    fn from_logs_response(response: ExportLogsServiceResponse) -> Self {
        let partial = response.partial_success.unwrap_or_default();
        Self::accepted(partial.rejected_log_records, partial.error_message)
    }

    fn accepted(rejected: i64, message: String) -> Self {
        Outcome::Accepted {
            rejected_spans: u64::try_from(rejected).unwrap_or(0),
            message: (!message.is_empty()).then_some(message),
        }
    }
}

/// A request encoded for the wire, ready to be sent (and re-sent) as is.
#[derive(Clone, Debug)]
pub enum Payload {
    /// gRPC encodes (and compresses) while sending.
    Grpc(Request),
    Http(Vec<u8>),
}

/// The client side of one protocol.
#[derive(Clone, Debug)]
pub enum Exporter {
    /// One channel; a client of the signal's service is made on it for each request.
    Grpc { channel: Channel, gzip: bool },
    Http {
        client: reqwest::Client,
        url: String,
        json: bool,
        gzip: bool,
        signal: Signal,
    },
}

impl Exporter {
    /// Builds the client. Connections are made lazily, so a server that is not up yet
    /// shows as failed requests rather than a failed start.
    pub fn new(target: &Target, concurrency: usize) -> Result<Self, TransportError> {
        let invalid = |reason: String| TransportError::InvalidEndpoint {
            endpoint: target.endpoint.clone(),
            reason,
        };
        match target.protocol {
            Protocol::Grpc => {
                let endpoint = Endpoint::from_shared(target.endpoint.clone())
                    .map_err(|err| invalid(err.to_string()))?
                    .connect_timeout(target.timeout)
                    .tcp_nodelay(true);
                Ok(Exporter::Grpc {
                    channel: endpoint.connect_lazy(),
                    gzip: target.gzip,
                })
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                let client = reqwest::Client::builder()
                    // Load goes straight to the endpoint asked for, never via a proxy.
                    .no_proxy()
                    .connect_timeout(target.timeout)
                    .pool_max_idle_per_host(concurrency)
                    .tcp_nodelay(true)
                    .build()?;
                Ok(Exporter::Http {
                    client,
                    url: signal_url(&target.endpoint, target.signal),
                    json: target.protocol == Protocol::HttpJson,
                    gzip: target.gzip,
                    signal: target.signal,
                })
            }
        }
    }

    /// Where requests go, for reports.
    pub fn url(&self, target: &Target) -> String {
        match self {
            Exporter::Grpc { .. } => format!(
                "{}/opentelemetry.proto.collector.{}",
                target.endpoint.trim_end_matches('/'),
                match target.signal {
                    Signal::Traces => "trace.v1.TraceService/Export",
                    Signal::Logs => "logs.v1.LogsService/Export",
                }
            ),
            Exporter::Http { url, .. } => url.clone(),
        }
    }

    /// Encodes a request; returns the payload and its size before compression.
    pub fn encode(&self, request: Request) -> (Payload, u64) {
        match self {
            Exporter::Grpc { .. } => {
                let size = match &request {
                    Request::Traces(request) => request.encoded_len(),
                    Request::Logs(request) => request.encoded_len(),
                } as u64;
                (Payload::Grpc(request), size)
            }
            Exporter::Http { json, gzip, .. } => {
                let body = match (&request, *json) {
                    (Request::Traces(request), true) => encode_json(request),
                    (Request::Logs(request), true) => encode_json(request),
                    (Request::Traces(request), false) => request.encode_to_vec(),
                    (Request::Logs(request), false) => request.encode_to_vec(),
                };
                let size = body.len() as u64;
                let body = if *gzip { gzip_bytes(&body) } else { body };
                (Payload::Http(body), size)
            }
        }
    }

    /// Sends one payload on behalf of the tenant with `api_key`.
    pub async fn send(&self, payload: Payload, api_key: &str) -> Outcome {
        match (self, payload) {
            (Exporter::Grpc { channel, gzip }, Payload::Grpc(request)) => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                match MetadataValue::try_from(api_key) {
                    Ok(value) => {
                        metadata.insert(API_KEY_HEADER, value);
                    }
                    Err(_) => {
                        return Outcome::Failed(Failure::new(
                            FailureKind::Transport,
                            "the api key is not a valid gRPC metadata value",
                        ));
                    }
                }
                // The two services' generated clients share no trait; the call is the same.
                macro_rules! export {
                    ($client:ident, $request:expr, $outcome:path) => {{
                        let mut client = $client::new(channel.clone());
                        if *gzip {
                            client = client
                                .send_compressed(CompressionEncoding::Gzip)
                                .accept_compressed(CompressionEncoding::Gzip);
                        }
                        let request = tonic::Request::from_parts(
                            metadata,
                            tonic::Extensions::default(),
                            $request,
                        );
                        client
                            .export(request)
                            .await
                            .map(|answer| $outcome(answer.into_inner()))
                    }};
                }
                let answer = match request {
                    Request::Traces(request) => {
                        export!(TraceServiceClient, request, Outcome::from_response)
                    }
                    Request::Logs(request) => {
                        export!(LogsServiceClient, request, Outcome::from_logs_response)
                    }
                };
                answer.unwrap_or_else(|status| Outcome::Failed(classify_grpc(&status)))
            }
            (
                Exporter::Http {
                    client,
                    url,
                    json,
                    gzip,
                    signal,
                },
                Payload::Http(body),
            ) => send_http(client, url, *json, *gzip, *signal, body, api_key).await,
            _ => Outcome::Failed(Failure::new(
                FailureKind::Transport,
                "payload encoded for another protocol",
            )),
        }
    }
}

/// The OTLP/HTTP URL of a signal for a base endpoint, as SDKs derive it from
/// `OTEL_EXPORTER_OTLP_ENDPOINT`; an endpoint already ending in the signal's path
/// (`/v1/traces`, `/v1/logs`) is kept.
pub fn signal_url(endpoint: &str, signal: Signal) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with(signal.http_path()) {
        base.to_owned()
    } else {
        format!("{base}{}", signal.http_path())
    }
}

/// OTLP/JSON: the `with-serde` mapping of the protobuf messages (hex ids, integer enums,
/// 64-bit integers as strings).
pub fn encode_json<T: serde::Serialize>(request: &T) -> Vec<u8> {
    // Serialising plain data structures to a Vec cannot fail.
    serde_json::to_vec(request).unwrap_or_default()
}

pub fn gzip_bytes(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// A status the server sent has no source; one made up by the client from a connection
/// problem carries the underlying error.
pub fn classify_grpc(status: &tonic::Status) -> Failure {
    let mut source = status.source();
    if source.is_none() {
        return Failure::new(FailureKind::Grpc(status.code()), status.message());
    }
    while let Some(err) = source {
        if err.downcast_ref::<tonic::ConnectError>().is_some() {
            return Failure::new(FailureKind::Connect, error_chain(err));
        }
        source = err.source();
    }
    Failure::new(
        FailureKind::Transport,
        format!("{}: {}", grpc_code_name(status.code()), status.message()),
    )
}

async fn send_http(
    client: &reqwest::Client,
    url: &str,
    json: bool,
    gzip: bool,
    signal: Signal,
    body: Vec<u8>,
    api_key: &str,
) -> Outcome {
    let Ok(key) = HeaderValue::from_str(api_key) else {
        return Outcome::Failed(Failure::new(
            FailureKind::Transport,
            "the api key is not a valid header value",
        ));
    };
    let content_type = if json {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    let mut request = client
        .post(url)
        .header(CONTENT_TYPE, content_type)
        .header(API_KEY_HEADER, key)
        .body(body);
    if gzip {
        request = request.header(CONTENT_ENCODING, "gzip");
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => return Outcome::Failed(classify_reqwest(&err)),
    };
    let status = response.status();
    let answer_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(err) => return Outcome::Failed(classify_reqwest(&err)),
    };
    if status.is_success() {
        let outcome = match signal {
            Signal::Traces => decode_http_response(&answer_type, &body).map(Outcome::from_response),
            Signal::Logs => {
                decode_http_response(&answer_type, &body).map(Outcome::from_logs_response)
            }
        };
        match outcome {
            Some(outcome) => outcome,
            None => Outcome::Failed(Failure::new(
                FailureKind::Transport,
                format!("the {status} answer is not an OTLP response ({answer_type:?})"),
            )),
        }
    } else {
        Outcome::Failed(Failure::new(
            FailureKind::Http(status.as_u16()),
            http_error_detail(&answer_type, &body),
        ))
    }
}

/// The body of a 2xx answer; an empty body is an empty response.
fn decode_http_response<T>(content_type: &str, body: &[u8]) -> Option<T>
where
    T: Message + Default + serde::de::DeserializeOwned,
{
    if body.is_empty() {
        return Some(T::default());
    }
    if content_type.starts_with("application/json") {
        serde_json::from_slice(body).ok()
    } else {
        T::decode(body).ok()
    }
}

/// What an error answer says. OTLP/HTTP servers answer with a `google.rpc.Status`, in
/// protobuf or JSON; anything else is shown as text.
pub fn http_error_detail(content_type: &str, body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    if content_type.starts_with("application/x-protobuf")
        || content_type.starts_with("application/protobuf")
    {
        // `google.rpc.Status` has `code` (field 1, varint) and `message` (field 2,
        // string) with the same numbers and wire types as `ExportTracePartialSuccess`'s
        // `rejected_spans` and `error_message`, and prost skips its `details` (field 3):
        // decoding through that message reads the status without a second definition.
        return match ExportTracePartialSuccess::decode(body) {
            Ok(status) => status.error_message,
            Err(_) => format!("({} bytes of protobuf)", body.len()),
        };
    }
    if content_type.starts_with("application/json")
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(message) = value.get("message").and_then(|message| message.as_str())
    {
        return message.to_owned();
    }
    String::from_utf8_lossy(body).trim().to_owned()
}

fn classify_reqwest(err: &reqwest::Error) -> Failure {
    let kind = if err.is_timeout() {
        FailureKind::Timeout
    } else if err.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Transport
    };
    // The outer message only repeats the URL, which the report shows already.
    let detail = match err.source() {
        Some(cause) if err.is_connect() || err.is_request() => error_chain(cause),
        _ => error_chain(err),
    };
    Failure::new(kind, detail)
}

/// An error and its causes on one line, as `a: b: c`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The canonical name of a gRPC status code, as in the gRPC specification.
pub fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use std::io::Read;

    fn is_lower_hex(text: &str, len: usize) -> bool {
        text.len() == len
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    #[test]
    fn json_encoding_has_hex_ids_and_round_trips() {
        let mut workload = crate::workload::Workload::new(&crate::config::WorkloadConfig {
            spans_per_trace: 12,
            extra_attributes: 4,
            error_share: 0.5,
            slow_share: 0.0,
            seed: 3,
            environment: "test",
        });
        let batch = workload.batch(5);
        let Request::Traces(request) = batch.request else {
            panic!("a trace batch is a trace request")
        };
        let body = encode_json(&request);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut checked = 0;
        for resource_spans in json["resourceSpans"].as_array().unwrap() {
            for span in resource_spans["scopeSpans"][0]["spans"].as_array().unwrap() {
                assert!(
                    is_lower_hex(span["traceId"].as_str().unwrap(), 32),
                    "{span}"
                );
                assert!(is_lower_hex(span["spanId"].as_str().unwrap(), 16), "{span}");
                let parent = span["parentSpanId"].as_str().unwrap();
                assert!(parent.is_empty() || is_lower_hex(parent, 16), "{span}");
                // OTLP/JSON: 64-bit integers as strings, enums as integers.
                assert!(span["startTimeUnixNano"].is_string());
                assert!(span["kind"].is_u64());
                checked += 1;
            }
        }
        assert_eq!(checked, batch.spans);
        let first = &request.resource_spans[0].scope_spans[0].spans[0];
        let first_json = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(first_json["traceId"], hex(&first.trace_id));
        assert_eq!(first_json["spanId"], hex(&first.span_id));

        // What a server reads back is what was generated (doubles aside: serde_json's
        // default float parsing may differ in the last bit).
        let decoded: ExportTraceServiceRequest = serde_json::from_slice(&body).unwrap();
        let identity = |request: &ExportTraceServiceRequest| {
            request
                .resource_spans
                .iter()
                .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()))
                .map(|span| {
                    (
                        span.trace_id.clone(),
                        span.span_id.clone(),
                        span.parent_span_id.clone(),
                        span.name.clone(),
                        span.kind,
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                        span.status.clone(),
                        span.events.len(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert!(
            identity(&decoded) == identity(&request),
            "the JSON does not decode to the same spans"
        );
    }

    #[test]
    fn signal_url_appends_the_otlp_path_once() {
        let traces = |endpoint| signal_url(endpoint, Signal::Traces);
        assert_eq!(
            traces("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces("http://127.0.0.1:4318/"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces("http://proxy:80/weft/v1/traces"),
            "http://proxy:80/weft/v1/traces"
        );
        assert_eq!(
            traces("http://proxy:80/weft"),
            "http://proxy:80/weft/v1/traces"
        );
        assert_eq!(
            signal_url("http://127.0.0.1:4318", Signal::Logs),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(
            signal_url("http://proxy:80/weft/v1/logs", Signal::Logs),
            "http://proxy:80/weft/v1/logs"
        );
    }

    #[test]
    fn a_logs_partial_success_counts_rejected_records() {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;
        let outcome = Outcome::from_logs_response(ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 2,
                error_message: "line too large".into(),
            }),
        });
        assert_eq!(
            outcome,
            Outcome::Accepted {
                rejected_spans: 2,
                message: Some("line too large".into())
            }
        );
    }

    #[test]
    fn gzip_round_trips() {
        let body = b"spans spans spans spans spans".repeat(50);
        let compressed = gzip_bytes(&body);
        assert!(compressed.len() < body.len());
        let mut decoded = Vec::new();
        GzDecoder::new(compressed.as_slice())
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, body);
    }

    #[test]
    fn error_bodies_are_read_as_rpc_status_json_or_text() {
        // google.rpc.Status { code: 8, message: "rate limited", details: [Any{..}] },
        // encoded by hand: the decoder must skip the details field.
        let mut status = vec![0x08, 0x08, 0x12, 12];
        status.extend_from_slice(b"rate limited");
        status.extend_from_slice(&[0x1a, 0x04, 0x0a, 0x02, b'x', b'y']);
        assert_eq!(
            http_error_detail("application/x-protobuf", &status),
            "rate limited"
        );
        assert_eq!(
            http_error_detail(
                "application/json",
                br#"{"code":16,"message":"unknown api key"}"#
            ),
            "unknown api key"
        );
        assert_eq!(
            http_error_detail("text/plain", b"  bad gateway\n"),
            "bad gateway"
        );
        assert_eq!(http_error_detail("application/x-protobuf", b""), "");
    }

    #[test]
    fn long_details_are_cut() {
        let failure = Failure::new(FailureKind::Http(500), "é".repeat(1_000));
        assert_eq!(failure.detail.chars().count(), MAX_EXAMPLE_CHARS + 1);
    }

    #[test]
    fn server_statuses_and_client_failures_are_told_apart() {
        let server = classify_grpc(&tonic::Status::resource_exhausted("slow down"));
        assert_eq!(
            server.kind,
            FailureKind::Grpc(tonic::Code::ResourceExhausted)
        );
        assert_eq!(server.kind.to_string(), "grpc RESOURCE_EXHAUSTED");
        assert_eq!(server.detail, "slow down");
        assert_eq!(server.kind.class(), FailureClass::Server);

        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let connect = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        let failure = classify_grpc(&connect);
        assert_eq!(failure.kind, FailureKind::Connect);
        assert!(failure.detail.contains("refused"), "{}", failure.detail);
        assert_eq!(failure.kind.class(), FailureClass::Transport);
    }

    #[test]
    fn partial_success_is_reported() {
        let outcome = Outcome::from_response(ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "span too large".into(),
            }),
        });
        assert_eq!(
            outcome,
            Outcome::Accepted {
                rejected_spans: 3,
                message: Some("span too large".into())
            }
        );
        assert_eq!(
            Outcome::from_response(ExportTraceServiceResponse::default()),
            Outcome::Accepted {
                rejected_spans: 0,
                message: None
            }
        );
    }
}
