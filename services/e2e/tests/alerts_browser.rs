//! Alerting pages in a real browser: `frontend/e2e/alerts-flow.mjs` drives Debian's
//! chromium through channels (a refused URL, a test notification), rules (a refused
//! threshold, a latency rule that fires with its chart, a muted span-duration rule) and
//! the delivery log. A local receiver stands in for Slack. Screenshots at 1280 and 390
//! px, light and dark, land in `.weft/test-output/browser/alerts`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_e2e::Stack;
use weft_e2e::otlp::{now_ns, random_id, request, span};
use weft_e2e::web::{PASSWORD, Visitor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sets_up_alerts_in_a_browser() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("alerts");

    let stack = Stack::start().await;
    type Received = Arc<Mutex<Vec<serde_json::Value>>>;
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/slack",
            axum::routing::post(
                |axum::extract::State(received): axum::extract::State<Received>,
                 axum::Json(body): axum::Json<serde_json::Value>| async move {
                    received.lock().unwrap().push(body);
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let email = "mara@shop.example";
    let mut mara = Visitor::new(&stack);
    let key = mara.sign_up(email, "Northwind Shop").await.shown("new-key");
    // Slow requests of raw-client: its p99 is far above the rule's 300 ms.
    let spans = (0..12)
        .map(|i| {
            let mut s = span(&random_id::<16>(), "GET /checkout");
            s.end_time_unix_nano = now_ns();
            s.start_time_unix_nano =
                s.end_time_unix_nano - if i % 2 == 0 { 900_000_000 } else { 40_000_000 };
            s
        })
        .collect();
    assert_eq!(stack.export(&key, &request(spans)).await, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !mara.get("/services").await.body.contains("raw-client") {
        assert!(Instant::now() < deadline, "raw-client never listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let started = Instant::now();
    let output = tokio::process::Command::new("node")
        .arg(root.join("frontend/e2e/alerts-flow.mjs"))
        .current_dir(&root)
        .env("WEFT_QUERY_URL", format!("http://{}", stack.query))
        .env("WEFT_EMAIL", email)
        .env("WEFT_PASSWORD", PASSWORD)
        .env("WEFT_SCREENSHOTS", &screenshots)
        .env("WEFT_CHROMIUM", &chromium)
        .env("WEFT_RECEIVER_URL", format!("http://{receiver}"))
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node (deploy/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "alerts-flow.mjs failed ({}) after {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        started.elapsed()
    );
    println!("{stdout}");
    // The test notification and the firing reached "Slack".
    let texts: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            b["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        texts.contains(&"[TEST] Test notification — example-service".to_owned()),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"[FIRING] raw-client p99 — raw-client".to_owned()),
        "{texts:?}"
    );
    stack.stop().await;
}
