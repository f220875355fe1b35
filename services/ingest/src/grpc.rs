//! OTLP/gRPC: the `TraceService` and `LogsService` of the OTLP protocol, gzip accepted
//! and sent.

use crate::export::{Exporter, Transport};
use crate::signal::Telemetry;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::sync::Arc;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};
use weft_bus::Signal;
use weft_runtime::shutdown::CancellationToken;
use weft_runtime::{auth, tracing_context};

struct GrpcIngest {
    exporter: Arc<Exporter>,
}

#[tonic::async_trait]
impl TraceService for GrpcIngest {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        export(&self.exporter, request).await.map(Response::new)
    }
}

#[tonic::async_trait]
impl LogsService for GrpcIngest {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        export(&self.exporter, request).await.map(Response::new)
    }
}

/// One export of any signal. tonic has decoded the message already, so the tenant's
/// rate is checked on the decoded request, before it is validated and split; the size
/// the log-bytes limit counts is the request's protobuf encoding, uncompressed.
async fn export<T: Telemetry>(
    exporter: &Exporter,
    request: Request<T>,
) -> Result<T::Response, Status> {
    let metadata = request.metadata();
    let parent = metadata
        .get(tracing_context::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(tracing_context::TraceContext::parse);
    let key =
        auth::api_key(|name| metadata.get(name).and_then(|v| v.to_str().ok())).map(str::to_owned);
    let result = tracing_context::within("grpc export", parent, async {
        let resolved = exporter.authenticate(key.as_deref()).await?;
        let request = request.into_inner();
        let bytes = match T::SIGNAL {
            Signal::Logs => request.encoded_len() as u64,
            Signal::Spans => 0,
        };
        let admitted = exporter.admit(
            &resolved,
            Transport::Grpc,
            T::SIGNAL,
            request.item_count(),
            bytes,
        )?;
        let traceparent = tracing_context::current_traceparent();
        exporter
            .export(
                &resolved,
                Transport::Grpc,
                request,
                admitted,
                traceparent.as_deref(),
            )
            .await
    })
    .await;
    exporter.count_request(Transport::Grpc, T::SIGNAL, result.as_ref());
    Ok(T::response(result?))
}

pub fn routes(exporter: Arc<Exporter>) -> tonic::service::Routes {
    // One limit bounds both the frame as sent and the message after decompression.
    let limit = exporter.limits.max_decompressed_bytes;
    let traces = TraceServiceServer::new(GrpcIngest {
        exporter: exporter.clone(),
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(limit);
    let logs = LogsServiceServer::new(GrpcIngest { exporter })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    tonic::service::Routes::new(traces).add_service(logs)
}

/// tonic rejects some bad requests before our handler runs, with codes that differ from
/// what OTLP clients are promised: an oversized frame is `OUT_OF_RANGE` (we answer
/// `RESOURCE_EXHAUSTED`, as for a message that inflates too far), and a body that is not
/// valid protobuf or gzip is `INTERNAL` (we answer `INVALID_ARGUMENT`: the client's fault).
fn bad_input_codes<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers();
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok());
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .replace("%20", " ");
    let replacement = match code.map(tonic::Code::from_i32) {
        Some(tonic::Code::OutOfRange) => Some(tonic::Code::ResourceExhausted),
        Some(tonic::Code::Internal)
            if message.starts_with("failed to decode Protobuf message")
                || message.starts_with("Error decompressing") =>
        {
            Some(tonic::Code::InvalidArgument)
        }
        _ => None,
    };
    if let Some(code) = replacement {
        let value = (code as i32).to_string().parse().expect("ascii digits");
        response.headers_mut().insert("grpc-status", value);
    }
    response
}

pub async fn serve(
    routes: tonic::service::Routes,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(bad_input_codes))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown.cancelled_owned(),
        )
        .await
}
