//! An application instrumented the way the README tells users to: the OpenTelemetry SDK
//! configured only by `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL` and `OTEL_SERVICE_NAME`. It sends one trace of two spans
//! and prints its trace id; the `sdk_env` test runs it against a stack.

use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let exporter = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Ok("grpc") => SpanExporter::builder().with_tonic().build()?,
        _ => SpanExporter::builder().with_http().build()?,
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().build())
        .build();
    let tracer = provider.tracer("otel-env-client");
    let root = tracer.start("GET /env");
    let cx = Context::current_with_span(root);
    let mut child = tracer.start_with_context("SELECT env", &cx);
    child.set_attribute(KeyValue::new("db.system", "postgresql"));
    let trace_id = child.span_context().trace_id();
    child.end();
    cx.span().end();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        provider.force_flush()?;
        provider.shutdown()?;
        Ok(())
    })
    .await??;
    println!("{trace_id}");
    Ok(())
}
