//! An application that logs with `tracing`, bridged to OpenTelemetry logs by
//! `opentelemetry-appender-tracing`, configured only by `OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_PROTOCOL` and `OTEL_SERVICE_NAME`.
//! It logs two lines inside active spans and one outside any, and prints, as JSON, the
//! trace id and the span id each message was logged under; the `logs_otlp_sdk` test
//! runs it against a stack.

use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::{LogExporter, SpanExporter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let grpc = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() == Ok("grpc");
    let (spans, logs) = if grpc {
        (
            SpanExporter::builder().with_tonic().build()?,
            LogExporter::builder().with_tonic().build()?,
        )
    } else {
        (
            SpanExporter::builder().with_http().build()?,
            LogExporter::builder().with_http().build()?,
        )
    };
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(Resource::builder().build())
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_batch_exporter(logs)
        .with_resource(Resource::builder().build())
        .build();
    tracing_subscriber::registry()
        .with(OpenTelemetryTracingBridge::new(&logger_provider))
        .init();

    let tracer = tracer_provider.tracer("otel-logs-client");
    let root = Context::current_with_span(tracer.start("POST /checkout"));
    let root_span = root.span().span_context().span_id().to_string();
    let trace_id = root.span().span_context().trace_id().to_string();
    let child_span = {
        let _active = root.clone().attach();
        tracing::info!("checkout started");
        let child = Context::current_with_span(tracer.start_with_context("charge card", &root));
        let _inner = child.clone().attach();
        tracing::warn!(customer = "O'Brien", attempt = 2, "card declined, retrying");
        child
            .span()
            .set_attribute(KeyValue::new("payment.provider", "acme"));
        child.span().end();
        child.span().span_context().span_id().to_string()
    };
    root.span().end();
    tracing::error!("nightly report failed");

    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        tracer_provider.force_flush()?;
        logger_provider.force_flush()?;
        tracer_provider.shutdown()?;
        logger_provider.shutdown()?;
        Ok(())
    })
    .await??;
    let seen = serde_json::json!({
        "trace_id": trace_id,
        "spans": {
            "checkout started": root_span,
            "card declined, retrying": child_span,
            "nightly report failed": "",
        },
    });
    println!("{seen}");
    Ok(())
}
