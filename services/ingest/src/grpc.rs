//! OTLP/gRPC: the `TraceService` of the OTLP protocol, gzip accepted and sent.

use weft_runtime::auth;
use crate::export::Exporter;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::sync::Arc;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};
use weft_runtime::shutdown::CancellationToken;

struct GrpcIngest {
    exporter: Arc<Exporter>,
}

#[tonic::async_trait]
impl TraceService for GrpcIngest {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let key = auth::api_key(|name| request.metadata().get(name).and_then(|v| v.to_str().ok()));
        let tenant = self.exporter.authenticate(key).await?;
        let response = self.exporter.export(tenant, request.into_inner()).await?;
        Ok(Response::new(response))
    }
}

pub fn routes(exporter: Arc<Exporter>) -> tonic::service::Routes {
    // One limit bounds both the frame as sent and the message after decompression.
    let limit = exporter.limits.max_decompressed_bytes;
    let service = TraceServiceServer::new(GrpcIngest { exporter })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    tonic::service::Routes::new(service)
}

/// tonic reports a frame over the size limit as `OUT_OF_RANGE`; OTLP clients expect
/// `RESOURCE_EXHAUSTED` for an oversized request, as for one that inflates too far.
fn oversized_as_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let out_of_range = (tonic::Code::OutOfRange as i32).to_string();
    if response.headers().get("grpc-status").is_some_and(|v| v.as_bytes() == out_of_range.as_bytes()) {
        let exhausted = (tonic::Code::ResourceExhausted as i32).to_string();
        response
            .headers_mut()
            .insert("grpc-status", exhausted.parse().expect("ascii digits"));
    }
    response
}

pub async fn serve(
    routes: tonic::service::Routes,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(oversized_as_resource_exhausted))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown.cancelled_owned(),
        )
        .await
}
