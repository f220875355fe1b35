//! Publishing, with payloads that meet on the way coalesced into one message. Every
//! message costs JetStream the same work whatever it carries: storing it, delivering it
//! to each consumer group, and taking each group's acknowledgement. Ingest publishes one
//! payload per request and partition, often a trace or two; under load, many requests of
//! one tenant publish to the same partition at once. So each (signal, tenant, partition)
//! is a lane that publishes one message at a time: a payload that finds its lane idle is
//! published at once, alone; those that arrive while a message is being acknowledged
//! wait and go together in the next one, up to the server's message size. A payload is an
//! OTLP export request, and the concatenation of encoded requests is the request holding
//! all their items (a protobuf's repeated fields append), so coalescing is copying
//! bytes. Each publisher is answered when the message holding its payload is durable.
//! The message carries the trace context of its first payload.

use crate::{Bus, BusError, Signal, TENANT_HEADER, TRACEPARENT_HEADER, metrics};
use async_nats::HeaderMap;
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::oneshot;
use weft_model::{Partition, TenantId};

type LaneKey = (Signal, TenantId, Partition);

/// The lanes that have payloads queued or a message in flight.
#[derive(Default)]
pub(crate) struct Lanes {
    lanes: Mutex<HashMap<LaneKey, VecDeque<Queued>>>,
}

struct Queued {
    payload: Bytes,
    traceparent: Option<String>,
    done: oneshot::Sender<Result<(), BusError>>,
}

/// Takes the payloads of the next message from the front of `queue`: at least one, then
/// as many as fit in `max_bytes` together.
fn next_message(queue: &mut VecDeque<Queued>, max_bytes: usize) -> Vec<Queued> {
    let mut taken = Vec::new();
    let mut bytes = 0;
    while let Some(next) = queue.front() {
        if !taken.is_empty() && bytes + next.payload.len() > max_bytes {
            break;
        }
        bytes += next.payload.len();
        taken.push(queue.pop_front().expect("a front"));
    }
    taken
}

fn concatenated(payloads: &[Queued]) -> Bytes {
    if let [only] = payloads {
        return only.payload.clone();
    }
    let mut joined = BytesMut::with_capacity(payloads.iter().map(|q| q.payload.len()).sum());
    for queued in payloads {
        joined.extend_from_slice(&queued.payload);
    }
    joined.freeze()
}

impl Bus {
    /// Publishes one payload of one signal, tenant and partition and waits for JetStream's
    /// acknowledgement of the message that holds it: only then is the payload durable.
    /// `traceparent` carries the publishing request's trace context to the consumers.
    /// The payload must be an encoded OTLP export request, at most the size ingest cuts
    /// messages to (see the module note).
    pub async fn publish(
        &self,
        signal: Signal,
        tenant: TenantId,
        partition: Partition,
        payload: Bytes,
        traceparent: Option<&str>,
    ) -> Result<(), BusError> {
        if !self.is_connected() {
            return Err(BusError::Disconnected);
        }
        let (done, answer) = oneshot::channel();
        let queued = Queued {
            payload,
            traceparent: traceparent.map(str::to_owned),
            done,
        };
        let key = (signal, tenant, partition);
        let idle = {
            let mut lanes = self.lanes.lanes.lock().expect("publish lanes");
            let mut idle = false;
            let queue = lanes.entry(key).or_insert_with(|| {
                idle = true;
                VecDeque::new()
            });
            queue.push_back(queued);
            idle
        };
        if idle {
            // This payload opened the lane: its task publishes until the lane is empty.
            tokio::spawn(self.clone().drive(key));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(BusError::Publish("the publishing task stopped".into())))
    }

    /// Publishes the lane's queued payloads, a message at a time, until none is left.
    async fn drive(self, key: LaneKey) {
        let max_bytes = self.max_payload().saturating_sub(4096).max(1024);
        loop {
            let payloads = {
                let mut lanes = self.lanes.lanes.lock().expect("publish lanes");
                let queue = lanes.get_mut(&key).expect("a driven lane exists");
                let payloads = next_message(queue, max_bytes);
                if payloads.is_empty() {
                    lanes.remove(&key);
                    return;
                }
                payloads
            };
            let message = concatenated(&payloads);
            let traceparent = payloads[0].traceparent.as_deref();
            let result = self.publish_message(key, message, traceparent).await;
            self.metrics
                .payloads_per_message
                .get_or_create(&metrics::SignalLabels {
                    signal: key.0.as_str(),
                })
                .observe(payloads.len() as f64);
            for queued in payloads {
                let _ = queued.done.send(result.clone());
            }
        }
    }

    /// Publishes one message and waits for its acknowledgement, within the publish
    /// timeout and the budget of unacknowledged publishes.
    async fn publish_message(
        &self,
        (signal, tenant, partition): LaneKey,
        payload: Bytes,
        traceparent: Option<&str>,
    ) -> Result<(), BusError> {
        let _permit = self
            .publish_permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let mut headers = HeaderMap::new();
        headers.insert(TENANT_HEADER, tenant.to_string().as_str());
        if let Some(traceparent) = traceparent {
            headers.insert(TRACEPARENT_HEADER, traceparent);
        }
        let timeout = self.config.publish_timeout;
        let publish = async {
            let ack = self
                .jetstream
                .publish_with_headers(self.subjects.partition(signal, partition), headers, payload)
                .await
                .map_err(|e| BusError::Publish(e.to_string()))?;
            ack.await.map_err(|e| BusError::Publish(e.to_string()))
        };
        let labels = metrics::SignalLabels {
            signal: signal.as_str(),
        };
        self.metrics.publishes_in_flight.inc();
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, publish).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(BusError::AckTimeout(timeout)),
        };
        self.metrics.publishes_in_flight.dec();
        match &result {
            Ok(()) => self
                .metrics
                .publish_seconds
                .get_or_create(&labels)
                .observe(started.elapsed().as_secs_f64()),
            Err(_) => {
                self.metrics.publish_failures.get_or_create(&labels).inc();
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(bytes: usize) -> Queued {
        Queued {
            payload: Bytes::from(vec![1; bytes]),
            traceparent: None,
            done: oneshot::channel().0,
        }
    }

    #[test]
    fn a_message_takes_what_fits_and_at_least_one_payload() {
        let mut queue: VecDeque<Queued> = [400, 500, 200, 2000, 10].map(queued).into();
        let sizes = |taken: Vec<Queued>| taken.iter().map(|q| q.payload.len()).collect::<Vec<_>>();
        assert_eq!(sizes(next_message(&mut queue, 1000)), [400, 500]);
        assert_eq!(sizes(next_message(&mut queue, 1000)), [200]);
        // Alone, a payload goes whatever its size (ingest cut it to the server's limit).
        assert_eq!(sizes(next_message(&mut queue, 1000)), [2000]);
        assert_eq!(sizes(next_message(&mut queue, 1000)), [10]);
        assert!(next_message(&mut queue, 1000).is_empty());
    }

    #[test]
    fn coalesced_requests_are_the_request_of_all_their_items() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
        use prost::Message as _;
        let request = |n: usize| ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans::default(); n],
        };
        let payloads: Vec<Queued> = [request(2), request(3)]
            .iter()
            .map(|r| Queued {
                payload: r.encode_to_vec().into(),
                traceparent: None,
                done: oneshot::channel().0,
            })
            .collect();
        let joined = ExportTraceServiceRequest::decode(concatenated(&payloads)).unwrap();
        assert_eq!(joined.resource_spans.len(), 5);
    }
}
