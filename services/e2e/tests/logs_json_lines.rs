//! `POST /v1/logs/json` with real output of structured loggers, made by the loggers
//! themselves: pino, winston and bunyan (npm, `services/e2e/loggers`), structlog and
//! python-json-logger (PyPI); lines with and without trace ids, broken lines, a 10 MB
//! line and an empty body.

use serde_json::Value;
use std::io::Write;
use std::time::Duration;
use weft_e2e::{Namespace, Stack, StackOptions};

/// Small, so that a body over it is refused before the client has written much of it.
const MAX_REQUEST: usize = 256 << 10;

fn loggers_dir() -> String {
    format!("{}/loggers", env!("CARGO_MANIFEST_DIR"))
}

fn python() -> String {
    std::env::var("WEFT_LOGGERS_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/weft/otel-venv/bin/python",
            std::env::var("HOME").expect("HOME")
        )
    })
}

async fn run(program: &str, script: &str, trace_id: &str, span_id: &str) -> String {
    let output = tokio::process::Command::new(program)
        .arg(script)
        .args([trace_id, span_id])
        .current_dir(loggers_dir())
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("run {program} {script} (deploy/lib.sh installs the loggers): {e}")
        });
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 log lines")
}

async fn post(stack: &Stack, key: &str, body: Vec<u8>, gzip: bool) -> (u16, Value) {
    let mut request = stack
        .http
        .post(stack.ingest_url("/v1/logs/json"))
        .header("x-api-key", key)
        .header("content-type", "application/x-ndjson");
    let body = if gzip {
        request = request.header("content-encoding", "gzip");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&body).unwrap();
        encoder.finish().unwrap()
    } else {
        body
    };
    let response = request.body(body).send().await.expect("post json lines");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_of_real_loggers_are_stored_with_their_trace_and_bad_lines_are_reported() {
    let stack = Stack::start_with(
        Namespace::create().await,
        StackOptions {
            max_request_bytes: MAX_REQUEST,
            ..Default::default()
        },
    )
    .await;
    let tenant = stack.ns.tenant("acme").await;
    let trace_id = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let span_id = &format!("{:016x}", uuid::Uuid::new_v4().as_u128())[..16];
    let node = run("node", "emit.mjs", &trace_id, span_id).await;
    let py = run(&python(), "emit.py", &trace_id, span_id).await;
    assert_eq!(node.lines().count(), 6, "{node}");
    assert_eq!(py.lines().count(), 4, "{py}");

    // Real lines, with a broken line and a line that is not an object among them.
    let body = format!("{node}{{\"msg\": \"cut off\n[1, 2, 3]\n\n{py}");
    let (status, answer) = post(&stack, &tenant.ingest_key, body.into_bytes(), true).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 10, "{answer}");
    assert_eq!(answer["rejected"], 2, "{answer}");
    assert_eq!(answer["errors"][0]["line"], 7, "{answer}");
    assert!(
        answer["errors"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON"),
        "{answer}"
    );
    assert_eq!(answer["errors"][1]["line"], 8);
    assert_eq!(answer["errors"][1]["error"], "not a JSON object");

    // Every logger's line with ids is found under the trace and span.
    let path = format!("/api/v1/logs?trace_id={trace_id}");
    let page = weft_e2e::eventually(
        "five lines of the trace",
        Duration::from_secs(30),
        || async {
            let (status, body) = stack.query_get(&path, &tenant.read_key).await;
            (status == 200 && body["logs"].as_array().map(Vec::len) == Some(5)).then_some(body)
        },
    )
    .await;
    let mut found: Vec<(String, String, String)> = page["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            assert_eq!(line["span_id"], span_id, "{line}");
            (
                line["service"].as_str().unwrap().to_owned(),
                line["severity_text"].as_str().unwrap().to_owned(),
                line["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    let expected = [
        ("shop-bunyan", "ERROR", "payment failed"),
        ("shop-pino", "INFO", "order placed"),
        ("shop-pjl", "ERROR", "refund refused"),
        ("shop-structlog", "info", "cart emptied"),
        ("shop-winston", "warn", "stock low"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(found, expected);
    // Nested fields are flattened into attributes.
    let (_, pino) = stack
        .query_get(
            &format!("/api/v1/logs?trace_id={trace_id}&service=shop-pino"),
            &tenant.read_key,
        )
        .await;
    assert_eq!(pino["logs"][0]["attributes"]["order.id"], "7", "{pino}");
    assert!(pino["logs"][0]["attributes"]["pid"].is_string(), "{pino}");
    let (_, refund) = stack
        .query_get(
            &format!("/api/v1/logs?trace_id={trace_id}&attr=refund.amount%3D5"),
            &tenant.read_key,
        )
        .await;
    assert_eq!(refund["logs"][0]["body"], "refund refused", "{refund}");
    // Severity at or above error: bunyan's 50 and python's ERROR.
    let (_, errors) = stack
        .query_get(
            &format!("/api/v1/logs?trace_id={trace_id}&severity=error"),
            &tenant.read_key,
        )
        .await;
    assert_eq!(errors["logs"].as_array().unwrap().len(), 2, "{errors}");

    // Lines without ids are stored too, under their service.
    for (service, body) in [
        ("shop-pino", "pino without ids"),
        ("shop-winston", "winston without ids"),
        ("shop-bunyan", "bunyan without ids"),
        ("shop-structlog", "structlog without ids"),
        ("shop-pjl", "python-json-logger without ids"),
    ] {
        // They travel in another partition than the trace's lines, so they may be
        // stored after them.
        let path = format!("/api/v1/logs?service={service}&q=without%20ids");
        let page = weft_e2e::eventually(
            &format!("{service}'s line without ids"),
            Duration::from_secs(30),
            || async {
                let (status, page) = stack.query_get(&path, &tenant.read_key).await;
                assert_eq!(status, 200, "{service}: {page}");
                (page["logs"].as_array().map(Vec::len) == Some(1)).then_some(page)
            },
        )
        .await;
        assert_eq!(page["logs"][0]["body"], body);
        assert_eq!(page["logs"][0]["trace_id"], "");
    }

    // A 10 MB line (gzip keeps the request within its limits) is refused alone.
    let huge = format!(
        "{{\"msg\":\"{}\"}}\n{{\"msg\":\"after the huge line\"}}\n",
        "x".repeat(10 << 20)
    );
    let (status, answer) = post(&stack, &tenant.ingest_key, huge.into_bytes(), true).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{answer}"
    );
    assert_eq!(answer["errors"][0]["line"], 1);
    assert!(
        answer["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("longer than")
    );
    // A body over the size limit as sent is refused whole (a small one here: a client
    // still writing 10 MB when the 413 comes may see the connection close instead).
    // Ingest closes the connection after such an answer, so the request gets one of its
    // own rather than one the other requests would reuse.
    let over = format!("{{\"msg\":\"{}\"}}\n", "x".repeat(MAX_REQUEST));
    let status = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .post(stack.ingest_url("/v1/logs/json"))
        .header("x-api-key", &tenant.ingest_key)
        .body(over)
        .send()
        .await
        .expect("post an oversized body")
        .status();
    assert_eq!(status, 413);
    // An empty body is accepted as nothing.
    let (status, answer) = post(&stack, &tenant.ingest_key, Vec::new(), false).await;
    assert_eq!(status, 200);
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(0), Some(0))
    );
    // A read key may not send.
    let (status, _) = post(&stack, &tenant.read_key, b"{\"msg\":\"x\"}".to_vec(), false).await;
    assert_eq!(status, 403);
    stack.stop().await;
}
