//! Turns the shop's traces into export requests: picks each trace's scenario and size,
//! injects failures and slowness at the configured shares, and groups the spans of a
//! request into one `ResourceSpans` per service.

use crate::config::WorkloadConfig;
use crate::logs::record_of;
use crate::shop::{Scenario, Service, extra_attribute_keys};
use crate::tree::{nonzero_id, str_attr};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{SystemTime, UNIX_EPOCH};

/// The spans of one generated trace, each with the service that emits it.
#[derive(Clone, Debug)]
pub struct GeneratedTrace {
    pub trace_id: [u8; 16],
    pub spans: Vec<(Service, Span)>,
}

/// An export request of either signal.
#[derive(Clone, Debug)]
pub enum Request {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
}

/// One export request and what it carries.
#[derive(Clone, Debug)]
pub struct Batch {
    pub request: Request,
    pub traces: u64,
    /// Spans, or log records for a logs request.
    pub spans: u64,
}

/// The trace source of a run: deterministic for a given seed.
#[derive(Debug)]
pub struct Workload {
    config: WorkloadConfig,
    rng: SmallRng,
    resources: Vec<Resource>,
    scope: InstrumentationScope,
    extra_keys: Vec<String>,
}

impl Workload {
    pub fn new(config: &WorkloadConfig) -> Self {
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let resources = Service::ALL
            .iter()
            .map(|&service| resource(&mut rng, service, config.environment))
            .collect();
        Self {
            config: config.clone(),
            rng,
            resources,
            scope: InstrumentationScope {
                name: "weft-loadtest".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                attributes: Vec::new(),
                dropped_attributes_count: 0,
            },
            extra_keys: extra_attribute_keys(config.extra_attributes),
        }
    }

    /// One trace that ended moments before `now_unix_nanos`.
    pub fn trace(&mut self, now_unix_nanos: u64) -> GeneratedTrace {
        let rng = &mut self.rng;
        let spans = trace_size(rng, self.config.spans_per_trace);
        let mut tree = Scenario::pick(rng).build(rng, spans);
        if rng.random_bool(self.config.error_share) {
            tree.inject_failure(rng);
        }
        if rng.random_bool(self.config.slow_share) {
            tree.inject_slowness(rng);
        }
        let trace_id = nonzero_id(rng);
        GeneratedTrace {
            trace_id,
            spans: tree.into_spans(rng, now_unix_nanos, trace_id, &self.extra_keys),
        }
    }

    /// An export request of `traces` fresh traces.
    pub fn batch(&mut self, traces: usize) -> Batch {
        let now = now_unix_nanos();
        let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); Service::ALL.len()];
        let mut spans = 0;
        for _ in 0..traces {
            let trace = self.trace(now);
            spans += trace.spans.len() as u64;
            for (service, span) in trace.spans {
                by_service[service.index()].push(span);
            }
        }
        let resource_spans = by_service
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(index, spans)| ResourceSpans {
                resource: Some(self.resources[index].clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope.clone()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect();
        Batch {
            request: Request::Traces(ExportTraceServiceRequest { resource_spans }),
            traces: traces as u64,
            spans,
        }
    }

    /// An export request of the log lines of `traces` fresh traces: one line per span,
    /// grouped into one `ResourceLogs` per service.
    pub fn log_batch(&mut self, traces: usize) -> Batch {
        let now = now_unix_nanos();
        let mut by_service: Vec<Vec<LogRecord>> = vec![Vec::new(); Service::ALL.len()];
        let mut records = 0;
        for _ in 0..traces {
            let trace = self.trace(now);
            records += trace.spans.len() as u64;
            for (service, span) in &trace.spans {
                by_service[service.index()].push(record_of(span));
            }
        }
        let resource_logs = by_service
            .into_iter()
            .enumerate()
            .filter(|(_, records)| !records.is_empty())
            .map(|(index, log_records)| ResourceLogs {
                resource: Some(self.resources[index].clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(self.scope.clone()),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect();
        Batch {
            request: Request::Logs(ExportLogsServiceRequest { resource_logs }),
            traces: traces as u64,
            spans: records,
        }
    }
}

/// A trace size spread evenly around `mean` (from half to one and a half times it), so
/// traces differ in size while their mean stays what was asked for.
fn trace_size<R: Rng>(rng: &mut R, mean: u32) -> usize {
    let mean = mean.max(1) as usize;
    rng.random_range(mean.div_ceil(2)..=mean + mean / 2)
}

fn resource<R: Rng>(rng: &mut R, service: Service, environment: &str) -> Resource {
    let instance: u64 = rng.random();
    let pod: u32 = rng.random();
    Resource {
        attributes: vec![
            str_attr("service.name", service.name()),
            str_attr("service.namespace", "shop"),
            str_attr("service.version", service.version()),
            str_attr("service.instance.id", &format!("{instance:016x}")),
            str_attr("host.name", &format!("{}-{:08x}", service.name(), pod)),
            str_attr("deployment.environment.name", environment),
            str_attr("telemetry.sdk.name", "weft-loadtest"),
            str_attr("telemetry.sdk.language", "rust"),
            str_attr("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    }
}

/// The wall clock in Unix nanoseconds.
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    use std::collections::{HashMap, HashSet};

    fn config(spans_per_trace: u32, error_share: f64, slow_share: f64) -> WorkloadConfig {
        WorkloadConfig {
            spans_per_trace,
            extra_attributes: 0,
            error_share,
            slow_share,
            seed: 42,
            environment: "test",
        }
    }

    fn is_error(span: &Span) -> bool {
        span.status
            .as_ref()
            .is_some_and(|status| status.code == StatusCode::Error as i32)
    }

    fn service_name(resource: &Resource) -> &str {
        resource
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(|value| match value {
                Value::StringValue(name) => name.as_str(),
                _ => "",
            })
            .unwrap_or_default()
    }

    #[test]
    fn ids_are_valid_and_every_parent_is_in_the_same_trace() {
        let mut workload = Workload::new(&config(25, 0.1, 0.1));
        let now = now_unix_nanos();
        for _ in 0..300 {
            let trace = workload.trace(now);
            assert!(trace.trace_id.iter().any(|&b| b != 0));
            let spans: Vec<&Span> = trace.spans.iter().map(|(_, span)| span).collect();
            let by_id: HashMap<&[u8], &Span> = spans
                .iter()
                .map(|span| (span.span_id.as_slice(), *span))
                .collect();
            assert_eq!(
                by_id.len(),
                spans.len(),
                "span ids are unique within a trace"
            );
            let mut roots = 0;
            for span in &spans {
                assert_eq!(span.trace_id, trace.trace_id);
                assert_eq!(span.span_id.len(), 8);
                assert!(span.span_id.iter().any(|&b| b != 0));
                if span.parent_span_id.is_empty() {
                    roots += 1;
                    continue;
                }
                let parent = by_id
                    .get(span.parent_span_id.as_slice())
                    .expect("the parent is in the same trace");
                assert!(
                    parent.start_time_unix_nano <= span.start_time_unix_nano
                        && span.end_time_unix_nano <= parent.end_time_unix_nano,
                    "{} lies inside {}",
                    span.name,
                    parent.name
                );
            }
            assert_eq!(roots, 1);
        }
    }

    #[test]
    fn timestamps_are_near_now() {
        let mut workload = Workload::new(&config(20, 0.0, 1.0));
        let now = now_unix_nanos();
        for _ in 0..50 {
            for (_, span) in workload.trace(now).spans {
                assert!(span.end_time_unix_nano < now);
                // Slow traces last at most a few seconds.
                assert!(now - span.start_time_unix_nano < 10_000_000_000);
            }
        }
    }

    #[test]
    fn error_and_slow_shares_are_honoured() {
        let traces = 4_000;
        for (error_share, slow_share) in [(0.0, 0.0), (0.1, 0.3), (0.5, 0.05), (1.0, 1.0)] {
            let mut workload = Workload::new(&config(12, error_share, slow_share));
            let now = now_unix_nanos();
            let (mut failed, mut slow) = (0, 0);
            for _ in 0..traces {
                let trace = workload.trace(now);
                let root = &trace.spans[0].1;
                if trace.spans.iter().any(|(_, span)| is_error(span)) {
                    failed += 1;
                    assert!(is_error(root), "a failure reaches the root");
                }
                if root.end_time_unix_nano - root.start_time_unix_nano >= 800_000_000 {
                    slow += 1;
                }
            }
            let failed_share = f64::from(failed) / f64::from(traces);
            let slow_share_seen = f64::from(slow) / f64::from(traces);
            assert!(
                (failed_share - error_share).abs() < 0.03,
                "errors {failed_share} for {error_share}"
            );
            assert!(
                (slow_share_seen - slow_share).abs() < 0.03,
                "slow {slow_share_seen} for {slow_share}"
            );
        }
    }

    #[test]
    fn trace_sizes_average_the_requested_size() {
        for mean in [1, 5, 20, 100] {
            let mut workload = Workload::new(&config(mean, 0.0, 0.0));
            let traces = 2_000;
            let total: usize = (0..traces).map(|_| workload.trace(1).spans.len()).sum();
            let average = total as f64 / f64::from(traces);
            assert!(
                (average - f64::from(mean)).abs() <= f64::from(mean) * 0.05,
                "average {average} for {mean}"
            );
        }
    }

    #[test]
    fn a_batch_has_one_resource_per_service_and_counts_its_spans() {
        let mut workload = Workload::new(&WorkloadConfig {
            extra_attributes: 6,
            ..config(30, 0.0, 0.0)
        });
        let batch = workload.batch(20);
        assert_eq!(batch.traces, 20);
        let mut seen = HashSet::new();
        let mut spans = 0;
        let mut trace_ids = HashSet::new();
        let Request::Traces(request) = &batch.request else {
            panic!("a trace batch is a trace request")
        };
        for resource_spans in &request.resource_spans {
            let name = service_name(resource_spans.resource.as_ref().unwrap());
            assert!(seen.insert(name.to_owned()), "{name} appears once");
            for scope_spans in &resource_spans.scope_spans {
                for span in &scope_spans.spans {
                    spans += 1;
                    trace_ids.insert(span.trace_id.clone());
                    let extras = span
                        .attributes
                        .iter()
                        .filter(|kv| kv.key.starts_with("loadtest.extra."))
                        .count();
                    assert_eq!(extras, 6);
                }
            }
        }
        assert_eq!(spans, batch.spans);
        assert_eq!(trace_ids.len(), 20);
        assert!(seen.contains("frontend"));
    }

    #[test]
    fn a_log_batch_has_a_line_per_span_with_its_trace_grouped_by_service() {
        let mut traces = Workload::new(&config(12, 0.5, 0.0));
        let mut logs = Workload::new(&config(12, 0.5, 0.0));
        let spans = traces.batch(10);
        let lines = logs.log_batch(10);
        assert_eq!(lines.spans, spans.spans);
        let (Request::Traces(spans), Request::Logs(lines)) = (spans.request, lines.request) else {
            panic!("one request of each signal")
        };
        let span_ids: HashSet<(Vec<u8>, Vec<u8>)> = spans
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .flat_map(|scope| &scope.spans)
            .map(|span| (span.trace_id.clone(), span.span_id.clone()))
            .collect();
        let mut seen = HashSet::new();
        let mut errors = 0;
        for resource_logs in &lines.resource_logs {
            let name = service_name(resource_logs.resource.as_ref().unwrap());
            assert!(seen.insert(name.to_owned()), "{name} appears once");
            for record in resource_logs.scope_logs.iter().flat_map(|s| &s.log_records) {
                assert!(span_ids.contains(&(record.trace_id.clone(), record.span_id.clone())));
                errors += usize::from(record.severity_text == "ERROR");
            }
        }
        assert!(
            errors > 0,
            "half the traces fail, and their failing spans log errors"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_traces() {
        let mut first = Workload::new(&config(15, 0.2, 0.2));
        let mut second = Workload::new(&config(15, 0.2, 0.2));
        for _ in 0..20 {
            let (a, b) = (first.trace(5), second.trace(5));
            assert_eq!(a.trace_id, b.trace_id);
            assert_eq!(a.spans, b.spans);
        }
    }
}
