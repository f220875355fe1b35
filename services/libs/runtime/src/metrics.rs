//! Prometheus metrics: every service instance keeps its own [`Registry`] (no global
//! recorder, so two replicas in one process count separately) and serves it on
//! `/metrics` beside its health endpoints.

pub use prometheus_client;
pub use prometheus_client::registry::Registry;

/// The Prometheus text exposition (format 0.0.4) of `registry`. prometheus-client
/// writes OpenMetrics text, which differs from 0.0.4 only in its closing `# EOF` line.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode_registry(&mut text, registry)
        .expect("writing to a String cannot fail");
    text
}

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn counters_render_as_prometheus_text() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("weft_things", "Things seen", counter.clone());
        counter.inc_by(3);
        let text = render(&registry);
        assert!(text.contains("# TYPE weft_things counter"), "{text}");
        assert!(text.contains("weft_things_total 3"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }
}
