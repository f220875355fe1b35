//! OTLP/HTTP: `POST /v1/traces` and `POST /v1/logs` with a protobuf or JSON body, optionally gzip. Responses
//! and errors are encoded like the request, as the OTLP specification asks (errors as a
//! `google.rpc.Status`). The handler is written once for every signal.

use crate::export::Rejected;
use crate::export::{Exporter, Transport, invalid_protobuf};
use crate::signal::{Telemetry, count_items};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::io::Read;
use std::sync::Arc;
use weft_runtime::auth;
use weft_runtime::error::RpcStatus;
use weft_runtime::{ApiError, ErrorKind};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The OTLP/HTTP routes (health and metrics are merged in by the service).
pub fn router(exporter: Arc<Exporter>) -> Router {
    Router::new()
        .route(
            "/v1/traces",
            post(export_signal::<ExportTraceServiceRequest>),
        )
        .route("/v1/logs", post(export_signal::<ExportLogsServiceRequest>))
        .route("/v1/logs/json", post(crate::jsonlines::export_json_lines))
        .layer(DefaultBodyLimit::disable())
        .with_state(exporter)
}

#[derive(Clone, Copy)]
enum Format {
    Protobuf,
    Json,
}

async fn export_signal<T: Telemetry>(
    State(exporter): State<Arc<Exporter>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let format = match content_type.as_deref() {
        Some(PROTOBUF | "application/protobuf") => Format::Protobuf,
        Some(JSON) => Format::Json,
        other => {
            let message = format!(
                "unsupported content type {:?}: send {PROTOBUF} or {JSON}",
                other.unwrap_or("")
            );
            let error = ApiError::new(ErrorKind::UnsupportedMediaType, message);
            exporter.count_request(Transport::Http, T::SIGNAL, Err(&error));
            return error_response(error, Format::Json);
        }
    };
    let result = export::<T>(&exporter, &headers, body, format).await;
    exporter.count_request(Transport::Http, T::SIGNAL, result.as_ref());
    match result {
        Ok(rejected) => {
            let response = T::response(rejected);
            match format {
                Format::Protobuf => {
                    ([(header::CONTENT_TYPE, PROTOBUF)], response.encode_to_vec()).into_response()
                }
                Format::Json => (
                    [(header::CONTENT_TYPE, JSON)],
                    serde_json::to_vec(&response).expect("response serialises"),
                )
                    .into_response(),
            }
        }
        Err(error) => error_response(error, format),
    }
}

async fn export<T: Telemetry>(
    exporter: &Exporter,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<Rejected, ApiError> {
    let key = auth::api_key(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    let resolved = exporter.authenticate(key).await?;
    let body = read_body(exporter, headers, body).await?;
    // What the log-bytes limit counts: the body after decompression.
    let bytes = body.len() as u64;
    let request = match format {
        Format::Protobuf => body,
        Format::Json => {
            let request: T = serde_json::from_slice(&body).map_err(|e| {
                ApiError::new(
                    ErrorKind::InvalidArgument,
                    format!("invalid OTLP JSON: {e}"),
                )
            })?;
            request.encode_to_vec().into()
        }
    };
    // Counted off the wire first, so a tenant over its rate costs no validation.
    let items = count_items(&request)
        .ok_or_else(|| invalid_protobuf("the body is not an OTLP export request"))?;
    let admitted = exporter.admit(&resolved, Transport::Http, T::SIGNAL, items, bytes)?;
    let traceparent = weft_runtime::tracing_context::current_traceparent();
    exporter
        .export::<T>(
            &resolved,
            Transport::Http,
            &request,
            admitted,
            traceparent.as_deref(),
        )
        .await
}

/// The request body within the size limits, decompressed when it is gzip: 413 past a
/// limit (before decompression from `Content-Length` where it is declared, after it
/// without inflating a bomb whole), 415 for another encoding.
pub(crate) async fn read_body(
    exporter: &Exporter,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
    let limits = exporter.limits;
    let too_large = |limit: usize, what: &str| {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("request body exceeds {limit} bytes{what}"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limits.max_request_bytes) {
        return Err(too_large(limits.max_request_bytes, ""));
    }
    let raw = axum::body::to_bytes(body, limits.max_request_bytes)
        .await
        .map_err(|e| {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                too_large(limits.max_request_bytes, "")
            } else {
                ApiError::new(
                    ErrorKind::InvalidArgument,
                    format!("failed to read request body: {e}"),
                )
            }
        })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let body = match encoding.as_deref() {
        None | Some("" | "identity") => raw,
        Some("gzip") => gunzip(&raw, limits.max_decompressed_bytes).map_err(|e| {
            e.unwrap_or_else(|| too_large(limits.max_decompressed_bytes, " after decompression"))
        })?,
        Some(other) => {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                format!("unsupported content encoding {other:?}: send gzip or no encoding"),
            ));
        }
    };
    Ok(body)
}

/// Decompresses at most `limit` bytes; `Err(None)` when the body inflates past it (a
/// gzip bomb is refused after `limit` bytes, never inflated whole).
fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, Option<ApiError>> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            Some(ApiError::new(
                ErrorKind::InvalidArgument,
                format!("invalid gzip body: {e}"),
            ))
        })?;
    if out.len() > limit {
        return Err(None);
    }
    Ok(out.into())
}

fn error_response(error: ApiError, format: Format) -> Response {
    let status = error.kind.http_status();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(message = %error.message, "export failed");
    }
    let rpc = RpcStatus {
        code: error.kind.grpc_code() as i32,
        message: error.public_message().to_owned(),
        details: Vec::new(),
    };
    let mut response = match format {
        Format::Protobuf => (
            status,
            [(header::CONTENT_TYPE, PROTOBUF)],
            rpc.encode_to_vec(),
        )
            .into_response(),
        Format::Json => (
            status,
            [(header::CONTENT_TYPE, JSON)],
            serde_json::json!({ "code": rpc.code, "message": rpc.message }).to_string(),
        )
            .into_response(),
    };
    if let Some(secs) = error.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 10 << 20]).unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 64 << 10);
        assert!(matches!(gunzip(&bomb, 1 << 20), Err(None)));
        assert_eq!(gunzip(&bomb, 10 << 20).unwrap().len(), 10 << 20);
        assert!(matches!(gunzip(b"not gzip", 1 << 20), Err(Some(_))));
    }
}
