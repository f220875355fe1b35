//! What the bus tells operators: publish latency and publishes in flight, and per
//! consumed partition the lag, the redeliveries and the messages handled.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub const PUBLISH_SECONDS: &str = "weft_bus_publish_seconds";
pub const PUBLISHES_IN_FLIGHT: &str = "weft_bus_publishes_in_flight";
pub const PUBLISH_FAILURES: &str = "weft_bus_publish_failures";
pub const PAYLOADS_PER_MESSAGE: &str = "weft_bus_payloads_per_message";
pub const CONSUMER_LAG: &str = "weft_bus_consumer_lag_messages";
pub const REDELIVERIES: &str = "weft_bus_redeliveries";
pub const MESSAGES_CONSUMED: &str = "weft_bus_messages_consumed";
pub const TRIMMED: &str = "weft_bus_trimmed_messages";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabels {
    pub signal: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub signal: &'static str,
    pub partition: u16,
}

fn payload_buckets() -> Histogram {
    // 1 to 1 024 payloads.
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

fn publish_buckets() -> Histogram {
    // 0.25 ms to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The bus's metric families; clones share their values.
#[derive(Clone)]
pub struct BusMetrics {
    pub publish_seconds: Family<SignalLabels, Histogram, fn() -> Histogram>,
    pub publishes_in_flight: Gauge,
    pub publish_failures: Family<SignalLabels, Counter>,
    /// Payloads coalesced into each published message.
    pub payloads_per_message: Family<SignalLabels, Histogram, fn() -> Histogram>,
    pub consumer_lag: Family<PartitionLabels, Gauge>,
    pub redeliveries: Family<PartitionLabels, Counter>,
    pub messages_consumed: Family<PartitionLabels, Counter>,
    pub trimmed: Family<SignalLabels, Counter>,
}

impl Default for BusMetrics {
    fn default() -> Self {
        BusMetrics {
            publish_seconds: Family::new_with_constructor(publish_buckets),
            publishes_in_flight: Gauge::default(),
            publish_failures: Family::default(),
            payloads_per_message: Family::new_with_constructor(payload_buckets),
            consumer_lag: Family::default(),
            redeliveries: Family::default(),
            messages_consumed: Family::default(),
            trimmed: Family::default(),
        }
    }
}

impl BusMetrics {
    /// Adds the publishing side to `registry` (services that publish).
    pub fn register_publishing(&self, registry: &mut Registry) {
        registry.register(
            PUBLISH_SECONDS,
            "Time from publishing a batch to JetStream's acknowledgement",
            self.publish_seconds.clone(),
        );
        registry.register(
            PUBLISHES_IN_FLIGHT,
            "Publishes awaiting JetStream's acknowledgement",
            self.publishes_in_flight.clone(),
        );
        registry.register(
            PUBLISH_FAILURES,
            "Publishes that failed or timed out",
            self.publish_failures.clone(),
        );
        registry.register(
            PAYLOADS_PER_MESSAGE,
            "Payloads published together in one message (those that met on one partition)",
            self.payloads_per_message.clone(),
        );
    }

    /// Adds the consuming side to `registry` (services that own partitions).
    pub fn register_consuming(&self, registry: &mut Registry) {
        registry.register(
            CONSUMER_LAG,
            "Messages of a partition not yet delivered to this consumer",
            self.consumer_lag.clone(),
        );
        registry.register(
            REDELIVERIES,
            "Messages delivered more than once (after a crash, a failed write or an ack timeout)",
            self.redeliveries.clone(),
        );
        registry.register(
            MESSAGES_CONSUMED,
            "Messages handled and acknowledged",
            self.messages_consumed.clone(),
        );
        registry.register(
            TRIMMED,
            "Messages purged from the stream after every consumer acknowledged them",
            self.trimmed.clone(),
        );
    }
}
