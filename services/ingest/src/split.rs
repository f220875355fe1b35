//! Validating items and splitting a request by trace-id partition, once for every
//! signal. Each part keeps the resource and scope of its items, so a part is itself a
//! complete OTLP request. This is the only place items are validated: consumers of the
//! bus trust what ingest published.

use crate::signal::{Group, Telemetry};
use std::collections::BTreeMap;
use weft_model::Partition;

/// A request split into per-partition groups, with what was rejected.
#[derive(Debug)]
pub struct Split<I> {
    pub parts: BTreeMap<Partition, Vec<Group<I>>>,
    pub accepted: u64,
    pub rejected: u64,
    /// The first reason an item was rejected, for `partial_success`.
    pub first_error: Option<String>,
}

impl<I> Split<I> {
    fn reject(&mut self, reason: String) {
        self.rejected += 1;
        self.first_error.get_or_insert(reason);
    }
}

/// Splits `request` over `partitions`; items with a time after `latest` (Unix
/// nanoseconds: now plus the accepted clock skew) are rejected. Items of no trace go to
/// `untraced`, one partition for the whole request, so they travel as one message; the
/// caller varies it from request to request to spread them.
pub fn split<T: Telemetry>(
    request: T,
    partitions: u16,
    latest: u64,
    untraced: Partition,
) -> Split<T::Item> {
    let mut split = Split {
        parts: BTreeMap::new(),
        accepted: 0,
        rejected: 0,
        first_error: None,
    };
    // Per partition, its groups with the index of the request group each came from.
    type Origins<I> = Vec<(usize, Group<I>)>;
    let mut parts: BTreeMap<Partition, Origins<T::Item>> = BTreeMap::new();
    for (index, group) in request.into_groups().into_iter().enumerate() {
        let origin: Group<T::Item> = group.with_items(Vec::new());
        for item in group.items {
            let trace_id = match T::check(&item, latest) {
                Ok(trace_id) => trace_id,
                Err(reason) => {
                    split.reject(reason);
                    continue;
                }
            };
            let partition = trace_id.map_or(untraced, |id| Partition::of(&id, partitions));
            let part = parts.entry(partition).or_default();
            // Items of one group that land in one partition stay in one group there.
            match part.last_mut() {
                Some((last, group)) if *last == index => group.items.push(item),
                _ => part.push((index, origin.with_items(vec![item]))),
            }
            split.accepted += 1;
        }
    }
    split.parts = parts
        .into_iter()
        .map(|(partition, groups)| (partition, groups.into_iter().map(|(_, g)| g).collect()))
        .collect();
    split
}

/// Encodes a part as messages of at most `max_bytes`, halving by item until each fits.
/// An item that alone exceeds the limit is described in `too_large`.
pub fn encode_within<T: Telemetry>(
    groups: Vec<Group<T::Item>>,
    max_bytes: usize,
    out: &mut Vec<bytes::Bytes>,
    too_large: &mut Vec<String>,
) {
    let items: usize = groups.iter().map(|g| g.items.len()).sum();
    let request = T::from_groups(groups);
    if request.encoded_len() <= max_bytes {
        out.push(request.encode_to_vec().into());
        return;
    }
    let mut groups = request.into_groups();
    if items <= 1 {
        let item = groups.iter().flat_map(|g| g.items.first()).next();
        let name = item
            .map(T::describe)
            .unwrap_or_else(|| "an item".to_owned());
        too_large.push(format!("{name} is larger than {max_bytes} bytes"));
        return;
    }
    let (first, second) = halve(&mut groups, items / 2);
    encode_within::<T>(first, max_bytes, out, too_large);
    encode_within::<T>(second, max_bytes, out, too_large);
}

/// Splits groups into the first `count` items and the rest, cutting one group in two
/// where the boundary falls inside it.
fn halve<I>(groups: &mut Vec<Group<I>>, count: usize) -> (Vec<Group<I>>, Vec<Group<I>>) {
    let mut first = Vec::new();
    let mut taken = 0;
    let mut rest = std::mem::take(groups).into_iter();
    for mut group in rest.by_ref() {
        let room = count - taken;
        if group.items.len() <= room {
            taken += group.items.len();
            first.push(group);
            if taken == count {
                break;
            }
        } else {
            let tail = group.items.split_off(room);
            let remainder = group.with_items(tail);
            first.push(group);
            return (first, std::iter::once(remainder).chain(rest).collect());
        }
    }
    (first, rest.collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    use weft_model::TraceId;

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

    fn names(groups: &[Group<Span>]) -> Vec<&str> {
        groups
            .iter()
            .flat_map(|g| g.items.iter().map(|s| s.name.as_str()))
            .collect()
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
        let result = split(request(spans), 16, u64::MAX, Partition(0));
        assert_eq!((result.accepted, result.rejected), (3, 3));
        assert_eq!(
            result.first_error.as_deref(),
            Some("span \"s4\": invalid trace id must not be all zeros")
        );
        let p1 = Partition::of(&TraceId::from_bytes(&[1; 16]).unwrap(), 16);
        assert_eq!(result.parts[&p1].len(), 1, "one group per origin");
        assert_eq!(names(&result.parts[&p1]), ["s1", "s3"]);
        let total: usize = result.parts.values().map(|p| names(p).len()).sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn spans_ending_after_the_skew_allowance_are_rejected() {
        let mut far = span(1, 2);
        far.end_time_unix_nano = u64::MAX;
        let result = split(request(vec![span(1, 1), far]), 16, 1_000, Partition(0));
        assert_eq!((result.accepted, result.rejected), (1, 1));
        assert!(
            result
                .first_error
                .unwrap()
                .starts_with("span \"s2\": ends at 18446744073709551615 ns, later than")
        );
    }

    #[test]
    fn oversized_parts_are_halved_until_they_fit() {
        let spans: Vec<Span> = (1..=40).map(|i| span(7, i)).collect();
        let part = request(spans);
        let limit = part.encoded_len() / 3;
        let (mut out, mut too_large) = (Vec::new(), Vec::new());
        encode_within::<ExportTraceServiceRequest>(
            part.into_groups(),
            limit,
            &mut out,
            &mut too_large,
        );
        assert!(too_large.is_empty());
        assert!(out.len() >= 3);
        let mut seen = Vec::new();
        for bytes in &out {
            assert!(bytes.len() <= limit);
            let decoded = ExportTraceServiceRequest::decode(bytes.clone()).unwrap();
            seen.extend(names(&decoded.into_groups()).into_iter().map(str::to_owned));
        }
        let expected: Vec<String> = (1..=40).map(|i| format!("s{i}")).collect();
        assert_eq!(seen, expected, "every span once, in order");
        let (mut out, mut too_large) = (Vec::new(), Vec::new());
        encode_within::<ExportTraceServiceRequest>(
            request(vec![span(7, 1)]).into_groups(),
            10,
            &mut out,
            &mut too_large,
        );
        assert_eq!(too_large, ["span \"s1\" is larger than 10 bytes"]);
    }
}
