//! Ingest's metric and log names, and its metric families.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use weft_runtime::metrics::Registry;

pub const REQUESTS: &str = "weft_ingest_requests";
pub const ITEMS: &str = "weft_ingest_items";

/// How a request ended: `accepted`, `partial` (some items rejected), or the error kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub transport: &'static str,
    pub signal: &'static str,
    pub outcome: &'static str,
}

/// Items (spans, log records) accepted, or rejected with a reason: `invalid`,
/// `too_large`, `rate_limited`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ItemLabels {
    pub transport: &'static str,
    pub signal: &'static str,
    pub outcome: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Default)]
pub struct IngestMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub items: Family<ItemLabels, Counter>,
}

impl IngestMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            REQUESTS,
            "OTLP export requests by transport, signal and outcome",
            self.requests.clone(),
        );
        registry.register(
            ITEMS,
            "Spans and log records accepted or rejected, by transport, signal and reason",
            self.items.clone(),
        );
    }
}
