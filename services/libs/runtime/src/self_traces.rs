//! Weft's own traces, exported as OTLP to a Weft (its own ingest, or another stack's):
//! every span [`crate::tracing_context`] opens for a request or a bus message carries
//! W3C ids, and this layer turns each finished one into an OTLP span, batched and sent
//! with an ingest key. Set `WEFT_SELF_TRACES_ENDPOINT` (an OTLP/HTTP base URL such as
//! `http://127.0.0.1:4318`) and `WEFT_SELF_TRACES_KEY` to turn it on.
//!
//! The exporter's own requests carry an unsampled `traceparent`, and unsampled spans
//! are not exported, so a Weft exporting to itself does not trace its own exports.

use crate::tracing_context::TraceContext;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Spans waiting to be sent; past this, new ones are dropped rather than queued.
const QUEUE: usize = 4096;
const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// Where to send Weft's own spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfTraceConfig {
    pub endpoint: String,
    pub key: String,
}

impl SelfTraceConfig {
    /// From `WEFT_SELF_TRACES_ENDPOINT` and `WEFT_SELF_TRACES_KEY`; `None` unless both are set.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let endpoint = get("WEFT_SELF_TRACES_ENDPOINT").filter(|v| !v.is_empty())?;
        let key = get("WEFT_SELF_TRACES_KEY").filter(|v| !v.is_empty())?;
        Some(SelfTraceConfig {
            endpoint: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
            key,
        })
    }
}

/// What the layer keeps of an open span.
struct OpenSpan {
    context: TraceContext,
    parent_span_id: Option<[u8; 8]>,
    name: String,
    start: SystemTime,
}

#[derive(Default)]
struct Fields {
    trace_id: Option<String>,
    span_id: Option<String>,
    parent_span_id: Option<String>,
    sampled: Option<bool>,
    name: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_owned());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "sampled" {
            self.sampled = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        match field.name() {
            "trace_id" => self.trace_id = Some(value),
            "span_id" => self.span_id = Some(value),
            "parent_span_id" => self.parent_span_id = Some(value),
            "otel.name" => self.name = Some(value),
            _ => {}
        }
    }

    fn open(self) -> Option<OpenSpan> {
        let id = |hex_id: &str| hex::decode(hex_id).ok();
        let context = TraceContext {
            trace_id: id(self.trace_id.as_deref()?)?.try_into().ok()?,
            span_id: id(self.span_id.as_deref()?)?.try_into().ok()?,
            sampled: self.sampled.unwrap_or(true),
        };
        Some(OpenSpan {
            context,
            parent_span_id: self
                .parent_span_id
                .as_deref()
                .and_then(id)
                .and_then(|p| p.try_into().ok()),
            name: self.name.unwrap_or_else(|| "handle".to_owned()),
            start: SystemTime::now(),
        })
    }
}

/// The tracing layer: finished, sampled request spans go to the exporter task.
pub struct SelfTraceLayer {
    spans_tx: mpsc::Sender<Span>,
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

impl<S> Layer<S> for SelfTraceLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != crate::tracing_context::SPAN_NAME {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(open), Some(span)) = (fields.open(), ctx.span(id)) {
            span.extensions_mut().insert(open);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(open) = span.extensions_mut().remove::<OpenSpan>() else {
            return;
        };
        if !open.context.sampled {
            return;
        }
        let otlp = Span {
            trace_id: open.context.trace_id.to_vec(),
            span_id: open.context.span_id.to_vec(),
            parent_span_id: open.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
            name: open.name,
            kind: 2,
            start_time_unix_nano: nanos(open.start),
            end_time_unix_nano: nanos(SystemTime::now()),
            ..Default::default()
        };
        // A full queue means the endpoint is slow or down: drop rather than grow.
        let _ = self.spans_tx.try_send(otlp);
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// The layer and the task that sends what it collects; the task must run on a tokio
/// runtime and ends when the layer is dropped.
pub fn layer(
    service: &'static str,
    config: SelfTraceConfig,
) -> (SelfTraceLayer, impl std::future::Future<Output = ()>) {
    let (spans_tx, spans_rx) = mpsc::channel(QUEUE);
    (
        SelfTraceLayer { spans_tx },
        export(service, config, spans_rx),
    )
}

async fn export(
    service: &'static str,
    config: SelfTraceConfig,
    mut spans_rx: mpsc::Receiver<Span>,
) {
    let http = reqwest::Client::new();
    let resource = Resource {
        attributes: vec![
            text("service.name", service),
            text("service.version", env!("CARGO_PKG_VERSION")),
        ],
        ..Default::default()
    };
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let closed = tokio::select! {
            received = spans_rx.recv_many(&mut batch, BATCH) => received == 0,
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
        };
        if !batch.is_empty() {
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        spans: std::mem::take(&mut batch),
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                }],
            };
            let sent = http
                .post(&config.endpoint)
                .header("content-type", "application/x-protobuf")
                .header("x-api-key", &config.key)
                // Unsampled: the receiving Weft does not trace this export.
                .header(
                    crate::tracing_context::TRACEPARENT,
                    TraceContext {
                        sampled: false,
                        ..TraceContext::root()
                    }
                    .to_header(),
                )
                .body(request.encode_to_vec())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => eprintln!("weft: self-trace export refused: {}", response.status()),
                Err(error) => eprintln!("weft: self-trace export failed: {error}"),
            }
        }
        if closed {
            return;
        }
    }
}
