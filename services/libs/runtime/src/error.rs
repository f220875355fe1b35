//! The one mapping from error kind to HTTP status and gRPC code, shared by every service,
//! and the JSON error body. 5xx details are logged, never sent to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What went wrong, as far as a client needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    /// The request body is larger than allowed (compressed or decompressed).
    PayloadTooLarge,
    /// The body's content type or encoding is not one the endpoint speaks.
    UnsupportedMediaType,
    /// A rate limit; the client should retry after the hint.
    RateLimited,
    /// A dependency (the bus, a database) is down; the client should retry.
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorKind::InvalidArgument | ErrorKind::UnsupportedMediaType => {
                tonic::Code::InvalidArgument
            }
            ErrorKind::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorKind::PermissionDenied => tonic::Code::PermissionDenied,
            ErrorKind::NotFound => tonic::Code::NotFound,
            ErrorKind::PayloadTooLarge | ErrorKind::RateLimited => tonic::Code::ResourceExhausted,
            ErrorKind::Unavailable => tonic::Code::Unavailable,
            ErrorKind::Internal => tonic::Code::Internal,
        }
    }

    /// Seconds a client should wait before retrying, for the kinds where retrying helps.
    pub fn retry_after_secs(self) -> Option<u32> {
        match self {
            ErrorKind::RateLimited | ErrorKind::Unavailable => Some(1),
            _ => None,
        }
    }

    fn is_server_fault(self) -> bool {
        matches!(self, ErrorKind::Internal | ErrorKind::Unavailable)
    }
}

/// An error on its way to a client: a kind and a message safe to show.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// Logs `source` with context and returns an error that reveals nothing of it.
    pub fn internal(context: &str, source: &dyn std::error::Error) -> Self {
        tracing::error!(error = %source, context, "internal error");
        ApiError::new(ErrorKind::Internal, "internal error")
    }

    /// Logs `source` and returns a retryable "unavailable" error.
    pub fn unavailable(context: &str, source: &dyn std::error::Error) -> Self {
        tracing::warn!(error = %source, context, "dependency unavailable");
        ApiError::new(
            ErrorKind::Unavailable,
            format!("{context}: temporarily unavailable, retry later"),
        )
    }

    /// The message a client may see: for server faults only a generic one.
    pub fn public_message(&self) -> &str {
        if self.kind == ErrorKind::Internal {
            "internal error"
        } else {
            &self.message
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.kind.is_server_fault() && self.kind != ErrorKind::Unavailable {
            tracing::error!(message = %self.message, "request failed");
        }
        let body = serde_json::json!({ "error": self.public_message() });
        let mut response = (self.kind.http_status(), Json(body)).into_response();
        if let Some(secs) = self.kind.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        let mut status = tonic::Status::new(error.kind.grpc_code(), error.public_message());
        if let Some(secs) = error.kind.retry_after_secs() {
            // The gRPC convention for a retry hint, read by OTLP exporters.
            status.metadata_mut().insert(
                "retry-after",
                secs.to_string().parse().expect("ascii digits"),
            );
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_matching_http_and_grpc() {
        let cases = [
            (
                ErrorKind::InvalidArgument,
                400,
                tonic::Code::InvalidArgument,
            ),
            (
                ErrorKind::Unauthenticated,
                401,
                tonic::Code::Unauthenticated,
            ),
            (
                ErrorKind::PermissionDenied,
                403,
                tonic::Code::PermissionDenied,
            ),
            (ErrorKind::NotFound, 404, tonic::Code::NotFound),
            (
                ErrorKind::PayloadTooLarge,
                413,
                tonic::Code::ResourceExhausted,
            ),
            (
                ErrorKind::UnsupportedMediaType,
                415,
                tonic::Code::InvalidArgument,
            ),
            (ErrorKind::RateLimited, 429, tonic::Code::ResourceExhausted),
            (ErrorKind::Unavailable, 503, tonic::Code::Unavailable),
            (ErrorKind::Internal, 500, tonic::Code::Internal),
        ];
        for (kind, http, grpc) in cases {
            assert_eq!(kind.http_status().as_u16(), http, "{kind:?}");
            assert_eq!(kind.grpc_code(), grpc, "{kind:?}");
        }
    }

    #[test]
    fn internal_errors_hide_their_message() {
        let status: tonic::Status = ApiError::new(ErrorKind::Internal, "db password wrong").into();
        assert_eq!(status.message(), "internal error");
    }
}
