//! The account pages in a real browser: `frontend/e2e/account-flow.mjs` drives Debian's
//! chromium from "forgot password" through the emailed link (read here off a real SMTP
//! server, aiosmtpd, and handed to the flow in a file) to a new password and a login,
//! changing the password, the confirmation of a key revocation, the sole owner's members
//! page, the usage page with the spans and log lines sent here first, and deleting the
//! organisation. Screenshots at 1280 and 390 px, light and dark, land in
//! `.weft/test-output/browser/account`.

use std::time::{Duration, Instant};
use weft_e2e::otlp::trace_request;
use weft_e2e::smtp::SmtpServer;
use weft_e2e::web::Visitor;
use weft_e2e::{Namespace, Stack, StackOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_resets_and_changes_the_password_and_deletes_the_organisation_in_a_browser() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("account");

    let mut smtp = SmtpServer::start().await;
    let mut stack = Stack::start_with(Namespace::create().await, StackOptions::default()).await;
    let port = smtp.port;
    let replica = stack
        .start_query_with(|config| {
            config.smtp.host = "127.0.0.1".to_owned();
            config.smtp.port = port;
            config.smtp.tls = weft_query::SmtpTls::None;
        })
        .await;
    stack.query = stack.keep(replica);
    let email = "dana@northwind.example";
    let organisation = "Northwind Traders";
    let mut dana = Visitor::new(&stack);
    let signed_up = dana.sign_up(email, organisation).await;
    assert_eq!(signed_up.status, 200);

    // A day of usage for the usage page: 3 spans, and 30 log lines of which one is broken.
    let ingest_key = signed_up.shown("new-key");
    assert_eq!(stack.export(&ingest_key, &trace_request(3).0).await, 200);
    let mut lines: String = (0..29)
        .map(|i| format!("{{\"level\":\"info\",\"msg\":\"order {i} shipped to the warehouse\"}}\n"))
        .collect();
    lines.push_str("not json\n");
    let response = stack
        .http
        .post(stack.ingest_url("/v1/logs/json"))
        .header("x-api-key", &ingest_key)
        .body(lines.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let log_cell = r#"data-label="Log records received">30</td>"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !dana.get("/usage").await.body.contains(log_cell) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the usage was never written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let link_file = screenshots.join("reset-link.txt");
    let _ = std::fs::remove_file(&link_file);
    let started = Instant::now();
    let flow = tokio::process::Command::new("node")
        .arg(root.join("frontend/e2e/account-flow.mjs"))
        .current_dir(&root)
        .env("WEFT_QUERY_URL", format!("http://{}", stack.query))
        .env("WEFT_EMAIL", email)
        .env("WEFT_ORGANISATION", organisation)
        .env("WEFT_RESET_LINK_FILE", &link_file)
        .env("WEFT_LOG_BYTES", lines.len().to_string())
        .env("WEFT_SCREENSHOTS", &screenshots)
        .env("WEFT_CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let handover = async {
        let message = smtp.next_message().await;
        assert_eq!(message["rcpt_tos"], serde_json::json!([email]));
        let text = message["text"].as_str().expect("a plain text part");
        let link = text
            .split_whitespace()
            .find(|word| word.contains("/password/reset/"))
            .expect("a reset link")
            .to_owned();
        std::fs::write(&link_file, link).expect("hand the link to the flow");
    };
    let (output, ()) = tokio::join!(flow, handover);
    let output = output.expect("run node (deploy/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "account-flow.mjs failed ({}) after {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        started.elapsed()
    );
    println!("{stdout}");
    assert!(
        stack
            .ns
            .accounts
            .user_by_email(email)
            .await
            .unwrap()
            .is_none(),
        "the account went with the organisation"
    );
    stack.stop().await;
}
