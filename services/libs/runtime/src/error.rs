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

    /// The kind as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
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

/// An error on its way to a client: a kind, a message safe to show, and for retryable
/// kinds how many seconds to wait.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub retry_after_secs: Option<u32>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            retry_after_secs: kind.retry_after_secs(),
        }
    }

    /// A rate limit that frees up in `retry_after_secs` seconds.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u32) -> Self {
        ApiError {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..ApiError::new(ErrorKind::RateLimited, message)
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
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        let code = error.kind.grpc_code();
        let message = error.public_message().to_owned();
        let mut status = match error.retry_after_secs {
            // The OTLP specification's retry hint: `google.rpc.RetryInfo` in the details.
            Some(secs) => tonic::Status::with_details(
                code,
                message.clone(),
                retry_details(code, &message, secs),
            ),
            None => tonic::Status::new(code, message),
        };
        if let Some(secs) = error.retry_after_secs {
            status.metadata_mut().insert(
                "retry-after",
                secs.to_string().parse().expect("ascii digits"),
            );
        }
        status
    }
}

/// `google.rpc.Status` with one `google.rpc.RetryInfo` detail, as gRPC status details.
fn retry_details(code: tonic::Code, message: &str, secs: u32) -> bytes::Bytes {
    use prost::Message;
    let retry_info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::from(secs),
            nanos: 0,
        }),
    };
    let status = RpcStatus {
        code: code as i32,
        message: message.to_owned(),
        details: vec![ProtoAny {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".to_owned(),
            value: retry_info.encode_to_vec(),
        }],
    };
    status.encode_to_vec().into()
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
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
    fn rate_limits_carry_retry_info_in_grpc_details() {
        use prost::Message;
        let status: tonic::Status = ApiError::rate_limited("slow down", 3).into();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        let details = RpcStatus::decode(status.details()).unwrap();
        assert_eq!(
            details.details[0].type_url,
            "type.googleapis.com/google.rpc.RetryInfo"
        );
        let info = RetryInfo::decode(details.details[0].value.as_slice()).unwrap();
        assert_eq!(info.retry_delay.unwrap().seconds, 3);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "3");
    }

    #[test]
    fn internal_errors_hide_their_message() {
        let status: tonic::Status = ApiError::new(ErrorKind::Internal, "db password wrong").into();
        assert_eq!(status.message(), "internal error");
    }
}
