//! No log line lost or stored twice while ClickHouse is down: lines sent over OTLP/HTTP
//! and as JSON lines while the sampler cannot write are accepted (durable on the bus),
//! held unacknowledged, survive the sampler being killed (redelivered to the next one),
//! and once ClickHouse is back every accepted line is stored exactly once as the query
//! API reads it.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use std::collections::HashSet;
use std::time::Duration;
use weft_bus::{Bus, Signal};
use weft_e2e::{ChildServer, Namespace, Stack, StackOptions, eventually};
use weft_model::PartitionSet;

const OTLP_REQUESTS: usize = 20;
const RECORDS_PER_REQUEST: usize = 10;
const JSON_REQUESTS: usize = 10;
const LINES_PER_JSON_REQUEST: usize = 10;
const ACK_WAIT: Duration = Duration::from_secs(3);

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn otlp_request(request: usize) -> ExportLogsServiceRequest {
    let trace_id = uuid::Uuid::new_v4().as_bytes().to_vec();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Any::StringValue("durable".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: (0..RECORDS_PER_REQUEST)
                    .map(|i| LogRecord {
                        time_unix_nano: now_nanos(),
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(Any::StringValue(format!("otlp {request}-{i}"))),
                        }),
                        trace_id: trace_id.clone(),
                        span_id: vec![i as u8 + 1; 8],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Log messages the sampler's log consumers have not had delivered, and those delivered
/// but not acknowledged.
async fn log_backlog(bus: &Bus) -> (u64, u64) {
    let stream = bus
        .jetstream()
        .get_stream(bus.subjects().stream(Signal::Logs))
        .await
        .expect("the log stream");
    let (mut pending, mut unacked) = (0, 0);
    for partition in PartitionSet::all(bus.config().partitions).iter() {
        let name = bus
            .subjects()
            .consumer(weft_sampler::CONSUMER_GROUP, Signal::Logs, partition);
        if let Ok(info) = stream.consumer_info(name).await {
            pending += info.num_pending;
            unacked += info.num_ack_pending as u64;
        }
    }
    (pending, unacked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_sent_while_clickhouse_is_down_are_stored_exactly_once() {
    let mut clickhouse = ChildServer::clickhouse().await;
    let ns = Namespace::create_with_clickhouse(clickhouse.url()).await;
    let stack = Stack::start_with(
        ns,
        StackOptions {
            ack_wait: ACK_WAIT,
            sampler: false,
            ..Default::default()
        },
    )
    .await;
    let tenant = stack.ns.tenant("acme").await;
    let bus = Bus::connect(stack.ns.bus.clone()).await.unwrap();
    let first = stack
        .start_sampler_owning(PartitionSet::all(stack.ns.bus.partitions))
        .await;

    clickhouse.stop().await;
    let mut expected = HashSet::new();
    for r in 0..OTLP_REQUESTS {
        let status = stack
            .http
            .post(stack.ingest_url("/v1/logs"))
            .header("content-type", "application/x-protobuf")
            .header("x-api-key", &tenant.ingest_key)
            .body(otlp_request(r).encode_to_vec())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "ingest accepts while ClickHouse is down");
        expected.extend((0..RECORDS_PER_REQUEST).map(|i| format!("otlp {r}-{i}")));
    }
    for r in 0..JSON_REQUESTS {
        let lines: String = (0..LINES_PER_JSON_REQUEST)
            .map(|i| {
                format!("{{\"level\":\"info\",\"msg\":\"json {r}-{i}\",\"service\":\"durable\"}}\n")
            })
            .collect();
        let response = stack
            .http
            .post(stack.ingest_url("/v1/logs/json"))
            .header("x-api-key", &tenant.ingest_key)
            .body(lines)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["accepted"], LINES_PER_JSON_REQUEST as u64);
        expected.extend((0..LINES_PER_JSON_REQUEST).map(|i| format!("json {r}-{i}")));
    }
    eventually(
        "the sampler to hold log messages it cannot write",
        Duration::from_secs(30),
        || async { (log_backlog(&bus).await.1 > 0).then_some(()) },
    )
    .await;
    // Killed while its writes hang: its messages go to the next sampler once their ack
    // wait passes, as redeliveries.
    first.kill();
    let second = stack
        .start_sampler_owning(PartitionSet::all(stack.ns.bus.partitions))
        .await;
    tokio::time::sleep(ACK_WAIT * 2).await;
    clickhouse.resume().await;

    let reader = || async {
        let mut bodies = Vec::new();
        let mut cursor = String::new();
        loop {
            let path =
                format!("/api/v1/logs?service=durable&limit=1000&lookback=1h&cursor={cursor}");
            let (status, page) = stack.query_get(&path, &tenant.read_key).await;
            if status != 200 {
                return None;
            }
            bodies.extend(
                page["logs"]
                    .as_array()?
                    .iter()
                    .map(|l| l["body"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => return Some(bodies),
            }
        }
    };
    let total = expected.len();
    let bodies = eventually(
        "every accepted line readable",
        Duration::from_secs(90),
        || async {
            let bodies = reader().await?;
            (bodies.len() >= total).then_some(bodies)
        },
    )
    .await;
    eventually(
        "every log message acknowledged",
        Duration::from_secs(30),
        || async { (log_backlog(&bus).await == (0, 0)).then_some(()) },
    )
    .await;
    // Read again after everything was acknowledged: nothing came in twice meanwhile.
    let bodies_after = reader().await.unwrap();
    assert_eq!(bodies_after.len(), bodies.len());
    let stored: HashSet<String> = bodies_after.iter().cloned().collect();
    assert_eq!(bodies_after.len(), total, "no line written twice");
    assert_eq!(stored, expected, "no line lost");
    second.stop().await;
    stack.stop().await;
}
