//! A system of 50 services for the service map's suites: four gateways, ten web
//! services, twenty backends and sixteen stores, each trace passing through one of each
//! tier (gateway → web → svc → store), so that every service and a few dozen calls
//! appear within a minute of traffic.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use std::collections::BTreeSet;
use weft_testkit::otlp::{random_id, string_attribute};

const MS: u64 = 1_000_000;
const TIERS: [(&str, u64, u64); 4] = [
    ("gateway", 4, 1),
    ("web", 10, 3),
    ("svc", 20, 7),
    ("store", 16, 11),
];
/// Traces sent; enough for every service of every tier to appear.
pub const TRACES: u64 = 60;

/// The name of service `i` of a tier: `svc-07`.
pub fn service(tier: &str, i: u64) -> String {
    format!("{tier}-{i:02}")
}

/// The traces, one export request each (one resource per service, server spans), and
/// the calls they make as (caller, callee). Trace `t` starts `t` × 100 ms after `start`;
/// every thirteenth fails in its store.
pub fn fifty_services(start: u64) -> (Vec<ExportTraceServiceRequest>, BTreeSet<(String, String)>) {
    let mut calls = BTreeSet::new();
    let mut requests = Vec::new();
    for t in 0..TRACES {
        let trace_id = random_id::<16>();
        let (mut parent, mut previous): (Option<[u8; 8]>, Option<String>) = (None, None);
        let mut resources = Vec::new();
        for (depth, (tier, count, stride)) in TIERS.iter().enumerate() {
            let name = service(tier, t * stride % count);
            if let Some(caller) = previous.replace(name.clone()) {
                calls.insert((caller, name.clone()));
            }
            let id = random_id::<8>();
            let begin = start + t * 100 * MS + depth as u64 * MS;
            let span = Span {
                trace_id: trace_id.to_vec(),
                span_id: id.to_vec(),
                parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
                name: "handle".to_owned(),
                kind: 2,
                start_time_unix_nano: begin,
                end_time_unix_nano: begin + (40 - depth as u64 * 8) * MS,
                status: (t % 13 == 5 && depth == 3).then(|| Status {
                    code: 2,
                    message: "failed".into(),
                }),
                ..Default::default()
            };
            parent = Some(id);
            resources.push(ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string_attribute("service.name", &name)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..Default::default()
                }],
                schema_url: String::new(),
            });
        }
        requests.push(ExportTraceServiceRequest {
            resource_spans: resources,
        });
    }
    (requests, calls)
}
