//! Validating spans and splitting a request by trace-id partition. Each part keeps the
//! resource and scope of its spans, so a part is itself a complete OTLP request.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::collections::BTreeMap;
use weft_model::{Partition, SpanId, TraceId};

/// A request split into per-partition parts, with what was rejected.
#[derive(Debug, Default)]
pub struct Split {
    pub parts: BTreeMap<Partition, ExportTraceServiceRequest>,
    pub accepted: u64,
    pub rejected: u64,
    /// The first reason a span was rejected, for `partial_success`.
    pub first_error: Option<String>,
}

impl Split {
    fn reject(&mut self, reason: String) {
        self.rejected += 1;
        self.first_error.get_or_insert(reason);
    }
}

/// Why a span cannot be stored.
fn invalid(span: &Span) -> Option<String> {
    if let Err(e) = TraceId::from_bytes(&span.trace_id) {
        return Some(format!("span {:?}: invalid {e}", span.name));
    }
    if let Err(e) = SpanId::from_bytes(&span.span_id) {
        return Some(format!("span {:?}: invalid {e}", span.name));
    }
    if !span.parent_span_id.is_empty()
        && let Err(e) = SpanId::from_bytes(&span.parent_span_id)
    {
        return Some(format!("span {:?}: invalid parent {e}", span.name));
    }
    if span.start_time_unix_nano == 0 {
        return Some(format!("span {:?}: start time is missing", span.name));
    }
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Some(format!("span {:?}: ends before it starts", span.name));
    }
    None
}

pub fn split(request: ExportTraceServiceRequest, partitions: u16) -> Split {
    let mut split = Split::default();
    // Per partition: which (resource, scope) the last appended span came from.
    let mut last_origin: BTreeMap<Partition, (usize, usize)> = BTreeMap::new();
    for (r, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        } = resource_spans;
        for (s, scope_spans) in scope_spans.into_iter().enumerate() {
            let ScopeSpans {
                scope,
                spans,
                schema_url: scope_schema_url,
            } = scope_spans;
            for span in spans {
                if let Some(reason) = invalid(&span) {
                    split.reject(reason);
                    continue;
                }
                let trace_id = TraceId::from_bytes(&span.trace_id).expect("validated above");
                let partition = Partition::of(&trace_id, partitions);
                let part = split.parts.entry(partition).or_default();
                if last_origin.get(&partition).map(|o| o.0) != Some(r) {
                    part.resource_spans.push(ResourceSpans {
                        resource: resource.clone(),
                        scope_spans: Vec::new(),
                        schema_url: schema_url.clone(),
                    });
                }
                let resource_part = part.resource_spans.last_mut().expect("pushed above");
                if last_origin.get(&partition) != Some(&(r, s)) {
                    resource_part.scope_spans.push(ScopeSpans {
                        scope: scope.clone(),
                        spans: Vec::new(),
                        schema_url: scope_schema_url.clone(),
                    });
                }
                last_origin.insert(partition, (r, s));
                resource_part
                    .scope_spans
                    .last_mut()
                    .expect("pushed above")
                    .spans
                    .push(span);
                split.accepted += 1;
            }
        }
    }
    split
}

/// Splits a part into encoded messages of at most `max_bytes`, halving by span until
/// each fits. A single span that alone exceeds the limit is returned in `too_large`.
pub fn encode_within(
    part: ExportTraceServiceRequest,
    max_bytes: usize,
    out: &mut Vec<bytes::Bytes>,
    too_large: &mut Vec<String>,
) {
    if part.encoded_len() <= max_bytes {
        out.push(part.encode_to_vec().into());
        return;
    }
    let spans: Vec<(usize, usize, Span)> = flatten(&part);
    if spans.len() <= 1 {
        let name = spans
            .first()
            .map(|(_, _, s)| s.name.clone())
            .unwrap_or_default();
        too_large.push(format!("span {name:?} is larger than {max_bytes} bytes"));
        return;
    }
    let (first, second) = spans.split_at(spans.len() / 2);
    encode_within(rebuild(&part, first), max_bytes, out, too_large);
    encode_within(rebuild(&part, second), max_bytes, out, too_large);
}

fn flatten(part: &ExportTraceServiceRequest) -> Vec<(usize, usize, Span)> {
    let mut spans = Vec::new();
    for (r, resource) in part.resource_spans.iter().enumerate() {
        for (s, scope) in resource.scope_spans.iter().enumerate() {
            spans.extend(scope.spans.iter().map(|span| (r, s, span.clone())));
        }
    }
    spans
}

fn rebuild(
    template: &ExportTraceServiceRequest,
    spans: &[(usize, usize, Span)],
) -> ExportTraceServiceRequest {
    let mut request = ExportTraceServiceRequest::default();
    let mut origin = None;
    for (r, s, span) in spans {
        let resource = &template.resource_spans[*r];
        if origin.map(|(or, _)| or) != Some(*r) {
            request.resource_spans.push(ResourceSpans {
                resource: resource.resource.clone(),
                scope_spans: Vec::new(),
                schema_url: resource.schema_url.clone(),
            });
        }
        let resource_part = request.resource_spans.last_mut().expect("pushed above");
        if origin != Some((*r, *s)) {
            let scope = &resource.scope_spans[*s];
            resource_part.scope_spans.push(ScopeSpans {
                scope: scope.scope.clone(),
                spans: Vec::new(),
                schema_url: scope.schema_url.clone(),
            });
        }
        origin = Some((*r, *s));
        resource_part
            .scope_spans
            .last_mut()
            .expect("pushed above")
            .spans
            .push(span.clone());
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("s{id}"),
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            ..Default::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn spans_of_one_trace_stay_together_and_invalid_ones_are_counted() {
        let mut bad_parent = span(1, 9);
        bad_parent.parent_span_id = vec![1, 2, 3];
        let mut backwards = span(1, 8);
        backwards.end_time_unix_nano = 5;
        let spans = vec![
            span(1, 1),
            span(2, 2),
            span(1, 3),
            span(0, 4),
            bad_parent,
            backwards,
        ];
        let result = split(request(spans), 16);
        assert_eq!((result.accepted, result.rejected), (3, 3));
        assert_eq!(
            result.first_error.as_deref(),
            Some("span \"s4\": invalid trace id must not be all zeros")
        );
        let p1 = Partition::of(&TraceId::from_bytes(&[1; 16]).unwrap(), 16);
        let names: Vec<_> = result.parts[&p1].resource_spans[0].scope_spans[0]
            .spans
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert!(names.contains(&"s1") && names.contains(&"s3"));
        let total: usize = result.parts.values().map(|p| flatten(p).len()).sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn oversized_parts_are_halved_until_they_fit() {
        let spans: Vec<Span> = (1..=40).map(|i| span(7, i)).collect();
        let part = request(spans);
        let limit = part.encoded_len() / 3;
        let (mut out, mut too_large) = (Vec::new(), Vec::new());
        encode_within(part, limit, &mut out, &mut too_large);
        assert!(too_large.is_empty());
        assert!(out.len() >= 3);
        let mut count = 0;
        for bytes in &out {
            assert!(bytes.len() <= limit);
            count += flatten(&ExportTraceServiceRequest::decode(bytes.clone()).unwrap()).len();
        }
        assert_eq!(count, 40);
        let (mut out, mut too_large) = (Vec::new(), Vec::new());
        encode_within(request(vec![span(7, 1)]), 10, &mut out, &mut too_large);
        assert_eq!(too_large.len(), 1);
    }
}
