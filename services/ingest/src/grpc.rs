//! OTLP/gRPC: the `Export` method of the OTLP protocol's `TraceService` and
//! `LogsService`, gzip accepted and sent. A request is not decoded here: the codec
//! hands over the message's bytes and the split validates them on the wire, as it does
//! for OTLP/HTTP protobuf.

use crate::export::{Exporter, Transport, invalid_protobuf};
use crate::signal::{Telemetry, count_items};
use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use std::marker::PhantomData;
use std::sync::Arc;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, EnabledCompressionEncodings, StdError};
use tonic::{Request, Response, Status};
use weft_bus::Signal;
use weft_runtime::shutdown::CancellationToken;
use weft_runtime::{auth, tracing_context};

/// One export of any signal, the request still encoded. The size the log-bytes limit
/// counts is the request's protobuf encoding, uncompressed.
async fn export<T: Telemetry>(
    exporter: &Exporter,
    request: Request<Bytes>,
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
            Signal::Logs => request.len() as u64,
            Signal::Spans => 0,
        };
        // Counted off the wire, so a tenant over its rate costs no validation.
        let items = count_items(&request)
            .ok_or_else(|| invalid_protobuf("the message is not an OTLP export request"))?;
        let admitted = exporter.admit(&resolved, Transport::Grpc, T::SIGNAL, items, bytes)?;
        let traceparent = tracing_context::current_traceparent();
        exporter
            .export::<T>(
                &resolved,
                Transport::Grpc,
                &request,
                admitted,
                traceparent.as_deref(),
            )
            .await
    })
    .await;
    exporter.count_request(Transport::Grpc, T::SIGNAL, result.as_ref());
    Ok(T::response(result?))
}

/// The codec of an export: the request's bytes as they came (after gzip), the answer
/// encoded by `prost`.
struct ExportCodec<T>(PhantomData<T>);

impl<T: Telemetry> Codec for ExportCodec<T> {
    type Encode = T::Response;
    type Decode = Bytes;
    type Encoder = ExportCodec<T>;
    type Decoder = ExportCodec<T>;

    fn encoder(&mut self) -> Self::Encoder {
        ExportCodec(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ExportCodec(PhantomData)
    }
}

impl<T: Telemetry> Encoder for ExportCodec<T> {
    type Item = T::Response;
    type Error = Status;

    fn encode(&mut self, item: T::Response, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the answer: {e}")))
    }
}

impl<T: Telemetry> Decoder for ExportCodec<T> {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The `Export` method of a signal's OTLP service.
struct ExportService<T> {
    exporter: Arc<Exporter>,
    signal: PhantomData<T>,
}

impl<T> Clone for ExportService<T> {
    fn clone(&self) -> Self {
        ExportService {
            exporter: self.exporter.clone(),
            signal: PhantomData,
        }
    }
}

impl<T: Telemetry> tonic::server::UnaryService<Bytes> for ExportService<T> {
    type Response = T::Response;
    type Future = BoxFuture<Response<T::Response>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let exporter = self.exporter.clone();
        Box::pin(async move { export::<T>(&exporter, request).await.map(Response::new) })
    }
}

impl<T: Telemetry, B> tower::Service<http::Request<B>> for ExportService<T>
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            let path = request.uri().path();
            let method = path
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(T::SERVICE));
            if method != Some("/Export") {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let mut gzip = EnabledCompressionEncodings::default();
            gzip.enable(CompressionEncoding::Gzip);
            // One limit bounds both the frame as sent and the message after decompression.
            let limit = service.exporter.limits.max_decompressed_bytes;
            let mut grpc = tonic::server::Grpc::new(ExportCodec::<T>(PhantomData))
                .apply_compression_config(gzip, gzip)
                .apply_max_message_size_config(Some(limit), None);
            Ok(grpc.unary(service, request).await)
        })
    }
}

impl<T: Telemetry> tonic::server::NamedService for ExportService<T> {
    const NAME: &'static str = T::SERVICE;
}

pub fn routes(exporter: Arc<Exporter>) -> tonic::service::Routes {
    let traces = ExportService::<ExportTraceServiceRequest> {
        exporter: exporter.clone(),
        signal: PhantomData,
    };
    let logs = ExportService::<ExportLogsServiceRequest> {
        exporter,
        signal: PhantomData,
    };
    tonic::service::Routes::new(traces).add_service(logs)
}

/// tonic rejects some bad requests before our handler runs, with codes that differ from
/// what OTLP clients are promised: an oversized frame is `OUT_OF_RANGE` (we answer
/// `RESOURCE_EXHAUSTED`, as for a message that inflates too far), and a body that is not
/// valid gzip is `INTERNAL` (we answer `INVALID_ARGUMENT`: the client's fault).
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
        Some(tonic::Code::Internal) if message.starts_with("Error decompressing") => {
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
