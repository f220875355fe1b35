//! W3C trace context for Weft's own request handling: every request runs inside a
//! `tracing` span carrying `trace_id` and `span_id` (continuing an incoming `traceparent`
//! header, or starting a trace), and the context is passed on in `traceparent` headers,
//! NATS messages included, so one trace follows a batch from ingest to the sampler.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use std::future::Future;
use tracing::Instrument;

pub const TRACEPARENT: &str = "traceparent";
/// The name of every span this module opens (the operation is its `otel.name` field).
pub const SPAN_NAME: &str = "handle";

/// One span's place in a trace, as a `traceparent` header carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    let mut id = [0u8; N];
    while id == [0u8; N] {
        rand::rng().fill_bytes(&mut id);
    }
    id
}

impl TraceContext {
    /// A new trace.
    pub fn root() -> Self {
        TraceContext {
            trace_id: random_nonzero(),
            span_id: random_nonzero(),
            sampled: true,
        }
    }

    /// A new span in the same trace.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: random_nonzero(),
            ..*self
        }
    }

    /// A `traceparent` value (version 00); `None` for anything malformed, as the W3C
    /// specification asks (the receiver then starts a new trace).
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let lower_hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !(lower_hex(trace) && lower_hex(span) && lower_hex(flags)) || flags.len() != 2 {
            return None;
        }
        let trace_id: [u8; 16] = hex::decode(trace).ok()?.try_into().ok()?;
        let span_id: [u8; 8] = hex::decode(span).ok()?.try_into().ok()?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    pub fn to_header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            u8::from(self.sampled)
        )
    }

    /// The span of work done in this context, with its ids as fields.
    pub fn span(&self, name: &'static str, parent: Option<&TraceContext>) -> tracing::Span {
        tracing::info_span!(
            "handle",
            otel.name = name,
            trace_id = %hex::encode(self.trace_id),
            span_id = %hex::encode(self.span_id),
            parent_span_id = parent.map(|p| hex::encode(p.span_id)).unwrap_or_default(),
            sampled = self.sampled,
        )
    }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The context of the work this task is doing, if it runs inside [`within`].
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// The `traceparent` to send with a message published from the current context.
pub fn current_traceparent() -> Option<String> {
    current().map(|c| c.to_header())
}

/// Runs `work` as a child of `parent` (or as a new trace), inside its span.
pub async fn within<F: Future>(
    name: &'static str,
    parent: Option<TraceContext>,
    work: F,
) -> F::Output {
    let context = parent.map_or_else(TraceContext::root, |p| p.child());
    let span = context.span(name, parent.as_ref());
    CURRENT.scope(context, work.instrument(span)).await
}

/// axum middleware: each request continues its `traceparent` or starts a trace.
pub async fn http(request: Request, next: Next) -> Response {
    let parent = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    within("http request", parent, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_malformed_values() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(header).unwrap();
        assert!(context.sampled);
        assert_eq!(context.to_header(), header);
        let child = context.child();
        assert_eq!(child.trace_id, context.trace_id);
        assert_ne!(child.span_id, context.span_id);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn work_inside_a_context_sees_it() {
        assert_eq!(current(), None);
        let parent = TraceContext::root();
        let seen = within("test", Some(parent), async { current() })
            .await
            .unwrap();
        assert_eq!(seen.trace_id, parent.trace_id);
        assert_ne!(seen.span_id, parent.span_id);
    }
}
