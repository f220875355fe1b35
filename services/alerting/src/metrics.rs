//! The alerting service's metric names and families (the bus adds consumer lag).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use weft_runtime::metrics::Registry;

pub const SPANS_CHECKED: &str = "weft_alerting_spans_checked";
pub const SPANS_MATCHED: &str = "weft_alerting_spans_matched";
pub const EVALUATIONS: &str = "weft_alerting_evaluations";
pub const EVALUATION_FAILURES: &str = "weft_alerting_evaluation_failures";
pub const TRANSITIONS: &str = "weft_alerting_transitions";
pub const DELIVERIES: &str = "weft_alerting_deliveries";
pub const RULE_LOADS: &str = "weft_alerting_rule_loads";

/// A change of state: the state entered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

/// A delivery attempt: the channel kind and `sent`, `retry` or `failed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub channel: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Default)]
pub struct AlertingMetrics {
    pub spans_checked: Counter,
    pub spans_matched: Counter,
    pub evaluations: Counter,
    pub evaluation_failures: Counter,
    pub transitions: Family<StateLabels, Counter>,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub rule_loads: Counter,
}

impl AlertingMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            SPANS_CHECKED,
            "Spans checked against span-duration rules",
            self.spans_checked.clone(),
        );
        registry.register(
            SPANS_MATCHED,
            "Spans that broke a span-duration rule",
            self.spans_matched.clone(),
        );
        registry.register(
            EVALUATIONS,
            "Aggregate rule evaluations",
            self.evaluations.clone(),
        );
        registry.register(
            EVALUATION_FAILURES,
            "Aggregate rule evaluations that failed (ClickHouse or PostgreSQL unavailable)",
            self.evaluation_failures.clone(),
        );
        registry.register(
            TRANSITIONS,
            "Alert state changes won by this replica, by state entered",
            self.transitions.clone(),
        );
        registry.register(
            DELIVERIES,
            "Delivery attempts by channel kind and outcome",
            self.deliveries.clone(),
        );
        registry.register(
            RULE_LOADS,
            "Loads of a tenant's span-duration rules from PostgreSQL",
            self.rule_loads.clone(),
        );
    }
}
